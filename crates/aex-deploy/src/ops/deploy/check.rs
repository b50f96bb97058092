//! Checking the descriptor's connections against the interfaces the built binaries declare,
//! and each connection's algorithm against its endpoints' TEE backends.

use std::collections::BTreeMap;

use aex_proto::Interface;

use super::Kind;
use crate::app::App;
use crate::build::Built;
use crate::descriptor::{Field, From};
use crate::error::Result;

/// Checks every connection's ports against the interfaces the built binaries declare.
pub(super) fn check_interfaces(app: &App, built: &BTreeMap<String, Built>) -> Result<()> {
    for (i, c) in app.descriptor().connections.iter().enumerate() {
        let from_module = match &c.from {
            From::Port(p) => Some(&p.module),
            From::Deployer => None,
        };
        for endpoint in from_module.into_iter().chain([&c.to.module]) {
            let node = app
                .descriptor()
                .module(endpoint)
                .and_then(|m| app.descriptor().node(&m.node));
            if let Some(node) = node.filter(|n| !n.tee.offers(c.algorithm)) {
                let offered: Vec<String> = node
                    .tee
                    .algorithms()
                    .iter()
                    .map(|a| a.name().to_owned())
                    .collect();
                return Err(app
                    .descriptor()
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
                .descriptor()
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
                    .descriptor()
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
                    .descriptor()
                    .error_at(Field::Connection(i, "to"), msg, &[])
                    .into());
            }
        }
    }
    Ok(())
}

/// Checks that every `[[periodic]]` trigger names an entry its module's binary declares
/// `#[periodic]`.
pub(super) fn check_periodic(app: &App, built: &BTreeMap<String, Built>) -> Result<()> {
    for (i, trigger) in app.descriptor().periodic.iter().enumerate() {
        let interface = &built[&trigger.module].interface;
        if interface.periodic.contains(&trigger.entry) {
            continue;
        }
        let message = if interface.entries.contains(&trigger.entry) {
            format!(
                "entry point `{}` of module `{}` is not periodic: only `#[periodic]` entries \
                 (no payload) may be triggered by the node; periodic entries: {}",
                trigger.entry,
                trigger.module,
                list(&interface.periodic)
            )
        } else {
            format!(
                "module `{}` has no periodic entry point `{}`",
                trigger.module, trigger.entry
            )
        };
        return Err(app
            .descriptor()
            .error_at(Field::Periodic(i, "call"), message, &interface.periodic)
            .into());
    }
    Ok(())
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}
