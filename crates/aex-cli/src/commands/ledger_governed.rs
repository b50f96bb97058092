//! The ledger of a governed application: fetched from the consortium's governor (`aex ledger
//! fetch`), and checked offline against the governor's attestation (`aex ledger verify` on a
//! descriptor that declares `[governance]`).
//!
//! A signed root proves only that *some* key signed the ledger. For a governed application
//! that is not enough: members must know the key is the governor's, held by the code they
//! pinned and by nobody else. The governor records its attested certificate in the ledger (a
//! `signer attested` entry) before each proposal it carries out; the certificate's evidence
//! binds its deployer key (the extra key `aex governor identity v1`) to its measurement. Here
//! every such certificate is appraised with the member's own descriptor (the governor's node's
//! platform key and `governor_measurement`), and every signed root must be by a key one of
//! them attests. No part of it needs the network: a copy of the ledger and the descriptor are
//! enough.

use std::path::Path;

use aex_client::Policy;
use aex_crypto::PUBLIC_IDENTITY_LEN;
use aex_deploy::audit::SIGNER_ATTESTED;
use aex_ledger::Entry;
use anyhow::{anyhow, bail, Context, Result};
use ciborium::Value;

use crate::governor::IDENTITY_KEY_NAME;

/// The keys the ledger's `signer attested` entries attest, each certificate appraised with
/// one of `policies` (the governor's, from the member's descriptor: on its node, or on
/// another node it ran on before a recovery). A certificate that passes none is an error
/// naming its entry (with the first policy's reason); a ledger with none is an error too.
pub fn attested_signers(
    bytes: &[u8],
    policies: &[Policy],
) -> Result<Vec<[u8; PUBLIC_IDENTITY_LEN]>> {
    let mut keys: Vec<[u8; PUBLIC_IDENTITY_LEN]> = Vec::new();
    let (mut at, mut seq) = (0, 0);
    while at < bytes.len() {
        let (entry, used) = Entry::decode_prefix(&bytes[at..], seq)
            .map_err(|e| anyhow!("entry {seq} does not decode: {e}"))?;
        if entry.kind == SIGNER_ATTESTED {
            let key = appraise_any(&entry, policies)
                .with_context(|| format!("entry {} ({SIGNER_ATTESTED})", entry.seq))?;
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        at += used;
        seq += 1;
    }
    if keys.is_empty() {
        bail!(
            "the ledger holds no `{SIGNER_ATTESTED}` entry, so nothing shows that its signer \
             is the attested governor (a governor records its certificate before each proposal \
             it carries out)"
        );
    }
    Ok(keys)
}

/// The deployer key one `signer attested` entry's certificate attests under the first of
/// `policies` it passes.
fn appraise_any(entry: &Entry, policies: &[Policy]) -> Result<[u8; PUBLIC_IDENTITY_LEN]> {
    let mut first = None;
    for policy in policies {
        match appraise(entry, policy) {
            Ok(key) => return Ok(key),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    Err(first.unwrap_or_else(|| anyhow!("no node to appraise it on")))
}

/// The deployer key one `signer attested` entry's certificate attests.
fn appraise(entry: &Entry, policy: &Policy) -> Result<[u8; PUBLIC_IDENTITY_LEN]> {
    let body: Value = ciborium::from_reader(entry.body.as_slice())
        .map_err(|e| anyhow!("its body is not CBOR: {e}"))?;
    let certificate = body
        .as_map()
        .and_then(|pairs| {
            pairs
                .iter()
                .find(|(k, _)| k.as_text() == Some("certificate"))
        })
        .and_then(|(_, v)| v.as_bytes())
        .ok_or_else(|| anyhow!("its body has no `certificate` byte string"))?;
    let verified = aex_client::verify_certificate(certificate, policy)
        .map_err(|e| anyhow!("its certificate does not pass the governor's appraisal: {e}"))?;
    verified
        .extra(IDENTITY_KEY_NAME)
        .and_then(|k| <[u8; PUBLIC_IDENTITY_LEN]>::try_from(k).ok())
        .ok_or_else(|| {
            anyhow!("its certificate attests no 32-byte `{IDENTITY_KEY_NAME}`: not a governor's")
        })
}

/// The last signed root of a ledger that verified: its size and root hash.
pub fn last_root(bytes: &[u8]) -> Option<(u64, [u8; 32])> {
    let (mut at, mut seq, mut last) = (0, 0, None);
    while at < bytes.len() {
        let (entry, used) = Entry::decode_prefix(&bytes[at..], seq).ok()?;
        if entry.kind == aex_ledger::entry::SIGNATURE {
            let root = aex_ledger::root::open(&entry.body, &[]).ok()?;
            last = Some((root.size, root.root));
        }
        at += used;
        seq += 1;
    }
    last
}

/// Writes `bytes` to `path` whole or not at all (a temporary file renamed over it), so that
/// an interrupted fetch never leaves half a ledger where a whole one was.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let partial = path.with_extension("cbor.part");
    std::fs::write(&partial, bytes)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aex_client::Anchor;
    use aex_crypto::{Measurement, SigningIdentity};
    use aex_tee::TeeKind;

    fn policy() -> Policy {
        Policy {
            kind: TeeKind::Sgx,
            anchor: Anchor::SimSgxRoot(
                aex_tee::sgx::SimRootPublicKey::from_sec1(&p256_point()).expect("a point"),
            ),
            measurements: vec![Measurement([1; 32])],
            allow_simulated: true,
            allow_debug: false,
            allow_insecure: false,
        }
    }

    /// The P-256 generator, SEC1 uncompressed: a valid public key nobody's evidence uses.
    fn p256_point() -> Vec<u8> {
        hex::decode(
            "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296\
             4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
        )
        .expect("hex")
    }

    fn ledger(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("ledger.cbor");
        let mut ledger = aex_ledger::Ledger::create(&path).expect("creates");
        for (kind, body) in entries {
            ledger.append(kind, body).expect("appends");
        }
        ledger
            .sign(&SigningIdentity::from_seed(&[5; 32]))
            .expect("signs");
        std::fs::read(&path).expect("reads")
    }

    fn cbor(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(value, &mut out).expect("encodes");
        out
    }

    #[test]
    fn a_ledger_without_the_signers_certificate_proves_no_governor_signed_it() {
        let bytes = ledger(&[("proposal", cbor(&Value::Map(vec![])))]);
        let e = attested_signers(&bytes, &[policy()]).unwrap_err();
        assert!(
            format!("{e:#}").contains("no `signer attested` entry"),
            "{e:#}"
        );
    }

    #[test]
    fn a_certificate_that_does_not_pass_is_named_by_its_entry() {
        let forged = Value::Map(vec![(
            Value::Text("certificate".into()),
            Value::Bytes(b"not a certificate".to_vec()),
        )]);
        let bytes = ledger(&[
            ("proposal", cbor(&Value::Map(vec![]))),
            (SIGNER_ATTESTED, cbor(&forged)),
        ]);
        let e = format!("{:#}", attested_signers(&bytes, &[policy()]).unwrap_err());
        assert!(e.contains("entry 1 (signer attested)"), "{e}");
        assert!(e.contains("does not pass the governor's appraisal"), "{e}");
        let empty = ledger(&[(SIGNER_ATTESTED, cbor(&Value::Map(vec![])))]);
        let e = format!("{:#}", attested_signers(&empty, &[policy()]).unwrap_err());
        assert!(e.contains("no `certificate` byte string"), "{e}");
    }

    #[test]
    fn a_fetch_replaces_the_file_whole() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join(".aex").join("ledger.cbor");
        write_atomically(&path, b"one").expect("writes");
        write_atomically(&path, b"two").expect("writes");
        assert_eq!(std::fs::read(&path).expect("reads"), b"two");
        assert!(!path.with_extension("cbor.part").exists());
    }
}
