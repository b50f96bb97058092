//! `aex deploy`: build, load, attest and connect, converging on the descriptor.
//!
//! Order of work, and why:
//! 1. build every module and check the descriptor against the interfaces the binaries
//!    declare, before touching any node;
//! 2. keep a module instance that the deployer attested and that its node still runs with
//!    the same measurement; otherwise (re)load it and attest the new instance;
//! 3. re-key every connection whose endpoint instances changed (fresh key, fresh counters),
//!    reserving command counters in the state file *before* sending;
//! 4. install routes on every node involved (idempotent, so a restarted node is repaired).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use aex_crypto::symmetric::session_key;
use aex_crypto::{random_bytes, ModuleKeyAgreement, SecretKey};
use aex_proto::{
    Command, CommandChannel, ConnId, Direction, Endpoint, Interface, NodeRequest, NodeResponse,
    Role, WireKey,
};
use aex_tee::{appraise, Expected, Scheme};

use crate::app::{unexpected, Anchor, App};
use crate::build::{Builder, Built};
use crate::client::ClientError;
use crate::descriptor::{ConnectionSpec, Field, From};
use crate::error::{AttestError, Error, Result};
use crate::progress::Observer;
use crate::state::{ConnectionRecord, ModuleRecord, StoredKey};

const CHUNK: usize = 256 * 1024;

/// An entry point by this name, if a module has one, is called by `aex status` to show the
/// module's own state (e.g. whether an LED is on).
pub const STATUS_ENTRY: &str = "status";

/// What a deployment did.
#[derive(Debug, Default, Clone)]
pub struct DeployReport {
    /// Modules loaded and attested in this run.
    pub loaded: Vec<String>,
    /// Modules kept as they were.
    pub kept: Vec<String>,
    /// Modules removed because the descriptor no longer has them.
    pub removed: Vec<String>,
    /// Connections (re)keyed in this run.
    pub keyed: Vec<String>,
    /// Seconds spent building.
    pub build_secs: f64,
    /// Seconds spent loading, attesting and connecting.
    pub deploy_secs: f64,
}

/// The part an endpoint plays, resolved against the module's interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Event,
    Request,
}

/// Builds every module of the application.
pub fn build_all(
    app: &App,
    builder: &mut Builder,
    obs: &dyn Observer,
) -> Result<BTreeMap<String, Built>> {
    obs.phase("build", app.desc.modules.len() as u64);
    let mut built = BTreeMap::new();
    for m in &app.desc.modules {
        let b = builder.build(&m.crate_dir).map_err(|source| Error::Build {
            module: m.name.clone(),
            source,
        })?;
        obs.advance(&m.name);
        built.insert(m.name.clone(), b);
    }
    obs.finish();
    check_interfaces(app, &built)?;
    Ok(built)
}

