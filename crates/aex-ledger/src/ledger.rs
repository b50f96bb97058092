//! The ledger file: appending, signing, receipts, and verifying a whole ledger offline.
//!
//! The file is a CBOR sequence (RFC 8742) of entries (`entry.rs`), appended and synced to disk
//! one entry at a time: an append returns only once its entry is durable. Every so often the
//! holder of the ledger's signing key appends a `signature` entry: a signed root (`root.rs`)
//! over every entry before it, signature entries included (as CCF does). A receipt for an
//! entry is available once a signature entry follows it.
//!
//! A crash can leave a torn last entry; [`Ledger::open`] cuts it off (it was never reported
//! appended) and says how many bytes it cut. Anything else wrong refuses to open, naming the
//! entry.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aex_crypto::{SigningIdentity, PUBLIC_IDENTITY_LEN};
use ct_merkle::mem_backed_tree::MemoryBackedTree;
use sha2::Sha256;

use crate::entry::{self, Entry, Hash, SIGNATURE};
use crate::error::{Error, Problem};
use crate::receipt;
use crate::root;

type Tree = MemoryBackedTree<Sha256, Vec<u8>>;

/// When a signature entry is due: after `every` entries, or `after` since the last one if any
/// entry is unsigned, whichever comes first.
#[derive(Debug, Clone, Copy)]
pub struct SignPolicy {
    /// Unsigned entries that make a signature due.
    pub every: u64,
    /// Time since the last signature that makes one due, if any entry is unsigned.
    pub after: Duration,
}

impl Default for SignPolicy {
    /// Every 100 entries or 500 ms.
    fn default() -> Self {
        SignPolicy {
            every: 100,
            after: Duration::from_millis(500),
        }
    }
}

/// What a verified ledger holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Entries in all.
    pub entries: u64,
    /// Signature entries among them.
    pub signatures: u64,
    /// Entries the last signed root covers (those before its signature entry).
    pub signed: u64,
    /// Entries after the last signature entry: not yet under any signed root.
    pub unsigned: u64,
    /// The keys that signed roots, in order of first appearance.
    pub signers: Vec<[u8; PUBLIC_IDENTITY_LEN]>,
}

/// What `verify` trusts and remembers.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// Keys whose signed roots are accepted (any, if empty: the summary then names them).
    pub signers: Vec<[u8; PUBLIC_IDENTITY_LEN]>,
    /// A root signed over this many entries that was seen before (a receipt, an earlier
    /// fetch): a ledger that ends before it was truncated, one with another root there was
    /// rewritten.
    pub seen: Option<(u64, Hash)>,
}

/// A ledger file open for appending.
pub struct Ledger {
    path: PathBuf,
    file: File,
    tree: Tree,
    last: Hash,
    signed: u64,
    signed_at: Instant,
    last_root: Option<(u64, Hash)>,
}

/// A ledger opened, and the bytes of a torn last entry it cut off.
pub struct Opened {
    /// The ledger, ready to append to.
    pub ledger: Ledger,
    /// Bytes of a torn last entry cut off (0 if there was none).
    pub cut: usize,
}

fn io(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::whole(Problem::Io(format!("{what} {}: {e}", path.display())))
}

impl Ledger {
    /// Creates an empty ledger at `path`; refuses to overwrite one.
    pub fn create(path: &Path) -> Result<Ledger, Error> {
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(path)
            .map_err(|e| io(path, "cannot create the ledger", e))?;
        Ok(Ledger {
            path: path.to_path_buf(),
            file,
            tree: Tree::new(),
            last: [0; 32],
            signed: 0,
            signed_at: Instant::now(),
            last_root: None,
        })
    }

