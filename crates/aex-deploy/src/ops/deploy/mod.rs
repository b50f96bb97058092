//! `aex deploy`: build, load, attest and connect, converging on the descriptor.
//!
//! Order of work, and why:
//! 1. build every module and check the descriptor against the interfaces the binaries
//!    declare, before touching any node, resolving each connection's ends once (`endpoints`)
//!    for the steps below;
//! 2. revoke what the descriptor no longer has: a connection dropped or re-wired loses its
//!    keys in its endpoint modules and its routes on the nodes (`revoke`); a module dropped
//!    is disabled (sealed) before it is unloaded, so a node that keeps it keeps nothing usable;
//! 3. keep a module instance that the deployer attested and that its node still runs with
//!    the same measurement; otherwise (re)load it and attest the new instance — next to the
//!    old one, which then hands its state over and retires ([`transfer`]);
//! 4. re-key every connection whose endpoint instances changed (fresh key, fresh counters),
//!    reserving command counters in the state file *before* sending;
//! 5. install routes on every node involved (idempotent, so a restarted node is repaired);
//! 6. arm the modules no key arms with `Command::Start` (`start`), then install each
//!    module's periodic triggers (idempotent too).
//!
//! What will change is decided first, without changing anything ([`plan()`]).
//!
//! `aex deploy` calls [`deploy()`], which builds, plans and applies; [`apply()`] is the deployment
//! from modules already built ([`build_all()`]), which `aex update` and the benchmarks use.

mod apply;
mod attest;
mod built;
mod check;
mod connect;
mod endpoints;
mod lanes;
mod load;
mod periodic;
mod pipeline;
mod plan;
mod report;
mod revoke;
mod run;
mod start;
pub mod transfer;

pub use apply::apply;
pub(crate) use apply::disable;
pub use attest::STATUS_ENTRY;
pub use built::{assemble, build_all, BuiltApp};
pub use plan::{
    plan, plan_with, Action, ConnectionChange, ModuleChange, Options, Plan, StateSource,
};
pub use report::DeployReport;
pub(crate) use run::{build, deploy_built};
pub use run::{deploy, DeployObserver, DeployOptions, Deployed};
pub use transfer::Transfer;
