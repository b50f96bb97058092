//! A real module process flooded with junk while it waits on a request: its memory stays
//! bounded (the runtime's inbox and deferred queue are bounded in bytes, `backlog.rs`) and the
//! request still completes.
//!
//! This binary is its own module: run with [`MODULE_ENV`] set, it serves the node on stdin and
//! stdout like any module (`aex_runtime::run`); run by `cargo test`, it spawns itself that way
//! and plays the node and the deployer with the test kit. Hence `harness = false`: the test
//! harness would print to stdout, which is the module's frame stream.
#![allow(
    clippy::disallowed_macros,
    reason = "a test, and its own harness: it prints the harness's lines and what it measured"
)]

use std::io::Write;
use std::time::Instant;

use aex_proto::frame::{self, MAX_FRAME_LEN};
use aex_proto::{
    Command, CommandReply, ConnId, Direction, Event, EventKind, FromModule, Interface, Role,
    ToModule,
};
use aex_runtime::{Context, Module, PortError, PortKind, Request};
use aex_testkit::deployer::{measure, receiver, sender, Deployer, ModuleLink, ModuleProcess};

/// Set in the environment of the module process.
const MODULE_ENV: &str = "AEX_RUNTIME_TEST_MODULE";

const NAME: &str = "a_junk_flood_while_a_module_waits_on_a_request_leaves_its_memory_bounded";

/// Maximum-size junk frames sent while the module waits: 128 MiB.
const FLOOD_FRAMES: u64 = 128;

/// The most the module's peak resident memory may grow under the flood: the runtime holds at
/// most 4 MiB in its inbox and 4 MiB deferred, plus a frame or two in flight (`backlog.rs`);
/// the rest is allocator slack.
const GROWTH_BOUND: u64 = 40 << 20;

const ALG: aex_crypto::Algorithm = aex_crypto::Algorithm::AesGcm;

/// A module whose one entry point waits on its one request.
#[derive(Default)]
struct Waiter;

impl Module for Waiter {
    fn interface() -> Interface {
        Interface {
            inputs: vec!["inp".into()],
            requests: vec!["fetch".into()],
            entries: vec!["ask".into()],
            ..Interface::default()
        }
    }

    fn dispatch(
        &mut self,
        ctx: &mut Context<'_>,
        kind: PortKind,
        index: usize,
        payload: &[u8],
    ) -> Result<Vec<u8>, PortError> {
        match (kind, index) {
            (PortKind::Entry, 0) => {
                ctx.request_timeout(std::time::Duration::from_secs(60));
                ctx.request(Request::new(0, "fetch"), payload)
                    .map_err(|e| PortError::Method(e.to_string()))
            }
            (PortKind::Input, 0) => Ok(Vec::new()),
            _ => Err(PortError::Method("no such port".into())),
        }
    }
}

fn main() {
    if std::env::var_os(MODULE_ENV).is_some() {
        aex_runtime::run::<Waiter>();
    }
    // `cargo test -p aex-runtime FILTER` passes FILTER on: run only if it selects this test.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if std::env::args().any(|a| a == "--list") {
        println!("{NAME}: test");
        return;
    }
    let ignored_only = std::env::args().any(|a| a == "--ignored");
    if ignored_only || !filters.is_empty() && !filters.iter().any(|f| NAME.contains(f.as_str())) {
        println!("\nrunning 0 tests\n");
        return;
    }
    println!("\nrunning 1 test");
    flood();
    println!("test {NAME} ... ok\n");
}

