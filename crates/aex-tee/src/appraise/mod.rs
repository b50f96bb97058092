//! Deployer-side appraisal of evidence: one entry point, [`appraise`], for every kind.
//!
//! Order of checks (each refusal is a precise [`AppraisalError`]):
//!
//! 1. the envelope decodes, names the expected kind, and the trust anchor fits the kind;
//! 2. `native`: the descriptor must allow insecure execution for this module;
//! 3. the policy: simulated evidence under a hardware-only policy is refused here, on the
//!    envelope's claim alone, *before anything else is believed*;
//! 4. the claimed challenge equals the deployer's (replays refused early);
//! 5. the kind's cryptographic check proves the claims: quote signature and certificate
//!    chain (`sgx`), MAC under the module key over the challenge and both ephemeral public
//!    keys (`trustzone`, `sancus`); `native` proves nothing;
//! 6. the common checks on the proven claims, the same code for every kind and for simulated
//!    and Intel quotes alike: simulated vs policy, debug vs policy, measurement, binding of
//!    the module's public key and the challenge.
//!
//! Invariant: an [`Appraised`] value exists only if [`appraise`] ran all of these.

use aex_crypto::Measurement;
use subtle::ConstantTimeEq;

use crate::error::AppraisalError;
use crate::evidence::{report_data, Claims, Envelope};
use crate::kind::{Scheme, TeeKind};
use crate::sgx::{DcapCollateral, QuoteAnchor, SimRootPublicKey};
use crate::symmetric::{ProviderKey, Transcript};

/// What the deployer trusts for a node: one variant per attestation scheme.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum TrustAnchor<'a> {
    /// `sgx` in simulation: the simulated vendor root (as in the node's `platform.pub`).
    SimSgxRoot(&'a SimRootPublicKey),
    /// `sgx` on Intel hardware: Intel's SGX root CA (built into dcap-qvl), with collateral
    /// for the quote's platform and the verification time (unix seconds).
    IntelDcap {
        /// TCB info, QE identity, CRLs and their issuer chains.
        collateral: &'a DcapCollateral,
        /// Verification time; collateral must be valid at this instant.
        now_unix: u64,
    },
    /// `trustzone`, `sancus`: the deployer's own provider key for the node, which the node's
    /// operator gave it.
    ProviderKey(&'a ProviderKey),
    /// `native`: nothing can be trusted.
    None,
}

impl TrustAnchor<'_> {
    fn name(&self) -> &'static str {
        match self {
            TrustAnchor::SimSgxRoot(_) => "simulated SGX root",
            TrustAnchor::IntelDcap { .. } => "Intel DCAP",
            TrustAnchor::ProviderKey(_) => "provider key",
            TrustAnchor::None => "no",
        }
    }

    fn fits(&self, kind: TeeKind) -> bool {
        matches!(
            (kind.scheme(), self),
            (
                Scheme::Quote,
                TrustAnchor::SimSgxRoot(_) | TrustAnchor::IntelDcap { .. }
            ) | (Scheme::Symmetric, TrustAnchor::ProviderKey(_))
                | (Scheme::Insecure, TrustAnchor::None)
        )
    }
}

/// What the deployer expects of a module's evidence, and its policy.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// The TEE kind the descriptor names for the node.
    pub kind: TeeKind,
    /// What the deployer trusts for that node.
    pub anchor: TrustAnchor<'a>,
    /// Measurement of the deployer's own build.
    pub measurement: Measurement,
    /// The fresh challenge the deployer sent for this attestation.
    pub challenge: [u8; 32],
    /// The module's X25519 public key, as the node relayed it (required).
    pub module_pk: Option<[u8; 32]>,
    /// The deployer's ephemeral X25519 public key of this attestation (required for
    /// `trustzone` and `sancus`, whose MAC covers it; ignored otherwise).
    pub deployer_pk: Option<[u8; 32]>,
    /// Accept simulated evidence; `false` is a hardware-only policy.
    pub allow_simulated: bool,
    /// Accept enclaves in debug mode (`sgx`).
    pub allow_debug: bool,
    /// The descriptor opted in to running this module without a TEE (`native`).
    pub allow_insecure: bool,
}

/// Proof that evidence passed appraisal; only [`appraise`] creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appraised {
    kind: TeeKind,
    measurement: Measurement,
    simulated: bool,
    debug: bool,
    insecure: bool,
    provider_key_id: Option<[u8; 8]>,
    tcb_status: Option<String>,
}

impl Appraised {
    /// The kind that was appraised.
    pub fn kind(&self) -> TeeKind {
        self.kind
    }
    /// The measurement that was checked (the deployer's own build's).
    pub fn measurement(&self) -> Measurement {
        self.measurement
    }
    /// Whether the evidence came from a simulated root (always true for `native`).
    pub fn simulated(&self) -> bool {
        self.simulated
    }
    /// Whether the enclave runs in debug mode (only if the policy allowed it).
    pub fn debug(&self) -> bool {
        self.debug
    }
    /// Whether the module runs without any TEE (`native`, only if the descriptor opted in).
    pub fn insecure(&self) -> bool {
        self.insecure
    }
    /// The id of the provider key the module key derives from (`trustzone`, `sancus`).
    pub fn provider_key_id(&self) -> Option<[u8; 8]> {
        self.provider_key_id
    }
    /// Intel's TCB status of the platform (e.g. `UpToDate`), for Intel quotes. Reported, not
    /// enforced: `Revoked` is always refused by dcap-qvl, other statuses are the owner's call.
    pub fn tcb_status(&self) -> Option<&str> {
        self.tcb_status.as_deref()
    }
}

