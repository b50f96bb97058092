//! The compile-fail cases of `crates/aex/tests/ui/fail`, run through the macro directly.
//!
//! The cases and their `.stderr` files stay the single source of truth: each test reads them,
//! hands the macro the same tokens the compiler would (the item under `#[aex::module(..)]`,
//! parsed from the case's source), and compares the error with the `.stderr` file. A case
//! added there is covered here without editing this file. The trybuild test, in the long CI
//! step, proves the compiler shows these errors as written.
//!
//! Where an error points needs span line and column, which `proc_macro2` tracks outside a
//! compiler only with its `span-locations` feature; see `test-span-locations` in Cargo.toml.

use std::path::{Path, PathBuf};

use proc_macro2::TokenStream;
use quote::ToTokens;

use super::{error_of, markers_left};

/// One `tests/ui/fail/NAME.rs` case and what its `.stderr` file says.
struct Case {
    name: String,
    source: String,
    expected: Expected,
}

/// The first diagnostic of a `.stderr` file.
#[derive(Debug)]
struct Expected {
    /// `Some("E0277")` for a compiler error on the generated code, `None` for the macro's own.
    code: Option<String>,
    message: String,
    /// 1-based, as rustc prints them.
    line: usize,
    column: usize,
    /// The number of `^` under the source line.
    width: usize,
}

fn fail_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../aex/tests/ui/fail")
}

