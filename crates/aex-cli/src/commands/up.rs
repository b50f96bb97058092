//! `aex up`: the one-command experience. Start the local nodes, build, deploy, attest,
//! connect, run the descriptor's `[[up]]` steps, show status; then either return
//! (`--detach`) or follow the application's event counters until Ctrl-C and stop what it
//! started.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aex_deploy::{ops, App};
use anyhow::{Context, Result};
use clap::Args;

use super::AppPath;
use crate::progress::Bars;
use crate::shell::Shell;

/// Start local nodes, build, deploy, attest and connect; then follow events until Ctrl-C
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Descriptor file, or a directory holding aex.toml [default: current directory]
    path: Option<PathBuf>,
    /// Return once the application runs, leaving the local nodes running (`aex down` stops them)
    #[arg(long, short)]
    detach: bool,
    #[command(flatten)]
    pub(super) app: AppPath,
}

pub fn exec(args: UpArgs, shell: &Shell) -> Result<()> {
    let path = args.app.resolve(args.path.as_ref());
    let identity = args.app.identity(shell)?;
    let mut app = args.app.open_as(&path, identity.clone())?;
    let tenants = tenants(&app, shell)?;
    let stop = stop_flag();
    let exe = std::env::current_exe().context("cannot locate the aex executable")?;
    let admit: Vec<_> = tenants.iter().map(|(_, id)| id.public()).collect();
    let started = ops::local::start_local_nodes(&mut app, &exe, &admit, &Bars::new(shell))?;
    let result = bring_up(&mut app, shell).and_then(|()| {
        for (tenant, tenant_identity) in &tenants {
            let mut tenant_app = args.app.open_as(tenant, tenant_identity.clone())?;
            ops::local::provision_tenant_pins(&app, &tenant_app)?;
            shell.status(
                "Tenant",
                format!(
                    "application `{}` of deployer {} ({})",
                    tenant_app.descriptor().application,
                    tenant_identity.public(),
                    tenant_identity.path().display()
                ),
            );
            // As the local nodes' operator: the tenant's own provider keys, never the farm's.
            for file in ops::local::hand_provider_keys(&app, &tenant_app)? {
                shell.status(
                    "Provider key",
                    format!(
                        "of `{}`: {}",
                        tenant_app.descriptor().application,
                        file.display()
                    ),
                );
            }
            bring_up(&mut tenant_app, shell)?;
        }
        Ok(())
    });
    if let Err(e) = result {
        if !args.detach {
            stop_started(&mut app, &started, shell);
        }
        return Err(e);
    }
    if args.detach {
        shell.status(
            "Running",
            format!(
                "detached; `aex down {}` stops the local nodes",
                app.descriptor().dir.display()
            ),
        );
        return Ok(());
    }
    // Release the application's state while following, so other `aex` commands can use it.
    drop(app);
    shell.status(
        "Following",
        "events and module state (Ctrl-C stops the local nodes)",
    );
    let mut apps = vec![(path.clone(), identity.clone())];
    apps.extend(tenants);
    follow(&apps, &args.app, shell, &stop);
    let mut app = args.app.open_as(&path, identity)?;
    stop_started(&mut app, &started, shell);
    Ok(())
}

/// The descriptor's tenants: each one's descriptor and deployer identity (created on first
/// use, as a second organisation would create its own).
fn tenants(app: &App, shell: &Shell) -> Result<Vec<(PathBuf, Arc<aex_deploy::Identity>)>> {
    let mut out = Vec::new();
    for tenant in &app.descriptor().tenants {
        let (identity, created) = aex_deploy::Identity::load_or_create(&tenant.identity)
            .map_err(aex_deploy::Error::from)?;
        if created {
            shell.status(
                "Created",
                format!(
                    "tenant identity {} (secret, mode 0600)",
                    identity.path().display()
                ),
            );
        }
        out.push((tenant.descriptor.clone(), Arc::new(identity)));
    }
    Ok(out)
}

