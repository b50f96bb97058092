//! The deployment descriptor: one TOML, YAML or JSON file naming the nodes, the modules on them
//! and the connections between them (docs/TUTORIAL.md §4 walks through one; docs/DESCRIPTOR.md
//! is the reference of every field, which a test holds to the types of `raw.rs`).
//!
//! [`Descriptor::load`] finds the file (a path, or `aex.toml` and friends in a directory), parses
//! it by extension, validates it and resolves its relative paths. Every failure is a
//! [`DescriptorError`] naming the file, line, column and field, with a `help:` line saying what
//! would be valid; checks the deployer makes later report the same way through
//! [`Descriptor::error_at`].
//!
//! ```toml
//! [application]
//! name = "ping-pong"            # default: the descriptor's directory name
//!
//! [[node]]
//! name = "node1"
//! address = "127.0.0.1:7101"
//! tee = "sgx"
//! simulation = true             # default (`false`: sgx only; refused on trustzone, sancus)
//! # platform_key = "<64 hex>"  or  platform_key_file = "keys/node1.pub"
//! # trustzone, sancus: provider_key_file = "keys/node1-provider.key"
//! # (this identity's own key, from `aex node provider-key`; `aex up` writes it locally)
//! # identity = "<64 hex>"      or  identity_file = "keys/node1-identity.pub"
//! #   (the node's identity key, its node-identity.pub; `aex up` provisions it for local nodes)
//!
//! [[module]]
//! name = "ping"
//! crate = "ping"                # crate directory, relative to the descriptor
//! node = "node1"
//!
//! [[connection]]
//! from = "ping.ping"            # module.port, or `deployer`
//! to = "pong.ping"
//! algorithm = "aes-gcm"         # default
//!
//! [[up]]                        # optional: what `aex up` runs once connected
//! call = "ping.start"           # module.entry
//! payload = '{"count": 10}'     # default: empty
//! until = "done"                # repeat until the JSON result has `done: true`
//! show = true                   # default false
//!
//! [[periodic]]                  # optional: the node calls a #[periodic] entry every period
//! call = "ping.tick"            # module.entry
//! every = "5s"                  # a whole number and ms, s, m or h; at least 10ms
//!
//! [[run]]                       # optional: a program `aex up` runs after the [[up]] steps
//! command = ["sh", "demo.sh"]   # in the descriptor's directory; $AEX is the aex executable
//!
//! [governance]                  # optional: a consortium's members and rules (its governor
//! proposal_lifetime = "168h"    # applies changes; commands that change nodes refuse it)
//! [[governance.member]]
//! name = "farm"
//! key = "<64 hex>"              # `aex identity` prints it; or key_file = "keys/farm.pub"
//! [governance.rules]            # per kind of action; an action without a rule needs `all`
//! deploy = "1 of 1"             # `K of N`, `any K`, `majority`, `all`
//! ```
//!
//! YAML and JSON use the same keys (`node`, `module`, `connection`, `up`, `periodic` as lists; the plural
//! forms `nodes`, `modules`, `connections` are accepted too).

mod error;
mod field;
mod format;
mod keys;
mod load;
mod locate;
mod model;
mod raw;
mod source;
mod suggest;
mod validate;

#[cfg(test)]
mod tests;

pub use error::DescriptorError;
pub use field::Field;
pub use model::{
    ConnectionSpec, Descriptor, From, GovernorSpec, Language, ModuleSpec, NodeIdentitySource,
    NodeSpec, PeriodicSpec, PlatformKeySource, PortRef, RunStep, TenantSpec, UpStep,
};
pub use suggest::did_you_mean;
pub use validate::parse_governor_url;
