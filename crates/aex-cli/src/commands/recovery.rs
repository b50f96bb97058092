//! `aex recovery share|backup|submit`: a member keeps what restores the consortium's governor
//! on a new node when its node is lost for good (docs/ARCHITECTURE.md, "Recovery";
//! docs/PROTOCOL.md §13).
//!
//! `share` asks the governor for this member's recovery share with a signed request carrying
//! a fresh X25519 key, opens the sealed answer with the secret of that key (which never leaves
//! this process) and keeps the share in a file only its owner reads. `backup` keeps a copy of
//! the governor's encrypted backup. `submit` hands both to a new governor started with
//! `recover`, after the same checks as every governor request: its measurement, and the
//! constitution its certificate attests.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use aex_governance::recovery::{
    Backup, ReplySecret, SealedShare, ShareRequest, ShareSubmission, SHARE_LEN,
};
use aex_governance::signed::Signed;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::govern::{open, GovernorArgs};
use super::AppPath;
use crate::governor::{short, CHUNK};
use crate::shell::Shell;

/// Keep your recovery share and the governor's backup, and restore a lost governor
#[derive(Debug, Args)]
pub struct RecoveryArgs {
    #[command(subcommand)]
    command: RecoveryCommand,
    #[command(flatten)]
    pub(super) app: AppPath,
}

#[derive(Debug, Subcommand)]
enum RecoveryCommand {
    /// Fetch your recovery share (sealed to a key only this command holds) into a file only
    /// you can read [default: .aex/recovery/share.json beside the descriptor]
    Share {
        /// Descriptor file, or a directory holding aex.toml [default: current directory]
        path: Option<PathBuf>,
        /// Where to keep the share
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        governor: GovernorArgs,
    },
    /// Fetch the governor's latest encrypted backup [default: .aex/recovery/backup-SEQ.cbor]
    Backup {
        /// Descriptor file, or a directory holding aex.toml [default: current directory]
        path: Option<PathBuf>,
        /// Where to keep the backup
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        governor: GovernorArgs,
    },
    /// Hand your share and a backup to a new governor started with `recover` (give its URL
    /// with --governor, and its node with --governor-node)
    Submit {
        /// Descriptor file, or a directory holding aex.toml [default: current directory]
        path: Option<PathBuf>,
        /// Your share, as `aex recovery share` kept it
        #[arg(long, value_name = "FILE")]
        share: PathBuf,
        /// The backup, as `aex recovery backup` kept it
        #[arg(long, value_name = "FILE")]
        backup: PathBuf,
        #[command(flatten)]
        governor: GovernorArgs,
    },
}

/// A share as this member keeps it (JSON, mode 0600).
#[derive(Serialize, Deserialize)]
struct ShareFile {
    application: String,
    member: String,
    /// The recovery key's id, hex: the backup must name the same.
    key_id: String,
    threshold: u32,
    members: u32,
    /// The constitution's digest, hex.
    constitution: String,
    /// The share, hex. Secret.
    share: String,
}

impl Drop for ShareFile {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.share);
    }
}

/// `aex recovery`.
pub fn exec(args: RecoveryArgs, shell: &Shell) -> Result<()> {
    match args.command {
        RecoveryCommand::Share {
            path,
            out,
            governor,
        } => share(&args.app, path.as_ref(), out, &governor, shell),
        RecoveryCommand::Backup {
            path,
            out,
            governor,
        } => backup(&args.app, path.as_ref(), out, &governor, shell),
        RecoveryCommand::Submit {
            path,
            share,
            backup,
            governor,
        } => submit(&args.app, path.as_ref(), &share, &backup, &governor, shell),
    }
}

/// `.aex/recovery` beside the descriptor.
fn default_dir(descriptor: &Path) -> PathBuf {
    descriptor
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(".aex")
        .join("recovery")
}

fn share(
    app: &AppPath,
    path: Option<&PathBuf>,
    out: Option<PathBuf>,
    args: &GovernorArgs,
    shell: &Shell,
) -> Result<()> {
    let (desc, governor) = open(app, path, args)?;
    let identity = app.identity(shell)?;
    let application = desc.application.clone();
    let reply = ReplySecret::new();
    let request = ShareRequest {
        application: application.clone(),
        reply_key: reply.public(),
        created_ms: now_ms(),
    }
    .sign(identity.signing());
    let (verified, bytes) = governor.send_bytes("POST", "/recovery/share", &request)?;
    governor.announce(&verified, shell);
    let sealed = SealedShare::from_bytes(&bytes).context("the governor's answer")?;
    let secret = reply.open(&sealed).context("the governor's sealed share")?;
    let h = &sealed.header;
    if h.application != application || h.constitution != governor.constitution().digest() {
        bail!(
            "the governor sealed a share of application `{}` under constitution {}, not of \
             yours: nothing was kept",
            h.application,
            hex::encode(h.constitution)
        );
    }
    let file = ShareFile {
        application,
        member: h.member.clone(),
        key_id: hex::encode(h.key_id),
        threshold: h.threshold,
        members: h.members,
        constitution: hex::encode(h.constitution),
        share: hex::encode(&secret[..]),
    };
    let out = out.unwrap_or_else(|| default_dir(&desc.path).join("share.json"));
    let json = Zeroizing::new(serde_json::to_vec_pretty(&file)?);
    write_private(&out, &json)?;
    shell.status(
        "Kept",
        format!(
            "the recovery share of `{}` (key {}, {} of {} shares restore the governor) in {}",
            file.member,
            short(&file.key_id),
            file.threshold,
            file.members,
            out.display()
        ),
    );
    shell.note("keep it safe and apart from the backup; fetch it again after a member change");
    Ok(())
}

