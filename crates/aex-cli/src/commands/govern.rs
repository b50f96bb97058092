//! `aex propose`, `aex proposals`, `aex vote` and `aex withdraw`: a member of a governed
//! application talks to the consortium's governor (`crate::governor`), signing with the
//! member's deployer identity. Nothing here changes a node itself: the governor applies an
//! accepted `deploy`, `update` or `move` proposal, from the bundle (the descriptor and the
//! modules' builds) its proposer uploaded, and a `disable` proposal from the order its
//! proposer sent (`govern_disable.rs`), and a change of members or rules from the
//! constitution document its proposer uploaded (`govern_members.rs`).
//!
//! A `deploy`, `update` or `move` proposal's change is that bundle's digest, so an approval
//! approves those exact binaries. A member should not approve binaries nobody checked: `aex vote ID
//! approve` rebuilds the bundle from the member's own descriptor and sources (builds are
//! reproducible) and approves only if it is the same to the byte (`--no-rebuild` skips that,
//! with a warning).
//!
//! This file holds proposing and withdrawing and what the commands share; `govern_list.rs`
//! lists proposals (`aex proposals`, `aex status`), `govern_vote.rs` checks and votes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aex_deploy::build::Builder;
use aex_deploy::bundle::{self, Made};
use aex_deploy::descriptor::Descriptor;
use aex_deploy::ops::deploy::{build_all, BuiltApp};
use aex_deploy::{App, Identity};
use aex_governance::bundle::hex_digest;
use aex_governance::signed::{Signed, MAX_SUMMARY};
use aex_governance::{Action, Ballot, Bundle, Proposal, ProposalId, Vote, Withdrawal};
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};
use sha2::{Digest, Sha256};

use super::AppPath;
use crate::governor::{self, short, size, Governor, Outcome, Overrides, View};
use crate::progress::Bars;
use crate::shell::Shell;

/// Where the governor is, when the descriptor's `[governance]` does not say or is overridden.
#[derive(Debug, Args)]
pub struct GovernorArgs {
    /// The governor's `https://HOST:PORT/` [default: `[governance]`'s `governor`]
    #[arg(long, value_name = "URL")]
    governor: Option<String>,
    /// The `[[node]]` the governor runs on, whose platform key appraises it [default:
    /// `governor_node`]
    #[arg(long, value_name = "NODE")]
    governor_node: Option<String>,
    /// The governor's measurement, 64 hex digits [default: `governor_measurement`]
    #[arg(long, value_name = "HEX")]
    measurement: Option<String>,
    /// The constitution in force, while your descriptor already declares a proposed one: a
    /// descriptor (its `[governance]`) or a JSON constitution document. The governor is
    /// accepted if its certificate attests either
    #[arg(long, value_name = "FILE")]
    current_constitution: Option<PathBuf>,
}

/// Propose a change of a governed application to its consortium: prints the plan (as
/// `aex deploy --dry-run`), signs the proposal with your identity and sends it to the governor.
/// A deploy or update also builds the modules and uploads the builds, which the governor
/// deploys once the proposal is accepted
#[derive(Debug, Args)]
pub struct ProposeArgs {
    /// Descriptor file, or a directory holding aex.toml [default: current directory]
    path: Option<PathBuf>,
    /// The kind of action: deploy, update, move, disable, add_member, remove_member,
    /// rotate_key or constitution (it decides the rule)
    #[arg(long, value_parser = parse_action)]
    action: Action,
    /// A module to disable (`--action disable`; repeat for several)
    #[arg(long = "module", value_name = "NAME")]
    modules: Vec<String>,
    /// For a change of members or rules: the new constitution, from a descriptor (its
    /// `[governance]`) or a JSON constitution document [default: the descriptor's own]
    #[arg(long, value_name = "FILE")]
    constitution: Option<PathBuf>,
    /// What members read before voting [default: the action, the change's digest, the
    /// modules' measurements and the plan]
    #[arg(long)]
    summary: Option<String>,
    #[command(flatten)]
    governor: GovernorArgs,
    #[command(flatten)]
    pub(super) app: AppPath,
}

/// List the governor's proposals: id, action, proposer, status, ballots and rule
#[derive(Debug, Args)]
pub struct ProposalsArgs {
    /// Descriptor file, or a directory holding aex.toml [default: current directory]
    path: Option<PathBuf>,
    /// Print the governor's JSON list on stdout
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    governor: GovernorArgs,
    #[command(flatten)]
    pub(super) app: AppPath,
}

