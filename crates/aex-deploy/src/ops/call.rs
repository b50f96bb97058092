//! `aex call`, `aex output`, `aex request`: the owner talking to a running application.
//!
//! * `call` invokes an entry point, sealed under the module key like every command;
//! * `output` and `request` use a *direct connection*, where the deployer itself is the
//!   source: the deployer holds the connection key and its counters in its state file, so
//!   each invocation continues the counter sequence and a reply is accepted only once. Like
//!   any source it sends only while the module's window has room ([`aex_proto::flow`]): it
//!   asks the node before sealing, and waits for room at most a bound ([`WINDOW_WAIT`] unless
//!   told otherwise); a window still full then fails the operation with
//!   [`Error::WindowFull`], nothing sent, instead of an event the node would drop.

mod window;

use std::time::{Duration, Instant};

use aex_crypto::Algorithm;
use aex_proto::{
    Command, ConnId, Direction, EventKind, NodeErrorKind, NodeRequest, NodeResponse, RecvChannel,
    SendChannel,
};

use crate::app::App;
use crate::client::ClientError;
use crate::error::{Error, Result};
use window::{wait_for_room, RealClock, Room, Window};

pub use window::WINDOW_WAIT;

/// Calls entry point `entry` of `module` with `payload`; returns its result bytes.
pub fn call(app: &mut App, module: &str, entry: &str, payload: &[u8]) -> Result<Vec<u8>> {
    if app.descriptor().module(module).is_none() {
        return Err(app.no_module(module));
    }
    app.command(
        module,
        &format!("call entry point `{entry}`"),
        &Command::Call {
            entry: entry.into(),
            payload: payload.to_vec(),
        },
    )
}

/// What became of an event sent on a direct connection, as the module's node reports it.
///
/// An input answers nothing, so the deployer asks the node, right after the event, for the
/// module's own counters: the node handles a session's frames in order and queues the
/// counters' request behind the event, so they tell whether the module accepted it. The node
/// relays them unauthenticated: a lying node can claim delivery, as it can drop the event;
/// what it cannot do is make the module accept a forged one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// The module's counters show the event accepted.
    Accepted,
    /// The module has not accepted it: the node dropped it (no route, a full queue), or the
    /// module refused it (no key for the connection, a stale counter).
    NotAccepted {
        /// The module.
        module: String,
        /// The node.
        node: String,
        /// The event's counter.
        counter: u64,
        /// The last counter the module accepted on the connection, `None` if it holds no key
        /// for it.
        last_accepted: Option<u64>,
        /// Events the module refused on the connection so far.
        rejected: u64,
    },
    /// The module accepted it, and its input failed on it: the payload did not decode as
    /// the input's argument, the input returned an error, or it panicked (then the module
    /// stopped, and [`output`] says so with [`Error::Stopped`] if it ended before its node
    /// answered).
    Failed {
        /// The module.
        module: String,
        /// The input, as `input reading`.
        port: String,
        /// Why, as the module's runtime tells its node (never the payload or the module's
        /// message).
        reason: String,
    },
    /// The node did not report the module's counters: sent, fate unknown.
    Unknown(String),
}

