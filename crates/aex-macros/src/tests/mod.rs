//! Unit tests of `#[aex::module]`, run on `proc_macro2` streams without a compiler, so they
//! take milliseconds where the trybuild cases of `crates/aex/tests/macro_ui.rs` take half a
//! minute (they compile the SDK in their own target directory, in the long CI step).
//!
//! * [`ui_cases`] runs every compile-fail case of `crates/aex/tests/ui/fail` and checks the
//!   message its `.stderr` file shows (and, with `--features test-span-locations`, where
//!   it points);
//! * [`errors`] covers the refusals that have no compile-fail case;
//! * [`valid`] expands modules that use every attribute kind;
//! * [`props`] checks that no attribute argument makes the macro panic.

mod errors;
mod props;
mod ui_cases;
mod valid;

use proc_macro2::TokenStream;

/// The single error `#[aex::module(args)]` on `item` gives; panics if it expands.
fn error_of(args: TokenStream, item: TokenStream) -> syn::Error {
    match crate::expand_module(args, item) {
        Ok(tokens) => panic!("expected an error, got an expansion:\n{tokens}"),
        Err(e) => {
            assert_eq!(
                e.clone().into_iter().count(),
                1,
                "one error at a time: {e:?}"
            );
            e
        }
    }
}

/// The marker attributes the macro consumes; none may reach the compiler.
const MARKERS: [&str; 7] = [
    "input", "handler", "entry", "periodic", "deadline", "save", "restore",
];

/// The marker attributes left on the methods of an `impl` block.
fn markers_left(item: &syn::ItemImpl) -> Vec<String> {
    item.items
        .iter()
        .filter_map(|i| match i {
            syn::ImplItem::Fn(f) => Some(f),
            _ => None,
        })
        .flat_map(|f| &f.attrs)
        .filter_map(|a| a.path().get_ident().map(ToString::to_string))
        .filter(|name| MARKERS.contains(&name.as_str()))
        .collect()
}