/// Deploys the application from already built modules.
pub fn deploy(
    app: &mut App,
    built: &BTreeMap<String, Built>,
    obs: &dyn Observer,
) -> Result<DeployReport> {
    let started = Instant::now();
    let mut report = DeployReport::default();
    remove_stale_modules(app, &mut report)?;

    // Which module instances are still good?
    let mut running: HashMap<String, HashMap<String, [u8; 32]>> = HashMap::new();
    // Every module name a node holds, running or not: a dead instance keeps its name until it
    // is unloaded, so it must be unloaded before the module is loaded again.
    let mut loaded: HashMap<String, HashSet<String>> = HashMap::new();
    for node in app
        .desc
        .modules
        .iter()
        .map(|m| m.node.clone())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let status = match app.request(&node, "report status", NodeRequest::Status)? {
            NodeResponse::Status(s) => s,
            _ => return Err(unexpected(&node, "report status", app)),
        };
        loaded.insert(
            node.clone(),
            status.modules.iter().map(|m| m.name.clone()).collect(),
        );
        running.insert(
            node,
            status
                .modules
                .into_iter()
                .filter(|m| m.running)
                .map(|m| (m.name, m.measurement))
                .collect(),
        );
    }

    let modules: Vec<(String, String)> = app
        .desc
        .modules
        .iter()
        .map(|m| (m.name.clone(), m.node.clone()))
        .collect();
    let to_load: Vec<&(String, String)> =
        modules
            .iter()
            .filter(|(name, node)| {
                let b = &built[name];
                let good =
                    app.state.state.modules.get(name).is_some_and(|r| {
                        r.node == *node && r.measurement == b.measurement.to_hex()
                    }) && running
                        .get(node)
                        .and_then(|m| m.get(name))
                        .is_some_and(|meas| *meas == b.measurement.0);
                if good {
                    report.kept.push(name.clone());
                }
                !good
            })
            .collect();

    obs.phase("load and attest", to_load.len() as u64);
    let attested = || -> Result<()> {
        for (name, node) in to_load {
            if app.state.state.modules.remove(name).is_some() {
                app.state.save()?;
            }
            let exists = loaded.get(node).is_some_and(|m| m.contains(name));
            load(app, name, node, &built[name], exists)?;
            attest_unsaved(app, name, node, &built[name])?;
            obs.advance(name);
            report.loaded.push(name.clone());
        }
        Ok(())
    };
    let outcome = attested();
    // One save for every module attested above, also when a later one failed. (A key lost to
    // a crash before this save only costs a reload: the next deploy finds no record and
    // replaces that instance, so no counter is ever reused.)
    app.state.save()?;
    outcome?;
    obs.finish();

    connect(app, built, obs, &mut report)?;
    report.deploy_secs = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Removes modules the descriptor no longer has (from their nodes and from the state).
fn remove_stale_modules(app: &mut App, report: &mut DeployReport) -> Result<()> {
    let stale: Vec<(String, String)> = app
        .state
        .state
        .modules
        .iter()
        .filter(|(name, rec)| app.desc.module(name).is_none_or(|m| m.node != rec.node))
        .map(|(n, r)| (n.clone(), r.node.clone()))
        .collect();
    for (name, node) in stale {
        if app.desc.node(&node).is_some() {
            // The node may be gone for good; forgetting the module is still right.
            let _ = app.request(
                &node,
                &format!("unload module `{name}`"),
                NodeRequest::Unload {
                    module: name.clone(),
                },
            );
        }
        app.state.state.modules.remove(&name);
        report.removed.push(name);
    }
    let names: Vec<String> = app
        .desc
        .connections
        .iter()
        .map(|c| c.name.clone())
        .collect();
    app.state.state.connections.retain(|k, _| names.contains(k));
    app.state.save()?;
    Ok(())
}

fn load(app: &mut App, module: &str, node: &str, built: &Built, exists: bool) -> Result<()> {
    let action = format!("load module `{module}`");
    if exists {
        app.request(
            node,
            &action,
            NodeRequest::Unload {
                module: module.into(),
            },
        )?;
    }
    let client = app.client(node)?;
    let result = (|| {
        let mut ids = vec![client.send_request(NodeRequest::LoadBegin {
            module: module.into(),
            size: built.bytes.len() as u64,
        })?];
        for chunk in built.bytes.chunks(CHUNK) {
            ids.push(client.send_request(NodeRequest::LoadChunk {
                module: module.into(),
                data: chunk.to_vec(),
            })?);
        }
        ids.push(client.send_request(NodeRequest::LoadEnd {
            module: module.into(),
        })?);
        client.flush()?;
        let mut last = None;
        for id in ids {
            last = Some(client.response(id)?);
        }
        Ok(last)
    })();
    let last = result.map_err(|source| Error::Node {
        node: node.into(),
        action: action.clone(),
        source,
    })?;
    match last {
        Some(NodeResponse::Loaded { measurement }) if measurement == built.measurement.0 => Ok(()),
        Some(NodeResponse::Loaded { measurement }) => Err(Error::Attestation {
            module: module.into(),
            node: node.into(),
            source: AttestError::LoadMeasurement {
                expected: built.measurement.to_hex(),
                got: hex::encode(measurement),
            },
        }),
        _ => Err(unexpected(node, &action, app)),
    }
}

