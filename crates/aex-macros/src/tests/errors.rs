//! Refusals without a compile-fail case in `crates/aex/tests/ui/fail`: each mistake the macro
//! can see, written with `quote!`, and the exact message it gives.

use proc_macro2::TokenStream;
use quote::quote;

use super::error_of;

const DEADLINE_FORM: &str = "write `#[deadline(input = <an #[input] method>, every = \
                             \"<duration>\")]`, e.g. `#[deadline(input = reading, every = \"2s\")]`";

/// `(what, attribute arguments, item, message)`.
fn cases() -> Vec<(&'static str, TokenStream, TokenStream, String)> {
    let none = TokenStream::new;
    let deadline_on = |attr: TokenStream| {
        quote! {
            impl M {
                #[input]
                fn a(&mut self) {}
                #attr
                fn silent(&mut self) {}
            }
        }
    };
    vec![
        (
            "trait impl",
            none(),
            quote!(impl Default for M { fn default() -> Self { M } }),
            "#[aex::module] goes on an inherent `impl` block, not a trait implementation".into(),
        ),
        (
            "request named like an output",
            quote!(outputs(a), requests(a)),
            quote!(impl M {}),
            "duplicate port name `a`: already declared as an output".into(),
        ),
        (
            "raw and plain spelling of one name",
            none(),
            quote!(impl M { #[input] fn a(&mut self) {} #[handler] fn r#a(&mut self) {} }),
            "duplicate port name `a`: already declared as an input".into(),
        ),
        (
            "port name with a value",
            quote!(outputs(a = 1)),
            quote!(impl M {}),
            "expected a port name, such as `outputs(temperature)`".into(),
        ),
        (
            "port name as a path",
            quote!(requests(a::b)),
            quote!(impl M {}),
            "expected a port name, such as `outputs(temperature)`".into(),
        ),
        (
            "port attribute with arguments",
            none(),
            quote!(impl M { #[input(fast)] fn a(&mut self) {} }),
            "port attributes take no arguments (only `#[deadline(..)]` does)".into(),
        ),
        (
            "async port",
            none(),
            quote!(impl M { #[entry] async fn a(&mut self) {} }),
            "port methods cannot be `async`".into(),
        ),
        (
            "generic port",
            none(),
            quote!(impl M { #[entry] fn a<T>(&mut self, _t: T) {} }),
            "port methods cannot be generic".into(),
        ),
        (
            "no receiver",
            none(),
            quote!(impl M { #[entry] fn a() {} }),
            "port methods take `&mut self` first".into(),
        ),
        (
            "receiver by value",
            none(),
            quote!(impl M { #[handler] fn a(self) {} }),
            "port methods take `&mut self` first".into(),
        ),
        (
            "two payloads",
            none(),
            quote!(impl M { #[entry] fn a(&mut self, x: u32, y: u32) {} }),
            "port methods take at most `&mut self`, `ctx: &mut Context` and one payload".into(),
        ),
        (
            "two contexts",
            none(),
            quote!(impl M { #[entry] fn a(&mut self, c: &mut Context, d: &mut aex::Context) {} }),
            "`Context` is taken once".into(),
        ),
        (
            "mutable byte slice payload",
            none(),
            quote!(impl M { #[input] fn a(&mut self, data: &mut [u8]) {} }),
            "payload parameters are `&[u8]`, `Vec<u8>`, or an owned type that implements \
             `serde::Deserialize` (decoded from JSON)"
                .into(),
        ),
        (
            "input returning a value in a Result",
            none(),
            quote!(impl M { #[input] fn a(&mut self) -> Result<u32, String> { Ok(1) } }),
            "inputs return nothing (or `Result<(), E>`): an event has no reply; use `ctx.emit` \
             to send one, or make this a `#[handler]`"
                .into(),
        ),
        (
            "periodic entry returning a value",
            none(),
            quote!(impl M { #[periodic] fn a(&mut self) -> u32 { 1 } }),
            "periodic entry points return nothing (or `Result<(), E>`): nobody receives a \
             result; use `ctx.emit` to send an event"
                .into(),
        ),
        (
            "deadline handler with a payload",
            none(),
            quote!(impl M {
                #[input] fn a(&mut self) {}
                #[deadline(input = a, every = "1s")] fn late(&mut self, x: u32) {}
            }),
            "deadline handlers take no payload: they are called with nothing but `&mut self` \
             and optionally `ctx: &mut Context`"
                .into(),
        ),
        (
            "deadline handler returning a value",
            none(),
            quote!(impl M {
                #[input] fn a(&mut self) {}
                #[deadline(input = a, every = "1s")]
                fn late(&mut self) -> Result<u8, String> { Ok(1) }
            }),
            "deadline handlers return nothing (or `Result<(), E>`): nobody receives a result; \
             use `ctx.emit` to send an event"
                .into(),
        ),
        (
            "bare deadline",
            none(),
            deadline_on(quote!(#[deadline])),
            DEADLINE_FORM.into(),
        ),
        (
            "deadline with a value",
            none(),
            deadline_on(quote!(#[deadline = "2s"])),
            DEADLINE_FORM.into(),
        ),
        (
            "deadline without input",
            none(),
            deadline_on(quote!(#[deadline(every = "2s")])),
            format!("missing `input = ..`; {DEADLINE_FORM}"),
        ),
        (
            "deadline with an unknown argument",
            none(),
            deadline_on(quote!(#[deadline(input = a, every = "2s", grace = "1s")])),
            format!("unknown argument; {DEADLINE_FORM}"),
        ),
        (
            "deadline shorter than 10 ms",
            none(),
            deadline_on(quote!(#[deadline(input = a, every = "5ms")])),
            "a deadline of 5 ms is too short: the shortest is 10 ms".into(),
        ),
        (
            "deadline whose milliseconds overflow",
            none(),
            deadline_on(quote!(#[deadline(input = a, every = "18446744073709551615h")])),
            "invalid duration `18446744073709551615h`: write a whole number and a unit, e.g. \
             `500ms`, `5s`, `1m` or `1h`"
                .into(),
        ),
        (
            "deadline on a keyword",
            none(),
            deadline_on(quote!(#[deadline(input = "fn", every = "2s")])),
            "expected an input's name".into(),
        ),
        (
            "deadline in a module without inputs",
            none(),
            quote!(impl M { #[deadline(input = a, every = "2s")] fn silent(&mut self) {} }),
            "no `#[input]` method `a` to watch (this module declares none)".into(),
        ),
        (
            "two deadlines on one input",
            none(),
            quote!(impl M {
                #[input] fn a(&mut self) {}
                #[deadline(input = a, every = "2s")] fn first(&mut self) {}
                #[deadline(input = "a", every = "5s")] fn second(&mut self) {}
            }),
            "input `a` already has a deadline, handled by `first`".into(),
        ),
        (
            "hook with arguments",
            none(),
            quote!(impl M { #[save(json)] fn save(&self) -> Vec<u8> { Vec::new() } }),
            "hook attributes take no arguments".into(),
        ),
        (
            "two save hooks",
            none(),
            quote!(impl M {
                #[save] fn a(&self) -> Vec<u8> { Vec::new() }
                #[save] fn b(&self) -> Vec<u8> { Vec::new() }
            }),
            "a module has one `#[save]` method".into(),
        ),
        (
            "save hook returning a number",
            none(),
            quote!(impl M { #[save] fn a(&self) -> u32 { 1 } }),
            "a `#[save]` method is `fn(&self) -> Vec<u8>` or `fn(&self) -> Result<Vec<u8>, E>`"
                .into(),
        ),
        (
            "restore hook taking a vector",
            none(),
            quote!(impl M {
                #[save] fn a(&self) -> Vec<u8> { Vec::new() }
                #[restore] fn b(&mut self, s: Vec<u8>) {}
            }),
            "a `#[restore]` method is `fn(&mut self, snapshot: &[u8])`, returning nothing or \
             `Result<(), E>`"
                .into(),
        ),
        (
            "restore hook without save",
            none(),
            quote!(impl M { #[restore] fn b(&mut self, s: &[u8]) {} }),
            "a `#[restore]` method needs a `#[save]` method to write what it reads".into(),
        ),
    ]
}

#[test]
fn each_refusal_has_its_message() {
    for (what, args, item, message) in cases() {
        assert_eq!(error_of(args, item).to_string(), message, "{what}");
    }
}
