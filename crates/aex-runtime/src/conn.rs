//! The module's connection table: which key serves which port, and the counters on each.
//!
//! Invariant: an event reaches module code only if its connection is keyed, its direction
//! and kind are the ones the module's role on that connection receives, and it opens under
//! the connection key with a counter above the last accepted one. Anything else is refused
//! and counted against the connection without calling module code; a refused event changes
//! no channel state, so it cannot block later authentic events.

use std::collections::BTreeMap;

use aex_proto::{
    ConnId, ConnStats, CounterExhausted, Direction, Event, EventKind, Interface, RecvChannel, Role,
    SendChannel, WireAlgorithm, WireKey,
};

/// The port a connection is bound to, by position in the interface lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Binding {
    Output(usize),
    Input(usize),
    Request(usize),
    Handler(usize),
}

/// An authentic event, ready for module code.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Accepted {
    /// For input `index`.
    Input { index: usize, payload: Vec<u8> },
    /// For handler `index`; the reply must echo `counter`.
    Request {
        conn: ConnId,
        index: usize,
        counter: u64,
        payload: Vec<u8>,
    },
    /// The reply the module was waiting for on a request connection: the handler's result or
    /// its authentic failure message.
    Reply { outcome: Result<Vec<u8>, String> },
}

/// Why an event was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// No key for that connection (counted by the caller as `rejected_unknown`).
    UnknownConn,
    /// Counted against the connection.
    Rejected,
}

struct Conn {
    binding: Binding,
    send: Option<SendChannel>,
    recv: Option<RecvChannel>,
    /// Counter of the request whose reply is awaited (request connections only).
    awaiting: Option<u64>,
    stats: ConnStats,
}

/// All keyed connections of the module.
#[derive(Default)]
pub(crate) struct Conns {
    map: BTreeMap<ConnId, Conn>,
}

impl Conns {
    /// Drops every connection and its keys (module disabled).
    pub(crate) fn clear(&mut self) {
        self.map.clear();
    }

    /// Whether no connection is keyed.
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Installs (or replaces, with fresh counters) the key of `conn` for `role`. The key is
    /// wiped when this returns: only the expanded channels keep it.
    pub(crate) fn install(
        &mut self,
        interface: &Interface,
        conn: ConnId,
        role: Role,
        algorithm: WireAlgorithm,
        key: WireKey,
    ) -> Result<(), String> {
        let key = key.into_secret();
        let alg = algorithm.into();
        let send = |dir| Some(SendChannel::new(alg, &key, conn, dir));
        let recv = |dir| Some(RecvChannel::new(alg, &key, conn, dir));
        let (binding, send, recv) = match role {
            Role::Output(name) => (
                Binding::Output(find("output", &interface.outputs, &name)?),
                send(Direction::Forward),
                None,
            ),
            Role::Input(name) => (
                Binding::Input(find("input", &interface.inputs, &name)?),
                None,
                recv(Direction::Forward),
            ),
            Role::Request(name) => (
                Binding::Request(find("request", &interface.requests, &name)?),
                send(Direction::Forward),
                recv(Direction::Backward),
            ),
            Role::Handler(name) => (
                Binding::Handler(find("handler", &interface.handlers, &name)?),
                send(Direction::Backward),
                recv(Direction::Forward),
            ),
            other => return Err(format!("unsupported connection role {other:?}")),
        };
        let stats = ConnStats {
            conn,
            ..ConnStats::default()
        };
        let entry = Conn {
            binding,
            send,
            recv,
            awaiting: None,
            stats,
        };
        self.map.insert(conn, entry);
        Ok(())
    }

    /// Authenticates `event` against its connection's role and channel.
    pub(crate) fn accept(&mut self, event: &Event) -> Result<Accepted, Refused> {
        let conn = self.map.get_mut(&event.conn).ok_or(Refused::UnknownConn)?;
        let accepted = conn.accept(event);
        match accepted {
            Some(_) => conn.stats.received += 1,
            None => conn.stats.rejected += 1,
        }
        accepted.ok_or(Refused::Rejected)
    }

