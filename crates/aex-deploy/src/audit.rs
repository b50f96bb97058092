//! The application's audit ledger, `.aex/ledger.cbor`: every change the deployer applies to
//! the application, appended to an `aex-ledger` ledger and signed with the deployer's
//! identity, so that what ran can be shown afterwards (`aex ledger show`, `verify`, `aex
//! receipt`).
//!
//! [`App`](crate::App)'s record methods note each change as they make it; `App::save`
//! appends what was noted, with one sync, and a signature entry over the whole ledger, before
//! it saves the state: a crash in between leaves a change in the ledger that the state lost
//! (the next deployment applies it again, and records it again), never the reverse. Entries
//! are CBOR maps, one kind per change:
//!
//! | kind | body |
//! |---|---|
//! | `module attested` | `module`, `node`, `tee`, `measurement`, `evidence` (SHA-256 of the evidence), `instance`, `generation`, `simulated`, `insecure` |
//! | `module removed` | `module`, `node`, `instance` |
//! | `module retired` | `module`, `node`, `slot` (an update's old instance, to be unloaded) |
//! | `connection keyed` | `connection`, `id`, `algorithm`, `from`, `to` |
//! | `connection removed` | `connection`, `id` |
//! | `connection revoked` | `connection`, `id` |
//! | `proposal`, `ballot` | `proposal` (its id, hex), `member` (who signed), `signed` (the COSE_Sign1 exactly as the member signed it: anyone can check it again) — a governor records these before it carries a proposal out |
//! | `proposal applied` | `proposal`, `member` (the proposer), `signed` (the proposal) — after the changes it made |
//! | `proposal rejected`, `proposal withdrawn`, `proposal expired` | the same fields — a governor records a proposal decided without being carried out, after its `proposal` and `ballot` entries |
//! | `signer attested` | `certificate` (DER): the signer's attested TLS certificate, whose evidence binds the signing key as the extra key `aex governor identity v1` to the signer's measurement — a governor records it before each proposal it carries out, so `aex ledger verify` can check offline that the key signing the roots is held by attested governor code |
//! | `constitution changed` | `proposal` (the accepted change of members or rules), `constitution` (the new constitution's digest, hex) — appended by [`append_governance`], with the proposal and its ballots, where no deployment runs |
//! | `ledger restarted` | `previous_size`, `previous_root` (the last root the state kept of the ledger before) |
//!
//! The state keeps the last root signed (`State::ledger`): a ledger file that no longer holds
//! it (an older copy put back, a rewrite) is refused; a missing one is started anew, its first
//! entry naming that root.
//!
//! Until a consortium's governor holds the signing key (docs/ARCHITECTURE.md), the signer is
//! the deployer itself: the ledger proves what this deployer recorded, to anyone who trusts
//! its key, and that nothing was changed or removed since.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use aex_crypto::SigningIdentity;
use aex_ledger::Ledger;
use serde::Serialize;

use crate::state::{ConnectionRecord, ModuleRecord};

/// The ledger's file name, in the application's `.aex` directory.
pub const LEDGER_FILE: &str = "ledger.cbor";

/// The kind of the entry holding the signer's attested certificate.
pub const SIGNER_ATTESTED: &str = "signer attested";

/// The audit ledger of `descriptor_dir`'s application.
pub fn ledger_path(descriptor_dir: &Path) -> PathBuf {
    descriptor_dir
        .join(crate::state::STATE_DIR)
        .join(LEDGER_FILE)
}

/// A change to record.
#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum Change<'a> {
    Module {
        #[serde(skip)]
        kind: &'static str,
        module: &'a str,
        node: &'a str,
        instance: u64,
    },
    Attested {
        module: &'a str,
        node: &'a str,
        tee: &'a str,
        measurement: &'a str,
        evidence: &'a str,
        instance: u64,
        generation: u32,
        simulated: bool,
        insecure: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        toolchain: Option<&'a str>,
    },
    Retired {
        module: &'a str,
        node: &'a str,
        slot: &'a str,
    },
    Connection {
        #[serde(skip)]
        kind: &'static str,
        connection: &'a str,
        id: u32,
    },
    Keyed {
        connection: &'a str,
        id: u32,
        algorithm: &'a str,
        from: &'a str,
        to: &'a str,
    },
    Governance {
        #[serde(skip)]
        kind: &'static str,
        proposal: &'a str,
        member: &'a str,
        #[serde(with = "serde_bytes")]
        signed: &'a [u8],
    },
    Signer {
        #[serde(with = "serde_bytes")]
        certificate: &'a [u8],
    },
    Constitution {
        proposal: &'a str,
        constitution: &'a str,
    },
}

impl<'a> Change<'a> {
    pub(crate) fn attested(module: &'a str, r: &'a ModuleRecord) -> Self {
        Change::Attested {
            module,
            node: &r.node,
            tee: &r.tee,
            measurement: &r.measurement,
            evidence: &r.evidence,
            instance: r.instance,
            generation: r.generation,
            simulated: r.simulated,
            insecure: r.insecure,
            toolchain: r.toolchain.as_deref(),
        }
    }

