//! What the governor's ways of carrying out a proposal share: the job (an accepted proposal
//! with a copy of what it needs from the sealed state), its outcome as members see it, the
//! bundle it names, and the ledger entries that say who authorised it. Below `apply` (the
//! thread that runs jobs) and the modules for each kind of action, so none of them imports
//! another to get these.

use std::collections::BTreeMap;

use aex_crypto::SigningIdentity;
use aex_deploy::audit::{append_governance, GovernanceRecord};
use aex_deploy::state::State;
use aex_deploy::App;
use aex_governance::{Action, Bundle, ProposalId, Record};
use serde::{Deserialize, Serialize};

use crate::store::Store;

/// Where a proposal's application stands, as `GET /proposals/ID/outcome` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// `applying`, `applied` or `failed` (`waiting` is shown for a proposal with none yet).
    pub state: String,
    /// Why it failed.
    pub error: Option<String>,
    /// What the deployment did, in one line.
    pub report: Option<String>,
}

/// The kinds of action the governor carries out by deploying a bundle.
pub fn deploys(action: Action) -> bool {
    matches!(action, Action::Deploy | Action::Update | Action::Move)
}

/// The kinds of action the governor carries out.
pub fn carried_out(action: Action) -> bool {
    deploys(action) || action == Action::Disable || action.changes_constitution()
}

/// One accepted proposal to carry out, with a copy of what it needs from the sealed state.
pub struct Job {
    pub(crate) id: ProposalId,
    pub(crate) change: [u8; 32],
    pub(crate) action: Action,
    /// The proposal and its ballots as members signed them, for the ledger.
    pub(crate) record: Record,
    pub(crate) application: String,
    pub(crate) seed: [u8; 32],
    pub(crate) state: State,
    /// The bundle of the latest deployment applied (a `disable` acts on its descriptor).
    pub(crate) in_force: Option<[u8; 32]>,
    /// The provider keys of the deployer key on symmetric nodes, for `bundle::open`.
    pub(crate) provider_keys: crate::provider::ProviderKeys,
}

/// An outcome that failed, with why.
pub(crate) fn failed(error: String) -> Outcome {
    Outcome {
        state: "failed".into(),
        error: Some(error),
        report: None,
    }
}

/// Who signs (the governor's attested certificate, the evidence that the ledger's key is
/// its own) and what authorised a proposal's changes (the proposal and its ballots, as
/// signed) go into the ledger before them.
pub(crate) fn note_authority(app: &App, record: &Record) {
    let id = record.id.hex();
    app.note_signer(&crate::certificate());
    app.note_governance("proposal", &id, &record.proposer, &record.signed);
    for (member, (_, signed)) in &record.ballots {
        app.note_governance("ballot", &id, member, signed);
    }
}

/// Appends to the ledger, outside a deployment, who signs and what authorised `record` (as
/// [`note_authority`] notes them in one), then `closing`: for what changes no node (a change
/// of members or rules, a proposal decided without being carried out). Signed with `seed`,
/// the governor's deployer key; `state` keeps the ledger's mark, which it moves on.
pub(crate) fn append_authority(
    store: &Store,
    record: &Record,
    closing: GovernanceRecord<'_>,
    seed: &[u8; 32],
    state: &mut State,
) -> Result<(), String> {
    let id = record.id.hex();
    let certificate = crate::certificate();
    let mut records = vec![
        GovernanceRecord::Signer {
            certificate: &certificate,
        },
        GovernanceRecord::Signed {
            kind: "proposal",
            proposal: &id,
            member: &record.proposer,
            signed: &record.signed,
        },
    ];
    for (member, (_, signed)) in &record.ballots {
        records.push(GovernanceRecord::Signed {
            kind: "ballot",
            proposal: &id,
            member,
            signed,
        });
    }
    records.push(closing);
    let workdir = store.workdir();
    std::fs::create_dir_all(workdir.join(aex_deploy::state::STATE_DIR))
        .map_err(|e| format!("cannot create the ledger's directory: {e}"))?;
    append_governance(&workdir, &SigningIdentity::from_seed(seed), state, &records)
        .map_err(|e| aex_deploy::error::error_chain(&e))
}

/// The bundle stored as `digest`, checked against it and against the governed `application`.
pub(crate) fn load_bundle(
    digest: &[u8; 32],
    application: &str,
    store: &Store,
) -> Result<Bundle, String> {
    let bytes = store
        .bundle(digest)
        .map_err(|_| format!("no bundle {} was sent", hex::encode(digest)))?;
    if Bundle::digest_of(&bytes) != *digest {
        return Err(format!(
            "the bundle stored as {} is not the one approved",
            hex::encode(digest)
        ));
    }
    let bundle = Bundle::from_bytes(&bytes).map_err(|e| e.to_string())?;
    if bundle.application != application {
        return Err(format!(
            "the bundle is for application `{}`, the governor governs `{application}`",
            bundle.application
        ));
    }
    Ok(bundle)
}

/// The outcomes, by proposal id (hex).
pub type Outcomes = BTreeMap<String, Outcome>;
