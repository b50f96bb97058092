//! Module processes: starting a stored binary, talking to it over its stdin and stdout, and
//! noticing when it ends.
//!
//! Each module is an ordinary OS process (its TEE backend, simulated here, would wrap it).
//! Three tasks serve it: a writer that drains a bounded queue into its stdin, a reader that
//! hands the events and device accesses on its stdout to the router and the replies to the
//! one management request waiting for them, and a waiter that records how the process ended.
//!
//! The reader routes the module's events itself, at once, through the [`ToRouter`] handle the
//! router connected the module with (`to_router.rs` says why no queue or task sits between,
//! and what that keeps of routing's order, fairness, drops and counters); a module never holds
//! the router's type. The credit a module grants for events it took in (`FromModule::Credit`)
//! is relayed the same way, in its place among the module's events; credit for the module's
//! own events comes back on its input ([`Module::deliver_credit`]).
//!
//! A device access (`FromModule::Device`) is performed by the TEE layer for the holder the node
//! loaded the process as, (namespace, name), whatever the module claims to be (the router
//! connected the module's [`ToRouter`] as that holder), after the events the module wrote
//! before it are routed; the answer (`ToModule::DeviceReply`) goes back to that same
//! process.
//!
//! Invariants: at most one management request per module is outstanding (a per-module async
//! mutex serializes them), and a reply is only handed to a request of the matching kind. A
//! module is killed when it is unloaded, when the node stops, or when its [`Module`] is
//! dropped.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use aex_crypto::Measurement;
use aex_proto::flow::Credit;
use aex_proto::forwarding::{self, EventRef};
use aex_proto::frame::encode;
use aex_proto::{
    AppId, DeployerKey, FromModule, ModuleStatus, NodeError as WireError, NodeErrorKind, ToModule,
    Trigger,
};
use aex_tee::devices::Holder;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{timeout, timeout_at, Instant};
use tracing::{debug, info, instrument};

mod evidence;
mod output;
mod pipe;
mod process;

use output::{kind_name, read_output, Output};
use pipe::Pipe;
use process::{copy_log, log_tail, logged, spawn, wait_exit, Ending};

use crate::error::refuse;
use crate::frames::{pump, FrameReader};
use crate::periodic::{Target, Triggers};
use crate::queue;
use crate::sealed::Persistent;
use crate::sync::lock;
use crate::timeouts::{show, Timeouts};
use crate::to_router::ToRouter;

/// What a management request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// `Attested` or `AttestRefused`.
    Attest,
    /// `CommandReply` or `CommandRejected` for the command with this counter: the late
    /// answer to an earlier command whose request gave up waiting is not this one's.
    Command(u64),
    /// `Stats`.
    Stats,
    /// `Trace`.
    Trace,
    /// `Resumed` (a restarted persistent module).
    Resumed,
}

impl Expect {
    fn matches(self, msg: &FromModule) -> bool {
        if let Expect::Command(counter) = self {
            return match msg {
                FromModule::CommandReply(sealed) => sealed.counter == counter,
                FromModule::CommandRejected { counter: c } => *c == counter,
                _ => false,
            };
        }
        matches!(
            (self, msg),
            (
                Expect::Attest,
                FromModule::Attested { .. } | FromModule::AttestRefused
            ) | (Expect::Stats, FromModule::Stats(_))
                | (Expect::Trace, FromModule::Trace(_))
                | (Expect::Resumed, FromModule::Resumed(_))
        )
    }
}

/// The reply slot shared by requests and the stdout reader.
#[derive(Default)]
struct Replies {
    /// The module's stdout has ended: no reply will come.
    closed: bool,
    waiting: Option<Waiting>,
}

/// The request waiting for a reply.
struct Waiting {
    expect: Expect,
    reply: oneshot::Sender<FromModule>,
    /// Told when the module shows progress (it stores sealed state or calls its counter):
    /// the request's limit restarts.
    progress: watch::Sender<()>,
}

impl Replies {
    /// The module showed progress: the waiting request's limit restarts.
    fn progressed(&self) {
        if let Some(w) = &self.waiting {
            w.progress.send_replace(());
        }
    }
}

