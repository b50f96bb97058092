//! Deployer operations, one module per `aex` command family. Each command calls one function:
//!
//! | command | operation |
//! |---|---|
//! | `aex up` | [`up::up`] |
//! | `aex deploy` | [`deploy::deploy`] |
//! | `aex update` | [`update::update`] |
//! | `aex disable` | [`disable::disable`] |
//! | `aex status` | [`status::status`] |
//! | `aex call` | [`call::call`] |
//! | `aex checkpoint` | [`checkpoint::checkpoint`] |
//! | `aex output` | [`call::output`] |
//! | `aex request` | [`call::request`] |
//! | `aex reset` | [`reset::reset`] |
//! | `aex down` | [`local::down`] |
//! | `aex graph` | [`graph::graph`] |

pub mod call;
pub mod checkpoint;
pub mod deploy;
pub mod disable;
pub mod graph;
pub mod local;
pub mod reset;
pub mod status;
pub mod up;
pub mod update;
