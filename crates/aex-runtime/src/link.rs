//! The module's link to its node agent: frames in on stdin, frames out on stdout.
//!
//! Input is read in one of two ways:
//! * **direct**: the main loop reads and decodes stdin itself, so a message costs no thread
//!   switch. This is how every module starts. It works as long as the main loop has nothing
//!   to wait for but the node: a blocking read on a pipe cannot time out or be woken.
//! * **threaded**: a reader thread decodes frames into a channel, which the main loop can wait
//!   on with a timeout (measured on the runtime's clock, `clock.rs`) and into which the
//!   module's own threads queue their calls. The link switches to it, for good, the first
//!   time the runtime waits with a deadline (a deadline clock, a request, an emit waiting for
//!   credit) or hands out a sender to a module thread (`Handle`). Bytes read but not yet
//!   decoded move to the reader thread with the switch, so nothing is lost or reordered.
//!
//! The channel is bounded in bytes (`backlog.rs`): when the main loop falls behind, the reader
//! stops reading stdin until it catches up, so the node, not the module, holds what it sends
//! (in direct mode the main loop reads only when it is ready, which bounds it the same way).
//! A frame that does not decode is logged and skipped (its length prefix kept the stream
//! aligned); a length prefix over the limit or a read error means framing is lost, and the
//! module exits. Nothing read from the node can make the runtime panic. Frames are written to
//! a buffer and flushed whenever the runtime is about to wait for input, or after a burst of
//! frames while input keeps arriving: the events one call emits leave together when the call
//! returns (or blocks on a request), instead of one write per event. Large frames (4 KiB and
//! more) are not copied into that buffer: they go out as they were encoded, many to one
//! vectored write (at most 256 KiB of them wait).

use std::any::Any;
use std::cell::Cell;
use std::io::{self, BufReader, IoSlice, Read, Write};
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

impl Incoming {
    /// What it holds of the inbox's budget (module threads' calls hold none).
    fn footprint(&self) -> usize {
        match self {
            Incoming::Message(msg) => footprint(msg),
            Incoming::Tick(entry, _) => tick_footprint(entry),
            Incoming::Local(_) | Incoming::Closed(_) => 0,
        }
    }
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
    /// Filled by the reader thread once there is one; module threads queue their calls here
    /// from the start.
    inbox: Inbox,
    /// The input, while the main loop reads it itself (see the file's documentation).
    direct: Option<Direct>,
    /// A module thread was given a sender: switch to a reader thread before the next wait,
    /// or its calls would wait for the node's next message.
    threads: Cell<bool>,
    out: Box<dyn Write>,
    /// Large frames waiting to go out together in one vectored write, after what `out`
    /// buffered (see [`COPY_BELOW`]).
    large: Vec<Vec<u8>>,
    large_bytes: usize,
    closed: Option<i32>,
    broken: bool,
    /// Frames written since the last flush.
    unflushed: usize,
    /// What [`Link::ready`] took from the reader thread's inbox to see whether input waits.
    peeked: Option<Incoming>,
}

/// The input the main loop reads itself, and the clock that stamps its ticks (the reader
/// thread's after a switch).
struct Direct {
    reader: BufReader<Box<dyn Read + Send>>,
    clock: Clock,
}

/// The buffer of the direct reader: large enough for a burst of small events in one read.
const DIRECT_BUFFER: usize = 64 << 10;

/// While input keeps arriving, flush at least after this many frames.
const FLUSH_EVERY: usize = 64;

/// Frames at least this long are not copied into the output buffer: they wait, as encoded,
/// for one vectored write with the large frames after them (a 16 KiB event cost a `write(2)`
/// of its own, since it does not fit the buffer, and the node a wake-up for it). Smaller ones
/// are copied, so that many small events take one write.
const COPY_BELOW: usize = 4 * 1024;

/// Large frames wait for their vectored write until they hold this many bytes, or this many
/// frames (far below Linux's `IOV_MAX` of 1,024), or the link flushes.
const LARGE_BYTES: usize = 256 * 1024;
const LARGE_FRAMES: usize = 64;

impl Link {
    /// A link whose reader thread fills `inbox`, writing frames to `out`.
    #[cfg(test)]
    pub(crate) fn new(inbox: Inbox, out: Box<dyn Write>) -> Self {
        Self::with(inbox, None, out)
    }

    /// A link that reads `input` on the main loop until it needs a reader thread (see the
    /// file's documentation), stamping ticks with `clock`, and writes frames to `out`.
    pub(crate) fn direct(input: Box<dyn Read + Send>, clock: Clock, out: Box<dyn Write>) -> Self {
        let direct = Direct {
            reader: BufReader::with_capacity(DIRECT_BUFFER, input),
            clock,
        };
        Self::with(Inbox::new(), Some(direct), out)
    }

