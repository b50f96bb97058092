//! `aex up`: the one-command experience (`aex_deploy::ops::up`). This file parses its
//! arguments, turns Ctrl-C into the stop flag, prints what the operation reports and renders
//! the follow view: a module's state as soon as anything but its numbers changes, counters at
//! most every few seconds.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aex_deploy::ops;
use aex_deploy::ops::deploy::{DeployObserver, DeployReport, Plan};
use aex_deploy::ops::status::{AppStatus, ConnectionView};
use aex_deploy::ops::up::{StepResult, UpObserver, UpOptions};
use aex_deploy::progress::{Observer, StateLoss};
use aex_deploy::{App, Identity};
use anyhow::{Context, Result};
use clap::Args;

use super::AppPath;
use crate::progress::Bars;
use crate::report;
use crate::shell::Shell;

/// Start local nodes, build, deploy, attest and connect; then follow events until Ctrl-C
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Descriptor file, or a directory holding aex.toml [default: current directory]
    path: Option<PathBuf>,
    /// Return once the application runs, leaving the local nodes running (`aex down` stops them)
    #[arg(long, short)]
    detach: bool,
    /// If the recorded instance of a module cannot hand its state over (its process ended,
    /// its node lost it), start the module from its default state without asking, as
    /// `aex deploy --yes` does. Without it, `aex up` asks on a terminal and stops elsewhere
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    pub(super) app: AppPath,
}

pub fn exec(args: UpArgs, shell: &Shell) -> Result<()> {
    let path = args.app.resolve(args.path.as_ref());
    let identity = args.app.identity(shell)?;
    let app = args.app.open_as(&path, identity, shell)?;
    let stop = stop_flag();
    let exe = std::env::current_exe().context("cannot locate the aex executable")?;
    let opts = UpOptions {
        aex_exe: &exe,
        detach: args.detach,
        stop: &stop,
    };
    ops::up::up(app, &opts, &View::new(shell, args.yes))?;
    Ok(())
}

/// What `aex up` shows: progress bars, each deployment as `aex deploy` shows it, and the follow
/// view.
struct View<'a> {
    shell: &'a Shell,
    bars: Bars<'a>,
    follow: RefCell<Follow>,
}

impl<'a> View<'a> {
    fn new(shell: &'a Shell, yes: bool) -> Self {
        View {
            shell,
            bars: Bars::new(shell).yes(yes),
            follow: RefCell::new(Follow::default()),
        }
    }
}

impl Observer for View<'_> {
    fn phase(&self, name: &str, total: u64) {
        self.bars.phase(name, total);
    }

    fn advance(&self, detail: &str) {
        self.bars.advance(detail);
    }

    fn finish(&self) {
        self.bars.finish();
    }

    fn note(&self, message: &str) {
        self.bars.note(message);
    }

    fn start_afresh(&self, loss: &StateLoss) -> bool {
        self.bars.start_afresh(loss)
    }
}

impl DeployObserver for View<'_> {
    fn planned(&self, plan: &Plan) {
        self.bars.planned(plan);
    }
}

impl UpObserver for View<'_> {
    fn tenant_identity_created(&self, identity: &Identity) {
        self.shell.status(
            "Created",
            format!(
                "tenant identity {} (secret, mode 0600)",
                identity.path().display()
            ),
        );
    }

    fn tenant(&self, tenant: &App) {
        let identity = tenant.identity();
        self.shell.status(
            "Tenant",
            format!(
                "application `{}` of deployer {} ({})",
                tenant.descriptor().application,
                identity.public(),
                identity.path().display()
            ),
        );
    }

    fn provider_key(&self, tenant: &App, file: &Path) {
        self.shell.status(
            "Provider key",
            format!(
                "of `{}`: {}",
                tenant.descriptor().application,
                file.display()
            ),
        );
    }

    fn deployed(&self, deployed: &DeployReport) {
        report::deployed(deployed, self.shell);
    }

    fn running(&self, status: &AppStatus, steps: &[StepResult]) -> std::io::Result<()> {
        self.shell.out(crate::table::status(status))?;
        for step in steps.iter().filter(|s| s.show) {
            self.shell.out(format!(
                "\n{}:\n{}",
                step.call,
                crate::payload::show(&step.result)
            ))?;
        }
        Ok(())
    }

    fn run_command(&self, command: &[String]) {
        self.shell
            .status("Running", format!("`{}` ([[run]])", command.join(" ")));
    }

    fn detached(&self, app: &App) {
        self.shell.status(
            "Running",
            format!(
                "detached; `aex down {}` stops the local nodes",
                app.descriptor().dir.display()
            ),
        );
    }

    fn following(&self) {
        self.shell.status(
            "Following",
            "events and module state (Ctrl-C stops the local nodes)",
        );
    }

    fn looked(&self, status: Result<&AppStatus, &aex_deploy::Error>, several: bool) {
        match status {
            Ok(s) => self.follow.borrow_mut().show(s, several, self.shell),
            Err(e) => self.shell.status("Warning", format!("status failed: {e}")),
        }
    }

    fn restarted(&self, outcome: Result<&[String], &aex_deploy::Error>) {
        match outcome {
            Ok([]) => {}
            Ok(names) => self.shell.status(
                "Restarted",
                format!(
                    "local node {} from its data directory (its persistent modules resume by \
                     themselves)",
                    names.join(", ")
                ),
            ),
            Err(e) => self
                .shell
                .status("Warning", format!("could not restart a local node: {e}")),
        }
    }

    fn stopped(&self, outcome: Result<&[String], &aex_deploy::Error>) {
        match outcome {
            Ok(names) => self.shell.status("Stopped", names.join(", ")),
            Err(e) => self
                .shell
                .status("Warning", format!("could not stop local nodes: {e}")),
        }
    }
}