/// Attests a freshly loaded module and records its module key.
pub fn attest(app: &mut App, module: &str, node: &str, built: &Built) -> Result<()> {
    attest_unsaved(app, module, node, built)?;
    app.state.save()?;
    Ok(())
}

/// [`attest`], recording the module key in the state without saving it. Losing an unsaved
/// record in a crash only makes the next deployment load and attest that module again; the
/// key is saved before any command is sealed under it is sent.
fn attest_unsaved(app: &mut App, module: &str, node: &str, built: &Built) -> Result<()> {
    let fail = |source: AttestError| Error::Attestation {
        module: module.into(),
        node: node.into(),
        source,
    };
    let spec = app.node_spec(node)?.clone();
    let allow_insecure = app.desc.module(module).is_some_and(|m| m.allow_insecure);
    let anchor = app.trust_anchor(node)?;
    let challenge = random_bytes::<32>();
    let agreement = ModuleKeyAgreement::new();
    let deployer_pk = agreement.public_key();
    let answer = app
        .client(node)?
        .request(NodeRequest::Attest {
            module: module.into(),
            challenge,
            deployer_pk,
        })
        .map_err(|e| fail(AttestError::Node(e)))?;
    let NodeResponse::Evidence {
        public_key,
        confirm,
        tee,
        evidence,
    } = answer
    else {
        return Err(unexpected(node, "attest", app));
    };
    if tee != spec.tee.name() {
        return Err(fail(AttestError::WrongTee {
            expected: spec.tee.name().into(),
            got: tee,
        }));
    }
    let appraised = appraise(
        &evidence,
        &Expected {
            kind: spec.tee,
            anchor: anchor.as_trust_anchor(),
            measurement: built.measurement,
            challenge,
            module_pk: Some(public_key),
            allow_simulated: spec.simulation,
            allow_debug: spec.allow_debug,
            allow_insecure,
        },
    )
    .map_err(|e| fail(AttestError::Appraisal(e)))?;
    // Quote and native kinds agree a key; symmetric kinds derive the module key from the
    // vendor key and the deployer's own measurement, then a session key for this instance.
    let key = match (&anchor, spec.tee.scheme()) {
        (Anchor::Vendor(vendor), Scheme::Symmetric) => {
            let module_key = vendor.module_key(&appraised.measurement());
            session_key(&module_key, &challenge, &public_key)
        }
        _ => agreement
            .finish(
                &public_key,
                &challenge,
                &public_key,
                &deployer_pk,
                &appraised.measurement(),
            )
            .map_err(|_| fail(AttestError::WeakKey))?,
    };
    if !CommandChannel::new(&key).check_confirmation(&confirm) {
        return Err(fail(AttestError::KeyConfirmation));
    }
    app.state.state.modules.insert(
        module.into(),
        ModuleRecord {
            node: node.into(),
            tee: spec.tee.name().into(),
            measurement: built.measurement.to_hex(),
            instance: u64::from_be_bytes(random_bytes::<8>()),
            key: StoredKey(key),
            last_command: 0,
            attested_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            simulated: appraised.simulated(),
            insecure: appraised.insecure(),
            reports_status: built.interface.entries.iter().any(|e| e == STATUS_ENTRY),
        },
    );
    Ok(())
}

