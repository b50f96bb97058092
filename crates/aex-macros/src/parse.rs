//! Reads `#[aex::module(..)]` and its `impl` block into a [`ModuleDef`], refusing every shape
//! the generated code could not call correctly (including a deadline on an input the block
//! does not declare, or a duration that does not parse).
//!
//! Payload and result types are classified from their syntax, since a macro cannot see trait
//! implementations: `&[u8]` and `Vec<u8>` are raw bytes, `()` or nothing is empty,
//! `Result<T, E>` is `T` or a failure carrying `E`'s `Display`, and any other type is JSON.

use std::collections::HashMap;
use std::time::Duration;

use proc_macro2::TokenStream;
use syn::ext::IdentExt;
use syn::{FnArg, GenericArgument, Ident, ImplItem, ItemImpl, PathArguments, ReturnType, Type};

/// Everything the expansion needs.
pub(crate) struct ModuleDef {
    pub(crate) item: ItemImpl,
    pub(crate) outputs: Vec<Ident>,
    pub(crate) requests: Vec<Ident>,
    pub(crate) ports: Vec<Port>,
    pub(crate) hooks: crate::hooks::Hooks,
    /// `persistent`: the module seals its state across restarts; where it was written.
    pub(crate) persistent: Option<Ident>,
    /// `persistent(signer)`: its sealing key is its signer's, not its code's.
    pub(crate) seal_by_signer: bool,
}

/// The kinds of port implemented by methods.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Input,
    Handler,
    Entry,
    /// `#[periodic]`: an entry the node may trigger, without payload.
    Periodic,
    /// `#[deadline(..)]`: called by the runtime when an input stays silent.
    Deadline,
}

impl Kind {
    fn from_attr(attr: &syn::Attribute) -> Option<Kind> {
        let path = attr.path();
        if path.is_ident("input") {
            Some(Kind::Input)
        } else if path.is_ident("handler") {
            Some(Kind::Handler)
        } else if path.is_ident("entry") {
            Some(Kind::Entry)
        } else if path.is_ident("periodic") {
            Some(Kind::Periodic)
        } else if path.is_ident("deadline") {
            Some(Kind::Deadline)
        } else {
            None
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Input => "an input",
            Kind::Handler => "a handler",
            Kind::Entry => "an entry point",
            Kind::Periodic => "a periodic entry point",
            Kind::Deadline => "a deadline handler",
        }
    }

    /// Periodic entries and deadline handlers are called with no payload, by no one who waits
    /// for a result.
    fn is_trigger(self) -> bool {
        matches!(self, Kind::Periodic | Kind::Deadline)
    }
}

/// `#[deadline(input = reading, every = "2s")]`.
pub(crate) struct DeadlineAttr {
    /// The watched input, as written (checked against the `#[input]` methods).
    pub(crate) input: Ident,
    /// The longest silence tolerated.
    pub(crate) every: Duration,
}

/// The shortest period of a deadline, as of a periodic trigger.
const MIN_PERIOD: Duration = Duration::from_millis(10);

/// One port method.
pub(crate) struct Port {
    pub(crate) kind: Kind,
    pub(crate) method: Ident,
    pub(crate) takes_ctx: bool,
    pub(crate) arg: Option<Payload>,
    pub(crate) ret: Returned,
    /// For [`Kind::Deadline`]: what it watches.
    pub(crate) deadline: Option<DeadlineAttr>,
}

/// How an argument is decoded or a result encoded.
pub(crate) enum Payload {
    /// `&[u8]`
    Slice,
    /// `Vec<u8>`
    Bytes,
    /// Any other type, as JSON.
    Json(Box<Type>),
}

/// What a port method returns.
pub(crate) enum Returned {
    Unit,
    Value(Payload),
    /// `Result<T, E>`: `T` as given (`None` for `()`), `E` shown with `Display`.
    Result(Option<Payload>),
}

