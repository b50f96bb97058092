//! Changes of members and rules (`add_member`, `remove_member`, `rotate_key`,
//! `constitution`): the governor keeps the proposed constitution documents, refuses a
//! proposal whose document is not the change its action says, and puts an accepted change in
//! force, after which its certificate attests the new constitution.
//!
//! Such a proposal's change is the new constitution's digest ([`Constitution::digest`]). Its
//! document is uploaded first (`POST /constitutions`, stored by that digest; `GET
//! /constitutions/DIGEST` reads it back) so that members see what they vote on. Nothing in
//! the store is trusted: a document is checked against the digest each time it is read.
//!
//! An accepted change is carried out on the applier's thread, as a deployment is (so the
//! audit ledger has one writer): the document is read and checked, the change is checked
//! against its action ([`aex_governance::change::check`]: an `add_member` adds exactly one
//! member and changes nothing else, ...), the proposal, its ballots and `constitution
//! changed` go into the ledger, and then the book puts the new constitution in force
//! ([`aex_governance::Book::apply_constitution`], which checks the action again), committed.
//! Last, the server is re-attested: from the next connection on, the certificate attests the
//! new digest, so a member whose descriptor holds the old one is told to update it.

use std::fs;
use std::path::PathBuf;

use aex::Handle;
use aex_deploy::audit::GovernanceRecord;
use aex_deploy::state::State;
use aex_example_http::Response;
use aex_governance::bundle::hex_digest;
use aex_governance::signed::open;
use aex_governance::{Constitution, Document, Proposal, Record};

use crate::attest::reattest;
use crate::job::{append_authority, Outcome};
use crate::store::Store;
use crate::Governor;

/// The largest constitution document, in bytes: 64 members with names and keys, and a rule
/// per action, take some 10 KiB.
pub const MAX_DOCUMENT: usize = 64 * 1024;

/// The most bytes of documents kept (uploads come before any member signature).
pub const MAX_DOCUMENTS: u64 = 16 << 20;

fn documents(store: &Store) -> PathBuf {
    store.path("constitutions")
}

/// Answers `POST /constitutions` and `GET /constitutions/DIGEST`; `None` for other paths.
pub fn answer(store: &Store, method: &str, segments: &[&str], body: &[u8]) -> Option<Response> {
    Some(match (method, segments) {
        ("POST", ["constitutions"]) => upload(store, body),
        ("GET", ["constitutions", digest]) => match hex_digest(digest) {
            Some(d) => match load(store, &d) {
                Ok(constitution) => json(200, &Document::of(&constitution)),
                Err(e) => Response::text(404, &e),
            },
            None => Response::text(400, "a digest is 64 hex digits"),
        },
        (_, ["constitutions", ..]) => {
            Response::text(405, "POST /constitutions, GET /constitutions/DIGEST")
        }
        _ => return None,
    })
}

fn json(status: u16, value: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => Response::bytes(status, "application/json", body),
        Err(e) => Response::text(500, &format!("cannot encode the answer: {e}")),
    }
}

/// Stores a document (JSON, [`Document`]) by its constitution's digest, once it checks as a
/// constitution; answers the digest.
fn upload(store: &Store, body: &[u8]) -> Response {
    let constitution = match uploaded(body) {
        Ok(c) => c,
        Err((status, why)) => return Response::text(status, &why),
    };
    let digest = hex::encode(constitution.digest());
    let dir = documents(store);
    let path = dir.join(&digest);
    if !path.exists() {
        // Kept as the governor writes it: what members read back is the constitution itself.
        let bytes = serde_json::to_vec(&Document::of(&constitution)).unwrap_or_default();
        let used: u64 = fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum();
        if used + bytes.len() as u64 > MAX_DOCUMENTS {
            let full = format!(
                "the governor holds {MAX_DOCUMENTS} bytes of constitution documents, the most \
                 it keeps"
            );
            return Response::text(507, &full);
        }
        let tmp = dir.join(format!(
            "{digest}.{}.part",
            hex::encode(aex_crypto::random_bytes::<8>())
        ));
        let written = fs::create_dir_all(&dir)
            .and_then(|()| fs::write(&tmp, &bytes))
            .and_then(|()| fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Response::text(507, &format!("cannot store the document: {e}"));
        }
    }
    json(201, &serde_json::json!({ "digest": digest }))
}

