//! What a client expects of a module, and what it learned once the module passed.

use aex_crypto::Measurement;
use aex_tee::sgx::{DcapCollateral, SimRootPublicKey};
use std::sync::Arc;

use aex_tee::{ProviderKey, TeeKind, TrustAnchor};

use crate::endorse::Endorsement;

/// What the client trusts for the module's platform (as the deployer does for its node).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Anchor {
    /// `sgx` in simulation: the simulated vendor root (the node's `platform.pub`).
    SimSgxRoot(SimRootPublicKey),
    /// `sgx` on Intel hardware: Intel's root, with collateral valid at `now_unix`.
    IntelDcap {
        /// TCB info, QE identity, CRLs and their issuer chains.
        collateral: Box<DcapCollateral>,
        /// Verification time (unix seconds).
        now_unix: u64,
    },
    /// `trustzone`, `sancus`: the deployer's own provider key for the node (a secret: only
    /// the deployer appraises symmetric evidence; outside clients trust its endorsement, a
    /// certificate it exported after this check).
    ProviderKey(Arc<ProviderKey>),
    /// `trustzone`, `sancus` for an outside client: the deployer's endorsement of this
    /// module instance's key, and the deployer's endorsement key the client pins
    /// ([`Endorsement`]). The client trusts the deployer here, not the platform.
    Endorsed {
        /// The pinned Ed25519 public key of the application's endorsements.
        signer: [u8; 32],
        /// The endorsement of the instance's key.
        endorsement: Box<Endorsement>,
    },
    /// `native`: nothing (accepted only with [`Policy::allow_insecure`]).
    None,
}

impl Anchor {
    /// The anchor `aex_tee::appraise` takes; `None` for an endorsement, which replaces the
    /// appraisal.
    pub(crate) fn as_trust_anchor(&self) -> Option<TrustAnchor<'_>> {
        Some(match self {
            Anchor::SimSgxRoot(k) => TrustAnchor::SimSgxRoot(k),
            Anchor::IntelDcap {
                collateral,
                now_unix,
            } => TrustAnchor::IntelDcap {
                collateral,
                now_unix: *now_unix,
            },
            Anchor::ProviderKey(k) => TrustAnchor::ProviderKey(k),
            Anchor::None => TrustAnchor::None,
            Anchor::Endorsed { .. } => return None,
        })
    }
}

/// A client's appraisal policy: the same fields the deployer appraises with
/// (`aex_tee::Expected`), less the per-attestation ones the certificate fixes.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The TEE kind of the module's node.
    pub kind: TeeKind,
    /// What the client trusts for that node.
    pub anchor: Anchor,
    /// Measurements the client accepts (any one of them). Clients pin code, never a key: a
    /// module updated to a measurement the client accepts is followed, any other refused.
    pub measurements: Vec<Measurement>,
    /// Accept simulated evidence; `false` is a hardware-only policy.
    pub allow_simulated: bool,
    /// Accept SGX enclaves in debug mode.
    pub allow_debug: bool,
    /// Accept a `native` module (no TEE at all).
    pub allow_insecure: bool,
}

/// What the client verified of the module it is talking to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The TEE kind.
    pub kind: TeeKind,
    /// The module's measurement, one the policy pins.
    pub measurement: Measurement,
    /// Whether the evidence came from a simulated root.
    pub simulated: bool,
    /// Whether the enclave runs in debug mode.
    pub debug: bool,
    /// Whether the module runs without a TEE (`native`).
    pub insecure: bool,
    /// Intel's TCB status, for Intel quotes.
    pub tcb_status: Option<String>,
    /// SHA-256 of the certificate's SubjectPublicKeyInfo: the module's TLS key fingerprint.
    pub key_fingerprint: [u8; 32],
    /// The extra public keys the evidence binds, `(name, key)`, in the module's order.
    pub extra: Vec<(String, Vec<u8>)>,
    /// The certificate (DER), for pinning by ordinary TLS clients.
    pub certificate: Vec<u8>,
    /// What the evidence binds (`aex_proto::attested_tls::binding`), for fresh evidence.
    pub binding: [u8; 32],
}

impl Verified {
    /// The deployer's endorsement of what it verified, signed with `key` (the application's
    /// endorsement key): what outside clients pin on symmetric kinds.
    pub fn endorse(&self, key: &aex_crypto::SigningIdentity) -> Endorsement {
        crate::endorse::sign(
            self.kind,
            self.measurement,
            self.simulated,
            self.binding,
            key,
        )
    }

    /// The certificate in PEM: a file ordinary TLS clients pin (`curl --cacert FILE`), as
    /// their only trust anchor for this module instance.
    pub fn certificate_pem(&self) -> String {
        use x509_cert::der::{Decode, EncodePem};
        x509_cert::Certificate::from_der(&self.certificate)
            .and_then(|c| c.to_pem(x509_cert::der::pem::LineEnding::LF))
            .unwrap_or_default()
    }

    /// The extra key named `name`, if the evidence binds one.
    pub fn extra(&self, name: &str) -> Option<&[u8]> {
        self.extra
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, k)| k.as_slice())
    }
}
