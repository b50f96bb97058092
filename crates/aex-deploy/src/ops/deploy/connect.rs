//! Keying connections (fresh keys delivered under module keys, counters reserved first) and
//! installing their routes on every node involved.

use std::collections::BTreeMap;

use aex_crypto::SecretKey;
use aex_proto::{Command, ConnId, Direction, Endpoint, NodeRequest, Origin, WireKey};

use super::endpoints::{from_string, Kind, Link};
use super::pipeline::pipeline;
use super::report::DeployReport;
use crate::app::App;
use crate::descriptor::From;
use crate::error::Result;
use crate::progress::Observer;
use crate::state::{ConnectionRecord, StoredKey};

/// Keys the connections of `links` whose ends changed and installs every route.
pub(super) fn connect(
    app: &mut App,
    links: &[Link],
    obs: &dyn Observer,
    report: &mut DeployReport,
) -> Result<()> {
    obs.phase("connect", links.len() as u64);
    let mut stale = vec![];
    let mut routes = vec![];
    for link in links {
        let spec = &link.spec;
        let instances: BTreeMap<String, u64> = link
            .modules()
            .iter()
            // Every endpoint module has a record here: `apply` attests (and records) each
            // planned module before it connects anything, and a module it could not attest
            // ends the deployment before this step.
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
            stale.push((link, id, instances));
        }
        routes.extend(routes_of(app, link, id)?);
    }
    for batch in stale.chunks(BATCH / 2) {
        key_connections(app, batch)?;
        for (link, ..) in batch {
            report.keyed.push(link.name().to_string());
        }
    }
    for batch in routes.chunks(BATCH) {
        pipeline(app, batch.to_vec())?;
    }
    crate::crash::point("routed");
    for link in links {
        obs.advance(link.name());
    }
    obs.finish();
    Ok(())
}

/// Requests sent to a node before its answers are read (bounds what is in flight).
const BATCH: usize = 512;

/// A connection to (re)key: the connection, its id and the end instances it will reach.
type Stale<'a> = (&'a Link, ConnId, BTreeMap<String, u64>);

/// Keys a batch of connections with fresh keys.
///
/// Crash safety, as for a single connection: every new key is recorded with no instances and
/// every command counter reserved, then the state is saved once, *before* any key leaves; a
/// crash before the final save leaves records whose instances cannot match, so the next
/// deploy re-keys those connections with fresh keys instead of trusting half-delivered ones.
fn key_connections(app: &mut App, batch: &[Stale<'_>]) -> Result<()> {
    let mut sent = vec![];
    let mut requests = vec![];
    for (link, id, _) in batch {
        let spec = &link.spec;
        let key = SecretKey::random();
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
        // The sender first, then the receiver.
        for end in link.from.iter().chain([&link.to]) {
            let cmd = Command::SetKey {
                conn: *id,
                role: end.role.clone(),
                algorithm: spec.algorithm.into(),
                key: WireKey::from_secret(&key),
            };
            let sealed = app.seal_command(&end.module, &cmd)?;
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
    for (link, _, instances) in batch {
        if let Some(rec) = app.connection_mut(link.name()) {
            rec.instances = instances.clone();
        }
    }
    app.save()?;
    crate::crash::point("keys-saved");
    Ok(())
}

/// The routes a connection needs, as `(node, request)` with the action naming it. A route to
/// another node names that node's pinned identity (the peer link proves it), and the route
/// on the receiving node names the sending node's identity as the events' origin (only its
/// link may forward them).
fn routes_of(app: &App, link: &Link, id: ConnId) -> Result<Vec<(String, String, NodeRequest)>> {
    let (spec, kind) = (&link.spec, link.kind());
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