/// Vote on a proposal, signed with your identity
#[derive(Debug, Args)]
pub struct VoteArgs {
    /// The proposal's id, or the start of it as `aex proposals` shows it
    id: String,
    /// Your vote
    vote: VoteArg,
    /// Descriptor file, or a directory holding aex.toml [default: current directory]. Approving
    /// a deploy or update rebuilds its modules from it and compares with the proposed bundle
    path: Option<PathBuf>,
    /// Approve a deploy or update without rebuilding it from your descriptor: you vouch for
    /// binaries you did not check
    #[arg(long)]
    no_rebuild: bool,
    #[command(flatten)]
    governor: GovernorArgs,
    #[command(flatten)]
    pub(super) app: AppPath,
}

/// Take back a proposal you made, while it is open
#[derive(Debug, Args)]
pub struct WithdrawArgs {
    /// The proposal's id, or the start of it as `aex proposals` shows it
    id: String,
    /// Descriptor file, or a directory holding aex.toml [default: current directory]
    path: Option<PathBuf>,
    #[command(flatten)]
    governor: GovernorArgs,
    #[command(flatten)]
    pub(super) app: AppPath,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum VoteArg {
    Approve,
    Reject,
}

/// An action `aex propose` can send: any kind (a change of members or rules goes through
/// [`members`]).
fn parse_action(text: &str) -> Result<Action, String> {
    text.parse().map_err(|e| format!("{e}"))
}

#[path = "govern_list.rs"]
mod list;
#[path = "govern_members.rs"]
mod members;
#[path = "govern_vote.rs"]
mod vote;

pub use list::{exec_proposals, status_section};
pub use vote::exec_vote;

/// The descriptor and the governor it names.
pub(super) fn open(
    app: &AppPath,
    path: Option<&PathBuf>,
    args: &GovernorArgs,
) -> Result<(Descriptor, Governor)> {
    let desc = Descriptor::load(&app.resolve(path)).map_err(aex_deploy::Error::from)?;
    let overrides = Overrides {
        url: args.governor.clone(),
        node: args.governor_node.clone(),
        measurement: args.measurement.clone(),
        current: match &args.current_constitution {
            Some(file) => Some((members::load_constitution(file)?, file.clone())),
            None => None,
        },
    };
    let governor = Governor::of(&desc, &overrides, app.timeout.unwrap_or(governor::TIMEOUT))?;
    Ok((desc, governor))
}

/// A 2xx answer holding one proposal.
fn parse_view(text: &str) -> Result<View> {
    serde_json::from_str(text)
        .with_context(|| format!("the governor's answer is not a proposal: {text}"))
}

fn list(governor: &Governor, shell: &Shell) -> Result<(Vec<View>, String)> {
    let (verified, text) = governor.send("GET", "/proposals", b"")?;
    governor.announce(&verified, shell);
    let views = serde_json::from_str(&text)
        .with_context(|| format!("the governor's answer is not a list of proposals: {text}"))?;
    Ok((views, text))
}

/// A full id as given, or the one a prefix names among the governor's proposals.
pub(super) fn resolve_id(governor: &Governor, id: &str, shell: &Shell) -> Result<ProposalId> {
    let full = if id.len() == 64 {
        id.to_ascii_lowercase()
    } else {
        let (views, _) = list(governor, shell)?;
        governor::find_id(id, &views)?.id.clone()
    };
    hex::decode(&full)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(ProposalId)
        .ok_or_else(|| anyhow!("`{id}` is not a proposal id: 64 hex digits, or the start of them"))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// One line for a proposal after a change.
fn standing(v: &View) -> String {
    format!(
        "proposal {}: {}, {} of {} approvals ({}), {} rejections",
        short(&v.id),
        v.status,
        v.approvals,
        v.required,
        v.rule,
        v.rejections
    )
}

/// The proposal's action, if this `aex` knows it.
fn action_of(v: &View) -> Option<Action> {
    v.action.parse().ok()
}

/// Whether the governor applies an accepted proposal of `action` itself, from a bundle of the
/// proposer's builds (whose digest is the proposal's change). A move is a deployment of a
/// descriptor that places the module on another node: the deployment hands its state over.
fn bundled(action: Action) -> bool {
    matches!(action, Action::Deploy | Action::Update | Action::Move)
}

/// Whether the governor applies an accepted proposal of `action` itself (every kind this
/// `aex` knows), so that it has an outcome to show.
fn applied(action: Action) -> bool {
    bundled(action) || action == Action::Disable || action.changes_constitution()
}

/// `aex propose`.
///
/// A `deploy` or `update` proposal's change is the digest of its bundle ([`propose_bundle`]):
/// the governor will run exactly those builds. Any other proposal's change is the SHA-256 of
/// the descriptor file's bytes, exactly as they are on disk: any member can recompute it with
/// `sha256sum aex.toml` from the file the proposer shares, with no aex-specific canonical form
/// whose rules could drift between versions. Its cost is that a change of whitespace or
/// comments is another change, which is the safe side.
pub fn exec_propose(args: ProposeArgs, shell: &Shell) -> Result<()> {
    if args.action.changes_constitution() {
        return members::propose(args, shell);
    }
    if args.constitution.is_some() {
        bail!(
            "--constitution names a new constitution, which only add_member, remove_member, \
             rotate_key and constitution propose; `{}` proposes no change of members or rules",
            args.action
        );
    }
    let (desc, governor) = open(&args.app, args.path.as_ref(), &args.governor)?;
    let identity = args.app.identity(shell)?;
    if args.action != Action::Disable && !args.modules.is_empty() {
        bail!(
            "`--module` names what a disable proposal disables; this is a {} proposal",
            args.action
        );
    }
    let (change, described, plan) = if args.action == Action::Disable {
        let (change, described, lines) =
            super::govern_disable::propose(&governor, &desc, &args.modules, shell)?;
        (change, described, Ok(lines))
    } else if bundled(args.action) {
        let (made, plan) = propose_bundle(&args.app, &desc, identity.clone(), &governor, shell)?;
        let mut described = format!("bundle sha256 {}\n", hex::encode(made.digest()));
        for (name, m) in &made.bundle.modules {
            described.push_str(&format!("module `{name}`: measurement {}\n", m.measurement));
        }
        (made.digest(), described, plan)
    } else {
        let bytes = std::fs::read(&desc.path)
            .with_context(|| format!("cannot read {}", desc.path.display()))?;
        let change: [u8; 32] = Sha256::digest(&bytes).into();
        shell.status(
            "Change",
            format!(
                "sha256 {} of {} (the descriptor file's bytes)",
                hex::encode(change),
                desc.path.display()
            ),
        );
        let plan = match build(&args.app, &desc, identity.clone(), shell) {
            Ok((mut app, built)) => plan(&mut app, &built, shell),
            Err(e) => unplanned(&e, shell),
        };
        (
            change,
            format!("descriptor sha256 {}\n", hex::encode(change)),
            plan,
        )
    };
    let summary = match args.summary {
        Some(s) => s,
        None => {
            let mut s = format!(
                "{} of application `{}`: {described}",
                args.action, desc.application
            );
            match &plan {
                Ok(lines) => lines
                    .iter()
                    .for_each(|l| s.push_str(&format!("plan: {l}\n"))),
                Err(why) => s.push_str(&format!("plan not computed: {why}\n")),
            }
            s
        }
    };
    send_proposal(
        &governor,
        &desc,
        args.action,
        change,
        summary,
        &identity,
        shell,
    )
}

/// Signs a proposal of `action` with `change` and `summary` (cut to what the book takes),
/// sends it, and prints where it stands and its id (on stdout, for scripts).
pub(super) fn send_proposal(
    governor: &Governor,
    desc: &Descriptor,
    action: Action,
    change: [u8; 32],
    summary: String,
    identity: &Identity,
    shell: &Shell,
) -> Result<()> {
    let proposal = Proposal {
        application: desc.application.clone(),
        action,
        change,
        summary: bounded(summary, MAX_SUMMARY),
        created_ms: now_ms(),
    };
    let signed = proposal.sign(identity.signing());
    let (verified, text) = governor.send("POST", "/proposals", &signed)?;
    governor.announce(&verified, shell);
    let view = parse_view(&text)?;
    shell.status("Proposed", standing(&view));
    shell.out(&view.id)?;
    Ok(())
}

/// A proposal's change as the governor shows it (hex), as bytes.
pub(super) fn change_of(view: &View) -> Result<[u8; 32]> {
    hex_digest(&view.change).ok_or_else(|| {
        anyhow!(
            "the governor shows proposal {}'s change as `{}`, not 64 hex digits",
            short(&view.id),
            view.change
        )
    })
}

/// A `deploy` or `update` proposal's bundle: builds the modules as `aex deploy` would, packs
/// the builds ([`bundle::make`], which refuses a descriptor the governor cannot read alone),
/// prints its digest and measurements and the plan, and uploads its binaries and then the
/// bundle itself, so that the governor holds everything the proposal names before anyone
/// votes on it.
fn propose_bundle(
    app: &AppPath,
    desc: &Descriptor,
    identity: Arc<Identity>,
    governor: &Governor,
    shell: &Shell,
) -> Result<(Made, std::result::Result<Vec<String>, String>)> {
    let (mut opened, built) = build(app, desc, identity, shell).context(
        "a deploy or update proposal names the builds of its modules, so they must build",
    )?;
    let made = bundle::make(&opened, &built)?;
    shell.status(
        "Change",
        format!(
            "bundle sha256 {} of {} and {} module build(s)",
            hex::encode(made.digest()),
            desc.path.display(),
            made.bundle.modules.len()
        ),
    );
    for (name, m) in &made.bundle.modules {
        shell.status(
            "Module",
            format!(
                "`{name}`: measurement {} (binary sha256 {}, {})",
                m.measurement,
                short(&m.binary),
                size(m.size)
            ),
        );
    }
    let plan = plan(&mut opened, &built, shell);
    // The state lock is not held over the network.
    drop(opened);
    upload(governor, &made, shell)?;
    Ok((made, plan))
}

/// Uploads the binaries `made` names that the governor lacks, then the bundle; fails unless
/// the governor then holds the bundle under the digest the proposal will name, and every
/// binary it names.
fn upload(governor: &Governor, made: &Made, shell: &Shell) -> Result<()> {
    for (digest, bytes) in &made.binaries {
        governor.upload_binary(digest, bytes, &modules_of(&made.bundle, digest), shell)?;
    }
    let (verified, received) =
        governor.store("/bundles", "bundle", &made.bytes, &made.digest(), shell)?;
    let mine = hex::encode(made.digest());
    if !received.missing.is_empty() {
        bail!(
            "the governor says it lacks binaries the bundle names although they were uploaded: \
             {}; nothing was proposed, try again",
            received.missing.join(", ")
        );
    }
    shell.status(
        "Stored",
        format!(
            "bundle {} and its {} binaries on the governor",
            short(&mine),
            made.binaries.len()
        ),
    );
    match verified.extra(governor::IDENTITY_KEY_NAME) {
        Some(key) => {
            let key = key_text(key);
            shell.note(format!(
                "note: the governor deploys as {key}: every node of the application must admit \
                 it (`aex node --admit {key}`) for the governor to apply this proposal"
            ));
        }
        None => shell.warn(format!(
            "the governor's certificate attests no deployer key (`{}`): it may not be able to \
             apply this proposal once accepted",
            governor::IDENTITY_KEY_NAME
        )),
    }
    Ok(())
}

/// A key attested as an extra certificate value, as hex text: the value itself if it is hex
/// text already, else its bytes in hex.
fn key_text(value: &[u8]) -> String {
    match std::str::from_utf8(value) {
        Ok(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit()) => {
            text.to_ascii_lowercase()
        }
        _ => hex::encode(value),
    }
}

/// The modules whose build is the binary `digest`, for messages: ``module `a` `` or
/// ``modules `a`, `b` `` (modules may share a binary).
fn modules_of(bundle: &Bundle, digest: &str) -> String {
    let names: Vec<String> = bundle
        .modules
        .iter()
        .filter(|(_, m)| m.binary == digest)
        .map(|(name, _)| format!("`{name}`"))
        .collect();
    match names.len() {
        1 => format!("module {}", names[0]),
        _ => format!("modules {}", names.join(", ")),
    }
}

/// Opens the application as `identity` and builds its modules as `aex deploy` does (with the
/// builder the environment says: `AEX_BUILD_PROFILE`, `AEX_PREBUILT`), so that what a member
/// proposes or checks is what `aex deploy` would load.
fn build(
    app: &AppPath,
    desc: &Descriptor,
    identity: Arc<Identity>,
    shell: &Shell,
) -> Result<(App, BuiltApp)> {
    let opened = app.open_as(&desc.path, identity, shell)?;
    let mut builder = Builder::from_env().map_err(aex_deploy::Error::Builder)?;
    let built = build_all(&opened, &mut builder, &Bars::new(shell))?;
    Ok((opened, built))
}

/// The plan `aex deploy --dry-run` prints, printed here too; or why it could not be computed
/// (it asks the nodes what runs: a node that is not reachable leaves only the change digest,
/// and the proposal says so rather than show a plan it did not make).
fn plan(
    app: &mut App,
    built: &BuiltApp,
    shell: &Shell,
) -> std::result::Result<Vec<String>, String> {
    match aex_deploy::ops::deploy::plan(app, built) {
        Ok(plan) => {
            crate::report::plan(&plan, shell);
            let lines = crate::report::plan_lines(&plan);
            if lines.is_empty() {
                shell.status("Plan", "nothing changes on the nodes");
            }
            Ok(lines)
        }
        Err(e) => unplanned(&anyhow::Error::from(e), shell),
    }
}

/// Warns that the plan could not be computed, and why.
fn unplanned(e: &anyhow::Error, shell: &Shell) -> std::result::Result<Vec<String>, String> {
    let why = format!("{e:#}");
    shell.warn(format!(
        "the plan could not be computed ({why}); the proposal carries the change digest only"
    ));
    Err(why)
}

/// `text` cut at a character boundary to at most `max` bytes.
fn bounded(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// `aex withdraw`.
pub fn exec_withdraw(args: WithdrawArgs, shell: &Shell) -> Result<()> {
    let (_, governor) = open(&args.app, args.path.as_ref(), &args.governor)?;
    let identity = args.app.identity(shell)?;
    let id = resolve_id(&governor, &args.id, shell)?;
    let withdrawal = Withdrawal { proposal: id }.sign(identity.signing());
    let (verified, text) = governor.send("POST", "/withdrawals", &withdrawal)?;
    governor.announce(&verified, shell);
    shell.status("Withdrawn", standing(&parse_view(&text)?));
    Ok(())
}

/// Says so when the identity is no member of the descriptor's constitution. Only a warning:
/// the governor, not this machine, decides who may vote, and its refusal is the authority.
fn warn_if_not_member(governor: &Governor, identity: &aex_deploy::Identity, shell: &Shell) {
    let key = identity.public().0;
    if !governor
        .constitution()
        .members()
        .iter()
        .any(|m| m.key == key)
    {
        shell.warn(format!(
            "your identity {} is no member of this constitution; the governor will refuse it",
            identity.public()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_action_can_be_proposed() {
        assert_eq!(parse_action("deploy"), Ok(Action::Deploy));
        assert_eq!(parse_action("disable"), Ok(Action::Disable));
        assert_eq!(parse_action("add_member"), Ok(Action::AddMember));
        assert_eq!(parse_action("rotate_key"), Ok(Action::RotateKey));
        let err = parse_action("upgrade").unwrap_err();
        assert!(err.contains("`upgrade` is not a kind of action"), "{err}");
    }

    pub(super) fn module(
        binary: &str,
        measurement: &str,
        toolchain: &str,
    ) -> aex_governance::BundledModule {
        aex_governance::BundledModule {
            binary: binary.repeat(32),
            size: 10,
            measurement: measurement.repeat(32),
            interface: serde_json::json!({}),
            devices: vec![],
            toolchain: Some(toolchain.into()),
        }
    }

    pub(super) fn bundle(
        descriptor: &str,
        modules: &[(&str, aex_governance::BundledModule)],
    ) -> Bundle {
        Bundle {
            application: "app".into(),
            descriptor_name: "aex.toml".into(),
            descriptor: descriptor.into(),
            modules: modules
                .iter()
                .map(|(n, m)| ((*n).to_owned(), m.clone()))
                .collect(),
        }
    }

    #[test]
    fn binaries_are_named_by_the_modules_they_build() {
        let b = bundle(
            "",
            &[
                ("a", module("aa", "01", "r")),
                ("b", module("aa", "02", "r")),
                ("c", module("cc", "03", "r")),
            ],
        );
        assert_eq!(modules_of(&b, &"aa".repeat(32)), "modules `a`, `b`");
        assert_eq!(modules_of(&b, &"cc".repeat(32)), "module `c`");
    }

    #[test]
    fn an_attested_key_is_shown_in_hex_whether_sent_as_bytes_or_text() {
        assert_eq!(key_text(&[0xab, 0x01]), "ab01");
        assert_eq!(key_text(b"AB01"), "ab01");
        assert_eq!(key_text(b""), "");
    }

    #[test]
    fn deploy_update_and_move_are_applied_from_a_bundle_and_every_kind_is_applied() {
        assert!(bundled(Action::Deploy) && bundled(Action::Update) && bundled(Action::Move));
        assert!(!bundled(Action::Disable) && !bundled(Action::AddMember));
        assert!(Action::ALL.iter().all(|a| applied(*a)));
    }

    #[test]
    fn a_summary_is_cut_at_a_character_boundary() {
        assert_eq!(bounded("abc".into(), 5), "abc");
        assert_eq!(bounded("aé".into(), 2), "a");
        assert_eq!(bounded("aéb".into(), 3), "aé");
    }
}
