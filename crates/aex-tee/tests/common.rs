//! Helpers shared by the test modules: a node of each kind, and the deployer's expectations.

use aex_crypto::Measurement;
use aex_tee::sgx::{SimRootPublicKey, SimSgxVendor};
use aex_tee::symmetric::{attest_mac, Transcript};
use aex_tee::{
    Backend, Expected, NativePlatform, Provider, ProviderKey, SimSgxPlatform, SimSymmetricPlatform,
    SymmetricKind, TeeKind, TrustAnchor,
};

pub const CHALLENGE: [u8; 32] = [0xc4; 32];
pub const OLD_CHALLENGE: [u8; 32] = [0x0d; 32];
pub const MODULE_PK: [u8; 32] = [0x5a; 32];
pub const DEPLOYER_PK: [u8; 32] = [0x6b; 32];
/// The stakeholder that loads the test modules (its deployer identity's public key).
pub const FARM: Provider = Provider([0xfa; 32]);
/// Another stakeholder on the same nodes.
pub const INSIGHT: Provider = Provider([0x15; 32]);

pub fn code() -> Measurement {
    Measurement::of(b"module binary")
}

/// A policy that accepts simulation (and nothing else extra).
pub fn expected<'a>(kind: TeeKind, anchor: TrustAnchor<'a>) -> Expected<'a> {
    Expected {
        kind,
        anchor,
        measurement: code(),
        challenge: CHALLENGE,
        module_pk: Some(MODULE_PK),
        deployer_pk: Some(DEPLOYER_PK),
        allow_simulated: true,
        allow_debug: false,
        allow_insecure: false,
    }
}

/// A simulated sgx node and the root a deployer trusts for it.
pub struct SgxNode {
    pub platform: SimSgxPlatform,
    pub root: SimRootPublicKey,
}

pub fn sgx_node() -> SgxNode {
    let vendor = SimSgxVendor::generate();
    SgxNode {
        root: vendor.public_key().clone(),
        platform: SimSgxPlatform::provisioned_by(&vendor),
    }
}

impl SgxNode {
    pub fn evidence(&self, m: &Measurement, challenge: &[u8; 32]) -> Vec<u8> {
        self.platform
            .evidence(&FARM, m, challenge, Some(&MODULE_PK), None)
            .unwrap()
    }
}

/// A simulated symmetric node, and the provider key its operator exported for [`FARM`].
pub struct SymNode {
    pub platform: SimSymmetricPlatform,
    pub provider_key: ProviderKey,
}

pub fn sym_node(kind: SymmetricKind) -> SymNode {
    let platform = SimSymmetricPlatform::from_node_key(kind, aex_crypto::SecretKey::random());
    SymNode {
        provider_key: platform.provider_key(&FARM),
        platform,
    }
}

/// The public values of a symmetric attestation of `m` answering `challenge` on `kind`.
pub fn transcript<'a>(
    kind: SymmetricKind,
    m: &'a Measurement,
    challenge: &'a [u8; 32],
) -> Transcript<'a> {
    Transcript {
        kind: kind.name(),
        simulated: true,
        challenge,
        measurement: m,
        module_pk: &MODULE_PK,
        deployer_pk: &DEPLOYER_PK,
    }
}

impl SymNode {
    /// What happens on the node: the platform provisions the module (whose code is `m`)
    /// loaded by [`FARM`], the module answers `challenge` with its MAC, the node wraps it.
    pub fn evidence(&self, m: &Measurement, challenge: &[u8; 32]) -> Vec<u8> {
        let module_key = self.platform.provision(&FARM, m).unwrap();
        let kind = self.platform.symmetric_kind();
        let mac = attest_mac(&module_key, &transcript(kind, m, challenge));
        self.platform
            .evidence(&FARM, m, challenge, Some(&MODULE_PK), Some(&mac))
            .unwrap()
    }
}

pub fn native_evidence(m: &Measurement, challenge: &[u8; 32], pk: &[u8; 32]) -> Vec<u8> {
    NativePlatform
        .evidence(&FARM, m, challenge, Some(pk), None)
        .unwrap()
}

/// Flips one bit of `bytes` at `i`.
pub fn flip(bytes: &[u8], i: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[i] ^= 1;
    b
}

/// The byte offset of `needle` in `hay` (to flip bytes inside an envelope's body).
pub fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present")
}
