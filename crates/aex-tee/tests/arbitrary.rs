//! Properties for every kind: arbitrary bytes, arbitrary bodies in a well-formed envelope, and
//! any single bit flip of genuine evidence never panic and never pass.

use aex_tee::{appraise, AppraisalError, Expected, SymmetricKind, TeeKind, TrustAnchor};
use proptest::prelude::*;

use crate::common::*;

/// The envelope around `body`, written out by hand from the documented layout (postcard).
fn envelope(kind: TeeKind, simulated: bool, body: &[u8]) -> Vec<u8> {
    let mut out = vec![1, kind.name().len() as u8];
    out.extend_from_slice(kind.name().as_bytes());
    out.push(u8::from(simulated));
    out.extend_from_slice(&CHALLENGE);
    let mut len = body.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(body);
    out
}

struct Fixture {
    sgx: SgxNode,
    tz: SymNode,
    sancus: SymNode,
}

impl Fixture {
    /// One fixture for every case: key generation is slow in debug builds.
    fn get() -> &'static Fixture {
        static F: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
        F.get_or_init(Fixture::new)
    }

    fn new() -> Self {
        Fixture {
            sgx: sgx_node(),
            tz: sym_node(SymmetricKind::TrustZone),
            sancus: sym_node(SymmetricKind::Sancus),
        }
    }

    /// A maximally permissive policy, so only the cryptography can refuse.
    fn permissive(&self, kind: TeeKind) -> Expected<'_> {
        let anchor = match kind {
            TeeKind::Sgx => TrustAnchor::SimSgxRoot(&self.sgx.root),
            TeeKind::TrustZone => TrustAnchor::ProviderKey(&self.tz.provider_key),
            TeeKind::Sancus => TrustAnchor::ProviderKey(&self.sancus.provider_key),
            _ => TrustAnchor::None,
        };
        Expected {
            allow_debug: true,
            allow_insecure: true,
            ..expected(kind, anchor)
        }
    }

    fn genuine(&self, kind: TeeKind) -> Vec<u8> {
        match kind {
            TeeKind::Sgx => self.sgx.evidence(&code(), &CHALLENGE),
            TeeKind::TrustZone => self.tz.evidence(&code(), &CHALLENGE),
            TeeKind::Sancus => self.sancus.evidence(&code(), &CHALLENGE),
            _ => native_evidence(&code(), &CHALLENGE, &MODULE_PK),
        }
    }
}

fn kind_strategy() -> impl Strategy<Value = TeeKind> {
    prop::sample::select(TeeKind::ALL.to_vec())
}

#[test]
fn the_handwritten_envelope_matches_the_crate() {
    let f = Fixture::get();
    let ev = f.genuine(TeeKind::Native);
    let body = &ev[ev.len() - 96..];
    assert_eq!(envelope(TeeKind::Native, true, body), ev);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_pass(
        kind in kind_strategy(),
        bytes in prop::collection::vec(any::<u8>(), 0..800),
    ) {
        let f = Fixture::get();
        prop_assert!(appraise(&bytes, &f.permissive(kind)).is_err());
    }

    #[test]
    fn arbitrary_bodies_never_pass(
        kind in kind_strategy(),
        simulated in any::<bool>(),
        body in prop::collection::vec(any::<u8>(), 0..800),
    ) {
        // Native bodies carry no proof: any well-formed one with the right claims passes by
        // design, so native is covered by the other properties.
        prop_assume!(kind != TeeKind::Native);
        let f = Fixture::get();
        prop_assert!(appraise(&envelope(kind, simulated, &body), &f.permissive(kind)).is_err());
    }

    /// Symmetric evidence is bound to both ephemeral public keys: relayed with any other
    /// module key, or answering any other deployer key, it is refused.
    #[test]
    fn symmetric_evidence_binds_both_public_keys(
        tz in any::<bool>(),
        module_pk in any::<[u8; 32]>(),
        deployer_pk in any::<[u8; 32]>(),
    ) {
        prop_assume!(module_pk != MODULE_PK && deployer_pk != DEPLOYER_PK);
        let f = Fixture::get();
        let kind = if tz { TeeKind::TrustZone } else { TeeKind::Sancus };
        let ev = f.genuine(kind);
        let bad = Err(AppraisalError::BadMac { kind });
        let other_module = Expected { module_pk: Some(module_pk), ..f.permissive(kind) };
        prop_assert_eq!(appraise(&ev, &other_module), bad.clone());
        let other_deployer = Expected { deployer_pk: Some(deployer_pk), ..f.permissive(kind) };
        prop_assert_eq!(appraise(&ev, &other_deployer), bad);
    }

    #[test]
    fn any_bit_flip_of_genuine_evidence_is_refused(
        kind in kind_strategy(),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let f = Fixture::get();
        let mut ev = f.genuine(kind);
        prop_assert!(appraise(&ev, &f.permissive(kind)).is_ok());
        let i = at.index(ev.len());
        ev[i] ^= 1 << bit;
        prop_assert!(appraise(&ev, &f.permissive(kind)).is_err(), "flip at {} bit {}", i, bit);
    }
}
