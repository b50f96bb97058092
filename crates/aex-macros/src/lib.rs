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

use proc_macro::TokenStream;

/// Turns an `impl` block into an aex module. See the `aex` crate for the full description.
#[proc_macro_attribute]
pub fn module(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = proc_macro2::TokenStream::from(args);
    let item = proc_macro2::TokenStream::from(item);
    match parse::parse(args, item.clone()).map(|m| expand::expand(&m)) {
        Ok(tokens) => tokens.into(),
        // Keep the user's item so one mistake does not cascade into unrelated errors.
        Err(e) => {
            let mut out = e.to_compile_error();
            if let Ok(mut item) = syn::parse2::<syn::ItemImpl>(item) {
                parse::strip_markers(&mut item);
                hooks::strip(&mut item);
                out.extend(quote::quote!(#item));
            }
            out.into()
        }
    }
}
