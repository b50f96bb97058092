//! Verification of an SGX quote's signature chain, one path for simulated and Intel quotes:
//! parse → quote signature by the attestation key (same code for both) → certification of the
//! attestation key (simulated root, or Intel's chain via dcap-qvl) → report body.
//!
//! Invariant: a [`VerifiedQuote`] is returned only if every signature up to the trust anchor
//! verified; its report body is parsed from exactly the bytes those signatures cover.

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};

use super::dcap::{verify_intel, DcapCollateral};
use super::layout::{
    QuoteHeader, SgxReportBody, INTEL_QE_VENDOR_ID, SIGNED_LEN, SIG_DATA_OFFSET, SIM_QE_VENDOR_ID,
};
use super::sim::{SimCert, SimRootPublicKey, SIM_QUOTE_LEN};
use crate::error::AppraisalError;
use crate::kind::TeeKind;

/// Who issued (certified the attestation key of) a quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuoteIssuer {
    /// aex's simulated vendor root.
    Simulated,
    /// Intel's SGX root CA.
    Intel,
}

impl QuoteIssuer {
    fn name(self) -> &'static str {
        match self {
            QuoteIssuer::Simulated => "the aex simulated vendor",
            QuoteIssuer::Intel => "Intel",
        }
    }
}

/// A quote whose signature chain verified up to the trust anchor; only
/// [`verify_sgx_quote`] creates one. It is not an appraisal: policy, measurement and binding
/// are still to be checked, which [`appraise`](crate::appraise) does.
#[derive(Debug, Clone)]
pub struct VerifiedQuote {
    header: QuoteHeader,
    body: SgxReportBody,
    issuer: QuoteIssuer,
    tcb_status: Option<String>,
    advisory_ids: Vec<String>,
}

impl VerifiedQuote {
    /// The quote header.
    pub fn header(&self) -> &QuoteHeader {
        &self.header
    }
    /// The report body the chain vouches for.
    pub fn body(&self) -> &SgxReportBody {
        &self.body
    }
    /// Who certified the attestation key.
    pub fn issuer(&self) -> QuoteIssuer {
        self.issuer
    }
    /// Intel's TCB status of the platform (Intel quotes only).
    pub fn tcb_status(&self) -> Option<&str> {
        self.tcb_status.as_deref()
    }
    /// Intel security advisories that apply to the platform (Intel quotes only).
    pub fn advisory_ids(&self) -> &[String] {
        &self.advisory_ids
    }
}

/// What a deployer trusts to certify a quote's attestation key (the SGX half of
/// [`TrustAnchor`](crate::TrustAnchor)).
#[derive(Debug, Clone, Copy)]
pub enum QuoteAnchor<'a> {
    /// The simulated vendor root (as in the node's `platform.pub`).
    SimRoot(&'a SimRootPublicKey),
    /// Intel's SGX root CA (built into dcap-qvl), with collateral for the quote's platform and
    /// the verification time (unix seconds).
    Intel {
        /// TCB info, QE identity, CRLs and their issuer chains.
        collateral: &'a DcapCollateral,
        /// Verification time; collateral must be valid at this instant.
        now_unix: u64,
    },
}

fn malformed(reason: impl Into<String>) -> AppraisalError {
    AppraisalError::Malformed {
        kind: TeeKind::Sgx,
        reason: reason.into(),
    }
}

