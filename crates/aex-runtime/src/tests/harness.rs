//! A hand-written module and an in-memory node and deployer around one runtime.

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use aex_crypto::{Algorithm, Measurement, ModuleKeyAgreement, SecretKey};
use aex_proto::frame::{self, FrameDecoder};
use aex_proto::{
    Command, CommandChannel, CommandReply, ConnId, Direction, FromModule, Interface, RecvChannel,
    Role, SendChannel, ToModule, WireAlgorithm, WireKey,
};

use crate::link::{Incoming, Link};
use crate::serve::Runtime;
use crate::{Context, Deadline, Error, Module, Output, PortError, PortKind, Request};

pub(super) const OUT: Output = Output::new(0, "out");
const FETCH: Request = Request::new(0, "fetch");

/// A hand-written module: echoes input to `out`, answers `answer`, and requests `fetch`.
#[derive(Default)]
pub(super) struct Echo {
    pub(super) seen: Vec<Vec<u8>>,
    pub(super) fetched: Option<Result<Vec<u8>, Error>>,
    /// Runs of the periodic entry `tick`.
    pub(super) ticks: u32,
    /// Runs of the deadline handler on `inp`.
    pub(super) alarms: u32,
}

/// The deadline on `inp`.
pub(super) const SILENCE: Duration = Duration::from_millis(100);

impl Module for Echo {
    fn interface() -> Interface {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect();
        Interface {
            outputs: names(&["out"]),
            inputs: names(&["inp"]),
            requests: names(&["fetch"]),
            handlers: names(&["answer"]),
            entries: names(&["call_fetch", "fail", "inc"]),
            periodic: names(&["tick"]),
        }
    }

    fn deadlines() -> Vec<Deadline> {
        vec![Deadline::new("inp", SILENCE)]
    }

    fn dispatch(
        &mut self,
        ctx: &mut Context<'_>,
        kind: PortKind,
        index: usize,
        payload: &[u8],
    ) -> Result<Vec<u8>, PortError> {
        match (kind, index) {
            (PortKind::Input, 0) => {
                self.seen.push(payload.to_vec());
                ctx.emit(OUT, payload);
                Ok(Vec::new())
            }
            (PortKind::Handler, 0) if payload == b"fail" => {
                Err(PortError::Method("cannot answer that".into()))
            }
            (PortKind::Handler, 0) => Ok([b"re:", payload].concat()),
            (PortKind::Entry, 0) => {
                ctx.request_timeout(Duration::from_millis(200));
                let got = ctx.request(FETCH, payload);
                self.fetched = Some(got.clone());
                got.map_err(|e| PortError::Method(e.to_string()))
            }
            (PortKind::Entry, 1) => Err(PortError::Method("nope".into())),
            (PortKind::Entry, 2) => {
                let n: u32 = crate::payload::from_json(payload).map_err(PortError::Payload)?;
                Ok((n + 1).to_be_bytes().to_vec())
            }
            (PortKind::Periodic, 0) => {
                self.ticks += 1;
                ctx.emit(OUT, b"tick");
                Ok(Vec::new())
            }
            (PortKind::Deadline, 0) => {
                self.alarms += 1;
                ctx.emit(OUT, b"alarm");
                Ok(Vec::new())
            }
            _ => Err(PortError::Method("no such port".into())),
        }
    }

    /// The inputs seen, one per line (the tests never send a newline).
    fn save(&self) -> Option<Result<Vec<u8>, String>> {
        Some(Ok(self.seen.join(&b'\n')))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        if state == b"bad" {
            return Err("not a snapshot of mine".into());
        }
        self.seen = state.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
        Ok(())
    }
}

