//! The blocking adapter: handshakes and the record layer over `std::io` streams, for the
//! deployer's client and the test kit.
//!
//! A [`Link`] is a [`LinkReader`] (an `io::Read` of the peer's plaintext) and a [`LinkWriter`]
//! (an `io::Write` that seals what it buffered into records on `flush`, or whenever a record
//! is full), so the ordinary frame functions of `aex_proto::frame` work on top unchanged.
//! Read and write halves may be separate streams (clones of one socket): the reader and the
//! writer own their direction's nonce.
//!
//! Errors of the record layer come out of `read`/`write` as `io::Error`s of kind
//! `InvalidData` that carry a [`LinkError`] ([`LinkError::inside`]).

use std::io::{self, Read, Write};

use aex_proto::NodeKey;

use crate::error::LinkError;
use crate::handshake::{check_handshake_len, AfterFirst, Initiator, LinkKind, Responder};
use crate::keys::StaticKey;
use crate::record::{Incoming, Opener, Sealer, MAX_PLAINTEXT, MAX_RECORD};

/// An established link over a read half `R` and a write half `W`.
pub struct Link<R, W> {
    /// The other side's plaintext.
    pub reader: LinkReader<R>,
    /// Plaintext for the other side, sealed on `flush`.
    pub writer: LinkWriter<W>,
    /// The handshake hash (what a deployer's `Hello` signs).
    pub hash: [u8; 32],
    /// The other side's identity, where the handshake proved one.
    pub remote: Option<NodeKey>,
}

/// Reads the records of a link and serves their plaintext.
///
/// A read that fails with a timeout (`WouldBlock`/`TimedOut`) or `Interrupted` loses nothing:
/// the part of a record that arrived is kept, and the next read goes on from there.
pub struct LinkReader<R> {
    inner: R,
    opener: Opener,
    prefix: [u8; 2],
    prefix_got: usize,
    /// The record being read.
    record: Incoming,
    plain: Vec<u8>,
    pos: usize,
}

impl<R: Read> LinkReader<R> {
    /// Sets the largest record accepted from now on.
    pub fn set_limit(&mut self, limit: usize) {
        self.opener.set_limit(limit);
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The underlying stream, mutably.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Bytes held for reading records (the buffer's capacity): at most twice the most that
    /// arrived of any one record, whatever length prefixes announced.
    pub fn buffered(&self) -> usize {
        self.record.capacity()
    }

    /// Reads and opens the next record; false at a clean end of stream between records. The
    /// record's buffer grows as its bytes arrive ([`crate::READ_STEP`] at a time).
    fn fill(&mut self) -> io::Result<bool> {
        if self.record.expected().is_none() {
            while self.prefix_got < 2 {
                match self.inner.read(&mut self.prefix[self.prefix_got..])? {
                    0 if self.prefix_got == 0 => return Ok(false),
                    0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                    n => self.prefix_got += n,
                }
            }
            let len = usize::from(u16::from_be_bytes(self.prefix));
            self.opener.check_len(len).map_err(LinkError::into_io)?;
            self.record.start(len);
        }
        while !self.record.complete() {
            match self.inner.read(self.record.room())? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => self.record.advance(n),
            }
        }
        self.prefix_got = 0;
        self.pos = 0;
        self.opener
            .open(self.record.take(), &mut self.plain)
            .map_err(LinkError::into_io)?;
        Ok(true)
    }
}

impl<R: Read> Read for LinkReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.plain.len() {
            if !self.fill()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.plain.len() - self.pos);
        buf[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Buffers plaintext and writes it as records.
pub struct LinkWriter<W> {
    inner: W,
    sealer: Sealer,
    plain: Vec<u8>,
    out: Vec<u8>,
}

impl<W: Write> LinkWriter<W> {
    /// The underlying stream.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The underlying stream, mutably.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Seals what is buffered (if anything) and writes it.
    fn seal_and_write(&mut self) -> io::Result<()> {
        if self.plain.is_empty() {
            return Ok(());
        }
        self.out.clear();
        self.sealer
            .seal(&self.plain, &mut self.out)
            .map_err(LinkError::into_io)?;
        self.plain.clear();
        self.inner.write_all(&self.out)
    }
}

impl<W: Write> Write for LinkWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.plain.len() == MAX_PLAINTEXT {
            self.seal_and_write()?;
        }
        let n = buf.len().min(MAX_PLAINTEXT - self.plain.len());
        self.plain.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.seal_and_write()?;
        self.inner.flush()
    }
}

