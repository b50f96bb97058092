//! Accepted modules: what the expansion contains, read back with `syn`.
//!
//! The generated code's behaviour (interfaces, dispatch, state transfer) runs for real in
//! `crates/aex/tests/macro_expansion.rs`; these tests pin the structure the compiler gets,
//! in milliseconds.

use proc_macro2::{TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::{ImplItem, Item, ItemImpl};

use super::markers_left;

/// A module using every attribute kind and every payload and result shape.
fn every_kind() -> (TokenStream, TokenStream) {
    let args = quote!(outputs(alarm, fanSpeed), requests(fetch_config));
    let item = quote! {
        impl Station {
            #[input]
            fn raw(&mut self, _data: &[u8]) {}

            #[input]
            fn reading(&mut self, ctx: &mut Context, r: Reading) {}

            #[input]
            fn checked(&mut self, _data: Vec<u8>) -> Result<(), String> { Ok(()) }

            #[handler]
            fn summary(&mut self) -> Summary { Summary }

            #[handler]
            fn echo(&mut self, data: Vec<u8>) -> Vec<u8> { data }

            #[entry]
            fn reset(&mut self, to: Option<f32>) {}

            #[entry]
            fn r#type(&mut self) -> &'static str { "station" }

            #[periodic]
            fn tick(&mut self) {}

            #[periodic]
            fn report(&mut self, ctx: &mut aex::Context) -> Result<(), String> { Ok(()) }

            #[deadline(input = reading, every = "500ms")]
            fn reading_silent(&mut self, ctx: &mut Context) {}

            #[deadline(input = "raw", every = "1 m")]
            fn raw_silent(&mut self) -> Result<(), std::fmt::Error> { Ok(()) }

            #[save]
            fn snapshot(&self) -> Result<Vec<u8>, String> { Ok(Vec::new()) }

            #[restore]
            fn reload(&mut self, snapshot: &[u8]) {}

            /// Not a port: left alone, attributes included.
            #[inline]
            fn helper(&self) -> f32 { 0.0 }
        }
    };
    (args, item)
}

/// The three items of an expansion: the user's block, the handles, the `Module` impl.
fn expand(args: TokenStream, item: TokenStream) -> [ItemImpl; 3] {
    let tokens = crate::expand_module(args, item).unwrap_or_else(|e| panic!("refused: {e}"));
    let file: syn::File = syn::parse2(tokens).expect("the expansion parses");
    let items: Vec<ItemImpl> = file
        .items
        .into_iter()
        .map(|i| match i {
            Item::Impl(i) => i,
            other => panic!("not an impl block: {}", other.to_token_stream()),
        })
        .collect();
    items
        .try_into()
        .unwrap_or_else(|v: Vec<_>| panic!("{} items", v.len()))
}

fn method<'a>(item: &'a ItemImpl, name: &str) -> &'a syn::ImplItemFn {
    item.items
        .iter()
        .find_map(|i| match i {
            ImplItem::Fn(f) if f.sig.ident == name => Some(f),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no method `{name}`"))
}

/// Every string literal in `tokens`, in order.
fn strings(tokens: TokenStream) -> Vec<String> {
    tokens
        .into_iter()
        .flat_map(|tt| match tt {
            TokenTree::Group(g) => strings(g.stream()),
            TokenTree::Literal(l) => syn::parse2::<syn::LitStr>(TokenTree::Literal(l).into())
                .map(|s| vec![s.value()])
                .unwrap_or_default(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn every_attribute_kind_expands() {
    let (args, item) = every_kind();
    let original: ItemImpl = syn::parse2(item.clone()).unwrap();
    let [user, handles, module] = expand(args, item);

    // The user's block: every method kept, the markers gone, other attributes kept.
    assert_eq!(user.items.len(), original.items.len());
    assert_eq!(markers_left(&user), Vec::<String>::new());
    let helper = method(&user, "helper");
    assert_eq!(helper.attrs.len(), 2, "doc comment and #[inline] stay");

    // One constant per output and request, in SCREAMING_CASE.
    let consts: Vec<String> = handles
        .items
        .iter()
        .map(|i| match i {
            ImplItem::Const(c) => format!("{}: {}", c.ident, c.ty.to_token_stream()),
            other => panic!("not a constant: {}", other.to_token_stream()),
        })
        .collect();
    assert_eq!(
        consts,
        [
            "ALARM: :: aex :: Output",
            "FAN_SPEED: :: aex :: Output",
            "FETCH_CONFIG: :: aex :: Request",
        ]
    );

    // The `Module` implementation.
    assert_eq!(
        module
            .trait_
            .as_ref()
            .unwrap()
            .1
            .to_token_stream()
            .to_string(),
        ":: aex :: Module"
    );
    let fns: Vec<String> = module
        .items
        .iter()
        .filter_map(|i| match i {
            ImplItem::Fn(f) => Some(f.sig.ident.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        fns,
        ["interface", "deadlines", "dispatch", "save", "restore"]
    );

    // The interface lists outputs, inputs, requests, handlers, entries, periodic entries.
    let interface = strings(method(&module, "interface").block.to_token_stream());
    assert_eq!(
        interface,
        [
            "alarm",
            "fanSpeed",
            "raw",
            "reading",
            "checked",
            "fetch_config",
            "summary",
            "echo",
            "reset",
            "type",
            "tick",
            "report",
        ]
    );

    let deadlines = method(&module, "deadlines")
        .block
        .to_token_stream()
        .to_string();
    for expected in [
        "Deadline :: new (\"reading\" , :: std :: time :: Duration :: from_millis (500u64))",
        "Deadline :: new (\"raw\" , :: std :: time :: Duration :: from_millis (60000u64))",
    ] {
        assert!(
            deadlines.contains(expected),
            "{expected} not in {deadlines}"
        );
    }

    // One dispatch arm per port, numbered within its kind, then the refusal.
    let arms = dispatch_arms(&module);
    let expected: Vec<String> = [
        ("Input", 3),
        ("Handler", 2),
        ("Entry", 2),
        ("Periodic", 2),
        ("Deadline", 2),
    ]
    .into_iter()
    .flat_map(|(kind, n)| (0..n).map(move |i| format!(":: aex :: PortKind :: {kind} , {i}usize")))
    .chain(["kind , index".to_owned()])
    .collect();
    assert_eq!(arms, expected);

    // The hooks do the state transfer; the fallible one's error becomes the message.
    let save = method(&module, "save").block.to_token_stream().to_string();
    assert!(save.contains("self . snapshot ()"), "{save}");
    assert!(save.contains("map_err"), "{save}");
    let restore = method(&module, "restore")
        .block
        .to_token_stream()
        .to_string();
    assert!(restore.contains("self . reload (__aex_state)"), "{restore}");
    assert!(!restore.contains("map_err"), "{restore}");
}

/// The patterns of `dispatch`'s `match`, as text.
fn dispatch_arms(module: &ItemImpl) -> Vec<String> {
    let body = &method(module, "dispatch").block;
    let Some(syn::Stmt::Expr(syn::Expr::Match(m), None)) = body.stmts.last() else {
        panic!("dispatch is not a match: {}", body.to_token_stream());
    };
    m.arms
        .iter()
        .map(|arm| match &arm.pat {
            syn::Pat::Tuple(t) => t.elems.to_token_stream().to_string(),
            other => panic!("arm pattern {}", other.to_token_stream()),
        })
        .collect()
}

/// Each payload and result shape gets its own conversion.
#[test]
fn payloads_decode_and_results_encode_by_shape() {
    let (args, item) = every_kind();
    let [_, _, module] = expand(args, item);
    let dispatch = method(&module, "dispatch")
        .block
        .to_token_stream()
        .to_string();
    for expected in [
        // `&[u8]` is the payload itself, `Vec<u8>` a copy, anything else JSON.
        "let __aex_arg = __aex_payload ;",
        "let __aex_arg = :: std :: vec :: Vec :: from (__aex_payload) ;",
        ":: aex :: payload :: from_json :: < Reading > (__aex_payload)",
        ":: aex :: payload :: from_json :: < Option < f32 > > (__aex_payload)",
        // `Context` is passed through, never decoded.
        "self . reading (__aex_ctx , __aex_arg)",
        "self . report (__aex_ctx)",
        // Results: JSON for a type, raw for bytes, `Display` for an error.
        ":: aex :: payload :: to_json (& __aex_ret)",
        "self . echo (__aex_arg) ; :: std :: result :: Result :: Ok (__aex_ret)",
        ":: std :: string :: ToString :: to_string (& e)",
    ] {
        assert!(
            dispatch.contains(expected),
            "`{expected}` not in:\n{dispatch}"
        );
    }
}

/// Without hooks the state transfer is chosen at compile time (serde or nothing); a module
/// with no deadline keeps the trait's default `deadlines`.
#[test]
fn smallest_module_uses_the_automatic_transfer() {
    let [user, handles, module] = expand(TokenStream::new(), quote!(impl Empty {}));
    assert!(user.items.is_empty() && handles.items.is_empty());
    let fns: Vec<String> = module
        .items
        .iter()
        .filter_map(|i| match i {
            ImplItem::Fn(f) => Some(f.sig.ident.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(fns, ["interface", "dispatch", "save", "restore"]);
    let save = method(&module, "save").block.to_token_stream().to_string();
    assert!(
        save.contains(":: aex :: __private :: Probe :: < Self >"),
        "{save}"
    );
    assert_eq!(dispatch_arms(&module), ["kind , index"]);
}

/// Generics and where clauses of the user's block carry over to the generated blocks.
#[test]
fn generic_state_keeps_its_bounds() {
    let item = quote!(
        impl<'a, T: Clone> Cell<'a, T>
        where
            T: Send,
        {
            #[entry]
            fn get(&mut self) {}
        }
    );
    let original: ItemImpl = syn::parse2(item.clone()).unwrap();
    let text = |t: &dyn ToTokens| t.to_token_stream().to_string();
    let [_, handles, module] = expand(quote!(outputs(out)), item);
    for block in [&handles, &module] {
        assert_eq!(text(&block.generics), "< 'a , T : Clone >");
        assert_eq!(
            text(&block.generics.where_clause),
            text(&original.generics.where_clause)
        );
        assert!(text(&block.generics.where_clause).starts_with("where T : Send"));
        assert_eq!(text(&block.self_ty), "Cell < 'a , T >");
    }
}