/// Verifies `quote`'s signature chain up to `anchor`. This checks authenticity only; policy,
/// measurement and binding are [`appraise`](crate::appraise)'s common checks.
pub fn verify_sgx_quote(
    quote: &[u8],
    anchor: QuoteAnchor<'_>,
) -> Result<VerifiedQuote, AppraisalError> {
    let header =
        QuoteHeader::parse(quote).ok_or_else(|| malformed("quote shorter than its header"))?;
    let issuer = match header.qe_vendor_id {
        SIM_QE_VENDOR_ID => QuoteIssuer::Simulated,
        INTEL_QE_VENDOR_ID => QuoteIssuer::Intel,
        other => {
            return Err(malformed(format!(
                "unknown quoting enclave vendor {}",
                hex::encode(other)
            )))
        }
    };
    if header.version != 3 || header.tee_type != 0 {
        return Err(AppraisalError::UnsupportedQuote {
            version: header.version,
            tee_type: header.tee_type,
        });
    }
    if header.attestation_key_type != 2 {
        return Err(malformed(format!(
            "attestation key type {} (expected 2, ECDSA P-256)",
            header.attestation_key_type
        )));
    }
    let expected = match anchor {
        QuoteAnchor::SimRoot(_) => QuoteIssuer::Simulated,
        QuoteAnchor::Intel { .. } => QuoteIssuer::Intel,
    };
    if issuer != expected {
        return Err(AppraisalError::UnexpectedIssuer {
            expected: expected.name(),
            got: issuer.name(),
        });
    }
    if issuer == QuoteIssuer::Simulated && quote.len() != SIM_QUOTE_LEN {
        return Err(malformed(format!(
            "simulated quote is {} bytes, expected {SIM_QUOTE_LEN}",
            quote.len()
        )));
    }
    let sig_data_len = quote
        .get(SIGNED_LEN..SIG_DATA_OFFSET)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| malformed("quote has no signature data"))?;
    if usize::try_from(sig_data_len).ok() != quote.len().checked_sub(SIG_DATA_OFFSET) {
        return Err(malformed(format!(
            "signature data length {sig_data_len} does not match the quote's {} bytes",
            quote.len()
        )));
    }
    let ak = verify_quote_signature(quote)?;
    let (tcb_status, advisory_ids) = match anchor {
        QuoteAnchor::SimRoot(root) => {
            let cert = sim_cert(quote, ak)?;
            if cert.issuer != root.to_sec1() {
                return Err(AppraisalError::UntrustedRoot {
                    expected: hex::encode(&root.to_sec1()[..8]),
                    got: hex::encode(&cert.issuer[..8]),
                });
            }
            if !cert.verifies_under(root) {
                return Err(AppraisalError::BadCertificate);
            }
            (None, Vec::new())
        }
        QuoteAnchor::Intel {
            collateral,
            now_unix,
        } => {
            let report = verify_intel(quote, collateral, now_unix)?;
            let ours = SgxReportBody::parse(quote).ok_or_else(|| malformed("short body"))?;
            match &report.report {
                dcap_qvl::quote::Report::SgxEnclave(r)
                    if r.mr_enclave == ours.mr_enclave
                        && r.report_data == ours.report_data
                        && r.attributes == ours.attributes => {}
                _ => return Err(malformed("dcap-qvl and aex disagree on the report body")),
            }
            (Some(report.status), report.advisory_ids)
        }
    };
    let body = SgxReportBody::parse(quote).ok_or_else(|| malformed("quote body too short"))?;
    Ok(VerifiedQuote {
        header,
        body,
        issuer,
        tcb_status,
        advisory_ids,
    })
}

/// Checks the attestation key's ECDSA signature over header and body (DCAP v3 offsets, the
/// same for Intel and simulated quotes); returns the attestation key `x || y`.
fn verify_quote_signature(quote: &[u8]) -> Result<[u8; 64], AppraisalError> {
    let sig = quote
        .get(SIG_DATA_OFFSET..SIG_DATA_OFFSET + 64)
        .ok_or_else(|| malformed("quote has no signature"))?;
    let ak: [u8; 64] = quote
        .get(SIG_DATA_OFFSET + 64..SIG_DATA_OFFSET + 128)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| malformed("quote has no attestation key"))?;
    let mut sec1 = [0x04u8; 65];
    sec1[1..].copy_from_slice(&ak);
    let key = VerifyingKey::from_sec1_bytes(&sec1)
        .map_err(|_| malformed("attestation key is not a P-256 point"))?;
    let sig = Signature::from_slice(sig).map_err(|_| AppraisalError::BadSignature)?;
    key.verify(&quote[..SIGNED_LEN], &sig)
        .map_err(|_| AppraisalError::BadSignature)?;
    Ok(ak)
}

/// The simulated certificate after the attestation key: `issuer (33) || signature (64)`.
fn sim_cert(quote: &[u8], subject: [u8; 64]) -> Result<SimCert, AppraisalError> {
    let at = SIG_DATA_OFFSET + 128;
    let issuer = quote.get(at..at + 33).and_then(|b| b.try_into().ok());
    let signature = quote.get(at + 33..at + 97).and_then(|b| b.try_into().ok());
    match (issuer, signature) {
        (Some(issuer), Some(signature)) => Ok(SimCert {
            issuer,
            subject,
            signature,
        }),
        _ => Err(malformed("simulated quote has no certificate")),
    }
}
