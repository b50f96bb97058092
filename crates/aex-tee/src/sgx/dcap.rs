//! Intel DCAP: collateral, its validity window, and the call into dcap-qvl's offline verifier.
//!
//! dcap-qvl checks Intel's whole chain: the PCK certificate chain up to Intel's SGX root CA and
//! the CRLs, the quoting enclave's report and its binding of the attestation key, TCB info and
//! QE identity signatures and validity at `now`, and the platform's TCB level. aex calls it
//! with the RustCrypto backend and `allow_debug(true)`: the debug policy is aex's own common
//! check, the same for simulated and Intel quotes.
//!
//! Invariant: the collateral's dates are checked here first only to give a precise error;
//! dcap-qvl checks them again, so this pre-check can refuse more, never accept more.

use dcap_qvl::verify::QuoteVerifier;
use dcap_qvl::QuoteCollateralV3;

use crate::error::AppraisalError;

/// Collateral for Intel quotes, in the JSON form of Intel's PCS / PCCS as dcap-qvl reads it
/// (`pck_crl_issuer_chain`, `root_ca_crl`, `pck_crl`, `tcb_info_issuer_chain`, `tcb_info`,
/// `tcb_info_signature`, `qe_identity_issuer_chain`, `qe_identity`, `qe_identity_signature`).
#[derive(Debug, Clone)]
pub struct DcapCollateral {
    inner: QuoteCollateralV3,
    windows: [Window; 2],
}

#[derive(Debug, Clone)]
struct Window {
    what: &'static str,
    issue: (String, u64),
    next: (String, u64),
}

/// Collateral JSON that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Intel DCAP collateral: {reason}")]
pub struct CollateralError {
    /// What is wrong.
    pub reason: String,
}

fn bad(reason: impl Into<String>) -> CollateralError {
    CollateralError {
        reason: reason.into(),
    }
}

impl DcapCollateral {
    /// Parses collateral JSON.
    pub fn from_json(json: &[u8]) -> Result<Self, CollateralError> {
        let inner: QuoteCollateralV3 =
            serde_json::from_slice(json).map_err(|e| bad(e.to_string()))?;
        let window = |what: &'static str, body: &str| -> Result<Window, CollateralError> {
            let v: serde_json::Value =
                serde_json::from_str(body).map_err(|e| bad(format!("{what}: {e}")))?;
            let date = |field: &str| -> Result<(String, u64), CollateralError> {
                let s = v
                    .get(field)
                    .and_then(|d| d.as_str())
                    .ok_or_else(|| bad(format!("{what} has no `{field}`")))?;
                let t = rfc3339_unix(s)
                    .ok_or_else(|| bad(format!("{what} `{field}` is not RFC 3339: {s}")))?;
                Ok((s.to_string(), t))
            };
            Ok(Window {
                what,
                issue: date("issueDate")?,
                next: date("nextUpdate")?,
            })
        };
        let windows = [
            window("TCB info", &inner.tcb_info)?,
            window("QE identity", &inner.qe_identity)?,
        ];
        Ok(DcapCollateral { inner, windows })
    }

    /// The instant (unix seconds) from which every dated item is issued.
    pub fn valid_from(&self) -> u64 {
        self.windows.iter().map(|w| w.issue.1).max().unwrap_or(0)
    }

    /// The earliest `nextUpdate` (unix seconds) of TCB info and QE identity.
    pub fn valid_until(&self) -> u64 {
        self.windows.iter().map(|w| w.next.1).min().unwrap_or(0)
    }

    fn check_time(&self, now: u64) -> Result<(), AppraisalError> {
        for w in &self.windows {
            if now < w.issue.1 {
                return Err(AppraisalError::CollateralNotYetValid {
                    what: w.what,
                    issue_date: w.issue.0.clone(),
                    now,
                });
            }
            if now > w.next.1 {
                return Err(AppraisalError::CollateralExpired {
                    what: w.what,
                    next_update: w.next.0.clone(),
                    now,
                });
            }
        }
        Ok(())
    }
}

/// Runs Intel's chain over `quote`; returns the TCB status on success.
pub(crate) fn verify_intel(
    quote: &[u8],
    collateral: &DcapCollateral,
    now: u64,
) -> Result<dcap_qvl::verify::VerifiedReport, AppraisalError> {
    collateral.check_time(now)?;
    QuoteVerifier::new_prod()
        .with_config::<dcap_qvl::configs::RustCryptoConfig>()
        .allow_debug(true)
        .verify(quote, &collateral.inner, now)
        .map_err(|e| AppraisalError::DcapRejected {
            reason: format!("{e:#}"),
        })
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (UTC, as Intel writes it) to unix seconds.
fn rfc3339_unix(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |r: core::ops::Range<usize>| -> Option<u64> {
        let part = b.get(r)?;
        part.iter().try_fold(0u64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0'))
        })
    };
    let sep = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let rest = b.get(19..)?;
    let frac_ok = match rest {
        [b'Z'] => true,
        [b'.', digits @ .., b'Z'] => !digits.is_empty() && digits.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !frac_ok || !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60
    {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm), for years >= 1970.
    let y = if mo <= 2 { y.checked_sub(1)? } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_answers() {
        assert_eq!(rfc3339_unix("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_unix("2025-07-01T00:00:00Z"), Some(1_751_328_000));
        assert_eq!(rfc3339_unix("2025-07-19T10:01:18Z"), Some(1_752_919_278));
        assert_eq!(rfc3339_unix("2024-02-29T12:00:00.5Z"), Some(1_709_208_000));
        for bad in [
            "",
            "2025-07-19",
            "2025-07-19T10:01:18",
            "2025-13-01T00:00:00Z",
            "2025-07-19T10:01:18+00:00",
            "2025-07-19T10:01:18.Z",
            "20a5-07-19T10:01:18Z",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(rfc3339_unix(bad), None, "{bad}");
        }
    }

    #[test]
    fn bad_collateral_is_a_clear_error() {
        assert!(DcapCollateral::from_json(b"{}").is_err());
        assert!(DcapCollateral::from_json(b"not json").is_err());
    }
}
