//! What a deployment did, as its caller is told: filled in by each step of the deployment.

use super::transfer::Transfer;

/// What a deployment did.
#[derive(Debug, Default, Clone)]
pub struct DeployReport {
    /// Modules loaded and attested in this run.
    pub loaded: Vec<String>,
    /// Modules kept as they were.
    pub kept: Vec<String>,
    /// Modules removed because the descriptor no longer has them.
    pub removed: Vec<String>,
    /// Connections (re)keyed in this run.
    pub keyed: Vec<String>,
    /// Connections whose revocation completed in this run (dropped from the descriptor, or
    /// re-wired): their keys dropped in their endpoint modules, their routes removed.
    pub revoked: Vec<String>,
    /// What needs the user's attention although the deployment went on: a revocation a node
    /// did not confirm (retried by the next deployment), a removed module that could not be
    /// disabled.
    pub warnings: Vec<String>,
    /// Modules replaced while running, and how their state moved.
    pub transfers: Vec<Transfer>,
    /// The periodic triggers in place after this run, as `module.entry every 5 s`.
    pub periodic: Vec<String>,
    /// Seconds spent building.
    pub build_secs: f64,
    /// Seconds spent loading, attesting and connecting.
    pub deploy_secs: f64,
}
