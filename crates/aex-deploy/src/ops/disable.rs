//! `aex disable`: tell a module, authenticated under its module key, to drop all its keys.
//!
//! A disabled module accepts no event and no command again; only a new, freshly attested
//! instance (`aex deploy`) brings it back. The deployer forgets the module key and the
//! connection records of that instance, so status shows it as not attested.

use aex_proto::Command;

use crate::app::App;
use crate::error::Result;

/// Disables `module`.
pub fn disable(app: &mut App, module: &str) -> Result<()> {
    app.command(module, "disable itself", &Command::Disable)?;
    if let Some(rec) = app.state.state.modules.remove(module) {
        let instance = rec.instance;
        // The process keeps its name on the node until the next deploy unloads it.
        app.state
            .state
            .retired
            .entry(module.into())
            .or_default()
            .push(crate::state::RetiredInstance {
                node: rec.node.clone(),
                slot: rec.slot(module),
            });
        app.state
            .state
            .connections
            .retain(|_, c| c.instances.get(module) != Some(&instance));
    }
    app.state.save()?;
    Ok(())
}
