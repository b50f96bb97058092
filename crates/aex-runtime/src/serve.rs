//! The module's main loop: one message from the node at a time, in order.
//!
//! Invariants this file owns (docs/PROTOCOL.md §4 and §5; docs/SECURITY.md, "What aex promises"
//! and "Availability"):
//! * exactly one key agreement per process: the first `Attest` consumes it, later ones are
//!   refused (`attest.rs`);
//! * a command is executed only if it opens under the module key with a fresh counter; a
//!   refused command is answered unsealed, so the module never seals under a counter an
//!   attacker chose;
//! * module code runs only for authentic events, authentic commands, the module's own
//!   deadline clocks (`deadline.rs`), and the node's untrusted ticks for the entries the
//!   module declares `#[periodic]` (never two late ticks of an entry in a row); nothing else;
//! * no module code runs on the fresh `Default` state until the module is armed by its first
//!   authenticated `Restore`, `SetKey`, `Call` or `Start` (`core.rs`): ticks before are
//!   refused and counted, and deadline clocks only start when an input is keyed;
//! * a retired instance takes no `SetKey`, `Call`, `Start` or `Restore` (refused under its
//!   module key and counted in `ModuleStats::refused_commands`): its state lives on elsewhere;
//! * what the runtime writes to the node in clear (stderr) never quotes module messages, which
//!   may quote payloads or state; failure messages travel only sealed, at most
//!   [`MAX_FAILURE_LEN`](crate::failure::MAX_FAILURE_LEN) bytes;
//! * module code that panics stops the module after its failure is answered and counted
//!   (`failure.rs`), before anything else runs or is committed;
//! * deadline clocks are checked before every message, so a node that floods the module with
//!   refused events cannot postpone an alarm (it can only delay it by starving the process).

use std::time::Instant;

use aex_crypto::Measurement;
use aex_proto::{Command, CommandError, CommandReply, Event, FromModule, Sealed, ToModule};

use crate::conn::{intake, Accepted, Binding, Refused};
use crate::context::Context;
use crate::core::Core;
use crate::failure::{bounded, Failure, PANIC_EXIT};
use crate::link::{Link, Recv};
use crate::module::{Module, PortKind};

/// A module's state and the runtime's, driven by messages from the node.
pub(crate) struct Runtime<M> {
    module: M,
    core: Core,
    /// Set when module code panicked: the module exits with it before anything else runs.
    stop: Option<i32>,
}

impl<M: Module> Runtime<M> {
    /// A runtime for a fresh `M::default()`.
    pub(crate) fn new(link: Link, measurement: Measurement) -> Self {
        Runtime {
            module: M::default(),
            core: Core::new(M::interface(), &M::deadlines(), link, measurement),
            stop: None,
        }
    }

    /// Announces the interface, then handles messages until the link closes or the node asks
    /// the module to stop. Returns the process exit code.
    pub(crate) fn serve(&mut self) -> i32 {
        self.hello();
        if !self.core.interface.periodic.is_empty() {
            // A tick is stamped as it is read, to tell one that waited behind a run of its
            // entry (dropped) from a fresh one: only a reader thread reads ticks as they come.
            self.core.link.start_reader();
        }
        loop {
            if let Some(code) = self.stop {
                self.core.link.flush();
                return code;
            }
            if self.core.commit_due(false) {
                if let Some(code) = self.commit() {
                    self.core.link.flush();
                    return code;
                }
            }
            if self.core.deferred.is_empty() && self.core.deferred_local.is_empty() {
                self.run_deadlines();
            }
            if let Some(call) = self.core.deferred_local.pop_front() {
                self.run_local(call);
                continue;
            }
            let (msg, credited) = match self.core.deferred.pop() {
                Some(queued) => queued,
                None => match self
                    .core
                    .link
                    .recv(self.core.deadlines.next_due(), &self.core.clock)
                {
                    Recv::Message(msg) => (msg, false),
                    Recv::Tick(entry, at) => {
                        self.tick(&entry, at);
                        continue;
                    }
                    Recv::Local(call) => {
                        self.run_local(call);
                        continue;
                    }
                    Recv::Closed(code) => {
                        self.core.link.flush();
                        return code;
                    }
                    Recv::Timeout => continue,
                },
            };
            if let Some(code) = self.take(msg, credited) {
                self.core.link.flush();
                return code;
            }
        }
    }

