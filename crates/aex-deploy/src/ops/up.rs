//! `aex up`: the one-command experience. Start the local nodes, deploy the application (build,
//! load, attest, connect), run the descriptor's `[[up]]` steps and take its status; do the same
//! for each of its `[[tenant]]`s; then either return (`detach`) or follow every application
//! until told to stop, and stop the nodes it started.
//!
//! A step with `until = "field"` is repeated (every 100 ms, at most [`STEP_TIMEOUT`]) until
//! its JSON result has that field set to `true`, so `up` can wait for asynchronous work such
//! as a ping-pong run to finish.
//!
//! While it follows, `up` holds no application's state: each look opens the application
//! afresh and lets go of it at once, so other `aex` commands can use it meanwhile.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aex_proto::DeployerKey;

use crate::app::App;
use crate::descriptor::RunStep;
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::ops::call::call;
use crate::ops::deploy::{
    build, deploy_built, BuiltApp, DeployObserver, DeployOptions, DeployReport, Deployed,
};
use crate::ops::local;
use crate::ops::status::{status, AppStatus};

/// Longest wait for an `until` condition.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// How often the applications are looked at while `up` follows them.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// How often the stop flag is checked while `up` follows.
const TICK: Duration = Duration::from_millis(100);

/// What `aex up` is asked for.
#[derive(Debug, Clone, Copy)]
pub struct UpOptions<'a> {
    /// The `aex` executable the local nodes run as (`aex node`).
    pub aex_exe: &'a Path,
    /// Return once the applications run, leaving the local nodes running.
    pub detach: bool,
    /// Set (on Ctrl-C, say) to stop following: then the local nodes `up` started are stopped.
    pub stop: &'a AtomicBool,
}

/// What `aex up` tells its caller, beyond each deployment's progress and plan.
pub trait UpObserver: DeployObserver {
    /// The deployer identity of a tenant was created (its first use).
    fn tenant_identity_created(&self, _identity: &Identity) {}
    /// Tenant application `tenant` is brought up next.
    fn tenant(&self, _tenant: &App) {}
    /// `tenant`'s own provider key for a local node was written to `file`.
    fn provider_key(&self, _tenant: &App, _file: &Path) {}
    /// An application was deployed.
    fn deployed(&self, _report: &DeployReport) {}
    /// An application runs: its status, and the results of its `[[up]]` steps. An error (the
    /// caller's output closed, say) stops `up` as a failure would.
    fn running(&self, _status: &AppStatus, _steps: &[StepResult]) -> io::Result<()> {
        Ok(())
    }
    /// A `[[run]]` command starts (its output goes to `up`'s own).
    fn run_command(&self, _command: &[String]) {}
    /// `up` returns with the local nodes running (`detach`).
    fn detached(&self, _app: &App) {}
    /// `up` follows the applications from now on.
    fn following(&self) {}
    /// One look at a followed application: its status, or why it could not be had.
    /// `several` tells whether more than one application is followed.
    fn looked(&self, _status: std::result::Result<&AppStatus, &Error>, _several: bool) {}
    /// The local nodes `up` started were stopped (their names), or could not be.
    fn stopped(&self, _outcome: std::result::Result<&[String], &Error>) {}
    /// While following: local nodes `up` started had stopped (killed, crashed) and were
    /// started again from their data directories, or could not be.
    fn restarted(&self, _outcome: std::result::Result<&[String], &Error>) {}
}

/// The result of one step.
#[derive(Debug, Clone)]
pub struct StepResult {
    /// `module.entry`.
    pub call: String,
    /// The entry point's last result.
    pub result: Vec<u8>,
    /// Whether the descriptor asked to show it.
    pub show: bool,
}

