//! The deployer's build of C modules (`c = "dir"`), with the system's C compiler and the
//! runtime's C ABI (`libaex_c.a`): the same sources measure the same wherever they are, only
//! what changed is compiled again, compiler errors name their file and line, a port function
//! of the wrong shape does not compile, and a bad port table is reported when the module is
//! built, from the binary's own check.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use aex_deploy::build::{BuildError, Builder, Built, Profile};

/// A module whose code is spread over two files and a header of its own.
const MAIN: &str = r#"#include "aex.h"
#include "helper.h"

static const aex_output OUT = {"out"};

static int in(void *s, aex_ctx *ctx, const uint8_t *data, size_t len) {
    (void)s;
    return aex_emit(ctx, &OUT, data, len) == AEX_OK ? 0 : 1;
}

static int answer(void *s, aex_ctx *ctx, const uint8_t *arg, size_t len, aex_buf *reply) {
    (void)s, (void)arg;
    /* The file's name is in the binary: where the module is must not be. */
    if (len > 200) {
        aex_fail(ctx, __FILE__);
        return 1;
    }
    uint8_t v = (uint8_t)helper((int)len);
    return aex_buf_write(reply, &v, 1) == AEX_OK ? 0 : 1;
}

static const aex_output *const OUTPUTS[] = {&OUT};
static const aex_input INPUTS[] = {{"in", in}};
static const aex_handler HANDLERS[] = {{"answer", answer}};
static const aex_module MODULE = {
    .outputs = OUTPUTS, .n_outputs = AEX_LEN(OUTPUTS),
    .inputs = INPUTS, .n_inputs = AEX_LEN(INPUTS),
    .handlers = HANDLERS, .n_handlers = AEX_LEN(HANDLERS),
};
AEX_MAIN(MODULE)
"#;

const HELPER_C: &str = "#include \"helper.h\"\nint helper(int x) { return x + OFFSET; }\n";
const HELPER_H: &str = "#define OFFSET 1\nint helper(int x);\n";

fn write_module(dir: &Path, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

/// A builder as the test kit's: dev profile, the library's dependencies as the workspace's
/// tests built them.
fn builder() -> Builder {
    Builder::new(Profile::Dev).whole_workspace_features()
}

/// Builds the C module in `dir`, and removes its build directory (under the workspace's
/// `target/`, keyed by the module's path, which is a temporary directory here) when the test
/// ends.
fn build(dir: &Path) -> Result<Built, BuildError> {
    let built = builder().build_c(dir);
    let binary = match &built {
        Ok(built) => Some(&built.binary),
        Err(BuildError::Describe { path, .. }) => Some(path),
        Err(_) => None,
    };
    if let Some(out) = binary.and_then(|b| b.parent()) {
        CLEANUP.with(|c| c.borrow_mut().push(out.to_path_buf()));
    }
    built
}

/// The build directories a test made, removed when its thread ends.
struct Cleanup(Vec<PathBuf>);

impl Cleanup {
    fn push(&mut self, dir: PathBuf) {
        self.0.push(dir);
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for dir in &self.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

thread_local! {
    static CLEANUP: std::cell::RefCell<Cleanup> = const { std::cell::RefCell::new(Cleanup(Vec::new())) };
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

fn object(built: &Built, source: &str) -> PathBuf {
    built.binary.parent().unwrap().join(format!("{source}.o"))
}

#[test]
fn the_same_sources_measure_the_same_wherever_they_are_and_only_what_changed_is_compiled() {
    let root = tempfile::tempdir().unwrap();
    let files = [
        ("main.c", MAIN),
        ("helper.c", HELPER_C),
        ("helper.h", HELPER_H),
    ];
    let (a, b) = (
        root.path().join("a/mod"),
        root.path().join("elsewhere/b/mod"),
    );
    write_module(&a, &files);
    write_module(&b, &files);
    let built_a = build(&a).unwrap_or_else(|e| panic!("{e}"));
    let built_b = build(&b).unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(built_a.binary, built_b.binary, "two build directories");
    assert_eq!(
        built_a.measurement, built_b.measurement,
        "same sources, same bytes"
    );
    assert_eq!(built_a.interface.inputs, ["in"]);
    assert_eq!(built_a.interface.outputs, ["out"]);
    assert_eq!(built_a.interface.handlers, ["answer"]);
    let toolchain = built_a.toolchain.clone().unwrap_or_default();
    assert!(toolchain.contains("rustc 1."), "{toolchain}");

    // Nothing changed: nothing is compiled or linked again.
    let (main_o, helper_o) = (object(&built_a, "main.c"), object(&built_a, "helper.c"));
    let times = |b: &Built| {
        (
            modified(&object(b, "main.c")),
            modified(&object(b, "helper.c")),
            modified(&b.binary),
        )
    };
    let first = times(&built_a);
    let again = build(&a).unwrap();
    assert_eq!(times(&again), first);
    assert_eq!(again.measurement, built_a.measurement);

    // One file changed: only it is compiled again, and the binary relinked.
    std::fs::write(
        a.join("helper.c"),
        HELPER_C.replace("x + OFFSET", "x + OFFSET + 1"),
    )
    .unwrap();
    let changed = build(&a).unwrap();
    assert_eq!(modified(&main_o), first.0, "main.c did not change");
    assert_ne!(modified(&helper_o), first.1, "helper.c changed");
    assert_ne!(changed.measurement, built_a.measurement);

    // A header of the directory changed: every file is compiled again.
    let before = (modified(&main_o), modified(&helper_o));
    std::fs::write(a.join("helper.h"), HELPER_H.replace("OFFSET 1", "OFFSET 2")).unwrap();
    build(&a).unwrap();
    assert_ne!(modified(&main_o), before.0);
    assert_ne!(modified(&helper_o), before.1);
}

#[test]
fn a_compile_error_names_its_file_and_line_as_the_descriptor_reaches_it() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("app/broken");
    let bad = MAIN.replace("return aex_emit(ctx", "return aex_emit(ctx, undeclared");
    write_module(
        &dir,
        &[
            ("main.c", &bad),
            ("helper.c", HELPER_C),
            ("helper.h", HELPER_H),
        ],
    );
    let line = bad.lines().position(|l| l.contains("undeclared")).unwrap() + 1;
    let e = build(&dir).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, BuildError::CompileFailed { .. }), "{text}");
    assert!(
        text.contains(&format!("{}:{line}:", dir.join("main.c").display()))
            && text.contains("undeclared"),
        "{text}"
    );
}

#[test]
fn a_port_function_of_the_wrong_shape_does_not_compile() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("shape");
    // An input with a handler's signature.
    let wrong = MAIN.replace("{{\"in\", in}}", "{{\"in\", answer}}");
    write_module(
        &dir,
        &[
            ("main.c", &wrong),
            ("helper.c", HELPER_C),
            ("helper.h", HELPER_H),
        ],
    );
    let line = wrong
        .lines()
        .position(|l| l.contains("{\"in\", answer}"))
        .unwrap()
        + 1;
    let text = build(&dir).unwrap_err().to_string();
    assert!(
        text.contains(&format!("{}:{line}:", dir.join("main.c").display()))
            && text.contains("incompatible-pointer-types"),
        "{text}"
    );
}