    /// Runs a call from one of the module's own threads on the module's state.
    pub(crate) fn run_local(&mut self, call: crate::link::LocalCall) {
        if self.core.retired.is_some() || !self.core.armed {
            // Retired, the state now lives in the new instance: dropping the call makes the
            // thread's `Handle::call` fail instead of changing a state nobody will read. (Not
            // armed, no module code ran yet, so no module thread can exist.)
            return;
        }
        call(&mut self.module, &mut self.core);
        self.core.touched();
    }

    /// Sends the `Hello` every module starts with.
    pub(crate) fn hello(&mut self) {
        let hello = FromModule::Hello(self.core.interface.clone());
        self.core.link.send(&hello);
    }

    /// Handles one message just taken in; `Some(code)` when the module must exit.
    #[cfg(test)]
    pub(crate) fn handle(&mut self, msg: ToModule) -> Option<i32> {
        self.take(msg, false)
    }

    /// Handles one message, granting credit for it first unless that was `credited` already
    /// (while it waited in the deferred queue): credit is granted as an event is taken in,
    /// before module code runs, so that modules that wait on each other keep flowing
    /// (`flow.rs`).
    fn take(&mut self, msg: ToModule, credited: bool) -> Option<i32> {
        if let (ToModule::Event(event), false) = (&msg, credited) {
            self.core.took_in(intake(event));
        }
        match msg {
            ToModule::Attest {
                challenge,
                deployer_pk,
            } => self.core.attest(&challenge, &deployer_pk),
            ToModule::Command(sealed) => return self.command(sealed),
            ToModule::Event(mut event) => self.event(&mut event),
            ToModule::Stats => self.core.send_stats(),
            ToModule::Trace { after } => self.core.send_trace(after),
            ToModule::Shutdown => return Some(0),
            ToModule::Tick { entry } => self.tick(&entry, self.core.clock.now()),
            ToModule::Provision {
                kind,
                simulated,
                key,
            } => self.core.provision(kind, simulated, key),
            // The answer to a write held for a commit, or to an access that already timed
            // out (or that never was): nothing waits for it. Its value is not logged.
            ToModule::DeviceReply { id, result } => self.core.device_answered(id, &result),
            ToModule::Credit(credit) => self.core.credited(&credit),
            ToModule::Sealing { key } => self.core.take_sealing_key(key),
            ToModule::Resume(chunk) => {
                if let Some((version, blob)) = self.core.resume_chunk(chunk) {
                    self.resume(version, &blob);
                }
            }
            ToModule::ResumeEnd => self.core.resume_refused(),
            // Answers to a commit that already gave up waiting: nothing waits for them.
            ToModule::Stored { .. } | ToModule::CounterAnswer { .. } => {
                log!("ignoring a late answer about sealed state")
            }
            _ => log!("ignoring a message from the node this runtime does not know"),
        }
        None
    }

    /// Commits the state and what the runtime holds (`persist.rs`), trying again while the
    /// node cannot store it; `Some(code)` when the module must exit (another process of it
    /// runs on, or the node is gone).
    fn commit(&mut self) -> Option<i32> {
        let mut pause = std::time::Duration::from_millis(50);
        loop {
            let state = match &self.core.retired {
                Some(retired) => retired.snapshot().map(<[u8]>::to_vec),
                None => match self.module.save() {
                    None => None,
                    Some(Ok(bytes)) => Some(bytes),
                    Some(Err(_)) => {
                        // Nothing it did since the last commit may be seen: stop here.
                        log!("cannot save the state of a persistent module; exiting");
                        return Some(4);
                    }
                },
            };
            match self.core.commit(state) {
                Ok(()) => return None,
                Err(crate::persist::CommitError::Closed) => return Some(0),
                Err(crate::persist::CommitError::Forked(reason)) => {
                    log!("{reason}");
                    return Some(3);
                }
                Err(crate::persist::CommitError::Retry(reason)) => {
                    log!(
                        "commit failed ({reason}); trying again in {} ms",
                        pause.as_millis()
                    );
                    if !self.core.pause(pause) {
                        return Some(0);
                    }
                    pause = (pause * 2).min(std::time::Duration::from_secs(2));
                }
            }
        }
    }

