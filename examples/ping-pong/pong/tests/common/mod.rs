//! Plays the node agent and the deployer around a real module process, for the end-to-end
//! tests of the ping-pong example (shared with `ping/tests` through `#[path]`).
//!
//! It speaks exactly what `aex-node` and `aex-deploy` speak: frames on the child's
//! stdin/stdout, key agreement against the module's measurement, sealed commands, sealed
//! events. Nothing here is trusted by the module.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufReader, Write};
use std::process::{Child, ChildStdin, Command as Process, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use aex_crypto::{Algorithm, Measurement, ModuleKeyAgreement, SecretKey};
use aex_proto::frame;
use aex_proto::{
    Command, CommandChannel, CommandReply, ConnId, Direction, Event, FromModule, Interface,
    RecvChannel, Role, SendChannel, ToModule, WireAlgorithm, WireKey,
};

/// A running module process with a deployer-side command channel.
pub struct Module {
    child: Child,
    stdin: ChildStdin,
    rx: mpsc::Receiver<FromModule>,
    pending: VecDeque<FromModule>,
    pub interface: Interface,
    pub deployer: Option<CommandChannel>,
    pub confirmed: bool,
}

/// The measurement the node would take: SHA-256 of the binary.
pub fn measure(path: &str) -> Measurement {
    Measurement::of(&std::fs::read(path).expect("read module binary"))
}

impl Module {
    /// Starts `path` with `AEX_MEASUREMENT` set to `told` and reads its `Hello`.
    pub fn spawn(path: &str, told: Measurement) -> Self {
        let mut child = Process::new(path)
            .env("AEX_MEASUREMENT", told.to_hex())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn module");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            while let Ok(Some(msg)) = frame::read_message::<_, FromModule>(&mut r) {
                if tx.send(msg).is_err() {
                    break;
                }
            }
        });
        let mut m = Module {
            child,
            stdin,
            rx,
            pending: VecDeque::new(),
            interface: Interface::default(),
            deployer: None,
            confirmed: false,
        };
        match m.recv() {
            FromModule::Hello(interface) => m.interface = interface,
            other => panic!("expected Hello, got {other:?}"),
        }
        m
    }

    pub fn send(&mut self, msg: &ToModule) {
        frame::write_message(&mut self.stdin, msg).unwrap();
        self.stdin.flush().unwrap();
    }

    /// The next message from the module (10 s at most).
    pub fn recv(&mut self) -> FromModule {
        if let Some(msg) = self.pending.pop_front() {
            return msg;
        }
        self.rx
            .recv_timeout(Duration::from_secs(10))
            .expect("module answered in time")
    }

    /// Whether the module says nothing for `wait`.
    pub fn silent_for(&mut self, wait: Duration) -> bool {
        self.pending.is_empty() && self.rx.recv_timeout(wait).is_err()
    }

    /// Key agreement bound to `expected` (what the deployer computed from its own build).
    pub fn attest(&mut self, expected: Measurement) {
        let agreement = ModuleKeyAgreement::new();
        let dpk = agreement.public_key();
        let challenge = aex_crypto::random_bytes::<32>();
        self.send(&ToModule::Attest {
            challenge,
            deployer_pk: dpk,
        });
        let FromModule::Attested {
            public_key,
            confirm,
            mac: None,
        } = self.recv()
        else {
            panic!("expected Attested")
        };
        let key = agreement
            .finish(&public_key, &challenge, &public_key, &dpk, &expected)
            .unwrap();
        let channel = CommandChannel::new(&key);
        self.confirmed = channel.check_confirmation(&confirm);
        self.deployer = Some(channel);
    }

    /// Sends a sealed command; messages before its reply (emitted events) stay queued.
    pub fn command(&mut self, cmd: &Command) -> CommandReply {
        let sealed = self.deployer.as_mut().unwrap().seal_command(cmd).unwrap();
        let counter = sealed.counter;
        self.send(&ToModule::Command(sealed));
        let mut before = VecDeque::new();
        let reply = loop {
            match self.recv() {
                FromModule::CommandReply(reply) => break reply,
                other => before.push_back(other),
            }
        };
        before.extend(self.pending.drain(..));
        self.pending = before;
        let channel = self.deployer.as_ref().unwrap();
        channel.open_reply(&reply, counter).unwrap()
    }

    pub fn set_key(&mut self, conn: u32, role: Role) -> CommandReply {
        self.command(&Command::SetKey {
            conn: ConnId(conn),
            role,
            algorithm: WireAlgorithm::ChaCha20Poly1305,
            key: WireKey(*key(conn).expose_secret()),
        })
    }

    pub fn call(&mut self, entry: &str, payload: &[u8]) -> CommandReply {
        self.command(&Command::Call {
            entry: entry.into(),
            payload: payload.to_vec(),
        })
    }

    /// The next event the module emits.
    pub fn event(&mut self) -> Event {
        match self.recv() {
            FromModule::Event(e) => e,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    pub fn shutdown(mut self) -> ExitStatus {
        self.send(&ToModule::Shutdown);
        self.child.wait().unwrap()
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The key the tests give connection `conn`.
pub fn key(conn: u32) -> SecretKey {
    SecretKey::from_bytes([conn as u8 ^ 0xa5; 32])
}

/// The other endpoint's sending half of `conn`.
pub fn sender(conn: u32, dir: Direction) -> SendChannel {
    SendChannel::new(Algorithm::ChaCha20Poly1305, &key(conn), ConnId(conn), dir)
}

/// The other endpoint's receiving half of `conn`.
pub fn receiver(conn: u32, dir: Direction) -> RecvChannel {
    RecvChannel::new(Algorithm::ChaCha20Poly1305, &key(conn), ConnId(conn), dir)
}
