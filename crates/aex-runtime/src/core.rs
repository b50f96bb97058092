//! What the runtime holds besides the module's own state.
//!
//! [`Core`] is split from the module value so that module code can be handed a
//! [`Context`](crate::Context) borrowing the core while the runtime borrows the module. It
//! owns the one blocking wait the runtime has besides its main loop ([`Core::wait_for`]),
//! shared by a request waiting for its reply and a device access waiting for the TEE layer's
//! answer (`device.rs`). Invariant: while a call waits, no module code runs; events and
//! commands that arrive meanwhile are queued in order and handled after the current call
//! returns, only `Stats` and `Trace` are answered at once (and a key delivery, which runs no module code,
//! when nothing is queued before it), and periodic ticks are dropped (a late trigger is not
//! caught up on). The queue is bounded in bytes, and events that could never be accepted are
//! refused on arrival instead of queued (`backlog.rs`).
//!
//! It also holds the module's lifecycle: attested (a command key), then **armed** by the first
//! authenticated `Restore`, `SetKey`, `Call` or `Start` (no module code runs on the fresh
//! `Default` state before: it may be a placeholder for a state about to be restored), then
//! possibly retired or disabled for good.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use aex_crypto::{Measurement, ModuleKeyAgreement};
use aex_proto::{
    Command, CommandChannel, CommandReply, ConnId, Direction, FromModule, Interface, ModuleStats,
    Role, Sealed, ToModule, WireAlgorithm, WireKey,
};

use crate::backlog::{inbox_ceiling, Deferred};
use crate::clock::Clock;
use crate::conn::{intake, Accepted, Conns, Intake, Refused, Unsealed};
use crate::deadline::{Deadline, Deadlines};
use crate::error::Error;
use crate::link::{Link, Recv};
use crate::port::{Output, Request};

/// Default time a request waits for its reply.
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Default time an emit waits for credit on a full window.
pub(crate) const DEFAULT_EMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Runtime state shared by the main loop and [`Context`](crate::Context).
pub(crate) struct Core {
    pub(crate) interface: Interface,
    pub(crate) conns: Conns,
    pub(crate) link: Link,
    /// Messages that arrived while a request waited, in arrival order.
    pub(crate) deferred: Deferred,
    /// Calls from module-owned threads that arrived while a request waited.
    pub(crate) deferred_local: VecDeque<crate::link::LocalCall>,
    /// The unused key agreement; `None` once the one agreement of this process is made.
    pub(crate) agreement: Option<ModuleKeyAgreement>,
    /// What this module claims to be (from the node); bound into the module key.
    pub(crate) measurement: Measurement,
    /// Commands under the module key; `None` until attested.
    pub(crate) commands: Option<CommandChannel>,
    pub(crate) counters: Counters,
    /// Failures of module code, one entry per port (counted by `failure.rs`).
    pub(crate) failures: Vec<aex_proto::PortFailures>,
    /// Deadline alarms fired, per input (`ModuleStats::alarms`).
    pub(crate) alarms: Vec<aex_proto::DeadlineAlarms>,
    pub(crate) request_timeout: Duration,
    /// How long an emit waits for credit (`flow.rs`).
    pub(crate) emit_timeout: Duration,
    /// The id of the next device access (`device.rs`).
    pub(crate) next_device_id: u64,
    /// Set by the first authentic `Restore` that succeeds, `SetKey`, `Call` or `Start`: module
    /// code may run (ticks, deadlines, calls from its threads).
    pub(crate) armed: bool,
    /// The SHA-256 of the snapshot a `Restore` put in place, so that the same `Restore` sent
    /// again (by a deployer that crashed before recording it) is answered without replacing a
    /// state that may have moved on since.
    pub(crate) restored: Option<[u8; 32]>,
    /// Set by an authentic `Disable`: the keys are dropped once the reply is sent.
    pub(crate) disabled: bool,
    /// Set by an authentic `Retire`: the snapshot it took, answered again if asked again and
    /// read in chunks. A retired module holds no connection key and runs no code for its own
    /// threads.
    pub(crate) retired: Option<crate::transfer::Retirement>,
    /// The checkpoint an authentic `Checkpoint` took, read in chunks by the owner.
    pub(crate) checkpoint: Option<crate::transfer::Retirement>,
    /// Snapshot chunks staged by `WriteState` for `Restore`.
    pub(crate) staged: crate::transfer::Staged,
    /// Symmetric TEE kinds: the module key the platform provisioned, until attestation.
    pub(crate) provisioned: Option<Provisioned>,
    /// Symmetric TEE kinds: a copy of the provisioned key kept for the MAC of attested TLS
    /// evidence (`evidence.rs`), which only ever covers the all-zero peer key, a key the
    /// attestation refuses.
    pub(crate) evidence_key: Option<Provisioned>,
    /// The clocks of the module's deadlines.
    pub(crate) deadlines: Deadlines,
    /// When each periodic entry (by position in `interface.periodic`) last started running.
    pub(crate) ticked: Vec<Option<Instant>>,
    /// Where every time-dependent decision reads the time (`clock.rs`).
    pub(crate) clock: Clock,
    /// Persistent modules only: sealing, held effects, resumption (`persist.rs`).
    pub(crate) persist: Option<crate::sealing::Persistence>,
}

