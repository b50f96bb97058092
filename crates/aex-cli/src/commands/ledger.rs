//! `aex ledger show|verify` and `aex receipt`: the application's audit ledger, read and checked
//! offline, and receipts for its entries.
//!
//! These commands read files only: the ledger the deployer keeps in the application's `.aex`
//! directory (`aex_deploy::audit`), or a copy of it (`--file`), and receipts. They reach no
//! node and take no lock, so anyone holding a copy can run them.

use std::path::{Path, PathBuf};

use aex_crypto::PUBLIC_IDENTITY_LEN;
use aex_ledger::entry::SIGNATURE;
use aex_ledger::{receipt, Entry, Expect};
use anyhow::{bail, Context, Result};
use ciborium::Value;
use clap::{Args, Subcommand};

use aex_client::Policy;
use aex_deploy::descriptor::Descriptor;

use crate::governor::Overrides;
use crate::shell::Shell;

/// Show and verify the application's audit ledger (offline)
#[derive(Debug, Args)]
pub struct LedgerArgs {
    #[command(subcommand)]
    command: LedgerCommand,
}

#[derive(Debug, Subcommand)]
enum LedgerCommand {
    /// Print every entry: position, time, kind and what it records
    Show(Source),
    /// Fetch a governed application's ledger from its governor into `.aex/ledger.cbor`
    /// (verified against the governor's attestation before it replaces the old copy)
    Fetch {
        /// Descriptor file, or a directory holding aex.toml [default: current directory]
        path: Option<PathBuf>,
        #[command(flatten)]
        governor: super::govern::GovernorArgs,
        #[command(flatten)]
        app: super::AppPath,
    },
    /// Check the ledger's hash chain and signed roots; names the first bad entry. For a
    /// descriptor that declares `[governance]`, also that every root is signed by a key the
    /// governor's attested certificate (recorded in the ledger) binds to its measurement
    Verify {
        #[command(flatten)]
        source: Source,
        /// Accept roots signed by this Ed25519 public key only (hex; repeatable) [default: any,
        /// and the signers are printed]
        #[arg(long = "signer", value_name = "KEY")]
        signers: Vec<String>,
        /// A receipt seen before: the ledger must still hold the entries its root covers
        /// (a truncated or rewritten ledger fails)
        #[arg(long, value_name = "RECEIPT")]
        seen: Option<PathBuf>,
    },
}

/// Which ledger.
#[derive(Debug, Args)]
struct Source {
    /// Descriptor file, or a directory holding aex.toml, whose `.aex/ledger.cbor` to read
    /// [default: current directory]
    path: Option<PathBuf>,
    /// Descriptor file, or a directory holding aex.toml (as the positional PATH)
    #[arg(
        short = 'C',
        long = "app",
        value_name = "PATH",
        conflicts_with = "path"
    )]
    app: Option<PathBuf>,
    /// A ledger file (a copy, say) instead of the application's (with `--app`, that
    /// descriptor still says whether and how its signer must be attested)
    #[arg(long, value_name = "LEDGER", conflicts_with = "path")]
    file: Option<PathBuf>,
}

impl Source {
    fn path(&self) -> PathBuf {
        if let Some(file) = &self.file {
            return file.clone();
        }
        let app = self
            .path
            .clone()
            .or_else(|| self.app.clone())
            .unwrap_or_else(|| PathBuf::from("."));
        ledger_of(&app)
    }

    /// The descriptor whose `[governance]` decides how the signer is checked: the one named,
    /// or the current directory's unless a `--file` alone is given.
    fn descriptor(&self) -> Option<PathBuf> {
        match (&self.path, &self.app, &self.file) {
            (Some(p), _, _) | (None, Some(p), _) => Some(p.clone()),
            (None, None, None) => Some(PathBuf::from(".")),
            (None, None, Some(_)) => None,
        }
    }

    fn read(&self) -> Result<(PathBuf, Vec<u8>)> {
        let path = self.path();
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "cannot read the ledger {} (the deployer starts it at the first deployment)",
                path.display()
            )
        })?;
        Ok((path, bytes))
    }
}

/// The ledger of the application whose descriptor (or its directory) is `app`.
fn ledger_of(app: &Path) -> PathBuf {
    let dir = if app.is_file() {
        app.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        app.to_path_buf()
    };
    aex_deploy::audit::ledger_path(&dir)
}

/// The governor's appraisal policies (its node's first) if the descriptor at `path` declares `[governance]`.
fn governed_policy(path: &Path, overrides: &Overrides) -> Result<Option<Vec<Policy>>> {
    let file = if path.is_dir() {
        path.join("aex.toml")
    } else {
        path.to_path_buf()
    };
    if !file.is_file() {
        return Ok(None);
    }
    let desc = Descriptor::load(&file).map_err(aex_deploy::Error::from)?;
    if desc.governance.is_none() {
        return Ok(None);
    }
    crate::governor::appraisals(&desc, overrides).map(Some)
}

