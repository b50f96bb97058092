//! `aex disable`: tell a module, authenticated under its module key, to drop all its keys.
//!
//! A disabled module accepts no event and no command again; only a new, freshly attested
//! instance (`aex deploy`) brings it back. The deployer forgets the module key, and marks the
//! connections of that instance keyed to no instance, so status shows them not keyed and the
//! next deployment re-keys them under the same ids (the other endpoints' stale keys and the
//! routes to the disabled instance are replaced, not left behind).
//!
//! A governed application is disabled by its governor only, once its members accepted a
//! `disable` proposal: `aex disable` refuses a descriptor with `[governance]`, and
//! [`governed`], the governor's path, refuses one without (the two never overlap). The nodes
//! of a governed application admit the governor's key alone, so a member calling
//! [`governed`] with its own key is refused by them anyway.

use aex_proto::Command;

use crate::app::App;
use crate::error::Result;
use crate::state::RetiredInstance;

/// Disables `module`.
pub fn disable(app: &mut App, module: &str) -> Result<()> {
    super::governed::refuse_if_governed(app.descriptor(), "aex disable")?;
    disable_module(app, module)
}

/// The governor's side: disables `module` of a governed application (an accepted `disable`
/// proposal); refuses an application whose descriptor declares no `[governance]`, which
/// `aex disable` is for.
pub fn governed(app: &mut App, module: &str) -> Result<()> {
    if app.descriptor().governance.is_none() {
        return Err(crate::error::Error::Bundle {
            reason: format!(
                "{} declares no `[governance]`: its modules are disabled with `aex disable`, \
                 not by a governor",
                app.descriptor().path.display()
            ),
        });
    }
    disable_module(app, module)
}

fn disable_module(app: &mut App, module: &str) -> Result<()> {
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