fn bring_up(app: &mut App, shell: &Shell) -> Result<()> {
    super::deploy::deploy(app, shell)?;
    let steps = ops::up::run_steps(app)?;
    let status = ops::status::status(app)?;
    shell.out(crate::table::status(&status))?;
    for step in steps.iter().filter(|s| s.show) {
        shell.out(format!(
            "\n{}:\n{}",
            step.call,
            crate::payload::show(&step.result)
        ))?;
    }
    Ok(())
}

/// A connection's (sent, received, rejected, gaps).
type Counts = (u64, u64, u64, u64);

/// How often an unchanged-shape update (counters only) is shown.
const QUIET: Duration = Duration::from_secs(5);

/// Follows every application in `apps` (named when there are several) until `stop` is set:
/// once a second it looks at each, and prints a module's state as soon as anything but its
/// numbers changed (a valve opened, an alarm's text), and counter changes (module numbers,
/// connection events) at most every [`QUIET`]. Each look opens the application afresh (and so
/// holds its state only for that moment), with the command's `--timeout`.
fn follow(
    apps: &[(PathBuf, Arc<aex_deploy::Identity>)],
    options: &AppPath,
    shell: &Shell,
    stop: &AtomicBool,
) {
    // What was last printed, and when.
    let mut events: HashMap<String, (Counts, Instant)> = HashMap::new();
    let mut states: HashMap<String, (serde_json::Value, Instant)> = HashMap::new();
    let mut ticks = 0u32;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
        ticks += 1;
        if !ticks.is_multiple_of(10) {
            continue;
        }
        for (path, identity) in apps {
            let status = options
                .open_as(path, identity.clone())
                .and_then(|mut app| Ok(ops::status::status(&mut app)?));
            let s = match status {
                Ok(s) => s,
                Err(e) => {
                    shell.status("Warning", format!("status failed: {e}"));
                    continue;
                }
            };
            let prefix = if apps.len() > 1 {
                format!("{}/", s.application)
            } else {
                String::new()
            };
            let now = Instant::now();
            for c in &s.connections {
                let counts = (c.sent, c.received, c.rejected, c.gaps);
                let key = format!("{prefix}{}", c.name);
                let Some((before, at)) = events.get(&key).copied() else {
                    events.insert(key, (counts, now));
                    continue;
                };
                // Rejections and gaps are news at once; traffic is summed over `QUIET`.
                let alarming = counts.2 > before.2 || counts.3 > before.3;
                // Counters that went down (a restarted or disabled module) are no news.
                let grew = counts.0 > before.0 || counts.1 > before.1 || alarming;
                if counts != before && !grew {
                    events.insert(key, (counts, at));
                } else if grew && (alarming || now - at >= QUIET) {
                    shell.status(
                        "Events",
                        format!(
                            "{key}: +{} sent, +{} received, +{} rejected, +{} gaps",
                            counts.0 - before.0.min(counts.0),
                            counts.1 - before.1.min(counts.1),
                            counts.2 - before.2.min(counts.2),
                            counts.3 - before.3.min(counts.3)
                        ),
                    );
                    events.insert(key, (counts, now));
                }
            }
            for m in &s.modules {
                let Some(state) = &m.state else { continue };
                let key = format!("{prefix}{}", m.name);
                let show = match states.get(&key) {
                    None => true,
                    Some((before, _)) if before == state => false,
                    Some((before, at)) => shape(before) != shape(state) || now - *at >= QUIET,
                };
                if show {
                    shell.status("State", format!("{key}: {state}"));
                    states.insert(key, (state.clone(), now));
                }
            }
            for n in s.nodes.iter().filter(|n| !n.reachable) {
                shell.status("Warning", format!("node `{}` is unreachable", n.name));
            }
        }
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

fn stop_started(app: &mut App, started: &[String], shell: &Shell) {
    if started.is_empty() {
        return;
    }
    match ops::local::stop_local_nodes(app, Some(started), &Bars::new(shell)) {
        Ok(names) => shell.status("Stopped", names.join(", ")),
        Err(e) => shell.status("Warning", format!("could not stop local nodes: {e}")),
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
