//! Arbitrary bytes as attestation evidence: appraisal returns a typed error and never passes.
#![no_main]

use aex_crypto::Measurement;
use aex_tee::{appraise, Expected, TeeKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let trusted = [3u8; 32];
    let expected = Expected {
        tee: TeeKind::Sgx,
        measurement: Measurement::of(b"module"),
        challenge: [1; 32],
        module_pk: [2; 32],
        platform_key: &trusted,
        allow_simulated: true,
    };
    assert!(appraise(data, &expected).is_err());
});
