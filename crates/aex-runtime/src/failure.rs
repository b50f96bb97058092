//! When module code fails: what is counted, what its node may read, and what a panic does.
//!
//! Invariants:
//! * every failure of module code on an authentic event, a tick or a deadline is counted per
//!   port ([`aex_proto::PortFailures`]), with a reason its node may read: the kind of failure,
//!   never a payload or a module's message (either may quote what the module keeps secret);
//! * a panic in module code is caught at the port it ran from, counted and answered like any
//!   failure (a request's sender gets the sealed failure reply), and then the module stops
//!   with [`PANIC_EXIT`]: after a panic its state may be half-changed, so nothing more runs
//!   on it and nothing of it is committed (a persistent module resumes from its last commit);
//! * the panic hook logs where module code panicked, never the panic's message.
//!
//! A module built with `panic = "abort"` cannot have its panic caught: the hook still logs
//! where, and the process ends at once (`signal: 6 (SIGABRT)` in `aex status`), unanswered.

use std::sync::Mutex;

use aex_proto::{ConnId, PortFailures};

use crate::module::{PortError, PortKind};

/// The exit status of a module that stopped after a panic (Rust's own for a panic).
pub(crate) const PANIC_EXIT: i32 = 101;

/// The longest failure message the runtime seals (a handler's, an entry point's, a refused
/// restore's); longer ones are cut at a character boundary. It keeps a failing call's answer
/// small and within a frame, whatever the module's message.
pub(crate) const MAX_FAILURE_LEN: usize = 1024;

/// Where the last panic of this process happened (`file:line:column`), set by the hook.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Replaces the default panic hook, which prints the panic's message to stderr (the node
/// reads it; the message may quote a payload or the state), by one that logs its place.
pub(crate) fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().map_or_else(
            || "an unknown place".to_owned(),
            |l| format!("{}:{}:{}", l.file(), l.line(), l.column()),
        );
        log!("module code panicked at {at} (its message is not logged)");
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(at);
        }
    }));
}

/// Where the last panic happened, if the hook saw it.
fn last_panic() -> String {
    LAST_PANIC
        .lock()
        .ok()
        .and_then(|mut last| last.take())
        .unwrap_or_else(|| "an unknown place".to_owned())
}

/// Why a port's code did not give a result.
#[derive(Debug)]
pub(crate) enum Failure {
    /// It failed as the port's signature allows (a payload that does not decode, an error).
    Port(PortError),
    /// It panicked, at this place in the module's code.
    Panicked(String),
}

impl Failure {
    /// The failure of a call that panicked.
    pub(crate) fn panicked() -> Failure {
        Failure::Panicked(last_panic())
    }

    /// Whether the module must stop.
    pub(crate) fn is_panic(&self) -> bool {
        matches!(self, Failure::Panicked(_))
    }

    /// What of it the node may read: its kind and where it panicked, never its text.
    pub(crate) fn withheld(&self) -> String {
        match self {
            Failure::Port(PortError::Payload(_)) => {
                "the payload does not decode as its argument".into()
            }
            Failure::Port(PortError::Method(message)) => format!(
                "it returned an error (its {}-byte message is not logged)",
                message.len()
            ),
            Failure::Panicked(at) => format!("it panicked at {at}; the module stopped"),
        }
    }

    /// The sealed failure message of port `name`, for whoever sent what it failed on (they
    /// sent the payload it may quote), at most `MAX_FAILURE_LEN` bytes.
    pub(crate) fn sealed(&self, name: &str) -> String {
        bounded(match self {
            Failure::Port(PortError::Payload(detail)) => {
                format!("invalid argument for `{name}`: {detail}")
            }
            Failure::Port(PortError::Method(message)) => message.clone(),
            Failure::Panicked(at) => {
                format!("`{name}` panicked at {at}; the module stopped")
            }
        })
    }
}

/// Counts a failure of port `kind` `name` in `failures` (one entry per port), on the event
/// `at` (its connection and counter), and logs it.
pub(crate) fn count(
    failures: &mut Vec<PortFailures>,
    kind: PortKind,
    name: &str,
    failure: &Failure,
    at: Option<(ConnId, u64)>,
) {
    let port = format!("{} {name}", kind_name(kind));
    let reason = failure.withheld();
    log!("{} `{name}` failed: {reason}", kind_name(kind));
    let entry = match failures.iter().position(|f| f.port == port) {
        Some(i) => &mut failures[i],
        None => {
            failures.push(PortFailures {
                port,
                ..PortFailures::default()
            });
            failures.last_mut().expect("just pushed")
        }
    };
    entry.failed += 1;
    entry.reason = reason;
    entry.conn = at.map(|(conn, _)| conn);
    entry.counter = at.map_or(0, |(_, counter)| counter);
}

fn kind_name(kind: PortKind) -> &'static str {
    match kind {
        PortKind::Input => "input",
        PortKind::Handler => "handler",
        PortKind::Entry => "entry",
        PortKind::Periodic => "periodic",
        PortKind::Deadline => "deadline",
    }
}

/// `message`, cut to at most [`MAX_FAILURE_LEN`] bytes at a character boundary.
pub(crate) fn bounded(mut message: String) -> String {
    const CUT: &str = " [cut]";
    if message.len() > MAX_FAILURE_LEN {
        let mut end = MAX_FAILURE_LEN - CUT.len();
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str(CUT);
    }
    message
}
