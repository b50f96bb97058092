//! Local nodes for `aex up` and `aex down`: node agents this deployer starts on loopback.
//!
//! A descriptor node whose address is a loopback address is "local": `aex up` starts an
//! `aex node` process for it with its data directory under `.aex/nodes/<name>/`, after
//! provisioning its simulated platform key there. Provisioning is the deployer acting as the
//! manufacturer of simulated hardware, which is why the deployer may trust that key without
//! the descriptor naming it. The node admits exactly the deployer identity that starts it and
//! those of the descriptor's `[[tenant]]`s (`--admit`), never any deployer, and declares the
//! devices the descriptor lists for it (`--device`), as its operator would in `node.toml`. The node runs in its own process group, so `--detach`
//! leaves it running; `aex down` stops it.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aex_proto::{DeployerKey, NodeRequest, NodeResponse};

use crate::app::App;
use crate::client::{ClientError, NodeClient};
use crate::error::{show_duration, Error, Result};
use crate::progress::Observer;
use crate::state::NodeRecord;

/// How long a starting node may take to accept connections (unless `App::set_timeout` set
/// one limit for every node wait, as for the two below).
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a probe waits for whatever listens on a local node's address to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a node asked to shut down may take to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether `aex up` manages this node.
pub fn is_local(app: &App, node: &str) -> bool {
    app.desc
        .node(node)
        .is_some_and(|n| n.address.ip().is_loopback())
}

/// Starts every local node that is not already answering, admitting this deployer and
/// `also_admit` (the identities of the descriptor's tenants) and declaring the node's devices
/// from the descriptor; returns the names started.
pub fn start_local_nodes(
    app: &mut App,
    aex_exe: &Path,
    also_admit: &[DeployerKey],
    obs: &dyn Observer,
) -> Result<Vec<String>> {
    let locals: Vec<_> = app
        .desc
        .nodes
        .iter()
        .filter(|n| n.address.ip().is_loopback())
        .cloned()
        .collect();
    obs.phase("start local nodes", locals.len() as u64);
    let mut started = vec![];
    for spec in locals {
        match probe(app, &spec.address, &spec.name) {
            Probe::Ours => {
                obs.advance(&format!("{} (already running)", spec.name));
                continue;
            }
            Probe::Refuses(why) => {
                return Err(Error::LocalNode {
                    node: spec.name.clone(),
                    action: "use",
                    source: std::io::Error::other(format!(
                        "a node already runs on {} but refuses this deployer: {why}",
                        spec.address
                    )),
                })
            }
            Probe::Absent => {}
        }
        let data_dir = app.node_data_dir(&spec.name);
        let io = |source| Error::LocalNode {
            node: spec.name.clone(),
            action: "start",
            source,
        };
        fs::create_dir_all(&data_dir).map_err(io)?;
        // Provision the simulated hardware root (and, for symmetric kinds, the vendor key
        // file the deployer reads) before the node starts.
        let options = aex_tee::BackendOptions {
            vendor_id: spec.vendor_id,
            ..aex_tee::BackendOptions::default()
        };
        aex_tee::open_with(spec.tee, &data_dir, &options)
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("node.log"))
            .map_err(io)?;
        let mut cmd = Command::new(aex_exe);
        cmd.arg("node")
            .arg("--name")
            .arg(&spec.name)
            .arg("--listen")
            .arg(spec.address.to_string())
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--tee")
            .arg(spec.tee.name())
            .arg("--vendor-id")
            .arg(spec.vendor_id.to_string())
            .arg("--admit")
            .arg(app.identity().public().to_string())
            .arg("--allow-remote-shutdown")
            .args(
                also_admit
                    .iter()
                    .flat_map(|k| ["--admit".to_owned(), k.to_string()]),
            )
            .args(
                spec.devices
                    .iter()
                    .flat_map(|d| ["--device".to_owned(), d.to_string()]),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io)?)
            .stderr(log);
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().map_err(io)?;
        let limit = app.timeout_or(START_TIMEOUT);
        let deadline = Instant::now() + limit;
        loop {
            if matches!(probe(app, &spec.address, &spec.name), Probe::Ours) {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(io(std::io::Error::other(format!(
                    "the node exited with {status}; see {}",
                    data_dir.join("node.log").display()
                ))));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(io(std::io::Error::other(format!(
                    "it did not accept connections on {} within {}; see {}",
                    spec.address,
                    show_duration(limit),
                    data_dir.join("node.log").display()
                ))));
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        app.state.state.nodes.insert(
            spec.name.clone(),
            NodeRecord {
                address: spec.address.to_string(),
                data_dir: data_dir.clone(),
                pid: Some(child.id()),
            },
        );
        app.state.save()?;
        obs.advance(&spec.name);
        started.push(spec.name.clone());
    }
    obs.finish();
    Ok(started)
}

/// Stops the local nodes `aex up` started for this application (all of them, or those in
/// `only`); returns the names stopped.
pub fn stop_local_nodes(
    app: &mut App,
    only: Option<&[String]>,
    obs: &dyn Observer,
) -> Result<Vec<String>> {
    let records: Vec<(String, NodeRecord)> = app
        .state
        .state
        .nodes
        .iter()
        .filter(|(k, _)| only.is_none_or(|o| o.contains(k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    obs.phase("stop local nodes", records.len() as u64);
    let mut stopped = vec![];
    for (name, rec) in records {
        if app.desc.node(&name).is_some() {
            let _ = app.request(&name, "shut down", NodeRequest::Shutdown);
            app.disconnect(&name);
        }
        if let Some(pid) = rec.pid {
            wait_or_kill(pid, app.timeout_or(STOP_TIMEOUT));
        }
        app.state.state.nodes.remove(&name);
        // Modules on a stopped node are gone, and with them their keys.
        app.state.state.modules.retain(|_, m| m.node != name);
        let modules: Vec<String> = app.state.state.modules.keys().cloned().collect();
        app.state
            .state
            .connections
            .retain(|_, c| c.instances.keys().all(|m| modules.contains(m)));
        app.state.save()?;
        obs.advance(&name);
        stopped.push(name);
    }
    obs.finish();
    Ok(stopped)
}

/// What answers on a local node's address.
enum Probe {
    /// The node `name`, admitting this deployer.
    Ours,
    /// A node that refuses this deployer, and why.
    Refuses(String),
    /// Nothing usable (not listening, another service, another node's name).
    Absent,
}

fn probe(app: &App, addr: &std::net::SocketAddr, name: &str) -> Probe {
    let identity = app.identity().clone();
    let Ok(mut c) = NodeClient::connect(
        *addr,
        app.timeout_or(PROBE_TIMEOUT),
        identity,
        &app.desc.application,
    ) else {
        return Probe::Absent;
    };
    match c.request(NodeRequest::Status) {
        Ok(NodeResponse::Status(s)) if s.name == name => Probe::Ours,
        Err(ClientError::Node(e)) if e.kind == aex_proto::NodeErrorKind::Refused => {
            Probe::Refuses(e.message)
        }
        _ => Probe::Absent,
    }
}

fn alive(pid: u32) -> bool {
    // A zombie (exited, not yet reaped by its parent) counts as gone.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn wait_or_kill(pid: u32, grace: Duration) {
    let deadline = Instant::now() + grace;
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if alive(pid) {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(pid.to_string())
            .status();
    }
}