/// Sends `payload` on a direct connection to a module's input, and reports what became of it.
/// While the module's window is full it waits for room, at most `wait` ([`WINDOW_WAIT`] is
/// the usual bound), then fails with [`Error::WindowFull`], having sent nothing.
pub fn output(app: &mut App, connection: &str, payload: &[u8], wait: Duration) -> Result<Delivery> {
    let (name, node, counter) = send_direct(app, connection, EventKind::Event, payload, wait)?;
    let (id, module) = {
        let rec = &app.connections()[&name];
        let module = receiver(app, &name);
        (ConnId(rec.id), module)
    };
    let slot = app
        .module(&module)
        .map(|m| m.slot(&module))
        .unwrap_or_else(|| module.clone());
    // A module takes events in order, after whatever it is busy with (a long handler, a
    // device access): ask again, briefly, before calling the event not accepted.
    let deadline = Instant::now() + app.timeout_or(ACCEPT_WAIT);
    let mut pause = Duration::from_millis(5);
    loop {
        let status = match app.request(&node, "report status", NodeRequest::Status) {
            Ok(NodeResponse::Status(s)) => s,
            Ok(_) => {
                return Ok(Delivery::Unknown(format!(
                    "node `{node}` answered no status"
                )))
            }
            Err(e) => return Ok(Delivery::Unknown(crate::error::error_chain(&e))),
        };
        let Some(live) = status.modules.iter().find(|m| m.name == slot) else {
            return Ok(Delivery::Unknown(format!(
                "node `{node}` reported no module `{module}`"
            )));
        };
        if let Some(stopped) = stopped(&module, &node, live) {
            return Err(stopped);
        }
        // A running module without counters did not answer the node in time (it may be
        // ending): asked again until the deadline.
        if let Some(stats) = &live.stats {
            let conn = stats.conns.iter().find(|c| c.conn == id);
            // Counters a receiver skipped count as gaps: received + failed + gaps is the
            // last it accepted.
            let last_accepted = conn.map(|c| c.received + c.failed + c.gaps);
            if last_accepted.is_some_and(|last| last >= counter) {
                let failure = stats
                    .failures
                    .iter()
                    .find(|f| f.conn == Some(id) && f.counter == counter);
                return Ok(match failure {
                    Some(f) => Delivery::Failed {
                        module,
                        port: f.port.clone(),
                        reason: f.reason.clone(),
                    },
                    None => Delivery::Accepted,
                });
            }
            if Instant::now() >= deadline {
                return Ok(Delivery::NotAccepted {
                    module,
                    node,
                    counter,
                    last_accepted,
                    rejected: conn.map_or(stats.rejected_unknown, |c| c.rejected),
                });
            }
        } else if Instant::now() >= deadline {
            return Ok(Delivery::Unknown(format!(
                "node `{node}` reported no counters of module `{module}`"
            )));
        }
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// [`Error::Stopped`] if the node reports `live`, the instance of `module`, ended.
fn stopped(module: &str, node: &str, live: &aex_proto::ModuleStatus) -> Option<Error> {
    if live.running {
        return None;
    }
    Some(Error::Stopped {
        module: module.to_owned(),
        node: node.to_owned(),
        exit: live
            .exit
            .clone()
            .unwrap_or_else(|| "it ended, how is unknown".into()),
        log_tail: live.log_tail.clone(),
    })
}

/// How often [`request`] asks the node whether the module still runs while it waits for the
/// reply (`NodeRequest::Module`): a module that died answers nothing, and its requester
/// learns it within this.
const LIVENESS_EVERY: Duration = Duration::from_millis(250);

/// How long [`output`] keeps asking whether the module accepted the event before it reports
/// that it did not, unless [`App::set_timeout`] set one limit for every node wait.
pub const ACCEPT_WAIT: Duration = Duration::from_secs(2);

/// How long [`request`] waits for the reply, unless [`App::set_timeout`] set one limit for
/// every node wait.
pub const REPLY_WAIT: Duration = Duration::from_secs(10);

/// Sends `payload` on a direct connection to a module's handler and waits for the reply (at
/// most [`REPLY_WAIT`], or the application's limit). Before sending it waits for room in the
/// module's window as [`output`] does, at most `room_wait`.
pub fn request(
    app: &mut App,
    connection: &str,
    payload: &[u8],
    room_wait: Duration,
) -> Result<Vec<u8>> {
    let wait = app.timeout_or(REPLY_WAIT);
    let (name, node, counter) =
        send_direct(app, connection, EventKind::Request, payload, room_wait)?;
    let module = receiver(app, &name);
    let slot = app
        .module(&module)
        .map(|m| m.slot(&module))
        .unwrap_or_else(|| module.clone());
    let deadline = Instant::now() + wait;
    // Cleared if the node cannot say how one module runs (an older node agent).
    let mut ask_liveness = true;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout {
                what: format!("the reply on connection `{name}`"),
                limit: wait,
            });
        }
        let event = app
            .client(&node)?
            .next_event(left.min(LIVENESS_EVERY))
            .map_err(|source| Error::Node {
                node: node.clone(),
                action: format!("deliver the reply on connection `{name}`"),
                source,
            })?;
        let Some(event) = event else {
            // No reply yet: is the module still there to give one? The node answers this
            // itself, at once, however busy the module is.
            if ask_liveness {
                let ask = NodeRequest::Module {
                    module: slot.clone(),
                };
                match app.request(&node, &format!("report module `{module}`"), ask) {
                    Ok(NodeResponse::Module(live)) => {
                        if let Some(e) = stopped(&module, &node, &live) {
                            return Err(e);
                        }
                    }
                    _ => ask_liveness = false,
                }
            }
            continue;
        };
        let rec = &app.connections()[&name];
        if event.conn != ConnId(rec.id) || event.kind != EventKind::Reply {
            continue;
        }
        let alg = Algorithm::from_name(&rec.algorithm).unwrap_or_default();
        let mut rx = RecvChannel::resume(
            alg,
            rec.key.expose_secret(),
            ConnId(rec.id),
            Direction::Backward,
            rec.last_received,
        );
        // A reply that fails authentication or is stale is ignored: the genuine one may follow.
        let Ok(plaintext) = rx.open(&event) else {
            continue;
        };
        let last = rx.last_counter();
        if let Some(rec) = app.connection_mut(&name) {
            rec.last_received = last;
        }
        app.save()?;
        match aex_proto::reply::decode(&plaintext) {
            Some((echo, Ok(result))) if echo == counter => return Ok(result),
            Some((echo, Err(message))) if echo == counter => {
                return Err(Error::Refused {
                    module,
                    action: format!("answer the request on connection `{name}`"),
                    message,
                });
            }
            _ => continue,
        }
    }
}