/// Brings `app` and its tenants up on the local nodes, then follows them until `opts.stop`
/// (unless `opts.detach`). If bringing them up fails, the local nodes it started are stopped
/// again (unless `opts.detach`).
///
/// Checks come before work: every descriptor is read and the local nodes' addresses are
/// looked at before anything is built, and every module is built and checked against the
/// descriptor (ports, algorithms, periodic entries) before any node starts.
pub fn up(mut app: App, opts: &UpOptions<'_>, obs: &dyn UpObserver) -> Result<()> {
    // Before anything is built or started: a governed application changes through its governor.
    super::governed::refuse_if_governed(app.descriptor(), "aex up")?;
    let tenants = tenants(&app, obs)?;
    let mut tenant_apps = Vec::new();
    for (tenant, identity) in &tenants {
        tenant_apps.push(App::open_with_timeout(
            tenant,
            identity.clone(),
            app.timeout(),
        )?);
    }
    for tenant_app in &tenant_apps {
        super::governed::refuse_if_governed(tenant_app.descriptor(), "aex up")?;
    }
    local::check_local_addresses(&app)?;
    let built = build(&app, obs)?;
    let mut tenant_builds = Vec::new();
    for tenant_app in &tenant_apps {
        tenant_builds.push(build(tenant_app, obs)?);
    }
    let admit: Vec<_> = tenants.iter().map(|(_, id)| id.public()).collect();
    let started = local::start_local_nodes(&mut app, opts.aex_exe, &admit, obs)?;
    let result = bring_up(&mut app, built, obs).and_then(|()| {
        for (mut tenant_app, built) in tenant_apps.into_iter().zip(tenant_builds) {
            local::provision_tenant_pins(&app, &tenant_app)?;
            obs.tenant(&tenant_app);
            // As the local nodes' operator: the tenant's own provider keys, never the farm's.
            for file in local::hand_provider_keys(&app, &tenant_app)? {
                obs.provider_key(&tenant_app, &file);
            }
            bring_up(&mut tenant_app, built, obs)?;
        }
        Ok(())
    });
    if let Err(e) = result {
        if !opts.detach {
            stop_started(&mut app, &started, obs);
        }
        return Err(e);
    }
    let commands = app.descriptor().run.clone();
    let env = RunEnv {
        aex_exe: opts.aex_exe.to_owned(),
        descriptor: std::path::absolute(&app.descriptor().path)
            .unwrap_or_else(|_| app.descriptor().path.clone()),
        dir: app.descriptor().dir.clone(),
        identity: app.identity().path().to_owned(),
    };
    if opts.detach {
        obs.detached(&app);
        drop(app);
        return run_commands(&commands, &env, obs);
    }
    let timeout = app.timeout();
    let mut apps = vec![(app.descriptor().path.clone(), app.identity().clone())];
    apps.extend(tenants);
    // Release the application's state while following (and while the `[[run]]` commands
    // run), so other `aex` commands can use it.
    drop(app);
    if let Err(e) = run_commands(&commands, &env, obs) {
        let (path, identity) = &apps[0];
        let mut app = App::open_with_timeout(path, identity.clone(), timeout)?;
        stop_started(&mut app, &started, obs);
        return Err(e);
    }
    obs.following();
    let relaunch = Relaunch {
        aex_exe: opts.aex_exe,
        admit: &admit,
        started: &started,
    };
    follow(&apps, timeout, opts.stop, &relaunch, obs);
    let (path, identity) = &apps[0];
    let mut app = App::open_with_timeout(path, identity.clone(), timeout)?;
    stop_started(&mut app, &started, obs);
    Ok(())
}

/// What a `[[run]]` command is told in its environment.
struct RunEnv {
    aex_exe: PathBuf,
    descriptor: PathBuf,
    dir: PathBuf,
    identity: PathBuf,
}

/// Runs the descriptor's `[[run]]` commands in order, in its directory, each to its end; the
/// first that fails stops `up`. Their environment names the `aex` executable (`AEX`), the
/// descriptor (`AEX_APP`) and the deployer identity (`AEX_IDENTITY`), so a command's own
/// `aex` calls act for the same deployer on the same application.
fn run_commands(commands: &[RunStep], env: &RunEnv, obs: &dyn UpObserver) -> Result<()> {
    for step in commands {
        obs.run_command(&step.command);
        let words = step.command.join(" ");
        let status = std::process::Command::new(&step.command[0])
            .args(&step.command[1..])
            .current_dir(&env.dir)
            .env("AEX", &env.aex_exe)
            .env("AEX_APP", &env.descriptor)
            .env("AEX_IDENTITY", &env.identity)
            .status()
            .map_err(|e| Error::Run {
                command: words.clone(),
                message: format!("did not start in {}: {e}", env.dir.display()),
            })?;
        if !status.success() {
            return Err(Error::Run {
                command: words,
                message: format!("failed ({status})"),
            });
        }
    }
    Ok(())
}