#[derive(Clone, Default)]
struct Sink(Rc<RefCell<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The node and the deployer around one runtime.
pub(super) struct Harness {
    pub(super) rt: Runtime<Echo>,
    pub(super) inbox: mpsc::Sender<Incoming>,
    sink: Sink,
    pub(super) deployer: Option<CommandChannel>,
}

impl Harness {
    pub(super) fn new() -> Self {
        let (inbox, rx) = mpsc::channel();
        let sink = Sink::default();
        let link = Link::new((inbox.clone(), rx), Box::new(sink.clone()));
        let mut rt = Runtime::new(link, Measurement([0; 32]));
        rt.hello();
        let mut h = Harness {
            rt,
            inbox,
            sink,
            deployer: None,
        };
        assert_eq!(h.out(), vec![FromModule::Hello(Echo::interface())]);
        h
    }

    /// Frames the module wrote since the last call.
    pub(super) fn out(&mut self) -> Vec<FromModule> {
        let mut d = FrameDecoder::new();
        d.push(&std::mem::take(&mut *self.sink.0.borrow_mut()));
        let mut msgs = vec![];
        while let Some(body) = d.next_body().unwrap() {
            msgs.push(frame::decode(&body).unwrap());
        }
        msgs
    }

    pub(super) fn handle(&mut self, msg: ToModule) -> Vec<FromModule> {
        assert_eq!(self.rt.handle(msg), None);
        self.out()
    }

    /// Waits (at most 5 s on the OS clock: the call comes from a real thread) for a call from
    /// a module thread, as the runtime's loop would.
    pub(super) fn next_local_call(&mut self) -> crate::link::LocalCall {
        let os = crate::clock::Clock::default();
        let deadline = os.now() + std::time::Duration::from_secs(5);
        loop {
            match self.rt.core_mut().link.recv(Some(deadline), &os) {
                crate::link::Recv::Local(call) => return call,
                crate::link::Recv::Timeout => panic!("no local call arrived"),
                _ => continue,
            }
        }
    }

    /// Queues a message the runtime reads while it waits for a reply.
    pub(super) fn queue(&mut self, msg: ToModule) {
        self.inbox.send(Incoming::Message(msg)).unwrap();
    }

    pub(super) fn attest(&mut self) {
        let deployer = ModuleKeyAgreement::new();
        let dpk = deployer.public_key();
        let challenge = [7; 32];
        let out = self.handle(ToModule::Attest {
            challenge,
            deployer_pk: dpk,
        });
        let [FromModule::Attested {
            public_key,
            confirm,
            mac: None,
        }] = &out[..]
        else {
            panic!("expected Attested, got {out:?}")
        };
        let key = deployer
            .finish(
                public_key,
                &challenge,
                public_key,
                &dpk,
                &Measurement([0; 32]),
            )
            .unwrap();
        let channel = CommandChannel::new(&key);
        assert!(channel.check_confirmation(confirm));
        self.deployer = Some(channel);
    }

    /// Attests the way symmetric TEEs do: the platform provisions a module key first.
    pub(super) fn attest_symmetric(&mut self, module_key: [u8; 32]) {
        let key = aex_crypto::SecretKey::from_bytes(module_key);
        assert!(self
            .handle(ToModule::Provision {
                kind: "sancus".into(),
                simulated: true,
                key: aex_proto::WireKey(module_key),
            })
            .is_empty());
        let challenge = [8; 32];
        let out = self.handle(ToModule::Attest {
            challenge,
            deployer_pk: [0; 32],
        });
        let [FromModule::Attested {
            public_key: nonce,
            confirm,
            mac: Some(mac),
        }] = &out[..]
        else {
            panic!("expected a symmetric Attested, got {out:?}")
        };
        let want = aex_crypto::symmetric::attest_mac(
            "sancus",
            true,
            &key,
            &challenge,
            &Measurement([0; 32]),
        );
        assert_eq!(mac[..], want[..]);
        let session = aex_crypto::symmetric::session_key(&key, &challenge, nonce);
        let channel = CommandChannel::new(&session);
        assert!(channel.check_confirmation(confirm));
        self.deployer = Some(channel);
    }

    pub(super) fn command(&mut self, cmd: &Command) -> CommandReply {
        let deployer = self.deployer.as_mut().unwrap();
        let sealed = deployer.seal_command(cmd).unwrap();
        let counter = sealed.counter;
        let out = self.handle(ToModule::Command(sealed));
        let [FromModule::CommandReply(reply)] = &out[..] else {
            panic!("expected a command reply, got {out:?}")
        };
        let deployer = self.deployer.as_ref().unwrap();
        deployer.open_reply(reply, counter).unwrap()
    }

    pub(super) fn set_key(&mut self, conn: u32, role: Role) -> CommandReply {
        self.command(&Command::SetKey {
            conn: ConnId(conn),
            role,
            algorithm: WireAlgorithm::AesGcm,
            key: WireKey([conn as u8; 32]),
        })
    }
}

pub(super) fn key(conn: u32) -> SecretKey {
    SecretKey::from_bytes([conn as u8; 32])
}

pub(super) fn sender(conn: u32, dir: Direction) -> SendChannel {
    SendChannel::new(Algorithm::AesGcm, &key(conn), ConnId(conn), dir)
}

pub(super) fn receiver(conn: u32, dir: Direction) -> RecvChannel {
    RecvChannel::new(Algorithm::AesGcm, &key(conn), ConnId(conn), dir)
}

impl Harness {
    pub(super) fn command_raw(&mut self, cmd: &Command) -> Vec<FromModule> {
        let sealed = self.deployer.as_mut().unwrap().seal_command(cmd).unwrap();
        self.handle(ToModule::Command(sealed))
    }
}
