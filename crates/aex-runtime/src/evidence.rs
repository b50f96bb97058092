//! Evidence on the module's own request: the TEE layer attests that this module, the binary
//! the node measured at load, holds a public key (attested TLS, docs/PROTOCOL.md §11).
//!
//! The module sends `FromModule::Evidence` with a fresh id, the key's binding and a challenge,
//! and blocks, as a device access does ([`Core::wait_for`]), until the `ToModule::Evidence`
//! with that id, the request timeout, or the end of the link. The measurement is not the
//! module's to name: the TEE layer attests the code it loaded (on SGX hardware the CPU fills
//! in `mr_enclave`; in simulation the node agent plays the TEE layer and could attest
//! anything, as it could forge the deployer's evidence).
//!
//! On symmetric kinds the module MACs the request itself with its provisioned key (kept for
//! this, `Core::evidence_key`), over the binding as its public key and the all-zero peer key,
//! which no attestation accepts; the node wraps the MAC as for an attestation. Only the holder
//! of the provider key, the deployer, can check it.
//!
//! Invariants: ids are fresh per process (the device accesses' counter, shared, so a late
//! answer is never taken for a later one's); a disabled or retired instance asks for none.

use aex_crypto::symmetric::{self, Transcript};
use aex_proto::attested_tls::SYMMETRIC_PEER;
use aex_proto::{FromModule, ToModule};

use crate::core::{Arrived, Core, Step, Unanswered};
use crate::error::Error;

impl Core {
    /// Evidence envelope bytes binding `key` and answering `challenge`.
    pub(crate) fn evidence(
        &mut self,
        key: [u8; 32],
        challenge: [u8; 32],
    ) -> Result<Vec<u8>, Error> {
        let refused = |why: &str| Error::Evidence {
            message: why.into(),
        };
        if self.retired.is_some() {
            return Err(refused("this module instance is retired"));
        }
        if self.disabled {
            return Err(refused("this module instance is disabled"));
        }
        let id = self.next_device_id;
        // 2^64 requests take longer than any process lives; wrapping is only a formality.
        self.next_device_id = id.wrapping_add(1);
        // Symmetric kinds: the module proves the binding itself, as in its attestation
        // (the node only wraps the MAC); quote kinds: the TEE layer signs.
        let mac = self.evidence_key.as_ref().map(|p| {
            let transcript = Transcript {
                kind: &p.kind,
                simulated: p.simulated,
                challenge: &challenge,
                measurement: &self.measurement,
                module_pk: &key,
                deployer_pk: &SYMMETRIC_PEER,
            };
            symmetric::attest_mac(&p.key, &transcript).to_vec()
        });
        let ask = FromModule::Evidence {
            id,
            key,
            challenge,
            mac,
        };
        if !(self.link.send(&ask) && self.link.flush()) {
            return Err(Error::Closed);
        }
        let after = self.request_timeout;
        let answer = self.wait_for(after, |_, arrived| match arrived {
            Arrived::Message(ToModule::Evidence { id: got, result }) if got == id => {
                Step::Done(result)
            }
            // Stale: the answer to a request that already timed out.
            Arrived::Message(ToModule::Evidence { .. })
            | Arrived::Keyed(_)
            | Arrived::Credit(_) => Step::Wait,
            Arrived::Message(other) => Step::Defer(other),
        });
        match answer {
            Ok(Ok(evidence)) => Ok(evidence),
            Ok(Err(message)) => Err(Error::Evidence { message }),
            Err(Unanswered::Timeout) => Err(Error::EvidenceTimeout { after }),
            Err(Unanswered::Closed) => Err(Error::Closed),
            Err(Unanswered::Overloaded) => Err(Error::Overloaded),
        }
    }

    /// Whether this instance still serves: neither disabled nor retired.
    pub(crate) fn serving(&self) -> bool {
        !self.disabled && self.retired.is_none()
    }
}

impl crate::Context<'_> {
    /// Asks the node's TEE layer for evidence that this module holds the public key(s) whose
    /// binding is `key`, answering `challenge`: report data `SHA-256(key || challenge) ||
    /// 0^32` (docs/PROTOCOL.md §11). Used by attested TLS (`aex::tls`), which computes `key`
    /// from its certificate's public key and the extra keys it attests.
    ///
    /// Blocks like [`Context::read_device`](crate::Context::read_device), at most the request
    /// timeout. On symmetric TEE kinds (`trustzone`, `sancus`) the evidence is the module's
    /// own MAC under its provisioned key, which only its deployer can check; a disabled or
    /// retired instance asks for none.
    pub fn evidence(&mut self, key: [u8; 32], challenge: [u8; 32]) -> Result<Vec<u8>, Error> {
        self.core.evidence(key, challenge)
    }

    /// Whether this instance still serves: not disabled, not retired. A server thread stops
    /// (and drops its keys) once it does not.
    pub fn serving(&self) -> bool {
        self.core.serving()
    }
}
