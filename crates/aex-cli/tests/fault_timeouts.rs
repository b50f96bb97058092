//! Nothing hangs: every network wait has a timeout, and a stuck peer delays nothing else.
//!
//! * A "node" that accepts TCP connections and never answers: `aex status` and `aex deploy`
//!   finish on their own, within the deployer's answer timeout, and say which node failed.
//!   Meanwhile a real node closes connections that never say hello, or stop halfway through a
//!   frame, after its own limits. Timeouts are configuration: the deployer's is set with
//!   `aex --timeout`, the node's with `aex node --timeout NAME=DURATION`, both far below their
//!   defaults (15 s and 10 s), so the test waits them out in about a second, and a limit left
//!   at its default would show as a connection still open after [`SLACK`].
//! * A "node" that completes the link's handshake and then answers one byte per second, each
//!   byte well within any read timeout: `aex status` and `aex deploy` still end at their
//!   deadline, naming the node.
//! * A peer that accepts node1's event link (completing its handshake) and never reads: node1's
//!   writes to it block, yet node1 keeps answering, routing ping-pong and bounding in bytes
//!   what it queues for that peer.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use aex_proto::{ConnId, Direction, Endpoint, Event, EventKind, NodeRequest, NodeResponse, Origin};

use aex_testkit::cli::{self, COMMAND_TIMEOUT};
use aex_testkit::cluster::{AppDir, Cluster, Options};
use aex_testkit::dead_end::{DeadEnd, Mode};
use aex_testkit::descriptor::{IdentityPin, PingPong, PlatformKey};
use aex_testkit::node::NodeOptions;
use aex_testkit::process::Run;
use aex_testkit::session as wire;
use aex_testkit::status::{AppStatus, StatusExt};
use aex_testkit::{process, wait_for, PATIENCE};

/// The deployer's limit on one answer from a node in this test (`aex --timeout`), as given
/// on the command line and as its errors say it.
const DEPLOYER_TIMEOUT: (Duration, &str, &str) = (Duration::from_millis(500), "500ms", "500 ms");
/// Node1's limit on a connection's first frame (`aex node --timeout hello=...`).
const HELLO_TIMEOUT: (Duration, &str) = (Duration::from_millis(300), "hello=300ms");
/// Node1's limit on a frame's body once its length prefix has arrived (`body=...`).
const BODY_TIMEOUT: (Duration, &str) = (Duration::from_millis(800), "body=800ms");
/// Slack for slow CI machines on top of each limit; far below every default limit.
const SLACK: Duration = Duration::from_secs(5);

/// Runs `f`, returning what it returned and how long it took.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let out = f();
    (out, started.elapsed())
}

/// Opens a connection to `addr`, sends `bytes` (with `linked`, inside an admitted session's
/// link), then waits for the node to close it; returns how long that took from before the
/// connection was opened (so it is never shorter than the node's limit). Panics if it is
/// still open after `limit + SLACK`.
fn closed_by_node_after(addr: SocketAddr, bytes: &[u8], limit: Duration, linked: bool) -> Duration {
    let started = Instant::now();
    let mut stream = if linked {
        let mut session = wire::app_session(addr);
        assert!(session.send_plain(bytes), "write to node1");
        session.into_stream()
    } else {
        let mut stream = TcpStream::connect(addr).expect("connect to node1");
        stream.write_all(bytes).expect("write to node1");
        stream
    };
    stream.set_read_timeout(Some(limit + SLACK)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return started.elapsed(),
            Err(e) => panic!(
                "node1 kept a stalled connection open for {:?} ({e})",
                started.elapsed()
            ),
        }
    }
}

