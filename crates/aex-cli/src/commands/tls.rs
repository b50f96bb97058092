//! `aex fetch` and `aex tls`: act as a client of a module's attested HTTPS, appraising its
//! certificate with the policy the deployer attested it under (`aex_deploy::ops::tls`).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use aex_client::{ClientKey, Session, Verified};
use aex_deploy::ops;
use aex_metering::answer;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use super::AppPath;
use crate::shell::Shell;

/// How long a client waits to connect and for each read and write, unless `--timeout` says.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

/// Fetch a URL from a module over attested HTTPS: the module's certificate must carry
/// evidence that passes the deployer's appraisal (its measurement, TEE kind, policy)
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// `https://HOST:PORT/PATH` the module serves
    url: String,
    /// The module serving it (its measurement and node policy come from the deployer's state)
    #[arg(long, short = 'm')]
    module: String,
    /// HTTP method
    #[arg(long, short = 'X', default_value = "GET")]
    method: String,
    /// Client key file for mutual TLS (created on first use, mode 0600); the module sees its
    /// fingerprint as the client's id. Without it the client is anonymous
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Skip asking for fresh evidence bound to the session
    #[arg(long)]
    no_fresh: bool,
    /// Send the bytes of FILE as the request body
    #[arg(long, short = 'd', value_name = "FILE")]
    data: Option<PathBuf>,
    /// Write the answer's body to FILE instead of printing it
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Append the receipt of a metered function call to FILE (after checking it: signed by the
    /// receipt key the verified certificate attests, for this client, input and output)
    #[arg(long, value_name = "FILE")]
    receipts: Option<PathBuf>,
    #[command(flatten)]
    pub(super) app: AppPath,
}

/// Attested TLS: pinned certificates for ordinary clients, client key fingerprints
#[derive(Debug, Args)]
pub struct TlsArgs {
    #[command(subcommand)]
    command: TlsCommand,
}