/// Runs the descriptor's `[[up]]` steps in order.
pub fn run_steps(app: &mut App) -> Result<Vec<StepResult>> {
    let steps = app.descriptor().up.clone();
    let mut results = vec![];
    for step in steps {
        let started = Instant::now();
        let result = loop {
            let result = call(app, &step.module, &step.entry, &step.payload)?;
            let Some(field) = &step.until else {
                break result;
            };
            let done = serde_json::from_slice::<serde_json::Value>(&result)
                .ok()
                .and_then(|v| v.get(field).and_then(|f| f.as_bool()))
                .unwrap_or(false);
            if done {
                break result;
            }
            if started.elapsed() > STEP_TIMEOUT {
                return Err(Error::Timeout {
                    what: format!("`{}.{}` to report `{field}: true`", step.module, step.entry),
                    limit: STEP_TIMEOUT,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        results.push(StepResult {
            call: format!("{}.{}", step.module, step.entry),
            result,
            show: step.show,
        });
    }
    Ok(results)
}

/// The descriptor's tenants: each one's descriptor and deployer identity (created on first
/// use, as a second organisation would create its own).
fn tenants(app: &App, obs: &dyn UpObserver) -> Result<Vec<(PathBuf, Arc<Identity>)>> {
    let mut out = Vec::new();
    for tenant in &app.descriptor().tenants {
        let (identity, created) = Identity::load_or_create(&tenant.identity)?;
        if created {
            obs.tenant_identity_created(&identity);
        }
        out.push((tenant.descriptor.clone(), Arc::new(identity)));
    }
    Ok(out)
}

/// Deploys `app` from its modules as `built`, runs its `[[up]]` steps and reports it running.
fn bring_up(app: &mut App, built: (BuiltApp, f64), obs: &dyn UpObserver) -> Result<()> {
    if let Deployed::Applied(report) = deploy_built(app, built, &DeployOptions::default(), obs)? {
        obs.deployed(&report);
    }
    let steps = run_steps(app)?;
    let status = status(app)?;
    obs.running(&status, &steps).map_err(Error::Output)
}

/// Looks at every application of `apps` once every [`LOOK_EVERY`] until `stop` is set. Each
/// look opens the application afresh (and so holds its state only for that moment), with the
/// limit `up` was given.
fn follow(
    apps: &[(PathBuf, Arc<Identity>)],
    timeout: Option<Duration>,
    stop: &AtomicBool,
    relaunch: &Relaunch<'_>,
    obs: &dyn UpObserver,
) {
    let ticks_per_look = (LOOK_EVERY.as_millis() / TICK.as_millis()) as u32;
    let mut ticks = 0u32;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(TICK);
        ticks += 1;
        if !ticks.is_multiple_of(ticks_per_look) {
            continue;
        }
        for (i, (path, identity)) in apps.iter().enumerate() {
            let looked = App::open_with_timeout(path, identity.clone(), timeout)
                .and_then(|mut app| status(&mut app));
            obs.looked(looked.as_ref(), apps.len() > 1);
            // A local node this `up` started that stopped is started again: its persistent
            // modules resume by themselves (the follow view narrates it).
            let down = looked.as_ref().is_ok_and(|s| {
                s.nodes
                    .iter()
                    .any(|n| !n.reachable && relaunch.started.contains(&n.name))
            });
            if i == 0 && down {
                let outcome =
                    App::open_with_timeout(path, identity.clone(), timeout).and_then(|mut app| {
                        local::start_local_nodes(&mut app, relaunch.aex_exe, relaunch.admit, obs)
                    });
                obs.restarted(outcome.as_deref());
            }
        }
    }
}

/// What following needs to start a stopped local node again.
struct Relaunch<'a> {
    aex_exe: &'a Path,
    admit: &'a [DeployerKey],
    /// The nodes `up` started.
    started: &'a [String],
}

/// Stops the local nodes `up` started, if any, and says how that went.
fn stop_started(app: &mut App, started: &[String], obs: &dyn UpObserver) {
    if started.is_empty() {
        return;
    }
    let outcome = local::stop_local_nodes(app, Some(started), obs);
    obs.stopped(outcome.as_deref());
}
