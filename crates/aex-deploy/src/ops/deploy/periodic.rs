//! Installing each module's `[[periodic]]` triggers on its node.
//!
//! Every module of the descriptor gets its complete list, empty included, on every deploy: the
//! node replaces a module's triggers as a whole and keeps unchanged ones running, so this is
//! idempotent, removes triggers the descriptor dropped, and repairs a restarted node. A
//! reloaded module starts with none, since triggers die with the module instance.

use std::collections::BTreeMap;

use aex_proto::{NodeRequest, Trigger};

use super::pipeline::pipeline;
use super::report::DeployReport;
use crate::app::App;
use crate::error::Result;

/// Sends every module its trigger list and records the triggers in `report`.
pub(super) fn install_triggers(app: &mut App, report: &mut DeployReport) -> Result<()> {
    let mut lists: BTreeMap<&str, Vec<Trigger>> = app
        .descriptor()
        .modules
        .iter()
        .map(|m| (m.name.as_str(), Vec::new()))
        .collect();
    for spec in &app.descriptor().periodic {
        let period_ms = u64::try_from(spec.every.as_millis()).unwrap_or(u64::MAX);
        if let Some(list) = lists.get_mut(spec.module.as_str()) {
            list.push(Trigger {
                entry: spec.entry.clone(),
                period_ms,
            });
        }
        report.periodic.push(format!(
            "{}.{} every {}",
            spec.module,
            spec.entry,
            humane(period_ms)
        ));
    }
    let requests = lists
        .into_iter()
        .filter_map(|(module, triggers)| {
            // The attested instance: its node and its name there.
            let record = app.module(module)?;
            let node = record.node.clone();
            let action = format!("install the periodic triggers of module `{module}`");
            let body = NodeRequest::Periodic {
                module: record.slot(module),
                triggers,
            };
            Some((node, action, body))
        })
        .collect();
    pipeline(app, requests)?;
    Ok(())
}

/// `500 ms`, `5 s`, `2 min`, as the descriptor would say it.
fn humane(ms: u64) -> String {
    match ms {
        ms if ms % 60_000 == 0 => format!("{} min", ms / 60_000),
        ms if ms % 1_000 == 0 => format!("{} s", ms / 1_000),
        ms => format!("{ms} ms"),
    }
}
