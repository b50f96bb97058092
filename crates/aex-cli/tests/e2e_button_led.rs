//! End to end: the button-led example (sancus, trustzone and sgx nodes in one application)
//! through `aex up --detach`, attested HTTPS requests to its web module (verified with the
//! deployer's policy by `aex-client`, by `aex fetch`, and by `curl` pinning the certificate
//! `aex tls export` wrote), button presses with
//! `aex output`, the LED's state in `aex status`, and `aex down`, on free ports; and the
//! deployer refusing aes-gcm on a connection to a sancus module. The same run passes with the
//! sancus node's drivers written in Rust (examples/button-led) and in C
//! (examples/button-led/c).

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use aex_client::{ClientError, Policy};
use aex_testkit::cli::{self, COMMAND_TIMEOUT};
use aex_testkit::cluster::AppDir;
use aex_testkit::descriptor::{example_descriptor, write_toml};
use aex_testkit::https::{https, https_with, policy};
use aex_testkit::status::StatusExt;
use aex_testkit::{free_addr, process, wait_for, PATIENCE};

const EXAMPLE: &str = "button-led";
/// The same application with the `button` and `led` drivers in C.
const EXAMPLE_C: &str = "button-led/c";

/// The example's modules (named as their crate directories) and their nodes' TEE kinds.
const MODULES: [(&str, &str); 5] = [
    ("button", "sancus"),
    ("led", "sancus"),
    ("gateway", "trustzone"),
    ("db", "sgx"),
    ("web", "sgx"),
];

/// Connections carrying one event per press (`press` carries the remote ones only).
const PER_PRESS: [&str; 3] = ["button-to-gateway", "gateway-to-led", "gateway-to-db"];

/// The example descriptor in a fresh directory, its nodes moved to free ports and `edit`
/// applied. Returns the directory and the web server's address.
fn example_app(example: &str, edit: impl FnOnce(&mut toml::Table)) -> (AppDir, SocketAddr) {
    let app = AppDir::new();
    let mut doc = example_descriptor(example, &[free_addr(), free_addr(), free_addr()]);
    let web = free_addr();
    let up = doc["up"].as_array_mut().expect("[[up]] steps");
    let start = up
        .iter_mut()
        .find(|s| s["call"].as_str() == Some("web.start"))
        .expect("an [[up]] step calls web.start");
    start["payload"] = toml::Value::String(format!("{{\"port\": {}}}", web.port()));
    edit(&mut doc);
    write_toml(app.path(), &doc);
    (app, web)
}

/// The press count the web module shows, verified under `policy`.
fn presses(policy: &Policy, web: SocketAddr) -> String {
    let (code, body) = https(policy, web, "GET", "/");
    assert_eq!(code, 200, "GET / answered {code}: {body:?}");
    body.trim().to_owned()
}

/// `aex fetch` verifies the web module (fresh evidence included) and prints the count, and is
/// refused when it pins another module's measurement; `aex tls export` writes the certificate
/// that `curl --cacert` then trusts (and without it curl refuses the self-signed certificate).
fn fetch_export_and_curl(app: &AppDir, web: SocketAddr) {
    let url = format!("https://{web}/");
    let key = app.path().join("client.key");
    let key = key.to_str().expect("a UTF-8 path");
    let fetched = app
        .aex(&["fetch", &url, "--module", "web", "--key", key])
        .ok();
    fetched.stderr_has(&[
        "Verified",
        "sgx (simulated)",
        "measurement",
        "Fresh",
        "Client",
    ]);
    assert_eq!(fetched.stdout.trim(), "0");
    let fingerprint = cli::run(None, &["tls", "fingerprint", "--key", key], COMMAND_TIMEOUT).ok();
    assert!(
        fetched.stderr.contains(fingerprint.stdout.trim()),
        "{}",
        fetched.stderr
    );
    app.aex(&["fetch", &format!("{url}nothing"), "--module", "web"])
        .code(1)
        .stderr_has(&["answered 404"]);
    // db's measurement pinned: web's evidence names another.
    app.aex(&["fetch", &url, "--module", "db"])
        .code(1)
        .stderr_has(&["which the client does not pin"]);

    let pem = app.path().join("web.pem");
    let pem = pem.to_str().expect("a UTF-8 path");
    app.aex(&["tls", "export", "web", "--url", &url, "-o", pem])
        .ok()
        .stderr_has(&["Verified", "Wrote"]);
    let curl = |args: &[&str]| {
        std::process::Command::new("curl")
            .args(["-sS", "--max-time", "10"])
            .args(args)
            .output()
            .expect("curl runs (the test needs curl)")
    };
    let pinned = curl(&["--cacert", pem, &url]);
    assert!(pinned.status.success(), "{pinned:?}");
    assert_eq!(String::from_utf8_lossy(&pinned.stdout).trim(), "0");
    let unpinned = curl(&[&url]);
    assert!(!unpinned.status.success(), "{unpinned:?}");
}

