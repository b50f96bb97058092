//! `aex governor provider-key NODE`: the operator of a `trustzone` or `sancus` node of a
//! governed application hands the governor the provider key of the governor's identity on
//! that node (docs/TUTORIAL.md 5g).
//!
//! The governed nodes admit one identity, the governor's, so the provider key appraisal needs
//! there is the one the node derives for the governor's deployer key. The key is a secret of
//! the governor alone: it goes only over the attested channel, after the same checks a member
//! makes (the governor's measurement on its pinned node, and the constitution of the
//! operator's descriptor in its certificate), and for the deployer key that very certificate
//! attests. From the node's data directory the key is derived here and never written to a
//! file; `--key-file` takes one `aex node provider-key --deployer KEY -o FILE` wrote.

use std::path::PathBuf;

use aex_tee::{Provider, ProviderKey, SimSymmetricPlatform};
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::govern::{self, GovernorArgs};
use super::AppPath;
use crate::governor::{short, IDENTITY_KEY_NAME};
use crate::shell::Shell;

/// Work with the consortium's governor as the operator of one of its nodes
#[derive(Debug, Args)]
pub struct GovernorCmdArgs {
    #[command(subcommand)]
    action: GovernorAction,
    #[command(flatten)]
    pub(super) app: AppPath,
}

#[derive(Debug, Subcommand)]
enum GovernorAction {
    ProviderKey(ProviderKeyArgs),
}

/// Hand the governor the provider key of its identity on your trustzone or sancus node NODE,
/// over its attested channel (it keeps it sealed): the governed application's modules on NODE
/// are appraised with it
#[derive(Debug, Args)]
struct ProviderKeyArgs {
    /// The node, as the governed descriptor names it
    node: String,
    /// Descriptor file, or a directory holding aex.toml [default: current directory]
    path: Option<PathBuf>,
    /// The node's data directory (holding its node key): the key is derived here for the
    /// governor's attested identity
    #[arg(long, value_name = "DIR", required_unless_present = "key_file")]
    data_dir: Option<PathBuf>,
    /// A provider key file instead, as `aex node provider-key --deployer KEY -o FILE` writes it
    /// for the governor's key (`GET /identity`)
    #[arg(long, value_name = "FILE", conflicts_with = "data_dir")]
    key_file: Option<PathBuf>,
    #[command(flatten)]
    governor: GovernorArgs,
}

/// What the governor answers: the node and the key's public id.
#[derive(Deserialize)]
struct Held {
    node: String,
    key_id: String,
    #[serde(default)]
    replaced: bool,
}

pub fn exec(args: GovernorCmdArgs, shell: &Shell) -> Result<()> {
    match args.action {
        GovernorAction::ProviderKey(a) => provider_key(a, &args.app, shell),
    }
}

fn provider_key(args: ProviderKeyArgs, app: &AppPath, shell: &Shell) -> Result<()> {
    let (desc, governor) = govern::open(app, args.path.as_ref(), &args.governor)?;
    let spec = desc.node(&args.node).ok_or_else(|| {
        anyhow!(
            "{} has no node `{}`; its nodes: {}",
            desc.path.display(),
            args.node,
            desc.nodes
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let kind = spec.tee.symmetric().ok_or_else(|| {
        anyhow!(
            "node `{}` is `{}`: only trustzone and sancus nodes have provider keys (the \
             governor appraises an sgx node with the descriptor's `platform_key`)",
            args.node,
            spec.tee
        )
    })?;
    // The identity the governor's certificate attests, from a verified connection.
    let (verified, _) = governor.send("GET", "/identity", b"")?;
    governor.announce(&verified, shell);
    let identity: [u8; 32] = verified
        .extra(IDENTITY_KEY_NAME)
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .ok_or_else(|| {
            anyhow!("the governor's certificate attests no deployer key (`{IDENTITY_KEY_NAME}`)")
        })?;
    let key = match (&args.data_dir, &args.key_file) {
        (Some(dir), _) => SimSymmetricPlatform::load(kind, dir)
            .with_context(|| {
                format!(
                    "cannot derive a provider key from {}: pass the data directory of node \
                     `{}` (`--data-dir` as given to `aex node`), which holds its {} node key",
                    dir.display(),
                    args.node,
                    kind.name()
                )
            })?
            .provider_key(&Provider(identity)),
        (None, Some(file)) => ProviderKey::read_file(file)?,
        (None, None) => bail!("give --data-dir DIR or --key-file FILE"),
    };
    let body = Zeroizing::new(hex::encode(key.expose_secret().expose_secret()));
    let path = format!("/provider-keys/{}", args.node);
    let (_, text) = governor
        .send("PUT", &path, body.as_bytes())
        .with_context(|| format!("PUT {path}"))?;
    let held: Held = serde_json::from_str(&text)
        .with_context(|| format!("the governor's answer is not what this aex reads: {text}"))?;
    if held.node != args.node || held.key_id != hex::encode(key.key_id()) {
        bail!(
            "the governor says it holds key id {} for node `{}`, not key id {} for `{}`",
            held.key_id,
            held.node,
            hex::encode(key.key_id()),
            args.node
        );
    }
    shell.status(
        "Handed",
        format!(
            "the provider key of the governor's identity {} on {} node `{}` (key id {}) to the \
             governor at {}, which keeps it sealed{}",
            short(&hex::encode(identity)),
            kind.name(),
            args.node,
            held.key_id,
            governor.url(),
            if held.replaced {
                "; it replaces the key held before"
            } else {
                ""
            }
        ),
    );
    if args.key_file.is_some() {
        shell.note(
            "note: a key file is not checked against the node here: if it is not the node's key \
             for the governor's identity, the governor's appraisal on the node fails, naming it",
        );
    }
    shell.note(
        "note: a proposal that failed for want of this key is carried out again on \
         `POST /proposals/ID/apply` to the governor",
    );
    Ok(())
}
