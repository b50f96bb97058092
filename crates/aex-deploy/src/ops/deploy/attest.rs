//! Attesting the instance a module binary started on its node (loaded by `load`), agreeing its
//! module key.

use std::time::{SystemTime, UNIX_EPOCH};

use aex_crypto::symmetric::{session_key, Transcript};
use aex_crypto::{random_bytes, ModuleKeyAgreement};
use aex_proto::{CommandChannel, NodeRequest, NodeResponse};
use aex_tee::{appraise, Expected, Scheme};

use crate::app::{unexpected, Anchor, App};
use crate::build::Built;
use crate::client::ClientError;
use crate::error::{AttestError, Error, Result};
use crate::state::{ModuleRecord, StoredKey};

/// An entry point by this name, if a module has one, is called by `aex status` to show the
/// module's own state (e.g. whether an LED is on).
pub const STATUS_ENTRY: &str = "status";

/// Attests the instance of `module` loaded as `slot` on `node` and returns its record
/// (generation 0; the caller sets it), without touching the state. Losing an unsaved record
/// in a crash only makes the next deployment load and attest that module again; the key is
/// saved before any command sealed under it is sent.
pub(super) fn attest_instance(
    app: &mut App,
    module: &str,
    slot: &str,
    node: &str,
    built: &Built,
) -> Result<ModuleRecord> {
    let (asked, request) = Asked::new(slot);
    let answer = app.client(node)?.request(request);
    asked.finish(app, module, node, built, answer)
}

/// An attestation asked for: the fresh challenge and key agreement of its `Attest` request,
/// kept until the node's answer comes (requests may be pipelined in between).
pub(super) struct Asked {
    challenge: [u8; 32],
    agreement: ModuleKeyAgreement,
}

impl Asked {
    /// A fresh challenge and key agreement, and the `Attest` request for the instance `slot`.
    pub(super) fn new(slot: &str) -> (Asked, NodeRequest) {
        let challenge = random_bytes::<32>();
        let agreement = ModuleKeyAgreement::new();
        let request = NodeRequest::Attest {
            module: slot.into(),
            challenge,
            deployer_pk: agreement.public_key(),
        };
        (
            Asked {
                challenge,
                agreement,
            },
            request,
        )
    }

    /// Appraises the node's `answer` to the request of [`Asked::new`] for `module` on `node`
    /// (built as `built`) and agrees the module key: the instance's record.
    pub(super) fn finish(
        self,
        app: &mut App,
        module: &str,
        node: &str,
        built: &Built,
        answer: std::result::Result<NodeResponse, ClientError>,
    ) -> Result<ModuleRecord> {
        let Asked {
            challenge,
            agreement,
        } = self;
        let fail = |source: AttestError| Error::Attestation {
            module: module.into(),
            node: node.into(),
            source,
        };
        let spec = app.node_spec(node)?.clone();
        let allow_insecure = app
            .descriptor()
            .module(module)
            .is_some_and(|m| m.allow_insecure);
        let anchor = app.trust_anchor(node)?;
        let deployer_pk = agreement.public_key();
        let answer = answer.map_err(|e| fail(AttestError::Node(e)))?;
        let NodeResponse::Evidence {
            public_key,
            confirm,
            tee,
            evidence,
        } = answer
        else {
            return Err(unexpected(node, "attest", app));
        };
        if tee != spec.tee.name() {
            return Err(fail(AttestError::WrongTee {
                expected: spec.tee.name().into(),
                got: tee,
            }));
        }
        let appraised = appraise(
            &evidence,
            &Expected {
                kind: spec.tee,
                anchor: anchor.as_trust_anchor(),
                measurement: built.measurement,
                challenge,
                module_pk: Some(public_key),
                deployer_pk: Some(deployer_pk),
                allow_simulated: spec.simulation,
                allow_debug: spec.allow_debug,
                allow_insecure,
            },
        )
        .map_err(|e| fail(AttestError::Appraisal(e)))?;
        // Quote and native kinds agree the module key itself; on symmetric kinds the appraisal
        // checked the module's MAC under the module key (derived from this deployer's provider
        // key and its own build), which authenticates the module's ephemeral public key, and the
        // command key comes from the exchange with it.
        let measurement = appraised.measurement();
        let key = match (&anchor, spec.tee.scheme()) {
            (Anchor::Provider(_), Scheme::Symmetric) => {
                let transcript = Transcript {
                    kind: spec.tee.name(),
                    simulated: appraised.simulated(),
                    challenge: &challenge,
                    measurement: &measurement,
                    module_pk: &public_key,
                    deployer_pk: &deployer_pk,
                };
                session_key(agreement, &public_key, &transcript)
            }
            _ => agreement.finish(
                &public_key,
                &challenge,
                &public_key,
                &deployer_pk,
                &measurement,
            ),
        }
        .map_err(|_| fail(AttestError::WeakKey))?;
        if !CommandChannel::new(&key).check_confirmation(&confirm) {
            return Err(fail(AttestError::KeyConfirmation));
        }
        Ok(ModuleRecord {
            node: node.into(),
            tee: spec.tee.name().into(),
            measurement: built.measurement.to_hex(),
            instance: u64::from_be_bytes(random_bytes::<8>()),
            key: StoredKey::new(key),
            last_command: 0,
            attested_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            simulated: appraised.simulated(),
            insecure: appraised.insecure(),
            reports_status: built.interface.entries.iter().any(|e| e == STATUS_ENTRY),
            generation: 0,
            pending_state: None,
            pending_sealed: None,
            pending_predecessor: None,
            seals_by_signer: built.interface.persistent && built.interface.seal_by_signer,
            retiring: false,
            disabling: false,
            evidence: hex::encode(aex_crypto::sha256(&[&evidence])),
            toolchain: built.toolchain.clone(),
        })
    }
}