/// How far progress may stretch a request's wait, in multiples of its limit: a module that
/// commits forever without answering is still given up on (after 5 minutes at the default
/// `reply` of 10 s).
pub(crate) const MAX_STRETCH: u32 = 30;

/// The file in a module's directory that keeps its stderr (`process.rs` rotates it).
pub(crate) const LOG_FILE: &str = "module.log";

/// What a module is started with besides its binary: its way into the router, how long the
/// node waits for it, and how many bytes its input queue holds.
pub(crate) struct Wiring {
    /// The module's channel to the router (`Router::connect_module`).
    pub(crate) to_router: ToRouter,
    /// `start`, then `body` for each frame, `stop` and `exit` when it ends.
    pub(crate) timeouts: Timeouts,
    /// Bytes its input queue holds (`module_queue`).
    pub(crate) input_bytes: usize,
    /// Where the module is reported when its process ends on its own (`supervise.rs`).
    pub(crate) exits: mpsc::Sender<Weak<Module>>,
    /// The node's TEE layer, for the module's own evidence requests (`evidence.rs`).
    pub(crate) backend: Arc<dyn aex_tee::Backend>,
}

/// A started module process.
pub(crate) struct Module {
    /// The namespace the module was loaded in; its events are routed there.
    app: AppId,
    /// The deployer whose session loaded it (its modules count against its limit).
    owner: DeployerKey,
    name: String,
    measurement: Measurement,
    pid: Option<u32>,
    log: PathBuf,
    input: queue::Sender,
    replies: Arc<Mutex<Replies>>,
    management: tokio::sync::Mutex<()>,
    exit: watch::Receiver<Option<String>>,
    /// Cleared when the process ends (checked per event, cheaper than `exit`).
    alive: Arc<AtomicBool>,
    kill: Mutex<Option<oneshot::Sender<()>>>,
    /// The periodic entries the module declared in its `Hello`.
    periodic: Vec<String>,
    /// Its periodic triggers (stopped when the module is dropped).
    triggers: Triggers,
    /// How long a request that found the module's output closed waits for its exit status.
    exit_limit: Duration,
    /// The module's directory (its binary, log and sealed blobs).
    dir: PathBuf,
    /// Whether its `Hello` declared it persistent.
    declares_persistent: bool,
    /// Whether its `Hello` declared it seals by signer (`persistent(signer)`).
    seals_by_signer: bool,
    /// Its sealed blobs and platform counters, once the node set them up (`sealed.rs`).
    persistent: Arc<OnceLock<Arc<Persistent>>>,
}

