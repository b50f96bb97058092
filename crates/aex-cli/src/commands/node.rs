//! `aex node`: run a node agent in the foreground; `aex node provider-key`: the operator hands
//! one stakeholder its provider key for a `trustzone` or `sancus` node; `aex node identity` and
//! `aex node rotate-identity`: print or replace the node's identity key (what deployers pin).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use aex_node::NodeConfig;
use aex_proto::{DeployerKey, NodeKey};
use aex_tee::devices::DeviceSpec;
use aex_tee::{Provider, SimSymmetricPlatform, TeeKind};
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};

use crate::shell::Shell;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields` (with `message`).
    Json,
}

/// The log format `flag` asks for, else `AEX_LOG_FORMAT`'s, else text.
pub fn resolve(flag: Option<LogFormat>) -> LogFormat {
    flag.or_else(|| {
        std::env::var("AEX_LOG_FORMAT")
            .ok()
            .and_then(|v| clap::ValueEnum::from_str(&v, true).ok())
    })
    .unwrap_or(LogFormat::Text)
}

/// The node command's own lines on stderr, or none (JSON logs).
struct Announce<'a>(Option<&'a Shell>);

impl Announce<'_> {
    fn status(&self, verb: &str, message: impl AsRef<str>) {
        if let Some(shell) = self.0 {
            shell.status(verb, message);
        }
    }

    fn note(&self, message: impl AsRef<str>) {
        if let Some(shell) = self.0 {
            shell.note(message);
        }
    }
}

/// Run a node agent (untrusted: it loads modules and routes their ciphertexts)
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct NodeArgs {
    #[command(subcommand)]
    action: Option<NodeAction>,
    /// Node configuration file (TOML: name, listen, data_dir, tee, a `[timeouts]` table, ...);
    /// flags override it
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Node name
    #[arg(long)]
    name: Option<String>,
    /// Address to listen on
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Directory for the platform key, module binaries and logs
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// TEE kind of this node
    #[arg(long, value_name = "KIND")]
    tee: Option<String>,
    /// Accept `Shutdown` from admitted deployers (local development nodes started by `aex up`)
    #[arg(long)]
    allow_remote_shutdown: bool,
    /// Admit a deployer's public key (64 hex digits, from its `aex identity`); repeatable
    #[arg(long, value_name = "KEY")]
    admit: Vec<DeployerKey>,
    /// Admit the deployer keys in FILE (one per line, `#` starts a comment)
    #[arg(long, value_name = "FILE")]
    admit_file: Vec<PathBuf>,
    /// Admit ANY deployer (local development only; each still manages only its own
    /// applications)
    #[arg(long)]
    open: bool,
    /// How the node writes its log to stderr: `text` (for people) or `json` (one object per
    /// line, for log shippers) [env: AEX_LOG_FORMAT]
    #[arg(long, value_name = "FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Serve Prometheus metrics at http://ADDR/metrics (unauthenticated: a loopback or
    /// management address, e.g. 127.0.0.1:9464; port 0 picks one, written to metrics.addr)
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Admit links from the peer node with this identity key (64 hex digits, its
    /// node-identity.pub) even if no route names it; repeatable. Routes admit the nodes they
    /// name by themselves
    #[arg(long = "peer", value_name = "KEY")]
    peers: Vec<NodeKey>,
    /// Declare a simulated device, `NAME=KIND[@INITIAL]` with KIND digital_in, digital_out or
    /// `analog_in[:MAX]` (e.g. `valve=digital_out`, `soil=analog_in:100@35`); repeatable. Driver
    /// modules claim devices exclusively; `aex device` plays their physical world
    #[arg(long = "device", value_name = "SPEC", value_parser = DeviceSpec::parse)]
    devices: Vec<DeviceSpec>,
    /// Set a limit, NAME=VALUE (e.g. `max_connections=4096`, `module_queue=8MiB`); repeatable,
    /// over the configuration file's `[limits]`. Names: max_connections,
    /// max_connections_per_address, peer_queue, peer_queue_per_namespace, module_queue,
    /// deployer_requests_per_second, deployer_upload_bytes, deployer_modules, deployer_routes,
    /// deployer_peers
    #[arg(long = "limit", value_name = "NAME=VALUE")]
    limits: Vec<String>,
    /// The node's own timeouts from the global `--timeout NAME=DURATION` (set by
    /// `Cli::settle`); they override the configuration file's `[timeouts]`.
    #[arg(skip)]
    pub(super) timeouts: Vec<(&'static str, Duration)>,
}

/// What to do with a node's data directory instead of running the node.
#[derive(Debug, Subcommand)]
enum NodeAction {
    ProviderKey(Box<ProviderKeyArgs>),
    /// Print the node's identity key (created if the directory has none): what deployers pin
    /// as `identity` in their descriptor
    Identity {
        /// The node's data directory
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
    },
    /// Print an sgx node's public platform key (its `platform.pub`, written when it first
    /// starts): what deployers trust as `platform_key` for its simulated quotes
    PlatformKey {
        /// The node's data directory
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
    },
    /// Replace the node's identity key with a fresh one (the old secret is kept as
    /// node-identity.key.old); deployers refuse the node until they pin the new key. Stop the
    /// node first and start it again after
    RotateIdentity {
        /// The node's data directory
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
    },
}

/// Print or write a stakeholder's provider key for this trustzone or sancus node (the
/// operator's act): it derives that deployer's module keys on this node, and no one else's
#[derive(Debug, Args)]
struct ProviderKeyArgs {
    /// The node's data directory (it holds the node key, `<kind>-node.key`)
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// The node's TEE kind: trustzone or sancus
    #[arg(long, value_name = "KIND")]
    tee: String,
    /// The stakeholder's deployer public key (64 hex digits, as its `aex identity` prints it)
    #[arg(long, value_name = "KEY")]
    deployer: DeployerKey,
    /// Write the key to FILE (mode 0600) instead of printing it
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Print the key's fingerprint instead (public: descriptors pin it as
    /// `provider_key_fingerprint`, and a governed descriptor must)
    #[arg(long, conflicts_with = "output")]
    fingerprint: bool,
}

/// `aex node provider-key`: the key goes to one stakeholder, who names the file in its
/// descriptor (`provider_key_file`).
fn provider_key(args: ProviderKeyArgs, shell: &Shell) -> Result<()> {
    let kind = TeeKind::from_name(&args.tee)?;
    let symmetric = kind.symmetric().ok_or_else(|| {
        anyhow!(
            "a `{kind}` node has no provider keys: they belong to trustzone and sancus nodes \
             (deployers trust an sgx node's platform.pub, a native node nothing)"
        )
    })?;
    let platform = SimSymmetricPlatform::load(symmetric, &args.data_dir).with_context(|| {
        format!(
            "cannot derive a provider key from {}: pass the data directory of the running \
             {kind} node (`--data-dir` as given to `aex node`)",
            args.data_dir.display()
        )
    })?;
    let key = platform.provider_key(&Provider(args.deployer.0));
    let id = hex::encode(key.key_id());
    if args.fingerprint {
        shell.note(format!(
            "the fingerprint of deployer {}'s provider key on this {kind} node (key id {id}): \
             public, it pins the key as `provider_key_fingerprint` in the node's descriptor \
             entry and does not give it",
            args.deployer.short()
        ));
        shell.out(hex::encode(key.fingerprint()))?;
        return Ok(());
    }
    match &args.output {
        Some(file) => {
            key.write_file(file)
                .with_context(|| format!("cannot write {}", file.display()))?;
            shell.status(
                "Wrote",
                format!(
                    "the provider key of deployer {} on this {kind} node to {} (mode 0600, key \
                     id {id}); hand it to that deployer alone",
                    args.deployer.short(),
                    file.display()
                ),
            );
        }
        None => {
            shell.note(format!(
                "the provider key of deployer {} on this {kind} node (key id {id}) is a \
                 secret: hand it to that deployer alone",
                args.deployer.short()
            ));
            shell.out(hex::encode(key.expose_secret().expose_secret()))?;
        }
    }
    Ok(())
}

pub fn exec(args: NodeArgs, shell: &Shell) -> Result<()> {
    match args.action {
        Some(NodeAction::ProviderKey(args)) => return provider_key(*args, shell),
        Some(NodeAction::Identity { data_dir }) => return print_identity(&data_dir, shell),
        Some(NodeAction::PlatformKey { data_dir }) => return print_platform_key(&data_dir, shell),
        Some(NodeAction::RotateIdentity { data_dir }) => return rotate_identity(&data_dir, shell),
        None => {}
    }
    let mut config = match &args.config {
        Some(path) => NodeConfig::from_file(path)?,
        None => NodeConfig {
            name: "node".into(),
            listen: "127.0.0.1:7100".parse().expect("valid literal address"),
            data_dir: PathBuf::from("aex-node-data"),
            tee: aex_tee::TeeKind::Sgx,
            allow_remote_shutdown: false,
            admit: vec![],
            open: false,
            peers: vec![],
            devices: vec![],
            timeouts: aex_node::Timeouts::default(),
            limits: aex_node::Limits::default(),
            metrics: None,
        },
    };
    if let Some(n) = args.name {
        config.name = n;
    }
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if let Some(t) = args.tee {
        config.tee = aex_tee::TeeKind::from_name(&t)?;
    }
    config.allow_remote_shutdown |= args.allow_remote_shutdown;
    if args.metrics.is_some() {
        config.metrics = args.metrics;
    }
    config.admit.extend(args.admit);
    for file in &args.admit_file {
        config.admit.extend(aex_node::read_admit_file(file)?);
    }
    config.open |= args.open;
    config.peers.extend(args.peers);
    config.devices.extend(args.devices);
    for (name, limit) in args.timeouts {
        config.timeouts.set(name, limit)?;
    }
    config
        .timeouts
        .check()
        .context("invalid node timeouts (`[timeouts]` and `--timeout NAME=DURATION`)")?;
    for setting in &args.limits {
        config
            .limits
            .apply(setting)
            .with_context(|| format!("invalid `--limit {setting}`"))?;
    }
    config
        .limits
        .check()
        .context("invalid node limits (`[limits]` and `--limit NAME=VALUE`)")?;
    // Under `--log-format json` stderr carries only JSON lines (the node logs the same at
    // `info`): the announcements below are for people.
    let say = Announce((resolve(args.log_format) == LogFormat::Text).then_some(shell));
    if config.admit.is_empty() && !config.open {
        // The node would refuse to start; say so before announcing it.
        return Err(aex_node::NodeError::NoDeployers { node: config.name }.into());
    }
    if config.open {
        say.note(
            "warning: open mode: this node admits ANY deployer that connects; use it for local development only (`--admit KEY` admits one deployer)",
        );
    }
    // Port 0: the node picks one as it binds, after this line; it writes it to `node.addr`.
    let listen = match config.listen.port() {
        0 => format!(
            "a free port of {} (written to {})",
            config.listen.ip(),
            config.data_dir.join("node.addr").display()
        ),
        _ => config.listen.to_string(),
    };
    say.status(
        "Node",
        format!(
            "`{}` ({}) listening on {listen}, data in {}",
            config.name,
            config.tee,
            config.data_dir.display()
        ),
    );
    let defaults = aex_node::Timeouts::default();
    let changed: Vec<String> = aex_node::Timeouts::names()
        .into_iter()
        .filter(|name| config.timeouts.get(name) != defaults.get(name))
        .filter_map(|name| {
            let limit = config.timeouts.get(name)?;
            Some(format!("{name}={}", crate::timeout::show(limit)))
        })
        .collect();
    if !changed.is_empty() {
        say.status(
            "Timeouts",
            format!("{} (the others as by default)", changed.join(", ")),
        );
    }
    let default_limits = aex_node::Limits::default();
    let changed: Vec<String> = aex_node::Limits::names()
        .into_iter()
        .filter(|name| config.limits.get(name) != default_limits.get(name))
        .filter_map(|name| Some(format!("{name}={}", config.limits.show(name)?)))
        .collect();
    if !changed.is_empty() {
        say.status(
            "Limits",
            format!("{} (the others as by default)", changed.join(", ")),
        );
    }
    if !config.devices.is_empty() {
        let devices: Vec<String> = config.devices.iter().map(ToString::to_string).collect();
        say.status(
            "Devices",
            format!(
                "{} (play their physical world with `aex device {}`)",
                devices.join(", "),
                config.name
            ),
        );
    }
    aex_node::run_blocking(config).context("node agent failed")?;
    Ok(())
}

/// `aex node platform-key --data-dir DIR`.
fn print_platform_key(data_dir: &std::path::Path, shell: &Shell) -> Result<()> {
    let path = data_dir.join(aex_tee::PLATFORM_PUB_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        anyhow!(
            "cannot read {}: {e}; only an sgx node has a platform key, written when it first \
             starts (trustzone and sancus nodes hand each deployer a provider key instead: \
             `aex node provider-key`)",
            path.display()
        )
    })?;
    let key = text.trim();
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("{} does not hold a key in hex", path.display());
    }
    shell.out(key)?;
    Ok(())
}

