#!/usr/bin/env python3
"""Lists dependencies a workspace member never names in its Rust sources.

Usage (from the workspace root): scripts/unused-deps.py

For each member's [dependencies], [dev-dependencies] and [build-dependencies], looks for the
crate's identifier (`-` as `_`) as a word in the member's `.rs` files (nested members left
out). A hit in a comment counts, so a dependency kept on purpose (e.g. only to enable a
feature) can say so in a comment; a miss is a dependency to remove. Exits 1 on a miss.
"""
import re, sys, pathlib, tomllib
root = pathlib.Path('.')
ws = tomllib.loads((root/'Cargo.toml').read_text())
members = ws['workspace']['members']
unused = 0
for m in members:
    d = root/m
    cargo = tomllib.loads((d/'Cargo.toml').read_text())
    files = [p for p in d.rglob('*.rs') if 'target' not in p.parts]
    # exclude nested member crates' files
    nested = [root/o for o in members if o != m and (root/o).is_relative_to(d)]
    files = [p for p in files if not any(p.is_relative_to(n) for n in nested)]
    text = '\n'.join(p.read_text() for p in files)
    for section in ['dependencies', 'dev-dependencies', 'build-dependencies']:
        for name, spec in cargo.get(section, {}).items():
            pkg = name
            if isinstance(spec, dict) and 'package' in spec:
                pkg = spec['package']
            ident = name.replace('-', '_')
            if not re.search(r'\b' + re.escape(ident) + r'\b', text):
                print(f"{m}: [{section}] {name}: no `{ident}` in {len(files)} files")
                unused += 1
sys.exit(1 if unused else 0)
