//! Compile-pass and compile-fail cases of `#[aex::module]`, through a real compiler: the
//! errors reach the user exactly as the `.stderr` files show. The `.stderr` files are pinned
//! to the workspace toolchain; regenerate with
//! `TRYBUILD=overwrite cargo test -p aex --test macro_ui -- --ignored`.
//!
//! The fast suite checks the same cases without a compiler: the unit tests of `aex-macros`
//! (`src/tests/ui_cases.rs`) read these files and compare each message, and
//! `tests/macro_expansion.rs` runs what the macro generates.

#[test]
#[ignore = "long: compiles the SDK in its own target directory (about 35 s); the long CI step runs it"]
fn macro_ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