    pub(crate) fn module(kind: &'static str, module: &'a str, r: &'a ModuleRecord) -> Self {
        Change::Module {
            kind,
            module,
            node: &r.node,
            instance: r.instance,
        }
    }

    pub(crate) fn keyed(connection: &'a str, r: &'a ConnectionRecord) -> Self {
        Change::Keyed {
            connection,
            id: r.id,
            algorithm: &r.algorithm,
            from: &r.from,
            to: &r.to,
        }
    }

    pub(crate) fn connection(kind: &'static str, connection: &'a str, id: u32) -> Self {
        Change::Connection {
            kind,
            connection,
            id,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Change::Module { kind, .. }
            | Change::Connection { kind, .. }
            | Change::Governance { kind, .. } => kind,
            Change::Attested { .. } => "module attested",
            Change::Retired { .. } => "module retired",
            Change::Keyed { .. } => "connection keyed",
            Change::Signer { .. } => SIGNER_ATTESTED,
            Change::Constitution { .. } => "constitution changed",
        }
    }
}

/// A governance record that [`append_governance`] appends.
#[derive(Debug, Clone, Copy)]
pub enum GovernanceRecord<'a> {
    /// A `proposal`, `ballot` or `proposal applied`: the member's COSE_Sign1 as signed.
    Signed {
        /// `proposal`, `ballot` or `proposal applied`.
        kind: &'static str,
        /// The proposal's id, hex.
        proposal: &'a str,
        /// Who signed it.
        member: &'a str,
        /// What they signed.
        signed: &'a [u8],
    },
    /// `signer attested`: the signer's attested certificate (DER).
    Signer {
        /// The certificate.
        certificate: &'a [u8],
    },
    /// `constitution changed`: `proposal` put the constitution of digest `constitution` (hex)
    /// in force.
    ConstitutionChanged {
        /// The proposal's id, hex.
        proposal: &'a str,
        /// The new constitution's digest, hex.
        constitution: &'a str,
    },
}

/// Appends `records` to the audit ledger of `descriptor_dir`'s application, signed by
/// `signer`, outside a deployment: for a governor that applies a change of members or rules,
/// which touches no node. `state` is the application's deployer state (its mark of the last
/// root, checked and then moved on, as [`App`](crate::App) does when it saves); the caller
/// keeps it. One writer at a time: the caller must not run a deployment of the same
/// application meanwhile.
pub fn append_governance(
    descriptor_dir: &Path,
    signer: &SigningIdentity,
    state: &mut crate::state::State,
    records: &[GovernanceRecord<'_>],
) -> Result<(), crate::error::Error> {
    let mut audit = Audit::default();
    for record in records {
        audit.note(&match *record {
            GovernanceRecord::Signed {
                kind,
                proposal,
                member,
                signed,
            } => Change::Governance {
                kind,
                proposal,
                member,
                signed,
            },
            GovernanceRecord::Signer { certificate } => Change::Signer { certificate },
            GovernanceRecord::ConstitutionChanged {
                proposal,
                constitution,
            } => Change::Constitution {
                proposal,
                constitution,
            },
        });
    }
    let path = ledger_path(descriptor_dir);
    let seen = state
        .ledger
        .as_ref()
        .and_then(crate::state::LedgerMark::get);
    let signed = audit
        .flush(&path, signer, seen)
        .map_err(|source| crate::error::Error::Ledger { path, source })?;
    if let Some((size, root)) = signed {
        state.ledger = Some(crate::state::LedgerMark::new(size, &root));
    }
    Ok(())
}

/// The audit of an [`App`](crate::App). (A panic while it is held leaves at most a change
/// noted or not: the lock stays usable.)
pub(crate) fn lock(audit: &Mutex<Audit>) -> MutexGuard<'_, Audit> {
    audit.lock().unwrap_or_else(|e| e.into_inner())
}

/// Changes noted and not yet appended, and the ledger once opened.
#[derive(Default)]
pub(crate) struct Audit {
    pending: Vec<(&'static str, Vec<u8>)>,
    ledger: Option<Ledger>,
}

impl Audit {
    /// Notes `change`, to be appended at the next [`Audit::flush`].
    pub(crate) fn note(&mut self, change: &Change<'_>) {
        let mut body = Vec::new();
        // Invariant: a map of strings, integers and booleans always encodes.
        ciborium::into_writer(change, &mut body).unwrap_or_default();
        self.pending.push((change.kind(), body));
    }