/// A module key handed over by a symmetric TEE platform.
pub(crate) struct Provisioned {
    /// TEE kind name, bound into the attestation MAC.
    pub(crate) kind: String,
    /// Whether the platform is simulated, bound into the attestation MAC.
    pub(crate) simulated: bool,
    /// The module key (zeroized on drop).
    pub(crate) key: aex_crypto::SecretKey,
}

/// What reached a blocking call's waiting loop ([`Core::wait_for`]) that the loop does not
/// handle itself.
pub(crate) enum Arrived {
    /// A message from the node other than `Stats`: an event, a command that must wait its
    /// turn, a device answer, ...
    Message(ToModule),
    /// A key delivery, handled at once during the wait, keyed this connection.
    Keyed(ConnId),
    /// Credit, added at once during the wait, for what this connection sends.
    Credit(ConnId),
}

/// What a blocking call makes of what [`Arrived`].
pub(crate) enum Step<T> {
    /// Its answer: the wait ends.
    Done(T),
    /// Consumed or dropped: keep waiting.
    Wait,
    /// Not its business: queued, in order, for after the current call.
    Defer(ToModule),
}

/// Why a wait ended without an answer.
pub(crate) enum Unanswered {
    /// The time allowed passed.
    Timeout,
    /// The node closed the link (or writing to it failed).
    Closed,
    /// More input that may be authentic arrived meanwhile than the runtime holds
    /// (`backlog.rs`).
    Overloaded,
}

/// Module-wide counters reported in [`ModuleStats`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counters {
    pub(crate) rejected_unknown: u64,
    pub(crate) rejected_commands: u64,
    pub(crate) commands: u64,
    pub(crate) rejected_ticks: u64,
    pub(crate) refused_commands: u64,
    pub(crate) dropped_replies: u64,
    pub(crate) refused_writes: u64,
}