/// `aex node identity --data-dir DIR`.
fn print_identity(data_dir: &std::path::Path, shell: &Shell) -> Result<()> {
    let (key, created) = aex_link::keys::load_or_create(data_dir)
        .with_context(|| format!("cannot use the node identity in {}", data_dir.display()))?;
    if created {
        shell.status(
            "Created",
            format!(
                "node identity {} (secret, mode 0600)",
                data_dir.join(aex_link::keys::IDENTITY_KEY_FILE).display()
            ),
        );
    }
    shell.out(format!("{}\n", key.public()))?;
    Ok(())
}

/// `aex node rotate-identity --data-dir DIR`.
fn rotate_identity(data_dir: &std::path::Path, shell: &Shell) -> Result<()> {
    if let Ok(pid) = std::fs::read_to_string(data_dir.join("node.pid")) {
        shell.warn(format!(
            "a node agent (pid {}) announces itself in {}: it keeps its old identity until it restarts",
            pid.trim(),
            data_dir.display()
        ));
    }
    let (old, new) = aex_link::keys::rotate(data_dir)
        .with_context(|| format!("cannot rotate the node identity in {}", data_dir.display()))?;
    match old {
        Some(old) => shell.status(
            "Rotated",
            format!(
                "node identity {old} → {} (the old secret is kept as {})",
                new.public(),
                data_dir.join(aex_link::keys::IDENTITY_OLD_FILE).display()
            ),
        ),
        None => shell.status("Created", format!("node identity {}", new.public())),
    }
    shell.note(format!(
        "deployers refuse this node until they pin the new key: `identity = \"{}\"` in the node's descriptor entry",
        new.public()
    ));
    shell.out(format!("{}\n", new.public()))?;
    Ok(())
}