    /// Resumes from a committed blob of `version` the node handed over, if the platform
    /// counter says it is the current one.
    fn resume(&mut self, version: u64, blob: &[u8]) {
        let Some(mut sealed) = self.core.open_committed(version, blob) else {
            return;
        };
        if let Err(message) = self.core.resume_keys(&mut sealed) {
            log!("cannot resume the connections of sealed state version {version}");
            let _ = message;
            return;
        }
        let state = sealed.state.take().map(|mut s| std::mem::take(&mut s.0));
        self.core.checkpoint = sealed
            .checkpoint
            .take()
            .map(|mut c| crate::transfer::Retirement::new(Some(std::mem::take(&mut c.0))));
        if sealed.retired {
            self.core.conns.clear();
            self.core.deadlines.disarm();
            self.core.retired = Some(crate::transfer::Retirement::new(state));
        } else if let Some(state) = state {
            if let Err(e) = self.module.restore(&state) {
                log!(
                    "the sealed state does not restore ({} bytes of message withheld)",
                    e.len()
                );
            }
        }
        if self.core.armed {
            let now = self.core.clock.now();
            for input in 0..self.core.interface.inputs.len() {
                if self.core.conns.bound(Binding::Input(input)) {
                    self.core.deadlines.arm(input, now);
                }
            }
        }
        self.core.resumed(version);
    }

    /// Opens and executes a command, answers it, and commits its effect; `Some(code)` when
    /// the module must exit (a commit found another process of it running on).
    fn command(&mut self, sealed: Sealed) -> Option<i32> {
        let counter = sealed.counter;
        let opened = match self.core.commands.as_mut() {
            None => Err(CommandError::Forged),
            Some(channel) => channel.open_command(&sealed),
        };
        // Reading a retired instance's snapshot, or a checkpoint, changes nothing a restart
        // could forget: the snapshot is frozen and committed (the `Retire` or `Checkpoint`
        // that took it was), and the same command executed again (replayed after a restart
        // from a commit before it) gives the same bytes under the same counter, so the same
        // ciphertext; a newer checkpoint's command counter makes older reads stale. Its reply
        // goes out at once, without a commit of a state that may be large (a commit per chunk
        // would seal the whole state each time).
        let frozen = self.core.retired.is_some() || self.core.checkpoint.is_some();
        let read_only = matches!(opened, Ok(Command::ReadState { .. })) && frozen;
        let reply = match opened {
            Ok(cmd) => {
                self.core.counters.commands += 1;
                self.execute(cmd)
            }
            // Authentic (its counter is consumed) but not understood: answer under it.
            Err(CommandError::Malformed(reason)) => {
                self.core.counters.commands += 1;
                CommandReply::Failed(format!("malformed command: {reason}"))
            }
            Err(_) => {
                self.core.counters.rejected_commands += 1;
                self.core
                    .link
                    .send(&FromModule::CommandRejected { counter });
                return None;
            }
        };
        if let Some(channel) = &self.core.commands {
            let sealed = channel.seal_reply(counter, &reply);
            if read_only {
                self.core.link.send(&FromModule::CommandReply(sealed));
                return None;
            }
            self.core
                .send_effects(vec![FromModule::CommandReply(sealed)]);
        }
        // A command's effect is committed before anything else runs (and before a
        // `Disable` drops the keys the commit seals).
        self.core.touched();
        let exit = if self.stop.is_none() && self.core.commit_due(true) {
            self.commit()
        } else {
            None
        };
        if self.core.disabled {
            // Answered under the module key; now forget every key (zeroized on drop).
            self.core.commands = None;
            self.core.conns.clear();
            self.core.fit_inbox();
            self.core.deadlines.disarm();
        }
        exit
    }

