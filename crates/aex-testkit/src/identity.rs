//! Deployer identities for tests: files in the test kit's scratch directory, never in the
//! real home directory. Every `aex` the tests run gets `AEX_IDENTITY` (see `cli::aex`), and
//! every node they start admits the default identity.

use std::path::PathBuf;
use std::sync::OnceLock;

use aex_deploy::Identity;
use aex_proto::DeployerKey;

/// A deployer identity file and its loaded key.
pub struct TestIdentity {
    /// The identity file (`AEX_IDENTITY`).
    pub path: PathBuf,
    /// The key in it.
    pub identity: Identity,
}

impl TestIdentity {
    /// The identity stored as `identity-<name>` (created on first use, kept across runs).
    pub fn named(name: &str) -> TestIdentity {
        let path = crate::paths::scratch().join(format!("identity-{name}"));
        let (identity, _) = Identity::load_or_create(&path)
            .unwrap_or_else(|e| panic!("test identity {}: {e}", path.display()));
        TestIdentity { path, identity }
    }

    /// Its public key.
    pub fn key(&self) -> DeployerKey {
        self.identity.public()
    }

    /// Its public key in hex, as `aex node --admit` takes it.
    pub fn hex(&self) -> String {
        self.key().to_string()
    }
}

/// The deployer every test uses unless it says otherwise.
pub fn deployer() -> &'static TestIdentity {
    static DEFAULT: OnceLock<TestIdentity> = OnceLock::new();
    DEFAULT.get_or_init(|| TestIdentity::named("default"))
}
