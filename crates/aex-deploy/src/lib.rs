//! The aex deployer library: everything the `aex` command does, without the printing.
//!
//! The deployer is the trusted party of an aex application. It runs on the owner's machine,
//! reads the deployment descriptor, builds every module itself, uploads the binaries to the
//! (untrusted) node agents, checks attestation evidence against its own measurements, agrees
//! a module key with each attested module, and delivers fresh connection keys wrapped under
//! those module keys. Afterwards it lets the owner call entry points and use direct
//! connections, and reports status.
//!
//! # Design overview
//!
//! * [`descriptor`] parses and validates the descriptor (TOML, YAML or JSON) with located
//!   errors.
//! * [`build`] builds module crates with cargo and measures the exact bytes.
//! * [`app::App`] ties a descriptor to the deployer's durable [`state`] and to one management
//!   session per node ([`client`]), signed by the deployer's [`identity`]. Its records are
//!   read through accessors (`App::module`, `App::connections`, ...) and changed only by the
//!   operations below.
//! * [`ops`] holds one module per command family; each `aex` command calls one function of
//!   it:
//!   - [`ops::deploy`]: `aex deploy` (building, planning, loading, attesting, connecting,
//!     revoking, handing state over);
//!   - [`ops::update`]: `aex update`, a deployment that replaces one module;
//!   - [`ops::up`]: `aex up`, local nodes, deployments, `[[up]]` steps, following;
//!   - [`ops::local`]: starting and stopping local nodes (`aex up`, `aex down`);
//!   - [`ops::status`]: `aex status`;
//!   - [`ops::call`]: `aex call`, `aex output`, `aex request`;
//!   - [`ops::disable`]: `aex disable`;
//!   - [`ops::reset`]: `aex reset`;
//!   - [`ops::graph`]: `aex graph`.
//!
//! The deployer never trusts a node's word about which code runs (measurements come from its
//! own build) and never sends a module key or connection key in clear. Secrets live only in
//! its state database (`.aex/state.redb`, mode 0600), never in the descriptor, logs or errors.
//!
//! This crate does not print: progress goes through [`progress::Observer`], and what an
//! operation tells its caller on the way through traits that extend it
//! ([`ops::deploy::DeployObserver`], [`ops::up::UpObserver`]).
#![forbid(unsafe_code)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod app;
pub mod audit;
pub mod build;
pub mod bundle;
pub mod client;
pub mod crash;
pub mod descriptor;
mod duration;
pub mod error;
pub mod identity;
pub mod ops;
pub mod progress;
pub mod state;

pub use app::App;
pub use error::{Error, Result};
pub use identity::Identity;
