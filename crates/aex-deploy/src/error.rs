//! The deployer's error type: what failed, where, and what to do about it.
//!
//! Each variant names the module, node or file involved; [`Error::help`] gives the user a next
//! step. The `aex` binary prints the variant, its cause chain, then the help line.

use std::path::PathBuf;

use aex_proto::CommandError;
use aex_tee::AppraisalError;

use crate::build::BuildError;
use crate::client::ClientError;
use crate::descriptor::DescriptorError;
use crate::duration::show_duration;
use crate::identity::IdentityError;
use crate::state::StateError;

/// Result alias for deployer operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A deployer operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The descriptor is invalid.
    #[error(transparent)]
    Descriptor(#[from] Box<DescriptorError>),
    /// The deployer's state file failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The deployer's identity file could not be used.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The module builder could not be set up as the environment asks (the `AEX_PREBUILT`
    /// manifest cannot be read, say).
    #[error(transparent)]
    Builder(BuildError),
    /// The caller could not take what an operation reports (its output closed, say): the
    /// operation stops there, as it would at any other failure.
    #[error(transparent)]
    Output(std::io::Error),
    /// A `[[run]]` command of the descriptor did not start or did not succeed.
    #[error("`[[run]]` command `{command}` {message}")]
    Run {
        /// The command, its words joined by spaces.
        command: String,
        /// What happened: could not start (why), or its exit status.
        message: String,
    },
    /// The application's audit ledger could not be appended to (or is not a valid ledger).
    #[error("cannot record the change in the audit ledger {}", path.display())]
    Ledger {
        /// The ledger's file.
        path: std::path::PathBuf,
        /// What is wrong.
        #[source]
        source: aex_ledger::Error,
    },
    /// A module did not build.
    #[error("failed to build module `{module}`")]
    Build {
        /// Module name.
        module: String,
        /// Why.
        #[source]
        source: BuildError,
    },
    /// A node could not be reached.
    #[error("cannot reach node `{node}` at {addr}")]
    Unreachable {
        /// Node name.
        node: String,
        /// Its address.
        addr: String,
        /// Why.
        #[source]
        source: ClientError,
    },
    /// A node refused or failed a management request.
    #[error("node `{node}` failed to {action}")]
    Node {
        /// Node name.
        node: String,
        /// What was asked, e.g. "load module `ping`".
        action: String,
        /// Why.
        #[source]
        source: ClientError,
    },
    /// Attestation of a module failed.
    #[error("failed to attest module `{module}` on node `{node}`")]
    Attestation {
        /// Module name.
        module: String,
        /// Node name.
        node: String,
        /// Why.
        #[source]
        source: AttestError,
    },
    /// A module's reply to a command was not authentic.
    #[error("command to module `{module}` failed")]
    Command {
        /// Module name.
        module: String,
        /// Why.
        #[source]
        source: CommandError,
    },
    /// A module authentically refused a command.
    #[error("module `{module}` refused to {action}: {message}")]
    Refused {
        /// Module name.
        module: String,
        /// What was asked.
        action: String,
        /// The module's message.
        message: String,
    },
    /// The descriptor names no trusted platform identity for a node.
    #[error("no trusted platform identity for node `{node}`")]
    NoPlatformKey {
        /// Node name.
        node: String,
        /// Where it was looked for.
        looked: Option<PathBuf>,
    },
    /// The node at a node's address has another identity than the one pinned for it.
    #[error(
        "node `{node}` at {addr} is not the node pinned in the descriptor: its identity key is \
         {}, but {} is pinned for it (by {pinned_by})",
        keys.actual,
        keys.pinned
    )]
    NodeIdentity {
        /// Node name.
        node: String,
        /// Its address.
        addr: String,
        /// The pinned key and the key the node at the address has.
        keys: Box<aex_link::KeyMismatch>,
        /// The descriptor field or file that pins it.
        pinned_by: String,
    },
    /// No identity key is pinned for a node.
    #[error("no identity key pinned for node `{node}`")]
    NoNodeIdentity {
        /// Node name.
        node: String,
        /// The file read.
        looked: PathBuf,
        /// Whether the descriptor named that file (`identity_file`).
        from_descriptor: bool,
        /// Why it could not be read.
        #[source]
        source: Box<aex_link::keys::KeyFileError>,
    },
    /// A symmetric node's provider key file cannot be used.
    #[error("no usable provider key for node `{node}`")]
    ProviderKey {
        /// Node name.
        node: String,
        /// This deployer's identity (public), whose provider key it must be.
        deployer: String,
        /// Why.
        #[source]
        source: aex_tee::ProviderKeyError,
    },
    /// The provider key held for a symmetric node is not the one the descriptor pins
    /// (`provider_key_fingerprint`): it is not used, so no evidence is appraised with it.
    #[error(
        "the provider key held for node `{node}` has fingerprint {held}, not the {pinned} the \
         descriptor pins (`provider_key_fingerprint`): it is not used"
    )]
    ProviderKeyPin {
        /// Node name.
        node: String,
        /// The descriptor's fingerprint, hex.
        pinned: String,
        /// The held key's fingerprint, hex (public: it does not give the key).
        held: String,
        /// This deployer's identity (public), whose provider key it must be.
        deployer: String,
    },
    /// A module's attested TLS cannot be checked with what the deployer holds.
    #[error("module `{module}`: {message}")]
    Tls {
        /// Module name.
        module: String,
        /// Why.
        message: String,
    },
    /// The descriptor declares `[governance]`, and this command would change nodes under this
    /// deployer's key alone: a governed application changes only through its governor.
    #[error(
        "`{command}` refused: {}{} declares `[governance]`: its nodes change only through its \
         governor, once the members' rules accept a proposal; `{command}` would act under this \
         single deployer key",
        file.display(),
        line.map(|l| format!(":{l}")).unwrap_or_default()
    )]
    Governed {
        /// The refused command, e.g. `aex deploy`.
        command: &'static str,
        /// The descriptor.
        file: PathBuf,
        /// The line of `[governance]`, when known.
        line: Option<usize>,
    },
    /// A governed deployment's bundle cannot be made, or does not match what it names.
    #[error("the bundle for the governor: {reason}")]
    Bundle {
        /// What is wrong, and what would do.
        reason: String,
    },
    /// An operation needs a module the deployer has not attested.
    #[error("module `{module}` is not deployed")]
    NotDeployed {
        /// Module name.
        module: String,
    },
    /// An operation names a module, node or connection that does not exist or does not fit.
    #[error("{message}")]
    Connection {
        /// What is wrong.
        message: String,
        /// The name the user gave, for "did you mean".
        given: Option<String>,
        /// Valid choices.
        valid: Vec<String>,
    },
    /// A local node could not be started or stopped.
    #[error("failed to {action} local node `{node}`")]
    LocalNode {
        /// Node name.
        node: String,
        /// What was attempted.
        action: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A local node's address is taken by another program, or by another node.
    #[error("local node `{node}` cannot start on {addr}: {why}")]
    AddressTaken {
        /// Node name.
        node: String,
        /// Its address.
        addr: std::net::SocketAddr,
        /// What is there.
        why: String,
    },
    /// `aex update` would have to change more than the module it was asked to update.
    #[error(
        "updating `{module}` alone would leave other parts different from the descriptor: {}",
        changes.join("; ")
    )]
    OtherChanges {
        /// The module to update.
        module: String,
        /// The other changes the descriptor asks for.
        changes: Vec<String>,
    },
    /// A replaced module's recorded instance could not hand its state over: the deployment
    /// stops before anything is replaced, rather than start the new instance from `Default`.
    #[error(
        "the state of module `{module}` cannot be taken over from its instance `{slot}` on node `{node}`"
    )]
    StateLost {
        /// Module name.
        module: String,
        /// Node of the recorded instance.
        node: String,
        /// The instance's name there.
        slot: String,
        /// Why (the node's answer to the sealed `Retire`, or the module's).
        #[source]
        source: Box<Error>,
    },
    /// A module's state snapshot is unusable.
    #[error("the state snapshot of module `{module}` is unusable: {reason}")]
    Snapshot {
        /// Module name.
        module: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A checkpoint file (`aex checkpoint`, `aex deploy --restore-state`) cannot be written
    /// or read back.
    #[error("checkpoint file `{}`: {reason}", path.display())]
    Checkpoint {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A direct connection's window stayed full ([`aex_proto::flow`]): the module had not
    /// taken in the events the deployer sent before, so this one was not sealed, not sent,
    /// and took no counter. A variant of its own so that the caller can say nothing was sent.
    #[error(
        "the window of connection `{connection}` is full ({in_flight} bytes in flight, not yet \
         taken in by module `{module}` on node `{node}`{}): nothing was sent",
        waited_for(*waited)
    )]
    WindowFull {
        /// The direct connection.
        connection: String,
        /// The module its events go to.
        module: String,
        /// The node it runs on (which keeps the window).
        node: String,
        /// Bytes sent on the connection and not yet taken in, at the node's last answer.
        in_flight: u64,
        /// How long the deployer waited for room.
        waited: std::time::Duration,
    },
    /// The module's process ended (a panic, a crash): what was sent to it is not answered.
    #[error(
        "module `{module}` on node `{node}` is not running ({exit}){}",
        log_lines(log_tail)
    )]
    Stopped {
        /// Module name.
        module: String,
        /// Its node.
        node: String,
        /// How its process ended, as its node says (`exit status: 101` after a panic).
        exit: String,
        /// The last lines of its log, as its node read them.
        log_tail: Vec<String>,
    },
    /// A reply did not arrive in time.
    #[error("timed out after {} waiting for {what}", show_duration(*limit))]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        limit: std::time::Duration,
    },
}