/// Reads one handshake message (length-checked before it is allocated).
fn read_message<R: Read>(rd: &mut R) -> Result<Vec<u8>, LinkError> {
    let mut prefix = [0u8; 2];
    rd.read_exact(&mut prefix).map_err(closed_or_io)?;
    let len = usize::from(u16::from_be_bytes(prefix));
    check_handshake_len(len)?;
    let mut message = vec![0u8; len];
    rd.read_exact(&mut message).map_err(closed_or_io)?;
    Ok(message)
}

fn closed_or_io(e: io::Error) -> LinkError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        LinkError::Closed
    } else {
        LinkError::Io(e)
    }
}

fn established<R, W>(rd: R, wr: W, done: crate::handshake::Established) -> Link<R, W> {
    let (hash, remote) = (*done.hash(), done.remote());
    let (sealer, opener) = done.into_halves();
    Link {
        reader: LinkReader {
            inner: rd,
            opener,
            prefix: [0; 2],
            prefix_got: 0,
            record: Incoming::default(),
            plain: Vec::new(),
            pos: 0,
        },
        writer: LinkWriter {
            inner: wr,
            sealer,
            plain: Vec::new(),
            out: Vec::new(),
        },
        hash,
        remote,
    }
}

/// A deployer's link to the node whose identity is `node` (Noise NK): refused with
/// [`LinkError::WrongIdentity`] if the node at the other end has another identity.
pub fn connect_deployer<R: Read, W: Write>(
    mut rd: R,
    mut wr: W,
    node: &NodeKey,
) -> Result<Link<R, W>, LinkError> {
    let (init, first) = Initiator::deployer(node)?;
    wr.write_all(&first)?;
    wr.flush()?;
    let reply = read_message(&mut rd)?;
    let (done, _) = init.answer(&reply)?;
    let mut link = established(rd, wr, done);
    link.reader.set_limit(MAX_RECORD);
    Ok(link)
}

/// A node's link, as `own`, to the peer node whose identity is `node` (Noise XK). Returns once
/// the peer admitted it ([`LinkError::Refused`] if it closed instead).
pub fn connect_peer<R: Read, W: Write>(
    mut rd: R,
    mut wr: W,
    own: &StaticKey,
    node: &NodeKey,
) -> Result<Link<R, W>, LinkError> {
    let (init, first) = Initiator::peer(own, node)?;
    wr.write_all(&first)?;
    wr.flush()?;
    let reply = read_message(&mut rd)?;
    let (done, third) = init.answer(&reply)?;
    if let Some(third) = third {
        wr.write_all(&third)?;
        wr.flush()?;
    }
    let mut link = established(rd, wr, done);
    link.reader.set_limit(MAX_RECORD);
    // The responder's admission: one empty record, or the connection closes.
    match link.reader.fill() {
        Ok(true) if link.reader.plain.is_empty() => Ok(link),
        Ok(true) => Err(LinkError::Handshake(
            "the peer's first record is not empty".to_owned(),
        )),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Err(LinkError::Io(e))
        }
        Ok(false) | Err(_) => Err(LinkError::Refused(own.public())),
    }
}

