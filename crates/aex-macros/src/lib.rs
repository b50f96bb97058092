//! Procedural macros of the aex module SDK; use them through the `aex` crate.
//!
//! `#[aex::module(outputs(..), requests(..))]` goes on the inherent `impl` block of a module's
//! state struct. It reads the port methods marked `#[input]`, `#[handler]`, `#[entry]`,
//! `#[periodic]` and `#[deadline(input = .., every = "..")]`, removes those marker attributes,
//! and generates:
//!
//! * one associated constant per declared output (`aex::Output`) and request
//!   (`aex::Request`), named in SCREAMING_CASE (`outputs(fan_speed)` → `Self::FAN_SPEED`);
//! * the `aex::Module` implementation: the module's interface (all names, in declaration
//!   order), its deadlines, and the dispatch from a port to its method, decoding arguments
//!   and encoding results, and the state transfer of `aex update` (JSON when the state type
//!   is `Serialize + Deserialize`, or the module's own `#[save]`/`#[restore]` pair).
//!
//! The macro only rearranges code the module author wrote: it adds no I/O, no globals and no
//! unsafe code. Every mistake it can see becomes a compile error on the offending tokens.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod expand;
mod hooks;
mod parse;
#[cfg(test)]
mod tests;

use proc_macro2::TokenStream;

/// Turns an `impl` block into an aex module. See the `aex` crate for the full description.
#[proc_macro_attribute]
pub fn module(
    args: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    module_tokens(args.into(), item.into()).into()
}

/// The macro on `proc_macro2` streams, so unit tests run it without a compiler: the expansion,
/// or the error followed by the user's item.
fn module_tokens(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand_module(args, item.clone()) {
        Ok(tokens) => tokens,
        // Keep the user's item so one mistake does not cascade into unrelated errors.
        Err(e) => {
            let mut out = e.to_compile_error();
            if let Ok(mut item) = syn::parse2::<syn::ItemImpl>(item) {
                parse::strip_markers(&mut item);
                hooks::strip(&mut item);
                out.extend(quote::quote!(#item));
            }
            out
        }
    }
}

/// Parses the attribute's arguments and item, then generates the module's code.
fn expand_module(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    parse::parse(args, item).map(|m| expand::expand(&m))
}