/// How the test presses the button.
#[derive(Clone, Copy)]
enum Press {
    /// From afar, over the direct connection `press`.
    Remote,
    /// With a finger: the physical button, through `aex device` (the driver polls it).
    Physical,
}

/// Presses the button once and waits until the web page and the LED show it.
fn press_and_wait(app: &AppDir, (policy, web): (&Policy, SocketAddr), n: u64, how: Press) {
    match how {
        Press::Remote => {
            app.aex(&["output", "press"]).ok().stderr_has(&["Sent"]);
        }
        Press::Physical => {
            app.aex(&["device", "field", "button", "set", "1"]).ok();
            wait_for("the driver to see the press", PATIENCE, || {
                let button = app.status().module("button").state.clone()?;
                (button["presses"] == n).then_some(())
            });
            app.aex(&["device", "field", "button", "set", "0"]).ok();
        }
    }
    wait_for(&format!("GET / to show {n}"), PATIENCE, || {
        (presses(policy, web) == n.to_string()).then_some(())
    });
    let led = wait_for(&format!("the LED to count {n} toggles"), PATIENCE, || {
        let status = app.status();
        let led = status
            .module("led")
            .state
            .clone()
            .expect("led reports state");
        (led["toggles"] == n).then_some(led)
    });
    assert_eq!(led["on"], n % 2 == 1, "LED after {n} presses: {led}");
    // The physical LED, as the driver it is granted to drove it.
    let physical = app.aex(&["device", "field", "led", "read"]).ok();
    assert_eq!(physical.stdout.trim(), if n % 2 == 1 { "1" } else { "0" });
}

#[test]
fn up_detached_then_http_presses_led_and_down() {
    up_presses_and_down(EXAMPLE, false);
}

#[test]
fn the_same_with_the_drivers_in_c() {
    up_presses_and_down(EXAMPLE_C, false);
}

/// The C drivers built with AddressSanitizer and UndefinedBehaviorSanitizer, through the same
/// presses: a finding stops the driver (every finding is fatal), which the presses would show.
#[test]
#[ignore = "long: builds the C drivers again with sanitizers and runs the example"]
fn the_c_drivers_run_clean_under_address_and_undefined_behaviour_sanitizers() {
    up_presses_and_down(EXAMPLE_C, true);
}