    /// Opens the ledger at `path` for appending: checks its chain, its signed roots and what
    /// `expect` remembers (a root the holder saw signed: a shorter or rewritten ledger is
    /// refused), and cuts off a torn last entry.
    pub fn open(path: &Path, expect: &Expect) -> Result<Opened, Error> {
        let mut bytes = Vec::new();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| io(path, "cannot read the ledger", e))?;
        let (walked, torn) = match walk(&bytes, expect) {
            (walked, None) => (walked, false),
            // A torn last entry is cut off, if what is left still holds the root seen.
            (walked, Some(e)) if e.problem == Problem::Incomplete => {
                if let Some(short) = check_seen(&walked, expect) {
                    return Err(short);
                }
                (walked, true)
            }
            (_, Some(e)) => return Err(e),
        };
        let cut = bytes.len() - walked.length;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| io(path, "cannot open the ledger", e))?;
        if torn {
            file.set_len(walked.length as u64)
                .and_then(|()| file.sync_data())
                .map_err(|e| io(path, "cannot cut the torn entry off the ledger", e))?;
        }
        Ok(Opened {
            ledger: Ledger {
                path: path.to_path_buf(),
                file,
                last: walked.last,
                signed: walked.summary.signed,
                tree: walked.tree,
                signed_at: Instant::now(),
                last_root: walked.last_root,
            },
            cut,
        })
    }

    /// Entries in the ledger.
    pub fn len(&self) -> u64 {
        self.tree.len()
    }

    /// Whether it has no entry.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Entries the last signed root covers.
    pub fn signed(&self) -> u64 {
        self.signed
    }

    /// The last signed root: how many entries it covers, and the root. What a holder keeps
    /// elsewhere to [`Expect::seen`] when it opens the ledger again.
    pub fn last_root(&self) -> Option<(u64, Hash)> {
        self.last_root
    }

    /// Entry `seq`'s encoding as stored.
    pub fn get(&self, seq: u64) -> Option<&[u8]> {
        usize::try_from(seq)
            .ok()
            .and_then(|i| self.tree.get(i))
            .map(Vec::as_slice)
    }

    /// Appends an entry of `kind` with `body`; returns its position once it is on disk.
    pub fn append(&mut self, kind: &str, body: &[u8]) -> Result<u64, Error> {
        self.append_all(&[(kind, body)])
    }

    /// Appends entries of (`kind`, `body`), in order, with one write and one sync; returns
    /// the position of the first once all are on disk. None is appended if one is refused;
    /// after a failed write, the ledger must be opened again (a torn tail is cut then).
    pub fn append_all(&mut self, items: &[(&str, &[u8])]) -> Result<u64, Error> {
        let first = self.len();
        let time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut encoded = Vec::with_capacity(items.len());
        let mut prev = self.last;
        for (i, (kind, body)) in items.iter().enumerate() {
            let seq = first + i as u64;
            entry::check_sizes(kind, body)
                .map_err(|why| Error::at(seq, Problem::Malformed(why)))?;
            let bytes = Entry {
                seq,
                time_ms,
                kind: kind.to_string(),
                body: body.to_vec(),
                prev,
            }
            .encode();
            prev = entry::hash(&bytes);
            encoded.push(bytes);
        }
        self.file
            .write_all(&encoded.concat())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| io(&self.path, "cannot append to the ledger", e))?;
        self.last = prev;
        for bytes in encoded {
            self.tree.push(bytes);
        }
        Ok(first)
    }

    /// Appends a signature entry: `signer`'s signed root over every entry before it.
    pub fn sign(&mut self, signer: &SigningIdentity) -> Result<u64, Error> {
        let size = self.len();
        let root = root_of(&self.tree);
        let signed = root::sign(signer, size, &root);
        let seq = self.append(SIGNATURE, &signed)?;
        self.signed = size;
        self.signed_at = Instant::now();
        self.last_root = Some((size, root));
        Ok(seq)
    }

    /// Whether a signature entry is due under `policy`.
    pub fn sign_due(&self, policy: SignPolicy) -> bool {
        let unsigned = self.len().saturating_sub(self.signed);
        unsigned >= policy.every || (unsigned > 0 && self.signed_at.elapsed() >= policy.after)
    }

    /// A receipt for entry `seq` (`receipt.rs`), against the first signed root that covers
    /// it; `None` while none does (or there is no such entry).
    pub fn receipt(&self, seq: u64) -> Option<Vec<u8>> {
        receipt_from(self.tree.items(), seq)
    }
}

/// A receipt for entry `seq` of a ledger whose entries (as stored) are `entries`.
fn receipt_from(entries: &[Vec<u8>], seq: u64) -> Option<Vec<u8>> {
    let index = usize::try_from(seq).ok()?;
    let entry = entries.get(index)?;
    // The first signature entry after it: its root covers the entries before it.
    let (size, signed) = entries
        .iter()
        .enumerate()
        .skip(index + 1)
        .find_map(|(s, e)| signature_body(e).map(|body| (s, body)))?;
    let mut tree = Tree::new();
    for e in &entries[..size] {
        tree.push(e.clone());
    }
    let proof = tree.prove_inclusion(index);
    receipt::build(&signed, entry, seq, size as u64, proof.as_bytes()).ok()
}

