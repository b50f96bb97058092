//! A module's own evidence requests (attested TLS, docs/PROTOCOL.md §11): the node's TEE layer
//! attests that this process, the binary the node measured at load, holds the key the request
//! binds.
//!
//! The measurement and the provider come from the load, never from the request: a module
//! cannot obtain evidence naming another module's code. (In simulation the node agent is the
//! TEE layer and could produce any evidence, as it could for the deployer's attestation; on
//! SGX hardware the quoting enclave signs what the CPU reports.) On symmetric kinds the module
//! sends its own MAC, which the backend wraps as for an attestation: only the deployer can
//! check it, and outside clients trust the deployer's endorsement instead (docs/SECURITY.md,
//! "Attested TLS").

use std::sync::Arc;

use aex_crypto::Measurement;
use aex_proto::ToModule;
use aex_tee::{Backend, Provider};
use tracing::debug;

/// What answers one module's evidence requests.
pub(crate) struct Attester {
    /// The node's TEE layer.
    pub(crate) backend: Arc<dyn Backend>,
    /// The deployer identity that loaded the module.
    pub(crate) provider: Provider,
    /// The measurement the node took at load.
    pub(crate) measurement: Measurement,
}

impl Attester {
    /// The answer to `FromModule::Evidence { id, key, challenge }`, produced off the async
    /// threads (a quote signature is a few hundred microseconds).
    pub(crate) async fn answer(
        &self,
        id: u64,
        key: [u8; 32],
        challenge: [u8; 32],
        mac: Option<Vec<u8>>,
    ) -> ToModule {
        let backend = self.backend.clone();
        let (provider, measurement) = (self.provider, self.measurement);
        let made = tokio::task::spawn_blocking(move || {
            backend.evidence(
                &provider,
                &measurement,
                &challenge,
                Some(&key),
                mac.as_deref(),
            )
        })
        .await;
        let result = match made {
            Ok(Ok(evidence)) => Ok(evidence),
            Ok(Err(e)) => {
                debug!(error = %e, "no evidence for the module's key");
                Err(e.to_string())
            }
            Err(_) => Err("the TEE layer failed".into()),
        };
        ToModule::Evidence { id, result }
    }
}