/// Parses the attribute arguments and the item.
pub(crate) fn parse(args: TokenStream, item: TokenStream) -> syn::Result<ModuleDef> {
    let Args {
        outputs,
        requests,
        persistent,
        seal_by_signer,
    } = parse_args(args)?;
    let mut item: ItemImpl = syn::parse2(item).map_err(|e| {
        syn::Error::new(
            e.span(),
            "#[aex::module] goes on the inherent `impl` block of the module's state struct",
        )
    })?;
    if let Some((_, path, _)) = &item.trait_ {
        return Err(syn::Error::new_spanned(
            path,
            "#[aex::module] goes on an inherent `impl` block, not a trait implementation",
        ));
    }
    let mut names = Names::default();
    for name in &outputs {
        names.add(name, "an output")?;
    }
    for name in &requests {
        names.add(name, "a request")?;
    }
    let hooks = crate::hooks::take(&mut item)?;
    let mut ports = Vec::new();
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else {
            continue;
        };
        let mut kind = None;
        let mut deadline = None;
        for attr in &method.attrs {
            let Some(k) = Kind::from_attr(attr) else {
                continue;
            };
            if k == Kind::Deadline {
                deadline = Some(parse_deadline(attr)?);
            } else if !matches!(attr.meta, syn::Meta::Path(_)) {
                return Err(syn::Error::new_spanned(
                    attr,
                    "port attributes take no arguments (only `#[deadline(..)]` does)",
                ));
            }
            if kind.replace(k).is_some() {
                return Err(syn::Error::new_spanned(
                    attr,
                    "a method is at most one of `#[input]`, `#[handler]`, `#[entry]`, \
                     `#[periodic]` or `#[deadline(..)]`",
                ));
            }
        }
        method.attrs.retain(|a| Kind::from_attr(a).is_none());
        if let Some(kind) = kind {
            names.add(&method.sig.ident, kind.noun())?;
            let mut port = parse_port(kind, &method.sig)?;
            port.deadline = deadline;
            ports.push(port);
        }
    }
    check_deadlines(&ports)?;
    Ok(ModuleDef {
        item,
        outputs,
        requests,
        ports,
        hooks,
        persistent,
        seal_by_signer,
    })
}

/// Removes the marker attributes, so an item can be re-emitted after an error.
pub(crate) fn strip_markers(item: &mut ItemImpl) {
    for impl_item in &mut item.items {
        if let ImplItem::Fn(method) = impl_item {
            method.attrs.retain(|a| Kind::from_attr(a).is_none());
        }
    }
}

/// The attribute's arguments.
struct Args {
    outputs: Vec<Ident>,
    requests: Vec<Ident>,
    persistent: Option<Ident>,
    seal_by_signer: bool,
}

fn parse_args(args: TokenStream) -> syn::Result<Args> {
    let mut outputs = Vec::new();
    let mut requests = Vec::new();
    let mut persistent = None;
    let mut seal_by_signer = false;
    let parser = syn::meta::parser(|meta| {
        let list = if meta.path.is_ident("outputs") {
            &mut outputs
        } else if meta.path.is_ident("requests") {
            &mut requests
        } else if meta.path.is_ident("persistent") {
            persistent = meta.path.get_ident().cloned();
            if meta.input.is_empty() || meta.input.peek(syn::Token![,]) {
                return Ok(());
            }
            // `persistent(signer)`: the one policy besides the default.
            return meta.parse_nested_meta(|policy| {
                if policy.path.is_ident("signer") && !seal_by_signer {
                    seal_by_signer = true;
                    Ok(())
                } else {
                    Err(policy.error(
                        "expected `signer`: `persistent(signer)` seals by the module's signer \
                         (an update reads its predecessor's sealed state); plain `persistent` \
                         seals by its code",
                    ))
                }
            });
        } else {
            return Err(meta.error(
                "unknown argument; expected `outputs(..)`, `requests(..)` or `persistent`",
            ));
        };
        meta.parse_nested_meta(|name| match name.path.get_ident() {
            Some(ident) if name.input.is_empty() || name.input.peek(syn::Token![,]) => {
                list.push(ident.clone());
                Ok(())
            }
            _ => Err(name.error("expected a port name, such as `outputs(temperature)`")),
        })
    });
    syn::parse::Parser::parse2(parser, args)?;
    Ok(Args {
        outputs,
        requests,
        persistent,
        seal_by_signer,
    })
}

