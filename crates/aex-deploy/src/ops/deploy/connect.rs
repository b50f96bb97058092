//! Keying connections (fresh keys delivered under module keys, counters reserved first) and
//! installing their routes on every node involved.

use std::collections::BTreeMap;

use aex_crypto::SecretKey;
use aex_proto::{
    Command, ConnId, Direction, Endpoint, NodeRequest, NodeResponse, Origin, Role, WireKey,
};

use super::{DeployReport, Kind};
use crate::app::App;
use crate::build::Built;
use crate::client::ClientError;
use crate::descriptor::{ConnectionSpec, From};
use crate::error::{Error, Result};
use crate::progress::Observer;
use crate::state::{ConnectionRecord, StoredKey};

/// Keys connections whose endpoints changed and installs every route.
pub(super) fn connect(
    app: &mut App,
    built: &BTreeMap<String, Built>,
    obs: &dyn Observer,
    report: &mut DeployReport,
) -> Result<()> {
    let specs = app.descriptor().connections.clone();
    obs.phase("connect", specs.len() as u64);
    let mut stale = vec![];
    let mut routes = vec![];
    for spec in &specs {
        let kind = kind_of(spec, built);
        let endpoints = endpoint_modules(spec);
        let instances: BTreeMap<String, u64> = endpoints
            .iter()
            .map(|m| (m.clone(), app.modules()[m].instance))
            .collect();
        let current = app.connection(&spec.name).is_some_and(|r| {
            r.instances == instances
                && r.from == from_string(spec)
                && r.to == spec.to.to_string()
                && r.algorithm == spec.algorithm.name()
        });
        let id = match app.connection(&spec.name) {
            Some(r) => ConnId(r.id),
            None => ConnId(app.new_connection_id()),
        };
        if !current {
            stale.push((spec, id, kind, instances));
        }
        routes.extend(routes_of(app, spec, id, kind)?);
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
    crate::crash::point("routed");
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
        app.record_connection(
            &spec.name,
            ConnectionRecord {
                id: id.0,
                key: StoredKey::new(SecretKey::from_bytes(*key.expose_secret())),
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
                    module: sealed.slot.clone(),
                    sealed: sealed.sealed.clone(),
                },
            ));
            sent.push((sealed, action.clone()));
        }
    }
    // Keys recorded and counters reserved before anything is sent.
    app.save()?;
    crate::crash::point("keys-reserved");
    let answers = pipeline(app, requests)?;
    for ((sealed, action), answer) in sent.iter().zip(answers) {
        app.command_result(sealed, action, answer)?;
    }
    crate::crash::point("keys-sent");
    // Only now are the connections complete.
    for (spec, _, _, instances) in batch {
        if let Some(rec) = app.connection_mut(&spec.name) {
            rec.instances = instances.clone();
        }
    }
    app.save()?;
    crate::crash::point("keys-saved");
    Ok(())
}

/// Sends every request to its node without waiting for answers in between (all nodes at
/// once), then collects the answers; returns them in the order of `requests`.
pub(super) fn pipeline(
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

/// The routes a connection needs, as `(node, request)` with the action naming it. A route to
/// another node names that node's pinned identity (the peer link proves it), and the route
/// on the receiving node names the sending node's identity as the events' origin (only its
/// link may forward them).
fn routes_of(
    app: &App,
    spec: &ConnectionSpec,
    id: ConnId,
    kind: Kind,
) -> Result<Vec<(String, String, NodeRequest)>> {
    // Where each endpoint's attested instance runs, and its name there (every endpoint was
    // attested before connections are keyed).
    let placed = |module: &str| -> (String, String) {
        match app.module(module) {
            Some(r) => (r.slot(module), r.node.clone()),
            None => (module.to_string(), String::new()),
        }
    };
    let (dst_module, dst_node) = placed(&spec.to.module);
    let src = match &spec.from {
        From::Deployer => None,
        From::Port(p) => Some(placed(&p.module)),
    };
    let node = |name: &str| -> Result<Endpoint> {
        Ok(Endpoint::Node {
            address: app
                .descriptor()
                .node(name)
                .map(|n| n.address.to_string())
                .unwrap_or_default(),
            identity: app.node_identity(name)?.key,
        })
    };
    let peer = |name: &str| -> Result<Origin> { Ok(Origin::Peer(app.node_identity(name)?.key)) };
    let mut routes: Vec<(String, Direction, Endpoint, Origin)> = vec![];
    match &src {
        None => {
            routes.push((
                dst_node.clone(),
                Direction::Forward,
                Endpoint::Module(dst_module.clone()),
                Origin::Deployer,
            ));
            if kind == Kind::Request {
                routes.push((
                    dst_node.clone(),
                    Direction::Backward,
                    Endpoint::Deployer,
                    Origin::Local,
                ));
            }
        }
        Some((src_module, src_node)) if src_node == &dst_node => {
            routes.push((
                dst_node.clone(),
                Direction::Forward,
                Endpoint::Module(dst_module.clone()),
                Origin::Local,
            ));
            if kind == Kind::Request {
                routes.push((
                    dst_node.clone(),
                    Direction::Backward,
                    Endpoint::Module(src_module.clone()),
                    Origin::Local,
                ));
            }
        }
        Some((src_module, src_node)) => {
            routes.push((
                dst_node.clone(),
                Direction::Forward,
                Endpoint::Module(dst_module.clone()),
                peer(src_node)?,
            ));
            routes.push((
                src_node.clone(),
                Direction::Forward,
                node(&dst_node)?,
                Origin::Local,
            ));
            if kind == Kind::Request {
                routes.push((
                    dst_node.clone(),
                    Direction::Backward,
                    node(src_node)?,
                    Origin::Local,
                ));
                routes.push((
                    src_node.clone(),
                    Direction::Backward,
                    Endpoint::Module(src_module.clone()),
                    peer(&dst_node)?,
                ));
            }
        }
    }
    let action = format!("route connection `{}`", spec.name);
    Ok(routes
        .into_iter()
        .map(|(node, dir, to, from)| {
            (
                node,
                action.clone(),
                NodeRequest::Route {
                    conn: id,
                    dir,
                    to,
                    from,
                },
            )
        })
        .collect())
}

fn kind_of(spec: &ConnectionSpec, built: &BTreeMap<String, Built>) -> Kind {
    let to = &built[&spec.to.module].interface;
    if to.handlers.contains(&spec.to.port) {
        Kind::Request
    } else {
        Kind::Event
    }
}

pub(super) fn endpoint_modules(spec: &ConnectionSpec) -> Vec<String> {
    let mut v = vec![];
    if let From::Port(p) = &spec.from {
        v.push(p.module.clone());
    }
    if !v.contains(&spec.to.module) {
        v.push(spec.to.module.clone());
    }
    v
}

pub(super) fn from_string(spec: &ConnectionSpec) -> String {
    match &spec.from {
        From::Deployer => "deployer".into(),
        From::Port(p) => p.to_string(),
    }
}
