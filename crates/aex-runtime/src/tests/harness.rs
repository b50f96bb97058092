//! A hand-written module and an in-memory node around one runtime.
//!
//! Only the runtime crate can drive a `Runtime` without a process: hand it one message at a
//! time (`Runtime::handle`), put it on a manual clock (`Runtime::set_clock`), queue what it
//! reads while it waits for a reply or a device, and run calls from module threads. The
//! deployer's side (attestation, sealed commands, connection keys and the other endpoints'
//! channels) is the test kit's (`aex_testkit::deployer`), over this harness as its
//! [`ModuleLink`], exactly as the kit plays it towards a real module process.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use aex_crypto::{Algorithm, Measurement};
use aex_proto::frame;
use aex_proto::{FromModule, Interface, ToModule};
use aex_testkit::deployer::{Deployer, ModuleLink};

use crate::link::{Inbox, Incoming, Link};
use crate::serve::Runtime;
use crate::{Context, Deadline, Error, Module, Output, PortError, PortKind, Request};

pub(super) const OUT: Output = Output::new(0, "out");
pub(super) const FETCH: Request = Request::new(0, "fetch");

/// What the node tells the runtime it loaded, and what the deployer expects.
pub(super) const MEASURED: Measurement = Measurement([0x3c; 32]);

/// The algorithm of every connection the tests key.
pub(super) const ALG: Algorithm = Algorithm::AesGcm;

/// A hand-written module: echoes input to `out`, answers `answer`, and requests `fetch`.
#[derive(Default)]
pub(super) struct Echo {
    pub(super) seen: Vec<Vec<u8>>,
    pub(super) fetched: Option<Result<Vec<u8>, Error>>,
    /// Runs of the periodic entry `tick`.
    pub(super) ticks: u32,
    /// Runs of the deadline handler on `inp`.
    pub(super) alarms: u32,
    /// What each emit on `out` returned.
    pub(super) emitted: Vec<Result<(), Error>>,
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
            persistent: false,
            seal_by_signer: false,
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
            (PortKind::Input, 0) if payload.starts_with(QUOTE) => Err(quoting(payload)),
            (PortKind::Input | PortKind::Handler, 0) if payload == PANIC => {
                panic!("module code fails on {}", String::from_utf8_lossy(payload))
            }
            (PortKind::Input, 0) => {
                self.seen.push(payload.to_vec());
                self.emitted.push(ctx.emit(OUT, payload));
                Ok(Vec::new())
            }
            (PortKind::Handler, 0) if payload == b"fail" => {
                Err(PortError::Method("cannot answer that".into()))
            }
            (PortKind::Handler, 0) if payload.starts_with(QUOTE) => Err(quoting(payload)),
            // Blocks in a device read or a request of its own before it answers.
            (PortKind::Handler, 0) if payload == b"device" => {
                let value = ctx.read_device("soil");
                let value = value.map_err(|e| PortError::Method(e.to_string()))?;
                Ok(format!("re:device:{value}").into_bytes())
            }
            (PortKind::Handler, 0) if payload == b"fetch" => {
                let got = ctx.request(FETCH, b"inner");
                let got = got.map_err(|e| PortError::Method(e.to_string()))?;
                Ok([b"re:fetched:", &got[..]].concat())
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
                self.emitted.push(ctx.emit(OUT, b"tick"));
                Ok(Vec::new())
            }
            (PortKind::Deadline, 0) => {
                self.alarms += 1;
                self.emitted.push(ctx.emit(OUT, b"alarm"));
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

/// Inputs and handler payloads that are this make module code panic.
pub(super) const PANIC: &[u8] = b"panic";

/// Inputs and handler payloads starting with this fail with a long message quoting them.
pub(super) const QUOTE: &[u8] = b"quote:";

/// A module message that quotes `payload`, many times over.
fn quoting(payload: &[u8]) -> PortError {
    let quoted = String::from_utf8_lossy(payload);
    PortError::Method(format!("cannot take {quoted}; ").repeat(500))
}

/// Where the runtime's link writes: the bytes stay here until the harness decodes them.
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

/// The node around one runtime, in memory.
pub(super) struct Harness {
    pub(super) rt: Runtime<Echo>,
    /// The runtime's input channel, for what a test queues beyond messages (ticks stamped
    /// with a decode time, calls from module threads, the end of input).
    pub(super) inbox: mpsc::Sender<Incoming>,
    sink: Sink,
    /// Frames the runtime wrote that no test consumed yet, in order, credit aside.
    written: VecDeque<FromModule>,
    /// The credit the runtime granted that no test consumed yet, in order: kept apart so
    /// that tests of other things see the frames they expect (`tests/flow.rs` reads it).
    pub(super) credits: Vec<aex_proto::Credit>,
    /// The last message handed to the runtime, to say what went unanswered.
    last_sent: String,
}

impl Harness {
    /// A runtime told it runs [`MEASURED`], after its `Hello`.
    pub(super) fn new() -> Self {
        let queue = Inbox::new();
        let inbox = queue.local.clone();
        let sink = Sink::default();
        let link = Link::new(queue, Box::new(sink.clone()));
        let mut rt = Runtime::new(link, MEASURED);
        rt.hello();
        let mut h = Harness {
            rt,
            inbox,
            sink,
            written: VecDeque::new(),
            credits: Vec::new(),
            last_sent: "nothing yet".into(),
        };
        assert_eq!(h.out(), vec![FromModule::Hello(Echo::interface())]);
        h
    }

    /// The kit's deployer, attested the quote-kind way against [`MEASURED`]; the module's
    /// key confirmation must match.
    #[track_caller]
    pub(super) fn attest(&mut self) -> Deployer {
        let deployer = Deployer::attest(self, &MEASURED);
        assert!(deployer.confirmed, "the module's key confirmation");
        deployer
    }

    /// Moves what the runtime wrote since the last call into `written`.
    fn collect(&mut self) {
        // What the runtime wrote goes out before it waits for the node's next message; the
        // harness reads it at that point.
        self.rt.core_mut().link.flush();
        let bytes = std::mem::take(&mut *self.sink.0.borrow_mut());
        let mut bytes = io::Cursor::new(bytes);
        while let Some(msg) = frame::read_message(&mut bytes)
            .unwrap_or_else(|e| panic!("the runtime wrote a bad frame: {e}"))
        {
            match msg {
                FromModule::Credit(credit) => self.credits.push(credit),
                msg => self.written.push_back(msg),
            }
        }
    }

    /// The credit granted since the last call.
    pub(super) fn credits(&mut self) -> Vec<aex_proto::Credit> {
        self.collect();
        std::mem::take(&mut self.credits)
    }

    /// Every frame the module wrote that no test consumed yet.
    pub(super) fn out(&mut self) -> Vec<FromModule> {
        self.collect();
        self.written.drain(..).collect()
    }

    /// Hands the runtime one message and returns every frame not consumed yet.
    pub(super) fn handle(&mut self, msg: ToModule) -> Vec<FromModule> {
        self.send(msg);
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
                crate::link::Recv::Timeout => panic!("no local call arrived within 5 s"),
                _ => continue,
            }
        }
    }