fn parse_port(kind: Kind, sig: &syn::Signature) -> syn::Result<Port> {
    if let Some(asyncness) = &sig.asyncness {
        return Err(syn::Error::new_spanned(
            asyncness,
            "port methods cannot be `async`",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            "port methods cannot be generic",
        ));
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_some() => {}
        other => {
            let msg = "port methods take `&mut self` first";
            return Err(match other {
                Some(arg) => syn::Error::new_spanned(arg, msg),
                None => syn::Error::new_spanned(&sig.ident, msg),
            });
        }
    }
    let mut takes_ctx = false;
    let mut arg = None;
    for input in inputs {
        let FnArg::Typed(typed) = input else {
            continue;
        };
        if arg.is_some() {
            return Err(syn::Error::new_spanned(
                typed,
                "port methods take at most `&mut self`, `ctx: &mut Context` and one payload",
            ));
        }
        if is_context(&typed.ty) {
            if takes_ctx {
                return Err(syn::Error::new_spanned(typed, "`Context` is taken once"));
            }
            takes_ctx = true;
        } else {
            arg = Some(payload(&typed.ty)?);
        }
    }
    let ret = returned(&sig.output)?;
    if kind.is_trigger() {
        let what = if kind == Kind::Periodic {
            "periodic entry points"
        } else {
            "deadline handlers"
        };
        if let Some(FnArg::Typed(typed)) = sig
            .inputs
            .iter()
            .find(|a| matches!(a, FnArg::Typed(t) if !is_context(&t.ty)))
        {
            return Err(syn::Error::new_spanned(
                typed,
                format!(
                    "{what} take no payload: they are called with nothing but \
                     `&mut self` and optionally `ctx: &mut Context`"
                ),
            ));
        }
        if matches!(ret, Returned::Value(_) | Returned::Result(Some(_))) {
            return Err(syn::Error::new_spanned(
                &sig.output,
                format!(
                    "{what} return nothing (or `Result<(), E>`): nobody receives a result; \
                     use `ctx.emit` to send an event"
                ),
            ));
        }
    }
    if kind == Kind::Input && matches!(ret, Returned::Value(_) | Returned::Result(Some(_))) {
        return Err(syn::Error::new_spanned(
            &sig.output,
            "inputs return nothing (or `Result<(), E>`): an event has no reply; \
             use `ctx.emit` to send one, or make this a `#[handler]`",
        ));
    }
    Ok(Port {
        kind,
        method: sig.ident.clone(),
        takes_ctx,
        arg,
        ret,
        deadline: None,
    })
}

const DEADLINE_FORM: &str =
    "write `#[deadline(input = <an #[input] method>, every = \"<duration>\")]`, \
     e.g. `#[deadline(input = reading, every = \"2s\")]`";

fn parse_deadline(attr: &syn::Attribute) -> syn::Result<DeadlineAttr> {
    if !matches!(attr.meta, syn::Meta::List(_)) {
        return Err(syn::Error::new_spanned(attr, DEADLINE_FORM));
    }
    let mut input = None;
    let mut every = None;
    attr.parse_nested_meta(|meta| {
        if meta.path.is_ident("input") {
            let value = meta.value()?;
            let ident = if value.peek(syn::LitStr) {
                let lit: syn::LitStr = value.parse()?;
                lit.parse::<Ident>()
                    .map_err(|_| syn::Error::new(lit.span(), "expected an input's name"))?
            } else {
                value.call(Ident::parse_any)?
            };
            input = Some(ident);
            Ok(())
        } else if meta.path.is_ident("every") {
            let lit: syn::LitStr = meta.value()?.parse()?;
            let period = parse_duration(&lit.value())
                .map_err(|problem| syn::Error::new(lit.span(), problem))?;
            if period < MIN_PERIOD {
                return Err(syn::Error::new(
                    lit.span(),
                    format!(
                        "a deadline of {} ms is too short: the shortest is {} ms",
                        period.as_millis(),
                        MIN_PERIOD.as_millis()
                    ),
                ));
            }
            every = Some(period);
            Ok(())
        } else {
            Err(meta.error(format!("unknown argument; {DEADLINE_FORM}")))
        }
    })?;
    match (input, every) {
        (Some(input), Some(every)) => Ok(DeadlineAttr { input, every }),
        (None, _) => Err(syn::Error::new_spanned(
            attr,
            format!("missing `input = ..`; {DEADLINE_FORM}"),
        )),
        (_, None) => Err(syn::Error::new_spanned(
            attr,
            format!("missing `every = \"..\"`; {DEADLINE_FORM}"),
        )),
    }
}

