//! Persistent modules: sealed state, output commit, and resuming after a restart
//! (docs/PROTOCOL.md §9).
//!
//! A module declared `#[aex::module(persistent)]` gets a sealing key from its platform right
//! after its `Hello` (`ToModule::Sealing`). From its first authenticated command on, it
//! **commits**: it seals its state, its command key and counter, and every connection's key
//! and counters into a blob, has the node store it (`FromModule::Store`; storage is
//! untrusted), and then moves a platform counter from the blob's version minus one to its
//! version (`FromModule::Counter`, compare-and-advance). A restarted process is handed the
//! stored blobs (`ToModule::Resume`), reads the counter, and runs on only from the blob whose
//! version is the counter's value.
//!
//! Invariants this file owns:
//! * **output commit**: events the module emits, handler replies, command replies and the
//!   answers of `Handle::call_committed` are held until the state that produced them is committed (stored, then counted); a crash before
//!   that loses them with the state, so nothing outside ever saw an effect of a state that a
//!   restart forgets. Commits are grouped: the runtime commits when no more input is waiting,
//!   after [`COMMIT_BATCH`] messages, and after every command;
//! * **no fork**: the counter only advances from the value this instance committed last; if
//!   another process of the same module advanced it, this one stops before releasing
//!   anything;
//! * **no rollback**: a blob whose version is below the counter is refused ("rollback
//!   detected"), as is one that does not open under this module's sealing key;
//! * **no nonce reuse**: every blob reserves [`RESERVE`] send counters per connection beyond
//!   the last used, and a connection never seals beyond what a committed blob reserved, so a
//!   process resumed from any committed blob starts above every counter used before.
//!
//! Requests and device accesses made by module code go out when they are made (the call waits
//! for their answer), before the commit of the state that made them: a crash between the two
//! can repeat them after the restart. Events accepted after the last commit are lost with a
//! crash (the receiving channel's counter shows them as a gap when later events arrive).

use std::time::Duration;

use aex_crypto::seal::{open_blob, seal_blob, CounterAnswer, CounterOp};
use aex_crypto::{random_bytes, sha256, SecretKey};
use aex_proto::{
    BlobChunk, CommandChannel, CounterCall, CounterValue, FromModule, ResumeOutcome, StateBytes,
    ToModule, WireKey, MAX_BLOB,
};
use serde::{Deserialize, Serialize};

use crate::conn::SealedConn;
use crate::core::{Arrived, Core, Step, Unanswered};
use crate::sealing::Persistence;

/// Send counters each commit reserves per connection beyond the last one used.
pub(crate) const RESERVE: u64 = 1 << 20;

/// Messages handled before a commit even while more input waits.
pub(crate) const COMMIT_BATCH: usize = 256;

/// Device writes whose answer the runtime keeps waiting for, to log a refusal.
const HELD_WRITES: usize = 1024;

/// How long the runtime waits for the platform to answer, and for the node to store a small
/// blob.
pub(crate) const COMMIT_WAIT: Duration = Duration::from_secs(10);

/// The slowest storage a node's blob store is given time for, in bytes per second: a large
/// blob is synced to disk before the node answers, and a board's SD card syncs 256 MiB in
/// far more than [`COMMIT_WAIT`]. Too short a wait would fail that commit on every retry.
const SLOWEST_STORE: u64 = 4 << 20;

/// How long the runtime waits for the node to store a blob of `len` bytes.
fn store_wait(len: usize) -> Duration {
    COMMIT_WAIT + Duration::from_secs(len as u64 / SLOWEST_STORE)
}

