//! The `sgx` backend: quote-based attestation shaped like Intel SGX DCAP.
//!
//! Node side ([`SimSgxPlatform`]): the module's measurement becomes `mr_enclave`, and
//! `report_data = SHA-256(module X25519 pk || challenge) || 32 zero bytes`; the attestation key
//! signs header and report body; the simulated vendor root certifies the attestation key.
//! Deployer side: [`verify_sgx_quote`] verifies the chain up to the trust anchor — the
//! simulated root, or Intel's root through dcap-qvl with collateral and a fixed time — and
//! [`appraise`](crate::appraise) then applies the common checks to the verified report body.
//! Simulated and real Intel quotes share the layout, the parser, the quote-signature check and
//! the common checks; only the certification of the attestation key differs.

mod dcap;
mod layout;
mod sim;
mod verify;

pub use dcap::{CollateralError, DcapCollateral};
pub use layout::{
    QuoteHeader, SgxReportBody, ATTR_DEBUG, ATTR_INIT, ATTR_MODE64BIT, BODY_LEN, HEADER_LEN,
    INTEL_QE_VENDOR_ID, SIM_QE_VENDOR_ID,
};
pub use sim::{
    sim_mr_signer, InvalidRootKey, SimCert, SimRootPublicKey, SimSgxPlatform, SimSgxVendor,
    CERT_LABEL, PLATFORM_PUB_FILE, SGX_AK_CERT_FILE, SGX_AK_KEY_FILE, SGX_ROOT_KEY_FILE,
    SIM_QUOTE_LEN, SIM_VENDOR_DIR,
};
pub use verify::{verify_sgx_quote, QuoteAnchor, QuoteIssuer, VerifiedQuote};

use aex_crypto::{Measurement, SecretKey};

use crate::backend::{Backend, EvidenceError};
use crate::error::AppraisalError;
use crate::evidence::{report_data, Claims, Envelope};
use crate::kind::TeeKind;
use crate::provider::Provider;

/// The claims a quote proves once verified up to `anchor`.
pub(crate) fn claims(quote: &[u8], anchor: QuoteAnchor<'_>) -> Result<Claims, AppraisalError> {
    let v = verify_sgx_quote(quote, anchor)?;
    Ok(Claims {
        measurement: Measurement(v.body().mr_enclave),
        simulated: v.issuer() == QuoteIssuer::Simulated,
        debug: v.body().debug(),
        report_data: Some(v.body().report_data),
        provider_key_id: None,
        tcb_status: v.tcb_status().map(str::to_string),
    })
}

/// Wraps an SGX quote (simulated or Intel's) in the evidence envelope, as a node does.
pub fn sgx_evidence(quote: Vec<u8>, simulated: bool, challenge: &[u8; 32]) -> Vec<u8> {
    Envelope::new(TeeKind::Sgx, simulated, challenge, quote).encode()
}

impl Backend for SimSgxPlatform {
    fn kind(&self) -> TeeKind {
        TeeKind::Sgx
    }

    fn simulated(&self) -> bool {
        true
    }

    fn platform_identity(&self) -> Vec<u8> {
        self.root_public_key().to_sec1().to_vec()
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
            kind: TeeKind::Sgx,
            what: "module public key",
        })?;
        let body = self.report_body(measurement, &report_data(pk, challenge));
        Ok(sgx_evidence(self.quote(&body), true, challenge))
    }
}