/// Appraises `evidence` from a node of kind `expected.kind`.
pub fn appraise(evidence: &[u8], expected: &Expected<'_>) -> Result<Appraised, AppraisalError> {
    let exp = expected;
    let malformed = |reason: String| AppraisalError::Malformed {
        kind: exp.kind,
        reason,
    };
    let env = Envelope::decode(evidence).map_err(|e| malformed(e.to_string()))?;
    if env.kind != exp.kind.name() {
        // The name is the peer's: bounded and escaped before it reaches a log.
        let got: String = env.kind.chars().take(32).collect();
        return Err(AppraisalError::WrongKind {
            expected: exp.kind,
            got: got.escape_debug().to_string(),
        });
    }
    if !exp.anchor.fits(exp.kind) {
        return Err(AppraisalError::AnchorKindMismatch {
            kind: exp.kind,
            anchor: exp.anchor.name(),
        });
    }
    let scheme = exp.kind.scheme();
    if exp.module_pk.is_none() {
        return Err(AppraisalError::MissingModuleKey { kind: exp.kind });
    }
    if scheme == Scheme::Symmetric && exp.deployer_pk.is_none() {
        return Err(AppraisalError::MissingDeployerKey { kind: exp.kind });
    }
    if scheme == Scheme::Insecure && !exp.allow_insecure {
        return Err(AppraisalError::InsecureRefused);
    }
    // Before anything else is believed.
    check_simulated(env.simulated, exp)?;
    if !bool::from(env.challenge.ct_eq(&exp.challenge)) {
        return Err(AppraisalError::StaleChallenge);
    }
    let mismatch = || AppraisalError::AnchorKindMismatch {
        kind: exp.kind,
        anchor: exp.anchor.name(),
    };
    let claims = match (scheme, exp.anchor) {
        (Scheme::Quote, TrustAnchor::SimSgxRoot(root)) => {
            crate::sgx::claims(&env.body, QuoteAnchor::SimRoot(root))?
        }
        (
            Scheme::Quote,
            TrustAnchor::IntelDcap {
                collateral,
                now_unix,
            },
        ) => crate::sgx::claims(
            &env.body,
            QuoteAnchor::Intel {
                collateral,
                now_unix,
            },
        )?,
        (Scheme::Symmetric, TrustAnchor::ProviderKey(key)) => {
            let kind = exp.kind.symmetric().ok_or_else(mismatch)?;
            let module_pk = exp
                .module_pk
                .as_ref()
                .ok_or(AppraisalError::MissingModuleKey { kind: exp.kind })?;
            let deployer_pk = exp
                .deployer_pk
                .as_ref()
                .ok_or(AppraisalError::MissingDeployerKey { kind: exp.kind })?;
            let transcript = Transcript {
                kind: kind.name(),
                simulated: env.simulated,
                challenge: &exp.challenge,
                measurement: &exp.measurement,
                module_pk,
                deployer_pk,
            };
            crate::symmetric::claims(&env, kind, key, &transcript)?
        }
        (Scheme::Insecure, _) => crate::native::claims(&env)?,
        _ => return Err(mismatch()),
    };
    common_checks(&claims, exp)?;
    if claims.simulated != env.simulated {
        return Err(malformed(format!(
            "the envelope claims simulated = {}, the evidence proves simulated = {}",
            env.simulated, claims.simulated
        )));
    }
    Ok(Appraised {
        kind: exp.kind,
        measurement: claims.measurement,
        simulated: claims.simulated,
        debug: claims.debug,
        insecure: scheme == Scheme::Insecure,
        provider_key_id: claims.provider_key_id,
        tcb_status: claims.tcb_status,
    })
}

fn check_simulated(simulated: bool, exp: &Expected<'_>) -> Result<(), AppraisalError> {
    if simulated && !exp.allow_simulated {
        return Err(AppraisalError::SimulatedRefused { kind: exp.kind });
    }
    Ok(())
}

/// The checks every kind shares, on claims its cryptographic check proved.
pub(crate) fn common_checks(claims: &Claims, exp: &Expected<'_>) -> Result<(), AppraisalError> {
    check_simulated(claims.simulated, exp)?;
    if claims.debug && !exp.allow_debug {
        return Err(AppraisalError::DebugRefused { kind: exp.kind });
    }
    if claims.measurement != exp.measurement {
        return Err(AppraisalError::MeasurementMismatch {
            expected: exp.measurement,
            got: claims.measurement,
        });
    }
    if let Some(rd) = &claims.report_data {
        let pk = exp
            .module_pk
            .ok_or(AppraisalError::MissingModuleKey { kind: exp.kind })?;
        if !bool::from(rd.ct_eq(&report_data(&pk, &exp.challenge))) {
            return Err(AppraisalError::KeyNotBound);
        }
    }
    Ok(())
}
