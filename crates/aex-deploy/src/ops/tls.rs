//! Attested TLS clients (`aex fetch`, `aex tls export`): the policy a client appraises a
//! module's certificate with, taken from what the deployer holds — the measurement of its own
//! build that it attested, the node's trust anchor and the descriptor's policy for that node
//! and module — so an outside client accepts exactly what the deployer accepted. On symmetric
//! kinds the anchor is the deployer's provider key, a secret: the deployer checks the module,
//! and outside clients trust the certificate it exports (its endorsement).

use aex_client::{Anchor as ClientAnchor, Policy};
use aex_crypto::Measurement;

use crate::app::{Anchor, App};
use crate::error::{Error, Result};
use crate::identity::Identity;

/// The client policy for `module` as the deployer last attested it.
pub fn client_policy(app: &App, module: &str) -> Result<Policy> {
    if app.descriptor().module(module).is_none() {
        return Err(app.no_module(module));
    }
    let record = app.module(module).ok_or_else(|| Error::NotDeployed {
        module: module.into(),
    })?;
    let spec = app.node_spec(&record.node)?;
    let measurement = Measurement::from_hex(&record.measurement).map_err(|_| Error::Tls {
        module: module.into(),
        message: format!(
            "the deployer's record holds no valid measurement ({:?})",
            record.measurement
        ),
    })?;
    let anchor = match app.trust_anchor(&record.node)? {
        Anchor::SgxRoot(root) => ClientAnchor::SimSgxRoot(root),
        Anchor::None => ClientAnchor::None,
        // Symmetric kinds: only this deployer can check the module's MAC; what it exports
        // after the check is the endorsement outside clients trust.
        Anchor::Provider(key) => ClientAnchor::ProviderKey(std::sync::Arc::new(key)),
    };
    let allow_insecure = app
        .descriptor()
        .module(module)
        .is_some_and(|m| m.allow_insecure);
    Ok(Policy {
        kind: spec.tee,
        anchor,
        measurements: vec![measurement],
        allow_simulated: spec.simulation,
        allow_debug: spec.allow_debug,
        allow_insecure,
    })
}

/// The application's endorsement key file: `.aex/endorsement.key` beside its state.
pub const ENDORSEMENT_KEY_FILE: &str = "endorsement.key";

/// The application's endorsement key (Ed25519, created on first use, mode 0600): what outside
/// clients pin to trust modules on symmetric kinds, whose evidence only this deployer can
/// check. The boolean says whether it was just created.
pub fn endorsement_key(app: &App) -> Result<(Identity, bool)> {
    let path = app
        .descriptor()
        .dir
        .join(crate::state::STATE_DIR)
        .join(ENDORSEMENT_KEY_FILE);
    Ok(Identity::load_or_create(&path)?)
}
