//! Checking the descriptor against what only the deployer knows: each connection's ports
//! against the interfaces the built binaries declare (resolving its ends, once, into a
//! [`Link`]), each periodic trigger against its module's
//! `#[periodic]` entries, and persistent modules against their nodes' counters.

use std::collections::BTreeMap;

use super::endpoints::Link;
use crate::app::App;
use crate::build::Built;
use crate::descriptor::Field;
use crate::error::Result;

/// Checks every connection of the descriptor, in file order, against the interfaces the built
/// binaries declare, and returns the connections resolved ([`Link::resolve`]). (That the TEE
/// of each end offers its algorithm is checked with the descriptor, before any build.)
pub(super) fn check_connections(app: &App, built: &BTreeMap<String, Built>) -> Result<Vec<Link>> {
    let desc = app.descriptor();
    (0..desc.connections.len())
        .map(|i| Link::resolve(desc, i, built))
        .collect()
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

/// Refuses a persistent module on a node whose descriptor entry asks for hardware evidence
/// (`simulation = false`): aex has no hardware monotonic counters, only the simulated
/// platform's, which the node's operator controls, so it cannot keep such a module's sealed
/// state from being rolled back (docs/SECURITY.md, "Sealed state").
pub(super) fn check_persistent(app: &App, built: &BTreeMap<String, Built>) -> Result<()> {
    let desc = app.descriptor();
    for (i, module) in desc.modules.iter().enumerate() {
        let persistent = built
            .get(&module.name)
            .is_some_and(|b| b.interface.persistent);
        let Some(node) = desc.node(&module.node).filter(|n| !n.simulation) else {
            continue;
        };
        if persistent {
            return Err(desc
                .error_at(
                    Field::Module(i, "node"),
                    format!(
                        "module `{}` is persistent (`#[aex::module(persistent)]`), but node `{}` \
                         admits only hardware evidence (`simulation = false`) and aex has no \
                         hardware monotonic counters to protect its sealed state from rollback; \
                         run it on a simulated node, or drop `persistent` from the module",
                        module.name, node.name
                    ),
                    &[] as &[String],
                )
                .into());
        }
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