#[test]
fn silent_node_fails_commands_in_time_and_stalled_connections_are_closed() {
    let app = AppDir::new();
    let node1 = NodeOptions::new("node1", app.path().join("node1"))
        .args(&["--timeout", HELLO_TIMEOUT.1, "--timeout", BODY_TIMEOUT.1])
        .start();
    let silent = DeadEnd::start(Mode::Swallow);
    let desc = PingPong {
        nodes: [
            (node1.addr, PlatformKey::File(node1.platform_pub_file())),
            (silent.addr(), PlatformKey::Inline(node1.platform_pub_hex())),
        ],
        identities: [
            Some(IdentityPin::File(node1.identity_pub_file())),
            Some(IdentityPin::Inline(silent.identity().to_string())),
        ],
        poke: false,
        c_pong: false,
    };
    app.write_descriptor(&desc.render());
    let (limit, limit_arg, limit_said) = DEPLOYER_TIMEOUT;
    let dir = app.path().display().to_string();

    // The two commands run one after the other (one `aex` process at a time holds an
    // application's state), while the stalled connections to node1 run alongside.
    let ((status, deploy), (no_hello, half_frame)) = std::thread::scope(|s| {
        let commands = s.spawn(|| {
            let status = timed(|| app.aex(&["--timeout", limit_arg, "status", "--json"]));
            let deploy = timed(|| {
                let args = ["--timeout", limit_arg, "deploy", &dir];
                cli::run_as(&app.identity, &args, COMMAND_TIMEOUT)
            });
            (status, deploy)
        });
        let no_hello = s.spawn(|| closed_by_node_after(node1.addr, &[], HELLO_TIMEOUT.0, false));
        let half_frame = s.spawn(|| {
            // Inside an admitted session's link: a frame's prefix and three bytes of it.
            let mut bytes = 100u32.to_be_bytes().to_vec();
            bytes.extend_from_slice(&[1, 2, 3]);
            closed_by_node_after(node1.addr, &bytes, BODY_TIMEOUT.0, true)
        });
        (
            commands.join().unwrap(),
            (no_hello.join().unwrap(), half_frame.join().unwrap()),
        )
    });

    let ((status, took), (deploy, deploy_took)): ((Run, _), (Run, _)) = (status, deploy);
    assert!(
        took >= limit && took < limit + SLACK,
        "`aex status` took {took:?} with a limit of {limit:?}"
    );
    let status = AppStatus::parse(status.ok().json());
    let node2 = status.node("node2");
    let error = node2.error.as_deref().unwrap_or_default();
    assert!(
        !node2.reachable
            && error.contains(&silent.addr().to_string())
            && error.contains(&format!(
                "the node did not answer the link's handshake within {limit_said}"
            )),
        "{status:#?}"
    );
    assert!(status.node("node1").reachable, "{status:#?}");

    assert!(
        deploy_took >= limit && deploy_took < limit + SLACK,
        "`aex deploy` took {deploy_took:?} with a limit of {limit:?}"
    );
    deploy.code(1).stderr_has(&[
        "node `node2`",
        &format!("the node did not answer the link's handshake within {limit_said}"),
    ]);
    assert!(
        silent.accepted() >= 2,
        "both commands reached the silent node"
    );

    for (what, took, limit) in [
        ("no Hello", no_hello, HELLO_TIMEOUT.0),
        ("half a frame", half_frame, BODY_TIMEOUT.0),
    ] {
        assert!(
            took >= limit && took < limit + SLACK,
            "node1 closed a connection with {what} after {took:?}, its limit being {limit:?}"
        );
    }
}

#[test]
fn a_node_that_trickles_its_answers_fails_commands_at_their_deadline() {
    let app = AppDir::new();
    let node1 = NodeOptions::new("node1", app.path().join("node1")).start();
    let trickler = DeadEnd::start(Mode::Trickle);
    let desc = PingPong {
        nodes: [
            (node1.addr, PlatformKey::File(node1.platform_pub_file())),
            (
                trickler.addr(),
                PlatformKey::Inline(node1.platform_pub_hex()),
            ),
        ],
        identities: [
            Some(IdentityPin::File(node1.identity_pub_file())),
            Some(IdentityPin::Inline(trickler.identity().to_string())),
        ],
        poke: false,
        c_pong: false,
    };
    app.write_descriptor(&desc.render());
    let (limit, limit_arg, limit_said) = (Duration::from_secs(1), "1s", "1 s");
    let dir = app.path().display().to_string();

    let (status, took) = timed(|| app.aex(&["--timeout", limit_arg, "status", "--json"]));
    assert!(
        took >= limit && took < limit + SLACK,
        "`aex status` took {took:?} with a limit of {limit:?}"
    );
    let status = AppStatus::parse(status.ok().json());
    let node2 = status.node("node2");
    let error = node2.error.as_deref().unwrap_or_default();
    assert!(
        !node2.reachable
            && error.contains(&trickler.addr().to_string())
            && error.contains(&format!("the node did not answer within {limit_said}")),
        "{status:#?}"
    );

    let (deploy, took) = timed(|| {
        let args = ["--timeout", limit_arg, "deploy", &dir];
        cli::run_as(&app.identity, &args, COMMAND_TIMEOUT)
    });
    assert!(
        took < limit + SLACK,
        "`aex deploy` took {took:?} with a limit of {limit:?}"
    );
    deploy.code(1).stderr_has(&[
        "node `node2`",
        &format!("the node did not answer within {limit_said}"),
    ]);
    assert!(
        trickler.accepted() >= 2,
        "both commands reached the trickler"
    );
}

/// Events queued for the dead-end peer at first: enough bytes to fill the socket buffers
/// between node1 and it, and node1's queue for it, several times over.
const BIG: u64 = 96;
const BIG_SIZE: usize = 256 * 1024;
/// Smaller events sent afterwards, and their size: 24 MiB in all.
const SMALL: u64 = 6000;
const SMALL_SIZE: usize = 4096;
/// What node1 queues for one namespace on a peer link (`peer_queue_per_namespace`, default).
const NAMESPACE_QUEUE: u64 = 4 << 20;
/// What node1's writer takes off a peer's queue for one write (its batch): taken, not yet
/// counted as forwarded while the write is blocked.
const WRITE_BATCH: u64 = 1 << 20;

