//! `aex status`: the application as its nodes report it now, joined with what the deployer
//! attested.
//!
//! Counters come from the modules' own runtimes, relayed by the nodes. A lying node can alter
//! them (it relays them unauthenticated); it cannot make the deployer believe a module is
//! attested, since "attested" is the deployer's own record matched against the running
//! instance.

use std::collections::HashMap;

use aex_proto::{ConnStats, ModuleStatus, NodeRequest, NodeResponse, NodeStatus};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::error::{error_chain, Result};
use crate::ops::call::call;
use crate::ops::deploy::STATUS_ENTRY;

/// The whole application's status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppStatus {
    /// Application name.
    pub application: String,
    /// Nodes in the descriptor.
    pub nodes: Vec<NodeView>,
    /// Modules in the descriptor.
    pub modules: Vec<ModuleView>,
    /// Connections in the descriptor.
    pub connections: Vec<ConnectionView>,
}

/// One node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeView {
    /// Name.
    pub name: String,
    /// Address.
    pub address: String,
    /// TEE kind named in the descriptor.
    pub tee: String,
    /// Whether the descriptor accepts simulated evidence from it.
    pub simulation: bool,
    /// Whether the node answered.
    pub reachable: bool,
    /// Why not, if it did not.
    pub error: Option<String>,
    /// Whether `aex up` started it on this machine.
    pub local: bool,
    /// Modules loaded on it (of any application).
    pub modules: usize,
    /// Events it could not route.
    pub dropped: u64,
    /// Deployer sessions and requests it refused (unadmitted keys, bad proofs or signatures,
    /// replayed request ids): someone other than this deployer tried to manage it.
    #[serde(default)]
    pub refused: u64,
}

/// One module.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleView {
    /// Name.
    pub name: String,
    /// Node.
    pub node: String,
    /// TEE kind.
    pub tee: String,
    /// Whether the node it runs on answered. When it did not, nothing is known of the
    /// instance: `attested` and `running` are then false for want of an answer, not because
    /// the instance is gone (`aex status` shows them as unknown).
    #[serde(default = "yes")]
    pub reachable: bool,
    /// Attested by this deployer and still the running instance.
    pub attested: bool,
    /// Whether its process is alive.
    pub running: bool,
    /// Measurement (hex) the node reports, or the attested one.
    pub measurement: String,
    /// Unix time of attestation.
    pub attested_at: Option<u64>,
    /// Whether the evidence was simulated.
    pub simulated: bool,
    /// Whether the module runs with no TEE at all (`native`, allowed by the descriptor).
    pub insecure: bool,
    /// What the module's own `status` entry point answered (authenticated), if it has one.
    pub state: Option<serde_json::Value>,
    /// OS process id.
    pub pid: Option<u32>,
    /// Events for connections the module has no key for.
    pub rejected_unknown: u64,
    /// Commands refused (forged or replayed).
    pub rejected_commands: u64,
    /// Whether the module runs its code: after attestation it runs none (no tick, deadline or
    /// entry point) until its first authenticated `Restore`, `SetKey`, `Call` or `Start`.
    #[serde(default)]
    pub armed: bool,
    /// Node ticks the module refused (not armed, not a periodic entry, disabled or retired).
    #[serde(default)]
    pub rejected_ticks: u64,
    /// Authentic commands a retired instance refused (`SetKey`, `Call`, `Start`, `Restore`).
    #[serde(default)]
    pub refused_commands: u64,
    /// Handler replies dropped because the request's connection was re-keyed or revoked
    /// while the handler ran.
    #[serde(default)]
    pub dropped_replies: u64,
    /// Device writes held for a commit that the TEE layer refused when they were sent
    /// (persistent modules; module code saw them succeed).
    #[serde(default)]
    pub refused_writes: u64,
    /// Whether the instance says it retired (its state moved to a new instance).
    #[serde(default)]
    pub retired: bool,
    /// A persistent module's sealed state as its node reports it: restarts, the newest
    /// version stored, and how the last restart went ("rollback detected", ...).
    #[serde(default)]
    pub persistence: Option<aex_proto::PersistenceStatus>,
    /// How its process ended, if it did (`exit status: 101` after a panic), as its node says.
    #[serde(default)]
    pub exit: Option<String>,
    /// Once its process ended: the last lines of its log, as its node read them.
    #[serde(default)]
    pub log_tail: Vec<String>,
    /// Its ports whose code failed on an authentic event, a tick or a deadline: how often,
    /// and the last reason (never a payload or a module's message: the node relays it).
    #[serde(default)]
    pub failures: Vec<aex_proto::PortFailures>,
    /// Deadline alarms that fired, per input (from the runtime's counters: relayed by the
    /// node, which may alter them).
    #[serde(default)]
    pub alarms: Vec<aex_proto::DeadlineAlarms>,
}