    fn execute(&mut self, cmd: Command) -> CommandReply {
        let moves_on = matches!(
            cmd,
            Command::SetKey { .. }
                | Command::Call { .. }
                | Command::Start
                | Command::Restore { .. }
                | Command::Adopt { .. }
                | Command::WriteState { .. }
        );
        if moves_on && self.core.retired.is_some() {
            self.core.counters.refused_commands += 1;
            return CommandReply::Failed(
                "this instance is retired: its state moved to a new instance, so it takes no \
                 key, call, start or state"
                    .into(),
            );
        }
        match cmd {
            Command::SetKey {
                conn,
                role,
                algorithm,
                key,
            } => self.core.install_key(conn, role, algorithm, key),
            Command::Disable => {
                self.core.disabled = true;
                CommandReply::Done(Vec::new())
            }
            Command::Start => {
                self.core.armed = true;
                CommandReply::Done(Vec::new())
            }
            Command::Revoke { conn } => {
                let revoked = self.core.conns.revoke(conn);
                self.core.fit_inbox();
                if let Some(Binding::Input(input)) = revoked {
                    if !self.core.conns.bound(Binding::Input(input)) {
                        self.core.deadlines.disarm_input(input);
                    }
                }
                CommandReply::Done(Vec::new())
            }
            Command::Call { entry, payload } => {
                self.core.armed = true;
                let entries = &self.core.interface.entries;
                let Some(index) = entries.iter().position(|e| *e == entry) else {
                    let list = if entries.is_empty() {
                        "none".to_owned()
                    } else {
                        entries.join(", ")
                    };
                    return CommandReply::Failed(format!(
                        "module has no entry point `{entry}` (entry points: {list})"
                    ));
                };
                match self.dispatch(PortKind::Entry, index, &payload) {
                    Ok(result) => CommandReply::Done(result),
                    // Sealed to the deployer, who sent the payload: the detail may quote it.
                    Err(e) => CommandReply::Failed(e.sealed(&entry)),
                }
            }
            Command::Retire => self.retire(),
            Command::ReadState { offset } => {
                match self.core.retired.as_ref().or(self.core.checkpoint.as_ref()) {
                    Some(snapshot) => snapshot.read(offset),
                    None => CommandReply::Failed(
                        "this instance is not retired and holds no checkpoint".into(),
                    ),
                }
            }
            Command::Checkpoint => self.checkpoint(),
            // Staging runs no module code: only `Restore` decides what becomes of it.
            Command::WriteState { offset, data } => match self.core.staged.write(offset, data) {
                Ok(()) => CommandReply::Done(Vec::new()),
                Err(message) => CommandReply::Failed(message),
            },
            Command::Restore {
                len,
                digest,
                sealed,
            } => self.restore(len, &digest, sealed),
            Command::Adopt {
                predecessor,
                len,
                digest,
                sealed,
            } => self.adopt(&predecessor, len, &digest, sealed),
            _ => CommandReply::Failed(
                "unsupported command (the deployer is newer than this module's runtime)".into(),
            ),
        }
    }

    /// Puts the snapshot staged by `WriteState` in place, if it is the old instance's (`len`
    /// bytes with SHA-256 `digest`), and arms the module, unless module code already ran on
    /// the state it has: once armed, only the same snapshot is taken again (and changes
    /// nothing).
    fn restore(&mut self, len: u64, digest: &[u8; 32], sealed: Option<u64>) -> CommandReply {
        if let Some(answer) = self.armed_already(digest) {
            return answer;
        }
        let state = self.core.staged.take(len, digest);
        self.put_in_place(state, digest, sealed)
    }

    /// Takes the snapshot `predecessor` retired with from its sealed blobs, instead of staged
    /// bytes (`adopt.rs`), and puts it in place as `restore` does.
    fn adopt(
        &mut self,
        predecessor: &str,
        len: u64,
        digest: &[u8; 32],
        sealed: Option<u64>,
    ) -> CommandReply {
        if let Some(answer) = self.armed_already(digest) {
            return answer;
        }
        if !(self.core.interface.seal_by_signer && self.core.persisting()) {
            return CommandReply::Failed(
                "this module does not seal by signer (`#[aex::module(persistent(signer))]`): \
                 it cannot open another instance's sealed state"
                    .into(),
            );
        }
        let state = self.core.adopt_snapshot(predecessor, len, digest);
        self.put_in_place(state, digest, sealed)
    }

    /// The answer to a `Restore` or `Adopt` once the instance runs: done again if it was
    /// the same state, refused otherwise; `None` before.
    fn armed_already(&mut self, digest: &[u8; 32]) -> Option<CommandReply> {
        if !self.core.armed {
            return None;
        }
        self.core.staged = Default::default();
        Some(if self.core.restored == Some(*digest) {
            CommandReply::Done(Vec::new())
        } else {
            CommandReply::Failed(
                "state can be restored only before the instance runs (before it is keyed, \
                 called or started)"
                    .into(),
            )
        })
    }