/// What a blob holds.
#[derive(Serialize, Deserialize)]
pub(crate) struct Sealed {
    pub(crate) counter: [u8; 16],
    /// The logical version: `offset` plus the platform counter's value at this commit.
    pub(crate) version: u64,
    /// What the logical versions add to the platform counter: above zero once a move
    /// handed this instance an older instance's versions to continue from.
    pub(crate) offset: u64,
    pub(crate) command_key: WireKey,
    pub(crate) command_last: u64,
    pub(crate) conns: Vec<SealedConn>,
    pub(crate) armed: bool,
    pub(crate) disabled: bool,
    pub(crate) retired: bool,
    pub(crate) restored: Option<[u8; 32]>,
    /// The module's own state (`Module::save`), or the snapshot a retired instance keeps.
    pub(crate) state: Option<StateBytes>,
    /// The checkpoint the owner is reading (`Command::Checkpoint`), sealed so that a chunk
    /// read again after a restart is the same bytes.
    pub(crate) checkpoint: Option<StateBytes>,
}

/// Why a commit did not complete.
pub(crate) enum CommitError {
    /// Worth trying again (the node could not store the blob, or did not answer in time).
    Retry(String),
    /// Another process of this module advanced its counter: this one must stop.
    Forked(String),
    /// The link to the node is gone.
    Closed,
}