/// A receipt for entry `seq` of the ledger file `bytes`, which must verify first (under
/// `expect`); `Ok(None)` while no signed root covers the entry.
pub fn receipt_for(bytes: &[u8], seq: u64, expect: &Expect) -> Result<Option<Vec<u8>>, Error> {
    match walk(bytes, expect) {
        (walked, None) => Ok(receipt_from(walked.tree.items(), seq)),
        (_, Some(e)) => Err(e),
    }
}

fn root_of(tree: &Tree) -> Hash {
    let mut root = [0; 32];
    root.copy_from_slice(tree.root().as_bytes());
    root
}

/// The signed root a signature entry holds.
fn signature_body(bytes: &[u8]) -> Option<Vec<u8>> {
    Entry::decode_prefix(bytes, 0)
        .ok()
        .filter(|(e, _)| e.kind == SIGNATURE)
        .map(|(e, _)| e.body)
}

/// A ledger read so far.
struct Walked {
    tree: Tree,
    last: Hash,
    length: usize,
    summary: Summary,
    last_root: Option<(u64, Hash)>,
}

/// Verifies a whole ledger, as read from its file, offline: every entry in its place, the hash
/// chain, every signed root (signature and signer, and the root over the entries before it),
/// and what `expect` remembers. Names the first bad entry.
pub fn verify(bytes: &[u8], expect: &Expect) -> Result<Summary, Error> {
    match walk(bytes, expect) {
        (w, None) => Ok(w.summary),
        (_, Some(e)) => Err(e),
    }
}

/// Reads `bytes` as far as they are good: what was read, and what stopped it, if anything.
fn walk(bytes: &[u8], expect: &Expect) -> (Walked, Option<Error>) {
    let mut w = Walked {
        tree: Tree::new(),
        last: [0; 32],
        length: 0,
        last_root: None,
        summary: Summary {
            entries: 0,
            signatures: 0,
            signed: 0,
            unsigned: 0,
            signers: Vec::new(),
        },
    };
    while w.length < bytes.len() {
        let seq = w.tree.len();
        let (entry, used) = match Entry::decode_prefix(&bytes[w.length..], seq) {
            Ok(decoded) => decoded,
            Err(e) => return (w, Some(e)),
        };
        let stored = &bytes[w.length..w.length + used];
        if entry.seq != seq {
            return (
                w,
                Some(Error::at(seq, Problem::OutOfPlace { found: entry.seq })),
            );
        }
        if entry.prev != w.last {
            // The chain says the previous entry had other bytes.
            return (w, Some(Error::at(seq - 1, Problem::Altered)));
        }
        if entry.kind == SIGNATURE {
            let opened = root::open(&entry.body, &expect.signers)
                .map_err(|why| Error::at(seq, Problem::BadRoot(why)));
            let checked = opened.and_then(|signed| {
                if signed.size != seq {
                    return Err(Error::at(seq, Problem::BadRoot(format!(
                        "it covers {} entries, but {seq} stand before it",
                        signed.size
                    ))));
                }
                if signed.root != root_of(&w.tree) {
                    return Err(Error::at(seq, Problem::BadRoot(format!(
                        "its root is not that of the {seq} entries before it: one of them was altered"
                    ))));
                }
                Ok(signed)
            });
            match checked {
                Ok(signed) => {
                    w.last_root = Some((seq, signed.root));
                    w.summary.signatures += 1;
                    w.summary.signed = seq;
                    if !w.summary.signers.contains(&signed.signer) {
                        w.summary.signers.push(signed.signer);
                    }
                }
                Err(e) => return (w, Some(e)),
            }
        }
        if let Some((size, root)) = expect.seen {
            if seq == size && root_of(&w.tree) != root {
                let e = Error::at(
                    seq,
                    Problem::BadRoot(format!(
                        "the {size} entries before it are not those of the root seen before"
                    )),
                );
                return (w, Some(e));
            }
        }
        w.last = entry::hash(stored);
        w.tree.push(stored.to_vec());
        w.length += used;
        w.summary.entries += 1;
        w.summary.unsigned = if entry.kind == SIGNATURE {
            0
        } else {
            w.summary.unsigned + 1
        };
    }
    let short = check_seen(&w, expect);
    (w, short)
}

/// Whether a ledger read to its end (or to a torn entry) still holds the root `expect` saw.
fn check_seen(w: &Walked, expect: &Expect) -> Option<Error> {
    let (size, root) = expect.seen?;
    let entries = w.tree.len();
    if entries < size {
        return Some(Error::at(entries, Problem::Missing { signed: size }));
    }
    if entries == size && root_of(&w.tree) != root {
        return Some(Error::whole(Problem::BadRoot(format!(
            "the {size} entries are not those of the root seen before"
        ))));
    }
    None
}