/// The responding side, as `own`: reads the link's kind and runs its handshake; a peer link's
/// initiator must pass `admit` (its identity) to be accepted. The first record is limited to
/// a `Hello` until the caller raises the reader's limit.
pub fn accept<R: Read, W: Write>(
    mut rd: R,
    mut wr: W,
    own: &StaticKey,
    admit: impl FnOnce(&NodeKey) -> bool,
) -> Result<(LinkKind, Link<R, W>), LinkError> {
    let mut kind = [0u8; 1];
    rd.read_exact(&mut kind).map_err(closed_or_io)?;
    let kind = LinkKind::from_byte(kind[0])?;
    let first = read_message(&mut rd)?;
    let (next, reply) = Responder::new(own, kind)?.first(&first)?;
    wr.write_all(&reply)?;
    wr.flush()?;
    let done = match next {
        AfterFirst::Established(done) => *done,
        AfterFirst::PinnedOther => return Err(LinkError::PinnedOther(own.public())),
        AfterFirst::AwaitThird(wait) => {
            let third = read_message(&mut rd)?;
            let done = wait.third(&third)?;
            let remote = done
                .remote()
                .ok_or_else(|| LinkError::Handshake("no initiator identity".to_owned()))?;
            if !admit(&remote) {
                return Err(LinkError::NotAdmitted(remote));
            }
            done
        }
    };
    let mut link = established(rd, wr, done);
    if kind == LinkKind::Peer {
        // Admitted: one empty record says so.
        link.writer.out.clear();
        link.writer.sealer.seal(&[], &mut link.writer.out)?;
        let out = std::mem::take(&mut link.writer.out);
        link.writer.inner.write_all(&out)?;
        link.writer.inner.flush()?;
    }
    Ok((kind, link))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::READ_STEP;
    use std::net::{TcpListener, TcpStream};

    use crate::record::FIRST_RECORD_LIMIT;

    fn socket_pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (c, s)
    }

    fn halves(s: &TcpStream) -> (TcpStream, TcpStream) {
        (s.try_clone().unwrap(), s.try_clone().unwrap())
    }

    #[test]
    fn deployer_link_carries_a_stream_both_ways() {
        let node = StaticKey::generate();
        let public = node.public();
        let (c, s) = socket_pair();
        let server = std::thread::spawn(move || {
            let (rd, wr) = halves(&s);
            let (kind, mut link) = accept(rd, wr, &node, |_| false).unwrap();
            assert_eq!(kind, LinkKind::Deployer);
            let mut hello = [0u8; 5];
            link.reader.read_exact(&mut hello).unwrap();
            assert_eq!(&hello, b"hello");
            link.reader.set_limit(MAX_RECORD);
            let mut big = vec![0u8; 200_000];
            link.reader.read_exact(&mut big).unwrap();
            assert!(big.iter().all(|b| *b == 9));
            link.writer.write_all(b"ok").unwrap();
            link.writer.flush().unwrap();
            link.hash
        });
        let (rd, wr) = halves(&c);
        let mut link = connect_deployer(rd, wr, &public).unwrap();
        assert_eq!(link.remote, Some(public));
        link.writer.write_all(b"hello").unwrap();
        link.writer.flush().unwrap();
        link.writer.write_all(&[9u8; 200_000]).unwrap();
        link.writer.flush().unwrap();
        let mut ok = [0u8; 2];
        link.reader.read_exact(&mut ok).unwrap();
        assert_eq!(&ok, b"ok");
        assert_eq!(server.join().unwrap(), link.hash);
    }

    #[test]
    fn an_impostor_is_named_with_both_keys() {
        let (real, impostor) = (StaticKey::generate(), StaticKey::generate());
        let impostor_public = impostor.public();
        let (c, s) = socket_pair();
        let server = std::thread::spawn(move || {
            let (rd, wr) = halves(&s);
            accept(rd, wr, &impostor, |_| true).err().unwrap()
        });
        let (rd, wr) = halves(&c);
        let e = connect_deployer(rd, wr, &real.public()).err().unwrap();
        let msg = e.to_string();
        assert!(
            msg.contains(&real.public().to_string()) && msg.contains(&impostor_public.to_string()),
            "{msg}"
        );
        assert!(
            matches!(server.join().unwrap(), LinkError::PinnedOther(k) if k == impostor_public)
        );
    }

    #[test]
    fn peer_links_are_admitted_or_refused_by_identity() {
        let (a, b) = (StaticKey::generate(), StaticKey::generate());
        let (a_pub, b_pub) = (a.public(), b.public());
        for admitted in [true, false] {
            let (c, s) = socket_pair();
            let b = StaticKey::from_secret(*b.expose_secret());
            let server = std::thread::spawn(move || {
                let (rd, wr) = halves(&s);
                let mut seen = None;
                let got = accept(rd, wr, &b, |k| {
                    seen = Some(*k);
                    admitted
                });
                (
                    got.map(|(kind, l)| (kind, l.remote))
                        .map_err(|e| e.to_string()),
                    seen,
                )
            });
            let (rd, wr) = halves(&c);
            let got = connect_peer(rd, wr, &a, &b_pub);
            let (served, seen) = server.join().unwrap();
            assert_eq!(seen, Some(a_pub));
            if admitted {
                assert_eq!(got.unwrap().remote, Some(b_pub));
                assert_eq!(served.unwrap(), (LinkKind::Peer, Some(a_pub)));
            } else {
                assert!(matches!(got, Err(LinkError::Refused(k)) if k == a_pub));
                assert!(served.unwrap_err().contains("not admitted"));
            }
        }
    }

    #[test]
    fn oversized_first_messages_are_refused_from_their_length() {
        let node = StaticKey::generate();
        // Message 1 announcing 65535 bytes: refused before anything else is read.
        let bytes = [b'D', 0xff, 0xff];
        let e = accept(&bytes[..], io::sink(), &node, |_| true)
            .err()
            .unwrap();
        assert!(matches!(e, LinkError::TooLarge { len: 65535, .. }), "{e}");
        // Not an aex link at all (an old client's frame prefix).
        let e = accept(&[0u8, 0, 0, 9][..], io::sink(), &node, |_| true)
            .err()
            .unwrap();
        assert!(matches!(e, LinkError::UnknownKind(0)), "{e}");
        // Cut short.
        let e = accept(&[b'P', 0, 48, 1][..], io::sink(), &node, |_| true)
            .err()
            .unwrap();
        assert!(matches!(e, LinkError::Closed), "{e}");
    }

    /// A node that announces the largest record and trickles it: the client holds about what
    /// arrived, a read that times out loses nothing, and the record opens once complete.
    #[test]
    fn a_trickled_record_is_held_as_it_arrives_and_survives_timeouts() {
        let node = StaticKey::generate();
        let public = node.public();
        let (c, s) = socket_pair();
        let (record_tx, record_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(1);
        let server = std::thread::spawn(move || {
            let (rd, wr) = halves(&s);
            let (_, mut link) = accept(rd, wr, &node, |_| true).unwrap();
            let mut record = vec![];
            link.writer
                .sealer
                .seal(&[3u8; MAX_PLAINTEXT], &mut record)
                .unwrap();
            record_tx.send(record).unwrap();
            s
        });
        let (rd, wr) = halves(&c);
        let mut link = connect_deployer(rd, wr, &public).unwrap();
        let record = record_rx.recv().unwrap();
        let mut s = server.join().unwrap();
        link.reader
            .get_ref()
            .set_read_timeout(Some(std::time::Duration::from_millis(20)))
            .unwrap();
        let mut plain = vec![0u8; MAX_PLAINTEXT];
        // Three bytes of 65,537, then the read times out.
        s.write_all(&record[..3]).unwrap();
        let e = link.reader.read(&mut plain).unwrap_err();
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{e}"
        );
        assert!(
            link.reader.buffered() <= READ_STEP,
            "holds {}",
            link.reader.buffered()
        );
        // The rest in two parts, each read timing out in between.
        s.write_all(&record[3..40_000]).unwrap();
        while link.reader.record.got() < 40_000 - 2 {
            assert!(link.reader.read(&mut plain).is_err());
        }
        assert!(link.reader.buffered() <= 2 * 40_000);
        s.write_all(&record[40_000..]).unwrap();
        link.reader.read_exact(&mut plain).unwrap();
        assert!(plain.iter().all(|b| *b == 3));
    }

    #[test]
    fn the_first_record_is_limited_to_a_hello() {
        let node = StaticKey::generate();
        let public = node.public();
        let (c, s) = socket_pair();
        let server = std::thread::spawn(move || {
            let (rd, wr) = halves(&s);
            let (_, mut link) = accept(rd, wr, &node, |_| true).unwrap();
            let mut buf = [0u8; 16];
            link.reader.read(&mut buf).unwrap_err()
        });
        let (rd, wr) = halves(&c);
        let mut link = connect_deployer(rd, wr, &public).unwrap();
        link.writer.write_all(&[0u8; FIRST_RECORD_LIMIT]).unwrap();
        link.writer.flush().unwrap();
        let e = server.join().unwrap();
        assert!(
            matches!(LinkError::inside(&e), Some(LinkError::TooLarge { .. })),
            "{e}"
        );
    }
}