/// A connection's counters, as the follow view compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    sent: u64,
    received: u64,
    failed: u64,
    rejected: u64,
    gaps: u64,
    dropped: u64,
    blocked: u64,
}

impl Counts {
    fn of(c: &ConnectionView) -> Counts {
        Counts {
            sent: c.sent,
            received: c.received,
            failed: c.failed,
            rejected: c.rejected,
            gaps: c.gaps,
            dropped: c.dropped,
            blocked: c.blocked,
        }
    }

    /// Whether something went wrong since `before`: events refused, lost (gaps, drops) or
    /// failed in module code are news at once. Blocked emits are not: they mean a slow receiver, and are shown with the
    /// traffic.
    fn alarming(&self, before: &Counts) -> bool {
        self.rejected > before.rejected
            || self.gaps > before.gaps
            || self.dropped > before.dropped
            || self.failed > before.failed
    }

    /// Whether any counter grew since `before` (counters that went down, of a restarted or
    /// disabled module, are no news).
    fn grew(&self, before: &Counts) -> bool {
        self.sent > before.sent
            || self.received > before.received
            || self.blocked > before.blocked
            || self.alarming(before)
    }

    /// What grew since `before`, on one line.
    fn since(&self, before: &Counts) -> String {
        let d = |now: u64, then: u64| now - then.min(now);
        let mut line = format!(
            "+{} sent, +{} received, +{} rejected, +{} gaps",
            d(self.sent, before.sent),
            d(self.received, before.received),
            d(self.rejected, before.rejected),
            d(self.gaps, before.gaps)
        );
        // Flow control's counters only when they moved: most connections never see them.
        for (n, what) in [
            (
                d(self.failed, before.failed),
                "failed in module code (see aex status)",
            ),
            (d(self.dropped, before.dropped), "dropped by a node"),
            (d(self.blocked, before.blocked), "blocked on a full window"),
        ] {
            if n > 0 {
                line.push_str(&format!(", +{n} {what}"));
            }
        }
        line
    }
}

/// How often an unchanged-shape update (counters only) is shown.
const QUIET: Duration = Duration::from_secs(5);

/// What the follow view last printed, and when: connection counters and module states, by
/// `application/name` when several applications are followed.
#[derive(Default)]
struct Follow {
    events: HashMap<String, (Counts, Instant)>,
    states: HashMap<String, (serde_json::Value, Instant)>,
    /// Persistent modules' restarts as last seen.
    restarts: HashMap<String, u32>,
    /// Modules whose process was seen ended (each said once, until it runs again).
    stopped: std::collections::HashSet<String>,
}

