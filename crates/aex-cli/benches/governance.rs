//! Proposal-to-applied latency of a governed deployment, against the same deployment made
//! directly by one deployer (`aex deploy`), measured in the same run.
//!
//! Each round starts everything afresh on loopback, with real processes: a simulated `sgx`
//! node running the governor (constitution of 3 members, deploys need 2 of 3), and two nodes
//! admitting only the governor's key for the governed ping-pong. Member A builds the bundle and
//! uploads it (timed apart: it is the same for both paths' builds), then the clock runs from
//! A's proposal through A's and B's ballots (each a fresh attested TLS connection, as `aex`
//! makes them) to the outcome `applied`, polled every 5 ms. The baseline is `aex deploy` of
//! the same ping-pong (same prebuilt binaries) onto two fresh nodes by the test deployer,
//! timed as the process runs.
//!
//! `cargo bench -p aex-cli --bench governance [-- --rounds N]` (default 5 rounds). Prints
//! every round, then the median and spread of each figure and the ratio governed / direct.
//! Modules (the governor among them) are release builds (`AEX_TESTKIT_PROFILE=dev` for the
//! test kit's dev builds); the first run builds them.
#![allow(
    clippy::disallowed_macros,
    reason = "a benchmark's report goes to stdout, its progress to stderr"
)]

use std::time::{Duration, Instant};

use aex_governance::{Action, Vote};
use aex_testkit::cluster::AppDir;
use aex_testkit::descriptor::{IdentityPin, PingPong, PlatformKey};
use aex_testkit::governor::{ballot, make_bundle, member, proposal, send_bundle, Governed};
use aex_testkit::node::NodeProcess;

/// One round's figures, in milliseconds.
struct Round {
    /// A's build of the bundle (prebuilt binaries measured and described).
    bundle_ms: f64,
    /// Uploading the binaries and the bundle.
    upload_ms: f64,
    /// A's proposal to the governor's answer to B's accepting ballot.
    votes_ms: f64,
    /// A's proposal to the outcome `applied`.
    applied_ms: f64,
    /// `aex deploy` of the same application, directly.
    direct_ms: f64,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn governed() -> (f64, f64, f64, f64) {
    let g = Governed::start(&[("deploy", "2 of 3")]);
    let client = &g.client;
    let (a, b) = (member(1), member(2));

    let started = Instant::now();
    let made = make_bundle(g.member_dir.path(), member(1));
    let bundle_ms = ms(started);
    let started = Instant::now();
    let change = send_bundle(client, &made);
    let upload_ms = ms(started);

    let started = Instant::now();
    let (code, v) = client.json(
        "POST",
        "/proposals",
        &proposal(Action::Deploy, change, "deploy ping-pong", &a),
    );
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().expect("an id").to_owned();
    for by in [&a, &b] {
        let (code, v) = client.json("POST", "/ballots", &ballot(&id, Vote::Approve, by));
        assert_eq!(code, 200, "{v}");
    }
    let votes_ms = ms(started);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let state = client.outcome(&id)["state"].clone();
        match state.as_str() {
            Some("applied") => break,
            Some("failed") => panic!("the deployment failed: {:?}", client.outcome(&id)),
            _ => {}
        }
        assert!(Instant::now() < deadline, "not applied within 120 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    (bundle_ms, upload_ms, votes_ms, ms(started))
}

fn direct() -> f64 {
    let app = AppDir::new();
    let node1 = NodeProcess::start("node1", app.path().join("node1"));
    let node2 = NodeProcess::start("node2", app.path().join("node2"));
    app.write_descriptor(
        &PingPong {
            nodes: [
                (node1.addr, PlatformKey::File(node1.platform_pub_file())),
                (node2.addr, PlatformKey::File(node2.platform_pub_file())),
            ],
            identities: [
                Some(IdentityPin::Inline(hex::encode(node1.identity().0))),
                Some(IdentityPin::Inline(hex::encode(node2.identity().0))),
            ],
            poke: false,
            c_pong: false,
        }
        .render(),
    );
    let started = Instant::now();
    app.deploy().ok();
    ms(started)
}

/// Median and the range of `values`.
fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[(sorted.len() - 1) / 2];
    (median, sorted[0], sorted[sorted.len() - 1])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .map_or(5, |n| n.parse().expect("--rounds N"));
    // `cargo bench` passes `--bench`; nothing else is understood. The modules, the governor
    // among them, are built optimized unless the environment says otherwise (a test run's
    // dev builds would measure the governor's deployer code unoptimized against an
    // optimized `aex deploy`).
    if std::env::var_os("AEX_TESTKIT_PROFILE").is_none() {
        std::env::set_var("AEX_TESTKIT_PROFILE", "release");
    }
    eprintln!(
        "building the modules (once, {:?} profile) and warming up",
        aex_testkit::modules::profile()
    );
    direct();
    let mut all = Vec::new();
    for round in 1..=rounds {
        let (bundle_ms, upload_ms, votes_ms, applied_ms) = governed();
        let direct_ms = direct();
        eprintln!(
            "round {round}: proposal → applied {applied_ms:.0} ms (votes {votes_ms:.0} ms), \
             direct deploy {direct_ms:.0} ms, bundle {bundle_ms:.0} ms, upload {upload_ms:.0} ms"
        );
        all.push(Round {
            bundle_ms,
            upload_ms,
            votes_ms,
            applied_ms,
            direct_ms,
        });
    }
    let figure = |name: &str, pick: fn(&Round) -> f64| {
        let values: Vec<f64> = all.iter().map(pick).collect();
        let (median, low, high) = spread(&values);
        println!("| {name} | {median:.0} ms | {low:.0}–{high:.0} ms |");
        median
    };
    println!("| figure ({rounds} rounds) | median | range |");
    println!("|---|---|---|");
    let applied = figure("proposal → applied (governed, 2 of 3)", |r| r.applied_ms);
    figure("of which proposal and 2 ballots", |r| r.votes_ms);
    let direct = figure("`aex deploy`, directly", |r| r.direct_ms);
    figure("bundle built (prebuilt binaries)", |r| r.bundle_ms);
    figure("bundle uploaded", |r| r.upload_ms);
    println!("\ngoverned / direct: {:.2}", applied / direct);
}