impl Module {
    /// Starts `dir/module.bin` for deployer `owner` and waits for its `Hello` (as long as the
    /// wiring's timeouts say), its output going to the router through the wiring's channel.
    #[instrument(skip_all, fields(module = %name))]
    pub(crate) async fn start(
        app: AppId,
        owner: DeployerKey,
        name: &str,
        dir: &Path,
        measurement: Measurement,
        wiring: Wiring,
    ) -> Result<Arc<Module>, WireError> {
        let Wiring {
            to_router,
            timeouts,
            input_bytes,
            exits,
            backend,
        } = wiring;
        let log = dir.join(LOG_FILE);
        let mut child = spawn(name, dir, &measurement, &log).await.map_err(|e| {
            refuse(
                NodeErrorKind::Io,
                format!("cannot start module `{name}`: {e}; see {}", log.display()),
            )
        })?;
        let pid = child.id();
        let log_copy = child
            .stderr
            .take()
            .map(|stderr| tokio::spawn(copy_log(stderr, log.clone())));
        let (stdin, stdout) = match (child.stdin.take(), child.stdout.take()) {
            (Some(stdin), Some(stdout)) => (stdin, stdout),
            _ => {
                return Err(refuse(
                    NodeErrorKind::Io,
                    format!("module `{name}` started without piped stdin and stdout"),
                ))
            }
        };
        let mut reader = FrameReader::new(Pipe::new(stdout), timeouts.body);
        let unavailable = |what: String| {
            refuse(
                NodeErrorKind::ModuleUnavailable,
                format!("module `{name}` {what}; see {}", log.display()),
            )
        };
        let (periodic, declares_persistent, seals_by_signer) =
            match timeout(timeouts.start, reader.next::<FromModule>()).await {
                Ok(Ok(Some(FromModule::Hello(interface)))) => (
                    interface.periodic,
                    interface.persistent,
                    interface.persistent && interface.seal_by_signer,
                ),
                Ok(Ok(Some(other))) => {
                    return Err(unavailable(format!(
                        "sent {} before its Hello",
                        kind_name(&other)
                    )))
                }
                Ok(Ok(None)) | Ok(Err(crate::frames::ReadError::Io(_))) => {
                    let status = match timeout(timeouts.stop, child.wait()).await {
                        Ok(Ok(status)) => status.to_string(),
                        _ => "closed its output".into(),
                    };
                    // Its last lines are in the log the error points to.
                    logged(log_copy).await;
                    return Err(unavailable(format!("exited during start: {status}")));
                }
                Ok(Err(e)) => return Err(unavailable(format!("sent a bad first frame: {e}"))),
                Err(_) => {
                    return Err(unavailable(format!(
                        "did not say hello within {}",
                        show(timeouts.start)
                    )))
                }
            };
        info!(pid, %measurement, "module started");

        let (input, mut input_rx) = queue::channel(input_bytes);
        let (exit_tx, exit) = watch::channel(None);
        let (kill, kill_rx) = oneshot::channel();
        let replies = Arc::new(Mutex::new(Replies::default()));
        let alive = Arc::new(AtomicBool::new(true));
        let module = Arc::new(Module {
            app,
            owner,
            name: name.to_string(),
            measurement,
            pid,
            log,
            input,
            replies: replies.clone(),
            management: tokio::sync::Mutex::new(()),
            exit,
            alive: alive.clone(),
            kill: Mutex::new(Some(kill)),
            periodic,
            triggers: Triggers::default(),
            exit_limit: timeouts.exit,
            dir: dir.to_path_buf(),
            declares_persistent,
            seals_by_signer,
            persistent: Arc::default(),
        });
        let task_name = name.to_string();
        tokio::spawn(async move {
            if let Err(e) = pump(&mut input_rx, Pipe::new(stdin), None).await {
                debug!(module = %task_name, error = %e, "module input closed");
            }
        });
        let output = Output {
            name: name.to_string(),
            replies,
            to_router,
            input: module.input.clone(),
            persistent: module.persistent.clone(),
            dir: module.dir.clone(),
            attester: evidence::Attester {
                backend,
                provider: aex_tee::Provider(owner.0),
                measurement,
            },
        };
        tokio::spawn(read_output(output, reader));
        let ending = Ending {
            name: name.to_string(),
            exit: exit_tx,
            alive,
            module: Arc::downgrade(&module),
            exits,
            log: log_copy,
        };
        tokio::spawn(wait_exit(child, kill_rx, ending));
        Ok(module)
    }

    /// The module's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The module's namespace.
    pub(crate) fn app(&self) -> AppId {
        self.app
    }

    /// The deployer whose session loaded it.
    pub(crate) fn owner(&self) -> &DeployerKey {
        &self.owner
    }

    /// Who the module is to the TEE layer's device grants.
    pub(crate) fn holder(&self) -> Holder {
        Holder::new(self.app.to_string(), self.name.as_str())
    }

    /// Hands the module what its platform derived for it (before attestation): a symmetric
    /// module key, a sealing key, a stored blob's chunks.
    pub(crate) async fn provision(&self, msg: ToModule) -> bool {
        self.input.send(encode(&msg)).await
    }

    /// The module's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether its `Hello` declared it persistent.
    pub(crate) fn declares_persistent(&self) -> bool {
        self.declares_persistent
    }

    /// Whether its `Hello` declared it seals by signer.
    pub(crate) fn seals_by_signer(&self) -> bool {
        self.seals_by_signer
    }

    /// Sets up its sealed storage (once).
    pub(crate) fn set_persistent(&self, persistent: Arc<Persistent>) {
        let _ = self.persistent.set(persistent);
    }

