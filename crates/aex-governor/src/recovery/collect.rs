//! A new governor's side of recovery: it holds nothing, collects members' signed shares and
//! a backup, and installs the backup once `k` members' shares of its key open it.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use aex_governance::recovery::{combine, share_digest, Backup, ShareSubmission};
use aex_governance::signed::open;
use aex_governance::{Constitution, Document};
use zeroize::Zeroizing;

use super::{json, reshare, status, Recoverable, Reply};
use crate::service;
use crate::Governor;

/// A new governor's shares and backup so far.
pub(super) struct Collecting {
    pub(super) application: String,
    pub(super) constitution: Constitution,
    /// Each member's share and the key id it claims, by member name.
    pub(super) shares: BTreeMap<String, ([u8; 32], Zeroizing<Vec<u8>>)>,
    pub(super) backup: Option<Backup>,
    /// Why the last attempt failed.
    pub(super) error: Option<String>,
}

/// `start` with `recover: true` on a governor that holds nothing: it collects shares for
/// `document` instead of adopting it. The constitution's digest, for the certificate.
pub fn begin(g: &mut Governor, application: &str, document: &Document) -> Result<[u8; 32], String> {
    let constitution = document
        .to_constitution()
        .map_err(|e| format!("the constitution is not valid: {e}"))?;
    let digest = constitution.digest();
    if let Some(c) = &g.recovery.collecting {
        if c.application != application || c.constitution.digest() != digest {
            return Err("this governor already collects shares for another constitution".into());
        }
        return Ok(digest);
    }
    g.recovery.collecting = Some(Collecting {
        application: application.to_owned(),
        constitution,
        shares: BTreeMap::new(),
        backup: None,
        error: None,
    });
    Ok(digest)
}

fn collecting(g: &mut Governor) -> Result<&mut Collecting, Reply> {
    if g.held.is_some() {
        return Err(Reply::text(
            409,
            "this governor holds a book: it recovers nothing (start a new one with `recover`)",
        ));
    }
    g.recovery
        .collecting
        .as_mut()
        .ok_or_else(|| Reply::text(409, "this governor was not started with `recover`"))
}

/// `POST /recovery/shares`: a member's share, signed by the member.
pub(super) fn submit_share(g: &mut Governor, body: &[u8], workdir: &Path) -> Reply {
    let c = match collecting(g) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let opened = match open::<ShareSubmission>(body) {
        Ok(o) => o,
        Err(e) => return Reply::text(service::status_of(&e), &e.to_string()),
    };
    if opened.body.application != c.application {
        let why = format!(
            "the share is for application `{}`, not `{}`",
            opened.body.application, c.application
        );
        return Reply::text(422, &why);
    }
    let Some(member) = c.constitution.member_by_key(&opened.signer) else {
        let why = format!(
            "the share is signed by {}, which is no member's key: refused",
            hex::encode(opened.signer)
        );
        return Reply::text(403, &why);
    };
    let share = Zeroizing::new(opened.body.share.clone());
    c.shares
        .insert(member.name.clone(), (opened.body.key_id, share));
    attempt(g, workdir)
}

/// `POST /recovery/backup`: the backup a member kept.
pub(super) fn submit_backup(g: &mut Governor, body: &[u8], workdir: &Path) -> Reply {
    let c = match collecting(g) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let backup = match Backup::from_bytes(body) {
        Ok(b) => b,
        Err(e) => return Reply::text(400, &e.to_string()),
    };
    let h = &backup.header;
    if h.application != c.application || h.constitution != c.constitution.digest() {
        let why = format!(
            "the backup is of application `{}` under constitution {}, this governor recovers \
             `{}` under {}",
            h.application,
            hex::encode(h.constitution),
            c.application,
            hex::encode(c.constitution.digest())
        );
        return Reply::text(422, &why);
    }
    // The latest posted is the one tried, whatever its sequence: before a signature nobody
    // is known, and a backup claiming a higher one must not lock the real one out (members
    // compare sequences among themselves; `GET /recovery` shows the one posted).
    c.backup = Some(backup);
    attempt(g, workdir)
}

