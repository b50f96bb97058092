//! Deployer-side appraisal of evidence.
//!
//! Invariant: an [`Appraised`] value exists only if [`appraise`] checked, against the
//! deployer's own expectations, the TEE kind, the platform signature, the measurement, the
//! challenge and the binding of the module's public key.

use aex_crypto::{sha256, Measurement};
use subtle_free::ct_eq32;

use crate::kind::TeeKind;
use crate::sim::SimQuote;

/// What the deployer expects of a module's evidence.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// The TEE kind the descriptor names for the node.
    pub tee: TeeKind,
    /// Measurement of the deployer's own build.
    pub measurement: Measurement,
    /// The challenge the deployer sent for this attestation.
    pub challenge: [u8; 32],
    /// The module public key returned with the evidence.
    pub module_pk: [u8; 32],
    /// The platform identity the descriptor trusts for this node.
    pub platform_key: &'a [u8],
    /// Whether the policy accepts simulated evidence.
    pub allow_simulated: bool,
}

/// Proof that evidence passed appraisal; only [`appraise`] creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appraised {
    measurement: Measurement,
    simulated: bool,
}

impl Appraised {
    /// The measurement that was checked.
    pub fn measurement(&self) -> Measurement {
        self.measurement
    }

    /// Whether the evidence came from a simulated root.
    pub fn simulated(&self) -> bool {
        self.simulated
    }
}

/// Why evidence was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppraisalError {
    /// The evidence bytes are not evidence of the expected kind.
    #[error("malformed {tee} evidence: {reason}")]
    Malformed {
        /// Expected kind.
        tee: TeeKind,
        /// Decoder detail.
        reason: String,
    },
    /// The evidence is of another TEE kind than the descriptor names.
    #[error("evidence is for TEE kind `{got}`, but the descriptor says `{expected}`")]
    WrongKind {
        /// Expected kind.
        expected: TeeKind,
        /// Kind in the evidence.
        got: String,
    },
    /// Signed by a platform key the deployer does not trust.
    #[error(
        "evidence is signed by platform key {got}, not by the trusted platform key {expected}"
    )]
    UntrustedPlatform {
        /// Trusted key, hex prefix.
        expected: String,
        /// Key in the evidence, hex prefix.
        got: String,
    },
    /// The signature does not verify.
    #[error("evidence signature does not verify under the trusted platform key")]
    BadSignature,
    /// The module is not running the code the deployer built.
    #[error("measurement mismatch: expected {expected} (deployer's build), evidence says {got}")]
    MeasurementMismatch {
        /// Deployer's measurement.
        expected: Measurement,
        /// Evidence's measurement.
        got: Measurement,
    },
    /// The evidence answers another challenge: replayed or stale.
    #[error("evidence answers another challenge (replayed or stale evidence)")]
    StaleChallenge,
    /// The evidence does not bind the public key the module presented.
    #[error("evidence binds a different key-agreement public key than the module presented")]
    KeyNotBound,
    /// The policy refuses simulated evidence.
    #[error("evidence is simulated, but the policy for this node requires hardware")]
    SimulatedRefused,
}

/// Appraises `evidence` produced by a node of kind `expected.tee`.
pub fn appraise(evidence: &[u8], expected: &Expected<'_>) -> Result<Appraised, AppraisalError> {
    match expected.tee {
        TeeKind::Sgx => appraise_sim_quote(evidence, expected),
    }
}

fn appraise_sim_quote(evidence: &[u8], exp: &Expected<'_>) -> Result<Appraised, AppraisalError> {
    let quote: SimQuote = match postcard::take_from_bytes(evidence) {
        Ok((q, [])) => q,
        Ok((_, rest)) => {
            return Err(AppraisalError::Malformed {
                tee: exp.tee,
                reason: format!("{} trailing bytes", rest.len()),
            })
        }
        Err(e) => {
            return Err(AppraisalError::Malformed {
                tee: exp.tee,
                reason: e.to_string(),
            })
        }
    };
    if quote.tee != exp.tee.name() {
        return Err(AppraisalError::WrongKind {
            expected: exp.tee,
            got: quote.tee,
        });
    }
    if quote.simulated && !exp.allow_simulated {
        return Err(AppraisalError::SimulatedRefused);
    }
    let trusted: [u8; 32] =
        exp.platform_key
            .try_into()
            .map_err(|_| AppraisalError::UntrustedPlatform {
                expected: hex::encode(exp.platform_key),
                got: hex::encode(&quote.platform_key[..8]),
            })?;
    if !ct_eq32(&trusted, &quote.platform_key) {
        return Err(AppraisalError::UntrustedPlatform {
            expected: hex::encode(&trusted[..8]),
            got: hex::encode(&quote.platform_key[..8]),
        });
    }
    if !quote.signature_valid(&trusted) {
        return Err(AppraisalError::BadSignature);
    }
    if !ct_eq32(&quote.challenge, &exp.challenge) {
        return Err(AppraisalError::StaleChallenge);
    }
    if quote.measurement != exp.measurement.0 {
        return Err(AppraisalError::MeasurementMismatch {
            expected: exp.measurement,
            got: Measurement(quote.measurement),
        });
    }
    if !ct_eq32(&quote.report_data, &sha256(&[&exp.module_pk])) {
        return Err(AppraisalError::KeyNotBound);
    }
    Ok(Appraised {
        measurement: exp.measurement,
        simulated: quote.simulated,
    })
}

