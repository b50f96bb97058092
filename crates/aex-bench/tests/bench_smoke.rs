//! A few-second run of the benchmark program: every scenario runs end to end on tiny sizes,
//! and the JSON carries every figure issue 7 asks for as a number.

use std::process::Command;

/// The keys `--json` must always carry, as numbers.
const REQUIRED: [&str; 9] = [
    "rtt_64b_median_us",
    "raw_rtt_64b_median_us",
    "tcp_echo_rtt_64b_median_us",
    "throughput_64b_events_per_s",
    "raw_throughput_64b_events_per_s",
    "deploy_100_modules_s",
    "deploy_1000_modules_s",
    "module_rss_kib",
    "node_rss_kib",
];

#[test]
fn smoke_run_writes_every_required_figure() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    // The test kit's modules, built once per test run for every test binary.
    let mut bench = Command::new(env!("CARGO_BIN_EXE_aex-bench"));
    bench
        .args(["--quick", "--rounds=1", "--iterations=20", "--events=300"])
        .args(["--deploy-sizes=2", "--deploy-one-node=0", "--json"])
        .arg(&json);
    // The `aex` that `cargo test --workspace` built for the CLI's tests, when there is one:
    // left to itself the bench runs `cargo build -p aex-cli`, which resolves features for that
    // package alone and compiles the agent and its dependencies a second time (30 s of the
    // suite on 2 cores).
    let aex = aex_testkit::paths::profile_dir().join("aex");
    if aex.is_file() {
        bench.arg("--aex").arg(aex);
    }
    let out = bench
        .env("AEX_BUILD_PROFILE", "dev")
        .env(
            aex_deploy::build::PREBUILT_ENV,
            aex_testkit::modules::manifest(),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "aex-bench failed:\n{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for section in [
        "Event round trip",
        "One-way throughput",
        "Deploy",
        "Targets",
    ] {
        assert!(stdout.contains(section), "no `{section}` in:\n{stdout}");
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    for key in REQUIRED {
        let x = v[key].as_f64();
        assert!(x.is_some_and(|x| x > 0.0), "`{key}` is {:?}", v[key]);
    }
    // Deployments this small extrapolate the headline figures, and say so.
    assert_eq!(v["deploy_100_modules_measured"].as_f64(), Some(0.0));
    assert_eq!(v["throughput_64b_lost_events"].as_f64(), Some(0.0));
    // The tail next to the median, and the run's losses as one integer.
    for prefix in ["rtt_64b", "raw_rtt_64b"] {
        let [median, p99] = ["median", "p99"].map(|q| v[format!("{prefix}_{q}_us")].as_f64());
        assert!(
            p99 >= median && median.is_some(),
            "{prefix}: {median:?} / {p99:?}"
        );
    }
    let lost = v["lost_events"].as_u64();
    assert!(lost.is_some(), "`lost_events` is {:?}", v["lost_events"]);
    assert!(
        stdout.contains("Events lost"),
        "no lost total in:\n{stdout}"
    );
}