/// The constitution an upload states, or the refusal's status and reason.
fn uploaded(body: &[u8]) -> Result<Constitution, (u16, String)> {
    if body.len() > MAX_DOCUMENT {
        return Err((
            413,
            format!("a constitution document has at most {MAX_DOCUMENT} bytes"),
        ));
    }
    let document = serde_json::from_slice::<Document>(body).map_err(|e| {
        (
            400,
            format!(
                "not a constitution document (JSON: members, rules, proposal_lifetime_ms): {e}"
            ),
        )
    })?;
    document
        .to_constitution()
        .map_err(|e| (400, format!("the constitution is not valid: {e}")))
}

/// The constitution stored as `digest`, checked against it.
pub fn load(store: &Store, digest: &[u8; 32]) -> Result<Constitution, String> {
    let hex = hex::encode(digest);
    let bytes = fs::read(documents(store).join(&hex))
        .map_err(|_| format!("no constitution {hex} was uploaded (POST /constitutions)"))?;
    let constitution = serde_json::from_slice::<Document>(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|d| d.to_constitution().map_err(|e| e.to_string()))
        .map_err(|e| format!("the document stored as {hex} does not read back: {e}"))?;
    if constitution.digest() != *digest {
        return Err(format!(
            "the document stored as {hex} is constitution {}, not the one named",
            hex::encode(constitution.digest())
        ));
    }
    Ok(constitution)
}

/// At `POST /proposals`: a change of members or rules whose document is uploaded is refused
/// (422, saying why) unless it is the change its action says. `None`: go on (the book
/// decides the rest; a document uploaded later is checked when the change is applied).
pub fn refused_proposal(handle: &Handle<Governor>, store: &Store, body: &[u8]) -> Option<Response> {
    let proposal = open::<Proposal>(body).ok()?.body;
    if !proposal.action.changes_constitution() {
        return None;
    }
    let new = load(store, &proposal.change).ok()?;
    let old = handle
        .call(|g: &mut Governor, _ctx| g.held.as_ref().map(|h| h.book.constitution().clone()))
        .ok()??;
    let mismatch = aex_governance::change::check(proposal.action, &old, &new).err()?;
    Some(Response::text(422, &format!("refused: {mismatch}")))
}

/// Carries out the accepted change of members or rules `record` on the applier's thread:
/// `seed` signs the ledger, whose mark `state` keeps. Returns false once the module is gone.
pub fn carry_out(
    handle: &Handle<Governor>,
    store: &Store,
    record: &Record,
    seed: &[u8; 32],
    mut state: State,
) -> bool {
    let id = record.id;
    let prepared = prepare(handle, store, record, seed, &mut state);
    let finished = handle.call_committed(move |g: &mut Governor, _ctx| {
        let outcome = prepared.and_then(|(new, report)| {
            let held = g.held.as_mut().ok_or("the governor lost its book")?;
            let now = held.tick(crate::wall_ms());
            held.book
                .apply_constitution(id, new, now)
                .map_err(|e| format!("the book refused it: {e}"))?;
            Ok(report)
        });
        let applied = outcome.is_ok();
        if applied {
            g.deployed = serde_json::to_string(&state).ok().or(g.deployed.take());
            on_constitution_changed(g);
        }
        g.outcomes.insert(id.hex(), outcome_of(outcome));
        applied
    });
    match finished {
        Ok(true) => {
            if let Err(e) = reattest(handle) {
                eprintln!("governor: the constitution changed, but re-attesting failed: {e}");
            }
            true
        }
        Ok(false) => true,
        Err(_) => false,
    }
}