    /// Queues a message the runtime reads while it waits for a reply.
    pub(super) fn queue(&mut self, msg: ToModule) {
        self.inbox.send(Incoming::Message(msg)).unwrap();
    }
}

impl ModuleLink for Harness {
    /// The runtime handles `msg` at once (reading what is queued if it waits); what it
    /// writes is kept for [`ModuleLink::recv`].
    #[track_caller]
    fn send(&mut self, msg: ToModule) {
        self.last_sent = describe(&msg);
        if let Some(code) = self.rt.handle(msg) {
            let what = &self.last_sent;
            panic!("the runtime exited with {code} on {what}; queue it and `serve` to exit");
        }
        self.collect();
    }

    /// The runtime answered in `send` already: nothing more will come.
    #[track_caller]
    fn recv(&mut self) -> FromModule {
        self.collect();
        match self.written.pop_front() {
            Some(msg) => msg,
            None => panic!(
                "the runtime wrote nothing more after handling {} (it answers within `send`)",
                self.last_sent
            ),
        }
    }

    fn pending(&mut self) -> &mut VecDeque<FromModule> {
        self.collect();
        &mut self.written
    }
}

/// A message in a few words (no ciphertexts), for failure messages.
fn describe(msg: &ToModule) -> String {
    match msg {
        ToModule::Command(sealed) => format!("command {}", sealed.counter),
        ToModule::Event(e) => format!(
            "{:?} {} on connection {} ({:?})",
            e.kind, e.counter, e.conn.0, e.dir
        ),
        ToModule::Attest { .. } => "an attestation request".into(),
        ToModule::Provision { kind, .. } => format!("a `{kind}` provisioning"),
        ToModule::Tick { entry } => format!("a tick of `{entry}`"),
        ToModule::DeviceReply { id, .. } => format!("device reply {id}"),
        other => format!("{other:?}"),
    }
}
