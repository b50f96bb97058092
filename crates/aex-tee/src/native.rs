//! The `native` backend: no TEE. Evidence states the measurement the node claims and binds the
//! module's public key to the challenge, and proves nothing.
//!
//! Invariant: `native` evidence passes appraisal only if the descriptor opted in for that
//! module (`allow_insecure`) and the node's policy accepts simulation; the result is marked
//! insecure and simulated.

use aex_crypto::{Measurement, SecretKey};

use crate::backend::{Backend, EvidenceError};
use crate::error::AppraisalError;
use crate::evidence::{report_data, Claims, Envelope, NativeBody};
use crate::kind::TeeKind;
use crate::provider::Provider;

/// The `native` platform: it has no material at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct NativePlatform;

impl Backend for NativePlatform {
    fn kind(&self) -> TeeKind {
        TeeKind::Native
    }

    fn simulated(&self) -> bool {
        true
    }

    fn platform_identity(&self) -> Vec<u8> {
        Vec::new()
    }

    fn provision(&self, _provider: &Provider, _measurement: &Measurement) -> Option<SecretKey> {
        None
    }

    fn evidence(
        &self,
        _provider: &Provider,
        measurement: &Measurement,
        challenge: &[u8; 32],
        module_pk: Option<&[u8; 32]>,
        _module_mac: Option<&[u8]>,
    ) -> Result<Vec<u8>, EvidenceError> {
        let pk = module_pk.ok_or(EvidenceError::Missing {
            kind: TeeKind::Native,
            what: "module public key",
        })?;
        let body = NativeBody {
            measurement: measurement.0,
            report_data: report_data(pk, challenge),
        };
        Ok(Envelope::new(TeeKind::Native, true, challenge, body.encode()).encode())
    }
}

/// The claims of native evidence, unproven (the caller checked `allow_insecure`).
pub(crate) fn claims(env: &Envelope) -> Result<Claims, AppraisalError> {
    let body = NativeBody::decode(&env.body).map_err(|e| AppraisalError::Malformed {
        kind: TeeKind::Native,
        reason: e.to_string(),
    })?;
    Ok(Claims {
        measurement: Measurement(body.measurement),
        // Nothing in native evidence comes from hardware.
        simulated: true,
        debug: false,
        report_data: Some(body.report_data),
        provider_key_id: None,
        tcb_status: None,
    })
}