/// Keys connections whose endpoints changed and installs every route.
fn connect(
    app: &mut App,
    built: &BTreeMap<String, Built>,
    obs: &dyn Observer,
    report: &mut DeployReport,
) -> Result<()> {
    let specs = app.desc.connections.clone();
    obs.phase("connect", specs.len() as u64);
    let mut stale = vec![];
    let mut routes = vec![];
    for spec in &specs {
        let kind = kind_of(spec, built);
        let endpoints = endpoint_modules(spec);
        let instances: BTreeMap<String, u64> = endpoints
            .iter()
            .map(|m| (m.clone(), app.state.state.modules[m].instance))
            .collect();
        let current = app
            .state
            .state
            .connections
            .get(&spec.name)
            .is_some_and(|r| {
                r.instances == instances
                    && r.from == from_string(spec)
                    && r.to == spec.to.to_string()
                    && r.algorithm == spec.algorithm.name()
            });
        let id = match app.state.state.connections.get(&spec.name) {
            Some(r) => ConnId(r.id),
            None => {
                let id = app.state.state.next_conn_id;
                app.state.state.next_conn_id += 1;
                ConnId(id)
            }
        };
        if !current {
            stale.push((spec, id, kind, instances));
        }
        routes.extend(routes_of(app, spec, id, kind));
    }
    for batch in stale.chunks(BATCH / 2) {
        key_connections(app, batch)?;
        for (spec, ..) in batch {
            report.keyed.push(spec.name.clone());
        }
    }
    for batch in routes.chunks(BATCH) {
        pipeline(app, batch.to_vec())?;
    }
    for spec in &specs {
        obs.advance(&spec.name);
    }
    obs.finish();
    Ok(())
}

/// Requests sent to a node before its answers are read (bounds what is in flight).
const BATCH: usize = 512;

/// A connection to (re)key: its spec, id, kind and the endpoint instances it will reach.
type Stale<'a> = (&'a ConnectionSpec, ConnId, Kind, BTreeMap<String, u64>);

