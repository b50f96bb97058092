//! Crash points: a test hook that kills the deployer with SIGKILL at a named step.
//!
//! `AEX_CRASH_AT=<point>[:<n>]` makes the process kill itself with SIGKILL the `n`-th time
//! (default: the first) it reaches `point`, so tests can check that a deployer killed at any
//! step converges when run again (`crates/aex-cli/tests/fault_deployer_crash.rs`). The variable is
//! read once; when it is unset a crash point costs one atomic load. Killing oneself is no
//! privilege: whoever sets the environment could send the signal anyway.
//!
//! The points, in the order a deployment reaches them (see [`POINTS`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// The environment variable naming the crash point.
pub const ENV: &str = "AEX_CRASH_AT";

/// Every crash point, with where it is.
pub const POINTS: &[(&str, &str)] = &[
    (
        "revoke-recorded",
        "connections dropped or re-wired moved to the pending revocations, nothing sent",
    ),
    (
        "revoked",
        "a revocation's `Revoke`s and `Unroute`s answered, its progress not saved (once per \
         revocation)",
    ),
    (
        "disabled",
        "a removed module's `Disable` answered, the module not unloaded or forgotten (once per \
         module; also on `aex reset`)",
    ),
    (
        "load",
        "a module loaded on its node, not attested yet (once per module)",
    ),
    (
        "attest",
        "a module attested, its key recorded in memory but not saved (once per module)",
    ),
    (
        "retired",
        "an old instance answered `Retire` (it holds no key), its snapshot not read (once per \
         hand-over)",
    ),
    ("state-read", "an old instance's snapshot read, not saved"),
    (
        "handed-over",
        "the new record with the snapshot saved in place of the old, the snapshot not restored",
    ),
    (
        "modules-saved",
        "every attested module saved, no connection keyed yet",
    ),
    (
        "restored",
        "a snapshot restored into the new instance, not yet forgotten; no connection re-keyed",
    ),
    (
        "keys-reserved",
        "a batch of connection keys recorded and their command counters reserved and saved, \
         no SetKey sent yet",
    ),
    (
        "keys-sent",
        "a batch of SetKey commands sent and answered, the connections not yet saved as \
         complete",
    ),
    (
        "keys-saved",
        "a batch of connections saved as complete, routes not installed yet",
    ),
    (
        "routed",
        "every route installed, the deployment not reported yet",
    ),
    (
        "command-sent",
        "a command (`aex call`, `disable`, ...) sent and answered, the answer not yet read",
    ),
    (
        "commit",
        "inside a state save: rows written, the transaction not committed (once per save \
         that changes something)",
    ),
];

struct Target {
    point: String,
    nth: u64,
    seen: AtomicU64,
}

fn target() -> Option<&'static Target> {
    static TARGET: OnceLock<Option<Target>> = OnceLock::new();
    TARGET
        .get_or_init(|| {
            let spec = std::env::var(ENV).ok()?;
            let (point, nth) = match spec.split_once(':') {
                Some((p, n)) => (p, n.parse().ok()?),
                None => (spec.as_str(), 1),
            };
            Some(Target {
                point: point.to_string(),
                nth,
                seen: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// Marks crash point `name`: kills the process if `AEX_CRASH_AT` asks for it here, now.
pub fn point(name: &str) {
    let Some(t) = target() else {
        return;
    };
    if t.point == name && t.seen.fetch_add(1, Ordering::SeqCst) + 1 == t.nth {
        kill_self(name);
    }
}

/// SIGKILL to this process: no destructor, no flush, no unwinding (not `abort`, which raises
/// SIGABRT and may run handlers).
fn kill_self(name: &str) -> ! {
    tracing::debug!("crash point `{name}`: killing this process");
    let _ = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(std::process::id().to_string())
        .status();
    // The signal is on its way; should `kill` be missing, fail loudly rather than go on.
    std::thread::sleep(Duration::from_secs(5));
    std::process::abort()
}