fn backup(
    app: &AppPath,
    path: Option<&PathBuf>,
    out: Option<PathBuf>,
    args: &GovernorArgs,
    shell: &Shell,
) -> Result<()> {
    let (desc, governor) = open(app, path, args)?;
    let (verified, bytes) = governor.send_bytes("GET", "/recovery/backup", b"")?;
    governor.announce(&verified, shell);
    let h = Backup::from_bytes(&bytes)
        .context("the governor's backup")?
        .header;
    if h.constitution != governor.constitution().digest() {
        bail!("the backup is of another constitution than yours: nothing was kept");
    }
    let out = out
        .unwrap_or_else(|| default_dir(&desc.path).join(format!("backup-{:08}.cbor", h.sequence)));
    write_private(&out, &bytes)?;
    shell.status(
        "Kept",
        format!(
            "backup {} ({} proposals, ledger {} entries{}; key {}) in {}",
            h.sequence,
            h.proposals,
            h.ledger_size,
            match h.ledger_root.is_empty() {
                true => String::new(),
                false => format!(" root {}", short(&h.ledger_root)),
            },
            short(&hex::encode(h.key_id)),
            out.display()
        ),
    );
    Ok(())
}

fn submit(
    app: &AppPath,
    path: Option<&PathBuf>,
    share_path: &Path,
    backup_path: &Path,
    args: &GovernorArgs,
    shell: &Shell,
) -> Result<()> {
    let (desc, governor) = open(app, path, args)?;
    let identity = app.identity(shell)?;
    let text = Zeroizing::new(
        fs::read(share_path).with_context(|| format!("cannot read {}", share_path.display()))?,
    );
    let file: ShareFile = serde_json::from_slice(&text).map_err(|e| {
        anyhow!(
            "{}: not a share `aex recovery share` kept: {e}",
            share_path.display()
        )
    })?;
    let share = Zeroizing::new(
        hex::decode(&file.share)
            .ok()
            .filter(|s| s.len() == SHARE_LEN)
            .ok_or_else(|| {
                anyhow!(
                    "{}: its share is not {SHARE_LEN} bytes of hex",
                    share_path.display()
                )
            })?,
    );
    let key_id: [u8; 32] = hex::decode(&file.key_id)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| anyhow!("{}: its key_id is not 64 hex digits", share_path.display()))?;
    let bytes =
        fs::read(backup_path).with_context(|| format!("cannot read {}", backup_path.display()))?;
    let h = Backup::from_bytes(&bytes)
        .with_context(|| format!("{}", backup_path.display()))?
        .header;
    if h.key_id != key_id {
        bail!(
            "your share is of recovery key {}, the backup of key {}: the shares of one key \
             open only its backups; use a backup made after you fetched your share",
            short(&file.key_id),
            short(&hex::encode(h.key_id))
        );
    }
    // A backup larger than a request body goes up as a binary first, named by its digest.
    let body = if bytes.len() > CHUNK {
        let digest = hex::encode(Sha256::digest(&bytes));
        governor.upload_binary(&digest, &bytes, "the recovery backup", shell)?;
        digest.into_bytes()
    } else {
        bytes.clone()
    };
    let (verified, _) = governor
        .send("POST", "/recovery/backup", &body)
        .context("POST /recovery/backup")?;
    governor.announce(&verified, shell);
    shell.status("Sent", format!("backup {}", h.sequence));
    let signed = ShareSubmission {
        application: desc.application.clone(),
        key_id,
        share: share.to_vec(),
    }
    .sign(identity.signing());
    let (_, text) = governor
        .send("POST", "/recovery/shares", &signed)
        .context("POST /recovery/shares")?;
    let status: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("the governor's answer is not its recovery status: {text}"))?;
    match status["state"].as_str() {
        Some("serving") => shell.status(
            "Recovered",
            format!(
                "the governor holds the consortium's state again (backup {}); fetch your new \
                 share with `aex recovery share`",
                h.sequence
            ),
        ),
        _ => {
            let names: Vec<&str> = status["shares"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            shell.status(
                "Waiting",
                format!(
                    "{} of {} shares ({}): the governor recovers once enough members submit",
                    names.len(),
                    status["threshold"],
                    names.join(", ")
                ),
            );
            if let Some(e) = status["error"].as_str() {
                shell.warn(e);
            }
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` (its directory made if missing), readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension("part");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| fs::rename(&tmp, path));
    written.with_context(|| format!("cannot write {}", path.display()))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