    /// Its sealed storage, if it is persistent.
    pub(crate) fn persistent(&self) -> Option<&Arc<Persistent>> {
        self.persistent.get()
    }

    /// The periodic triggers it runs now.
    pub(crate) fn triggers(&self) -> Vec<Trigger> {
        self.triggers.current()
    }

    /// Queues an event for the module; false if it has ended or its queue has no room for
    /// the event's bytes.
    pub(crate) fn deliver(&self, ev: &EventRef<'_>) -> bool {
        self.alive.load(Ordering::Relaxed) && self.input.try_send(forwarding::to_module(ev)).is_ok()
    }

    /// Queues credit for the module's own events on one of its connections (granted by their
    /// receiver, or returned by a node that dropped them); false if it has ended or its queue
    /// has no room. Never waits: the router calls it.
    pub(crate) fn deliver_credit(&self, credit: Credit) -> bool {
        self.alive.load(Ordering::Relaxed)
            && self
                .input
                .try_send(encode(&ToModule::Credit(credit)))
                .is_ok()
    }

    /// Sends a management request and waits up to `limit` (queueing included) for its reply.
    pub(crate) async fn request(
        &self,
        msg: ToModule,
        expect: Expect,
        limit: Duration,
    ) -> Result<FromModule, WireError> {
        self.request_all(vec![msg], expect, limit, |_| ()).await
    }

    /// Sends `msgs`, in order, and waits for the reply `expect`s (which may come before the
    /// last message is sent): up to `limit` of silence, queueing included. Each sign of
    /// progress from the module (a sealed-state store or counter call: a persistent module
    /// commits before it answers) restarts the limit, up to [`MAX_STRETCH`] times `limit` in
    /// all, and calls `progress` with the time waited so far.
    pub(crate) async fn request_all(
        &self,
        msgs: Vec<ToModule>,
        expect: Expect,
        limit: Duration,
        mut progress: impl FnMut(Duration),
    ) -> Result<FromModule, WireError> {
        let started = Instant::now();
        let cap = started + limit * MAX_STRETCH;
        // Why the wait ended without an answer: `last` is when the module last showed progress.
        let silent = |last: Option<Instant>| {
            let now = Instant::now();
            let why = match last {
                Some(_) if now >= cap => format!(
                    "kept storing sealed state for {} without answering (progress stretches a \
                     wait to {MAX_STRETCH} times the `reply` limit, no further)",
                    show(now - started)
                ),
                Some(last) => format!(
                    "stopped making progress: nothing for {} after it last stored sealed state",
                    show(now - last)
                ),
                None => format!("did not answer within {}", show(limit)),
            };
            refuse(
                NodeErrorKind::ModuleUnavailable,
                format!("module `{}` {why}; see {}", self.name, self.log.display()),
            )
        };
        let _turn = timeout_at(started + limit, self.management.lock())
            .await
            .map_err(|_| silent(None))?;
        let (tx, mut rx) = oneshot::channel();
        let (progress_tx, mut progressed) = watch::channel(());
        let closed = {
            let mut replies = lock(&self.replies);
            if !replies.closed {
                replies.waiting = Some(Waiting {
                    expect,
                    reply: tx,
                    progress: progress_tx,
                });
            }
            replies.closed
        };
        if closed {
            return Err(self.unavailable().await);
        }
        let mut deadline = started + limit;
        let mut last = None;
        let sent = timeout_at(deadline, async {
            for msg in &msgs {
                self.input.send(encode(msg)).await.then_some(())?;
            }
            Some(())
        })
        .await;
        let outcome = match sent {
            Err(_) => Err(()),
            Ok(None) => Ok(None),
            Ok(Some(())) => loop {
                tokio::select! {
                    reply = &mut rx => break Ok(reply.ok()),
                    _ = tokio::time::sleep_until(deadline) => break Err(()),
                    changed = progressed.changed() => {
                        if changed.is_err() {
                            // The reader dropped the slot: the output ended.
                            break Ok((&mut rx).await.ok());
                        }
                        let now = Instant::now();
                        last = Some(now);
                        deadline = (now + limit).min(cap);
                        progress(now - started);
                    }
                }
            },
        };
        lock(&self.replies).waiting = None;
        match outcome {
            Ok(Some(reply)) => Ok(reply),
            Ok(None) => Err(self.unavailable().await),
            Err(()) => Err(silent(last)),
        }
    }