/// Peak and current resident memory of process `pid`, in bytes (`/proc/PID/status`).
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    let field = |name: &str| -> u64 {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"));
        let kib: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        kib * 1024
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn junk(conn: u32, dir: Direction, counter: u64) -> Vec<u8> {
    frame::encode(&ToModule::Event(Event {
        conn: ConnId(conn),
        dir,
        kind: EventKind::Event,
        counter,
        ciphertext: vec![0x5a; MAX_FRAME_LEN - 64],
    }))
}

fn flood() {
    let path = std::env::current_exe().expect("this test binary");
    let measurement = measure(&path);
    let mut m = ModuleProcess::spawn_with_env(&path, &measurement, &[(MODULE_ENV, "1")]);
    let mut d = Deployer::attest(&mut m, &measurement);
    assert!(d.confirmed, "the module's key confirmation");
    assert_eq!(
        d.set_key(&mut m, 1, Role::Input("inp".into()), ALG),
        CommandReply::Done(vec![])
    );
    assert_eq!(
        d.set_key(&mut m, 5, Role::Request("fetch".into()), ALG),
        CommandReply::Done(vec![])
    );
    // One authentic event on the input: junk that replays its counter is refused unopened.
    let mut input = sender(1, Direction::Forward, ALG);
    m.send(ToModule::Event(input.seal(EventKind::Event, b"x").unwrap()));
    let (_, before) = memory(m.pid());

    let call = d.seal(&Command::Call {
        entry: "ask".into(),
        payload: b"question".to_vec(),
    });
    m.send(ToModule::Command(call.clone()));
    let request = m.event();
    assert_eq!(
        receiver(5, Direction::Forward, ALG).open(&request).unwrap(),
        b"question"
    );

    // The module now waits. The node floods it: maximum-size frames for unknown connections,
    // in the wrong direction on its input, and with counters it already accepted or a tag that
    // does not verify; then the reply it waits for.
    let frames = [
        junk(77, Direction::Forward, 1),
        junk(1, Direction::Backward, 1),
        junk(1, Direction::Forward, 1),
    ];
    let forged = |i: u64| i % 32 == 31;
    let unknown = (0..FLOOD_FRAMES)
        .filter(|&i| !forged(i) && i % 3 == 0)
        .count() as u64;
    let mut replies = sender(5, Direction::Backward, ALG);
    let reply = replies
        .seal(
            EventKind::Reply,
            &aex_proto::reply::encode(request.counter, Ok(b"answer")),
        )
        .unwrap();
    let mut stdin = m.stdin_writer();
    let started = Instant::now();
    let writer = std::thread::spawn(move || {
        for i in 0..FLOOD_FRAMES {
            let frame = if forged(i) {
                // Now and then a forged tag under a fresh counter: refused after a check.
                let mut e = input.seal(EventKind::Event, b"x").unwrap();
                e.ciphertext = vec![0x5a; MAX_FRAME_LEN - 64];
                frame::encode(&ToModule::Event(e))
            } else {
                frames[(i % 3) as usize].clone()
            };
            stdin.write_all(&frame)?;
        }
        stdin.write_all(&frame::encode(&ToModule::Event(reply)))?;
        stdin.flush()
    });

    let answer = m.recv_matching(|msg| matches!(msg, FromModule::CommandReply(_)));
    let FromModule::CommandReply(answer) = answer else {
        unreachable!()
    };
    writer
        .join()
        .expect("the flood writer")
        .expect("the module read the whole flood");
    assert_eq!(
        d.open_reply(&answer, call.counter).unwrap(),
        CommandReply::Done(b"answer".to_vec()),
        "the request completes"
    );
    let took = started.elapsed();
    let (peak, after) = memory(m.pid());
    let flooded = FLOOD_FRAMES * MAX_FRAME_LEN as u64;
    eprintln!(
        "{} MiB of junk in {} ms: resident {} MiB before, peak {} MiB, {} MiB after",
        flooded >> 20,
        took.as_millis(),
        before >> 20,
        peak >> 20,
        after >> 20
    );
    assert!(
        peak < before + GROWTH_BOUND,
        "peak resident memory {} MiB, {} MiB before the flood: grew by more than {} MiB",
        peak >> 20,
        before >> 20,
        GROWTH_BOUND >> 20
    );

    m.send(ToModule::Stats);
    let FromModule::Stats(stats) = m.recv_matching(|msg| matches!(msg, FromModule::Stats(_)))
    else {
        unreachable!()
    };
    assert_eq!(stats.rejected_unknown, unknown);
    assert_eq!(stats.conns[0].received, 1);
    assert_eq!(stats.conns[0].rejected, FLOOD_FRAMES - unknown);
    assert!(m.shutdown().success());
}