/// Write a receipt for a ledger entry, or verify one (offline)
#[derive(Debug, Args)]
pub struct ReceiptArgs {
    /// The entry's position in the ledger (`aex ledger show` lists them)
    #[arg(required_unless_present = "verify")]
    entry: Option<u64>,
    /// Verify this receipt instead
    #[arg(long, value_name = "RECEIPT", conflicts_with = "entry")]
    verify: Option<PathBuf>,
    /// Where to write the receipt [default: receipt-ENTRY.cbor]
    #[arg(short, long, value_name = "FILE", conflicts_with = "verify")]
    output: Option<PathBuf>,
    /// Accept a root signed by this Ed25519 public key only (hex; repeatable) [default: any,
    /// and the signer is printed]
    #[arg(long = "signer", value_name = "KEY")]
    signers: Vec<String>,
    #[command(flatten)]
    source: Source,
}

fn keys(hex_keys: &[String]) -> Result<Vec<[u8; PUBLIC_IDENTITY_LEN]>> {
    hex_keys
        .iter()
        .map(|k| {
            hex::decode(k)
                .ok()
                .and_then(|b| <[u8; PUBLIC_IDENTITY_LEN]>::try_from(b).ok())
                .with_context(|| format!("`{k}` is not an Ed25519 public key (64 hex digits)"))
        })
        .collect()
}