    /// Restores `state` (with SHA-256 `digest`) into the module and arms it; its sealed
    /// versions continue above `sealed`, the version its old instance retired at.
    fn put_in_place(
        &mut self,
        state: Result<aex_proto::StateBytes, String>,
        digest: &[u8; 32],
        sealed: Option<u64>,
    ) -> CommandReply {
        let state = match state {
            Ok(state) => state,
            Err(message) => return CommandReply::Failed(bounded(message)),
        };
        match self.module.restore(&state.0) {
            Ok(()) => {
                self.core.armed = true;
                self.core.restored = Some(*digest);
                if let Some(retired) = sealed {
                    self.core.continue_above(retired);
                }
                CommandReply::Done(Vec::new())
            }
            Err(message) => CommandReply::Failed(bounded(message)),
        }
    }

    /// Takes a checkpoint of the state as it is, for the owner (the module runs on).
    fn checkpoint(&mut self) -> CommandReply {
        if !self.core.armed || self.core.retired.is_some() {
            return CommandReply::Failed(
                "a checkpoint is taken of a running instance (armed, not retired)".into(),
            );
        }
        match self.module.save() {
            None => CommandReply::Failed("this module's state is not transferable".into()),
            Some(Err(message)) => {
                CommandReply::Failed(bounded(format!("cannot save the state: {message}")))
            }
            Some(Ok(bytes)) => {
                let checkpoint = crate::transfer::Retirement::new(Some(bytes));
                let answer = checkpoint.answer(None);
                self.core.checkpoint = Some(checkpoint);
                answer
            }
        }
    }

    /// Snapshots the state once and leaves the application: every connection key is dropped,
    /// so nothing after the snapshot can change what the new instance receives.
    fn retire(&mut self) -> CommandReply {
        if self.core.retired.is_none() {
            self.core.link.flush();
            let state = match self.module.save() {
                None => None,
                Some(Ok(bytes)) => Some(bytes),
                // Not retired: the module keeps running and the deployer reports the failure.
                Some(Err(message)) => {
                    return CommandReply::Failed(bounded(format!(
                        "cannot save the state: {message}"
                    )))
                }
            };
            self.core.conns.clear();
            self.core.fit_inbox();
            self.core.deadlines.disarm();
            self.core.retired = Some(crate::transfer::Retirement::new(state));
        }
        match &self.core.retired {
            Some(retired) => retired.answer(self.core.next_sealed()),
            None => CommandReply::Failed("not retired".into()),
        }
    }

    fn event(&mut self, event: &mut Event) {
        let now = self.core.clock.now();
        let accepted = self.core.conns.accept(event, now);
        self.core.grant_revealed(event);
        if accepted.is_ok() {
            self.core.touched();
        }
        match accepted {
            Err(Refused::UnknownConn) => self.core.counters.rejected_unknown += 1,
            // Counted against the connection; nothing reaches module code.
            Err(Refused::Rejected) => {}
            Ok(Accepted::Input { index, payload }) => {
                self.core.deadlines.heard(index, now);
                if let Err(e) = self.dispatch(PortKind::Input, index, &payload) {
                    self.failed(
                        PortKind::Input,
                        index,
                        &e,
                        Some((event.conn, event.counter)),
                    );
                }
            }
            Ok(Accepted::Request {
                conn,
                index,
                counter,
                generation,
                payload,
            }) => {
                let outcome = self.dispatch(PortKind::Handler, index, &payload);
                if let Err(e) = &outcome {
                    self.failed(PortKind::Handler, index, e, Some((conn, counter)));
                }
                let name = &self.core.interface.handlers[index];
                // The detail goes only into the sealed reply, never to stderr.
                let failed = outcome.as_ref().err().map(|e| e.sealed(name));
                let result = match (&outcome, &failed) {
                    (Ok(bytes), _) => Ok(bytes.as_slice()),
                    (Err(_), Some(message)) => Err(message.as_str()),
                    (Err(_), None) => Err("handler failed"),
                };
                let now = self.core.clock.now();
                match self
                    .core
                    .conns
                    .seal_reply(conn, generation, counter, result, now)
                {
                    Some(Ok(reply)) => {
                        self.core.send_effects(vec![FromModule::Event(reply)]);
                    }
                    Some(Err(_)) => log!("connection {conn} exhausted its counters; no reply"),
                    None => {
                        self.core.counters.dropped_replies += 1;
                        log!("connection {conn} was re-keyed or revoked during its handler; reply dropped");
                    }
                }
            }
            // `accept` yields a reply only to a waiting request, and none waits here.
            Ok(Accepted::Reply { .. }) => {}
        }
    }

