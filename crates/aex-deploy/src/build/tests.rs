use super::*;

#[test]
fn the_toolchain_is_the_compiler_s_own_line() {
    let line = toolchain(Path::new(env!("CARGO_MANIFEST_DIR"))).expect("rustc answers");
    assert!(line.starts_with("rustc 1."), "{line}");
    assert!(!line.contains('\n'), "{line}");
    // A directory that does not exist: rustc cannot start there.
    assert_eq!(toolchain(Path::new("/nonexistent/aex/crate")), None);
}

/// Writes a crate named `name` (a binary that does nothing) in `dir`, with `package_extra`
/// appended to its `[package]` table's manifest.
fn tiny_crate(dir: &Path, name: &str, package_extra: &str) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!("[package]\nname = \"{name}\"\nedition = \"2021\"\n{package_extra}"),
    )
    .unwrap();
    std::fs::write(dir.join("src/main.rs"), "fn main() {}\n").unwrap();
}

#[test]
fn a_crate_reached_through_a_symbolic_link_builds_where_it_really_is() {
    let root = tempfile::tempdir().unwrap();
    // A crate of a workspace that it inherits from (found from the crate's real place
    // only), and a crate of its own workspace; each reached through a link elsewhere.
    let ws = root.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(
        ws.join("Cargo.toml"),
        "[workspace]\nmembers = [\"member\"]\nresolver = \"2\"\n\n[workspace.package]\nversion = \"0.1.0\"\n",
    )
    .unwrap();
    tiny_crate(&ws.join("member"), "member", "version.workspace = true\n");
    tiny_crate(
        &root.path().join("solo"),
        "solo",
        "version = \"0.1.0\"\n[workspace]\n",
    );
    let app = root.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::os::unix::fs::symlink(ws.join("member"), app.join("member")).unwrap();
    std::os::unix::fs::symlink(root.path().join("solo"), app.join("solo")).unwrap();
    let target = root.path().join("target");
    for link in ["member", "solo"] {
        let exes = cargo_build(&[&app.join(link)], Profile::Dev, Some(&target), false)
            .unwrap_or_else(|e| panic!("{link}: {e}"));
        assert!(exes[0].ends_with(link) && exes[0].is_file(), "{exes:?}");
    }
    // A link to nowhere is an error about the path, not a build error.
    std::os::unix::fs::symlink(root.path().join("gone"), app.join("gone")).unwrap();
    let e = cargo_build(&[&app.join("gone")], Profile::Dev, Some(&target), false).unwrap_err();
    assert!(
        matches!(e, BuildError::CrateDir { .. }) && e.to_string().contains("app/gone"),
        "{e}"
    );
}

#[test]
fn without_the_c_abi_crate_the_error_says_where_it_looked_and_what_to_set() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("no-aex-c");
    let e = c::Kit::prepare_from(missing, Profile::Dev, None, false).unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(e, BuildError::CAbi { .. })
            && text.contains("no-aex-c")
            && text.contains("AEX_C_DIR"),
        "{text}"
    );
}
