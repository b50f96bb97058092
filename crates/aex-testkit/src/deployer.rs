//! Playing the deployer (and the node around it) towards one module: attestation, sealed
//! commands and connection keys, over any [`ModuleLink`].
//!
//! It speaks exactly what `aex-deploy` speaks through a node: key agreement against the
//! measurement the deployer computed, the symmetric kinds' MAC and ephemeral exchange, commands
//! sealed under the module key with increasing counters, and events sealed under the keys it
//! delivered. Nothing here is trusted by the module. A link is a real module process
//! ([`ModuleProcess`], frames on its stdin and stdout) or a runtime driven in memory by the
//! runtime crate's own tests.

use std::collections::VecDeque;
use std::io::{BufReader, Write};
use std::process::{Child, ChildStdin, Command as Process, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use aex_crypto::symmetric::{self, Transcript};
use aex_crypto::{Algorithm, Measurement, ModuleKeyAgreement, SecretKey};
use aex_proto::frame;
use aex_proto::{
    Command, CommandChannel, CommandReply, ConnId, Direction, Event, FromModule, Interface,
    RecvChannel, Role, SendChannel, ToModule, WireAlgorithm, WireKey,
};

/// How long a module gets to answer one message.
pub const ANSWER_PATIENCE: Duration = Duration::from_secs(10);

/// Where a module's frames come from and go to.
pub trait ModuleLink {
    /// Hands the module one message.
    fn send(&mut self, msg: ToModule);

    /// The next message the module wrote; panics (naming what was awaited) if none comes.
    fn recv(&mut self) -> FromModule;

    /// Messages read but not consumed yet; [`ModuleLink::recv`] returns them first.
    fn pending(&mut self) -> &mut VecDeque<FromModule>;

    /// The next message `want` accepts; the ones before it stay queued, in order.
    #[track_caller]
    fn recv_matching(&mut self, mut want: impl FnMut(&FromModule) -> bool) -> FromModule
    where
        Self: Sized,
    {
        let mut before = VecDeque::new();
        let found = loop {
            let msg = self.recv();
            if want(&msg) {
                break msg;
            }
            before.push_back(msg);
        };
        let pending = self.pending();
        before.extend(pending.drain(..));
        *pending = before;
        found
    }

    /// The next event the module emits (other messages before it stay queued).
    #[track_caller]
    fn event(&mut self) -> Event
    where
        Self: Sized,
    {
        match self.recv_matching(|m| matches!(m, FromModule::Event(_))) {
            FromModule::Event(e) => e,
            _ => unreachable!("recv_matching returned what it was asked for"),
        }
    }
}

/// The deployer's side of one attested module: its command channel.
pub struct Deployer {
    channel: CommandChannel,
    /// Whether the module's key confirmation matched the key the deployer derived.
    pub confirmed: bool,
}

impl Deployer {
    /// Attests a module of a quote kind (`sgx`, `native`): key agreement bound to `expected`,
    /// the measurement the deployer computed from its own build.
    #[track_caller]
    pub fn attest(link: &mut impl ModuleLink, expected: &Measurement) -> Deployer {
        let agreement = ModuleKeyAgreement::new();
        let dpk = agreement.public_key();
        let challenge = aex_crypto::random_bytes::<32>();
        link.send(ToModule::Attest {
            challenge,
            deployer_pk: dpk,
        });
        let (public_key, confirm) = match link.recv() {
            FromModule::Attested {
                public_key,
                confirm,
                mac: None,
            } => (public_key, confirm),
            other => panic!("expected a quote-kind Attested, got {other:?}"),
        };
        let key = agreement
            .finish(&public_key, &challenge, &public_key, &dpk, expected)
            .expect("key agreement with the module's public key");
        let channel = CommandChannel::new(&key);
        let confirmed = channel.check_confirmation(&confirm);
        Deployer { channel, confirmed }
    }

    /// Attests a module the way symmetric TEEs (`trustzone`, `sancus`) do: the platform
    /// provisions `module_key` first; the deployer sends its challenge and an ephemeral
    /// X25519 public key; the module answers with its own ephemeral public key and a MAC under
    /// the module key over both (checked here against `measurement`); the command key comes
    /// from the exchange.
    #[track_caller]
    pub fn attest_symmetric(
        link: &mut impl ModuleLink,
        kind: &str,
        module_key: [u8; 32],
        measurement: &Measurement,
    ) -> Deployer {
        let challenge = aex_crypto::random_bytes::<32>();
        Self::attest_symmetric_under(link, kind, module_key, measurement, challenge)
    }

    /// [`Deployer::attest_symmetric`] under a challenge the test chooses: attesting two
    /// instances under the same one shows what the module's own freshness contributes.
    #[track_caller]
    pub fn attest_symmetric_under(
        link: &mut impl ModuleLink,
        kind: &str,
        module_key: [u8; 32],
        measurement: &Measurement,
        challenge: [u8; 32],
    ) -> Deployer {
        link.send(ToModule::Provision {
            kind: kind.into(),
            simulated: true,
            key: WireKey(module_key),
        });
        let key = SecretKey::from_bytes(module_key);
        let agreement = ModuleKeyAgreement::new();
        let deployer_pk = agreement.public_key();
        link.send(ToModule::Attest {
            challenge,
            deployer_pk,
        });
        let (module_pk, confirm, mac) = match link.recv() {
            FromModule::Attested {
                public_key,
                confirm,
                mac: Some(mac),
            } => (public_key, confirm, mac),
            other => panic!("expected a symmetric Attested, got {other:?}"),
        };
        let transcript = Transcript {
            kind,
            simulated: true,
            challenge: &challenge,
            measurement,
            module_pk: &module_pk,
            deployer_pk: &deployer_pk,
        };
        let want = symmetric::attest_mac(&key, &transcript);
        assert_eq!(mac[..], want[..], "the module's attestation MAC");
        let session = symmetric::session_key(agreement, &module_pk, &transcript)
            .expect("key agreement with the module's public key");
        let channel = CommandChannel::new(&session);
        let confirmed = channel.check_confirmation(&confirm);
        Deployer { channel, confirmed }
    }

    /// `cmd` sealed with the next counter, as the deployer would send it.
    #[track_caller]
    pub fn seal(&mut self, cmd: &Command) -> aex_proto::Sealed {
        self.channel
            .seal_command(cmd)
            .expect("the command counter has room")
    }

    /// Opens the module's sealed reply to the command sealed with `counter` (for commands
    /// sent with [`Deployer::seal`]).
    pub fn open_reply(
        &self,
        reply: &aex_proto::Sealed,
        counter: u64,
    ) -> Result<CommandReply, aex_proto::CommandError> {
        self.channel.open_reply(reply, counter)
    }

    /// Sends `cmd` sealed and returns the module's first reply or refusal; messages the
    /// module wrote before it (emitted events) stay queued.
    #[track_caller]
    pub fn command_raw(&mut self, link: &mut impl ModuleLink, cmd: &Command) -> FromModule {
        let sealed = self.seal(cmd);
        link.send(ToModule::Command(sealed));
        link.recv_matching(|m| {
            matches!(
                m,
                FromModule::CommandReply(_) | FromModule::CommandRejected { .. }
            )
        })
    }

    /// Sends `cmd` sealed and opens the module's sealed reply.
    #[track_caller]
    pub fn command(&mut self, link: &mut impl ModuleLink, cmd: &Command) -> CommandReply {
        let counter = self.channel.last_counter() + 1;
        let sealed = match self.command_raw(link, cmd) {
            FromModule::CommandReply(sealed) => sealed,
            other => panic!("the module refused command {counter}: {other:?}"),
        };
        match self.open_reply(&sealed, counter) {
            Ok(reply) => reply,
            Err(e) => panic!("the reply to command {counter}: {e}"),
        }
    }

    /// Delivers the test key of connection `conn` ([`conn_key`]) for `role`.
    #[track_caller]
    pub fn set_key(
        &mut self,
        link: &mut impl ModuleLink,
        conn: u32,
        role: Role,
        algorithm: Algorithm,
    ) -> CommandReply {
        self.command(
            link,
            &Command::SetKey {
                conn: ConnId(conn),
                role,
                algorithm: algorithm.into(),
                key: WireKey(*conn_key(conn).expose_secret()),
            },
        )
    }

    /// Calls entry point `entry` with `payload`.
    #[track_caller]
    pub fn call(
        &mut self,
        link: &mut impl ModuleLink,
        entry: &str,
        payload: &[u8],
    ) -> CommandReply {
        self.command(
            link,
            &Command::Call {
                entry: entry.into(),
                payload: payload.to_vec(),
            },
        )
    }
}

/// The key the test kit gives connection `conn`.
pub fn conn_key(conn: u32) -> SecretKey {
    SecretKey::from_bytes([conn as u8 ^ 0xa5; 32])
}

/// The other endpoint's sending half of `conn` under [`conn_key`].
pub fn sender(conn: u32, dir: Direction, algorithm: Algorithm) -> SendChannel {
    SendChannel::new(algorithm, &conn_key(conn), ConnId(conn), dir)
}

/// The other endpoint's receiving half of `conn` under [`conn_key`].
pub fn receiver(conn: u32, dir: Direction, algorithm: Algorithm) -> RecvChannel {
    RecvChannel::new(algorithm, &conn_key(conn), ConnId(conn), dir)
}

/// The wire form of an algorithm (for hand-built `SetKey`s).
pub fn wire(algorithm: Algorithm) -> WireAlgorithm {
    algorithm.into()
}

/// A running module process: frames on its stdin and stdout, as a node agent would speak.
pub struct ModuleProcess {
    child: Child,
    stdin: ChildStdin,
    rx: mpsc::Receiver<FromModule>,
    pending: VecDeque<FromModule>,
    /// The credit the module granted (flow control), kept apart from its other frames so
    /// that tests of other things read the frames they expect.
    credits: std::sync::Arc<std::sync::Mutex<Vec<aex_proto::Credit>>>,
    /// The interface its `Hello` declared.
    pub interface: Interface,
}

/// The measurement a node takes of a binary: SHA-256 of its bytes.
pub fn measure(path: &std::path::Path) -> Measurement {
    Measurement::of(&std::fs::read(path).expect("read module binary"))
}

impl ModuleProcess {
    /// Starts the module binary at `path` with `AEX_MEASUREMENT` set to `told` (what the node
    /// says it loaded) and reads its `Hello`.
    #[track_caller]
    pub fn spawn(path: &std::path::Path, told: &Measurement) -> Self {
        Self::spawn_with_env(path, told, &[])
    }

    /// [`ModuleProcess::spawn`] with more environment variables (a test binary that runs a
    /// module when one is set, say).
    #[track_caller]
    pub fn spawn_with_env(
        path: &std::path::Path,
        told: &Measurement,
        env: &[(&str, &str)],
    ) -> Self {
        let spawned = Process::new(path)
            .envs(env.iter().copied())
            .env("AEX_MEASUREMENT", told.to_hex())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => panic!("spawn module {}: {e}", path.display()),
        };
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        // The test reads the module's messages when it chooses to; the queue keeps whatever the
        // module sends meanwhile, so the module never blocks on a test that is not reading yet.
        #[allow(
            clippy::disallowed_methods,
            reason = "test code playing the node: the rule on bounded queues is the node's own"
        )]
        let (tx, rx) = mpsc::channel();
        let credits: std::sync::Arc<std::sync::Mutex<Vec<aex_proto::Credit>>> =
            std::sync::Arc::default();
        let granted = std::sync::Arc::clone(&credits);
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            while let Ok(Some(msg)) = frame::read_message::<_, FromModule>(&mut r) {
                if let FromModule::Credit(credit) = msg {
                    granted
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(credit);
                    continue;
                }
                if tx.send(msg).is_err() {
                    break;
                }
            }
        });
        let mut m = ModuleProcess {
            child,
            stdin,
            rx,
            pending: VecDeque::new(),
            credits,
            interface: Interface::default(),
        };
        match m.recv() {
            FromModule::Hello(interface) => m.interface = interface,
            other => panic!("expected Hello, got {other:?}"),
        }
        m
    }

    /// Whether the module writes nothing for `wait` (used to show that something is not
    /// answered: the wait is the claim, not a pause).
    pub fn silent_for(&mut self, wait: Duration) -> bool {
        self.pending.is_empty() && self.rx.recv_timeout(wait).is_err()
    }

    /// The credit the module granted since the last call (flow control).
    pub fn credits(&self) -> Vec<aex_proto::Credit> {
        std::mem::take(
            &mut *self
                .credits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Asks the module to stop and waits for it to exit.
    pub fn shutdown(mut self) -> ExitStatus {
        self.send(ToModule::Shutdown);
        self.child.wait().expect("wait for the module")
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A second handle on the module's stdin, so another thread can write frames (a flood,
    /// say) while this one reads what the module answers. Frames written through both at once
    /// interleave: write whole frames from one side at a time.
    pub fn stdin_writer(&self) -> std::fs::File {
        use std::os::fd::AsFd;
        let fd = self
            .stdin
            .as_fd()
            .try_clone_to_owned()
            .expect("duplicate the module's stdin");
        std::fs::File::from(fd)
    }
}

impl ModuleLink for ModuleProcess {
    #[track_caller]
    fn send(&mut self, msg: ToModule) {
        frame::write_message(&mut self.stdin, &msg).expect("write to the module's stdin");
        self.stdin.flush().expect("flush the module's stdin");
    }

    #[track_caller]
    fn recv(&mut self) -> FromModule {
        if let Some(msg) = self.pending.pop_front() {
            return msg;
        }
        // A `match`, not a closure, so the panic names the test's line.
        match self.rx.recv_timeout(ANSWER_PATIENCE) {
            Ok(msg) => msg,
            Err(_) => panic!("the module wrote nothing within {ANSWER_PATIENCE:?}"),
        }
    }

    fn pending(&mut self) -> &mut VecDeque<FromModule> {
        &mut self.pending
    }
}

impl Drop for ModuleProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