fn up_presses_and_down(example: &str, sanitize: bool) {
    let (app, web) = example_app(example, |_| {});
    let dir = app.path().display().to_string();
    let up = if sanitize {
        crate::e2e_ping_pong_c::sanitized_aex(&app)(&["up", "--detach", &dir]).ok()
    } else {
        cli::run(None, &["up", "--detach", &dir], COMMAND_TIMEOUT).ok()
    };
    up.stderr_has(&["Deployed", "detached"]);
    assert!(up.stdout.contains("web.start"), "{}", up.stdout);

    // Five modules attested on three kinds of TEE.
    let status = app.status();
    status.assert_healthy();
    assert_eq!(status.modules.len(), MODULES.len());
    for (name, tee) in MODULES {
        let m = status.module(name);
        assert!(m.attested, "{m:?}");
        assert_eq!(m.tee, tee, "{m:?}");
    }
    assert_eq!(status.module("led").state.as_ref().unwrap()["on"], false);

    // The web module answers from db over attested HTTPS, and only on `GET /`.
    let policy = policy(&app, "web");
    assert_eq!(presses(&policy, web), "0");
    assert_eq!(https(&policy, web, "GET", "/nothing-here").0, 404);
    fetch_export_and_curl(&app, web);
    // Started once only: the same port again is a no-op (so `aex up` can be re-run), another
    // port is refused.
    let again = format!("{{\"port\": {}}}", web.port());
    app.aex(&["call", "web", "start", &again]).code(0);
    let other = format!("{{\"port\": {}}}", web.port().wrapping_add(1));
    app.aex(&["call", "web", "start", &other])
        .code(1)
        .stderr_has(&["already runs"]);

    // Each press reaches the LED and the counter.
    press_and_wait(&app, (&policy, web), 1, Press::Remote);
    press_and_wait(&app, (&policy, web), 2, Press::Remote);
    press_and_wait(&app, (&policy, web), 3, Press::Physical);

    let status = wait_for("every event to be received", PATIENCE, || {
        let s = app.status();
        s.connections
            .iter()
            .all(|c| c.sent == c.received)
            .then_some(s)
    });
    for c in &status.connections {
        assert!(c.keyed, "{c:?}");
        assert_eq!(c.rejected, 0, "{c:?}");
        assert_eq!(c.gaps, 0, "{c:?}");
    }
    assert_eq!(status.counters("press").received, 2);
    for name in PER_PRESS {
        assert_eq!(status.counters(name).received, 3, "{name}");
    }
    // Each page load asks the db (at least the three waits above), and each request is
    // answered: one request and one reply each, not two of each.
    let asks = status.connection("web-to-db");
    assert!(
        asks.received >= 3 && asks.replies == asks.received && asks.failed == 0,
        "{status:#?}"
    );
    assert_eq!(
        status.module("gateway").state.as_ref().unwrap()["presses"],
        3
    );
    assert_eq!(status.module("db").state.as_ref().unwrap()["presses"], 3);

    if sanitize {
        crate::e2e_ping_pong_c::assert_no_sanitizer_findings(&app, &["button", "led"]);
    }

    // A disabled web module serves no more handshakes: clients are refused, not misled.
    app.aex(&["disable", "web"]).ok();
    app.aex(&["fetch", &format!("https://{web}/"), "--module", "web"])
        .code(1)
        .stderr_has(&["`web` is not deployed"]);
    // A client that still pins its measurement gets no handshake from the disabled instance
    // (at most 50 ms after the instance was disabled).
    let refused = wait_for(
        "the disabled web module to refuse handshakes",
        PATIENCE,
        || https_with(&policy, web, None, "GET", "/").err(),
    );
    assert!(
        matches!(
            refused,
            ClientError::Handshake { .. } | ClientError::Io { .. }
        ),
        "{refused:?}"
    );

    // `aex down` stops the nodes, their modules and with them the web server.
    let node_pids = aex_testkit::node::up_node_pids(app.path());
    assert_eq!(
        node_pids.len(),
        3,
        "three node pids recorded: {node_pids:?}"
    );
    let module_pids: Vec<u32> = status.modules.iter().filter_map(|m| m.pid).collect();
    assert_eq!(module_pids.len(), MODULES.len());
    cli::run(None, &["down", &dir], COMMAND_TIMEOUT)
        .ok()
        .stderr_has(&["field", "edge", "cloud"]);
    for pid in node_pids.iter().chain(&module_pids) {
        let what = format!("process {pid} to stop after `aex down`");
        process::assert_gone(*pid, &what, Duration::from_secs(10));
    }
    assert!(
        TcpStream::connect_timeout(&web, Duration::from_secs(1)).is_err(),
        "the web port is still open after `aex down`"
    );
}

#[test]
fn aes_gcm_to_a_sancus_module_is_refused() {
    let (app, _) = example_app(EXAMPLE, |doc| {
        let conns = doc["connection"].as_array_mut().expect("[[connection]]");
        let to_led = conns
            .iter_mut()
            .find(|c| c["to"].as_str() == Some("led.toggle"))
            .expect("a connection to led.toggle");
        to_led["algorithm"] = toml::Value::String("aes-gcm".into());
    });
    let dir = app.path().display().to_string();
    let run = cli::run(None, &["deploy", &dir], COMMAND_TIMEOUT).code(1);
    run.stderr_has(&[
        "gateway-to-led",
        "aes-gcm",
        "chacha20-poly1305",
        "`led`",
        "sancus",
    ]);
    // Refused before any node was contacted: nothing runs, nothing was recorded.
    assert!(aex_testkit::node::up_node_pids(app.path()).is_empty());
}