/// Each deadline watches an `#[input]` of this block, and each input has at most one.
fn check_deadlines(ports: &[Port]) -> syn::Result<()> {
    let inputs: Vec<String> = ports
        .iter()
        .filter(|p| p.kind == Kind::Input)
        .map(|p| p.method.unraw().to_string())
        .collect();
    let mut watched = HashMap::new();
    for port in ports {
        let Some(deadline) = &port.deadline else {
            continue;
        };
        let name = deadline.input.unraw().to_string();
        if !inputs.contains(&name) {
            let list = if inputs.is_empty() {
                "this module declares none".to_owned()
            } else {
                format!("inputs: {}", inputs.join(", "))
            };
            return Err(syn::Error::new(
                deadline.input.span(),
                format!("no `#[input]` method `{name}` to watch ({list})"),
            ));
        }
        if let Some(first) = watched.insert(name.clone(), &port.method) {
            return Err(syn::Error::new(
                deadline.input.span(),
                format!("input `{name}` already has a deadline, handled by `{first}`"),
            ));
        }
    }
    Ok(())
}

/// A whole number and a unit: `500ms`, `5s`, `1m`, `1h` (spaces allowed between them).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let problem = || {
        format!(
            "invalid duration `{text}`: write a whole number and a unit, \
             e.g. `500ms`, `5s`, `1m` or `1h`"
        )
    };
    let n: u64 = number.parse().map_err(|_| problem())?;
    let scale = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => return Err(problem()),
    };
    n.checked_mul(scale)
        .map(Duration::from_millis)
        .ok_or_else(problem)
}

/// `&mut Context`, whatever path leads to `Context`.
fn is_context(ty: &Type) -> bool {
    let Type::Reference(r) = ty else {
        return false;
    };
    r.mutability.is_some() && last_ident(&r.elem).is_some_and(|(i, _)| i == "Context")
}

fn payload(ty: &Type) -> syn::Result<Payload> {
    match ty {
        Type::Reference(r) if r.mutability.is_none() && is_u8_slice(&r.elem) => Ok(Payload::Slice),
        Type::Reference(_) => Err(syn::Error::new_spanned(
            ty,
            "payload parameters are `&[u8]`, `Vec<u8>`, or an owned type that implements \
             `serde::Deserialize` (decoded from JSON)",
        )),
        _ if is_vec_u8(ty) => Ok(Payload::Bytes),
        _ => Ok(Payload::Json(Box::new(ty.clone()))),
    }
}

fn returned(output: &ReturnType) -> syn::Result<Returned> {
    let ty = match output {
        ReturnType::Default => return Ok(Returned::Unit),
        ReturnType::Type(_, ty) => &**ty,
    };
    if is_unit(ty) {
        return Ok(Returned::Unit);
    }
    if let Some((ident, PathArguments::AngleBracketed(args))) = last_ident(ty) {
        if ident == "Result" {
            if let Some(GenericArgument::Type(ok)) = args.args.first() {
                let ok = if is_unit(ok) { None } else { Some(result(ok)) };
                return Ok(Returned::Result(ok));
            }
        }
    }
    Ok(Returned::Value(result(ty)))
}

/// Results may borrow: any reference that is not `&[u8]` is serialized as JSON.
fn result(ty: &Type) -> Payload {
    match ty {
        Type::Reference(r) if r.mutability.is_none() && is_u8_slice(&r.elem) => Payload::Slice,
        _ if is_vec_u8(ty) => Payload::Bytes,
        _ => Payload::Json(Box::new(ty.clone())),
    }
}

fn last_ident(ty: &Type) -> Option<(&Ident, &PathArguments)> {
    match ty {
        Type::Path(p) if p.qself.is_none() => {
            p.path.segments.last().map(|s| (&s.ident, &s.arguments))
        }
        _ => None,
    }
}

fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
}

fn is_u8(ty: &Type) -> bool {
    matches!(last_ident(ty), Some((i, PathArguments::None)) if i == "u8")
}

fn is_u8_slice(ty: &Type) -> bool {
    matches!(ty, Type::Slice(s) if is_u8(&s.elem))
}

fn is_vec_u8(ty: &Type) -> bool {
    match last_ident(ty) {
        Some((i, PathArguments::AngleBracketed(args))) if i == "Vec" => {
            matches!(args.args.first(), Some(GenericArgument::Type(t)) if is_u8(t))
                && args.args.len() == 1
        }
        _ => false,
    }
}

/// Port names are unique across all kinds, so a descriptor's `module.name` is unambiguous.
#[derive(Default)]
struct Names(HashMap<String, &'static str>);

impl Names {
    fn add(&mut self, ident: &Ident, noun: &'static str) -> syn::Result<()> {
        let name = ident.unraw().to_string();
        match self.0.insert(name.clone(), noun) {
            None => Ok(()),
            Some(prev) => Err(syn::Error::new(
                ident.span(),
                format!("duplicate port name `{name}`: already declared as {prev}"),
            )),
        }
    }
}