#[test]
fn peer_that_never_reads_blocks_only_its_own_link() {
    let cluster = Cluster::start(Options::default());
    cluster.deploy_ok();
    let dead = DeadEnd::start(Mode::PeerNeverReads);
    let node1 = cluster.node1.addr;

    // Any admitted deployer may open a session and install a route: events of connection 60000 go
    // to the dead end.
    let conn = ConnId(60_000);
    let mut attacker = wire::app_session(node1);
    let to = Endpoint::Node {
        address: dead.addr().to_string(),
        identity: dead.identity(),
    };
    let route = NodeRequest::Route {
        conn,
        dir: Direction::Forward,
        to,
        from: Origin::Deployer,
    };
    assert_eq!(attacker.request(route), Ok(NodeResponse::Done));
    let event = |counter, size| Event {
        conn,
        dir: Direction::Forward,
        kind: EventKind::Event,
        counter,
        ciphertext: vec![0x5a; size],
    };
    for counter in 1..=BIG {
        attacker.send_event(event(counter, BIG_SIZE));
    }
    let stuck = |status: &aex_proto::NodeStatus| {
        let dead = dead.addr().to_string();
        status
            .peers
            .iter()
            .find(|p| p.address == dead)
            .map(|p| (p.connected, p.forwarded))
    };
    // Node1 connects and writes until the socket buffers between it and the dead end are
    // full; then its writes block (still blocked after everything below: see the end).
    let forwarded = wait_for(
        "node1 to connect to the dead end and write to it",
        PATIENCE,
        || {
            let (connected, forwarded) = stuck(&wire::node_status(node1))?;
            (connected && forwarded >= 1).then_some(forwarded)
        },
    );
    assert!(dead.accepted() >= 1);
    assert!(forwarded < BIG, "{forwarded} of {BIG} events forwarded");

    // Node1 still answers at once and routes ping-pong.
    let (_, took) = timed(|| wire::node_status(node1));
    assert!(
        took < Duration::from_secs(2),
        "node1 answered status in {took:?}"
    );
    let (_, took) = timed(|| {
        cluster.app.start_pings(20);
        cluster.app.wait_pings_done(20);
    });
    assert!(took < Duration::from_secs(10), "a ping run took {took:?}");

    // What node1 holds for the stuck peer is bounded in bytes: past its queue, events are
    // dropped and counted rather than buffered. Of the big events, at most the namespace's
    // queue, the blocked write's batch and what the socket buffers took are not dropped.
    let status = match attacker.request(NodeRequest::Status) {
        Ok(NodeResponse::Status(status)) => status,
        other => panic!("node1 answered status with {other:?}"),
    };
    let (_, forwarded) = stuck(&status).expect("node1 still has a link to the dead end");
    let queued_at_most = (NAMESPACE_QUEUE + WRITE_BATCH) / BIG_SIZE as u64;
    assert!(
        status.dropped >= BIG - forwarded - queued_at_most - 1,
        "node1 dropped only {} of {BIG} big events ({forwarded} forwarded)",
        status.dropped
    );
    for counter in BIG + 1..=BIG + SMALL {
        attacker.send_event(event(counter, SMALL_SIZE));
    }
    // Asked on the same session, so after node1 has routed every event above: its queue for
    // the namespace is full, so all but what fits in its bytes are dropped.
    let later = match attacker.request(NodeRequest::Status) {
        Ok(NodeResponse::Status(status)) => status,
        other => panic!("node1 answered status with {other:?}"),
    };
    let dropped = later.dropped - status.dropped;
    assert!(
        dropped >= SMALL - NAMESPACE_QUEUE / SMALL_SIZE as u64,
        "node1 dropped only {dropped} of {SMALL} smaller events it had no room for"
    );
    let (_, forwarded) = stuck(&later).expect("node1 still has a link to the dead end");
    // Its writes to the dead end have been blocked all along: through a ping run and
    // thousands of routed events, it wrote no more than the socket buffers take.
    assert!(forwarded < BIG, "{forwarded} of {BIG} big events forwarded");
    cluster.app.start_pings(20);
    cluster.app.wait_pings_done(20);

    // A node stuck writing to a peer still stops promptly, and its modules with it.
    let modules: Vec<u32> = cluster
        .app
        .status()
        .modules
        .iter()
        .filter(|m| m.name == "ping")
        .filter_map(|m| m.pid)
        .collect();
    let pid = cluster.node1.pid();
    process::signal(pid, process::Signal::Term);
    process::assert_gone(pid, "node1 to stop on SIGTERM", Duration::from_secs(5));
    for pid in modules {
        process::assert_gone(pid, "ping to stop with node1", Duration::from_secs(5));
    }
}
