//! The TEE layer of a node, in-process, for the attested TLS tests and benchmark: evidence
//! for one measured module from a real simulated backend of aex-tee.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use aex_crypto::Measurement;
use aex_tee::{Backend, Provider};
use aex_tls::Attest;

/// Evidence for `measurement` from `backend`, while `serving` says the module is still
/// loaded and enabled (a test turns it off to play a disabled module).
pub struct Tee {
    pub backend: Arc<dyn Backend>,
    pub measurement: Measurement,
    pub serving: Arc<AtomicBool>,
}

impl Tee {
    /// A module that serves until told otherwise.
    #[allow(dead_code, reason = "not every includer builds its Tee this way")]
    pub fn serving(backend: Arc<dyn Backend>, measurement: Measurement) -> Self {
        Tee {
            backend,
            measurement,
            serving: Arc::new(AtomicBool::new(true)),
        }
    }
}

impl Attest for Tee {
    fn evidence(&self, key: [u8; 32], challenge: [u8; 32]) -> Result<Vec<u8>, String> {
        self.backend
            .evidence(
                &Provider([0; 32]),
                &self.measurement,
                &challenge,
                Some(&key),
                None,
            )
            .map_err(|e| e.to_string())
    }

    fn serving(&self) -> bool {
        self.serving.load(Ordering::SeqCst)
    }
}