/// One connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionView {
    /// Name.
    pub name: String,
    /// Id on the wire.
    pub id: Option<u32>,
    /// `module.port` or `deployer`.
    pub from: String,
    /// `module.port`.
    pub to: String,
    /// AEAD algorithm.
    pub algorithm: String,
    /// Whether its key was delivered to every endpoint's current, attested instance.
    pub keyed: bool,
    /// Events (or requests) its source sent. Replies are in `replies`.
    pub sent: u64,
    /// Events (or requests) its destination accepted and handled.
    pub received: u64,
    /// Events (or requests) its destination accepted whose input (or handler) failed: the
    /// payload did not decode, the code returned an error or panicked (the module's
    /// `failures` say why).
    #[serde(default)]
    pub failed: u64,
    /// Replies its destination sent to requests (request connections).
    #[serde(default)]
    pub replies: u64,
    /// Events refused (both directions).
    pub rejected: u64,
    /// Counter gaps (dropped events) seen by receivers.
    pub gaps: u64,
    /// Events a node reported dropping instead of delivering (their receiver was dead or
    /// unreachable past its node's timeout, or had no route), as their senders counted them
    /// from the credit the node returned ([`aex_proto::flow`]): lost, never silently.
    #[serde(default)]
    pub dropped: u64,
    /// Emits and requests of the modules that found the connection's window full (their
    /// receiver took events in slower than they came): waited past their bound, or refused
    /// by `try_emit`. Back-pressure, not loss.
    #[serde(default)]
    pub blocked: u64,
}

