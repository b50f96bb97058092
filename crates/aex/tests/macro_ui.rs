//! Compile-pass and compile-fail cases of `#[aex::module]`. The `.stderr` files are pinned to
//! the workspace toolchain; regenerate with `TRYBUILD=overwrite cargo test -p aex`.

#[test]
fn macro_ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
