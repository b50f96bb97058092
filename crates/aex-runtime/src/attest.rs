//! The module's side of attestation: the one key agreement of a process, or, on symmetric
//! TEEs, the proof of the key the platform provisioned.
//!
//! It lives apart from the serve loop because it is the part of the runtime that turns a
//! fresh process into a keyed one: it answers the first `Attest` and installs the command
//! channel every later command opens under; everything after that is `serve.rs`'s business.
//!
//! Invariants this file owns (PROTOCOL §4):
//! * exactly one attestation per process, whatever its outcome: the first `Attest` consumes
//!   the key agreement (and the provisioned key), later ones are answered `AttestRefused`;
//! * a provisioned key is accepted only before attestation, once.

use aex_proto::{FromModule, WireKey};

use crate::state::Core;

/// A module key handed over by a symmetric TEE platform.
pub(crate) struct Provisioned {
    /// TEE kind name, bound into the attestation MAC.
    pub(crate) kind: String,
    /// Whether the platform is simulated, bound into the attestation MAC.
    pub(crate) simulated: bool,
    /// The module key (zeroized on drop).
    pub(crate) key: aex_crypto::SecretKey,
}

impl Core {
    /// `ToModule::Provision`: keeps the module key a symmetric platform hands over, only
    /// before attestation (afterwards the module is keyed for good).
    pub(crate) fn provision(&mut self, kind: String, simulated: bool, key: WireKey) {
        if self.agreement.is_some() && self.provisioned.is_none() {
            self.provisioned = Some(Provisioned {
                kind,
                simulated,
                key: key.into_secret(),
            });
        } else {
            log!("ignoring a second or late platform provisioning");
        }
    }

    /// `ToModule::Attest`: answers the deployer's challenge and, on success, installs the
    /// command channel.
    pub(crate) fn attest(&mut self, challenge: &[u8; 32], deployer_pk: &[u8; 32]) {
        // One attestation per process, whatever its outcome.
        let reply = match (self.agreement.take(), self.provisioned.take()) {
            (None, _) => FromModule::AttestRefused,
            // Symmetric TEE: prove the provisioned key, then key commands per instance.
            (Some(_), Some(p)) => {
                let nonce = aex_crypto::random_bytes::<32>();
                let mac = aex_crypto::symmetric::attest_mac(
                    &p.kind,
                    p.simulated,
                    &p.key,
                    challenge,
                    &self.measurement,
                );
                let session = aex_crypto::symmetric::session_key(&p.key, challenge, &nonce);
                let channel = aex_proto::CommandChannel::new(&session);
                let confirm = channel.confirmation();
                self.commands = Some(channel);
                FromModule::Attested {
                    public_key: nonce,
                    confirm,
                    mac: Some(mac.to_vec()),
                }
            }
            (Some(agreement), None) => {
                let module_pk = agreement.public_key();
                match agreement.finish(
                    deployer_pk,
                    challenge,
                    &module_pk,
                    deployer_pk,
                    &self.measurement,
                ) {
                    Ok(module_key) => {
                        let channel = aex_proto::CommandChannel::new(&module_key);
                        let confirm = channel.confirmation();
                        self.commands = Some(channel);
                        FromModule::Attested {
                            public_key: module_pk,
                            confirm,
                            mac: None,
                        }
                    }
                    Err(e) => {
                        log!("refusing attestation: {e}");
                        FromModule::AttestRefused
                    }
                }
            }
        };
        self.link.send(&reply);
    }
}