/// Seals and sends one event on a direct connection, once the module's window has room (at
/// most `wait` for it); returns (connection, node, counter).
fn send_direct(
    app: &mut App,
    connection: &str,
    kind: EventKind,
    payload: &[u8],
    wait: Duration,
) -> Result<(String, String, u64)> {
    let name = resolve_direct(app, connection)?;
    let spec = app
        .descriptor()
        .connections
        .iter()
        .find(|c| c.name == name)
        .cloned()
        .expect("resolved from the descriptor");
    // Where the attested instance runs (it may have moved with `aex update --node`).
    let node = match app.module(&spec.to.module) {
        Some(m) => m.node.clone(),
        None => app
            .descriptor()
            .module(&spec.to.module)
            .map(|m| m.node.clone())
            .unwrap_or_default(),
    };
    let Some(id) = app.connection(&name).map(|rec| ConnId(rec.id)) else {
        return Err(Error::NotDeployed {
            module: spec.to.module.clone(),
        });
    };
    // Before sealing: an event that is not sent takes no counter.
    let mut answered = false;
    let room = wait_for_room(wait, &mut RealClock, || -> Result<Window> {
        let window = ask_window(app, &node, &name, id, answered)?;
        answered |= matches!(window, Window::Known { .. });
        Ok(window)
    })?;
    match room {
        Room::Open | Room::Unchecked => {}
        Room::Full { in_flight } => {
            return Err(Error::WindowFull {
                connection: name,
                module: spec.to.module.clone(),
                node,
                in_flight,
                waited: wait,
            })
        }
    }
    let Some(rec) = app.connection_mut(&name) else {
        return Err(Error::NotDeployed {
            module: spec.to.module.clone(),
        });
    };
    let alg = Algorithm::from_name(&rec.algorithm).unwrap_or_default();
    let mut tx = SendChannel::resume(
        alg,
        rec.key.expose_secret(),
        ConnId(rec.id),
        Direction::Forward,
        rec.last_sent,
    );
    let event = tx.seal(kind, payload).map_err(|_| Error::Connection {
        message: format!(
            "connection `{name}` has exhausted its counter; run `aex deploy` to re-key it"
        ),
        given: None,
        valid: vec![],
    })?;
    rec.last_sent = event.counter;
    let counter = event.counter;
    // The counter is durable before the event leaves: it is never used twice.
    app.save()?;
    app.client(&node)?
        .send_event(event)
        .map_err(|source| Error::Node {
            node: node.clone(),
            action: format!("accept an event on connection `{name}`"),
            source,
        })?;
    Ok((name, node, counter))
}

/// Asks `node` for the deployer's window on direct connection `name` (id `id`); `answered`
/// says whether it already told a window in this wait.
///
/// A node that does not keep windows is [`Window::Unknown`], and the event goes out unchecked,
/// as before flow control: a node agent that knows the request but not this one answers
/// `BadRequest`, and one older than the request cannot decode it and closes the session (the
/// next request opens a new one). A node that answered before and then closes the session is
/// not older, it failed: that, like any other failure, is the operation's.
fn ask_window(app: &mut App, node: &str, name: &str, id: ConnId, answered: bool) -> Result<Window> {
    let body = NodeRequest::Window {
        conn: id,
        dir: Direction::Forward,
    };
    let action = format!("report the window of connection `{name}`");
    match app.request(node, &action, body) {
        Ok(NodeResponse::Window { credit, in_flight }) => Ok(Window::Known { credit, in_flight }),
        Ok(_) => Err(Error::Node {
            node: node.into(),
            action,
            source: ClientError::Unexpected {
                addr: app.node_spec(node)?.address,
                request: "Window",
            },
        }),
        Err(Error::Node {
            source: ClientError::Node(e),
            ..
        }) if e.kind == NodeErrorKind::BadRequest => {
            tracing::debug!(
                node,
                connection = name,
                reason = %e,
                "the node keeps no window; sending unchecked"
            );
            Ok(Window::Unknown)
        }
        Err(Error::Node {
            source: ClientError::Closed { .. },
            ..
        }) if !answered => {
            tracing::debug!(
                node,
                connection = name,
                "the node closed the session when asked for the window; sending unchecked"
            );
            Ok(Window::Unknown)
        }
        Err(e) => Err(e),
    }
}

/// Finds a direct connection by its name or by its target `module.port`.
fn resolve_direct(app: &App, connection: &str) -> Result<String> {
    let direct: Vec<_> = app
        .descriptor()
        .connections
        .iter()
        .filter(|c| matches!(c.from, crate::descriptor::From::Deployer))
        .collect();
    direct
        .iter()
        .find(|c| c.name == connection || c.to.to_string() == connection)
        .map(|c| c.name.clone())
        .ok_or_else(|| Error::Connection {
            message: format!("no direct connection `{connection}` (direct connections have `from = \"deployer\"`)"),
            given: Some(connection.to_string()),
            valid: direct.iter().map(|c| c.name.clone()).collect(),
        })
}

/// The module at the receiving end of direct connection `connection` (empty if the
/// descriptor has no such connection).
fn receiver(app: &App, connection: &str) -> String {
    app.descriptor()
        .connections
        .iter()
        .find(|c| c.name == connection)
        .map(|c| c.to.module.clone())
        .unwrap_or_default()
}
