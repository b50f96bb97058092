//! Local nodes for `aex up` and `aex down`: node agents this deployer starts on loopback.
//!
//! A descriptor node whose address is a loopback address is "local": `aex up` starts an
//! `aex node` process for it with its data directory under `.aex/nodes/<name>/`, after
//! provisioning its simulated platform key and its identity key there. Provisioning is the
//! deployer acting as the manufacturer of simulated hardware and as the node's operator,
//! which is why the deployer may trust those keys without the descriptor naming them; the
//! descriptors of its `[[tenant]]`s get the identity pins of the local nodes they use
//! ([`provision_tenant_pins`]). The node admits exactly the deployer identity that starts it and
//! those of the descriptor's `[[tenant]]`s (`--admit`), never any deployer, and declares the
//! devices the descriptor lists for it (`--device`), as its operator would in `node.toml`. The
//! node runs in its own process group, so `--detach` leaves it running; `aex down` stops it.
//!
//! On a local `trustzone` or `sancus` node `aex up` also plays the operator's part for every
//! stakeholder ([`hand_provider_keys`]): it writes each deployer identity's own provider key
//! where that deployer looks for it, the starting deployer's and each tenant's apart, so no
//! stakeholder receives a key that derives another's module keys.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aex_proto::{DeployerKey, NodeKey, NodeRequest, NodeResponse};
use aex_tee::{PlatformError, SimSymmetricPlatform};

use crate::app::App;
use crate::client::{ClientError, NodeClient};
use crate::duration::show_duration;
use crate::error::{Error, Result};
use crate::progress::Observer;
use crate::state::NodeRecord;

mod listener;

