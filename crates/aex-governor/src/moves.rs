//! What an accepted `move` may change: only where modules run.
//!
//! A `move` is carried out like a deployment, from a bundle whose descriptor places modules on
//! other nodes; the converging deployment hands each moved module's state over to its new
//! instance. But the constitution may give `move` a weaker rule than `deploy` or `update`,
//! so a bundle approved as a move must not do what those rules guard: before anything is
//! sent, it is refused unless it keeps every module, with the code the governor attested,
//! and every connection as recorded, and adds none of either. (A move that moves nothing is
//! let through: it converges like a deployment, and a retry after a move cut short must
//! finish it although its modules are already recorded on their new nodes.) (Other
//! descriptor fields, such as a node's address or a module's periodic entries, are not
//! compared: they follow the bundle, as members read it before approving.)

use aex_deploy::ops::deploy::BuiltApp;
use aex_deploy::App;

/// Refuses a `move` bundle that changes more than modules' nodes: every difference, named.
pub fn only_moves(app: &App, built: &BuiltApp) -> Result<(), String> {
    let desc = app.descriptor();
    let mut found = vec![];
    for spec in &desc.modules {
        let Some(record) = app.module(&spec.name) else {
            found.push(format!("module `{}` is new", spec.name));
            continue;
        };
        let want = built
            .modules
            .get(&spec.name)
            .map(|b| b.measurement.to_hex());
        if want.as_deref() != Some(record.measurement.as_str()) {
            found.push(format!("module `{}` has other code", spec.name));
        }
    }
    for name in app.modules().keys() {
        if desc.module(name).is_none() {
            found.push(format!("module `{name}` is removed"));
        }
    }
    for spec in &desc.connections {
        match app.connection(&spec.name) {
            None => found.push(format!("connection `{}` is new", spec.name)),
            Some(r)
                if r.from != spec.from.to_string()
                    || r.to != spec.to.to_string()
                    || r.algorithm != spec.algorithm.name() =>
            {
                found.push(format!("connection `{}` is changed", spec.name));
            }
            Some(_) => {}
        }
    }
    for name in app.state().connections.keys() {
        if !desc.connections.iter().any(|c| &c.name == name) {
            found.push(format!("connection `{name}` is removed"));
        }
    }
    match found.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "a move changes only where modules run, and this bundle does more: {}; propose \
             it as a deploy or an update",
            found.join("; ")
        )),
    }
}
