//! Policy and misuse, across kinds: wrong kind, wrong anchor, hardware-only.

use aex_tee::sgx::SimRootPublicKey;
use aex_tee::{
    appraise, AppraisalError, Expected, ProviderKey, SymmetricKind, TeeKind, TrustAnchor,
};

use crate::common::*;

/// Genuine evidence of every kind, and the anchors that appraise it.
struct World {
    sgx: SgxNode,
    tz: SymNode,
    sancus: SymNode,
}

fn world() -> World {
    World {
        sgx: sgx_node(),
        tz: sym_node(SymmetricKind::TrustZone),
        sancus: sym_node(SymmetricKind::Sancus),
    }
}

impl World {
    fn evidence(&self, kind: TeeKind) -> Vec<u8> {
        match kind {
            TeeKind::Sgx => self.sgx.evidence(&code(), &CHALLENGE),
            TeeKind::TrustZone => self.tz.evidence(&code(), &CHALLENGE),
            TeeKind::Sancus => self.sancus.evidence(&code(), &CHALLENGE),
            _ => native_evidence(&code(), &CHALLENGE, &MODULE_PK),
        }
    }

    fn expected(&self, kind: TeeKind) -> Expected<'_> {
        let anchor = match kind {
            TeeKind::Sgx => TrustAnchor::SimSgxRoot(&self.sgx.root),
            TeeKind::TrustZone => TrustAnchor::ProviderKey(&self.tz.provider_key),
            TeeKind::Sancus => TrustAnchor::ProviderKey(&self.sancus.provider_key),
            _ => TrustAnchor::None,
        };
        Expected {
            allow_insecure: true,
            ..expected(kind, anchor)
        }
    }
}

#[test]
fn every_kind_passes_its_own_appraisal_only() {
    let w = world();
    for a in TeeKind::ALL {
        let ev = w.evidence(a);
        for b in TeeKind::ALL {
            let got = appraise(&ev, &w.expected(b));
            if a == b {
                assert!(got.is_ok(), "{a}: {got:?}");
            } else {
                assert_eq!(
                    got,
                    Err(AppraisalError::WrongKind {
                        expected: b,
                        got: a.name().into()
                    })
                );
            }
        }
    }
}

#[test]
fn hardware_only_refuses_every_simulated_evidence_before_believing_anything() {
    let w = world();
    for kind in TeeKind::ALL {
        let hw = Expected {
            allow_simulated: false,
            ..w.expected(kind)
        };
        let refused = Err(AppraisalError::SimulatedRefused { kind });
        let ev = w.evidence(kind);
        assert_eq!(appraise(&ev, &hw), refused, "{kind}");
        // Even with a ruined body, a stale challenge region, or the last byte flipped: the
        // simulation claim alone decides, nothing else is parsed.
        assert_eq!(appraise(&flip(&ev, ev.len() - 1), &hw), refused, "{kind}");
    }
}

#[test]
fn misuse_is_an_error_value() {
    let w = world();
    let pk = ProviderKey::from_hex(&"11".repeat(32)).unwrap();
    let exp = Expected {
        anchor: TrustAnchor::ProviderKey(&pk),
        ..w.expected(TeeKind::Sgx)
    };
    assert_eq!(
        appraise(&w.evidence(TeeKind::Sgx), &exp),
        Err(AppraisalError::AnchorKindMismatch {
            kind: TeeKind::Sgx,
            anchor: "provider key"
        })
    );
    let root: &SimRootPublicKey = &w.sgx.root;
    let exp = Expected {
        anchor: TrustAnchor::SimSgxRoot(root),
        ..w.expected(TeeKind::Sancus)
    };
    assert!(matches!(
        appraise(&w.evidence(TeeKind::Sancus), &exp),
        Err(AppraisalError::AnchorKindMismatch { .. })
    ));
    for kind in TeeKind::ALL {
        let exp = Expected {
            module_pk: None,
            ..w.expected(kind)
        };
        assert_eq!(
            appraise(&w.evidence(kind), &exp),
            Err(AppraisalError::MissingModuleKey { kind })
        );
    }
    // Symmetric kinds bind the deployer's public key too; the others ignore it.
    for kind in TeeKind::ALL {
        let exp = Expected {
            deployer_pk: None,
            ..w.expected(kind)
        };
        let got = appraise(&w.evidence(kind), &exp);
        if kind.symmetric().is_some() {
            assert_eq!(got, Err(AppraisalError::MissingDeployerKey { kind }));
        } else {
            assert!(got.is_ok(), "{kind}: {got:?}");
        }
    }
}

#[test]
fn errors_say_what_was_expected_and_what_was_found() {
    let e = AppraisalError::UntrustedProviderKey {
        expected: "0808080808080808".into(),
        got: "0707070707070707".into(),
    };
    assert_eq!(
        e.to_string(),
        "the node provisioned this module under provider key 0707070707070707, but the \
         deployer's provider key has id 0808080808080808: it is not this deployer \
         identity's provider key on this node"
    );
    let e = AppraisalError::UnsupportedQuote {
        version: 4,
        tee_type: 0x81,
    };
    assert!(e.to_string().contains("version 4, TEE type 0x81"), "{e}");
}