    fn with(inbox: Inbox, direct: Option<Direct>, out: Box<dyn Write>) -> Self {
        Link {
            inbox,
            direct,
            threads: Cell::new(false),
            out,
            large: Vec::new(),
            large_bytes: 0,
            closed: None,
            broken: false,
            unflushed: 0,
            peeked: None,
        }
    }

    /// Whether a reader thread reads the input (the link switched, or started so).
    #[cfg(test)]
    pub(crate) fn threaded(&self) -> bool {
        self.direct.is_none()
    }

    /// The next message, waiting at most until `deadline` on `clock` if one is given.
    pub(crate) fn recv(&mut self, deadline: Option<Instant>, clock: &Clock) -> Recv {
        if let Some(code) = self.closed {
            return Recv::Closed(code);
        }
        if deadline.is_some() || self.threads.get() {
            self.start_reader();
        }
        // Busy: take what is already here, keeping output batched (but bounded); about to
        // block on the pipe: everything written so far goes out first.
        let blocks = self
            .direct
            .as_ref()
            .map(|d| !holds_frame(d.reader.buffer()));
        if blocks == Some(true) || (blocks.is_some() && self.unflushed >= FLUSH_EVERY) {
            self.flush();
        }
        let got = match (&mut self.direct, self.peeked.take()) {
            (_, Some(peeked)) => Ok(peeked),
            (Some(Direct { reader, clock }), None) => Ok(read_incoming(reader, clock)),
            (None, None) => match self.inbox.rx.try_recv() {
                Ok(incoming) => {
                    if self.unflushed >= FLUSH_EVERY {
                        self.flush();
                    }
                    self.inbox.budget.give(incoming.footprint());
                    Ok(incoming)
                }
                Err(_) => {
                    // About to wait: everything written so far goes out first.
                    self.flush();
                    let got = self.wait(deadline, clock);
                    if let Ok(incoming) = &got {
                        self.inbox.budget.give(incoming.footprint());
                    }
                    got
                }
            },
        };
        match got {
            Ok(Incoming::Message(msg)) => Recv::Message(msg),
            Ok(Incoming::Tick(entry, at)) => Recv::Tick(entry, at),
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

    /// Whether a message (or the end of the input) is already here, so that the next
    /// [`Link::recv`] does not block.
    pub(crate) fn ready(&mut self) -> bool {
        if self.peeked.is_some() || self.closed.is_some() {
            return true;
        }
        match &self.direct {
            Some(direct) => holds_frame(direct.reader.buffer()),
            None => match self.inbox.rx.try_recv() {
                Ok(incoming) => {
                    self.inbox.budget.give(incoming.footprint());
                    self.peeked = Some(incoming);
                    true
                }
                Err(_) => false,
            },
        }
    }

    /// Hands the input, with what was read of it and not decoded yet, to a reader thread,
    /// unless one reads it already.
    pub(crate) fn start_reader(&mut self) {
        if let Some(Direct { reader, clock }) = self.direct.take() {
            start_reader(reader, clock, &self.inbox);
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
                .rx
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
            Some(deadline) => self.inbox.rx.recv_timeout(clock.wait_until(deadline)),
        }
    }

    /// Sends everything written so far. `false` once the node stopped reading.
    pub(crate) fn flush(&mut self) -> bool {
        if self.unflushed > 0 && !self.broken {
            self.unflushed = 0;
            if let Err(e) = self.write_large().and_then(|()| self.out.flush()) {
                self.fail(&e);
            }
        }
        !self.broken
    }

    /// Writes the large frames waiting, in order, with as few vectored writes as the pipe
    /// takes (behind what `out` buffered: a buffered writer writes its buffer first).
    fn write_large(&mut self) -> io::Result<()> {
        if self.large.is_empty() {
            return Ok(());
        }
        let mut slices: Vec<IoSlice<'_>> = self.large.iter().map(|f| IoSlice::new(f)).collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            match self.out.write_vectored(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.large.clear();
        self.large_bytes = 0;
        Ok(())
    }

    /// Writes one frame: a small one into `out`'s buffer (after the large ones waiting), a
    /// large one to wait for a vectored write.
    fn write_frame(&mut self, frame: Vec<u8>) -> io::Result<()> {
        if frame.len() < COPY_BELOW {
            self.write_large()?;
            return self.out.write_all(&frame);
        }
        self.large_bytes += frame.len();
        self.large.push(frame);
        if self.large_bytes >= LARGE_BYTES || self.large.len() >= LARGE_FRAMES {
            self.write_large()?;
        }
        Ok(())
    }

    fn fail(&mut self, e: &io::Error) {
        log!("cannot write to the node ({e}); exiting once the current call returns");
        self.broken = true;
        // Nothing more can be said to the node: stop reading too.
        self.closed = Some(1);
    }

    /// Changes how many bytes the reader may queue ahead of the main loop (`backlog.rs`).
    pub(crate) fn set_inbox_ceiling(&self, ceiling: usize) {
        self.inbox.budget.set_ceiling(ceiling);
    }

    /// A sender for module-owned threads. The link starts a reader thread before it next
    /// waits: only a thread's wait can be woken by their calls.
    pub(crate) fn local_sender(&self) -> Sender<Incoming> {
        self.threads.set(true);
        self.inbox.local.clone()
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
            .try_for_each(|m| self.write_frame(frame::encode(m)));
        match written {
            Ok(()) => self.unflushed += msgs.len(),
            Err(e) => self.fail(&e),
        }
        !self.broken
    }
}

impl Drop for Link {
    /// The large frames still waiting go out, as what `out` buffered does when it is dropped
    /// after this (a module that returns from its last call has its events sent).
    fn drop(&mut self) {
        if !self.broken {
            let _ = self.write_large();
        }
    }
}

/// Whether `buffered` holds a whole frame, so reading it cannot block.
fn holds_frame(buffered: &[u8]) -> bool {
    let Some(prefix) = buffered.first_chunk::<{ frame::LEN_PREFIX }>() else {
        return false;
    };
    let len = u32::from_be_bytes(*prefix) as usize;
    buffered.len() - frame::LEN_PREFIX >= len
}

/// Reads frames from `input` until one decodes (ticks stamped with `clock`), or the input
/// ends.
fn read_incoming(input: &mut impl Read, clock: &Clock) -> Incoming {
    loop {
        let body = match frame::read_body(input) {
            Ok(Some(body)) => body,
            Ok(None) => return Incoming::Closed(0),
            Err(e) => {
                log!("framing lost on the link from the node ({e}); exiting");
                return Incoming::Closed(1);
            }
        };
        match frame::decode::<ToModule>(&body) {
            Ok(ToModule::Tick { entry }) => return Incoming::Tick(entry, clock.now()),
            Ok(msg) => return Incoming::Message(msg),
            Err(e) => log!("ignoring a frame from the node: {e}"),
        }
    }
}

/// Starts the thread that decodes frames from `input`, stamping ticks with `clock`. It waits
/// for room in the inbox's budget before queueing each message.
#[cfg(test)]
pub(crate) fn spawn_reader<R: Read + Send + 'static>(input: R, clock: Clock) -> Inbox {
    let inbox = Inbox::new();
    start_reader(input, clock, &inbox);
    inbox
}

/// Starts a reader thread for `input` that fills `inbox`.
fn start_reader<R: Read + Send + 'static>(input: R, clock: Clock, inbox: &Inbox) {
    let tx = inbox.local.clone();
    let budget = inbox.budget.clone();
    thread::spawn(move || {
        let mut input = io::BufReader::new(input);
        loop {
            let incoming = read_incoming(&mut input, &clock);
            budget.take(incoming.footprint());
            let last = matches!(incoming, Incoming::Closed(_));
            if tx.send(incoming).is_err() || last {
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;
    use std::time::Duration;

    use super::*;

    fn tick(entry: &str) -> Vec<u8> {
        frame::encode(&ToModule::Tick {
            entry: entry.into(),
        })
    }

    /// A direct link over `frames`, writing nowhere.
    fn direct(frames: &[Vec<u8>]) -> Link {
        let input = Cursor::new(frames.concat());
        Link::direct(Box::new(input), Clock::default(), Box::new(io::sink()))
    }

    /// The name of the tick `recv` gave, or what it gave instead.
    fn next(link: &mut Link, deadline: Option<Instant>) -> String {
        match link.recv(deadline, &Clock::default()) {
            Recv::Tick(entry, _) => entry,
            Recv::Message(_) => "message".into(),
            Recv::Local(_) => "local".into(),
            Recv::Timeout => "timeout".into(),
            Recv::Closed(code) => format!("closed {code}"),
        }
    }

    #[test]
    fn a_direct_link_reads_in_order_skips_what_does_not_decode_and_needs_no_thread() {
        let mut junk = vec![0, 0, 0, 3, 9, 9, 9];
        junk.extend(tick("b"));
        let mut link = direct(&[tick("a"), junk, tick("c")]);
        let got: Vec<String> = (0..4).map(|_| next(&mut link, None)).collect();
        assert_eq!(got, ["a", "b", "c", "closed 0"]);
        assert!(!link.threaded());
        // Closed stays closed.
        assert_eq!(next(&mut link, None), "closed 0");
    }

    #[test]
    fn a_frame_announcing_more_than_the_limit_ends_a_direct_link() {
        let too_long = (frame::MAX_FRAME_LEN as u32 + 1).to_be_bytes().to_vec();
        let mut link = direct(&[tick("a"), too_long, tick("b")]);
        assert_eq!(next(&mut link, None), "a");
        assert_eq!(next(&mut link, None), "closed 1");
    }

    #[test]
    fn a_wait_with_a_deadline_moves_the_buffered_input_to_a_reader_thread_in_order() {
        let frames: Vec<Vec<u8>> = (0..50).map(|i| tick(&format!("t{i}"))).collect();
        let mut link = direct(&frames);
        // The first read buffers every frame (they fit in the direct buffer).
        assert_eq!(next(&mut link, None), "t0");
        assert!(!link.threaded());
        let far = Instant::now() + Duration::from_secs(10);
        let mut got = vec![];
        loop {
            match next(&mut link, Some(far)) {
                closed if closed.starts_with("closed") => break,
                entry => got.push(entry),
            }
        }
        assert!(link.threaded());
        let want: Vec<String> = (1..50).map(|i| format!("t{i}")).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_module_thread_gets_its_calls_run_once_it_holds_a_sender() {
        // The node says nothing for a while: only a reader thread lets the call through.
        let (mut writer, reader) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut link = Link::direct(Box::new(reader), Clock::default(), Box::new(io::sink()));
        writer.write_all(&tick("a")).unwrap();
        assert_eq!(next(&mut link, None), "a");
        let sender = link.local_sender();
        let call: LocalCall = Box::new(|_, _| {});
        sender.send(Incoming::Local(call)).unwrap();
        assert_eq!(next(&mut link, None), "local");
        assert!(link.threaded());
        writer.write_all(&tick("b")).unwrap();
        assert_eq!(next(&mut link, None), "b");
        drop(writer);
        assert_eq!(next(&mut link, None), "closed 0");
    }

    #[test]
    fn only_a_whole_buffered_frame_counts_as_ready() {
        let frame = tick("a");
        assert!(holds_frame(&frame));
        assert!(!holds_frame(&frame[..frame.len() - 1]));
        assert!(!holds_frame(&frame[..3]));
        assert!(!holds_frame(&[]));
    }

    /// Records each `write(2)`-like call and the bytes, sharing them with the test.
    #[derive(Clone, Default)]
    struct Writes(std::rc::Rc<std::cell::RefCell<(usize, Vec<u8>)>>);

    impl Write for Writes {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut w = self.0.borrow_mut();
            w.0 += 1;
            w.1.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let mut w = self.0.borrow_mut();
            w.0 += 1;
            // Like a pipe with little room: at most 40,000 bytes per call.
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(40_000 - n);
                w.1.extend_from_slice(&b[..take]);
                n += take;
                if n == 40_000 {
                    break;
                }
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Small and large frames mixed go out in the order written, whole, through short
    /// vectored writes too; large ones many to a write, not one write each.
    #[test]
    fn large_frames_go_out_together_and_in_order() {
        let writes = Writes::default();
        // (Not behind a `BufWriter` here: on stable Rust only the standard library's own
        // writers, a `File` among them, can tell it that they take vectored writes.)
        let mut link = Link::new(Inbox::new(), Box::new(writes.clone()));
        let event = |n: usize, len: usize| {
            FromModule::Event(aex_proto::Event {
                conn: aex_proto::ConnId(n as u32),
                dir: aex_proto::Direction::Forward,
                kind: aex_proto::EventKind::Event,
                counter: n as u64,
                ciphertext: vec![n as u8; len],
            })
        };
        let msgs: Vec<FromModule> = (0..100)
            .map(|n| event(n, if n % 10 == 3 { 100 } else { 16 * 1024 }))
            .collect();
        assert!(link.send_all(&msgs[..50]));
        assert!(link.send_all(&msgs[50..]));
        let expected: Vec<u8> = msgs.iter().flat_map(frame::encode).collect();
        assert!(link.flush());
        let (calls, bytes) = writes.0.borrow().clone();
        assert!(bytes == expected, "frames lost, cut or reordered");
        // 90 large frames of 16 KiB in 40,000-byte writes take about 37; one write each
        // would be 90 (and the small ones 10 more).
        assert!(calls < 60, "{calls} writes");
        // Frames still waiting when the link is dropped go out.
        let writes = Writes::default();
        let mut link = Link::new(Inbox::new(), Box::new(writes.clone()));
        assert!(link.send_all(&msgs[..3]));
        drop(link);
        let sent: Vec<u8> = msgs[..3].iter().flat_map(frame::encode).collect();
        assert!(writes.0.borrow().1 == sent);
    }
}
