//! `aex reset`: remove this application's modules from its nodes, and forget their keys.
//!
//! Every attested module is first disabled with a sealed `Disable` (it drops every key it
//! holds), then unloaded: a node that ignores the `Unload` keeps a module that accepts
//! nothing. Only the modules this application's descriptor and state name are touched; other
//! applications' modules on the same nodes are not. Nodes that are unreachable are reported,
//! and their modules are forgotten anyway: their keys die with the deployer's record, so the
//! modules can no longer be commanded or keyed.

use std::collections::BTreeSet;

use aex_proto::{NodeErrorKind, NodeRequest};

use crate::app::App;
use crate::client::ClientError;
use crate::error::{Error, Result};
use crate::progress::Observer;

/// What a reset did.
#[derive(Debug, Default, Clone)]
pub struct ResetReport {
    /// Modules unloaded from their nodes.
    pub unloaded: Vec<String>,
    /// Modules forgotten without unloading (node unreachable), with the reason.
    pub unreachable: Vec<(String, String)>,
    /// Modules that could not be disabled before they were unloaded, and why.
    pub not_disabled: Vec<String>,
}

/// Unloads every module of the application and clears its keys and connections.
pub fn reset(app: &mut App, obs: &dyn Observer) -> Result<ResetReport> {
    super::governed::refuse_if_governed(app.descriptor(), "aex reset")?;
    // (node, instance name on it): the descriptor's names, every recorded instance, and
    // instances an interrupted update left.
    let mut targets: BTreeSet<(String, String)> = app
        .descriptor()
        .modules
        .iter()
        .map(|m| (m.node.clone(), m.name.clone()))
        .collect();
    targets.extend(
        app.modules()
            .iter()
            .map(|(n, r)| (r.node.clone(), r.slot(n))),
    );
    targets.extend(
        app.retired()
            .values()
            .flatten()
            .map(|i| (i.node.clone(), i.slot.clone())),
    );
    obs.phase("reset", targets.len() as u64);
    let mut report = ResetReport::default();
    let attested: Vec<(String, String)> = app
        .modules()
        .iter()
        .map(|(n, r)| (n.clone(), r.node.clone()))
        .collect();
    for (module, node) in attested {
        if app.descriptor().node(&node).is_some() {
            if let Some(why) = crate::ops::deploy::disable(app, &module) {
                report.not_disabled.push(format!(
                    "module `{module}` could not be disabled before it was unloaded: {why}"
                ));
            }
            crate::crash::point("disabled");
        }
    }
    for (node, module) in targets {
        if app.descriptor().node(&node).is_none() {
            report.unreachable.push((
                module.clone(),
                format!("node `{node}` is not in the descriptor"),
            ));
        } else {
            let answer = app.request(
                &node,
                &format!("unload module `{module}`"),
                NodeRequest::Unload {
                    module: module.clone(),
                },
            );
            match answer {
                Ok(_) => report.unloaded.push(module.clone()),
                Err(Error::Node {
                    source: ClientError::Node(e),
                    ..
                }) if e.kind == NodeErrorKind::UnknownModule => {}
                Err(e) => report
                    .unreachable
                    .push((module.clone(), crate::error::error_chain(&e))),
            }
        }
        obs.advance(&module);
    }
    app.forget_deployment();
    app.save()?;
    obs.finish();
    Ok(report)
}