pub fn exec(args: LedgerArgs, shell: &Shell) -> Result<()> {
    match args.command {
        LedgerCommand::Show(source) => show(&source, shell),
        LedgerCommand::Fetch {
            path,
            governor,
            app,
        } => fetch(path.as_ref(), &governor, &app, shell),
        LedgerCommand::Verify {
            source,
            signers,
            seen,
        } => {
            let (path, bytes) = source.read()?;
            let mut expect = Expect {
                signers: keys(&signers)?,
                seen: None,
            };
            if let Some(seen) = seen {
                let proven = read_receipt(&seen, &expect.signers)?;
                expect.seen = Some((proven.root.size, proven.root.root));
            }
            let summary = aex_ledger::verify(&bytes, &expect)
                .with_context(|| format!("the ledger {} does not verify", path.display()))?;
            let governed = match source.descriptor() {
                Some(d) => governed_policy(&d, &Overrides::default())?,
                None => None,
            };
            if let Some(policies) = governed {
                let attested = check_attested(&bytes, &policies, &expect)
                    .with_context(|| format!("the ledger {} does not verify", path.display()))?;
                shell.status(
                    "Attested",
                    format!(
                        "every signed root is by the governor's key {}, attested for \
                         measurement {}",
                        attested
                            .iter()
                            .map(hex::encode)
                            .collect::<Vec<_>>()
                            .join(", "),
                        policies[0]
                            .measurements
                            .iter()
                            .map(|m| m.to_hex())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
            shell.status(
                "Verified",
                format!(
                    "{}: {} entries, {} signed roots; the last covers {} entries{}",
                    path.display(),
                    summary.entries,
                    summary.signatures,
                    summary.signed,
                    match summary.unsigned {
                        0 => String::new(),
                        n => format!(" ({n} after it not yet signed)"),
                    }
                ),
            );
            if signers.is_empty() {
                for signer in &summary.signers {
                    shell.note(format!(
                        "signed by {} (pass `--signer {0}` to require that key)",
                        hex::encode(signer)
                    ));
                }
            }
            Ok(())
        }
    }
}

/// The keys attested by the ledger's certificates; every root must be signed by one of them
/// (and by one of `expect`'s signers, if it names any: checked before).
fn check_attested(
    bytes: &[u8],
    policies: &[Policy],
    expect: &Expect,
) -> Result<Vec<[u8; PUBLIC_IDENTITY_LEN]>> {
    let attested = super::ledger_governed::attested_signers(bytes, policies)?;
    aex_ledger::verify(
        bytes,
        &Expect {
            signers: attested.clone(),
            seen: expect.seen,
        },
    )
    .context("a root is signed by a key that no attested certificate in the ledger names")?;
    Ok(attested)
}

/// `aex ledger fetch`: the governor's ledger, verified (chain, roots, attested signer) before
/// it replaces the member's copy, which it must extend (a governor that served a shorter or
/// rewritten ledger than the one the member holds is caught here).
fn fetch(
    path: Option<&PathBuf>,
    args: &super::govern::GovernorArgs,
    app: &super::AppPath,
    shell: &Shell,
) -> Result<()> {
    let (desc, governor) = super::govern::open(app, path, args)?;
    let (verified, bytes) = governor.send_bytes("GET", "/ledger", b"")?;
    governor.announce(&verified, shell);
    let target = ledger_of(&desc.path);
    let mut expect = Expect::default();
    if let Ok(held) = std::fs::read(&target) {
        // The copy held must be a prefix: its last signed root must still be there.
        let summary = aex_ledger::verify(&held, &Expect::default()).with_context(|| {
            format!(
                "the copy held at {} does not verify; move it away to fetch anew",
                target.display()
            )
        })?;
        if summary.signed > 0 {
            expect.seen = super::ledger_governed::last_root(&held);
        }
    }
    let summary = aex_ledger::verify(&bytes, &expect).with_context(|| {
        format!(
            "the ledger the governor at {} served does not verify (or does not extend the copy \
             at {})",
            governor.url(),
            target.display()
        )
    })?;
    // The governor as it was just appraised, then its measurement on the descriptor's other
    // nodes (where it ran before a recovery).
    let mut policies = vec![governor.policy().clone()];
    policies.extend(crate::governor::appraisals(&desc, &Overrides::default()).unwrap_or_default());
    let attested = check_attested(&bytes, &policies, &expect)
        .with_context(|| format!("the ledger the governor at {} served", governor.url()))?;
    super::ledger_governed::write_atomically(&target, &bytes)?;
    shell.status(
        "Fetched",
        format!(
            "{}: {} entries, {} signed roots, signed by the attested governor key {}",
            target.display(),
            summary.entries,
            summary.signatures,
            attested
                .iter()
                .map(|k| hex::encode(&k[..8]))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    Ok(())
}

fn show(source: &Source, shell: &Shell) -> Result<()> {
    let (path, bytes) = source.read()?;
    let mut at = 0;
    let mut seq = 0;
    while at < bytes.len() {
        let (entry, used) = Entry::decode_prefix(&bytes[at..], seq)
            .with_context(|| format!("the ledger {} is damaged", path.display()))?;
        shell.out(format!(
            "{:>6}  {}  {:<18}  {}",
            entry.seq,
            time(entry.time_ms),
            entry.kind,
            describe(&entry)
        ))?;
        at += used;
        seq += 1;
    }
    if seq == 0 {
        shell.note(format!("{} holds no entry", path.display()));
    }
    Ok(())
}

/// An entry's time (milliseconds since the Unix epoch) in UTC, RFC 3339.
fn time(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || format!("{ms} ms"),
            |t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        )
}

/// One line for what an entry records.
fn describe(entry: &Entry) -> String {
    if entry.kind == SIGNATURE {
        return match aex_ledger::root::open(&entry.body, &[]) {
            Ok(root) => format!(
                "root {} over {} entries, by {}",
                &hex::encode(root.root)[..16],
                root.size,
                &hex::encode(root.signer)[..16]
            ),
            Err(why) => format!("(a signed root that does not open: {why})"),
        };
    }
    match ciborium::from_reader::<Value, _>(entry.body.as_slice()) {
        Ok(value) => render(&value),
        Err(_) => format!("({} bytes)", entry.body.len()),
    }
}

/// A CBOR value as compact JSON-like text (byte strings in hex).
fn render(value: &Value) -> String {
    match value {
        Value::Map(pairs) => {
            let inner: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}: {}", render_key(k), render(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(render).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Text(t) => format!("{t:?}"),
        Value::Bytes(b) => format!("h'{}'", hex::encode(b)),
        Value::Integer(i) => i128::from(*i).to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Float(f) => f.to_string(),
        Value::Tag(tag, inner) => format!("{tag}({})", render(inner)),
        _ => "?".into(),
    }
}

fn render_key(key: &Value) -> String {
    match key {
        Value::Text(t) => t.clone(),
        other => render(other),
    }
}

/// The receipt in `file`, verified (signed by one of `signers`, or anyone if empty).
fn read_receipt(file: &Path, signers: &[[u8; PUBLIC_IDENTITY_LEN]]) -> Result<receipt::Proven> {
    let bytes = std::fs::read(file)
        .with_context(|| format!("cannot read the receipt {}", file.display()))?;
    receipt::verify(&bytes, signers)
        .with_context(|| format!("the receipt {} does not verify", file.display()))
}

pub fn exec_receipt(args: ReceiptArgs, shell: &Shell) -> Result<()> {
    let signers = keys(&args.signers)?;
    if let Some(file) = args.verify {
        let proven = read_receipt(&file, &signers)?;
        shell.status(
            "Verified",
            format!(
                "entry {} ({}) is in the ledger under a root over {} entries signed by {}",
                proven.entry.seq,
                proven.entry.kind,
                proven.root.size,
                hex::encode(proven.root.signer)
            ),
        );
        shell.out(describe(&proven.entry))?;
        return Ok(());
    }
    let Some(entry) = args.entry else {
        bail!("name the entry to write a receipt for, or `--verify RECEIPT`");
    };
    let (path, bytes) = args.source.read()?;
    let expect = Expect {
        signers,
        seen: None,
    };
    let receipt = aex_ledger::receipt_for(&bytes, entry, &expect)
        .with_context(|| format!("the ledger {} does not verify", path.display()))?
        .with_context(|| {
            format!(
                "no signed root covers entry {entry} of {} yet, or it has no such entry (`aex ledger show` lists them)",
                path.display()
            )
        })?;
    let output = args
        .output
        .unwrap_or_else(|| PathBuf::from(format!("receipt-{entry}.cbor")));
    std::fs::write(&output, &receipt)
        .with_context(|| format!("cannot write {}", output.display()))?;
    shell.status(
        "Wrote",
        format!(
            "{} ({} bytes); anyone can check it with `aex receipt --verify {}`",
            output.display(),
            receipt.len(),
            output.display()
        ),
    );
    Ok(())
}
