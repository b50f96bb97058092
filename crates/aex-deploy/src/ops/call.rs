//! `aex call`, `aex output`, `aex request`: the owner talking to a running application.
//!
//! * `call` invokes an entry point, sealed under the module key like every command;
//! * `output` and `request` use a *direct connection*, where the deployer itself is the
//!   source: the deployer holds the connection key and its counters in its state file, so
//!   each invocation continues the counter sequence and a reply is accepted only once.

use std::time::{Duration, Instant};

use aex_crypto::Algorithm;
use aex_proto::{Command, ConnId, Direction, EventKind, RecvChannel, SendChannel};

use crate::app::App;
use crate::error::{Error, Result};

/// Calls entry point `entry` of `module` with `payload`; returns its result bytes.
pub fn call(app: &mut App, module: &str, entry: &str, payload: &[u8]) -> Result<Vec<u8>> {
    if app.desc.module(module).is_none() {
        return Err(Error::Connection {
            message: format!("no module `{module}` in the descriptor"),
            given: Some(module.to_string()),
            valid: app.desc.modules.iter().map(|m| m.name.clone()).collect(),
        });
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

/// Sends `payload` on a direct connection to a module's input.
pub fn output(app: &mut App, connection: &str, payload: &[u8]) -> Result<()> {
    send_direct(app, connection, EventKind::Event, payload).map(|_| ())
}

/// Sends `payload` on a direct connection to a module's handler and waits for the reply.
pub fn request(app: &mut App, connection: &str, payload: &[u8], wait: Duration) -> Result<Vec<u8>> {
    let (name, node, counter) = send_direct(app, connection, EventKind::Request, payload)?;
    let deadline = Instant::now() + wait;
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
            .next_event(left)
            .map_err(|source| Error::Node {
                node: node.clone(),
                action: format!("deliver the reply on connection `{name}`"),
                source,
            })?;
        let Some(event) = event else { continue };
        let rec = &app.state.state.connections[&name];
        if event.conn != ConnId(rec.id) || event.kind != EventKind::Reply {
            continue;
        }
        let alg = Algorithm::from_name(&rec.algorithm).unwrap_or_default();
        let mut rx = RecvChannel::resume(
            alg,
            &rec.key.0,
            ConnId(rec.id),
            Direction::Backward,
            rec.last_received,
        );
        // A reply that fails authentication or is stale is ignored: the genuine one may follow.
        let Ok(plaintext) = rx.open(&event) else {
            continue;
        };
        let last = rx.last_counter();
        if let Some(rec) = app.state.state.connections.get_mut(&name) {
            rec.last_received = last;
        }
        app.state.save()?;
        match aex_proto::reply::decode(&plaintext) {
            Some((echo, Ok(result))) if echo == counter => return Ok(result),
            Some((echo, Err(message))) if echo == counter => {
                let module = app
                    .desc
                    .connections
                    .iter()
                    .find(|c| c.name == name)
                    .map(|c| c.to.module.clone())
                    .unwrap_or_default();
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

/// Seals and sends one event on a direct connection; returns (connection, node, counter).
fn send_direct(
    app: &mut App,
    connection: &str,
    kind: EventKind,
    payload: &[u8],
) -> Result<(String, String, u64)> {
    let name = resolve_direct(app, connection)?;
    let spec = app
        .desc
        .connections
        .iter()
        .find(|c| c.name == name)
        .cloned()
        .expect("resolved from the descriptor");
    // Where the attested instance runs (it may have moved with `aex update --node`).
    let node = match app.state.state.modules.get(&spec.to.module) {
        Some(m) => m.node.clone(),
        None => app
            .desc
            .module(&spec.to.module)
            .map(|m| m.node.clone())
            .unwrap_or_default(),
    };
    let Some(rec) = app.state.state.connections.get_mut(&name) else {
        return Err(Error::NotDeployed {
            module: spec.to.module.clone(),
        });
    };
    let alg = Algorithm::from_name(&rec.algorithm).unwrap_or_default();
    let mut tx = SendChannel::resume(
        alg,
        &rec.key.0,
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
    app.state.save()?;
    app.client(&node)?
        .send_event(event)
        .map_err(|source| Error::Node {
            node: node.clone(),
            action: format!("accept an event on connection `{name}`"),
            source,
        })?;
    Ok((name, node, counter))
}

/// Finds a direct connection by its name or by its target `module.port`.
fn resolve_direct(app: &App, connection: &str) -> Result<String> {
    let direct: Vec<_> = app
        .desc
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
