//! The refusal of every command that changes nodes when the descriptor declares
//! `[governance]`.
//!
//! A governed application is deployed by its governor, which carries out what the members'
//! rules accepted (`crate::bundle`); its nodes admit the governor's key, not a member's. A
//! command run here would act under this one deployer key, which is exactly what a
//! consortium's rules forbid, so these commands refuse before they touch any node (or start
//! one), and say how to propose the change instead. Read-only commands (`aex deploy
//! --dry-run`, `aex status`, `aex graph`) still work, so members can review a plan.

use crate::descriptor::Descriptor;
use crate::error::{Error, Result};

/// Fails with [`Error::Governed`] if `desc` declares `[governance]`; `command` is
/// the refused command as the user typed it (`aex deploy`).
pub fn refuse_if_governed(desc: &Descriptor, command: &'static str) -> Result<()> {
    match desc.governance {
        None => Ok(()),
        Some(_) => Err(Error::Governed {
            command,
            file: desc.path.clone(),
            line: desc.governance_line(),
        }),
    }
}
