//! What module code may learn about its own identity and sealing, for libraries linked into
//! the module that sign or keep secrets across restarts (`aex-metering`'s receipt key).
//!
//! Module code never gets the sealing key itself: only keys derived from it for a named
//! purpose ([`aex_crypto::seal::purpose_key`]), so that no purpose can open the blobs.

use aex_crypto::{Measurement, SecretKey};

use crate::context::Context;

impl Context<'_> {
    /// The measurement the node says it took of this binary (`AEX_MEASUREMENT`).
    ///
    /// Untrusted as a value: a node that lies about it only makes this module's keys differ
    /// from the deployer's, which attestation detects; anything that must bind the true
    /// measurement is bound through attested keys, not through this value.
    pub fn measurement(&self) -> Measurement {
        self.core.measurement
    }

    /// A 32-byte key for `purpose`, derived from the platform's sealing key: the same in every
    /// process of this module on this platform (and, for `persistent(signer)`, of every version
    /// the signer deploys), and known to nobody outside the TEE on hardware.
    ///
    /// `None` for a module that is not `persistent`, and before the platform handed the
    /// sealing key over (right after the process starts, before any entry point, handler or
    /// input runs).
    pub fn purpose_key(&self, purpose: &str) -> Option<SecretKey> {
        let sealing = self.core.persist.as_ref()?.sealing.as_ref()?;
        Some(aex_crypto::seal::purpose_key(sealing, purpose))
    }
}
