//! `include/aex.h` is what C modules compile against: it must say exactly what this crate
//! exports. These tests regenerate it with cbindgen and compare (set `AEX_BLESS=1` to write
//! the new header instead), and hold the crate's own lint table to the workspace's.

use std::path::Path;

#[test]
fn the_checked_in_header_is_what_cbindgen_generates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen cannot read the crate")
        .write(&mut generated);
    let generated = String::from_utf8(generated).unwrap();
    let path = dir.join("include/aex.h");
    if std::env::var_os("AEX_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "include/aex.h differs from what cbindgen generates from the crate: run \
         `AEX_BLESS=1 cargo test -p aex-c --test header` and commit the header"
    );
}

#[test]
fn the_lint_table_is_the_workspaces_but_for_unsafe_code() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read =
        |p: &Path| -> toml::Table { toml::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    let workspace = read(&dir.join("../../Cargo.toml"));
    let own = read(&dir.join("Cargo.toml"));
    let mut expected = workspace["workspace"]["lints"].as_table().unwrap().clone();
    let mut lints = own["lints"].as_table().unwrap().clone();
    assert_eq!(
        expected["rust"]["unsafe_code"].as_str(),
        Some("forbid"),
        "the workspace no longer forbids unsafe code: revisit aex-c's lint table"
    );
    assert_eq!(lints["rust"]["unsafe_code"].as_str(), Some("deny"));
    for table in [&mut expected, &mut lints] {
        table["rust"].as_table_mut().unwrap().remove("unsafe_code");
    }
    assert_eq!(
        lints, expected,
        "crates/aex-c/Cargo.toml's [lints] must be the workspace's, with unsafe_code = \"deny\""
    );
}