    /// Seals `payload` once per connection bound to output `index` (fan-out). Exhausted
    /// connections are skipped and reported.
    pub(crate) fn seal_output(
        &mut self,
        index: usize,
        payload: &[u8],
    ) -> (Vec<Event>, Vec<ConnId>) {
        let mut events = Vec::new();
        let mut exhausted = Vec::new();
        for (id, conn) in &mut self.map {
            if conn.binding != Binding::Output(index) {
                continue;
            }
            match conn.seal(EventKind::Event, payload) {
                Ok(event) => events.push(event),
                Err(CounterExhausted) => exhausted.push(*id),
            }
        }
        (events, exhausted)
    }

    /// The connection of request `index`: the lowest-numbered one if the deployer bound
    /// several.
    pub(crate) fn request_conn(&self, index: usize) -> Option<ConnId> {
        self.map
            .iter()
            .find(|(_, c)| c.binding == Binding::Request(index))
            .map(|(id, _)| *id)
    }

    /// Seals a request on `conn` and marks its reply as awaited.
    pub(crate) fn seal_request(
        &mut self,
        conn: ConnId,
        payload: &[u8],
    ) -> Result<Event, CounterExhausted> {
        let entry = self.map.get_mut(&conn).ok_or(CounterExhausted)?;
        let event = entry.seal(EventKind::Request, payload)?;
        entry.awaiting = Some(event.counter);
        Ok(event)
    }

    /// Stops waiting for a reply on `conn` (answered or timed out).
    pub(crate) fn stop_waiting(&mut self, conn: ConnId) {
        if let Some(entry) = self.map.get_mut(&conn) {
            entry.awaiting = None;
        }
    }

    /// Seals the reply to request `counter` on handler connection `conn` (layout in
    /// `aex_proto::reply`).
    pub(crate) fn seal_reply(
        &mut self,
        conn: ConnId,
        counter: u64,
        result: Result<&[u8], &str>,
    ) -> Option<Result<Event, CounterExhausted>> {
        let entry = self.map.get_mut(&conn)?;
        if !matches!(entry.binding, Binding::Handler(_)) {
            return None;
        }
        let plaintext = aex_proto::reply::encode(counter, result);
        Some(entry.seal(EventKind::Reply, &plaintext))
    }

    /// Per-connection counters, in connection order.
    pub(crate) fn stats(&self) -> Vec<ConnStats> {
        self.map
            .values()
            .map(|c| ConnStats {
                gaps: c.recv.as_ref().map_or(0, RecvChannel::gaps),
                ..c.stats.clone()
            })
            .collect()
    }
}

impl Conn {
    fn seal(&mut self, kind: EventKind, payload: &[u8]) -> Result<Event, CounterExhausted> {
        let send = self.send.as_mut().ok_or(CounterExhausted)?;
        let event = send.seal(kind, payload)?;
        self.stats.sent += 1;
        Ok(event)
    }

    /// `None` for anything but an authentic event this role receives.
    fn accept(&mut self, event: &Event) -> Option<Accepted> {
        let expected = match self.binding {
            Binding::Output(_) => return None,
            Binding::Input(_) => (Direction::Forward, EventKind::Event),
            Binding::Handler(_) => (Direction::Forward, EventKind::Request),
            Binding::Request(_) => (Direction::Backward, EventKind::Reply),
        };
        if (event.dir, event.kind) != expected {
            return None;
        }
        if matches!(self.binding, Binding::Request(_)) {
            // A reply nobody waits for is refused before it can move the counter.
            self.awaiting?;
        }
        let payload = self.recv.as_mut()?.open(event).ok()?;
        match self.binding {
            Binding::Input(index) => Some(Accepted::Input { index, payload }),
            Binding::Handler(index) => Some(Accepted::Request {
                conn: event.conn,
                index,
                counter: event.counter,
                payload,
            }),
            Binding::Request(_) => {
                let awaited = self.awaiting?;
                let (echo, outcome) = aex_proto::reply::decode(&payload)?;
                if echo != awaited {
                    return None;
                }
                self.awaiting = None;
                Some(Accepted::Reply { outcome })
            }
            Binding::Output(_) => None,
        }
    }
}

/// Position of `name` in `names`, or the error the deployer shows.
fn find(kind: &str, names: &[String], name: &str) -> Result<usize, String> {
    names.iter().position(|n| n == name).ok_or_else(|| {
        let list = if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        };
        format!("module has no {kind} `{name}` ({kind}s: {list})")
    })
}
