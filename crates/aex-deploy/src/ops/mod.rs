//! Deployer operations, one module per `aex` command family.

pub mod call;
pub mod deploy;
pub mod disable;
pub mod graph;
pub mod local;
pub mod reset;
pub mod status;
pub mod up;
pub mod update;
