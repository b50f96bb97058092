//! `aex propose`, `aex proposals`, `aex vote` and `aex withdraw`: a member of a governed
//! application talks to the consortium's governor (`crate::governor`), signing with the
//! member's deployer identity. Nothing here changes a node: accepted proposals are recorded,
//! not applied (the governor does not apply them yet).

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aex_deploy::descriptor::Descriptor;
use aex_deploy::ops::deploy::{DeployOptions, Deployed};
use aex_governance::signed::{Signed, MAX_SUMMARY};
use aex_governance::{Action, Ballot, Proposal, ProposalId, Vote, Withdrawal};
use anyhow::{anyhow, Context, Result};
use clap::{Args, ValueEnum};
use sha2::{Digest, Sha256};

use super::AppPath;
use crate::governor::{self, Governor, Overrides, View};
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
}

/// Propose a change of a governed application to its consortium: prints the plan (as
/// `aex deploy --dry-run`), signs the proposal with your identity and sends it to the governor
#[derive(Debug, Args)]
pub struct ProposeArgs {
    /// Descriptor file, or a directory holding aex.toml [default: current directory]
    path: Option<PathBuf>,
    /// The kind of action: deploy, update, move or disable (it decides the rule)
    #[arg(long, value_parser = parse_action)]
    action: Action,
    /// What members read before voting [default: the action, the descriptor's digest and the
    /// plan]
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
    /// Descriptor file, or a directory holding aex.toml [default: current directory]
    path: Option<PathBuf>,
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

/// An action `aex propose` can send. A change of members or rules is refused: its change is
/// the new constitution's digest, which the governor does not apply yet, and a member whose
/// descriptor held the new constitution could no longer verify the governor (which attests
/// the old one).
fn parse_action(text: &str) -> Result<Action, String> {
    let action: Action = text.parse().map_err(|e| format!("{e}"))?;
    if action.changes_constitution() {
        return Err(format!(
            "`{action}` changes the constitution, which `aex propose` cannot propose yet; \
             valid: deploy, update, move, disable"
        ));
    }
    Ok(action)
}

/// The descriptor and the governor it names.
fn open(
    app: &AppPath,
    path: Option<&PathBuf>,
    args: &GovernorArgs,
) -> Result<(Descriptor, Governor)> {
    let desc = Descriptor::load(&app.resolve(path)).map_err(aex_deploy::Error::from)?;
    let overrides = Overrides {
        url: args.governor.clone(),
        node: args.governor_node.clone(),
        measurement: args.measurement.clone(),
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
    shell.status("Verified", governor.verified_line(&verified));
    let views = serde_json::from_str(&text)
        .with_context(|| format!("the governor's answer is not a list of proposals: {text}"))?;
    Ok((views, text))
}

/// A full id as given, or the one a prefix names among the governor's proposals.
fn resolve_id(governor: &Governor, id: &str, shell: &Shell) -> Result<ProposalId> {
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
        &v.id[..v.id.len().min(16)],
        v.status,
        v.approvals,
        v.required,
        v.rule,
        v.rejections
    )
}

/// `aex propose`.
///
/// The proposal's `change` is the SHA-256 of the descriptor file's bytes, exactly as they are
/// on disk: any member can recompute it with `sha256sum aex.toml` from the file the proposer
/// shares, with no aex-specific canonical form whose rules could drift between versions. Its
/// cost is that a change of whitespace or comments is another change, which is the safe side.
pub fn exec_propose(args: ProposeArgs, shell: &Shell) -> Result<()> {
    let (desc, governor) = open(&args.app, args.path.as_ref(), &args.governor)?;
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
    let identity = args.app.identity(shell)?;
    let plan = plan(&args.app, &desc, identity.clone(), shell);
    let summary = match args.summary {
        Some(s) => s,
        None => {
            let mut s = format!(
                "{} of application `{}`: descriptor sha256 {}\n",
                args.action,
                desc.application,
                hex::encode(change)
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
    let summary = bounded(summary, MAX_SUMMARY);
    let proposal = Proposal {
        application: desc.application.clone(),
        action: args.action,
        change,
        summary,
        created_ms: now_ms(),
    };
    let signed = proposal.sign(identity.signing());
    let (verified, text) = governor.send("POST", "/proposals", &signed)?;
    shell.status("Verified", governor.verified_line(&verified));
    let view = parse_view(&text)?;
    shell.status("Proposed", standing(&view));
    shell.out(&view.id)?;
    Ok(())
}

/// The plan `aex deploy --dry-run` prints, printed here too; or why it could not be computed
/// (it builds the modules and asks the nodes what runs: a node that is not reachable leaves
/// only the change digest, and the proposal says so rather than show a plan it did not make).
fn plan(
    app: &AppPath,
    desc: &Descriptor,
    identity: std::sync::Arc<aex_deploy::Identity>,
    shell: &Shell,
) -> std::result::Result<Vec<String>, String> {
    let dry_run = DeployOptions {
        dry_run: true,
        ..DeployOptions::default()
    };
    let planned = app
        .open_as(&desc.path, identity, shell)
        .and_then(|mut opened| {
            Ok(aex_deploy::ops::deploy::deploy(
                &mut opened,
                &dry_run,
                &Bars::new(shell),
            )?)
        });
    match planned {
        Ok(Deployed::Planned(plan)) => {
            crate::report::plan(&plan, shell);
            let lines = crate::report::plan_lines(&plan);
            if lines.is_empty() {
                shell.status("Plan", "nothing changes on the nodes");
            }
            Ok(lines)
        }
        Ok(Deployed::Applied(_)) => Err("a dry run applied changes".into()),
        Err(e) => {
            let why = format!("{e:#}");
            shell.warn(format!(
                "the plan could not be computed ({why}); the proposal carries the change \
                 digest only"
            ));
            Err(why)
        }
    }
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

/// `aex proposals`.
pub fn exec_proposals(args: ProposalsArgs, shell: &Shell) -> Result<()> {
    let (_, governor) = open(&args.app, args.path.as_ref(), &args.governor)?;
    let (views, text) = list(&governor, shell)?;
    if args.json {
        let value: serde_json::Value = serde_json::from_str(&text)?;
        shell.out(serde_json::to_string_pretty(&value)?)?;
        return Ok(());
    }
    if views.is_empty() {
        shell.status("Empty", "the governor holds no proposal");
        return Ok(());
    }
    shell.out(table(&views))?;
    if views.iter().any(|v| v.status == "accepted") {
        shell.note(NOT_APPLIED);
    }
    Ok(())
}

/// What `aex proposals` and `aex status` say under a table with an accepted proposal.
const NOT_APPLIED: &str =
    "accepted proposals are recorded, not applied: the governor does not apply them yet";

/// `aex status`'s part for a governed application whose descriptor names its governor: the
/// governor's proposals, verified as every member command verifies it (nothing when the
/// descriptor names no governor).
pub fn status_section(desc: &Descriptor, timeout: Option<Duration>, shell: &Shell) -> Result<()> {
    if desc.governor.is_none() {
        return Ok(());
    }
    let governor = Governor::of(
        desc,
        &Overrides::default(),
        timeout.unwrap_or(governor::TIMEOUT),
    )?;
    let (views, _) = list(&governor, shell)?;
    if views.is_empty() {
        shell.status("Proposals", "none: the governor holds no proposal");
        return Ok(());
    }
    shell.out(format!("\nproposals:\n{}", table(&views)))?;
    if views.iter().any(|v| v.status == "accepted") {
        shell.note(NOT_APPLIED);
    }
    Ok(())
}

/// The proposals as a table: id (its first 16 digits), action, proposer, status, approvals
/// of those required, rejections, rule.
fn table(views: &[View]) -> String {
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            vec![
                v.id[..v.id.len().min(16)].to_owned(),
                v.action.clone(),
                v.proposer.clone(),
                v.status.clone(),
                format!("{}/{}", v.approvals, v.required),
                v.rejections.to_string(),
                v.rule.clone(),
            ]
        })
        .collect();
    let header = [
        "ID",
        "ACTION",
        "PROPOSER",
        "STATUS",
        "APPROVALS",
        "REJECTIONS",
        "RULE",
    ];
    crate::table::render(&header, &rows)
}

/// `aex vote`.
pub fn exec_vote(args: VoteArgs, shell: &Shell) -> Result<()> {
    let (_, governor) = open(&args.app, args.path.as_ref(), &args.governor)?;
    let identity = args.app.identity(shell)?;
    warn_if_not_member(&governor, &identity, shell);
    let id = resolve_id(&governor, &args.id, shell)?;
    let vote = match args.vote {
        VoteArg::Approve => Vote::Approve,
        VoteArg::Reject => Vote::Reject,
    };
    let ballot = Ballot { proposal: id, vote }.sign(identity.signing());
    let (verified, text) =
        governor.send("POST", &format!("/proposals/{}/ballots", id.hex()), &ballot)?;
    shell.status("Verified", governor.verified_line(&verified));
    shell.status("Voted", standing(&parse_view(&text)?));
    Ok(())
}

/// `aex withdraw`.
pub fn exec_withdraw(args: WithdrawArgs, shell: &Shell) -> Result<()> {
    let (_, governor) = open(&args.app, args.path.as_ref(), &args.governor)?;
    let identity = args.app.identity(shell)?;
    let id = resolve_id(&governor, &args.id, shell)?;
    let withdrawal = Withdrawal { proposal: id }.sign(identity.signing());
    let (verified, text) = governor.send("POST", "/withdrawals", &withdrawal)?;
    shell.status("Verified", governor.verified_line(&verified));
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
    fn only_actions_that_keep_the_constitution_can_be_proposed() {
        assert_eq!(parse_action("deploy"), Ok(Action::Deploy));
        assert_eq!(parse_action("disable"), Ok(Action::Disable));
        let err = parse_action("add_member").unwrap_err();
        assert!(err.contains("changes the constitution"), "{err}");
        let err = parse_action("upgrade").unwrap_err();
        assert!(err.contains("`upgrade` is not a kind of action"), "{err}");
    }

    #[test]
    fn a_summary_is_cut_at_a_character_boundary() {
        assert_eq!(bounded("abc".into(), 5), "abc");
        assert_eq!(bounded("aé".into(), 2), "a");
        assert_eq!(bounded("aéb".into(), 3), "aé");
    }
}
