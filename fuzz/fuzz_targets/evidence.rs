//! Arbitrary bytes as attestation evidence of every TEE kind: appraisal returns a typed error
//! and never passes.
#![no_main]

use aex_crypto::{Measurement, SecretKey};
use aex_tee::sgx::SimRootPublicKey;
use aex_tee::{appraise, Expected, ProviderKey, TeeKind, TrustAnchor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let root = SimRootPublicKey::from_hex(
        "036b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296",
    )
    .expect("the P-256 generator is a valid point");
    let provider = ProviderKey::new(SecretKey::from_bytes([4; 32]));
    for (kind, anchor) in [
        (TeeKind::Sgx, TrustAnchor::SimSgxRoot(&root)),
        (TeeKind::TrustZone, TrustAnchor::ProviderKey(&provider)),
        (TeeKind::Sancus, TrustAnchor::ProviderKey(&provider)),
        (TeeKind::Native, TrustAnchor::None),
    ] {
        let expected = Expected {
            kind,
            anchor,
            measurement: Measurement::of(b"module"),
            challenge: [1; 32],
            module_pk: Some([2; 32]),
            deployer_pk: Some([3; 32]),
            allow_simulated: true,
            allow_debug: true,
            allow_insecure: false,
        };
        assert!(appraise(data, &expected).is_err());
    }
});