#[test]
fn a_bad_port_table_is_reported_when_the_module_is_built() {
    let root = tempfile::tempdir().unwrap();
    let cases = [
        (
            // The output and the input share a name.
            MAIN.replace("{\"out\"}", "{\"in\"}"),
            "duplicate port name `in`, already declared as output `in`",
        ),
        (
            MAIN.replace("{{\"answer\", answer}}", "{{\"answer\", NULL}}"),
            "handler `answer`: the function is NULL",
        ),
        (
            MAIN.replace("{{\"in\", in}}", "{{\"in-put\", in}}"),
            "`in-put` is not a port name",
        ),
        (
            MAIN.replace(
                ".outputs = OUTPUTS,",
                ".persistence = AEX_PERSISTENT, .outputs = OUTPUTS,",
            ),
            "a persistent module needs `save` and `restore`",
        ),
    ];
    for (i, (source, expected)) in cases.iter().enumerate() {
        let dir = root.path().join(format!("table{i}"));
        write_module(
            &dir,
            &[
                ("main.c", source),
                ("helper.c", HELPER_C),
                ("helper.h", HELPER_H),
            ],
        );
        let e = build(&dir).unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(e, BuildError::Describe { .. }) && text.contains(expected),
            "case {i}: {text}"
        );
    }
}

#[test]
fn the_tutorials_c_module_builds_and_declares_its_ports() {
    let tutorial = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/TUTORIAL.md"),
    )
    .unwrap();
    let section = &tutorial[tutorial.find("## 5e. Modules in C").expect("the C section")..];
    let start = section.find("```c\n").expect("a C block") + "```c\n".len();
    let code = &section[start..start + section[start..].find("```").unwrap()];
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("panel-c");
    write_module(&dir, &[("panel.c", code)]);
    let built = build(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(built.interface.inputs, ["alarm"]);
    assert_eq!(built.interface.entries, ["alarms"]);
}

/// The Makefile docs/DESCRIPTOR.md shows (the deployer's variables, objects outside the
/// sources), as a file.
fn makefile() -> String {
    let reference = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/DESCRIPTOR.md"),
    )
    .unwrap();
    let start = reference
        .find("```make\n")
        .expect("a Makefile in DESCRIPTOR.md")
        + 8;
    let block = &reference[start..start + reference[start..].find("```").unwrap()];
    // The block sits in a list item, indented by two spaces.
    block
        .lines()
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_module_with_a_makefile_is_built_by_make_with_the_deployers_flags() {
    let root = tempfile::tempdir().unwrap();
    let makefile = makefile();
    let files = [
        ("main.c", MAIN),
        ("helper.c", HELPER_C),
        ("helper.h", HELPER_H),
        ("Makefile", makefile.as_str()),
    ];
    let (a, b) = (root.path().join("a/mk"), root.path().join("b/c/mk"));
    write_module(&a, &files);
    write_module(&b, &files);
    let built = build(&a).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(built.interface.handlers, ["answer"]);
    assert_eq!(
        build(&b).unwrap().measurement,
        built.measurement,
        "the deployer's flags keep a make build reproducible"
    );
    // Make decides what is out of date: nothing, then one object.
    let objects = built.binary.with_extension("objects");
    let main_o = objects.join("main.o");
    let before = (modified(&main_o), modified(&built.binary));
    build(&a).unwrap();
    assert_eq!((modified(&main_o), modified(&built.binary)), before);
    std::fs::write(
        a.join("helper.c"),
        HELPER_C.replace("x + OFFSET", "x - OFFSET"),
    )
    .unwrap();
    let changed = build(&a).unwrap();
    assert_eq!(modified(&main_o), before.0);
    assert_ne!(changed.measurement, built.measurement);

    // A compile error under make is located as any other.
    std::fs::write(a.join("helper.c"), "int helper(int x) { return x +; }\n").unwrap();
    let text = build(&a).unwrap_err().to_string();
    assert!(
        text.contains(&format!("{}:1:", a.join("helper.c").display())),
        "{text}"
    );
}
