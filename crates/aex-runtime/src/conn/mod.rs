//! The module's connection table: which key serves which port, and the counters on each.
//!
//! Invariants:
//! * an event reaches module code only if its connection is keyed, its direction and kind are
//!   the ones the module's role on that connection receives, and it opens under the
//!   connection key with a counter above the last accepted one. Anything else is refused and
//!   counted against the connection without calling module code; a refused event changes no
//!   channel state, so it cannot block later authentic events;
//! * a reply answers exactly the request it belongs to: every key installed gets a new
//!   generation, a request is accepted under the generation of its key, and its reply is
//!   sealed only under that same generation. A handler that outlived its key (re-keyed or
//!   revoked while it waited on a request or a device) sends nothing: under the new key its
//!   late reply would answer the new requester's request with the same counter;
//! * an event goes out only while its (connection, direction) has credit, except a handler's
//!   reply, which its requester asked for and waits for (it is counted all the same); credit is
//!   granted for what was taken in on the direction the role receives (`flow.rs`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aex_proto::{
    ConnId, ConnStats, CounterExhausted, Credit, Direction, Event, EventKind, Interface,
    RecvChannel, Role, SendChannel, TraceOutcome, WireAlgorithm, WireKey,
};

use crate::flow::{self, RecvWindow, SendWindow};
use crate::trace::Trace;

mod outbox;
mod sealed;

pub(crate) use sealed::SealedConn;

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
    /// For handler `index`; the reply must echo `counter` and be sealed under `generation`.
    Request {
        conn: ConnId,
        index: usize,
        counter: u64,
        generation: u64,
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

/// What taking an event in counts: its connection, direction and cost.
pub(crate) type Intake = (ConnId, Direction, u32);

/// What `event` counts when it is taken in.
pub(crate) fn intake(event: &Event) -> Intake {
    (event.conn, event.dir, flow::cost(event))
}

/// Why a request was not sealed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unsealed {
    /// No key, or its counters are used up.
    Exhausted,
    /// The connection's window is full (`flow.rs`).
    Blocked,
}

/// What [`Conns::seal_on`] made of an output's payload.
#[derive(Debug, Default)]
pub(crate) struct Sealing {
    /// Sealed, one per connection that had credit.
    pub(crate) events: Vec<Event>,
    /// Connections whose window was full: nothing sealed for them.
    pub(crate) blocked: Vec<ConnId>,
    /// Connections whose counters are used up.
    pub(crate) exhausted: Vec<ConnId>,
    /// Connections where a persistent module holds [`outbox::HELD_ALLOWANCE`] already.
    pub(crate) full: Vec<ConnId>,
}

struct Conn {
    binding: Binding,
    /// What the connection was keyed with, so a persistent module can seal it (`persist.rs`).
    seed: Seed,
    /// The highest send counter this instance may use: what the last committed blob reserved
    /// (`persist.rs`), so that a restart from that blob never seals under a counter used
    /// before; unlimited for modules that do not persist.
    limit: u64,
    /// Which key installation this is (unique per process).
    generation: u64,
    send: Option<SendChannel>,
    recv: Option<RecvChannel>,
    /// Counter of the request whose reply is awaited (request connections only).
    awaiting: Option<u64>,
    /// The highest counter [`Conns::check`] let through to wait for its turn: an event at or
    /// below it will be stale by then (that one is accepted before it, or was stale itself).
    queued: u64,
    /// Gaps counted by the processes before this one (a persistent module resumed).
    gaps_before: u64,
    /// Credit for what this role sends.
    sending: SendWindow,
    /// Credit granted for what this role receives.
    receiving: RecvWindow,
    /// A persistent module's emits sealed and not sent yet (`outbox.rs`).
    outbox: outbox::Outbox,
    stats: ConnStats,
}

/// What a connection was keyed with.
struct Seed {
    role: Role,
    algorithm: WireAlgorithm,
    key: aex_crypto::SecretKey,
}

/// All keyed connections of the module.
pub(crate) struct Conns {
    map: BTreeMap<ConnId, Conn>,
    /// Generations installed so far.
    generations: u64,
    /// The window each receiving connection starts at (`flow::target_window`).
    target: u32,
    /// The most a fast receiver's window grows to (`flow::window_cap`).
    cap: u32,
    /// [`Conns::accept`] just found events lost on the way: their credit is owed now
    /// ([`Conns::take_revealed`]), so the caller need not look at every accepted event.
    revealed: bool,
    /// Whether send counters are limited to what a committed blob reserved (`persist.rs`).
    persistent: bool,
    /// The last events sealed and handed over, with what became of them (`aex events`).
    pub(crate) trace: Trace,
}