#[derive(Debug, Subcommand)]
enum TlsCommand {
    /// Verify a module once and write its certificate (PEM) for clients that only know
    /// ordinary TLS: `curl --cacert FILE https://...`
    Export {
        /// The module
        module: String,
        /// `https://HOST:PORT/` or `HOST:PORT` it serves
        #[arg(long)]
        url: String,
        /// Where to write the certificate
        #[arg(long, short = 'o', value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        app: AppPath,
    },
    /// Verify a module with the deployer's own appraisal and sign an endorsement of its TLS
    /// key with the application's endorsement key: how outside Rust clients trust a module on
    /// a symmetric TEE kind (trustzone, sancus), whose evidence only the deployer can check
    Endorse {
        /// The module
        module: String,
        /// `https://HOST:PORT/` or `HOST:PORT` it serves
        #[arg(long)]
        url: String,
        /// Where to write the endorsement (one line of text)
        #[arg(long, short = 'o', value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        app: AppPath,
    },
    /// Print the application's endorsement public key (created on first use in `.aex/`),
    /// which outside clients pin
    EndorsementKey {
        #[command(flatten)]
        app: AppPath,
    },
    /// Print the fingerprint (SHA-256 of the public key) of a client key file, creating the
    /// key on first use: what a customer registers with a provider
    Fingerprint {
        /// The client key file
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
}

impl TlsArgs {
    /// The application options, for the commands that take one.
    pub(super) fn app_path(&mut self) -> Option<&mut AppPath> {
        match &mut self.command {
            TlsCommand::Export { app, .. }
            | TlsCommand::Endorse { app, .. }
            | TlsCommand::EndorsementKey { app } => Some(app),
            TlsCommand::Fingerprint { .. } => None,
        }
    }
}

/// `https://HOST:PORT/PATH` (or `HOST:PORT/PATH`): the address and the path.
fn parse_url(url: &str) -> Result<(SocketAddr, String)> {
    let rest = match url.split_once("://") {
        Some(("https", rest)) => rest,
        Some((scheme, _)) => bail!("`{url}`: scheme `{scheme}`, expected https"),
        None => url,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = authority
        .to_socket_addrs()
        .with_context(|| format!("`{url}`: `{authority}` is not HOST:PORT"))?
        .next()
        .with_context(|| format!("`{url}`: `{authority}` has no address"))?;
    Ok((addr, path.to_owned()))
}

fn connect(
    app: &aex_deploy::App,
    module: &str,
    addr: SocketAddr,
    key: Option<&ClientKey>,
) -> Result<Session> {
    let policy = ops::tls::client_policy(app, module)?;
    let timeout = app.timeout_or(CLIENT_TIMEOUT);
    aex_client::connect(addr, &policy, key, timeout)
        .with_context(|| format!("module `{module}` at {addr} was not accepted"))
}

/// One line saying what was verified.
fn verified_line(module: &str, v: &Verified) -> String {
    let root = match (v.insecure, v.simulated) {
        (true, _) => "no TEE (insecure, allowed by the descriptor)",
        (false, true) => "simulated",
        (false, false) => "hardware",
    };
    let extra = match v.extra.len() {
        0 => String::new(),
        _ => format!(
            ", extra keys: {}",
            v.extra
                .iter()
                .map(|(n, k)| format!("{n} {}", hex::encode(k)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!(
        "`{module}`: {} ({root}{}), measurement {}, TLS key sha256:{}{extra}",
        v.kind.name(),
        if v.debug { ", debug" } else { "" },
        v.measurement,
        hex::encode(v.key_fingerprint),
    )
}

pub fn exec_fetch(args: FetchArgs, shell: &Shell) -> Result<()> {
    let (addr, path) = parse_url(&args.url)?;
    let app = args.app.open(None, shell)?;
    let key_file = args
        .key
        .as_deref()
        .map(ClientKey::load_or_create)
        .transpose()?;
    let key = &key_file;
    let mut session = connect(&app, &args.module, addr, key.as_ref())?;
    shell.status("Verified", verified_line(&args.module, session.verified()));
    if !args.no_fresh {
        let fresh = session
            .fresh_evidence()
            .with_context(|| format!("module `{}` gave no fresh evidence", args.module))?;
        shell.status(
            "Fresh",
            format!(
                "evidence answering this session's TLS exporter (nonce {})",
                hex::encode(fresh.nonce)
            ),
        );
    }
    if let Some(key) = &key {
        shell.status(
            "Client",
            format!("key sha256:{}", hex::encode(key.fingerprint())),
        );
    }
    let input = match &args.data {
        Some(file) => std::fs::read(file)
            .with_context(|| format!("--data: cannot read {}", file.display()))?,
        None => Vec::new(),
    };
    let receipt_key = session.verified().extra.clone();
    let answer = session.send(&args.method, &path, &input)?;
    let code = answer.status;
    shell.status("Answered", format!("{code}"));
    if let Some(value) = answer.header(answer::RECEIPT_HEADER) {
        let receipt = answer::decode_header(value).map_err(anyhow::Error::msg)?;
        let key = answer::attested_key(&receipt_key).map_err(anyhow::Error::msg)?;
        let Some(client) = &key_file else {
            bail!("the module sent a receipt to an anonymous client");
        };
        let function = path.split('?').next().unwrap_or_default();
        let function = function.rsplit('/').next().unwrap_or_default();
        answer::check(
            &receipt,
            &key,
            aex_metering::ClientId(client.fingerprint()),
            function,
            &input,
            &answer.body,
        )
        .map_err(|e| anyhow::anyhow!("{} {path}: the receipt was refused: {e}", args.method))?;
        shell.status(
            "Receipt",
            format!(
                "`{}` #{} for this client, verified under the attested receipt key {key}: CPU {} µs, wall {} µs, peak heap {} B, {} B in, {} B out",
                receipt.function,
                receipt.sequence,
                receipt.usage.cpu_ns / 1000,
                receipt.usage.wall_ns / 1000,
                receipt.usage.peak_heap_bytes,
                receipt.usage.input_bytes,
                receipt.usage.output_bytes,
            ),
        );
        if let Some(file) = &args.receipts {
            append(file, &receipt.encode())?;
        }
    } else if args.receipts.is_some() {
        shell.warn(format!(
            "{} {path}: the answer carries no receipt",
            args.method
        ));
    }
    match &args.output {
        Some(file) => std::fs::write(file, &answer.body)
            .with_context(|| format!("--output: cannot write {}", file.display()))?,
        None => shell.out(String::from_utf8_lossy(&answer.body).trim_end())?,
    }
    if !(200..300).contains(&code) {
        bail!("{} {path} answered {code}", args.method);
    }
    Ok(())
}

/// Appends `bytes` to `file`, creating it.
fn append(file: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .and_then(|mut f| f.write_all(bytes))
        .with_context(|| format!("--receipts: cannot append to {}", file.display()))
}

pub fn exec_tls(args: TlsArgs, shell: &Shell) -> Result<()> {
    match args.command {
        TlsCommand::Export {
            module,
            url,
            out,
            app,
        } => {
            let (addr, _) = parse_url(&url)?;
            let app = app.open(None, shell)?;
            let session = connect(&app, &module, addr, None)?;
            let v = session.verified();
            std::fs::write(&out, v.certificate_pem())
                .with_context(|| format!("cannot write {}", out.display()))?;
            shell.status("Verified", verified_line(&module, v));
            shell.status(
                "Wrote",
                format!(
                    "{}: `curl --cacert {0} {url}` trusts this instance of `{module}` only (a new instance has a new key: export again after `aex update`)",
                    out.display()
                ),
            );
            Ok(())
        }
        TlsCommand::Endorse {
            module,
            url,
            out,
            app,
        } => {
            let (addr, _) = parse_url(&url)?;
            let app = app.open(None, shell)?;
            let session = connect(&app, &module, addr, None)?;
            let (key, created) = ops::tls::endorsement_key(&app)?;
            if created {
                shell.status(
                    "Created",
                    format!(
                        "the application's endorsement key {} (secret, mode 0600)",
                        key.path().display()
                    ),
                );
            }
            let endorsement = session.verified().endorse(key.signing());
            std::fs::write(&out, endorsement.to_text())
                .with_context(|| format!("cannot write {}", out.display()))?;
            shell.status("Verified", verified_line(&module, session.verified()));
            shell.status(
                "Endorsed",
                format!(
                    "{}: clients that pin the endorsement key {} trust this instance of `{module}` (a new instance needs a new endorsement)",
                    out.display(),
                    hex::encode(endorsement.signer)
                ),
            );
            Ok(())
        }
        TlsCommand::EndorsementKey { app } => {
            let app = app.open(None, shell)?;
            let (key, _) = ops::tls::endorsement_key(&app)?;
            shell.out(key.public().to_string())?;
            Ok(())
        }
        TlsCommand::Fingerprint { key } => {
            let key = ClientKey::load_or_create(&key)?;
            shell.out(hex::encode(key.fingerprint()))?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let (addr, path) = parse_url("https://127.0.0.1:8088/a?b").unwrap();
        assert_eq!((addr.port(), path.as_str()), (8088, "/a?b"));
        assert_eq!(parse_url("127.0.0.1:1").unwrap().1, "/");
        assert!(parse_url("http://127.0.0.1:1/")
            .unwrap_err()
            .to_string()
            .contains("expected https"));
        assert!(parse_url("https://127.0.0.1/").is_err());
    }
}
