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
//!
//! The commands that change nodes (`up`, `deploy` but for a dry run, `update`, `disable`,
//! `reset`) first call [`governed::refuse_if_governed`]: a governed application changes only
//! through its governor (`crate::bundle`).
//! | `aex logs` | [`logs::feeds`], then [`logs::LogFeed::read`] |
//! | `aex events` | [`events::feed`], then [`events::EventFeed::read`] |

pub mod call;
pub mod checkpoint;
pub mod deploy;
pub mod disable;
pub mod events;
pub mod governed;
pub mod graph;
pub mod local;
pub mod logs;
pub mod reach;
pub mod reset;
pub mod status;
pub mod tls;
pub mod up;
pub mod update;
