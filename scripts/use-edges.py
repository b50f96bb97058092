#!/usr/bin/env python3
"""Lists the `crate::` edges between the top-level modules of a crate, and its import cycles.

Usage: scripts/use-edges.py crates/aex-tee [--edges]

A module is a file `src/NAME.rs` or a folder `src/NAME/`; `lib.rs` is the root and is left
out (it declares every module). An edge A -> B means a file of A names `crate::B` (in a `use`,
grouped or not, or in a path), or `crate::X` where the root re-exports X from B. Items under `#[cfg(test)]` count too: a test that imports a
module is an edge like any other. A cycle is a strongly connected component of more than one
module; the script prints each, and exits 1 if there is one.
"""
import re
import sys
from pathlib import Path


def module_of(src: Path, path: Path) -> str:
    rel = path.relative_to(src)
    first = rel.parts[0]
    return first[:-3] if first.endswith(".rs") else first


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def targets(text: str) -> set:
    found = set()
    # `use crate::{a, b::c, d::{e, f}}`: the first segment of each top-level group item.
    for group in re.finditer(r"crate::\{", text):
        depth, i, item_start, items = 1, group.end(), group.end(), []
        while depth and i < len(text):
            c = text[i]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    items.append(text[item_start:i])
            elif c == "," and depth == 1:
                items.append(text[item_start:i])
                item_start = i + 1
            i += 1
        for item in items:
            m = re.match(r"\s*(\w+)", item)
            if m:
                found.add(m.group(1))
    for m in re.finditer(r"crate::(\w+)", text):
        found.add(m.group(1))
    return found


def reexports(root: str, modules: set) -> dict:
    """Names the crate root re-exports (`pub use module::{A, b::C}`), by the module they come from."""
    names = {}
    for m in re.finditer(r"pub(?:\([^)]*\))?\s+use\s+(\w+)::([^;]*);", strip_comments(root)):
        if m.group(1) not in modules:
            continue
        for name in re.findall(r"(\w+)\s*(?:[,}]|$)", m.group(2)):
            names[name] = m.group(1)
    return names


def main() -> int:
    crate = Path(sys.argv[1])
    src = crate / "src"
    modules = {module_of(src, p) for p in src.rglob("*.rs")} - {"lib", "main"}
    root = src / "lib.rs"
    aliases = reexports(root.read_text(), modules) if root.exists() else {}
    edges = {m: set() for m in modules}
    for path in src.rglob("*.rs"):
        m = module_of(src, path)
        if m not in modules:
            continue
        for t in targets(strip_comments(path.read_text())):
            t = t if t in modules else aliases.get(t, t)
            if t in modules and t != m:
                edges[m].add(t)
    if "--edges" in sys.argv:
        for m in sorted(edges):
            print(f"{m} -> {', '.join(sorted(edges[m])) or '(none)'}")
    # Tarjan's strongly connected components.
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            sccs.append(sorted(scc))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    cycles = [s for s in sccs if len(s) > 1]
    for s in cycles:
        print(f"cycle: {' <-> '.join(s)}")
    if not cycles:
        print(f"{crate}: no cycle among {len(modules)} modules")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