    /// Runs the periodic entry `entry` for a tick the reader decoded at `at`, if the module
    /// declares it, is keyed, and did not start that entry since the tick arrived.
    fn tick(&mut self, entry: &str, at: Instant) {
        let core = &mut self.core;
        let index = core.interface.periodic.iter().position(|e| e == entry);
        // Only an attested, armed module that still takes part in the application runs ticks.
        let runs = core.commands.is_some() && core.armed && core.retired.is_none();
        let Some(index) = index.filter(|_| runs) else {
            core.counters.rejected_ticks += 1;
            return;
        };
        if core.ticked[index].is_some_and(|last| at < last) {
            // It waited behind a run of the same entry: late, and dropped, not bunched.
            return;
        }
        core.ticked[index] = Some(core.clock.now());
        core.touched();
        if let Err(e) = self.dispatch(PortKind::Periodic, index, &[]) {
            self.failed(PortKind::Periodic, index, &e, None);
        }
    }

    /// Runs the deadline handlers due now, each once.
    pub(crate) fn run_deadlines(&mut self) {
        // (A clock starts only when an input is keyed, which arms the module.)
        if self.core.deadlines.is_empty() || !self.core.armed {
            return;
        }
        for index in self.core.deadlines.take_due(self.core.clock.now()) {
            self.core.touched();
            if let Some(deadline) = M::deadlines().get(index) {
                count_alarm(&mut self.core.alarms, deadline.input());
            }
            if let Err(e) = self.dispatch(PortKind::Deadline, index, &[]) {
                self.failed(PortKind::Deadline, index, &e, None);
            }
            if self.stop.is_some() {
                return;
            }
        }
    }

    /// Runs port `index` of `kind` on `payload`. A panic is caught here, at the port, so that
    /// its failure is answered and counted like any other; then the module stops
    /// (`failure.rs`).
    fn dispatch(
        &mut self,
        kind: PortKind,
        index: usize,
        payload: &[u8],
    ) -> Result<Vec<u8>, Failure> {
        let (module, core) = (&mut self.module, &mut self.core);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut ctx = Context::new(core);
            module.dispatch(&mut ctx, kind, index, payload)
        }));
        match outcome {
            Ok(result) => result.map_err(Failure::Port),
            Err(_) => {
                self.stop = Some(PANIC_EXIT);
                Err(Failure::panicked())
            }
        }
    }

    /// Counts a failure of port `index` of `kind` on the authentic event `at` (its connection
    /// and counter), if it ran on one: that event is then `failed`, not `received`.
    fn failed(
        &mut self,
        kind: PortKind,
        index: usize,
        failure: &Failure,
        at: Option<(aex_proto::ConnId, u64)>,
    ) {
        let interface = &self.core.interface;
        let name = match kind {
            PortKind::Input => interface.inputs.get(index).cloned(),
            PortKind::Handler => interface.handlers.get(index).cloned(),
            PortKind::Periodic => interface.periodic.get(index).cloned(),
            PortKind::Entry => interface.entries.get(index).cloned(),
            PortKind::Deadline => M::deadlines().get(index).map(|d| d.input().to_owned()),
        }
        .unwrap_or_else(|| index.to_string());
        if let Some((conn, counter)) = at {
            self.core.conns.failed(conn);
            self.core.conns.trace.failed(conn, counter);
        }
        crate::failure::count(&mut self.core.failures, kind, &name, failure, at);
        if failure.is_panic() {
            log!("the module stops (exit status {PANIC_EXIT})");
        }
    }
}

#[cfg(test)]
impl<M> Runtime<M> {
    pub(crate) fn module(&self) -> &M {
        &self.module
    }

    pub(crate) fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }

    /// The exit status the module stops with before it takes anything else (after a panic).
    pub(crate) fn stopping(&self) -> Option<i32> {
        self.stop
    }

    /// Makes every time-dependent decision read `clock` (a manual one, see `clock.rs`).
    pub(crate) fn set_clock(&mut self, clock: crate::clock::Clock) {
        self.core.clock = clock;
    }
}

/// Counts one alarm of `input`'s deadline, stamped with the time it fired.
fn count_alarm(alarms: &mut Vec<aex_proto::DeadlineAlarms>, input: &str) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let index = match alarms.iter().position(|a| a.input == input) {
        Some(index) => index,
        None => {
            alarms.push(aex_proto::DeadlineAlarms {
                input: input.to_owned(),
                ..Default::default()
            });
            alarms.len() - 1
        }
    };
    alarms[index].fired += 1;
    alarms[index].last_ms = now_ms;
}
