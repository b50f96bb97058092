//! The module's side of attestation: the one key agreement of a process, or, on symmetric
//! TEEs, the proof of the key the platform provisioned.
//!
//! It lives apart from the serve loop because it is the part of the runtime that turns a
//! fresh process into a keyed one: it answers the first `Attest` and installs the command
//! channel every later command opens under; everything after that is `serve.rs`'s business.
//!
//! Both schemes start from the process's one ephemeral X25519 key pair (drawn at start, used
//! by exactly one attestation). On `sgx` and `native` the exchange derives the module key
//! itself. On `trustzone` and `sancus` the platform's provisioned module key only *proves*
//! the module's public key (a MAC over the challenge and both public keys); the command key
//! comes from the exchange, so whoever else knows the module key (the node agent in
//! simulation, anyone who learned it) and records the whole attestation still cannot derive
//! it (PROTOCOL §4).
//!
//! Invariants this file owns (PROTOCOL §4):
//! * exactly one attestation per process, whatever its outcome: the first `Attest` consumes
//!   the key agreement (and the provisioned key), later ones are answered `AttestRefused`; a
//!   copy of the provisioned key stays for attested TLS (`evidence.rs`), whose MACs cover the
//!   all-zero peer key that this attestation refuses, so they never prove an attestation;
//! * a provisioned key is accepted only before attestation, once;
//! * a deployer public key of low order is refused on both schemes (no key is derived).

use aex_crypto::symmetric::{self, Transcript};
use aex_proto::{FromModule, WireKey};

use crate::core::{Core, Provisioned};

impl Core {
    /// `ToModule::Provision`: keeps the module key a symmetric platform hands over, only
    /// before attestation (afterwards the module is keyed for good).
    pub(crate) fn provision(&mut self, kind: String, simulated: bool, key: WireKey) {
        if self.agreement.is_some() && self.provisioned.is_none() {
            let key = key.into_secret();
            self.evidence_key = Some(Provisioned {
                kind: kind.clone(),
                simulated,
                key: aex_crypto::SecretKey::from_bytes(*key.expose_secret()),
            });
            self.provisioned = Some(Provisioned {
                kind,
                simulated,
                key,
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
            // Symmetric TEE: the provisioned key authenticates this process's ephemeral public
            // key; commands are keyed by the exchange, never by the module key alone.
            (Some(agreement), Some(p)) => {
                let module_pk = agreement.public_key();
                let transcript = Transcript {
                    kind: &p.kind,
                    simulated: p.simulated,
                    challenge,
                    measurement: &self.measurement,
                    module_pk: &module_pk,
                    deployer_pk,
                };
                match symmetric::session_key(agreement, deployer_pk, &transcript) {
                    Ok(session) => {
                        let mac = symmetric::attest_mac(&p.key, &transcript);
                        let channel = aex_proto::CommandChannel::new(&session);
                        self.keep_command_key(&session);
                        let confirm = channel.confirmation();
                        self.commands = Some(channel);
                        FromModule::Attested {
                            public_key: module_pk,
                            confirm,
                            mac: Some(mac.to_vec()),
                        }
                    }
                    Err(e) => {
                        log!("refusing attestation: {e}");
                        FromModule::AttestRefused
                    }
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
                        self.keep_command_key(&module_key);
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