/// Why attestation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// The node could not produce evidence.
    #[error(transparent)]
    Node(#[from] ClientError),
    /// The evidence was refused.
    #[error(transparent)]
    Appraisal(#[from] AppraisalError),
    /// The node answered for a different TEE kind than the descriptor names.
    #[error("node reports TEE kind `{got}`, the descriptor says `{expected}`")]
    WrongTee {
        /// From the descriptor.
        expected: String,
        /// From the node.
        got: String,
    },
    /// The module derived a different module key (someone else keyed it first).
    #[error("key confirmation failed: the module holds a key the deployer did not agree")]
    KeyConfirmation,
    /// The module's public key is a low-order point.
    #[error("the module presented a non-contributory key-agreement public key")]
    WeakKey,
    /// The node measured different bytes than the deployer uploaded.
    #[error("the node measured {got}, but the deployer uploaded {expected}")]
    LoadMeasurement {
        /// Deployer's measurement.
        expected: String,
        /// Node's.
        got: String,
    },
}

impl Error {
    /// A next step for the user, if there is a useful one.
    pub fn help(&self) -> Option<String> {
        match self {
            // A descriptor error already shows its help line.
            Error::Descriptor(_) => None,
            Error::Unreachable { node, .. } => Some(format!(
                "is the node agent running? start local nodes with `aex up`, or run `aex node` on the machine of `{node}`"
            )),
            Error::Identity(e) => e.help(),
            Error::AddressTaken { node, addr, .. } => Some(format!(
                "stop what listens on {addr} (a node another application's `aex up` started \
                 stops with `aex down` in that application's directory), or give node \
                 `{node}` a free port in its `address`"
            )),
            Error::State(StateError::Busy { .. }) => Some(
                "wait for that command to finish, or stop it; `--timeout` sets how long to wait"
                    .into(),
            ),
            Error::Ledger { path, .. } => Some(format!(
                "`aex ledger verify` shows what is wrong with it; to start a new ledger, move {} away (it stays verifiable on its own)",
                path.display()
            )),
            Error::Node {
                node,
                source: ClientError::Node(e),
                ..
            } if e.kind == aex_proto::NodeErrorKind::NotAdmitted => {
                Some(format!(
                    "ask the operator of node `{node}` to admit your deployer key (`aex identity` prints it)"
                ))
            }
            Error::NoPlatformKey { node, looked } => Some(format!(
                "set `platform_key` or `platform_key_file` (the node's platform.pub) in the descriptor entry of sgx node `{node}`{}",
                looked.as_ref().map(|p| format!("; looked for {}", p.display())).unwrap_or_default()
            )),
            Error::NodeIdentity {
                node, addr, keys, ..
            } => Some(format!(
                "if the operator of node `{node}` rotated its identity key (`aex node rotate-identity`), pin the new one: set `identity = \"{}\"` in the descriptor entry of node `{node}` (or write it to the file `identity_file` names); otherwise something else answers at {addr}: do not deploy there",
                keys.actual
            )),
            Error::NoNodeIdentity {
                node,
                from_descriptor: false,
                ..
            } => Some(format!(
                "set `identity` (64 hex digits: the node's node-identity.pub, which `aex node identity --data-dir DIR` prints on its machine) or `identity_file` in the descriptor entry of node `{node}`; `aex up` provisions it for local nodes"
            )),
            Error::NoNodeIdentity { node, .. } => Some(format!(
                "`identity_file` of node `{node}` must name a file holding the node's identity key (64 hex digits, its node-identity.pub)"
            )),
            Error::ProviderKey { node, deployer, .. } => Some(format!(
                "ask the operator of node `{node}` for the provider key of your deployer identity (`aex node provider-key --data-dir DIR --tee KIND --deployer {deployer}` on the node) and give its path as `provider_key_file` in the descriptor entry of node `{node}`; `aex up` writes it for the local nodes it starts"
            )),
            Error::ProviderKeyPin { node, deployer, .. } => Some(format!(
                "the key is another deployer's, another node's, a stale one, or one the node's \
                 operator did not make: ask the operator of node `{node}` for the key of identity \
                 {deployer} (`aex node provider-key --data-dir DIR --tee KIND --deployer \
                 {deployer}`) and check its fingerprint (the same with `--fingerprint`) against \
                 the descriptor's"
            )),
            Error::Attestation {
                node,
                source: AttestError::Appraisal(AppraisalError::UntrustedProviderKey { .. }),
                ..
            } => Some(format!(
                "the descriptor's `provider_key_file` for node `{node}` holds another key than the one the node derives for your deployer identity (another stakeholder's, another node's, or a stale one): ask the node's operator for yours (`aex node provider-key ... --deployer KEY`, KEY as `aex identity` prints it)"
            )),
            Error::NotDeployed { .. } => Some("run `aex deploy` (or `aex up`) first".into()),
            Error::Governed { .. } => Some(
                "propose the change with `aex propose --action deploy` (or `update`, `move`) and \
                 let the members vote; the governor deploys it. `aex deploy --dry-run` and `aex \
                 status` still work on a governed descriptor. To deploy without governance, \
                 remove the `[governance]` section (docs/TUTORIAL.md, \"Governance\")"
                    .into(),
            ),
            Error::Stopped { module, .. } => Some(format!(
                "its log says why; `aex status` shows it too. `aex deploy` starts a new instance of `{module}` (a module that is not persistent starts from its default state)"
            )),
            Error::Attestation { .. } => Some(
                "the module was not given any key; check the node's identity and that the node runs the code you built".into(),
            ),
            Error::StateLost { module, node, .. } => Some(format!(
                "if that instance is gone for good (its node restarted, or its process died), its state is lost with it: run `aex deploy --discard-state {module}` (or `aex update {module} --discard-state`) (or `--yes` on `aex deploy` or `aex up`, which starts every module whose state is lost so from its default state) to start it from its default state; otherwise bring it back on node `{node}` and run the command again"
            )),
            Error::WindowFull { module, .. } => Some(format!(
                "module `{module}` is slow or stopped: check it with `aex status` (is it running? are its own outputs BLOCKED, waiting on a slower module?), then try again, or wait longer with `--wait`"
            )),
            Error::Build { source: BuildError::Failed { .. } | BuildError::CompileFailed { .. }, .. } => Some("fix the build error above, then run the command again".into()),
            Error::Build { source: BuildError::Compiler { .. }, .. } => Some("install a C compiler (`build-essential` on Debian and Ubuntu), or set CC to the one to use".into()),
            Error::Build { source: BuildError::NoSources { .. }, .. } => Some("`c` names a directory of `.c` files, one of which has `AEX_MAIN(module)`".into()),
            Error::Build { source: BuildError::Interrupted { .. }, .. } => Some("nothing was changed on any node: run the command again to build and go on".into()),
            Error::Build { source: BuildError::NoExecutable { crate_dir }, .. } => Some(format!(
                "`crate` must name a binary crate (a `src/main.rs` ending with `aex::main!(YourModule);`); {} holds none",
                crate_dir.display()
            )),
            Error::Build { source: BuildError::Cargo { .. }, .. } => Some("install Rust with rustup (https://rustup.rs), or set CARGO to the cargo to use".into()),
            Error::OtherChanges { module, .. } => Some(format!(
                "run `aex deploy` to apply every change (it hands `{module}`'s state over too), or `aex deploy --dry-run` to see them"
            )),
            Error::Connection { valid, given, .. } if !valid.is_empty() => {
                let guess = given
                    .as_deref()
                    .and_then(|g| crate::descriptor::did_you_mean(g, valid));
                Some(match guess {
                    Some(g) => format!("did you mean `{g}`? valid choices: {}", valid.join(", ")),
                    None => format!("valid choices: {}", valid.join(", ")),
                })
            }
            _ => None,
        }
    }
}

impl From<DescriptorError> for Error {
    fn from(e: DescriptorError) -> Self {
        Error::Descriptor(Box::new(e))
    }
}

/// How long a wait took, for [`Error::WindowFull`]: nothing when it did not wait.
fn waited_for(waited: std::time::Duration) -> String {
    if waited.is_zero() {
        String::new()
    } else {
        format!(", after waiting {}", show_duration(waited))
    }
}

/// An error and its causes on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// `lines` of a module's log, indented under a message, or nothing.
fn log_lines(lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let mut out = "; the last lines of its log:".to_owned();
    for line in lines {
        out.push_str("\n  ");
        out.push_str(line);
    }
    out
}