/// Recovers if `k` members' shares of the backup's key are in: 200 once recovered, 202 while
/// waiting (with the status), 422 if they do not open it (the backup is then dropped).
fn attempt(g: &mut Governor, workdir: &Path) -> Reply {
    let Some(c) = g.recovery.collecting.as_mut() else {
        return Reply::text(409, "not collecting");
    };
    let need = c.constitution.recovery_threshold();
    let Some(backup) = &c.backup else {
        return json(202, &status(g));
    };
    // Only shares of the backup's key whose digest the backup names count; the others are
    // named, and kept for another backup (a member may also send theirs again).
    let (fit, wrong): (Vec<_>, Vec<_>) = c.shares.iter().partition(|(name, (key_id, share))| {
        *key_id == backup.header.key_id
            && backup.header.shares.get(*name).map(|d| d.as_slice())
                == Some(&share_digest(share)[..])
    });
    c.error = (!wrong.is_empty()).then(|| {
        let names: Vec<&str> = wrong.iter().map(|(n, _)| n.as_str()).collect();
        format!(
            "the shares of {} are not of the backup's recovery key {}: they do not count",
            names.join(", "),
            hex::encode(backup.header.key_id)
        )
    });
    if fit.len() < need {
        return json(202, &status(g));
    }
    let shares: Vec<&[u8]> = fit.iter().map(|(_, (_, s))| s.as_slice()).collect();
    let opened = combine(need, &shares).and_then(|key| backup.open(&key));
    let plaintext = match opened {
        Ok(p) => p,
        Err(e) => {
            // Not this backup: it is dropped, so that a member can post the right one.
            c.error = Some(format!("{e}; the backup was dropped"));
            c.backup = None;
            return Reply::text(422, &format!("{e}; the backup was dropped"));
        }
    };
    match install(g, &plaintext, workdir) {
        Ok(()) => json(200, &status(g)),
        Err(e) => {
            if let Some(c) = g.recovery.collecting.as_mut() {
                c.error = Some(format!("{e}; the backup was dropped"));
                c.backup = None;
            }
            Reply::text(422, &format!("{e}; the backup was dropped"))
        }
    }
}

/// Installs an opened backup, if it is this application's under this constitution, and makes
/// a new recovery key.
fn install(g: &mut Governor, plaintext: &[u8], workdir: &Path) -> Result<(), String> {
    let Some(c) = g.recovery.collecting.as_ref() else {
        return Err("not collecting".into());
    };
    let r: Recoverable = serde_json::from_slice(plaintext)
        .map_err(|e| format!("the backup opened but its state does not read: {e}"))?;
    let book = &r.held.book;
    if book.application() != c.application
        || book.constitution().digest() != c.constitution.digest()
    {
        return Err(format!(
            "the backup holds application `{}` under constitution {}, not this one",
            book.application(),
            hex::encode(book.constitution().digest())
        ));
    }
    let sequence = c.backup.as_ref().map_or(0, |b| b.header.sequence);
    if let Some(ledger) = &r.ledger {
        let bytes = hex::decode(ledger).map_err(|_| "the backup's ledger is not hex".to_owned())?;
        let path = aex_deploy::audit::ledger_path(workdir);
        let parent = path.parent().map(|p| p.to_path_buf()).unwrap_or_default();
        fs::create_dir_all(&parent)
            .and_then(|()| fs::write(&path, bytes))
            .map_err(|e| format!("cannot restore the ledger at {}: {e}", path.display()))?;
    }
    g.held = Some(r.held.clone());
    g.deployer.seed = r.deployer.clone();
    g.deployed = r.deployed.clone();
    g.outcomes = r.outcomes.clone();
    g.recorded = r.recorded.clone();
    g.provider_keys = r.provider_keys.clone();
    g.recovery.sequence = sequence;
    g.recovery.collecting = None;
    eprintln!(
        "governor: recovered application `{}` from backup {sequence}",
        c_app(g)
    );
    reshare(g)
}

fn c_app(g: &Governor) -> String {
    g.held
        .as_ref()
        .map(|h| h.book.application().to_owned())
        .unwrap_or_default()
}