/// The associated data every blob of `version` is sealed with.
fn blob_aad(version: u64) -> Vec<u8> {
    let mut aad = b"aex/v1 sealed state ".to_vec();
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

impl Core {
    /// Whether this module persists and has its sealing key.
    pub(crate) fn persisting(&self) -> bool {
        self.persist.as_ref().is_some_and(|p| p.sealing.is_some())
    }

    /// Whether effects are held for a commit now: persistent, and attested.
    fn holding(&self) -> bool {
        self.persisting() && self.commands.is_some()
    }

    /// `ToModule::Sealing`: keeps the platform's sealing key, once, before attestation.
    pub(crate) fn take_sealing_key(&mut self, key: WireKey) {
        let fresh = self.agreement.is_some() && self.commands.is_none();
        match &mut self.persist {
            Some(p) if p.sealing.is_none() && fresh => {
                p.sealing = Some(key.into_secret());
                self.conns.persist();
            }
            Some(_) => log!("ignoring a second or late sealing key"),
            None => log!("ignoring a sealing key: this module does not persist"),
        }
    }

    /// Keeps a copy of the command key a persistent module seals (at attestation).
    pub(crate) fn keep_command_key(&mut self, key: &SecretKey) {
        if let Some(p) = &mut self.persist {
            p.command_key = Some(SecretKey::from_bytes(*key.expose_secret()));
        }
    }

    /// Holds a device write (`access`, with `id`) for the next commit when the module persists
    /// (`None`), or gives it back to be sent now.
    pub(crate) fn hold_write(
        &mut self,
        id: u64,
        device: &str,
        access: FromModule,
    ) -> Option<FromModule> {
        if !self.holding() {
            return Some(access);
        }
        let p = self.persist.as_mut()?;
        p.held.push(access);
        p.dirty = true;
        if p.held_writes.len() >= HELD_WRITES {
            // Answers the node never sent: forget the oldest (its refusal goes unlogged).
            p.held_writes.pop_first();
        }
        p.held_writes.insert(id, device.to_owned());
        None
    }

    /// The TEE layer's answer to a device access nothing waits for: a held write's is
    /// expected (its refusal is counted in `refused_writes`, which `aex status` shows, and
    /// logged without the value), anything else is late.
    pub(crate) fn device_answered(&mut self, id: u64, result: &Result<u32, String>) {
        match self
            .persist
            .as_mut()
            .and_then(|p| p.held_writes.remove(&id))
        {
            Some(_) if result.is_ok() => {}
            Some(device) => {
                self.counters.refused_writes += 1;
                log!(
                    "the write to device `{device}` held for the commit was refused: {}",
                    result.as_ref().err().map_or("", String::as_str)
                )
            }
            None => log!("ignoring a late answer to device access {id}"),
        }
    }

    /// The logical version the next commit seals under, when effects are held for commits:
    /// what `Retire` answers, so the next instance continues above it.
    pub(crate) fn next_sealed(&self) -> Option<u64> {
        if !self.holding() {
            return None;
        }
        let p = self.persist.as_ref()?;
        Some(p.offset.saturating_add(p.committed).saturating_add(1))
    }

    /// A restored state's old instance retired at logical version `retired`: this
    /// instance's versions continue above it (DSN'18's migratable counters: the platform
    /// counter here starts low, the offset carries the logical count over).
    pub(crate) fn continue_above(&mut self, retired: u64) {
        if let Some(p) = &mut self.persist {
            p.offset = p.offset.max(retired.saturating_sub(p.committed));
        }
    }

    /// Sends effects of the module's state (events, replies), or holds them for the next
    /// commit when the module persists. `false` once the node stopped reading.
    pub(crate) fn send_effects(&mut self, msgs: Vec<FromModule>) -> bool {
        if self.holding() {
            if let Some(p) = &mut self.persist {
                p.held.extend(msgs);
                p.dirty = true;
            }
            true
        } else {
            self.link.send_all(&msgs)
        }
    }

    /// Marks the state changed (a message handled, module code run).
    pub(crate) fn touched(&mut self) {
        if let Some(p) = &mut self.persist {
            p.dirty = true;
            p.handled += 1;
        }
    }

    /// Whether a commit is due now: something changed, and no more input waits (or a batch
    /// is full, or `now` asks for it).
    pub(crate) fn commit_due(&mut self, now: bool) -> bool {
        let Some(p) = &self.persist else {
            return false;
        };
        if !(p.dirty && self.holding()) {
            return false;
        }
        // Input already here (read from the link, or queued behind a wait such as the last
        // commit's) joins this batch.
        now || p.handled >= COMMIT_BATCH || (self.deferred.is_empty() && !self.link.ready())
    }

    /// Seals what the runtime holds with `state`, stores it, advances the counter, and then
    /// releases the held effects.
    pub(crate) fn commit(&mut self, state: Option<Vec<u8>>) -> Result<(), CommitError> {
        if !self.holding() {
            return Ok(());
        }
        let counter = match self.persist.as_ref().and_then(|p| p.counter) {
            Some(counter) => counter,
            None => {
                let created = self.counter_call(CounterCall::Create)?;
                if let Some(p) = &mut self.persist {
                    p.counter = Some(created.id);
                    p.committed = created.value;
                }
                created.id
            }
        };
        let (Some(p), Some(commands)) = (&mut self.persist, &self.commands) else {
            return Ok(());
        };
        let (Some(sealing), Some(command_key)) = (&p.sealing, &p.command_key) else {
            return Ok(());
        };
        // The platform counter moves by one; the blob's version is the logical one above it.
        let platform = p.committed.saturating_add(1);
        let version = p.offset.saturating_add(platform);
        let conns = self.conns.export(RESERVE);
        let sealed = Sealed {
            counter,
            version,
            offset: p.offset,
            command_key: WireKey::from_secret(command_key),
            command_last: commands.last_counter(),
            conns,
            armed: self.armed,
            disabled: self.disabled,
            retired: self.retired.is_some(),
            restored: self.restored,
            state: state.map(StateBytes),
            checkpoint: self
                .checkpoint
                .as_ref()
                .and_then(|c| c.snapshot())
                .map(|b| StateBytes(b.to_vec())),
        };
        // Keys in clear: zeroized when dropped (`StateBytes`).
        let plain = postcard::to_allocvec(&sealed)
            .map(StateBytes)
            .map_err(|e| CommitError::Retry(format!("cannot encode the sealed state: {e}")))?;
        let blob = seal_blob(sealing, &blob_aad(version), &plain.0);
        drop(plain);
        // What is held now is what this blob explains; what arrives during the waits below
        // waits for the next commit.
        let releasing = std::mem::take(&mut p.held);
        let answers = std::mem::take(&mut p.held_answers);
        p.dirty = false;
        p.handled = 0;
        let committed = self.store(version, &blob).and_then(|()| {
            let digest = sha256(&[&blob]);
            let answer = self.counter_call(CounterCall::Advance(counter, platform - 1, digest))?;
            if answer.advanced && answer.value == platform {
                Ok(())
            } else {
                Err(CommitError::Forked(format!(
                    "the platform counter is at {} where this process committed {}: another \
                     process of this module runs on; this one stops",
                    answer.value,
                    platform - 1
                )))
            }
        });
        match committed {
            Ok(()) => {
                if let Some(p) = &mut self.persist {
                    p.committed = platform;
                }
                self.conns.committed(&sealed.conns);
                self.release(releasing);
                answers.into_iter().for_each(|answer| answer());
                Ok(())
            }
            Err(e) => {
                // Held again, in order, for the next attempt.
                if let Some(p) = &mut self.persist {
                    let later = std::mem::replace(&mut p.held, releasing);
                    p.held.extend(later);
                    let later = std::mem::replace(&mut p.held_answers, answers);
                    p.held_answers.extend(later);
                    p.dirty = true;
                }
                Err(e)
            }
        }
    }

    /// Sends `answer` once the state as it is now is committed: at once when effects are not
    /// held (not persistent, or not attested yet), else with the effects of the next commit.
    pub(crate) fn answer_after_commit(&mut self, answer: Box<dyn FnOnce() + Send>) {
        match &mut self.persist {
            Some(p) if p.sealing.is_some() && self.commands.is_some() => {
                p.held_answers.push(answer);
            }
            _ => answer(),
        }
    }

    /// Drops the emits held on `conn` for the next commit: its key is being replaced or
    /// revoked, and they were sealed under the old one (sent, they would be refused; a
    /// module that does not persist sent them before, under the key they belong to). Their
    /// place in the new key's outbox accounting never existed.
    pub(crate) fn forget_held_on(&mut self, conn: aex_proto::ConnId) {
        if let Some(p) = &mut self.persist {
            p.held.retain(|msg| {
                !matches!(msg, FromModule::Event(e)
                    if e.conn == conn && e.kind == aex_proto::EventKind::Event)
            });
        }
    }

    /// Lets out what a commit released: emitted events through their connection's outbox
    /// (sent as its window allows, `conn/outbox.rs`), everything else at once.
    fn release(&mut self, released: Vec<FromModule>) {
        let mut now = Vec::with_capacity(released.len());
        for msg in released {
            match msg {
                FromModule::Event(event) if event.kind == aex_proto::EventKind::Event => {
                    // A held emit of a connection revoked since is dropped with it.
                    self.conns.release(event);
                }
                other => now.push(other),
            }
        }
        self.link.send_all(&now);
        self.drain_outboxes();
        self.link.flush();
    }

    /// Waits `after` before a commit is tried again, answering `Stats` (so the node and the
    /// owner see the module, and why it waits) and queueing everything else for after the
    /// commit. `false` once the node closed the link.
    pub(crate) fn pause(&mut self, after: Duration) -> bool {
        let waited = self.wait_for(after, |_, arrived| match arrived {
            Arrived::Message(other) => Step::Defer(other),
            Arrived::Keyed(_) | Arrived::Credit(_) => Step::<()>::Wait,
        });
        !matches!(waited, Err(Unanswered::Closed))
    }

    /// Has the node store `blob` as `version` and waits for it to say so.
    fn store(&mut self, version: u64, blob: &[u8]) -> Result<(), CommitError> {
        let chunks: Vec<FromModule> = BlobChunk::split(version, blob)
            .into_iter()
            .map(FromModule::Store)
            .collect();
        if !(self.link.send_all(&chunks) && self.link.flush()) {
            return Err(CommitError::Closed);
        }
        let wait = store_wait(blob.len());
        let stored = self.wait_for(wait, |_, arrived| match arrived {
            Arrived::Message(ToModule::Stored { version: v, result }) if v == version => {
                Step::Done(result)
            }
            Arrived::Message(ToModule::Stored { .. }) | Arrived::Keyed(_) | Arrived::Credit(_) => {
                Step::Wait
            }
            Arrived::Message(other) => Step::Defer(other),
        });
        match stored {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(CommitError::Retry(format!(
                "the node did not store version {version}: {reason}"
            ))),
            Err(e) => Err(unanswered("storing the sealed state", wait, e)),
        }
    }

    /// Calls the platform's counters and checks the answer's MAC.
    fn counter_call(&mut self, call: CounterCall) -> Result<CounterValue, CommitError> {
        let Some(p) = &mut self.persist else {
            return Err(CommitError::Retry("not persistent".into()));
        };
        let id = p.next_call;
        p.next_call += 1;
        let nonce = random_bytes::<16>();
        let msg = FromModule::Counter { id, call, nonce };
        if !(self.link.send(&msg) && self.link.flush()) {
            return Err(CommitError::Closed);
        }
        let answer = self.wait_for(COMMIT_WAIT, |_, arrived| match arrived {
            Arrived::Message(ToModule::CounterAnswer { id: got, result }) if got == id => {
                Step::Done(result)
            }
            Arrived::Message(ToModule::CounterAnswer { .. })
            | Arrived::Keyed(_)
            | Arrived::Credit(_) => Step::Wait,
            Arrived::Message(other) => Step::Defer(other),
        });
        let value = match answer {
            Ok(Ok(value)) => value,
            Ok(Err(reason)) => {
                return Err(CommitError::Retry(format!(
                    "the platform refused a counter call: {reason}"
                )))
            }
            Err(e) => return Err(unanswered("the platform counter", COMMIT_WAIT, e)),
        };
        let op = match call {
            CounterCall::Create => CounterOp::Create,
            CounterCall::Read(_) => CounterOp::Read,
            CounterCall::Advance(..) if value.advanced => CounterOp::Increment,
            CounterCall::Advance(..) => CounterOp::Stayed,
        };
        let signed = CounterAnswer {
            id: value.id,
            value: value.value,
            digest: value.digest,
            mac: value.mac,
        };
        let genuine = self
            .persist
            .as_ref()
            .and_then(|p| p.sealing.as_ref())
            .is_some_and(|key| signed.verify(key, op, &nonce));
        let expected_id = match call {
            CounterCall::Create => value.id,
            CounterCall::Read(id) | CounterCall::Advance(id, ..) => id,
        };
        if !genuine || value.id != expected_id {
            return Err(CommitError::Retry(
                "a counter answer did not verify under this module's key (forged or replayed)"
                    .into(),
            ));
        }
        Ok(value)
    }

    /// `ToModule::Resume`: collects a blob's chunks; the whole blob once the last arrived.
    pub(crate) fn resume_chunk(&mut self, chunk: BlobChunk) -> Option<(u64, Vec<u8>)> {
        let attested = self.commands.is_some();
        let p = self.persist.as_mut()?;
        if p.resumed || attested {
            return None;
        }
        if chunk.total > MAX_BLOB {
            p.refusals.push(format!(
                "a sealed state of {} bytes is over the limit of {MAX_BLOB}",
                chunk.total
            ));
            return None;
        }
        let (version, bytes) = p
            .incoming
            .get_or_insert_with(|| (chunk.version, Vec::new()));
        if chunk.offset == 0 {
            *version = chunk.version;
            bytes.clear();
        }
        if *version != chunk.version || chunk.offset != bytes.len() as u64 {
            p.incoming = None;
            p.refusals
                .push("the node handed over a sealed state out of order".into());
            return None;
        }
        bytes.extend_from_slice(&chunk.data);
        if chunk.is_last() {
            p.incoming.take()
        } else {
            None
        }
    }

    /// Opens a blob of `version` and checks it against the platform counter: the sealed
    /// contents if it is the committed one, or why not (also kept for the final answer).
    pub(crate) fn open_committed(&mut self, version: u64, blob: &[u8]) -> Option<Sealed> {
        let outcome = self.try_open(version, blob);
        match outcome {
            Ok(sealed) => Some(sealed),
            Err(reason) => {
                log!("not resuming from sealed state version {version}: {reason}");
                if let Some(p) = &mut self.persist {
                    p.refusals.push(reason);
                }
                None
            }
        }
    }

    pub(crate) fn try_open(&mut self, version: u64, blob: &[u8]) -> Result<Sealed, String> {
        let key = self
            .persist
            .as_ref()
            .and_then(|p| p.sealing.as_ref())
            .ok_or("the platform gave this process no sealing key")?;
        let plain = open_blob(key, &blob_aad(version), blob)
            .map(StateBytes)
            .map_err(|_| {
                format!(
                    "sealed state version {version} does not open under this module's sealing key \
                 (another module's or another platform's, or damaged)"
                )
            })?;
        let sealed: Sealed = postcard::from_bytes(&plain.0)
            .map_err(|e| format!("sealed state version {version} does not decode: {e}"))?;
        let counter = match self.counter_call(CounterCall::Read(sealed.counter)) {
            Ok(value) => value,
            Err(CommitError::Retry(reason) | CommitError::Forked(reason)) => {
                return Err(format!("cannot read the platform counter: {reason}"))
            }
            Err(CommitError::Closed) => return Err("the node closed the link".into()),
        };
        // The counter holds the platform's value; versions are logical, `offset` above it.
        let (committed, digest) = (counter.value.saturating_add(sealed.offset), counter.digest);
        if sealed.version != version || sealed.offset > version {
            Err(format!(
                "sealed state version {version} holds version {} (offset {}): damaged",
                sealed.version, sealed.offset
            ))
        } else if committed > version {
            Err(format!(
                "rollback detected: the node handed over sealed state version {version}, but \
                 the platform counter says version {committed} was committed"
            ))
        } else if committed < version {
            Err(format!(
                "sealed state version {version} was never committed (the platform counter is at \
                 {committed}): the process ended while storing it"
            ))
        } else if sha256(&[blob]) != digest {
            Err(format!(
                "rollback detected: the node handed over a sealed state version {version} other \
                 than the one committed (another process of this module sealed it)"
            ))
        } else {
            Ok(sealed)
        }
    }

    /// Takes on a committed blob's keys, counters and lifecycle (the state is the caller's):
    /// the process is now the instance that sealed it, and its one key agreement is spent.
    pub(crate) fn resume_keys(&mut self, sealed: &mut Sealed) -> Result<(), String> {
        let command_key = SecretKey::from_bytes(sealed.command_key.0);
        self.conns
            .resume(&self.interface, std::mem::take(&mut sealed.conns))?;
        self.fit_inbox();
        self.commands = Some(CommandChannel::resume(&command_key, sealed.command_last));
        self.agreement = None;
        self.provisioned = None;
        self.armed = sealed.armed;
        self.restored = sealed.restored;
        self.disabled = sealed.disabled;
        if sealed.disabled {
            self.commands = None;
            self.conns.clear();
        }
        let p = self.persist.get_or_insert_with(Persistence::default);
        p.command_key = Some(command_key);
        p.counter = Some(sealed.counter);
        p.committed = sealed.version - sealed.offset;
        p.offset = sealed.offset;
        p.resumed = true;
        // Commit at once: it reserves send counters for this process, and proves no other
        // process of this module runs on.
        p.dirty = true;
        Ok(())
    }

    /// `ToModule::ResumeEnd` after no blob was taken: tells the node why.
    pub(crate) fn resume_refused(&mut self) {
        let Some(p) = &mut self.persist else {
            return;
        };
        if p.resumed {
            return;
        }
        let reason = if p.refusals.is_empty() {
            "no sealed state was handed over: this process starts fresh and waits for its \
             deployer"
                .to_owned()
        } else {
            p.refusals.join("; ")
        };
        self.link
            .send(&FromModule::Resumed(ResumeOutcome::Refused(reason)));
        self.link.flush();
    }

    /// Says the process resumed from `version`.
    pub(crate) fn resumed(&mut self, version: u64) {
        self.link
            .send(&FromModule::Resumed(ResumeOutcome::Resumed { version }));
        self.link.flush();
    }
}

fn unanswered(what: &str, waited: Duration, e: Unanswered) -> CommitError {
    match e {
        Unanswered::Closed => CommitError::Closed,
        Unanswered::Timeout => CommitError::Retry(format!(
            "no answer about {what} within {} s",
            waited.as_secs()
        )),
        Unanswered::Overloaded => {
            CommitError::Retry(format!("too much input arrived while waiting for {what}"))
        }
    }
}
