//! `#[save]` and `#[restore]`: a module's own state-transfer hooks (`aex update`).
//!
//! Without them the generated code transfers the state as JSON when its type is `Serialize`
//! and `Deserialize` (see `aex_runtime::transfer`). Hooks are for state that is not, or whose
//! snapshot must change shape between versions. They come as a pair: a module that can save
//! but not restore (or the reverse) would lose its state on the first update.

use syn::{FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, ReturnType, Type};

/// The hook methods found in the `impl` block.
#[derive(Default)]
pub(crate) struct Hooks {
    /// `#[save] fn ..(&self) -> Vec<u8>` or `-> Result<Vec<u8>, E>`.
    pub(crate) save: Option<Hook>,
    /// `#[restore] fn ..(&mut self, &[u8])` returning `()` or `Result<(), E>`.
    pub(crate) restore: Option<Hook>,
}

/// One hook method.
pub(crate) struct Hook {
    pub(crate) method: Ident,
    /// Whether it returns a `Result` (whose error is shown with `Display`).
    pub(crate) fallible: bool,
}

fn is_hook(attr: &syn::Attribute) -> bool {
    attr.path().is_ident("save") || attr.path().is_ident("restore")
}

/// Finds the hooks and removes their marker attributes.
pub(crate) fn take(item: &mut ItemImpl) -> syn::Result<Hooks> {
    let mut hooks = Hooks::default();
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else {
            continue;
        };
        for attr in method.attrs.iter().filter(|a| is_hook(a)) {
            if !matches!(attr.meta, syn::Meta::Path(_)) {
                return Err(syn::Error::new_spanned(
                    attr,
                    "hook attributes take no arguments",
                ));
            }
            let save = attr.path().is_ident("save");
            let slot = if save {
                &mut hooks.save
            } else {
                &mut hooks.restore
            };
            if slot.is_some() {
                return Err(syn::Error::new_spanned(
                    attr,
                    format!(
                        "a module has one `#[{}]` method",
                        if save { "save" } else { "restore" }
                    ),
                ));
            }
            *slot = Some(if save {
                save_hook(method)?
            } else {
                restore_hook(method)?
            });
        }
        method.attrs.retain(|a| !is_hook(a));
    }
    match (&hooks.save, &hooks.restore) {
        (Some(h), None) => Err(syn::Error::new(
            h.method.span(),
            "a `#[save]` method needs a `#[restore]` method to read what it saves",
        )),
        (None, Some(h)) => Err(syn::Error::new(
            h.method.span(),
            "a `#[restore]` method needs a `#[save]` method to write what it reads",
        )),
        _ => Ok(hooks),
    }
}

/// Removes the hook markers, so an item can be re-emitted after an error.
pub(crate) fn strip(item: &mut ItemImpl) {
    for impl_item in &mut item.items {
        if let ImplItem::Fn(method) = impl_item {
            method.attrs.retain(|a| !is_hook(a));
        }
    }
}

fn save_hook(method: &ImplItemFn) -> syn::Result<Hook> {
    let sig = &method.sig;
    let shape = "a `#[save]` method is `fn(&self) -> Vec<u8>` or `fn(&self) -> Result<Vec<u8>, E>`";
    let receiver_ok = matches!(
        sig.inputs.first(),
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none()
    );
    if !receiver_ok || sig.inputs.len() != 1 || !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(sig, shape));
    }
    let fallible = match &sig.output {
        ReturnType::Type(_, ty) if is_named(ty, "Vec") => false,
        ReturnType::Type(_, ty) if is_named(ty, "Result") => true,
        _ => return Err(syn::Error::new_spanned(&sig.output, shape)),
    };
    Ok(Hook {
        method: sig.ident.clone(),
        fallible,
    })
}

fn restore_hook(method: &ImplItemFn) -> syn::Result<Hook> {
    let sig = &method.sig;
    let shape = "a `#[restore]` method is `fn(&mut self, snapshot: &[u8])`, returning nothing \
                 or `Result<(), E>`";
    let receiver_ok = matches!(
        sig.inputs.first(),
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_some()
    );
    let arg_ok = matches!(
        sig.inputs.iter().nth(1),
        Some(FnArg::Typed(t)) if matches!(&*t.ty, Type::Reference(r) if r.mutability.is_none())
    );
    if !receiver_ok || !arg_ok || sig.inputs.len() != 2 || !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(sig, shape));
    }
    let fallible = match &sig.output {
        ReturnType::Default => false,
        ReturnType::Type(_, ty) if is_named(ty, "Result") => true,
        ReturnType::Type(_, ty) if matches!(&**ty, Type::Tuple(t) if t.elems.is_empty()) => false,
        _ => return Err(syn::Error::new_spanned(&sig.output, shape)),
    };
    Ok(Hook {
        method: sig.ident.clone(),
        fallible,
    })
}

fn is_named(ty: &Type, name: &str) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none()
        && p.path.segments.last().is_some_and(|s| s.ident == name))
}
