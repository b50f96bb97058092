//! `aex bill`: verify a set of function receipts offline and total them per client
//! (`aex_metering::bill`).

use std::path::{Path, PathBuf};

use aex_metering::bill::{Billing, Origin};
use aex_metering::{ClientId, Receipt, ReceiptPublicKey};
use anyhow::{bail, Context, Result};
use clap::Args;

use crate::shell::Shell;

/// Verify function receipts offline and total them per client; exits non-zero if any receipt
/// is forged, altered, replayed or missing
#[derive(Debug, Args)]
pub struct BillArgs {
    /// Receipt files (each holds one or more binary receipts back to back)
    #[arg(value_name = "RECEIPTS", required = true)]
    receipts: Vec<PathBuf>,
    /// The module's receipt public key: 64 hex characters, or a file holding them (repeatable:
    /// a module moved to another node signs with that platform's key, its numbers going on)
    #[arg(long, value_name = "KEY|FILE", required_unless_present = "cert")]
    key: Vec<String>,
    /// The module's certificate (PEM, as `aex tls export` writes it): verified against the
    /// deployer's policy for `--module`, and the receipt key it attests used (repeatable)
    #[arg(long, value_name = "FILE.pem", requires = "module")]
    cert: Vec<PathBuf>,
    /// The module whose certificates `--cert` names (its measurement and node policy come from
    /// the deployer's state)
    #[arg(long, short = 'm')]
    module: Option<String>,
    /// A client's last sequence number, so that receipts dropped from the end show too
    /// (repeatable)
    #[arg(long, value_name = "CLIENT=LAST")]
    expect: Vec<String>,
    /// Print the bill as JSON (`clients`, `problems`) on stdout
    #[arg(long)]
    json: bool,
    /// Print each receipt as JSON on stdout, then the bill
    #[arg(long)]
    show: bool,
    #[command(flatten)]
    pub(super) app: super::AppPath,
}

pub fn exec(args: BillArgs, shell: &Shell) -> Result<()> {
    let mut keys = args
        .key
        .iter()
        .map(|k| read_key(k))
        .collect::<Result<Vec<_>>>()?;
    if let Some(module) = &args.module {
        let app = args.app.open(None, shell)?;
        let policy = aex_deploy::ops::tls::client_policy(&app, module)?;
        for cert in &args.cert {
            let pem = std::fs::read_to_string(cert)
                .with_context(|| format!("--cert: cannot read {}", cert.display()))?;
            let verified =
                aex_client::verify_certificate_pem(&pem, &policy).with_context(|| {
                    format!("--cert {}: not a certificate of `{module}`", cert.display())
                })?;
            let key = aex_metering::answer::attested_key(&verified.extra)
                .map_err(|e| anyhow::anyhow!("--cert {}: {e}", cert.display()))?;
            shell.status(
                "Verified",
                format!(
                    "{}: `{module}` ({}, measurement {}) attests receipt key {key}",
                    cert.display(),
                    verified.kind.name(),
                    verified.measurement
                ),
            );
            keys.push(key);
        }
    }
    let mut billing = Billing::with_keys(keys.iter().copied());
    let keys = keys
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    for expect in &args.expect {
        let (client, last) = parse_expect(expect)?;
        billing.expect_last(client, last);
    }
    let mut count = 0;
    for path in &args.receipts {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let receipts = Receipt::decode_all(&bytes)
            .with_context(|| format!("{} is not a receipt file", path.display()))?;
        if receipts.is_empty() {
            shell.warn(format!("{} holds no receipt", path.display()));
        }
        for (i, receipt) in receipts.into_iter().enumerate() {
            if args.show {
                shell.out(receipt.to_json())?;
            }
            let origin = Origin {
                source: path.display().to_string(),
                index: i + 1,
            };
            billing.add(origin, receipt);
            count += 1;
        }
    }
    let bill = billing.finish();
    if args.json {
        shell.out(serde_json::to_string_pretty(&bill)?)?;
    } else {
        let rows: Vec<Vec<String>> = bill
            .clients
            .iter()
            .map(|(client, t)| {
                vec![
                    client.to_string(),
                    t.invocations.to_string(),
                    t.failed.to_string(),
                    millis(t.cpu_ns),
                    millis(t.wall_ns),
                    t.peak_heap_max.to_string(),
                    t.input_bytes.to_string(),
                    t.output_bytes.to_string(),
                    t.last_sequence.to_string(),
                ]
            })
            .collect();
        shell.out(crate::table::render(
            &[
                "CLIENT",
                "CALLS",
                "FAILED",
                "CPU ms",
                "WALL ms",
                "PEAK HEAP B",
                "IN B",
                "OUT B",
                "LAST SEQ",
            ],
            &rows,
        ))?;
    }
    for problem in &bill.problems {
        shell.warn(problem.to_string());
    }
    if !bill.is_clean() {
        bail!(
            "{} problem(s) in {count} receipt(s) under key {keys}: see above; the totals count only receipts that verify, each sequence number once",
            bill.problems.len()
        );
    }
    shell.status(
        "Verified",
        format!(
            "{count} receipt(s) of {} client(s) under key {keys}: every signature verifies, no sequence number is missing or repeated",
            bill.clients.len()
        ),
    );
    Ok(())
}

/// Nanoseconds as milliseconds with three decimals.
fn millis(ns: u64) -> String {
    format!("{}.{:03}", ns / 1_000_000, (ns / 1_000) % 1_000)
}

/// `--key`: the key itself in hex, or a file holding it.
fn read_key(arg: &str) -> Result<ReceiptPublicKey> {
    if arg.len() == 64 && arg.bytes().all(|b| b.is_ascii_hexdigit()) {
        return arg
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--key: {e}"));
    }
    let path = Path::new(arg);
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--key {arg}: neither 64 hex characters nor a readable file"))?;
    text.trim()
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--key {}: {e}", path.display()))
}

/// `--expect CLIENT=LAST`.
fn parse_expect(arg: &str) -> Result<(ClientId, u64)> {
    let Some((client, last)) = arg.split_once('=') else {
        bail!("--expect {arg}: expected CLIENT=LAST (a 64-hex client id, `=`, a sequence number)");
    };
    let client: ClientId = client
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--expect {arg}: {e}"))?;
    let last = last
        .parse()
        .with_context(|| format!("--expect {arg}: LAST must be a sequence number (1, 2, ...)"))?;
    Ok((client, last))
}
