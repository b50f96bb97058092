//! Why evidence was refused: one precise variant per check, with what was expected and what
//! the evidence said.
//!
//! Invariant: no variant carries key material; key ids and root keys appear as hex prefixes.

use aex_crypto::Measurement;

use crate::kind::TeeKind;

/// Why evidence was refused.
///
/// By fault: `Malformed`, `WrongKind`, `UnsupportedQuote` are incompatible or broken peers;
/// `SimulatedRefused`, `DebugRefused`, `InsecureRefused` are policy refusals; the signature,
/// certificate, MAC, collateral, freshness, measurement and binding variants mean the evidence
/// is forged, replayed, stale or for other code; `AnchorKindMismatch` and `MissingModuleKey`
/// are misuse by the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppraisalError {
    /// The evidence bytes are not evidence of the expected kind.
    #[error("malformed {kind} evidence: {reason}")]
    Malformed {
        /// Expected kind.
        kind: TeeKind,
        /// Decoder detail.
        reason: String,
    },
    /// The evidence is of another TEE kind than the descriptor names.
    #[error("evidence is for TEE kind `{got}`, but the descriptor says `{expected}`")]
    WrongKind {
        /// Expected kind.
        expected: TeeKind,
        /// Kind named in the evidence.
        got: String,
    },
    /// The policy for this node refuses simulated evidence (checked before anything else).
    #[error("{kind} evidence is simulated, but the policy for this node requires hardware")]
    SimulatedRefused {
        /// Kind of the evidence.
        kind: TeeKind,
    },
    /// A `native` module, and the descriptor did not opt in to insecure execution for it.
    #[error(
        "the module runs on a `native` node (no TEE at all); refused because the descriptor \
         does not allow insecure execution for this module"
    )]
    InsecureRefused,
    /// The enclave runs in debug mode (its memory is readable), and the policy is production.
    #[error("the enclave runs in debug mode (attributes flag DEBUG), which the policy refuses")]
    DebugRefused {
        /// Kind of the evidence.
        kind: TeeKind,
    },
    /// The evidence answers another challenge: replayed or stale.
    #[error("evidence answers another challenge than this deployer's (replayed or stale)")]
    StaleChallenge,
    /// The module is not running the code the deployer built.
    #[error("measurement mismatch: expected {expected} (deployer's build), evidence says {got}")]
    MeasurementMismatch {
        /// Deployer's measurement.
        expected: Measurement,
        /// Evidence's measurement.
        got: Measurement,
    },
    /// The report data is not `SHA-256(module_pk || challenge) || 0^32` for the public key the
    /// module presented and this deployer's challenge.
    #[error("evidence does not bind the module's public key to this deployer's challenge")]
    KeyNotBound,
    /// The quote's format is one aex does not appraise (e.g. a TDX quote).
    #[error("unsupported quote: version {version}, TEE type {tee_type:#x} (aex appraises SGX quotes, version 3, TEE type 0)")]
    UnsupportedQuote {
        /// Quote version.
        version: u16,
        /// TEE type (0 SGX, 0x81 TDX).
        tee_type: u32,
    },
    /// The quote comes from another issuer than the trust anchor (simulated vs Intel).
    #[error("the quote is issued by {got}, but the trust anchor for this node is {expected}")]
    UnexpectedIssuer {
        /// Issuer the anchor trusts.
        expected: &'static str,
        /// Issuer of the quote.
        got: &'static str,
    },
    /// The quote's signature does not verify under its attestation key (flipped bytes).
    #[error("the quote's signature does not verify under its attestation key")]
    BadSignature,
    /// The simulated attestation key is certified by another root than the trusted one.
    #[error("the attestation key is certified by root {got}, not by the trusted root {expected}")]
    UntrustedRoot {
        /// Trusted root, hex prefix.
        expected: String,
        /// Root named in the certificate, hex prefix.
        got: String,
    },
    /// The attestation key's certificate does not verify under the trusted root.
    #[error("the attestation key's certificate does not verify under the trusted root")]
    BadCertificate,
    /// Intel collateral (TCB info or QE identity) is past its `nextUpdate`.
    #[error(
        "Intel collateral expired: {what} nextUpdate {next_update}, verification time {now} (unix)"
    )]
    CollateralExpired {
        /// Which collateral item.
        what: &'static str,
        /// Its `nextUpdate` (RFC 3339).
        next_update: String,
        /// Verification time, unix seconds.
        now: u64,
    },
    /// Intel collateral is issued after the verification time.
    #[error("Intel collateral not yet valid: {what} issued {issue_date}, verification time {now} (unix)")]
    CollateralNotYetValid {
        /// Which collateral item.
        what: &'static str,
        /// Its `issueDate` (RFC 3339).
        issue_date: String,
        /// Verification time, unix seconds.
        now: u64,
    },
    /// Intel's chain (PCK certificates, CRLs, QE report, TCB info, QE identity) refused the
    /// quote; the reason is dcap-qvl's.
    #[error("Intel DCAP verification failed: {reason}")]
    DcapRejected {
        /// dcap-qvl's error chain.
        reason: String,
    },
    /// The node derived the module's key under another provider key than the one the
    /// deployer holds (from a key file, or handed to a governor): it is another stakeholder's,
    /// another node's, or stale.
    #[error(
        "the node provisioned this module under provider key {got}, but the deployer's provider \
         key has id {expected}: it is not this deployer identity's provider key on this node"
    )]
    UntrustedProviderKey {
        /// The deployer's key id (hex).
        expected: String,
        /// The evidence's key id (hex).
        got: String,
    },
    /// The attestation MAC does not verify under the module key derived from the deployer's
    /// provider key and its own build's measurement, over this attestation's challenge and
    /// public keys.
    #[error(
        "the {kind} attestation MAC does not verify under the module key of the deployer's build"
    )]
    BadMac {
        /// Kind of the evidence.
        kind: TeeKind,
    },
    /// Misuse: the trust anchor given does not fit the kind.
    #[error("misuse: a {anchor} trust anchor cannot appraise {kind} evidence")]
    AnchorKindMismatch {
        /// Expected kind.
        kind: TeeKind,
        /// The anchor given.
        anchor: &'static str,
    },
    /// Misuse: evidence binds a module public key, and none was given.
    #[error("misuse: {kind} evidence binds a module public key, and `Expected` has none")]
    MissingModuleKey {
        /// Expected kind.
        kind: TeeKind,
    },
    /// Misuse: symmetric evidence binds the deployer's public key, and none was given.
    #[error("misuse: {kind} evidence binds the deployer's public key, and `Expected` has none")]
    MissingDeployerKey {
        /// Expected kind.
        kind: TeeKind,
    },
}
