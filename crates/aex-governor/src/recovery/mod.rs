//! Recovery: the members restore their governor on a new node when its node is lost for good
//! (issue 20, item 6; docs/ARCHITECTURE.md, "Recovery"; docs/PROTOCOL.md §13).
//!
//! The governor's sealed state is bound to its node. So it also makes a random recovery key
//! in its TEE, splits it `k` of `n` over the constitution's members
//! ([`aex_governance::recovery`]; `k` is the constitution's `recovery` rule, a majority by
//! default), and after every change it answers (a proposal, a ballot, a withdrawal, an
//! application, a provider key installed) writes a backup of what can be recovered (the book,
//! the deployer key, the deployer state, the outcomes, the provider keys of the deployer key,
//! and the audit ledger the deployer state marks) encrypted
//! under that key, to `DATA/recovery/backup`. Members fetch their share (sealed to a fresh
//! key of theirs) and copies of the backup.
//!
//! A new governor started with `recover: true` and the same constitution holds nothing: it
//! collects members' signed shares and a backup, and once `k` members' shares are in it
//! rebuilds the key, opens the backup, checks it is this application's and constitution's,
//! installs it (the same deployer key: the application's nodes still admit it), makes a new
//! recovery key (the old one's shares have been handled outside the members' machines) and
//! serves.
//!
//! Not the TLS key, which is per node: members see a new certificate, with the same
//! constitution attested.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use aex_example_http::Response;
use aex_governance::recovery::{
    seal_backup, seal_share, share_digest, BackupHeader, RecoveryKey, ShareHeader, ShareRequest,
};
use aex_governance::signed::open;
use aex_governance::Constitution;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::job::Outcomes;
use crate::service::{self, Held};
use crate::store::Store;
use crate::Governor;

mod collect;

pub use collect::begin;
use collect::{submit_backup, submit_share, Collecting};

/// What the sealed state keeps for recovery.
#[derive(Default, Serialize, Deserialize)]
pub struct Kept {
    /// The recovery key, hex.
    key: Option<String>,
    /// Each member's share, hex, by member name.
    shares: BTreeMap<String, String>,
    /// The digest (hex) of the constitution the shares were made for: another one in force
    /// means the members changed, and the key is made and split again.
    constitution: String,
    /// The last backup's sequence.
    sequence: u64,
    /// A governor collecting shares (not state: a restart collects anew).
    #[serde(skip)]
    collecting: Option<Collecting>,
}

impl Drop for Kept {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.key.zeroize();
        for share in self.shares.values_mut() {
            share.zeroize();
        }
    }
}

/// The recoverable state, as the backup holds it (JSON, then sealed).
#[derive(Serialize, Deserialize)]
struct Recoverable {
    held: Held,
    deployer: Option<String>,
    deployed: Option<String>,
    outcomes: Outcomes,
    /// The decided proposals the ledger holds already (not recorded twice).
    #[serde(default)]
    recorded: crate::decided::Recorded,
    /// The provider keys of the deployer key on the symmetric nodes: they are the same for
    /// the recovered governor (the same deployer key), so their operators need not hand them
    /// over again.
    #[serde(default)]
    provider_keys: crate::provider::ProviderKeys,
    /// The audit ledger's bytes, hex (its file is on the lost node too).
    ledger: Option<String>,
}

impl Drop for Recoverable {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.deployer.zeroize();
        self.deployed.zeroize();
    }
}

/// What `GET /recovery` shows.
#[derive(Serialize)]
struct Status {
    /// `serving` or `collecting`.
    state: &'static str,
    /// Shares needed.
    threshold: usize,
    members: usize,
    /// The current recovery key's id, hex (serving), or the backup's (collecting).
    key_id: Option<String>,
    /// The latest backup's sequence (serving), or the posted backup's (collecting).
    sequence: Option<u64>,
    /// Members whose shares are in (collecting).
    shares: Vec<String>,
    /// The posted backup's header (collecting).
    backup: Option<BackupHeader>,
    error: Option<String>,
}

