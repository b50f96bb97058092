//! The module's link to its node agent: frames in on stdin, frames out on stdout.
//!
//! A reader thread decodes `ToModule` frames into a channel so the runtime can wait for a
//! reply with a timeout (measured on the runtime's clock, `clock.rs`). The channel is bounded
//! in bytes (`backlog.rs`): when the main loop falls behind, the reader stops reading stdin
//! until it catches up, so the node, not the module, holds what it sends. A frame that does not
//! decode is logged and skipped (its length prefix kept the stream aligned); a length prefix
//! over the limit or a read error means framing is lost, and the module exits. Nothing read
//! from the node can make the runtime panic. Frames are written to a buffer and flushed
//! whenever the runtime is about to wait for input, or after a burst of frames while input
//! keeps arriving: the events one call emits leave together when the call returns (or blocks
//! on a request), instead of one write per event.

use std::any::Any;
use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use aex_proto::frame;
use aex_proto::{FromModule, ToModule};

use crate::backlog::{footprint, tick_footprint, Budget, INBOX_BYTES};
use crate::clock::Clock;
use crate::core::Core;

/// A closure a module-owned thread asks the runtime to run on the module's state and the
/// runtime's [`Core`], which [`Handle`](crate::Handle) lends to module code as a
/// [`Context`](crate::Context). The state arrives as `Any` because the link is not generic.
pub(crate) type LocalCall = Box<dyn FnOnce(&mut dyn Any, &mut Core) + Send>;

/// What the reader thread (or a module-owned thread) delivers.
pub(crate) enum Incoming {
    /// A decoded message.
    Message(ToModule),
    /// A [`ToModule::Tick`], stamped with when the reader decoded it, so the runtime can tell
    /// a tick that waited behind a long call (and drop it) from a fresh one.
    Tick(String, Instant),
    /// A call from one of the module's own threads.
    Local(LocalCall),
    /// The input ended; exit with this code (0 for a clean end of stream).
    Closed(i32),
}

/// What waiting on the link gave.
pub(crate) enum Recv {
    Message(ToModule),
    Tick(String, Instant),
    Local(LocalCall),
    Timeout,
    Closed(i32),
}

/// The channel the reader thread fills and the main loop empties, with its byte budget.
pub(crate) struct Inbox {
    /// Given to module-owned threads so they can queue [`Incoming::Local`] calls (unmetered:
    /// each such thread waits for its call to run, so it has at most one queued).
    pub(crate) local: Sender<Incoming>,
    pub(crate) rx: Receiver<Incoming>,
    /// Bytes of messages and ticks queued; the reader takes, the main loop gives back.
    pub(crate) budget: Arc<Budget>,
}

impl Inbox {
    /// An empty inbox of [`INBOX_BYTES`].
    #[expect(
        clippy::disallowed_methods,
        reason = "bounded otherwise: the reader's messages by the byte budget, each module \
                  thread's calls by its wait for their answer (at most one queued per thread)"
    )]
    pub(crate) fn new() -> Self {
        let (local, rx) = mpsc::channel();
        Inbox {
            local,
            rx,
            budget: Arc::new(Budget::new(INBOX_BYTES)),
        }
    }
}

/// Both directions of the link.
pub(crate) struct Link {
    inbox: Receiver<Incoming>,
    /// Given to module-owned threads so they can queue [`Incoming::Local`] calls.
    local: Sender<Incoming>,
    budget: Arc<Budget>,
    out: Box<dyn Write>,
    closed: Option<i32>,
    broken: bool,
    /// Frames written since the last flush.
    unflushed: usize,
}

/// While input keeps arriving, flush at least after this many frames.
const FLUSH_EVERY: usize = 64;

impl Link {
    /// A link reading from `inbox` and writing frames to `out`.
    pub(crate) fn new(inbox: Inbox, out: Box<dyn Write>) -> Self {
        Link {
            inbox: inbox.rx,
            local: inbox.local,
            budget: inbox.budget,
            out,
            closed: None,
            broken: false,
            unflushed: 0,
        }
    }