impl Default for Conns {
    fn default() -> Self {
        Conns {
            map: BTreeMap::new(),
            generations: 0,
            target: flow::target_window(0),
            cap: flow::window_cap(0),
            revealed: false,
            persistent: false,
            trace: Trace::default(),
        }
    }
}

impl Conns {
    /// Drops every connection and its keys (module disabled).
    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.resize();
    }

    /// Drops the keys of `conn`, whatever its role (`Command::Revoke`); returns the port it
    /// was bound to, if it was keyed.
    pub(crate) fn revoke(&mut self, conn: ConnId) -> Option<Binding> {
        let binding = self.map.remove(&conn).map(|c| c.binding);
        self.resize();
        binding
    }

    /// Connections that receive events (every role but an output's).
    pub(crate) fn receiving(&self) -> usize {
        self.map.values().filter(|c| c.recv.is_some()).count()
    }

    /// The most each receiving connection's window grows to: what the inbox must hold for
    /// each.
    pub(crate) fn window_cap(&self) -> u32 {
        self.cap
    }

    fn resize(&mut self) {
        self.target = flow::target_window(self.receiving());
        self.cap = flow::window_cap(self.receiving());
    }

    /// Whether a connection is bound to `binding`.
    pub(crate) fn bound(&self, binding: Binding) -> bool {
        self.map.values().any(|c| c.binding == binding)
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
        let seed = Seed {
            role: role.clone(),
            algorithm,
            key: aex_crypto::SecretKey::from_bytes(*key.expose_secret()),
        };
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
        self.generations += 1;
        let entry = Conn {
            binding,
            seed,
            // A persistent module sends on a new key only once a commit reserved counters.
            limit: if self.persistent { 0 } else { u64::MAX },
            generation: self.generations,
            send,
            recv,
            awaiting: None,
            queued: 0,
            gaps_before: 0,
            sending: SendWindow::default(),
            receiving: RecvWindow::default(),
            outbox: outbox::Outbox::default(),
            stats,
        };
        self.map.insert(conn, entry);
        self.resize();
        Ok(())
    }

    /// Adds `credit` to the window of the connection and direction it names, if this module
    /// sends there; counts the events a node reported dropping. Anything else is ignored
    /// (credit is unauthenticated: at worst a node makes this module send what it then drops).
    pub(crate) fn credit(&mut self, credit: &Credit) {
        let Some(conn) = self.map.get_mut(&credit.conn) else {
            return;
        };
        if conn.sends() != Some(credit.dir) {
            return;
        }
        conn.sending.grant(credit.bytes);
        conn.stats.dropped += u64::from(credit.dropped);
    }

    /// Accounts for an event of `cost` bytes on (`conn`, `dir`), taken out of the inbox at
    /// `now`, if this module receives there; the credit to grant its sender, if it is time.
    pub(crate) fn took_in(&mut self, (conn, dir, cost): Intake, now: Instant) -> Option<Credit> {
        let entry = self.map.get_mut(&conn)?;
        if entry.receives() != Some(dir) {
            return None;
        }
        let bytes = entry.receiving.took_in(cost, self.target, self.cap, now)?;
        Some(flow::grant(conn, dir, bytes))
    }

    /// Whether the last [`Conns::accept`] revealed lost events (and forgets it).
    pub(crate) fn take_revealed(&mut self) -> bool {
        std::mem::take(&mut self.revealed)
    }

    /// The connections bound to output `index`.
    pub(crate) fn outputs(&self, index: usize) -> Vec<ConnId> {
        self.map
            .iter()
            .filter(|(_, c)| c.binding == Binding::Output(index))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Seals `payload` on each of `conns` (an output's) whose window admits it at `now` (open,
    /// or a stalled window's probe due after `probe_every`); connections revoked meanwhile
    /// are skipped.
    pub(crate) fn seal_on(
        &mut self,
        conns: &[ConnId],
        payload: &[u8],
        now: Instant,
        probe_every: Duration,
    ) -> Sealing {
        let mut sealing = Sealing::default();
        for id in conns {
            let Some(conn) = self.map.get_mut(id) else {
                continue;
            };
            // A persistent module's emit is held for its commit: not gated by the window,
            // which only sent events can reopen (`outbox.rs`).
            let admitted = if self.persistent {
                match conn.hold_admission() {
                    outbox::Admission::Yes => true,
                    outbox::Admission::Blocked => false,
                    outbox::Admission::Full => {
                        sealing.full.push(*id);
                        continue;
                    }
                }
            } else {
                conn.sending.admit(now, probe_every)
            };
            if !admitted {
                sealing.blocked.push(*id);
                continue;
            }
            match conn.seal(EventKind::Event, payload) {
                Ok(event) => {
                    if self.persistent {
                        conn.held(&event);
                    }
                    self.trace.record(&event, now, TraceOutcome::Sent);
                    sealing.events.push(event)
                }
                Err(CounterExhausted) => sealing.exhausted.push(*id),
            }
        }
        sealing
    }

    /// Whether a wait for credit on `conn` ran out with none arriving since.
    pub(crate) fn stalled(&self, conn: ConnId) -> bool {
        self.map.get(&conn).is_some_and(|c| c.sending.stalled())
    }

    /// Whether `conn` may send now (a revoked connection may: there is nothing to wait for);
    /// for a persistent module's emits, whether its outbox is empty (`outbox.rs`).
    pub(crate) fn open(&self, conn: ConnId) -> bool {
        if self.persistent {
            return self.outbox_clear(conn);
        }
        self.map.get(&conn).is_none_or(|c| c.sending.open())
    }

    /// Counts an emit or request that found the window of each of `conns` full; with
    /// `stalled_at`, after a wait that ran out then.
    pub(crate) fn blocked(&mut self, conns: &[ConnId], stalled_at: Option<Instant>) {
        for id in conns {
            if let Some(conn) = self.map.get_mut(id) {
                conn.stats.blocked += 1;
                if let Some(now) = stalled_at {
                    conn.sending.stall(now);
                }
            }
        }
    }

    /// Authenticates `event` against its connection's role and channel, decrypting in its own
    /// buffer: once its header is for a channel here, its ciphertext is taken.
    pub(crate) fn accept(&mut self, event: &mut Event, now: Instant) -> Result<Accepted, Refused> {
        // Its header, for the trace: accepting takes its ciphertext.
        let (id, dir, counter, size) =
            (event.conn, event.dir, event.counter, event.ciphertext.len());
        let Some(conn) = self.map.get_mut(&event.conn) else {
            let outcome = TraceOutcome::UnknownConn;
            self.trace
                .record_header(id, dir, counter, size, now, outcome);
            return Err(Refused::UnknownConn);
        };
        let gaps = conn.recv.as_ref().map_or(0, RecvChannel::gaps);
        let cost = flow::cost(event);
        let accepted = conn.accept(event);
        let outcome = match accepted {
            Some(_) => {
                conn.stats.received += 1;
                // Skipped counters are events lost on the way: their credit comes back now
                // (`flow.rs`), or the sender's window would shrink by them for good.
                let lost = conn.recv.as_ref().map_or(0, RecvChannel::gaps) - gaps;
                if lost > 0 {
                    let window = conn.receiving.window(self.target, self.cap);
                    conn.receiving.lost(lost, cost, window);
                    self.revealed = true;
                }
                TraceOutcome::Accepted { gap: lost }
            }
            None => {
                conn.stats.rejected += 1;
                TraceOutcome::Rejected
            }
        };
        self.trace
            .record_header(id, dir, counter, size, now, outcome);
        accepted.ok_or(Refused::Rejected)
    }

    /// Counts the event just accepted on `conn` as `failed` instead of `received`: the module
    /// code it reached failed.
    pub(crate) fn failed(&mut self, conn: ConnId) {
        if let Some(conn) = self.map.get_mut(&conn) {
            conn.stats.received = conn.stats.received.saturating_sub(1);
            conn.stats.failed += 1;
        }
    }

    /// Refuses, and counts as [`Conns::accept`] would, an event that `accept` could never
    /// accept in its turn, behind the events `check` let through before it, while these keys
    /// stay installed (a replay of one of those included); changes no channel state otherwise.
    pub(crate) fn check(&mut self, event: &Event, now: Instant) -> Result<(), Refused> {
        let Some(conn) = self.map.get_mut(&event.conn) else {
            self.trace.record(event, now, TraceOutcome::UnknownConn);
            return Err(Refused::UnknownConn);
        };
        let acceptable = event.counter > conn.queued
            && conn.expects(event)
            && conn.recv.as_ref().is_some_and(|r| r.peek(event).is_ok());
        if !acceptable {
            conn.stats.rejected += 1;
            self.trace.record(event, now, TraceOutcome::Rejected);
            return Err(Refused::Rejected);
        }
        conn.queued = event.counter;
        Ok(())
    }

    /// The connection of request `index`: the lowest-numbered one if the deployer bound
    /// several.
    pub(crate) fn request_conn(&self, index: usize) -> Option<ConnId> {
        self.map
            .iter()
            .find(|(_, c)| c.binding == Binding::Request(index))
            .map(|(id, _)| *id)
    }

    /// Seals a request on `conn`, if its window admits it at `now` (see [`Conns::seal_on`]),
    /// and marks its reply as awaited.
    pub(crate) fn seal_request(
        &mut self,
        conn: ConnId,
        payload: &[u8],
        now: Instant,
        probe_every: Duration,
    ) -> Result<Event, Unsealed> {
        let entry = self.map.get_mut(&conn).ok_or(Unsealed::Exhausted)?;
        if !entry.sending.admit(now, probe_every) {
            return Err(Unsealed::Blocked);
        }
        let event = entry
            .seal(EventKind::Request, payload)
            .map_err(|CounterExhausted| Unsealed::Exhausted)?;
        entry.awaiting = Some(event.counter);
        self.trace.record(&event, now, TraceOutcome::Sent);
        Ok(event)
    }

    /// Stops waiting for a reply on `conn` (answered or timed out).
    pub(crate) fn stop_waiting(&mut self, conn: ConnId) {
        if let Some(entry) = self.map.get_mut(&conn) {
            entry.awaiting = None;
        }
    }

    /// Seals the reply to request `counter` on handler connection `conn` (layout in
    /// `aex_proto::reply`); `None` unless `conn` still holds the key of `generation`, the one
    /// the request arrived under.
    pub(crate) fn seal_reply(
        &mut self,
        conn: ConnId,
        generation: u64,
        counter: u64,
        result: Result<&[u8], &str>,
        now: Instant,
    ) -> Option<Result<Event, CounterExhausted>> {
        let entry = self.map.get_mut(&conn)?;
        if entry.generation != generation || !matches!(entry.binding, Binding::Handler(_)) {
            return None;
        }
        let plaintext = aex_proto::reply::encode(counter, result);
        let sealed = entry.seal(EventKind::Reply, &plaintext);
        if let Ok(event) = &sealed {
            self.trace.record(event, now, TraceOutcome::Sent);
        }
        Some(sealed)
    }

    /// Per-connection counters, in connection order.
    pub(crate) fn stats(&self) -> Vec<ConnStats> {
        self.map.values().map(Conn::counted).collect()
    }
}

impl Conn {
    /// Its counters, gaps included.
    fn counted(&self) -> ConnStats {
        ConnStats {
            gaps: self.gaps_before + self.recv.as_ref().map_or(0, RecvChannel::gaps),
            ..self.stats.clone()
        }
    }

    /// Seals and accounts for one event (its cost comes off the window, whether it was open
    /// or not: a reply goes out regardless).
    fn seal(&mut self, kind: EventKind, payload: &[u8]) -> Result<Event, CounterExhausted> {
        let send = self.send.as_mut().ok_or(CounterExhausted)?;
        if send.last_counter() >= self.limit {
            return Err(CounterExhausted);
        }
        let event = send.seal(kind, payload)?;
        self.stats.sent += 1;
        self.sending.spend(flow::cost(&event));
        Ok(event)
    }

    /// The direction this role sends on.
    fn sends(&self) -> Option<Direction> {
        match self.binding {
            Binding::Output(_) | Binding::Request(_) => Some(Direction::Forward),
            Binding::Handler(_) => Some(Direction::Backward),
            Binding::Input(_) => None,
        }
    }

    /// The direction this role receives on.
    fn receives(&self) -> Option<Direction> {
        match self.binding {
            Binding::Input(_) | Binding::Handler(_) => Some(Direction::Forward),
            Binding::Request(_) => Some(Direction::Backward),
            Binding::Output(_) => None,
        }
    }

    /// Whether this role receives `event`'s direction and kind now (before its tag).
    fn expects(&self, event: &Event) -> bool {
        let expected = match self.binding {
            Binding::Output(_) => return false,
            Binding::Input(_) => (Direction::Forward, EventKind::Event),
            Binding::Handler(_) => (Direction::Forward, EventKind::Request),
            // A reply nobody waits for is refused before it can move the counter.
            Binding::Request(_) if self.awaiting.is_none() => return false,
            Binding::Request(_) => (Direction::Backward, EventKind::Reply),
        };
        (event.dir, event.kind) == expected
    }

    /// `None` for anything but an authentic event this role receives.
    fn accept(&mut self, event: &mut Event) -> Option<Accepted> {
        if !self.expects(event) {
            return None;
        }
        let payload = self.recv.as_mut()?.open_in_place(event).ok()?;
        match self.binding {
            Binding::Input(index) => Some(Accepted::Input { index, payload }),
            Binding::Handler(index) => Some(Accepted::Request {
                conn: event.conn,
                index,
                counter: event.counter,
                generation: self.generation,
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