/// Keys a batch of connections with fresh keys.
///
/// Crash safety, as for a single connection: every new key is recorded with no instances and
/// every command counter reserved, then the state is saved once, *before* any key leaves; a
/// crash before the final save leaves records whose instances cannot match, so the next
/// deploy re-keys those connections with fresh keys instead of trusting half-delivered ones.
fn key_connections(app: &mut App, batch: &[Stale<'_>]) -> Result<()> {
    let mut sent = vec![];
    let mut requests = vec![];
    for (spec, id, kind, _) in batch {
        let key = SecretKey::random();
        let mut deliveries = vec![];
        if let From::Port(p) = &spec.from {
            let role = match kind {
                Kind::Event => Role::Output(p.port.clone()),
                Kind::Request => Role::Request(p.port.clone()),
            };
            deliveries.push((p.module.clone(), role));
        }
        let role = match kind {
            Kind::Event => Role::Input(spec.to.port.clone()),
            Kind::Request => Role::Handler(spec.to.port.clone()),
        };
        deliveries.push((spec.to.module.clone(), role));
        app.state.state.connections.insert(
            spec.name.clone(),
            ConnectionRecord {
                id: id.0,
                key: StoredKey(SecretKey::from_bytes(*key.expose_secret())),
                algorithm: spec.algorithm.name().into(),
                from: from_string(spec),
                to: spec.to.to_string(),
                instances: BTreeMap::new(),
                last_sent: 0,
                last_received: 0,
            },
        );
        let action = format!("install the key of connection `{}`", spec.name);
        for (module, role) in deliveries {
            let cmd = Command::SetKey {
                conn: *id,
                role,
                algorithm: spec.algorithm.into(),
                key: WireKey::from_secret(&key),
            };
            let sealed = app.seal_command(&module, &cmd)?;
            requests.push((
                sealed.node.clone(),
                action.clone(),
                NodeRequest::Command {
                    module,
                    sealed: sealed.sealed.clone(),
                },
            ));
            sent.push((sealed, action.clone()));
        }
    }
    // Keys recorded and counters reserved before anything is sent.
    app.state.save()?;
    let answers = pipeline(app, requests)?;
    for ((sealed, action), answer) in sent.iter().zip(answers) {
        app.command_result(sealed, action, answer)?;
    }
    // Only now are the connections complete.
    for (spec, _, _, instances) in batch {
        if let Some(rec) = app.state.state.connections.get_mut(&spec.name) {
            rec.instances = instances.clone();
        }
    }
    app.state.save()?;
    Ok(())
}

/// Sends every request to its node without waiting for answers in between (all nodes at
/// once), then collects the answers; returns them in the order of `requests`.
fn pipeline(
    app: &mut App,
    requests: Vec<(String, String, NodeRequest)>,
) -> Result<Vec<NodeResponse>> {
    let mut ids: Vec<(String, String, u64)> = Vec::with_capacity(requests.len());
    let mut nodes: Vec<String> = vec![];
    for (node, action, body) in requests {
        let id = app
            .client(&node)?
            .send_request(body)
            .map_err(|source| node_error(app, &node, &action, source))?;
        if !nodes.contains(&node) {
            nodes.push(node.clone());
        }
        ids.push((node, action, id));
    }
    for node in &nodes {
        app.client(node)?
            .flush()
            .map_err(|source| node_error(app, node, "send requests", source))?;
    }
    let mut answers = Vec::with_capacity(ids.len());
    for (node, action, id) in ids {
        let answer = app
            .client(&node)?
            .response(id)
            .map_err(|source| node_error(app, &node, &action, source))?;
        answers.push(answer);
    }
    Ok(answers)
}

/// The deployer error for a failed request; a broken session is dropped.
fn node_error(app: &mut App, node: &str, action: &str, source: ClientError) -> Error {
    if matches!(source, ClientError::Io { .. } | ClientError::Closed { .. }) {
        app.disconnect(node);
    }
    Error::Node {
        node: node.into(),
        action: action.into(),
        source,
    }
}

/// The routes a connection needs, as `(node, request)` with the action naming it.
fn routes_of(
    app: &App,
    spec: &ConnectionSpec,
    id: ConnId,
    kind: Kind,
) -> Vec<(String, String, NodeRequest)> {
    let dst_module = spec.to.module.clone();
    let dst_node = app
        .desc
        .module(&dst_module)
        .map(|m| m.node.clone())
        .unwrap_or_default();
    let src = match &spec.from {
        From::Deployer => None,
        From::Port(p) => Some((
            p.module.clone(),
            app.desc
                .module(&p.module)
                .map(|m| m.node.clone())
                .unwrap_or_default(),
        )),
    };
    let addr = |app: &App, node: &str| {
        app.desc
            .node(node)
            .map(|n| n.address.to_string())
            .unwrap_or_default()
    };
    let mut routes: Vec<(String, Direction, Endpoint)> = vec![];
    routes.push((
        dst_node.clone(),
        Direction::Forward,
        Endpoint::Module(dst_module.clone()),
    ));
    match &src {
        None => {
            if kind == Kind::Request {
                routes.push((dst_node.clone(), Direction::Backward, Endpoint::Deployer));
            }
        }
        Some((src_module, src_node)) => {
            if src_node != &dst_node {
                routes.push((
                    src_node.clone(),
                    Direction::Forward,
                    Endpoint::Node(addr(app, &dst_node)),
                ));
            }
            if kind == Kind::Request {
                if src_node == &dst_node {
                    routes.push((
                        dst_node.clone(),
                        Direction::Backward,
                        Endpoint::Module(src_module.clone()),
                    ));
                } else {
                    routes.push((
                        dst_node.clone(),
                        Direction::Backward,
                        Endpoint::Node(addr(app, src_node)),
                    ));
                    routes.push((
                        src_node.clone(),
                        Direction::Backward,
                        Endpoint::Module(src_module.clone()),
                    ));
                }
            }
        }
    }
    let action = format!("route connection `{}`", spec.name);
    routes
        .into_iter()
        .map(|(node, dir, to)| {
            (
                node,
                action.clone(),
                NodeRequest::Route { conn: id, dir, to },
            )
        })
        .collect()
}

fn kind_of(spec: &ConnectionSpec, built: &BTreeMap<String, Built>) -> Kind {
    let to = &built[&spec.to.module].interface;
    if to.handlers.contains(&spec.to.port) {
        Kind::Request
    } else {
        Kind::Event
    }
}

fn endpoint_modules(spec: &ConnectionSpec) -> Vec<String> {
    let mut v = vec![];
    if let From::Port(p) = &spec.from {
        v.push(p.module.clone());
    }
    if !v.contains(&spec.to.module) {
        v.push(spec.to.module.clone());
    }
    v
}

fn from_string(spec: &ConnectionSpec) -> String {
    match &spec.from {
        From::Deployer => "deployer".into(),
        From::Port(p) => p.to_string(),
    }
}

/// Checks every connection's ports against the interfaces the built binaries declare.
fn check_interfaces(app: &App, built: &BTreeMap<String, Built>) -> Result<()> {
    for (i, c) in app.desc.connections.iter().enumerate() {
        let from_module = match &c.from {
            From::Port(p) => Some(&p.module),
            From::Deployer => None,
        };
        for endpoint in from_module.into_iter().chain([&c.to.module]) {
            let node = app
                .desc
                .module(endpoint)
                .and_then(|m| app.desc.node(&m.node));
            if let Some(node) = node.filter(|n| !n.tee.offers(c.algorithm)) {
                let offered: Vec<String> = node
                    .tee
                    .algorithms()
                    .iter()
                    .map(|a| a.name().to_owned())
                    .collect();
                return Err(app
                    .desc
                    .error_at(
                        Field::Connection(i, "algorithm"),
                        format!(
                            "connection `{}` uses {}, but module `{endpoint}` runs on node `{}` ({}), which offers only {}",
                            c.name,
                            c.algorithm.name(),
                            node.name,
                            node.tee.name(),
                            offered.join(", ")
                        ),
                        &offered,
                    )
                    .into());
            }
        }
        let to_if: &Interface = &built[&c.to.module].interface;
        let to_kind = if to_if.inputs.contains(&c.to.port) {
            Kind::Event
        } else if to_if.handlers.contains(&c.to.port) {
            Kind::Request
        } else {
            let valid: Vec<String> = to_if
                .inputs
                .iter()
                .chain(&to_if.handlers)
                .cloned()
                .collect();
            return Err(app
                .desc
                .error_at(
                    Field::Connection(i, "to"),
                    format!(
                        "module `{}` has no input or handler `{}`",
                        c.to.module, c.to.port
                    ),
                    &valid,
                )
                .into());
        };
        if let From::Port(p) = &c.from {
            let from_if = &built[&p.module].interface;
            let from_kind = if from_if.outputs.contains(&p.port) {
                Kind::Event
            } else if from_if.requests.contains(&p.port) {
                Kind::Request
            } else {
                let valid: Vec<String> = from_if
                    .outputs
                    .iter()
                    .chain(&from_if.requests)
                    .cloned()
                    .collect();
                return Err(app
                    .desc
                    .error_at(
                        Field::Connection(i, "from"),
                        format!(
                            "module `{}` has no output or request `{}`",
                            p.module, p.port
                        ),
                        &valid,
                    )
                    .into());
            };
            if from_kind != to_kind {
                let msg = match from_kind {
                    Kind::Event => format!(
                        "`{p}` is an output, so it must connect to an input, but `{}` is a handler",
                        c.to
                    ),
                    Kind::Request => format!(
                        "`{p}` is a request, so it must connect to a handler, but `{}` is an input",
                        c.to
                    ),
                };
                return Err(app
                    .desc
                    .error_at(Field::Connection(i, "to"), msg, &[])
                    .into());
            }
        }
    }
    Ok(())
}
