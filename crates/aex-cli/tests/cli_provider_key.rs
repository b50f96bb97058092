//! `aex node provider-key`: the operator of a `trustzone` or `sancus` node hands one
//! stakeholder its own provider key, printed or written to a private file, and a mistake (an
//! sgx node, a directory that is no node's) is a clear error, never a fresh key nobody uses;
//! its public fingerprint, which descriptors pin, is printed on its own.

use std::os::unix::fs::PermissionsExt;

use aex_tee::{Provider, SimSymmetricPlatform, SymmetricKind, TeeKind};
use aex_testkit::cli::{self, COMMAND_TIMEOUT};
use aex_testkit::identity::{self, TestIdentity};

fn provider_key(args: &[&str]) -> aex_testkit::process::Run {
    let mut all = vec!["node", "provider-key"];
    all.extend(args);
    cli::run(None, &all, COMMAND_TIMEOUT)
}

#[test]
fn each_stakeholder_gets_its_own_key_from_the_nodes_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("field");
    let data_arg = data.display().to_string();
    let (farm, insight) = (identity::deployer(), TestIdentity::named("insight"));

    // Not (yet) a node's data directory: refused, with what to pass instead.
    provider_key(&[
        "--data-dir",
        &data_arg,
        "--tee",
        "sancus",
        "--deployer",
        &farm.hex(),
    ])
    .code(1)
    .stderr_has(&["no node key", "sancus-node.key", "--data-dir"]);
    assert!(!data.exists(), "no key was created for a node nobody runs");

    // The node creates its key when it starts (here: its backend, as `aex node` opens it).
    aex_tee::open(TeeKind::Sancus, &data).unwrap();
    let platform = SimSymmetricPlatform::load(SymmetricKind::Sancus, &data).unwrap();
    // `aex node provider-key` on this sancus node for `who`, with `extra` arguments.
    let for_sancus = |who: &TestIdentity, extra: &[&str]| {
        let deployer = who.hex();
        let mut args = vec![
            "--data-dir",
            &data_arg,
            "--tee",
            "sancus",
            "--deployer",
            &deployer,
        ];
        args.extend_from_slice(extra);
        provider_key(&args).ok()
    };
    let printed = |who: &TestIdentity| {
        let run = for_sancus(who, &[]);
        run.stderr_has(&["is a secret", "hand it to that deployer alone"]);
        let key = run.stdout.trim().to_owned();
        let want = platform.provider_key(&Provider(who.key().0));
        assert_eq!(key, hex::encode(want.expose_secret().expose_secret()));
        key
    };
    let (farms, insights) = (printed(farm), printed(&insight));
    assert_ne!(farms, insights, "two stakeholders, two keys");

    // The fingerprint a descriptor pins: public, the key's and not the key.
    let run = for_sancus(farm, &["--fingerprint"]);
    run.stderr_has(&["public", "provider_key_fingerprint"]);
    let want = platform.provider_key(&Provider(farm.key().0));
    assert_eq!(run.stdout.trim(), hex::encode(want.fingerprint()));
    assert!(!run.stdout.contains(&farms) && !run.stderr.contains(&farms));

    // Written to a private file, for the stakeholder's `provider_key_file`.
    let out = dir.path().join("handed/insight.key");
    let out_arg = out.display().to_string();
    for_sancus(&insight, &["-o", &out_arg]).stderr_has(&[
        "Wrote",
        &insight.hex()[..16],
        "mode 0600",
    ]);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        format!("{insights}\n")
    );
    let mode = std::fs::metadata(&out).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // The trustzone key of the same directory is another node's (and does not exist yet).
    provider_key(&[
        "--data-dir",
        &data_arg,
        "--tee",
        "trustzone",
        "--deployer",
        &farm.hex(),
    ])
    .code(1)
    .stderr_has(&["trustzone-node.key"]);
}

#[test]
fn other_kinds_and_bad_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data_arg = dir.path().display().to_string();
    let farm = identity::deployer().hex();
    for tee in ["sgx", "native"] {
        provider_key(&["--data-dir", &data_arg, "--tee", tee, "--deployer", &farm])
            .code(1)
            .stderr_has(&[
                &format!("a `{tee}` node has no provider keys"),
                "trustzone and sancus",
            ]);
    }
    provider_key(&["--data-dir", &data_arg, "--tee", "tdx", "--deployer", &farm])
        .code(1)
        .stderr_has(&["unknown TEE kind `tdx`"]);
    provider_key(&[
        "--data-dir",
        &data_arg,
        "--tee",
        "sancus",
        "--deployer",
        "not-a-key",
    ])
    .code(2)
    .stderr_has(&["--deployer"]);
}