/// One backup at a time, so that the file never goes back to an older one.
static WRITING: Mutex<()> = Mutex::new(());

fn hex32(text: &str) -> Option<[u8; 32]> {
    hex::decode(text).ok()?.try_into().ok()
}

/// The directory of the backup, beside the store's.
fn dir(store: &Store) -> PathBuf {
    let work = store.workdir();
    work.parent()
        .map_or(work.clone(), |p| p.to_path_buf())
        .join("recovery")
}

fn backup_path(store: &Store) -> PathBuf {
    dir(store).join("backup")
}

/// Makes a new recovery key and splits it over the constitution's members (in name order),
/// replacing the old one and its shares. To be called whenever the members change (so that a
/// removed member's share opens no later backup) and after a recovery; [`ensure`] calls it
/// when the constitution in force is not the one the shares were made for.
pub fn reshare(g: &mut Governor) -> Result<(), String> {
    let Some(held) = g.held.as_ref() else {
        return Err("the governor has no constitution yet".into());
    };
    let constitution = held.book.constitution();
    let mut names: Vec<&str> = constitution
        .members()
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    names.sort_unstable();
    let key = RecoveryKey::random();
    let shares = key
        .split(constitution.recovery_threshold(), names.len())
        .map_err(|e| e.to_string())?;
    g.recovery.key = Some(hex::encode(key.bytes()));
    g.recovery.shares = names
        .iter()
        .zip(&shares)
        .map(|(name, share)| ((*name).to_owned(), hex::encode(&share[..])))
        .collect();
    g.recovery.constitution = hex::encode(constitution.digest());
    Ok(())
}

/// Makes the shares if there are none for the constitution in force.
pub fn ensure(g: &mut Governor) -> Result<(), String> {
    let current = g
        .held
        .as_ref()
        .map(|h| hex::encode(h.book.constitution().digest()));
    if g.recovery.key.is_none() || current.as_deref() != Some(&g.recovery.constitution) {
        reshare(g)?;
    }
    Ok(())
}

fn key_of(g: &Governor) -> Result<RecoveryKey, String> {
    g.recovery
        .key
        .as_deref()
        .and_then(hex32)
        .map(RecoveryKey::from_bytes)
        .ok_or_else(|| "the sealed recovery key is damaged".to_owned())
}

/// A new backup of `g`'s recoverable state (its sequence counted up), with `ledger`'s bytes.
fn make_backup(g: &mut Governor, ledger: Option<Vec<u8>>, wall_ms: u64) -> Result<Vec<u8>, String> {
    ensure(g)?;
    let held = g
        .held
        .clone()
        .ok_or("the governor has no constitution yet")?;
    let key = key_of(g)?;
    let mark = g
        .deployed
        .as_deref()
        .and_then(|json| serde_json::from_str::<aex_deploy::state::State>(json).ok())
        .and_then(|s| s.ledger);
    g.recovery.sequence += 1;
    let header = BackupHeader {
        version: 0,
        application: held.book.application().to_owned(),
        constitution: held.book.constitution().digest(),
        key_id: [0; 32],
        threshold: u32::try_from(held.book.constitution().recovery_threshold()).unwrap_or(0),
        shares: g
            .recovery
            .shares
            .iter()
            .filter_map(|(name, share)| {
                let share = Zeroizing::new(hex::decode(share).ok()?);
                Some((
                    name.clone(),
                    serde_bytes::ByteBuf::from(share_digest(&share).to_vec()),
                ))
            })
            .collect(),
        sequence: g.recovery.sequence,
        proposals: held.book.records().count() as u64,
        ledger_size: mark.as_ref().map_or(0, |m| m.size),
        ledger_root: mark.map(|m| m.root).unwrap_or_default(),
        made_ms: wall_ms,
        nonce: [0; 24],
    };
    let recoverable = Recoverable {
        held,
        deployer: g.deployer.seed.clone(),
        deployed: g.deployed.clone(),
        outcomes: g.outcomes.clone(),
        recorded: g.recorded.clone(),
        provider_keys: g.provider_keys.clone(),
        ledger: ledger.map(hex::encode),
    };
    let plaintext = Zeroizing::new(serde_json::to_vec(&recoverable).map_err(|e| e.to_string())?);
    Ok(seal_backup(&key, header, &plaintext))
}