impl Core {
    /// A fresh core for a module with `interface`.
    pub(crate) fn new(
        interface: Interface,
        deadlines: &[Deadline],
        link: Link,
        measurement: Measurement,
    ) -> Self {
        let persistent = interface.persistent;
        let mut core = Core {
            deadlines: Deadlines::new(deadlines, &interface.inputs),
            ticked: vec![None; interface.periodic.len()],
            interface,
            conns: Conns::default(),
            link,
            deferred: Deferred::default(),
            deferred_local: VecDeque::new(),
            agreement: Some(ModuleKeyAgreement::new()),
            measurement,
            commands: None,
            counters: Counters::default(),
            failures: Vec::new(),
            alarms: Vec::new(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            emit_timeout: DEFAULT_EMIT_TIMEOUT,
            next_device_id: 1,
            armed: false,
            restored: None,
            disabled: false,
            retired: None,
            checkpoint: None,
            staged: Default::default(),
            provisioned: None,
            evidence_key: None,
            clock: Clock::default(),
            persist: None,
        };
        if persistent {
            core.persist = Some(crate::sealing::Persistence::default());
        }
        core
    }

    /// Everything the runtime counts.
    pub(crate) fn stats(&self) -> ModuleStats {
        ModuleStats {
            conns: self.conns.stats(),
            rejected_unknown: self.counters.rejected_unknown,
            rejected_commands: self.counters.rejected_commands,
            commands: self.counters.commands,
            rejected_ticks: self.counters.rejected_ticks,
            refused_commands: self.counters.refused_commands,
            dropped_replies: self.counters.dropped_replies,
            armed: self.armed,
            retired: self.retired.is_some(),
            refused_writes: self.counters.refused_writes,
            failures: self.failures.clone(),
            alarms: self.alarms.clone(),
        }
    }

    /// Answers a `Stats` message.
    pub(crate) fn send_stats(&mut self) {
        let stats = FromModule::Stats(self.stats());
        self.link.send(&stats);
    }

    /// Answers a `Trace` message: the trace's entries after `after`.
    pub(crate) fn send_trace(&mut self, after: u64) {
        let trace = FromModule::Trace(self.conns.trace.since(after));
        self.link.send(&trace);
    }

    /// Seals and sends `payload` on every connection bound to `output` whose window is open.
    /// With `wait`, waits (at most `emit_timeout` in all) for credit on the others, sending on
    /// each as it opens; a connection whose last wait ran out is not waited for again until
    /// credit arrives, so a node withholding credit delays the module once, not per event.
    /// Fails for the connections still full; nothing is sealed for them (no counter skipped).
    pub(crate) fn emit(&mut self, output: Output, payload: &[u8], wait: bool) -> Result<(), Error> {
        let port = output.name();
        let mut pending = self.conns.outputs(output.index());
        let started = self.clock.now();
        let mut now = started;
        // A persistent module's connections where it holds all it may until its commit.
        let mut full = Vec::new();
        loop {
            // Released events a stalled window's probe may let out first.
            self.drain_outboxes();
            let sealing = self
                .conns
                .seal_on(&pending, payload, now, self.emit_timeout);
            for conn in sealing.exhausted {
                log!("output `{port}`: connection {conn} exhausted its counters; not sent");
            }
            full.extend(sealing.full);
            if !sealing.events.is_empty() {
                let msgs: Vec<FromModule> =
                    sealing.events.into_iter().map(FromModule::Event).collect();
                self.send_effects(msgs);
            }
            pending = sealing.blocked;
            if pending.is_empty() {
                return if full.is_empty() {
                    Ok(())
                } else {
                    self.conns.blocked(&full, None);
                    Err(Error::HeldFull { port, conns: full })
                };
            }
            if !wait {
                self.conns.blocked(&pending, None);
                return Err(Error::WouldBlock {
                    port,
                    conns: pending,
                });
            }
            let spent = self.clock.now().saturating_duration_since(started);
            let left = self.emit_timeout.saturating_sub(spent);
            if left.is_zero() || pending.iter().all(|c| self.conns.stalled(*c)) {
                let stalled_at = left.is_zero().then(|| self.clock.now());
                self.conns.blocked(&pending, stalled_at);
                return Err(Error::WindowFull {
                    port,
                    conns: pending,
                    waited: spent,
                });
            }
            match self.wait_for_credit(&pending, left) {
                Ok(()) => now = self.clock.now(),
                Err(Unanswered::Timeout) => {
                    self.conns.blocked(&pending, Some(self.clock.now()));
                    return Err(Error::WindowFull {
                        port,
                        conns: pending,
                        waited: self.clock.now().saturating_duration_since(started),
                    });
                }
                Err(Unanswered::Closed) => return Err(Error::Closed),
                Err(Unanswered::Overloaded) => {
                    self.conns.blocked(&pending, None);
                    return Err(Error::Overloaded);
                }
            }
        }
    }

    /// Takes credit a receiver granted (or a node returned), and sends the released events
    /// of a persistent module it lets out (`conn/outbox.rs`).
    pub(crate) fn credited(&mut self, credit: &aex_proto::flow::Credit) {
        self.conns.credit(credit);
        self.drain_outboxes();
    }

    /// Sends what a persistent module's outboxes may let out now.
    pub(crate) fn drain_outboxes(&mut self) {
        let events = self.conns.drain(self.clock.now(), self.emit_timeout);
        if !events.is_empty() {
            let msgs: Vec<FromModule> = events.into_iter().map(FromModule::Event).collect();
            self.link.send_all(&msgs);
            self.link.flush();
        }
    }

    /// Waits at most `after` until one of `conns` may send (credit, or a new key with a fresh
    /// window). Events and commands that arrive meanwhile wait their turn ([`Core::wait_for`]).
    fn wait_for_credit(&mut self, conns: &[ConnId], after: Duration) -> Result<(), Unanswered> {
        self.wait_for(after, |core, arrived| match arrived {
            Arrived::Credit(conn) | Arrived::Keyed(conn)
                if conns.contains(&conn) && core.conns.open(conn) =>
            {
                Step::Done(())
            }
            Arrived::Message(other) => Step::Defer(other),
            Arrived::Credit(_) | Arrived::Keyed(_) => Step::Wait,
        })
    }

    /// Grants credit for what was taken in, if it is time (`flow.rs`). The grant goes out at
    /// once: a busy receiver (its inbox never empty) would otherwise hold it in its output
    /// buffer until 64 frames piled up there, while its sender waits for it. Grants are rare
    /// (a quarter window, or what is owed after 10 ms), so the flush costs little.
    pub(crate) fn took_in(&mut self, taken: Intake) {
        if let Some(credit) = self.conns.took_in(taken, self.clock.now()) {
            self.link.send(&FromModule::Credit(credit));
            self.link.flush();
        }
    }

    /// Grants at once the credit of events lost on the way that the event just accepted
    /// revealed (`flow.rs`); nothing when it revealed none, the usual case.
    pub(crate) fn grant_revealed(&mut self, event: &aex_proto::Event) {
        if self.conns.take_revealed() {
            self.took_in((event.conn, event.dir, 0));
        }
    }

    /// Fits the inbox to the windows this runtime grants (after keys changed).
    pub(crate) fn fit_inbox(&mut self) {
        let ceiling = inbox_ceiling(self.conns.receiving(), self.conns.window_cap());
        self.link.set_inbox_ceiling(ceiling);
    }

    /// Sends a request and blocks until its authentic reply, the timeout, or the end of the
    /// link.
    pub(crate) fn request(&mut self, request: Request, payload: &[u8]) -> Result<Vec<u8>, Error> {
        let port = request.name();
        let conn = self
            .conns
            .request_conn(request.index())
            .ok_or(Error::NotConnected { port })?;
        let started = self.clock.now();
        let event = loop {
            let now = self.clock.now();
            match self
                .conns
                .seal_request(conn, payload, now, self.request_timeout)
            {
                Ok(event) => break event,
                Err(Unsealed::Exhausted) => return Err(Error::CounterExhausted { conn }),
                Err(Unsealed::Blocked) => {}
            }
            let spent = self.clock.now().saturating_duration_since(started);
            let left = self.request_timeout.saturating_sub(spent);
            let waited = if left.is_zero() {
                Err(Unanswered::Timeout)
            } else {
                self.wait_for_credit(&[conn], left)
            };
            match waited {
                Ok(()) => {}
                Err(Unanswered::Timeout) => {
                    self.conns.blocked(&[conn], Some(self.clock.now()));
                    return Err(Error::WindowFull {
                        port,
                        conns: vec![conn],
                        waited: self.clock.now().saturating_duration_since(started),
                    });
                }
                Err(Unanswered::Closed) => return Err(Error::Closed),
                Err(Unanswered::Overloaded) => return Err(Error::Overloaded),
            }
        };
        // A request goes out now, not at the next idle moment: its reply is what we wait for.
        if !(self.link.send(&FromModule::Event(event)) && self.link.flush()) {
            self.conns.stop_waiting(conn);
            return Err(Error::Closed);
        }
        let after = self.request_timeout;
        let result = self
            .wait_for(after, |core, arrived| match arrived {
                Arrived::Message(ToModule::Event(mut event))
                    if event.conn == conn && event.dir == Direction::Backward =>
                {
                    let now = core.clock.now();
                    let accepted = core.conns.accept(&mut event, now);
                    core.grant_revealed(&event);
                    match accepted {
                        Ok(Accepted::Reply { outcome }) => {
                            Step::Done(outcome.map_err(|message| Error::Failed { port, message }))
                        }
                        // Counted against the connection by `accept`; keep waiting.
                        Ok(_) | Err(Refused::Rejected) => Step::Wait,
                        Err(Refused::UnknownConn) => {
                            core.counters.rejected_unknown += 1;
                            Step::Wait
                        }
                    }
                }
                Arrived::Keyed(keyed) if keyed == conn => Step::Done(Err(Error::Rekeyed { port })),
                Arrived::Keyed(_) | Arrived::Credit(_) => Step::Wait,
                Arrived::Message(other) => Step::Defer(other),
            })
            .unwrap_or_else(|ended| {
                Err(match ended {
                    Unanswered::Timeout => Error::Timeout { port, after },
                    Unanswered::Closed => Error::Closed,
                    Unanswered::Overloaded => Error::Overloaded,
                })
            });
        self.conns.stop_waiting(conn);
        result
    }

    /// Blocks until `step` makes an answer of what arrives, for at most `after` (no limit if
    /// that is too long to add to the clock), or until the link closes. Meanwhile, as the
    /// file's invariant says: `Stats` is answered, a key delivery runs at once when it can
    /// (see `key_now`; `step` sees the connection keyed), ticks are dropped, and whatever
    /// `step` defers (and every call from a module thread) is queued in arrival order for
    /// after the current call (see `defer`). Credit is added at once (`step` sees which
    /// connection got it), and an event is credited as it arrives unless the deferred queue is
    /// past [`CREDIT_DEFERRED_BELOW`](crate::backlog::CREDIT_DEFERRED_BELOW): then when it
    /// leaves the queue (or at once, if it does not join it).
    pub(crate) fn wait_for<T>(
        &mut self,
        after: Duration,
        mut step: impl FnMut(&mut Core, Arrived) -> Step<T>,
    ) -> Result<T, Unanswered> {
        let deadline = self.clock.now().checked_add(after);
        loop {
            let arrived = match self.link.recv(deadline, &self.clock) {
                Recv::Timeout => return Err(Unanswered::Timeout),
                Recv::Closed(_) => return Err(Unanswered::Closed),
                Recv::Message(ToModule::Stats) => {
                    self.send_stats();
                    continue;
                }
                Recv::Message(ToModule::Trace { after }) => {
                    self.send_trace(after);
                    continue;
                }
                Recv::Message(ToModule::Command(sealed)) => match self.key_now(&sealed) {
                    Some(keyed) => Arrived::Keyed(keyed),
                    None => Arrived::Message(ToModule::Command(sealed)),
                },
                Recv::Message(ToModule::Credit(credit)) => {
                    self.credited(&credit);
                    Arrived::Credit(credit.conn)
                }
                Recv::Message(msg) => Arrived::Message(msg),
                // A tick is a trigger for now, not work to catch up on: one that arrives while
                // module code is busy is dropped.
                Recv::Tick(..) => continue,
                Recv::Local(call) => {
                    self.deferred_local.push_back(call);
                    continue;
                }
            };
            // Credited now, or (`Some`) when it is handled.
            let owed = match &arrived {
                Arrived::Message(ToModule::Event(event)) if self.deferred.credits_on_arrival() => {
                    self.took_in(intake(event));
                    None
                }
                Arrived::Message(ToModule::Event(event)) => Some(intake(event)),
                _ => None,
            };
            match step(self, arrived) {
                Step::Done(answer) => {
                    if let Some(taken) = owed {
                        self.took_in(taken);
                    }
                    return Ok(answer);
                }
                Step::Wait => {
                    if let Some(taken) = owed {
                        self.took_in(taken);
                    }
                }
                Step::Defer(msg) => self.defer(msg, owed)?,
            }
        }
    }

    /// Queues `msg` for after the current call, unless it is an event that can never be
    /// accepted: that is refused and counted now, as it would be in its turn. (Only while no
    /// command waits before it: a queued command could change the keys it is judged by.)
    /// Fails once the queue is full (`backlog.rs`); `msg` is queued all the same. `owed` is
    /// the intake of an event whose credit is granted when it is handled.
    fn defer(&mut self, msg: ToModule, owed: Option<Intake>) -> Result<(), Unanswered> {
        if let ToModule::Event(event) = &msg {
            if !self.deferred.holds_command() {
                let refused = match self.conns.check(event, self.clock.now()) {
                    Ok(()) => false,
                    Err(Refused::UnknownConn) => {
                        self.counters.rejected_unknown += 1;
                        true
                    }
                    Err(Refused::Rejected) => true,
                };
                if refused {
                    if let Some(taken) = owed {
                        self.took_in(taken);
                    }
                    return Ok(());
                }
            }
        }
        if self.deferred.push(msg, owed.is_none()) {
            Ok(())
        } else {
            Err(Unanswered::Overloaded)
        }
    }

    /// Installs a connection key (a `SetKey` command).
    pub(crate) fn install_key(
        &mut self,
        conn: ConnId,
        role: Role,
        algorithm: WireAlgorithm,
        key: WireKey,
    ) -> CommandReply {
        let input = match &role {
            Role::Input(name) => self.interface.inputs.iter().position(|i| i == name),
            _ => None,
        };
        // Authentic and addressed to this instance: module code may run from now on.
        self.armed = true;
        self.forget_held_on(conn);
        let installed = self
            .conns
            .install(&self.interface, conn, role, algorithm, key);
        self.fit_inbox();
        match installed {
            Ok(()) => {
                if let Some(input) = input {
                    // The input's deadline clock starts when it is first keyed.
                    self.deadlines.arm(input, self.clock.now());
                }
                CommandReply::Done(Vec::new())
            }
            Err(message) => CommandReply::Failed(message),
        }
    }

    /// While a request waits: handles a key delivery at once, since it runs no module code —
    /// but only if nothing arrived before it, so messages still take effect in order. Without
    /// this, re-keying the connection of a waiting request (its handler was replaced) would
    /// wait for the request to time out. Returns the connection keyed, or `None` if the
    /// message must wait its turn.
    fn key_now(&mut self, sealed: &Sealed) -> Option<ConnId> {
        if !self.deferred.is_empty() || self.disabled || self.retired.is_some() {
            return None;
        }
        let channel = self.commands.as_mut()?;
        if !matches!(channel.peek_command(sealed), Ok(Command::SetKey { .. })) {
            return None;
        }
        let Ok(Command::SetKey {
            conn,
            role,
            algorithm,
            key,
        }) = channel.open_command(sealed)
        else {
            return None;
        };
        self.counters.commands += 1;
        let reply = self.install_key(conn, role, algorithm, key);
        if let Some(channel) = &self.commands {
            let sealed = channel.seal_reply(sealed.counter, &reply);
            self.send_effects(vec![FromModule::CommandReply(sealed)]);
        }
        Some(conn)
    }
}