impl Follow {
    /// Prints what one look at an application found new: a module's state as soon as
    /// anything but its numbers changed (a valve opened, an alarm's text), and counter changes
    /// (module numbers, connection events) at most every [`QUIET`].
    fn show(&mut self, s: &AppStatus, several: bool, shell: &Shell) {
        let prefix = if several {
            format!("{}/", s.application)
        } else {
            String::new()
        };
        let now = Instant::now();
        for c in &s.connections {
            let counts = Counts::of(c);
            let key = format!("{prefix}{}", c.name);
            let Some((before, at)) = self.events.get(&key).copied() else {
                self.events.insert(key, (counts, now));
                continue;
            };
            // Rejections and losses are news at once; traffic is summed over `QUIET`.
            let alarming = counts.alarming(&before);
            let grew = counts.grew(&before);
            if counts != before && !grew {
                self.events.insert(key, (counts, at));
            } else if grew && (alarming || now - at >= QUIET) {
                shell.status("Events", format!("{key}: {}", counts.since(&before)));
                self.events.insert(key, (counts, now));
            }
        }
        for m in &s.modules {
            let Some(state) = &m.state else { continue };
            let key = format!("{prefix}{}", m.name);
            let show = match self.states.get(&key) {
                None => true,
                Some((before, _)) if before == state => false,
                Some((before, at)) => shape(before) != shape(state) || now - *at >= QUIET,
            };
            if show {
                shell.status("State", format!("{key}: {state}"));
                self.states.insert(key, (state.clone(), now));
            }
        }
        for m in &s.modules {
            let Some(p) = &m.persistence else { continue };
            let key = format!("{prefix}{}", m.name);
            // Restarts seen for the first time are news too: the node may have been down at
            // the look before.
            let before = self.restarts.insert(key.clone(), p.restarts);
            if p.restarts > before.unwrap_or(0) {
                shell.status("Restarted", resumed(&key, &m.node, p));
            }
        }
        for m in s.modules.iter().filter(|m| m.reachable) {
            let key = format!("{prefix}{}", m.name);
            match (&m.exit, m.running) {
                (Some(exit), false) if self.stopped.insert(key.clone()) => {
                    shell.status("Stopped", format!("{key} on `{}`: {exit}", m.node));
                    if !m.log_tail.is_empty() {
                        shell.note(m.log_tail.join("\n"));
                    }
                }
                (_, true) => {
                    self.stopped.remove(&key);
                }
                _ => {}
            }
        }
        for n in s.nodes.iter().filter(|n| !n.reachable) {
            shell.status("Warning", format!("node `{}` is unreachable", n.name));
        }
    }
}

/// What became of a persistent module its node restarted, on one line.
fn resumed(key: &str, node: &str, p: &aex_proto::PersistenceStatus) -> String {
    match &p.resume {
        Some(aex_proto::ResumeOutcome::Resumed { version }) => format!(
            "module `{key}` on `{node}`: resumed its sealed state v{version} (restart {})",
            p.restarts
        ),
        Some(aex_proto::ResumeOutcome::Refused(reason)) => {
            format!("module `{key}` on `{node}`: REFUSED its sealed state: {reason}")
        }
        None => format!("module `{key}` on `{node}` (restart {})", p.restarts),
    }
}

/// `value` with every number replaced by `null`: what changed besides counters and readings.
fn shape(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Number(_) => Value::Null,
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        other => other.clone(),
    }
}

/// A flag set on Ctrl-C or SIGTERM.
fn stop_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{signal, SignalKind};
                let Ok(mut term) = signal(SignalKind::terminate()) else {
                    return;
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
        });
        f.store(true, Ordering::SeqCst);
    });
    flag
}

#[cfg(test)]
mod tests {
    use super::Counts;

    fn counts(sent: u64, gaps: u64, dropped: u64, blocked: u64) -> Counts {
        Counts {
            sent,
            received: sent,
            failed: 0,
            rejected: 0,
            gaps,
            dropped,
            blocked,
        }
    }

    #[test]
    fn events_a_node_dropped_are_news_at_once_blocked_emits_are_traffic() {
        let before = counts(10, 0, 0, 0);
        let dropped = counts(10, 0, 2, 0);
        assert!(dropped.alarming(&before) && dropped.grew(&before));
        assert_eq!(
            dropped.since(&before),
            "+0 sent, +0 received, +0 rejected, +0 gaps, +2 dropped by a node"
        );
        let blocked = counts(12, 0, 0, 3);
        assert!(!blocked.alarming(&before) && blocked.grew(&before));
        assert_eq!(
            blocked.since(&before),
            "+2 sent, +2 received, +0 rejected, +0 gaps, +3 blocked on a full window"
        );
        assert!(counts(11, 1, 0, 0).alarming(&before));
        let failed = Counts {
            failed: 1,
            ..before
        };
        assert!(failed.alarming(&before));
        assert_eq!(
            failed.since(&before),
            "+0 sent, +0 received, +0 rejected, +0 gaps, +1 failed in module code (see aex status)"
        );
        // A restarted module's counters start again: no news.
        assert!(!counts(0, 0, 0, 0).grew(&before));
    }
}