/// Writes a new backup to the data directory. Called after every change the governor
/// answers, and after each application; a failure is logged (the next change tries again).
pub fn refresh(handle: &aex::Handle<Governor>, store: &Store) {
    if let Err(e) = try_refresh(handle, store) {
        eprintln!("governor: the recovery backup was not written: {e}");
    }
}

fn try_refresh(handle: &aex::Handle<Governor>, store: &Store) -> Result<(), String> {
    let _guard = WRITING.lock().unwrap_or_else(|e| e.into_inner());
    let ledger_path = aex_deploy::audit::ledger_path(&store.workdir());
    let now = crate::wall_ms();
    let made = handle
        .call_committed(move |g: &mut Governor, _ctx| match g.held {
            // Read on the module's thread, where an application's result is committed: the
            // file then holds at least what the deployer state's mark covers.
            Some(_) => make_backup(g, fs::read(&ledger_path).ok(), now).map(Some),
            None => Ok(None),
        })
        .map_err(|e| e.to_string())??;
    let Some(bytes) = made else { return Ok(()) };
    let path = backup_path(store);
    let tmp = path.with_extension("part");
    fs::create_dir_all(dir(store))
        .and_then(|()| fs::write(&tmp, &bytes))
        .and_then(|()| fs::rename(&tmp, &path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Answers the recovery routes; `None` for another path.
pub fn answer(
    handle: &aex::Handle<Governor>,
    store: &Arc<Store>,
    method: &str,
    segments: &[&str],
    body: &[u8],
) -> Option<Response> {
    let body = body.to_vec();
    let call = |f: Box<dyn FnOnce(&mut Governor) -> Reply + Send>| {
        handle
            .call_committed(move |g: &mut Governor, _ctx| f(g))
            .unwrap_or_else(|e| Reply::text(503, &format!("governor unavailable: {e}")))
    };
    Some(
        match (method, segments) {
            ("GET", ["recovery"]) => call(Box::new(|g| json(200, &status(g)))),
            ("GET", ["recovery", "backup"]) => {
                if !backup_path(store).exists() {
                    refresh(handle, store);
                }
                match fs::read(backup_path(store)) {
                    Ok(bytes) => Reply::bytes(200, "application/cbor", bytes),
                    Err(_) => Reply::text(404, "no recovery backup: the governor holds no book"),
                }
            }
            ("POST", ["recovery", "share"]) => call(Box::new(move |g| share_for(g, &body))),
            ("POST", ["recovery", "shares"]) => {
                let workdir = store.workdir();
                let answer = call(Box::new(move |g| submit_share(g, &body, &workdir)));
                after_recovery(handle, store, answer)
            }
            ("POST", ["recovery", "backup"]) => {
                let bytes = match hex32(std::str::from_utf8(&body).unwrap_or("").trim()) {
                    // A large backup is uploaded as a binary first, and named by its digest.
                    Some(_) => {
                        match store.binary(std::str::from_utf8(&body).unwrap_or("").trim()) {
                            Ok(bytes) => bytes,
                            Err(_) => {
                                return Some(Response::text(
                                    404,
                                    "no complete upload by that digest",
                                ))
                            }
                        }
                    }
                    None => body,
                };
                let workdir = store.workdir();
                let answer = call(Box::new(move |g| submit_backup(g, &bytes, &workdir)));
                after_recovery(handle, store, answer)
            }
            (_, ["recovery", ..]) => Reply::text(405, "no such recovery route; see GET /"),
            _ => return None,
        }
        .into_response(),
    )
}

/// An answer, readable by the tests (a [`Response`] is not).
#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Reply {
    fn text(status: u16, text: &str) -> Reply {
        Reply {
            status,
            content_type: "text",
            body: text.as_bytes().to_vec(),
        }
    }

    fn bytes(status: u16, content_type: &'static str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            content_type,
            body,
        }
    }

    fn status(&self) -> u16 {
        self.status
    }

    fn into_response(self) -> Response {
        match self.content_type {
            "text" => Response::text(self.status, &String::from_utf8_lossy(&self.body)),
            kind => Response::bytes(self.status, kind, self.body),
        }
    }
}

/// Once recovered (200), the applier resumes and a backup under the new key is written.
fn after_recovery(handle: &aex::Handle<Governor>, store: &Arc<Store>, answer: Reply) -> Reply {
    if answer.status() == 200 {
        if let Err(e) = crate::attest::reattest(handle) {
            eprintln!("governor: recovered, but re-attesting the recovered key failed: {e}");
        }
        crate::APPLIER.kick(handle.clone(), store.clone());
        refresh(handle, store);
    }
    answer
}

fn json(status: u16, value: &impl Serialize) -> Reply {
    match serde_json::to_vec(value) {
        Ok(body) => Reply::bytes(status, "application/json", body),
        Err(e) => Reply::text(500, &format!("cannot encode the answer: {e}")),
    }
}

fn status(g: &Governor) -> Status {
    match (&g.recovery.collecting, &g.held) {
        (Some(c), None) => Status {
            state: "collecting",
            threshold: c.constitution.recovery_threshold(),
            members: c.constitution.members().len(),
            key_id: c.backup.as_ref().map(|b| hex::encode(b.header.key_id)),
            sequence: c.backup.as_ref().map(|b| b.header.sequence),
            shares: c.shares.keys().cloned().collect(),
            backup: c.backup.as_ref().map(|b| b.header.clone()),
            error: c.error.clone(),
        },
        _ => {
            let c = g.held.as_ref().map(|h| h.book.constitution());
            Status {
                state: "serving",
                threshold: c.map_or(0, Constitution::recovery_threshold),
                members: c.map_or(0, |c| c.members().len()),
                key_id: key_of(g).ok().map(|k| hex::encode(k.id())),
                sequence: Some(g.recovery.sequence),
                shares: vec![],
                backup: None,
                error: None,
            }
        }
    }
}

/// `POST /recovery/share`: the signing member's share, sealed to the request's key.
fn share_for(g: &mut Governor, body: &[u8]) -> Reply {
    let opened = match open::<ShareRequest>(body) {
        Ok(o) => o,
        Err(e) => return Reply::text(service::status_of(&e), &e.to_string()),
    };
    if let Err(e) = ensure(g) {
        return Reply::text(409, &e);
    }
    let Some(held) = g.held.as_ref() else {
        return Reply::text(409, "the governor holds no book: it is collecting shares");
    };
    let (book, c) = (&held.book, held.book.constitution());
    if opened.body.application != book.application() {
        let why = format!(
            "the request is for application `{}`, not `{}`",
            opened.body.application,
            book.application()
        );
        return Reply::text(422, &why);
    }
    let Some(member) = c.member_by_key(&opened.signer) else {
        let why = format!(
            "the share request is signed by {}, which is no member's key",
            hex::encode(opened.signer)
        );
        return Reply::text(403, &why);
    };
    let (Some(share), Ok(key)) = (g.recovery.shares.get(&member.name), key_of(g)) else {
        return Reply::text(500, "the sealed recovery shares are damaged");
    };
    let share = Zeroizing::new(hex::decode(share).unwrap_or_default());
    let header = ShareHeader {
        application: book.application().to_owned(),
        member: member.name.clone(),
        key_id: key.id(),
        threshold: u32::try_from(c.recovery_threshold()).unwrap_or(0),
        members: u32::try_from(c.members().len()).unwrap_or(0),
        constitution: c.digest(),
        ephemeral: [0; 32],
        reply_key: opened.body.reply_key,
    };
    match seal_share(header, &share) {
        Ok(sealed) => Reply::bytes(200, "application/cbor", sealed.to_bytes()),
        Err(e) => Reply::text(400, &e.to_string()),
    }
}

#[cfg(test)]
mod tests;