/// Queries every node and assembles the status.
pub fn status(app: &mut App) -> Result<AppStatus> {
    let mut node_status: HashMap<String, NodeStatus> = HashMap::new();
    let mut nodes = vec![];
    for spec in app.descriptor().nodes.clone() {
        let answer = app.request(&spec.name, "report status", NodeRequest::Status);
        let (reachable, error, st) = match answer {
            Ok(NodeResponse::Status(s)) => (true, None, Some(s)),
            Ok(_) => (false, Some("unexpected answer".to_string()), None),
            Err(e) => (false, Some(error_chain(&e)), None),
        };
        nodes.push(NodeView {
            name: spec.name.clone(),
            address: spec.address.to_string(),
            tee: spec.tee.name().into(),
            simulation: spec.simulation,
            reachable,
            error,
            local: app.local_nodes().contains_key(&spec.name),
            modules: st.as_ref().map_or(0, |s| s.modules.len()),
            dropped: st.as_ref().map_or(0, |s| s.dropped),
            refused: st.as_ref().map_or(0, |s| s.refused),
        });
        if let Some(s) = st {
            node_status.insert(spec.name.clone(), s);
        }
    }

    let find = |node: &str, module: &str| -> Option<&ModuleStatus> {
        node_status
            .get(node)?
            .modules
            .iter()
            .find(|m| m.name == module)
    };
    // Each module's counters of each connection, with the module: which end counted what.
    let mut conn_stats: HashMap<u32, Vec<(String, ConnStats)>> = HashMap::new();
    let mut modules = vec![];
    for spec in &app.descriptor().modules {
        let rec = app.module(&spec.name);
        // Where the attested instance runs (after `aex update --node`, maybe not where the
        // descriptor says), and its name there.
        let (node, slot) = match rec {
            Some(r) => (r.node.clone(), r.slot(&spec.name)),
            None => (spec.node.clone(), spec.name.clone()),
        };
        let live = find(&node, &slot);
        let stats = live.and_then(|l| l.stats.as_ref());
        let live_meas = live.map(|m| hex::encode(m.measurement));
        // A persistent module whose restart refused its sealed state runs as a fresh,
        // unkeyed process: not the instance this deployer attested.
        let refused = live
            .and_then(|l| l.persistence.as_ref())
            .is_some_and(|p| matches!(p.resume, Some(aex_proto::ResumeOutcome::Refused(_))));
        let attested = match (rec, live) {
            (Some(r), Some(l)) => {
                l.running && Some(&r.measurement) == live_meas.as_ref() && !refused
            }
            _ => false,
        };
        if let Some(stats) = stats {
            for c in &stats.conns {
                conn_stats
                    .entry(c.conn.0)
                    .or_default()
                    .push((spec.name.clone(), c.clone()));
            }
        }
        modules.push(ModuleView {
            reachable: node_status.contains_key(&node),
            name: spec.name.clone(),
            tee: app
                .descriptor()
                .node(&node)
                .map(|n| n.tee.name().to_string())
                .unwrap_or_default(),
            node,
            attested,
            running: live.is_some_and(|l| l.running),
            measurement: live_meas
                .or_else(|| rec.map(|r| r.measurement.clone()))
                .unwrap_or_default(),
            attested_at: rec.map(|r| r.attested_at),
            simulated: rec.is_some_and(|r| r.simulated),
            insecure: rec.is_some_and(|r| r.insecure),
            state: None,
            pid: live.and_then(|l| l.pid),
            rejected_unknown: stats.map_or(0, |s| s.rejected_unknown),
            rejected_commands: stats.map_or(0, |s| s.rejected_commands),
            armed: stats.is_some_and(|s| s.armed),
            rejected_ticks: stats.map_or(0, |s| s.rejected_ticks),
            refused_commands: stats.map_or(0, |s| s.refused_commands),
            dropped_replies: stats.map_or(0, |s| s.dropped_replies),
            refused_writes: stats.map_or(0, |s| s.refused_writes),
            retired: stats.is_some_and(|s| s.retired),
            persistence: live.and_then(|l| l.persistence.clone()),
            exit: live.and_then(|l| l.exit.clone()),
            log_tail: live.map(|l| l.log_tail.clone()).unwrap_or_default(),
            failures: stats.map(|s| s.failures.clone()).unwrap_or_default(),
            alarms: stats.map(|s| s.alarms.clone()).unwrap_or_default(),
        });
    }

    // Modules that report their own state are asked for it, under their module keys.
    for view in modules.iter_mut().filter(|v| v.attested) {
        let asks = app.module(&view.name).is_some_and(|r| r.reports_status);
        if !asks {
            continue;
        }
        if let Ok(bytes) = call(app, &view.name, STATUS_ENTRY, b"") {
            view.state = Some(serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
            }));
        }
    }

    let mut connections = vec![];
    for spec in &app.descriptor().connections {
        let rec = app.connection(&spec.name);
        let mut view = ConnectionView {
            name: spec.name.clone(),
            id: rec.map(|r| r.id),
            from: match &spec.from {
                crate::descriptor::From::Deployer => "deployer".into(),
                crate::descriptor::From::Port(p) => p.to_string(),
            },
            to: spec.to.to_string(),
            algorithm: spec.algorithm.name().into(),
            // Keyed means the key reached the instances that run now: an endpoint that was
            // re-loaded (or died) since holds no key for this connection.
            keyed: rec.is_some_and(|r| {
                !r.instances.is_empty()
                    && r.instances.iter().all(|(module, instance)| {
                        app.module(module).is_some_and(|m| m.instance == *instance)
                            && modules.iter().any(|v| v.name == *module && v.attested)
                    })
            }),
            sent: 0,
            received: 0,
            failed: 0,
            replies: 0,
            rejected: 0,
            gaps: 0,
            dropped: 0,
            blocked: 0,
        };
        if let Some(r) = rec {
            // The deployer is an endpoint of direct connections: count its own side.
            if matches!(spec.from, crate::descriptor::From::Deployer) {
                view.sent += r.last_sent;
            }
            let destination = &spec.to.module;
            for (module, c) in conn_stats.get(&r.id).into_iter().flatten() {
                // The destination sends only replies, and the source receives only replies:
                // a request and its reply are one event sent and one reply, not two of each.
                if module == destination {
                    view.received += c.received;
                    view.failed += c.failed;
                    view.replies += c.sent;
                } else {
                    view.sent += c.sent;
                }
                view.rejected += c.rejected;
                view.gaps += c.gaps;
                view.dropped += c.dropped;
                view.blocked += c.blocked;
            }
        }
        connections.push(view);
    }
    Ok(AppStatus {
        application: app.descriptor().application.clone(),
        nodes,
        modules,
        connections,
    })
}

fn yes() -> bool {
    true
}