/// Everything before the book: the new constitution (read and checked against the change
/// and the action), and the ledger records of what authorised it. Returns the constitution
/// and a one-line report.
fn prepare(
    handle: &Handle<Governor>,
    store: &Store,
    record: &Record,
    seed: &[u8; 32],
    state: &mut State,
) -> Result<(Constitution, String), String> {
    let action = record.proposal.action;
    let new = load(store, &record.proposal.change)?;
    let old = handle
        .call(|g: &mut Governor, _ctx| g.held.as_ref().map(|h| h.book.constitution().clone()))
        .map_err(|e| e.to_string())?
        .ok_or("the governor has no constitution")?;
    let diff = aex_governance::change::check(action, &old, &new).map_err(|e| e.to_string())?;
    let id = record.id.hex();
    let digest = hex::encode(new.digest());
    let closing = GovernanceRecord::ConstitutionChanged {
        proposal: &id,
        constitution: &digest,
    };
    append_authority(store, record, closing, seed, state)?;
    Ok((new, format!("constitution {digest}: {diff}")))
}

fn outcome_of(result: Result<String, String>) -> Outcome {
    match result {
        Ok(report) => Outcome {
            state: "applied".into(),
            error: None,
            report: Some(report),
        },
        Err(e) => Outcome {
            state: "failed".into(),
            error: Some(e),
            report: None,
        },
    }
}

/// Called on the module's thread, in the same commit, each time a change of members or rules
/// is put in force (the book holds the new constitution). Whatever depends on the member set
/// is redone here: the recovery shares, split among the members (issue 20 item 6), must be
/// split again among the new members, so that a removed member's share or a rotated key no
/// longer recovers the governor.
fn on_constitution_changed(governor: &mut Governor) {
    if let Err(e) = crate::recovery::reshare(governor) {
        eprintln!("governor: the recovery key was not split again: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aex_governance::MemberDocument;

    fn document(names: &[&str]) -> Document {
        Document {
            members: names
                .iter()
                .zip(1u8..)
                .map(|(name, seed)| MemberDocument {
                    name: (*name).into(),
                    key: hex::encode(aex_crypto::SigningIdentity::from_seed(&[seed; 32]).public()),
                })
                .collect(),
            rules: [("deploy".to_owned(), "any 1".to_owned())].into(),
            proposal_lifetime_ms: 1000,
        }
    }

    fn upload_of(store: &Store, body: &[u8]) -> (u16, String) {
        let r = answer(store, "POST", &["constitutions"], body).expect("a route");
        let why = uploaded(body).err().map(|(_, why)| why).unwrap_or_default();
        (r.status(), why)
    }

    #[test]
    fn a_document_is_kept_by_its_constitutions_digest_and_read_back_checked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let doc = document(&["a", "b"]);
        let digest = doc.to_constitution().unwrap().digest();
        let (code, _) = upload_of(&store, &serde_json::to_vec(&doc).unwrap());
        assert_eq!(code, 201);
        assert_eq!(load(&store, &digest).unwrap().digest(), digest);
        let got = answer(&store, "GET", &["constitutions", &hex::encode(digest)], b"").unwrap();
        assert_eq!(got.status(), 200);
        // Another constitution put in its place on the host's disk is not taken for it.
        let other = serde_json::to_vec(&document(&["a", "c"])).unwrap();
        fs::write(documents(&store).join(hex::encode(digest)), other).unwrap();
        let err = load(&store, &digest).unwrap_err();
        assert!(err.contains("not the one named"), "{err}");
        let missing = load(&store, &[9; 32]).unwrap_err();
        assert!(missing.contains("was uploaded"), "{missing}");
    }

    #[test]
    fn an_upload_that_is_no_valid_constitution_or_too_large_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (code, why) = upload_of(&store, b"{\"members\": 1}");
        assert!(
            code == 400 && why.contains("not a constitution document"),
            "{why}"
        );
        let mut invalid = document(&["a"]);
        invalid.rules.insert("deploy".into(), "any 2".into());
        let (code, why) = upload_of(&store, &serde_json::to_vec(&invalid).unwrap());
        assert!(code == 400 && why.contains("is not valid"), "{why}");
        let (code, _) = upload_of(&store, &vec![b' '; MAX_DOCUMENT + 1]);
        assert_eq!(code, 413);
        assert!(
            answer(&store, "GET", &["constitutions", "zz"], b"")
                .unwrap()
                .status()
                == 400
        );
        assert!(answer(&store, "GET", &["elsewhere"], b"").is_none());
    }
}