/// Every case, sorted by name.
fn cases() -> Vec<Case> {
    let dir = fail_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut cases: Vec<Case> = entries
        .map(|e| e.expect("read the case directory").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|path| {
            let read = |p: &Path| {
                std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            };
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let stderr = read(&path.with_extension("stderr"));
            let expected = parse_stderr(&stderr)
                .unwrap_or_else(|problem| panic!("{name}.stderr: {problem}:\n{stderr}"));
            Case {
                name,
                source: read(&path),
                expected,
            }
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    // A wrong path or an emptied directory must not pass as "no case failed".
    assert!(
        cases.len() >= 15,
        "expected the compile-fail cases in {}, found {}",
        dir.display(),
        cases.len()
    );
    cases
}

/// Reads `error[CODE]: message`, ` --> file:line:column` and the `^^^` line under the source.
fn parse_stderr(text: &str) -> Result<Expected, String> {
    let mut lines = text.lines();
    let first = lines.next().ok_or("empty")?;
    let rest = first
        .strip_prefix("error")
        .ok_or("the first line is not an error")?;
    let (code, message) = match rest.strip_prefix('[') {
        Some(coded) => {
            let (code, message) = coded.split_once("]: ").ok_or("no `]: ` after the code")?;
            (Some(code.to_owned()), message)
        }
        None => (
            None,
            rest.strip_prefix(": ").ok_or("no `: ` after `error`")?,
        ),
    };
    let location = lines.next().ok_or("no location line")?.trim_start();
    let location = location
        .strip_prefix("--> ")
        .ok_or("the second line is not ` --> file:line:column`")?;
    let mut parts = location.rsplitn(3, ':');
    let number = |part: Option<&str>| -> Result<usize, String> {
        part.and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("bad location `{location}`"))
    };
    let column = number(parts.next())?;
    let line = number(parts.next())?;
    let width = lines
        .find(|l| l.contains('^'))
        .ok_or("no `^` line")?
        .chars()
        .filter(|&c| c == '^')
        .count();
    Ok(Expected {
        code,
        message: message.to_owned(),
        line,
        column,
        width,
    })
}

/// The attribute's arguments and the item under it, as the compiler hands them to the macro.
fn split(case: &Case) -> (TokenStream, TokenStream) {
    let mut file = syn::parse_file(&case.source)
        .unwrap_or_else(|e| panic!("{}.rs does not parse: {e}", case.name));
    for item in &mut file.items {
        let attrs = match item {
            syn::Item::Impl(i) => &mut i.attrs,
            syn::Item::Struct(s) => &mut s.attrs,
            syn::Item::Enum(e) => &mut e.attrs,
            syn::Item::Fn(f) => &mut f.attrs,
            _ => continue,
        };
        let Some(at) = attrs.iter().position(is_aex_module) else {
            continue;
        };
        let args = match attrs.remove(at).meta {
            syn::Meta::Path(_) => TokenStream::new(),
            syn::Meta::List(list) => list.tokens,
            syn::Meta::NameValue(_) => panic!("{}.rs: `#[aex::module = ..]`", case.name),
        };
        return (args, item.to_token_stream());
    }
    panic!("{}.rs has no item under `#[aex::module]`", case.name)
}

fn is_aex_module(attr: &syn::Attribute) -> bool {
    let path: Vec<String> = attr
        .path()
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    path == ["aex", "module"]
}

/// The macro's own errors: the message of every case's `.stderr` file.
#[test]
fn each_case_gives_its_stderr_message() {
    let mut checked = 0;
    for case in cases().iter().filter(|c| c.expected.code.is_none()) {
        let (args, item) = split(case);
        let error = error_of(args, item);
        assert_eq!(
            error.to_string(),
            case.expected.message,
            "{}.rs: the macro's message differs from {0}.stderr",
            case.name
        );
        checked += 1;
    }
    assert!(checked >= 14, "only {checked} macro errors checked");
}

/// Compiler errors on the generated code (such as a payload type that is not `Deserialize`)
/// come from an expansion the macro accepted, spanned on the user's type so rustc points
/// there: the decode call is `from_json::<Type>`.
#[test]
fn compiler_error_cases_expand() {
    let coded: Vec<Case> = cases()
        .into_iter()
        .filter(|c| c.expected.code.is_some())
        .collect();
    assert!(
        !coded.is_empty(),
        "no case of a compiler error on generated code"
    );
    for case in &coded {
        let (args, item) = split(case);
        let tokens = crate::expand_module(args, item)
            .unwrap_or_else(|e| panic!("{}.rs: the macro refused it: {e}", case.name));
        syn::parse2::<syn::File>(tokens.clone())
            .unwrap_or_else(|e| panic!("{}.rs: the expansion does not parse: {e}", case.name));
        if case.name == "not_deserialize" {
            let text = tokens.to_string();
            assert!(
                text.contains("from_json :: < Plain >"),
                "the payload is not decoded as `Plain`:\n{text}"
            );
        }
    }
}

/// After an error the user's item is still emitted, without the marker attributes (which
/// rustc would report as unknown attributes, burying the real error).
#[test]
fn error_keeps_the_item_without_markers() {
    for case in cases().iter().filter(|c| c.expected.code.is_none()) {
        let (args, item) = split(case);
        let item_impl = syn::parse2::<syn::ItemImpl>(item.clone()).ok();
        let out = crate::module_tokens(args, item);
        let file = syn::parse2::<syn::File>(out)
            .unwrap_or_else(|e| panic!("{}.rs: the output does not parse: {e}", case.name));
        let syn::Item::Macro(first) = &file.items[0] else {
            panic!("{}.rs: the output does not start with the error", case.name);
        };
        assert!(
            first
                .mac
                .path
                .segments
                .last()
                .is_some_and(|s| s.ident == "compile_error"),
            "{}.rs: the output starts with `{}!`",
            case.name,
            first.mac.path.to_token_stream()
        );
        match item_impl {
            Some(original) => {
                assert_eq!(file.items.len(), 2, "{}.rs: the item is missing", case.name);
                let syn::Item::Impl(kept) = &file.items[1] else {
                    panic!("{}.rs: the second item is not the `impl` block", case.name);
                };
                assert_eq!(kept.items.len(), original.items.len(), "{}.rs", case.name);
                assert_eq!(markers_left(kept), Vec::<String>::new(), "{}.rs", case.name);
            }
            // Not an `impl` block (`on_struct`): only the error.
            None => assert_eq!(file.items.len(), 1, "{}.rs", case.name),
        }
    }
}

/// Where each error points: line, column and width of the `^^^` in the `.stderr` file.
#[cfg(feature = "test-span-locations")]
#[test]
fn each_case_points_where_its_stderr_shows() {
    let mut checked = 0;
    for case in cases() {
        let (args, item) = split(&case);
        let e = &case.expected;
        let (start, end) = match &e.code {
            None => {
                let span = error_of(args, item).span();
                (span.start(), span.end())
            }
            // The compiler error points at the decode call, spanned on the payload type.
            Some(_) if case.name == "not_deserialize" => {
                let tokens = crate::expand_module(args, item).expect("expands");
                let span = find_ident(tokens, "from_json").expect("a `from_json` call");
                (span.start(), span.end())
            }
            Some(_) => continue,
        };
        let found = (
            start.line,
            start.column + 1,
            end.column.saturating_sub(start.column),
        );
        assert_eq!(
            found,
            (e.line, e.column, e.width),
            "{}.rs: the error points at `{}` (line, column, width), {0}.stderr at `{}`",
            case.name,
            source_text(&case.source, start, end),
            source_text(
                &case.source,
                proc_macro2::LineColumn {
                    line: e.line,
                    column: e.column - 1
                },
                proc_macro2::LineColumn {
                    line: e.line,
                    column: e.column - 1 + e.width
                }
            ),
        );
        assert_eq!(start.line, end.line, "{}.rs: a multi-line span", case.name);
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} locations checked");
}

#[cfg(feature = "test-span-locations")]
fn find_ident(tokens: TokenStream, name: &str) -> Option<proc_macro2::Span> {
    tokens.into_iter().find_map(|tt| match tt {
        proc_macro2::TokenTree::Ident(i) if i == name => Some(i.span()),
        proc_macro2::TokenTree::Group(g) => find_ident(g.stream(), name),
        _ => None,
    })
}

/// The source between two positions on one line, to show in a failure.
#[cfg(feature = "test-span-locations")]
fn source_text(
    source: &str,
    start: proc_macro2::LineColumn,
    end: proc_macro2::LineColumn,
) -> String {
    let line = source
        .lines()
        .nth(start.line.saturating_sub(1))
        .unwrap_or("");
    let width = if end.line == start.line {
        end.column.saturating_sub(start.column)
    } else {
        usize::MAX
    };
    line.chars().skip(start.column).take(width).collect()
}

#[test]
fn stderr_parser_reads_code_location_and_width() {
    let e = parse_stderr(
        "error[E0277]: the trait bound is not satisfied\n --> tests/ui/fail/x.rs:9:30\n  |\n\
         9 |     fn take(&mut self, _arg: Plain) {}\n  |                              ^^^^^ here\n",
    )
    .unwrap();
    assert_eq!(e.code.as_deref(), Some("E0277"));
    assert_eq!(e.message, "the trait bound is not satisfied");
    assert_eq!((e.line, e.column, e.width), (9, 30, 5));
    assert!(parse_stderr("warning: x\n --> a.rs:1:1\n1 | x\n  | ^\n").is_err());
    assert!(parse_stderr("error: x\n --> a.rs:one:1\n").is_err());
}
