//! The refusal of every command that changes nodes when the descriptor declares
//! `[governance]`.
//!
//! The descriptor's members and rules are parsed and checked, but no governor enforces them
//! yet: a command run here would act under this one deployer key, which is exactly what a
//! consortium's rules forbid. Running it anyway would let users believe their application is
//! governed when it is not, so these commands refuse before they touch any node (or start
//! one), and say how to deploy without governance. Read-only commands (`aex deploy --dry-run`,
//! `aex status`, `aex graph`) still work, so members can review a plan.

use crate::descriptor::Descriptor;
use crate::error::{Error, Result};

/// Fails with [`Error::GovernanceNotEnforced`] if `desc` declares `[governance]`; `command` is
/// the refused command as the user typed it (`aex deploy`).
pub fn refuse_if_governed(desc: &Descriptor, command: &'static str) -> Result<()> {
    match desc.governance {
        None => Ok(()),
        Some(_) => Err(Error::GovernanceNotEnforced {
            command,
            file: desc.path.clone(),
            line: desc.governance_line(),
        }),
    }
}
