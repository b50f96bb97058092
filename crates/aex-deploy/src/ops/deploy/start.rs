//! Arming the modules nothing else arms.
//!
//! After attestation a module runs no module code (ticks, deadlines, calls from its threads)
//! until its first authenticated `Restore`, `SetKey`, `Call` or `Start` (docs/PROTOCOL.md §5):
//! its fresh state may be a placeholder for one on its way. Every endpoint of a connection is
//! armed by its `SetKey` (a new instance's connections are always re-keyed, after its state
//! is restored), so only modules that are no endpoint of any connection, such as one with
//! nothing but periodic entries, need `Command::Start`. They get it on every deploy, after
//! any pending state is restored and before their periodic triggers are installed; a module
//! already armed answers it as done.

use aex_proto::{Command, NodeRequest};

use super::endpoints::Link;
use super::pipeline::pipeline;
use crate::app::App;
use crate::error::Result;

/// Sends `Command::Start` to every module that is an end of none of `links`.
pub(super) fn start_unconnected(app: &mut App, links: &[Link]) -> Result<()> {
    let connected: Vec<String> = links.iter().flat_map(Link::modules).collect();
    let idle: Vec<String> = app
        .descriptor()
        .modules
        .iter()
        .map(|m| m.name.clone())
        .filter(|m| !connected.contains(m))
        .collect();
    let action = "start the module".to_string();
    let mut sent = vec![];
    let mut requests = vec![];
    for module in idle {
        let sealed = app.seal_command(&module, &Command::Start)?;
        requests.push((
            sealed.node.clone(),
            action.clone(),
            NodeRequest::Command {
                module: sealed.slot.clone(),
                sealed: sealed.sealed.clone(),
            },
        ));
        sent.push(sealed);
    }
    if sent.is_empty() {
        return Ok(());
    }
    // Counters reserved before anything is sent.
    app.save()?;
    let answers = pipeline(app, requests)?;
    for (sealed, answer) in sent.iter().zip(answers) {
        app.command_result(sealed, &action, answer)?;
    }
    Ok(())
}
