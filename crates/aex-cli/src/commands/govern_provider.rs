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
//! file; `--key-file` takes one `aex node provider-key --deployer KEY -o FILE` wrote. Either
//! way the key is sent only if its fingerprint is the one the descriptor pins for the node.

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
    fingerprint: String,
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
    // The members approved the key by its fingerprint: another is not sent (the governor
    // would not use it, and the operator learns here, not from a failed proposal).
    let fingerprint = hex::encode(key.fingerprint());
    match spec.provider_key_fingerprint.map(hex::encode) {
        Some(pinned) if pinned == fingerprint => {}
        Some(pinned) => bail!(
            "this key's fingerprint is {fingerprint}, but {} pins {pinned} for node `{}`: it is \
             not the key the members approved, so it is not sent. {}",
            desc.path.display(),
            args.node,
            match &args.key_file {
                Some(f) => format!(
                    "{} may hold another identity's key or another node's",
                    f.display()
                ),
                None => "Is this the data directory of that node?".to_owned(),
            }
        ),
        None => bail!(
            "{} pins no `provider_key_fingerprint` for node `{}`, so the governor would use no \
             key there: the members add `provider_key_fingerprint = \"{fingerprint}\"` to its \
             entry with a proposal",
            desc.path.display(),
            args.node
        ),
    }
    let body = Zeroizing::new(hex::encode(key.expose_secret().expose_secret()));
    let path = format!("/provider-keys/{}", args.node);
    let (_, text) = governor
        .send("PUT", &path, body.as_bytes())
        .with_context(|| format!("PUT {path}"))?;
    let held: Held = serde_json::from_str(&text)
        .with_context(|| format!("the governor's answer is not what this aex reads: {text}"))?;
    if held.node != args.node || held.fingerprint != fingerprint {
        bail!(
            "the governor says it holds the key of fingerprint {} for node `{}`, not {} for `{}`",
            held.fingerprint,
            held.node,
            fingerprint,
            args.node
        );
    }
    shell.status(
        "Handed",
        format!(
            "the provider key of the governor's identity {} on {} node `{}` (fingerprint {}, as \
             the descriptor pins it) to the governor at {}, which keeps it sealed{}",
            short(&hex::encode(identity)),
            kind.name(),
            args.node,
            held.fingerprint,
            governor.url(),
            if held.replaced {
                "; it replaces the key held before"
            } else {
                ""
            }
        ),
    );
    shell.note(
        "note: a proposal that failed for want of this key is carried out again with `aex retry \
         ID`",
    );
    Ok(())
}