/// How long a starting node may take to accept connections (unless `App::set_timeout` set
/// one limit for every node wait, as for the two below).
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a probe waits for whatever listens on a local node's address to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a node asked to shut down may take to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether `aex up` manages this node.
pub fn is_local(app: &App, node: &str) -> bool {
    app.descriptor()
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
        .descriptor()
        .nodes
        .iter()
        .filter(|n| n.address.ip().is_loopback())
        .cloned()
        .collect();
    obs.phase("start local nodes", locals.len() as u64);
    let mut started = vec![];
    for spec in locals {
        let data_dir = app.node_data_dir(&spec.name);
        let io = |source| Error::LocalNode {
            node: spec.name.clone(),
            action: "start",
            source,
        };
        let identity = match vet(app, &spec)? {
            Vetted::Running => {
                obs.advance(&format!("{} (already running)", spec.name));
                continue;
            }
            Vetted::Free(identity) => identity,
        };
        fs::create_dir_all(&data_dir).map_err(io)?;
        // Provision the simulated hardware root before the node starts.
        aex_tee::open(spec.tee, &data_dir).map_err(|e| io(std::io::Error::other(e.to_string())))?;
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
            if matches!(probe(app, &spec.address, &spec.name, identity), Probe::Ours) {
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
        app.record_local_node(
            &spec.name,
            NodeRecord {
                address: spec.address.to_string(),
                data_dir: data_dir.clone(),
                pid: Some(child.id()),
            },
        );
        app.save()?;
        obs.advance(&spec.name);
        started.push(spec.name.clone());
    }
    obs.finish();
    hand_provider_keys(app, app)?;
    Ok(started)
}

/// Checks, before anything is built or started, that every local node's address is ready for
/// `aex up`: free, or its own node already running there. A port another program holds, or
/// another node (another application's, or a data directory other than this application's)
/// is an error that names it.
pub fn check_local_addresses(app: &App) -> Result<()> {
    for spec in &app.descriptor().nodes {
        if spec.address.ip().is_loopback() {
            vet(app, spec)?;
        }
    }
    Ok(())
}

/// What is at a local node's address.
enum Vetted {
    /// The node, running, admitting this deployer.
    Running,
    /// Nothing: the node may start there, with this identity key (provisioned).
    Free(NodeKey),
}

/// Looks at local node `spec`'s address, after provisioning the node's identity (a node
/// already running there must prove it).
fn vet(app: &App, spec: &crate::descriptor::NodeSpec) -> Result<Vetted> {
    let data_dir = app.node_data_dir(&spec.name);
    let (identity, _) =
        aex_link::keys::load_or_create(&data_dir).map_err(|e| Error::LocalNode {
            node: spec.name.clone(),
            action: "provision the identity key of",
            source: std::io::Error::other(e),
        })?;
    let identity = identity.public();
    let taken = |why: String| Error::AddressTaken {
        node: spec.name.clone(),
        addr: spec.address,
        why,
    };
    match probe(app, &spec.address, &spec.name, identity) {
        Probe::Ours => Ok(Vetted::Running),
        Probe::Refuses(why) => Err(taken(why)),
        Probe::Absent => match listener::taken(spec.address) {
            None => Ok(Vetted::Free(identity)),
            Some(why) => Err(taken(why)),
        },
    }
}

/// Gives the descriptor of a `[[tenant]]` the identity pins of the local nodes it uses: for
/// each of its nodes that pins no identity and has the address of one of `app`'s local nodes,
/// writes that node's `node-identity.pub` where the tenant's deployer looks for it
/// (`.aex/nodes/<name>/node-identity.pub` beside the tenant's descriptor). Public keys only:
/// the tenant gets nothing secret. Returns the nodes pinned.
pub fn provision_tenant_pins(app: &App, tenant: &App) -> Result<Vec<String>> {
    let mut pinned = vec![];
    for spec in &tenant.descriptor().nodes {
        if spec.identity.is_some() {
            continue;
        }
        let Some(ours) = app
            .descriptor()
            .nodes
            .iter()
            .find(|n| n.address == spec.address && n.address.ip().is_loopback())
        else {
            continue;
        };
        let key = app.node_identity(&ours.name)?.key;
        let dir = tenant.node_data_dir(&spec.name);
        let io = |source| Error::LocalNode {
            node: spec.name.clone(),
            action: "pin the identity of",
            source,
        };
        fs::create_dir_all(&dir).map_err(io)?;
        let path = dir.join(aex_link::keys::IDENTITY_PUB_FILE);
        fs::write(&path, format!("{key}\n")).map_err(io)?;
        pinned.push(spec.name.clone());
    }
    Ok(pinned)
}

/// The operator's act for the local nodes `operator`'s `aex up` runs: for every `trustzone`
/// or `sancus` node of `deployer`'s descriptor that is one of them (same address, and its
/// simulated node key in `operator`'s `.aex/nodes/<node>/`; others are skipped), writes
/// `deployer`'s own provider key (mode 0600) where `deployer` reads it
/// ([`App::provider_key_path`]); returns the files written. `operator` and `deployer` are the
/// same application for the starting deployer, and a tenant's for each `[[tenant]]`. A
/// tenant's file may not be one the operator's own deployer reads.
pub fn hand_provider_keys(operator: &App, deployer: &App) -> Result<Vec<PathBuf>> {
    let mut written = vec![];
    for spec in &deployer.descriptor().nodes {
        let Some(local) = operator
            .descriptor()
            .nodes
            .iter()
            .find(|n| n.address == spec.address && n.address.ip().is_loopback())
        else {
            continue;
        };
        let Some(kind) = local.tee.symmetric() else {
            continue;
        };
        let fail = |source: std::io::Error| Error::LocalNode {
            node: local.name.clone(),
            action: "hand out a provider key of",
            source,
        };
        let path = deployer.provider_key_path(&spec.name)?;
        let own = operator.provider_key_path(&local.name)?;
        if deployer.provider() != operator.provider() && same_file(&path, &own) {
            return Err(fail(std::io::Error::other(format!(
                "application `{}` reads its provider key from {}, which holds the key of \
                 application `{}`'s deployer: give it a file of its own (`provider_key_file`)",
                deployer.descriptor().application,
                path.display(),
                operator.descriptor().application
            ))));
        }
        let platform = match SimSymmetricPlatform::load(kind, &operator.node_data_dir(&local.name))
        {
            Ok(platform) => platform,
            // Not a node this deployer provisioned (e.g. one its operator started by hand):
            // its operator hands out its keys.
            Err(PlatformError::Missing { .. }) => continue,
            Err(e) => return Err(fail(std::io::Error::other(e.to_string()))),
        };
        platform
            .provider_key(&deployer.provider())
            .write_file(&path)
            .map_err(|e| fail(std::io::Error::other(e.to_string())))?;
        written.push(path);
    }
    Ok(written)
}

/// Whether two paths name one file (or would, once written).
fn same_file(a: &Path, b: &Path) -> bool {
    let resolve = |p: &Path| {
        p.canonicalize()
            .or_else(|_| std::path::absolute(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    resolve(a) == resolve(b)
}

/// What `aex down` did.
#[derive(Debug)]
pub struct Down {
    /// The local nodes stopped.
    pub stopped: Vec<String>,
    /// Why the descriptor could not be used, if it could not: then the nodes were stopped
    /// from the application's state alone.
    pub unparsed: Option<Error>,
}

/// `aex down`: stops every local node `aex up` started for the application at `path`, from
/// the application's state. The descriptor is not needed for it: when it does not parse (or
/// is gone), the nodes the state records are stopped all the same and [`Down::unparsed`] says
/// why the descriptor was not used. `on_wait` and `timeout` are as for [`App::open_waiting`].
pub fn down(
    path: &Path,
    identity: std::sync::Arc<crate::identity::Identity>,
    timeout: Option<Duration>,
    on_wait: &dyn Fn(Option<&crate::state::LockHolder>),
    obs: &dyn Observer,
) -> Result<Down> {
    let (mut app, unparsed) = match App::open_waiting(path, identity.clone(), timeout, on_wait) {
        Ok(app) => (app, None),
        Err(e @ Error::Descriptor(_)) => {
            let app = App::open_unparsed(path, identity, timeout, on_wait)?;
            (app, Some(e))
        }
        Err(e) => return Err(e),
    };
    let stopped = stop_local_nodes(&mut app, None, obs)?;
    Ok(Down { stopped, unparsed })
}

/// Stops the local nodes `aex up` started for this application (all of them, or those in
/// `only`); returns the names stopped. A node the descriptor names is asked to shut down; one
/// it does not name (removed from it, or a descriptor that did not parse) is sent SIGTERM,
/// once its process is checked to be that node's agent. Either way it is killed if it has
/// not exited after the stop timeout.
pub fn stop_local_nodes(
    app: &mut App,
    only: Option<&[String]>,
    obs: &dyn Observer,
) -> Result<Vec<String>> {
    let records: Vec<(String, NodeRecord)> = app
        .local_nodes()
        .iter()
        .filter(|(k, _)| only.is_none_or(|o| o.contains(k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    obs.phase("stop local nodes", records.len() as u64);
    let mut stopped = vec![];
    for (name, rec) in records {
        // A recorded pid that is no longer this node's agent (it exited, and the pid was
        // reused) is left alone.
        let pid = rec.pid.filter(|pid| is_node_agent(*pid, &rec.data_dir));
        let asked = app.descriptor().node(&name).is_some()
            && app
                .request(&name, "shut down", NodeRequest::Shutdown)
                .is_ok();
        app.disconnect(&name);
        if let Some(pid) = pid {
            if !asked {
                signal(pid, "TERM");
            }
            wait_or_kill(pid, app.timeout_or(STOP_TIMEOUT));
        }
        // Modules on a stopped node are gone, and with them their keys.
        app.forget_local_node(&name);
        app.save()?;
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

fn probe(app: &App, addr: &std::net::SocketAddr, name: &str, node: NodeKey) -> Probe {
    let identity = app.identity().clone();
    let mut c = match NodeClient::connect(
        *addr,
        node,
        app.timeout_or(PROBE_TIMEOUT),
        identity,
        &app.descriptor().application,
    ) {
        Ok(c) => c,
        Err(ClientError::WrongIdentity { keys, .. }) => {
            return Probe::Refuses(format!(
                "an aex node with identity key {} listens there, not the node this application \
                 provisioned in .aex/nodes/{name}/ (key {node}): it belongs to another \
                 application, or runs from another data directory",
                keys.actual
            ))
        }
        Err(_) => return Probe::Absent,
    };
    match c.request(NodeRequest::Status) {
        Ok(NodeResponse::Status(s)) if s.name == name => Probe::Ours,
        Err(ClientError::Node(e))
            if matches!(
                e.kind,
                aex_proto::NodeErrorKind::Refused | aex_proto::NodeErrorKind::NotAdmitted
            ) =>
        {
            Probe::Refuses(format!(
                "an aex node listens there that refuses this deployer: {}",
                e.message
            ))
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

/// Whether process `pid` is an `aex node` agent with data directory `data_dir` (its
/// command line says so), so that a stale pid never gets a signal meant for a node.
fn is_node_agent(pid: u32, data_dir: &Path) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let dir = data_dir.as_os_str().as_encoded_bytes();
    args.get(1) == Some(&&b"node"[..])
        && args
            .windows(2)
            .any(|w| w[0] == b"--data-dir" && w[1] == dir)
}

/// Sends signal `name` to `pid` with `kill(1)` (this crate has no unsafe code for `kill(2)`).
fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn wait_or_kill(pid: u32, grace: Duration) {
    let deadline = Instant::now() + grace;
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if alive(pid) {
        signal(pid, "KILL");
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::sync::Arc;

    use aex_tee::{ProviderKey, TeeKind};

    use super::*;
    use crate::identity::Identity;

    /// An application in `dir` with one sancus node at `address`, deployed by the identity in
    /// the file `identity` (created).
    fn app(dir: &Path, address: &str, extra: &str, identity: &Path) -> App {
        fs::create_dir_all(dir).unwrap();
        let text = format!(
            "[[node]]\nname = \"field\"\naddress = \"{address}\"\ntee = \"sancus\"\n{extra}"
        );
        fs::write(dir.join("aex.toml"), text).unwrap();
        let (identity, _) = Identity::load_or_create(identity).unwrap();
        App::open(dir, Arc::new(identity)).unwrap()
    }

    #[test]
    fn each_stakeholder_gets_its_own_provider_key_and_only_its_own() {
        let root = tempfile::tempdir().unwrap();
        let at = |name: &str| root.path().join(name);
        let field = "127.0.0.1:7999";
        let farm = app(&at("farm"), field, "", &at("farm.id"));
        // The node key exists once the node has started (here: its backend opened).
        aex_tee::open(TeeKind::Sancus, &farm.node_data_dir("field")).unwrap();
        let own = hand_provider_keys(&farm, &farm).unwrap();
        assert_eq!(own, [farm.provider_key_path("field").unwrap()]);
        let extra = "provider_key_file = \"field.key\"\n";
        let insight = app(&at("insight"), field, extra, &at("insight.id"));
        let theirs = hand_provider_keys(&farm, &insight).unwrap();
        assert_eq!(theirs, [at("insight").join("field.key")]);
        let farms = ProviderKey::read_file(&own[0]).unwrap().key_id();
        let insights = ProviderKey::read_file(&theirs[0]).unwrap().key_id();
        assert_ne!(farms, insights);
        // A tenant that reads its key from the farm's own file gets nothing written there.
        let extra = format!("provider_key_file = {:?}\n", own[0].display().to_string());
        let greedy = app(&at("greedy"), field, &extra, &at("greedy.id"));
        let err = hand_provider_keys(&farm, &greedy).unwrap_err();
        let why = err.source().map(ToString::to_string).unwrap_or_default();
        assert!(
            err.to_string().contains("local node `field`")
                && why.contains("give it a file of its own"),
            "{err}: {why}"
        );
        assert_eq!(ProviderKey::read_file(&own[0]).unwrap().key_id(), farms);
        // A node the operator does not run locally, or did not provision: nothing to hand out.
        let elsewhere = app(&at("elsewhere"), "192.0.2.1:7999", "", &at("insight.id"));
        assert!(hand_provider_keys(&farm, &elsewhere).unwrap().is_empty());
        let unprovisioned = app(&at("fresh"), field, "", &at("farm.id"));
        assert!(hand_provider_keys(&unprovisioned, &unprovisioned)
            .unwrap()
            .is_empty());
    }
}
