//! `aex disable`: tell a module, authenticated under its module key, to drop all its keys.
//!
//! A disabled module accepts no event and no command again; only a new, freshly attested
//! instance (`aex deploy`) brings it back. The deployer forgets the module key, and marks the
//! connections of that instance keyed to no instance, so status shows them not keyed and the
//! next deployment re-keys them under the same ids (the other endpoints' stale keys and the
//! routes to the disabled instance are replaced, not left behind).

use aex_proto::Command;

use crate::app::App;
use crate::error::Result;
use crate::state::RetiredInstance;

/// Disables `module`.
pub fn disable(app: &mut App, module: &str) -> Result<()> {
    super::governed::refuse_if_governed(app.descriptor(), "aex disable")?;
    app.command(module, "disable itself", &Command::Disable)?;
    if let Some(rec) = app.forget_module(module) {
        // The process keeps its name on the node until the next deploy unloads it.
        app.retire_instance(
            module,
            RetiredInstance {
                node: rec.node.clone(),
                slot: rec.slot(module),
            },
        );
        app.unkey_connections_of(module, rec.instance);
    }
    app.save()?;
    Ok(())
}