    /// The next message, waiting at most until `deadline` on `clock` if one is given.
    pub(crate) fn recv(&mut self, deadline: Option<Instant>, clock: &Clock) -> Recv {
        if let Some(code) = self.closed {
            return Recv::Closed(code);
        }
        // Busy: take what is already here, keeping output batched (but bounded).
        let ready = match self.inbox.try_recv() {
            Ok(incoming) if self.unflushed < FLUSH_EVERY => Some(Ok(incoming)),
            Ok(incoming) => {
                self.flush();
                Some(Ok(incoming))
            }
            Err(_) => None,
        };
        let got = match ready {
            Some(got) => got,
            // About to wait: everything written so far goes out first.
            None => {
                self.flush();
                self.wait(deadline, clock)
            }
        };
        match got {
            Ok(Incoming::Message(msg)) => {
                self.budget.give(footprint(&msg));
                Recv::Message(msg)
            }
            Ok(Incoming::Tick(entry, at)) => {
                self.budget.give(tick_footprint(&entry));
                Recv::Tick(entry, at)
            }
            Ok(Incoming::Local(call)) => Recv::Local(call),
            Ok(Incoming::Closed(code)) => {
                self.closed = Some(code);
                Recv::Closed(code)
            }
            Err(RecvTimeoutError::Timeout) => Recv::Timeout,
            Err(RecvTimeoutError::Disconnected) => {
                self.closed = Some(0);
                Recv::Closed(0)
            }
        }
    }

    fn wait(
        &mut self,
        deadline: Option<Instant>,
        clock: &Clock,
    ) -> Result<Incoming, RecvTimeoutError> {
        match deadline {
            None => self
                .inbox
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
            Some(deadline) => self.inbox.recv_timeout(clock.wait_until(deadline)),
        }
    }

    /// Sends everything written so far. `false` once the node stopped reading.
    pub(crate) fn flush(&mut self) -> bool {
        if self.unflushed > 0 && !self.broken {
            self.unflushed = 0;
            if let Err(e) = self.out.flush() {
                self.fail(&e);
            }
        }
        !self.broken
    }

    fn fail(&mut self, e: &io::Error) {
        log!("cannot write to the node ({e}); exiting once the current call returns");
        self.broken = true;
        // Nothing more can be said to the node: stop reading too.
        self.closed = Some(1);
    }

    /// Changes how many bytes the reader may queue ahead of the main loop (`backlog.rs`).
    pub(crate) fn set_inbox_ceiling(&self, ceiling: usize) {
        self.budget.set_ceiling(ceiling);
    }

    /// A sender for module-owned threads.
    pub(crate) fn local_sender(&self) -> Sender<Incoming> {
        self.local.clone()
    }

    /// Writes one frame (sent at the next flush). `false` once the node stopped reading.
    pub(crate) fn send(&mut self, msg: &FromModule) -> bool {
        self.send_all(std::slice::from_ref(msg))
    }

    /// Writes frames (sent at the next flush). `false` once the node stopped reading.
    pub(crate) fn send_all(&mut self, msgs: &[FromModule]) -> bool {
        if self.broken {
            return false;
        }
        let written = msgs
            .iter()
            .try_for_each(|m| frame::write_message(&mut self.out, m));
        match written {
            Ok(()) => self.unflushed += msgs.len(),
            Err(e) => self.fail(&e),
        }
        !self.broken
    }
}

/// Starts the thread that decodes frames from `input`, stamping ticks with `clock`. It waits
/// for room in the inbox's budget before queueing each message.
pub(crate) fn spawn_reader<R: Read + Send + 'static>(input: R, clock: Clock) -> Inbox {
    let inbox = Inbox::new();
    let tx = inbox.local.clone();
    let budget = inbox.budget.clone();
    thread::spawn(move || {
        let mut input = io::BufReader::new(input);
        let code = loop {
            let body = match frame::read_body(&mut input) {
                Ok(Some(body)) => body,
                Ok(None) => break 0,
                Err(e) => {
                    log!("framing lost on the link from the node ({e}); exiting");
                    break 1;
                }
            };
            match frame::decode::<ToModule>(&body) {
                Ok(ToModule::Tick { entry }) => {
                    budget.take(tick_footprint(&entry));
                    if tx.send(Incoming::Tick(entry, clock.now())).is_err() {
                        return;
                    }
                }
                Ok(msg) => {
                    budget.take(footprint(&msg));
                    if tx.send(Incoming::Message(msg)).is_err() {
                        return;
                    }
                }
                Err(e) => log!("ignoring a frame from the node: {e}"),
            }
        };
        let _ = tx.send(Incoming::Closed(code));
    });
    inbox
}
