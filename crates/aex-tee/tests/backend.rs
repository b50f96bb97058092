//! The node-side API through `open`: one backend-agnostic attestation, run for every kind, as
//! the node agent and the deployer will use it.

use std::path::Path;

use aex_tee::sgx::SimRootPublicKey;
use aex_tee::symmetric::attest_mac;
use aex_tee::{
    appraise, open, open_with, AppraisalError, Backend, BackendOptions, EvidenceError, Expected,
    ProviderKey, Scheme, SimSymmetricPlatform, TeeKind, TrustAnchor, PLATFORM_PUB_FILE,
};

use crate::common::*;

/// What the deployer loads for a local node this deployer provisioned.
enum Anchor {
    Root(SimRootPublicKey),
    Provider(ProviderKey),
    None,
}

/// The trust anchor of [`FARM`]: for a symmetric node, the provider key its operator writes
/// for the farm from the node's data directory (as `aex node provider-key` does).
fn anchor_from_data_dir(kind: TeeKind, dir: &Path) -> Anchor {
    match kind.scheme() {
        Scheme::Quote => {
            let text = std::fs::read_to_string(dir.join(PLATFORM_PUB_FILE)).unwrap();
            Anchor::Root(SimRootPublicKey::from_hex(&text).unwrap())
        }
        Scheme::Symmetric => {
            let platform = SimSymmetricPlatform::load(kind.symmetric().unwrap(), dir).unwrap();
            let file = dir.join(ProviderKey::file_name(&FARM));
            platform.provider_key(&FARM).write_file(&file).unwrap();
            Anchor::Provider(ProviderKey::read_file(&file).unwrap())
        }
        _ => Anchor::None,
    }
}

/// The node side of one attestation: what the module answers, wrapped by the backend.
fn node_evidence(backend: &dyn Backend, challenge: &[u8; 32]) -> Vec<u8> {
    let m = code();
    match backend.kind().scheme() {
        Scheme::Symmetric => {
            let key = backend
                .provision(&FARM, &m)
                .expect("symmetric kinds provision");
            let sym = backend.kind().symmetric().unwrap();
            let mac = attest_mac(&key, &transcript(sym, &m, challenge));
            backend.evidence(&FARM, &m, challenge, Some(&MODULE_PK), Some(&mac))
        }
        _ => {
            assert!(backend.provision(&FARM, &m).is_none());
            backend.evidence(&FARM, &m, challenge, Some(&MODULE_PK), None)
        }
    }
    .unwrap()
}

fn appraise_with(
    kind: TeeKind,
    anchor: &Anchor,
    ev: &[u8],
    allow_debug: bool,
) -> Result<aex_tee::Appraised, AppraisalError> {
    let anchor = match anchor {
        Anchor::Root(r) => TrustAnchor::SimSgxRoot(r),
        Anchor::Provider(k) => TrustAnchor::ProviderKey(k),
        Anchor::None => TrustAnchor::None,
    };
    appraise(
        ev,
        &Expected {
            allow_insecure: true,
            allow_debug,
            ..expected(kind, anchor)
        },
    )
}

#[test]
fn every_kind_attests_end_to_end_through_open() {
    for kind in TeeKind::ALL {
        let dir = tempfile::tempdir().unwrap();
        let backend = open(kind, dir.path()).unwrap();
        assert_eq!(backend.kind(), kind);
        assert!(backend.simulated());
        let anchor = anchor_from_data_dir(kind, dir.path());
        let ev = node_evidence(backend.as_ref(), &CHALLENGE);
        let ok = appraise_with(kind, &anchor, &ev, false).unwrap();
        assert_eq!((ok.kind(), ok.measurement()), (kind, code()));
        assert_eq!(ok.insecure(), kind == TeeKind::Native);
        // Replayed at the next attestation.
        assert_eq!(
            appraise_with(kind, &anchor, &ev, false).map(|_| ()),
            Ok(()),
            "appraisal is pure: the same inputs, the same answer"
        );
        let next = aex_tee::Expected {
            challenge: [0xee; 32],
            ..expected(kind, TrustAnchor::None)
        };
        assert!(appraise(&ev, &next).is_err());
        // Reopening finds the same platform.
        let again = open(kind, dir.path()).unwrap();
        assert_eq!(again.platform_identity(), backend.platform_identity());
    }
}

#[test]
fn options_choose_the_debug_mode() {
    let dir = tempfile::tempdir().unwrap();
    let options = BackendOptions { sgx_debug: true };
    let backend = open_with(TeeKind::Sgx, dir.path(), &options).unwrap();
    let anchor = anchor_from_data_dir(TeeKind::Sgx, dir.path());
    let ev = node_evidence(backend.as_ref(), &CHALLENGE);
    assert_eq!(
        appraise_with(TeeKind::Sgx, &anchor, &ev, false).unwrap_err(),
        AppraisalError::DebugRefused { kind: TeeKind::Sgx }
    );
    assert!(appraise_with(TeeKind::Sgx, &anchor, &ev, true)
        .unwrap()
        .debug());
}

#[test]
fn quote_kinds_need_the_module_key() {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(TeeKind::Sgx, dir.path()).unwrap();
    assert_eq!(
        backend.evidence(&FARM, &code(), &CHALLENGE, None, None),
        Err(EvidenceError::Missing {
            kind: TeeKind::Sgx,
            what: "module public key"
        })
    );
    assert_eq!(backend.platform_identity().len(), 33);
}

#[test]
fn unreadable_material_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sgx-ak.key"), b"short").unwrap();
    let err = open(TeeKind::Sgx, dir.path()).err().unwrap();
    assert!(
        err.to_string().contains("expected 32 bytes, found 5"),
        "{err}"
    );
    std::fs::write(dir.path().join("trustzone-node.key"), b"short").unwrap();
    assert!(open(TeeKind::TrustZone, dir.path()).is_err());
}
