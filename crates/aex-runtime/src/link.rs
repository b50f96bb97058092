//! The module's link to its node agent: frames in on stdin, frames out on stdout.
//!
//! A reader thread decodes `ToModule` frames into a channel so the runtime can wait for a
//! reply with a timeout. A frame that does not decode is logged and skipped (its length
//! prefix kept the stream aligned); a length prefix over the limit or a read error means
//! framing is lost, and the module exits. Nothing read from the node can make the runtime
//! panic. Every frame written is flushed at once: the node routes events as they come.

use std::any::Any;
use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::Instant;

use aex_proto::frame;
use aex_proto::{FromModule, ToModule};

/// A closure a module-owned thread asks the runtime to run on the module's state (see
/// [`Handle`](crate::Handle)). The state arrives as `Any` because the link is not generic.
pub(crate) type LocalCall = Box<dyn for<'a> FnOnce(&mut dyn Any, &mut crate::Context<'a>) + Send>;

/// What the reader thread (or a module-owned thread) delivers.
pub(crate) enum Incoming {
    /// A decoded message.
    Message(ToModule),
    /// A call from one of the module's own threads.
    Local(LocalCall),
    /// The input ended; exit with this code (0 for a clean end of stream).
    Closed(i32),
}

/// What waiting on the link gave.
pub(crate) enum Recv {
    Message(ToModule),
    Local(LocalCall),
    Timeout,
    Closed(i32),
}

/// Both directions of the link.
pub(crate) struct Link {
    inbox: Receiver<Incoming>,
    /// Given to module-owned threads so they can queue [`Incoming::Local`] calls.
    local: Sender<Incoming>,
    out: Box<dyn Write>,
    closed: Option<i32>,
    broken: bool,
}

impl Link {
    /// A link reading from `inbox` and writing frames to `out`.
    pub(crate) fn new(
        (local, inbox): (Sender<Incoming>, Receiver<Incoming>),
        out: Box<dyn Write>,
    ) -> Self {
        Link {
            inbox,
            local,
            out,
            closed: None,
            broken: false,
        }
    }

    /// The next message, waiting at most until `deadline` if one is given.
    pub(crate) fn recv(&mut self, deadline: Option<Instant>) -> Recv {
        if let Some(code) = self.closed {
            return Recv::Closed(code);
        }
        let got = match deadline {
            None => self
                .inbox
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
            Some(deadline) => {
                let wait = deadline.saturating_duration_since(Instant::now());
                self.inbox.recv_timeout(wait)
            }
        };
        match got {
            Ok(Incoming::Message(msg)) => Recv::Message(msg),
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

    /// A sender for module-owned threads.
    pub(crate) fn local_sender(&self) -> Sender<Incoming> {
        self.local.clone()
    }

    /// Writes and flushes one frame. `false` once the node stopped reading.
    pub(crate) fn send(&mut self, msg: &FromModule) -> bool {
        self.send_all(std::slice::from_ref(msg))
    }

    /// Writes frames, then flushes once. `false` once the node stopped reading.
    pub(crate) fn send_all(&mut self, msgs: &[FromModule]) -> bool {
        if self.broken {
            return false;
        }
        let written = msgs
            .iter()
            .try_for_each(|m| frame::write_message(&mut self.out, m))
            .and_then(|()| self.out.flush());
        if let Err(e) = written {
            log!("cannot write to the node ({e}); exiting once the current call returns");
            self.broken = true;
            // Nothing more can be said to the node: stop reading too.
            self.closed = Some(1);
        }
        !self.broken
    }
}

/// Starts the thread that decodes frames from `input`.
pub(crate) fn spawn_reader<R: Read + Send + 'static>(
    input: R,
) -> (Sender<Incoming>, Receiver<Incoming>) {
    let (tx, rx) = mpsc::channel();
    let local = tx.clone();
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
                Ok(msg) => {
                    if tx.send(Incoming::Message(msg)).is_err() {
                        return;
                    }
                }
                Err(e) => log!("ignoring a frame from the node: {e}"),
            }
        };
        let _ = tx.send(Incoming::Closed(code));
    });
    (local, rx)
}