    /// Appends what was noted to the ledger at `path` (created if missing), then a signature
    /// entry by `signer`; returns the new signed root (`None` if nothing was noted). `seen` is
    /// the last root the state kept: a ledger that no longer holds it (an older copy put back,
    /// or the file removed) is refused.
    pub(crate) fn flush(
        &mut self,
        path: &Path,
        signer: &SigningIdentity,
        seen: Option<(u64, [u8; 32])>,
    ) -> Result<Option<(u64, [u8; 32])>, aex_ledger::Error> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let expect = aex_ledger::Expect {
            signers: vec![],
            seen,
        };
        let ledger = match &mut self.ledger {
            Some(ledger) => ledger,
            slot if path.exists() => slot.insert(Ledger::open(path, &expect)?.ledger),
            slot => slot.insert(start(path, seen)?),
        };
        let items: Vec<(&str, &[u8])> = self
            .pending
            .iter()
            .map(|(kind, body)| (*kind, body.as_slice()))
            .collect();
        let appended = ledger.append_all(&items).and_then(|_| ledger.sign(signer));
        if appended.is_err() {
            // A failed write may have left a torn entry: the next flush opens the file again
            // (which cuts it off) and appends what is still pending.
            self.ledger = None;
        } else {
            self.pending.clear();
        }
        appended.map(|_| ledger_root(&self.ledger))
    }
}

/// A new ledger at `path`. If the state kept a root of an earlier one (the owner moved a
/// damaged ledger away, or it was deleted), the new one starts with a `ledger restarted`
/// entry naming that root, so the break shows and the two can be tied together.
fn start(path: &Path, earlier: Option<(u64, [u8; 32])>) -> Result<Ledger, aex_ledger::Error> {
    let mut ledger = Ledger::create(path)?;
    if let Some((size, root)) = earlier {
        #[derive(Serialize)]
        struct Restarted {
            previous_size: u64,
            previous_root: String,
        }
        let mut body = Vec::new();
        let restarted = Restarted {
            previous_size: size,
            previous_root: hex::encode(root),
        };
        // Invariant: a map of an integer and a string always encodes.
        ciborium::into_writer(&restarted, &mut body).unwrap_or_default();
        ledger.append("ledger restarted", &body)?;
    }
    Ok(ledger)
}

fn ledger_root(ledger: &Option<Ledger>) -> Option<(u64, [u8; 32])> {
    ledger.as_ref().and_then(Ledger::last_root)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body `change` is appended with, decoded.
    fn body(change: &Change<'_>) -> Vec<(String, ciborium::Value)> {
        let mut audit = Audit::default();
        audit.note(change);
        let value: ciborium::Value = ciborium::from_reader(audit.pending[0].1.as_slice()).unwrap();
        value
            .into_map()
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.into_text().unwrap(), v))
            .collect()
    }

    fn attested(toolchain: Option<&str>) -> Change<'_> {
        Change::Attested {
            module: "pong",
            node: "node2",
            tee: "sgx",
            measurement: "ab",
            evidence: "cd",
            instance: 7,
            generation: 0,
            simulated: true,
            insecure: false,
            toolchain,
        }
    }

    #[test]
    fn governance_records_are_appended_outside_a_deployment_and_a_stale_state_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(crate::state::STATE_DIR)).unwrap();
        let signer = SigningIdentity::from_seed(&[3; 32]);
        let mut state = crate::state::State::default();
        let records = [
            GovernanceRecord::Signed {
                kind: "proposal",
                proposal: "ab",
                member: "a",
                signed: b"cose",
            },
            GovernanceRecord::ConstitutionChanged {
                proposal: "ab",
                constitution: "cd",
            },
        ];
        append_governance(dir.path(), &signer, &mut state, &records).unwrap();
        let stale = serde_json::to_string(&state).unwrap();
        append_governance(dir.path(), &signer, &mut state, &records[1..]).unwrap();
        let bytes = std::fs::read(ledger_path(dir.path())).unwrap();
        let summary = aex_ledger::verify(&bytes, &aex_ledger::Expect::default()).unwrap();
        // Two records and a signature, then one and a signature.
        assert_eq!((summary.entries, summary.signatures), (5, 2));
        // The mark covers the entries before the last signature entry.
        assert_eq!(state.ledger.as_ref().unwrap().size, 4);
        // A state from before the last append still finds its root in the longer ledger;
        // a ledger shorter than the state's mark (an older copy put back) is refused.
        let mut older: crate::state::State = serde_json::from_str(&stale).unwrap();
        append_governance(dir.path(), &signer, &mut older, &records[1..]).unwrap();
        std::fs::write(ledger_path(dir.path()), &bytes[..bytes.len() / 3]).unwrap();
        let err = append_governance(dir.path(), &signer, &mut state, &records[1..]).unwrap_err();
        assert!(matches!(err, crate::error::Error::Ledger { .. }), "{err}");
    }

    #[test]
    fn an_attested_module_s_entry_names_its_compiler_when_the_deployer_built_it() {
        let rustc = "rustc 1.95.0 (59807616e 2026-04-14)";
        let known = body(&attested(Some(rustc)));
        let found = known.iter().find(|(k, _)| k == "toolchain");
        assert_eq!(
            found.and_then(|(_, v)| v.as_text()),
            Some(rustc),
            "{known:?}"
        );
        // A binary built elsewhere: no field, rather than a guess.
        let unknown = body(&attested(None));
        assert!(unknown.iter().all(|(k, _)| k != "toolchain"), "{unknown:?}");
        assert_eq!(known.len(), unknown.len() + 1);
    }
}