    /// Replaces the module's periodic triggers (see `periodic.rs`).
    pub(crate) fn set_triggers(&self, triggers: Vec<Trigger>) -> Result<(), WireError> {
        let target = Target {
            name: &self.name,
            periodic: &self.periodic,
            input: &self.input,
            alive: &self.alive,
        };
        self.triggers.set(target, triggers)
    }

    /// Whether the process is alive.
    pub(crate) fn running(&self) -> bool {
        self.exit.borrow().is_none()
    }

    /// What status reports, without the module's own counters.
    pub(crate) fn status(&self) -> ModuleStatus {
        let exit = self.exit.borrow().clone();
        ModuleStatus {
            name: self.name.clone(),
            measurement: self.measurement.0,
            pid: self.pid,
            running: exit.is_none(),
            log_tail: if exit.is_some() {
                log_tail(&self.log)
            } else {
                Vec::new()
            },
            exit,
            stats: None,
            persistence: self.persistent().map(|p| p.status()),
        }
    }

    /// Messages queued for its input now, and their bytes.
    pub(crate) fn queued(&self) -> (usize, usize) {
        self.input.depth()
    }

    /// How many times the node restarted its process on its own (persistent modules).
    pub(crate) fn restarts(&self) -> u32 {
        self.persistent().map_or(0, |p| p.status().restarts)
    }

    /// The measurement taken when loading.
    pub(crate) fn measurement(&self) -> &Measurement {
        &self.measurement
    }

    /// Kills the process and waits up to `limit` for it to end.
    pub(crate) async fn stop(&self, limit: Duration) {
        self.kill();
        let mut exit = self.exit.clone();
        let _ = timeout(limit, exit.wait_for(Option::is_some)).await;
    }

    /// Kills the process without waiting.
    pub(crate) fn kill(&self) {
        if let Some(kill) = lock(&self.kill).take() {
            let _ = kill.send(());
        }
    }

    /// A module of namespace `app` without a process, for tests of what reaches a module's
    /// input (the returned queue, of `input_bytes`): it runs until its [`Module`] is dropped.
    #[cfg(test)]
    pub(crate) fn detached(
        app: AppId,
        name: &str,
        input_bytes: usize,
    ) -> (Arc<Module>, queue::Receiver) {
        let (input, rx) = queue::channel(input_bytes);
        let (_, exit) = watch::channel(None);
        let module = Arc::new(Module {
            app,
            owner: DeployerKey([0; aex_crypto::PUBLIC_IDENTITY_LEN]),
            name: name.to_string(),
            measurement: Measurement([0; 32]),
            pid: None,
            log: PathBuf::from("module.log"),
            input,
            replies: Arc::default(),
            management: tokio::sync::Mutex::new(()),
            exit,
            alive: Arc::new(AtomicBool::new(true)),
            kill: Mutex::new(None),
            periodic: vec![],
            triggers: Triggers::default(),
            exit_limit: Duration::from_millis(1),
            dir: PathBuf::new(),
            declares_persistent: false,
            seals_by_signer: false,
            persistent: Arc::default(),
        });
        (module, rx)
    }

    /// The error for a module that stopped answering, with its exit status when known.
    async fn unavailable(&self) -> WireError {
        let mut exit = self.exit.clone();
        let status = match timeout(self.exit_limit, exit.wait_for(Option::is_some)).await {
            Ok(Ok(status)) => status.clone().unwrap_or_default(),
            _ => "closed its output".into(),
        };
        // Its owner may have no access to the node's disk: the log's last lines come along.
        let tail = log_tail(&self.log);
        let tail = if tail.is_empty() {
            String::new()
        } else {
            format!("; the last lines of its log:\n{}", tail.join("\n"))
        };
        refuse(
            NodeErrorKind::ModuleUnavailable,
            format!(
                "module `{}` is not running ({status}); see {}{tail}",
                self.name,
                self.log.display()
            ),
        )
    }
}

#[cfg(test)]
mod tests;
