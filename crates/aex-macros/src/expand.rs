//! Generates the port constants and the `aex::Module` implementation from a [`ModuleDef`].
//!
//! Generated code names everything through `::aex::…`, so a module crate needs only `aex`
//! as a dependency. Argument and result conversions are spanned on the user's types, so a
//! type that is not `Deserialize`/`Serialize` is reported where it was written.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Ident, LitStr};

use crate::parse::{Kind, ModuleDef, Payload, Port, Returned};

/// The user's `impl` block (markers removed), the constants, and the `Module` impl.
pub(crate) fn expand(def: &ModuleDef) -> TokenStream {
    let item = &def.item;
    let self_ty = &item.self_ty;
    let (impl_generics, _, where_clause) = item.generics.split_for_impl();

    let outputs = handles(&def.outputs, quote!(::aex::Output), "output");
    let requests = handles(&def.requests, quote!(::aex::Request), "request");

    let names_of = |kind: Kind| -> Vec<LitStr> {
        def.ports
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| name(&p.method))
            .collect()
    };
    let output_names: Vec<LitStr> = def.outputs.iter().map(name).collect();
    let request_names: Vec<LitStr> = def.requests.iter().map(name).collect();
    let input_names = names_of(Kind::Input);
    let handler_names = names_of(Kind::Handler);
    let entry_names = names_of(Kind::Entry);
    let periodic_names = names_of(Kind::Periodic);
    let deadlines: Vec<TokenStream> = def
        .ports
        .iter()
        .filter_map(|p| p.deadline.as_ref())
        .map(|d| {
            let input = name(&d.input);
            // Invariant: the parser refuses periods past `u64::MAX` milliseconds.
            let millis = u64::try_from(d.every.as_millis()).unwrap_or(u64::MAX);
            quote!(::aex::Deadline::new(#input, ::std::time::Duration::from_millis(#millis)))
        })
        .collect();
    let deadlines_fn = (!deadlines.is_empty()).then(|| {
        quote! {
            fn deadlines() -> ::std::vec::Vec<::aex::Deadline> {
                ::std::vec![#(#deadlines),*]
            }
        }
    });

    let arms = [
        Kind::Input,
        Kind::Handler,
        Kind::Entry,
        Kind::Periodic,
        Kind::Deadline,
    ]
    .into_iter()
    .flat_map(|kind| {
        def.ports
            .iter()
            .filter(move |p| p.kind == kind)
            .enumerate()
            .map(|(index, port)| arm(port, index))
    });

    let transfer = transfer(def);
    let persistent = def.persistent.is_some();
    let seal_by_signer = def.seal_by_signer;
    // A persistent module seals its state with `Module::save`: without `#[save]`/`#[restore]`
    // its state type must be serializable, checked here rather than at its first commit.
    let persistent_check = match (&def.persistent, &def.hooks.save) {
        (Some(marker), None) => quote_spanned! {marker.span()=>
            #[allow(dead_code, reason = "a compile-time check: persistent state must be serializable")]
            fn __aex_persistent_state_is_serializable()
            where
                Self: ::aex::__private::Serialize + ::aex::__private::DeserializeOwned,
            {
            }
        },
        _ => quote!(),
    };

    quote! {
        #item

        #[automatically_derived]
        impl #impl_generics #self_ty #where_clause {
            #(#outputs)*
            #(#requests)*
            #persistent_check
        }

        #[automatically_derived]
        impl #impl_generics ::aex::Module for #self_ty #where_clause {
            fn interface() -> ::aex::Interface {
                ::aex::Interface {
                    outputs: ::std::vec![#(::std::string::String::from(#output_names)),*],
                    inputs: ::std::vec![#(::std::string::String::from(#input_names)),*],
                    requests: ::std::vec![#(::std::string::String::from(#request_names)),*],
                    handlers: ::std::vec![#(::std::string::String::from(#handler_names)),*],
                    entries: ::std::vec![#(::std::string::String::from(#entry_names)),*],
                    periodic: ::std::vec![#(::std::string::String::from(#periodic_names)),*],
                    persistent: #persistent,
                    seal_by_signer: #seal_by_signer,
                }
            }

            #deadlines_fn

            fn dispatch(
                &mut self,
                __aex_ctx: &mut ::aex::Context<'_>,
                __aex_kind: ::aex::PortKind,
                __aex_index: usize,
                __aex_payload: &[u8],
            ) -> ::std::result::Result<::std::vec::Vec<u8>, ::aex::PortError> {
                match (__aex_kind, __aex_index) {
                    #(#arms)*
                    (kind, index) => ::std::result::Result::Err(::aex::PortError::Method(
                        ::std::format!("this module has no {:?} port number {}", kind, index),
                    )),
                }
            }

            #transfer
        }
    }
}

/// `Module::save` and `Module::restore`: the module's hooks if it has them, else JSON when the
/// state type is serializable (chosen at compile time, see `aex_runtime::transfer`).
fn transfer(def: &ModuleDef) -> TokenStream {
    let (Some(save), Some(restore)) = (&def.hooks.save, &def.hooks.restore) else {
        return quote! {
            #[allow(clippy::needless_borrow)]
            fn save(&self) -> ::std::option::Option<::std::result::Result<::std::vec::Vec<u8>, ::std::string::String>> {
                #[allow(unused_imports)]
                use ::aex::__private::{NotTransferable as _, ViaSerde as _};
                (&::aex::__private::Probe::<Self>::new()).snapshot(self)
            }

            #[allow(clippy::needless_borrow)]
            fn restore(&mut self, __aex_state: &[u8]) -> ::std::result::Result<(), ::std::string::String> {
                #[allow(unused_imports)]
                use ::aex::__private::{NotTransferable as _, ViaSerde as _};
                (&::aex::__private::Probe::<Self>::new()).apply(self, __aex_state)
            }
        };
    };
    let (save, restore) = (&save.method, &restore.method);
    let saved = if def.hooks.save.as_ref().is_some_and(|h| h.fallible) {
        quote!(self.#save().map_err(|e| ::std::string::ToString::to_string(&e)))
    } else {
        quote!(::std::result::Result::Ok(self.#save()))
    };
    let restored = if def.hooks.restore.as_ref().is_some_and(|h| h.fallible) {
        quote!(self.#restore(__aex_state).map_err(|e| ::std::string::ToString::to_string(&e)))
    } else {
        quote!({
            self.#restore(__aex_state);
            ::std::result::Result::Ok(())
        })
    };
    quote! {
        fn save(&self) -> ::std::option::Option<::std::result::Result<::std::vec::Vec<u8>, ::std::string::String>> {
            ::std::option::Option::Some(#saved)
        }

        fn restore(&mut self, __aex_state: &[u8]) -> ::std::result::Result<(), ::std::string::String> {
            #restored
        }
    }
}

/// `pub const NAME: ty = ty::new(index, "name");` for each declared name.
fn handles(names: &[Ident], ty: TokenStream, noun: &str) -> Vec<TokenStream> {
    names
        .iter()
        .enumerate()
        .map(|(index, ident)| {
            let konst = Ident::new(&screaming(&ident.unraw().to_string()), ident.span());
            let lit = name(ident);
            let doc = format!("Handle of the {noun} `{}`.", lit.value());
            quote! {
                #[doc = #doc]
                #[allow(dead_code)]
                pub const #konst: #ty = #ty::new(#index, #lit);
            }
        })
        .collect()
}

/// One `match` arm: decode the argument, call the method, encode the result.
fn arm(port: &Port, index: usize) -> TokenStream {
    let kind = match port.kind {
        Kind::Input => quote!(Input),
        Kind::Handler => quote!(Handler),
        Kind::Entry => quote!(Entry),
        Kind::Periodic => quote!(Periodic),
        Kind::Deadline => quote!(Deadline),
    };
    let method = &port.method;
    let mut args = Vec::new();
    if port.takes_ctx {
        args.push(quote!(__aex_ctx));
    }
    let decode = port.arg.as_ref().map(|arg| {
        args.push(quote!(__aex_arg));
        let value = match arg {
            Payload::Slice => quote!(__aex_payload),
            Payload::Bytes => quote!(::std::vec::Vec::from(__aex_payload)),
            Payload::Json(ty) => {
                quote_spanned! {ty.span()=>
                    ::aex::payload::from_json::<#ty>(__aex_payload)
                        .map_err(::aex::PortError::Payload)?
                }
            }
        };
        quote!(let __aex_arg = #value;)
    });
    let call = quote!(self.#method(#(#args),*));
    let encode = match &port.ret {
        Returned::Unit => quote! {
            #call;
            ::std::result::Result::Ok(::std::vec::Vec::new())
        },
        Returned::Value(payload) => {
            let value = encode(payload, quote!(__aex_ret));
            quote! {
                let __aex_ret = #call;
                #value
            }
        }
        Returned::Result(ok) => {
            let value = match ok {
                None => quote!(::std::result::Result::Ok(::std::vec::Vec::new())),
                Some(payload) => encode(payload, quote!(__aex_ret)),
            };
            quote! {
                match #call {
                    ::std::result::Result::Ok(__aex_ret) => #value,
                    ::std::result::Result::Err(e) => {
                        ::std::result::Result::Err(::aex::PortError::Method(
                            ::std::string::ToString::to_string(&e),
                        ))
                    }
                }
            }
        }
    };
    quote! {
        (::aex::PortKind::#kind, #index) => {
            #decode
            #encode
        }
    }
}

fn encode(payload: &Payload, value: TokenStream) -> TokenStream {
    match payload {
        Payload::Slice => quote!(::std::result::Result::Ok(::std::vec::Vec::from(#value))),
        Payload::Bytes => quote!(::std::result::Result::Ok(#value)),
        Payload::Json(ty) => quote_spanned! {ty.span()=>
            ::aex::payload::to_json(&#value).map_err(::aex::PortError::Method)
        },
    }
}

fn name(ident: &Ident) -> LitStr {
    LitStr::new(&ident.unraw().to_string(), ident.span())
}

/// `fan_speed` → `FAN_SPEED`, `fanSpeed` → `FAN_SPEED`.
fn screaming(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_uppercase() && prev_lower {
            out.push('_');
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        out.extend(c.to_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::screaming;

    #[test]
    fn screaming_case() {
        assert_eq!(screaming("ping"), "PING");
        assert_eq!(screaming("fan_speed"), "FAN_SPEED");
        assert_eq!(screaming("fanSpeed"), "FAN_SPEED");
        assert_eq!(screaming("sensor2Value"), "SENSOR2_VALUE");
    }
}
