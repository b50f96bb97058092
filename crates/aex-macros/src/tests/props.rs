//! Properties over arbitrary attribute arguments: the macro never panics (a panic in a proc
//! macro is an unhelpful compiler error), and whatever it produces is valid Rust, either the
//! expansion or an error followed by the user's item.

use proc_macro2::TokenStream;
use proptest::prelude::*;

/// A token of an attribute argument, always valid to lex.
#[derive(Debug, Clone)]
enum Tok {
    Word(&'static str),
    Text(&'static str),
    Group(char, Vec<Tok>),
}

impl Tok {
    fn render(&self, out: &mut String) {
        match self {
            Tok::Word(w) | Tok::Text(w) => out.push_str(w),
            Tok::Group(open, inner) => {
                let close = match open {
                    '(' => ')',
                    '[' => ']',
                    _ => '}',
                };
                out.push(*open);
                render(inner, out);
                out.push(close);
            }
        }
        out.push(' ');
    }
}

fn render(toks: &[Tok], out: &mut String) {
    for tok in toks {
        tok.render(out);
    }
}

fn stream(toks: &[Tok]) -> TokenStream {
    let mut text = String::new();
    render(toks, &mut text);
    text.parse()
        .unwrap_or_else(|e| panic!("the generator made `{text}`, which does not lex: {e}"))
}

/// Identifiers (the argument names, port names, keywords, raw and non-ASCII names),
/// punctuation, and literals (durations good and bad, names, numbers).
fn tok() -> impl Strategy<Value = Tok> {
    let leaf = prop_oneof![
        prop::sample::select(vec![
            "outputs", "requests", "inputs", "input", "every", "a", "reading", "fanSpeed",
            "r#type", "r#a", "self", "Self", "crate", "fn", "_", "straße", "ǆx", "x2",
        ])
        .prop_map(Tok::Word),
        prop::sample::select(vec![
            ",", "=", "::", "#", "!", "-", ".", ";", "&", "<", ">", "'a"
        ])
        .prop_map(Tok::Word),
        prop::sample::select(vec![
            "\"2s\"",
            "\"1 m\"",
            "\"500ms\"",
            "\"0ms\"",
            "\"9ms\"",
            "\"\"",
            "\"a\"",
            "\"reading\"",
            "\"r#a\"",
            "\"fn\"",
            "\"18446744073709551615h\"",
            "\"99999999999999999999999s\"",
            "\"-1s\"",
            "\"1.5s\"",
            "\"1 d\"",
            "1",
            "1.5",
            "b'x'",
            "'c'",
            "r\"2s\"",
        ])
        .prop_map(Tok::Text),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        (
            prop::sample::select(vec!['(', '[', '{']),
            prop::collection::vec(inner, 0..5),
        )
            .prop_map(|(open, toks)| Tok::Group(open, toks))
    })
}

fn toks() -> impl Strategy<Value = Vec<Tok>> {
    prop::collection::vec(tok(), 0..8)
}

/// Runs the macro as the compiler would and checks its output is valid Rust.
fn run(args: TokenStream, item: TokenStream) -> Result<(), TestCaseError> {
    let out = crate::module_tokens(args.clone(), item.clone());
    prop_assert!(!out.is_empty());
    if let Err(e) = syn::parse2::<syn::File>(out.clone()) {
        return Err(TestCaseError::fail(format!(
            "output does not parse ({e}):\n{out}"
        )));
    }
    if let Err(e) = crate::expand_module(args, item) {
        prop_assert!(!e.to_string().is_empty());
    }
    Ok(())
}

proptest! {
    #[test]
    fn module_arguments_never_panic(args in toks()) {
        let item: TokenStream = "impl M { #[input] fn a(&mut self) {} }".parse().unwrap();
        run(stream(&args), item)?;
    }

    /// The common prefix keeps most cases past the first argument, deeper into the parser.
    #[test]
    fn port_lists_never_panic(kind in prop::sample::select(vec!["outputs", "requests"]),
                              names in toks()) {
        let args = format!("{kind}({})", {
            let mut s = String::new();
            render(&names, &mut s);
            s
        });
        let item: TokenStream = "impl M { #[entry] fn go(&mut self) {} }".parse().unwrap();
        run(args.parse().unwrap(), item)?;
    }

    #[test]
    fn deadline_arguments_never_panic(args in toks()) {
        let mut text = String::new();
        render(&args, &mut text);
        let item = format!(
            "impl M {{ #[input] fn a(&mut self) {{}} #[deadline({text})] fn s(&mut self) {{}} }}"
        );
        run(TokenStream::new(), item.parse().unwrap())?;
    }

    /// Well-formed deadlines with any amount: accepted from 10 ms, refused below or on
    /// overflow, never a panic.
    #[test]
    fn deadline_amounts(n in any::<u64>(), unit in prop::sample::select(vec!["ms", "s", "m", "min", "h"])) {
        let item = format!(
            "impl M {{ #[input] fn a(&mut self) {{}} \
             #[deadline(input = a, every = \"{n}{unit}\")] fn s(&mut self) {{}} }}"
        );
        let item: TokenStream = item.parse().unwrap();
        let scale: u64 = match unit { "ms" => 1, "s" => 1_000, "m" | "min" => 60_000, _ => 3_600_000 };
        let result = crate::expand_module(TokenStream::new(), item.clone());
        match n.checked_mul(scale) {
            Some(ms) if ms >= 10 => {
                let tokens = result.map_err(|e| TestCaseError::fail(e.to_string()))?;
                let expected = format!("from_millis ({ms}u64)");
                prop_assert!(tokens.to_string().contains(&expected), "no `{}`", expected);
            }
            Some(ms) => {
                let e = result.err().ok_or_else(|| TestCaseError::fail("accepted"))?;
                prop_assert_eq!(
                    e.to_string(),
                    format!("a deadline of {ms} ms is too short: the shortest is 10 ms")
                );
            }
            None => {
                let e = result.err().ok_or_else(|| TestCaseError::fail("accepted"))?;
                prop_assert!(e.to_string().starts_with("invalid duration"));
            }
        }
        run(TokenStream::new(), item)?;
    }

    /// Any text as a duration: a period or a clear refusal.
    #[test]
    fn duration_text_never_panics(
        text in prop_oneof![".{0,24}", " ?[0-9]{1,24} ?(ms|s|m|min|h|d|)"],
    ) {
        match crate::parse::parse_duration(&text) {
            Ok(_) => prop_assert!(text.trim().starts_with(|c: char| c.is_ascii_digit())),
            Err(e) => prop_assert!(e.starts_with("invalid duration `")),
        }
    }
}