mod subtle_free {
    /// Constant-time equality of two 32-byte values.
    pub fn ct_eq32(a: &[u8; 32], b: &[u8; 32]) -> bool {
        use subtle::ConstantTimeEq;
        a.ct_eq(b).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimPlatformKey;

    struct Fixture {
        _dir: tempfile::TempDir,
        key: SimPlatformKey,
        m: Measurement,
        pk: [u8; 32],
        ch: [u8; 32],
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let key = SimPlatformKey::load_or_create(dir.path()).unwrap();
        Fixture {
            _dir: dir,
            key,
            m: Measurement::of(b"module code"),
            pk: [7; 32],
            ch: [9; 32],
        }
    }

    fn expected<'a>(f: &Fixture, trusted: &'a [u8]) -> Expected<'a> {
        Expected {
            tee: TeeKind::Sgx,
            measurement: f.m,
            challenge: f.ch,
            module_pk: f.pk,
            platform_key: trusted,
            allow_simulated: true,
        }
    }

    #[test]
    fn genuine_evidence_passes() {
        let f = fixture();
        let trusted = f.key.public_key();
        let ev = f.key.quote(&f.m, &f.pk, &f.ch).encode();
        let ok = appraise(&ev, &expected(&f, &trusted)).unwrap();
        assert_eq!(ok.measurement(), f.m);
        assert!(ok.simulated());
    }

    #[test]
    fn each_forgery_is_refused_precisely() {
        let f = fixture();
        let trusted = f.key.public_key();
        let exp = expected(&f, &trusted);

        // Evidence for another measurement.
        let ev = f
            .key
            .quote(&Measurement::of(b"evil"), &f.pk, &f.ch)
            .encode();
        assert!(matches!(
            appraise(&ev, &exp),
            Err(AppraisalError::MeasurementMismatch { .. })
        ));

        // Evidence replayed under an old challenge.
        let ev = f.key.quote(&f.m, &f.pk, &[1; 32]).encode();
        assert_eq!(appraise(&ev, &exp), Err(AppraisalError::StaleChallenge));

        // Evidence binding another public key.
        let ev = f.key.quote(&f.m, &[8; 32], &f.ch).encode();
        assert_eq!(appraise(&ev, &exp), Err(AppraisalError::KeyNotBound));

        // Evidence signed by an untrusted platform.
        let other = fixture();
        let ev = other.key.quote(&f.m, &f.pk, &f.ch).encode();
        assert!(matches!(
            appraise(&ev, &exp),
            Err(AppraisalError::UntrustedPlatform { .. })
        ));

        // Evidence whose embedded platform key is swapped for the trusted one.
        let mut q = other.key.quote(&f.m, &f.pk, &f.ch);
        q.platform_key = trusted;
        assert_eq!(
            appraise(&q.encode(), &exp),
            Err(AppraisalError::BadSignature)
        );

        // A flipped measurement bit breaks the signature before anything else is believed.
        let mut q = f.key.quote(&f.m, &f.pk, &f.ch);
        q.measurement[0] ^= 1;
        assert_eq!(
            appraise(&q.encode(), &exp),
            Err(AppraisalError::BadSignature)
        );

        // Simulated evidence under a hardware-only policy.
        let ev = f.key.quote(&f.m, &f.pk, &f.ch).encode();
        let hw = Expected {
            allow_simulated: false,
            ..exp.clone()
        };
        assert_eq!(appraise(&ev, &hw), Err(AppraisalError::SimulatedRefused));

        // Garbage.
        assert!(matches!(
            appraise(b"\x01\x02", &exp),
            Err(AppraisalError::Malformed { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_evidence_never_panics_never_passes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let f = fixture();
            let trusted = f.key.public_key();
            proptest::prop_assert!(appraise(&bytes, &expected(&f, &trusted)).is_err());
        }
    }
}
