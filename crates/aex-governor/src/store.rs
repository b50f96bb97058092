//! The governor's files on its host: members' binaries, bundles and disable orders by digest,
//! and the audit ledger its deployments append to. None of it is secret, and none of it is
//! trusted: a binary is checked against its SHA-256 when its upload completes and again (with
//! its bundle) before it is loaded; a bundle or an order is looked up by the digest an
//! accepted proposal names and checked against it (orders: `disable.rs`); the ledger is checked against the mark the sealed deployer
//! state keeps of it (aex-deploy `audit.rs`).
//!
//! What a client may store is bounded in bytes: a binary at most [`MAX_BINARY`], the whole
//! store at most [`MAX_STORE`]. Uploads come before any member signature (a binary is
//! megabytes, a signature over it would need the whole of it first), so these bounds are
//! what keeps an unauthenticated client from filling the disk.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aex_example_http::Response;
use aex_governance::bundle::hex_digest;
use aex_governance::Bundle;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The largest binary, in bytes.
pub const MAX_BINARY: u64 = 64 << 20;
/// The most the store holds, in bytes (binaries, partial uploads, bundles and orders).
pub const MAX_STORE: u64 = 1 << 30;

/// Binaries and bundles under one directory.
pub struct Store {
    pub(crate) dir: PathBuf,
    /// One write at a time: an append checks the length it extends.
    pub(crate) writing: Mutex<()>,
    /// The running SHA-256 of each upload in progress and the bytes it has taken, so that a
    /// chunk is hashed once (re-hashing the whole partial binary after every chunk would be
    /// quadratic in its chunks). At most [`MAX_HASHING`] are kept; one dropped (or lost in a
    /// restart) is rebuilt from its partial file at its next chunk.
    hashing: Mutex<BTreeMap<String, (Sha256, u64)>>,
}

/// The most uploads whose running hash is kept at once (about 200 bytes each).
const MAX_HASHING: usize = 1024;

/// What `GET /binaries/D` and each upload answer.
#[derive(Serialize)]
struct Upload {
    have: u64,
    complete: bool,
}

/// What `POST /bundles` answers.
#[derive(Serialize)]
struct Stored {
    digest: String,
    missing: Vec<String>,
}

fn json(status: u16, value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => Response::bytes(status, "application/json", body),
        Err(e) => Response::text(500, &format!("cannot encode the answer: {e}")),
    }
}

impl Store {
    /// The store in `dir` (created if missing).
    pub fn open(dir: &Path) -> Result<Store, String> {
        for sub in ["binaries", "bundles", "orders"] {
            fs::create_dir_all(dir.join(sub))
                .map_err(|e| format!("cannot create {}: {e}", dir.join(sub).display()))?;
        }
        Ok(Store {
            dir: dir.to_path_buf(),
            writing: Mutex::new(()),
            hashing: Mutex::new(BTreeMap::new()),
        })
    }

    /// The directory `sub` of the store (e.g. `constitutions`, `members.rs`).
    pub fn path(&self, sub: &str) -> PathBuf {
        self.dir.join(sub)
    }

    /// The directory deployments work in (the descriptor and the audit ledger).
    pub fn workdir(&self) -> PathBuf {
        self.dir.join("application")
    }

    fn binary_path(&self, digest: &str) -> PathBuf {
        self.dir.join("binaries").join(digest)
    }

    fn partial_path(&self, digest: &str) -> PathBuf {
        self.dir.join("binaries").join(format!("{digest}.part"))
    }

    fn bundle_path(&self, digest: &str) -> PathBuf {
        self.dir.join("bundles").join(digest)
    }

    /// A complete binary's bytes, by hex SHA-256.
    pub fn binary(&self, digest: &str) -> std::io::Result<Vec<u8>> {
        match hex_digest(digest) {
            Some(_) => fs::read(self.binary_path(digest)),
            None => Err(std::io::Error::other("not a digest")),
        }
    }

    /// A bundle's bytes, by the digest a proposal names.
    pub fn bundle(&self, digest: &[u8; 32]) -> std::io::Result<Vec<u8>> {
        fs::read(self.bundle_path(&hex::encode(digest)))
    }

    /// Answers the store's routes; `None` for a path that is not one of them.
    pub fn answer(&self, method: &str, segments: &[&str], body: &[u8]) -> Option<Response> {
        Some(match (method, segments) {
            ("GET", ["binaries", digest]) => match hex_digest(digest) {
                Some(_) => self.progress(digest),
                None => bad_digest(),
            },
            ("PUT", ["binaries", digest, offset]) => match (hex_digest(digest), offset.parse()) {
                (Some(d), Ok(offset)) => self.append(digest, &d, offset, body),
                _ => Response::text(400, "PUT /binaries/SHA256/OFFSET: 64 hex digits, a number"),
            },
            ("POST", ["bundles"]) => self.put_bundle(body),
            ("GET", ["bundles", digest]) => match hex_digest(digest) {
                Some(d) => match self.bundle(&d) {
                    Ok(bytes) => Response::bytes(200, "application/json", bytes),
                    Err(_) => Response::text(404, &format!("no bundle {digest}")),
                },
                None => bad_digest(),
            },
            ("POST", ["orders"]) => self.put_order(body),
            ("GET", ["orders", digest]) => self.get_order(digest),
            ("GET", ["ledger"]) => {
                let path = aex_deploy::audit::ledger_path(&self.workdir());
                match fs::read(&path) {
                    Ok(bytes) => Response::bytes(200, "application/cbor", bytes),
                    Err(_) => Response::text(404, "no ledger yet: nothing was applied"),
                }
            }
            _ => return None,
        })
    }

    fn progress(&self, digest: &str) -> Response {
        let len = |p: PathBuf| fs::metadata(p).map(|m| m.len()).ok();
        match len(self.binary_path(digest)) {
            Some(have) => json(
                200,
                &Upload {
                    have,
                    complete: true,
                },
            ),
            None => json(
                200,
                &Upload {
                    have: len(self.partial_path(digest)).unwrap_or(0),
                    complete: false,
                },
            ),
        }
    }

    /// Appends a chunk at `offset` of the binary `digest`; completes it when its bytes hash
    /// to the digest.
    fn append(&self, digest: &str, expected: &[u8; 32], offset: u64, chunk: &[u8]) -> Response {
        let _guard = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        if self.binary_path(digest).exists() {
            return self.progress(digest);
        }
        let partial = self.partial_path(digest);
        let have = fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        if offset != have {
            return Response::text(409, &format!("the upload is at byte {have}, not {offset}"));
        }
        let after = have + chunk.len() as u64;
        if after > MAX_BINARY {
            let _ = fs::remove_file(&partial);
            return Response::text(413, &format!("a binary has at most {MAX_BINARY} bytes"));
        }
        if self.used() + chunk.len() as u64 > MAX_STORE {
            return Response::text(507, &format!("the store is full ({MAX_STORE} bytes)"));
        }
        let written = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&partial)
            .and_then(|mut f| f.write_all(chunk).and_then(|()| f.sync_data()));
        if let Err(e) = written {
            return Response::text(507, &format!("cannot store the chunk: {e}"));
        }
        let mut hashing = self.hashing.lock().unwrap_or_else(|e| e.into_inner());
        let running = match hashing.remove(digest) {
            Some((mut hasher, taken)) if taken == have => {
                hasher.update(chunk);
                hasher
            }
            // None kept for this upload (the first chunk, or one forgotten): hash what the
            // partial file holds now, once.
            _ => match fs::read(&partial) {
                Ok(bytes) => Sha256::new_with_prefix(&bytes),
                Err(e) => return Response::text(500, &format!("cannot read the upload back: {e}")),
            },
        };
        let hash: [u8; 32] = running.clone().finalize().into();
        if hash != *expected && after < MAX_BINARY {
            if hashing.len() >= MAX_HASHING {
                hashing.pop_first();
            }
            hashing.insert(digest.to_owned(), (running, after));
        }
        drop(hashing);
        if hash == *expected {
            if let Err(e) = fs::rename(&partial, self.binary_path(digest)) {
                return Response::text(500, &format!("cannot keep the binary: {e}"));
            }
        }
        self.progress(digest)
    }

    fn put_bundle(&self, body: &[u8]) -> Response {
        let bundle = match Bundle::from_bytes(body) {
            Ok(bundle) => bundle,
            Err(e) => return Response::text(400, &e.to_string()),
        };
        let digest = hex::encode(Bundle::digest_of(body));
        let _guard = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let path = self.bundle_path(&digest);
        if !path.exists() {
            if self.used() + body.len() as u64 > MAX_STORE {
                return Response::text(507, &format!("the store is full ({MAX_STORE} bytes)"));
            }
            let tmp = path.with_extension("part");
            let written = fs::write(&tmp, body).and_then(|()| fs::rename(&tmp, &path));
            if let Err(e) = written {
                return Response::text(507, &format!("cannot store the bundle: {e}"));
            }
        }
        let missing = bundle
            .modules
            .values()
            .filter(|m| !self.binary_path(&m.binary).exists())
            .map(|m| m.binary.clone())
            .collect();
        json(201, &Stored { digest, missing })
    }

    /// Bytes held in binaries, partial uploads, bundles and orders.
    pub(crate) fn used(&self) -> u64 {
        ["binaries", "bundles", "orders"]
            .iter()
            .filter_map(|sub| fs::read_dir(self.dir.join(sub)).ok())
            .flatten()
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum()
    }
}

fn bad_digest() -> Response {
    Response::text(400, "a digest is 64 hex digits")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(r: &Response) -> u16 {
        r.status()
    }

    #[test]
    fn an_upload_hashed_chunk_by_chunk_survives_a_restart_and_a_forgotten_hash() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let digest = hex::encode(Sha256::digest(&bytes));
        let put = |store: &Store, offset: usize, chunk: &[u8]| {
            status(
                &store
                    .answer("PUT", &["binaries", &digest, &offset.to_string()], chunk)
                    .unwrap(),
            )
        };
        let store = Store::open(dir.path()).unwrap();
        for at in (0..6000).step_by(1000) {
            assert_eq!(put(&store, at, &bytes[at..at + 1000]), 200);
        }
        // A restart forgets the running hashes: the next chunk hashes the partial file once.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(put(&store, 6000, &bytes[6000..8000]), 200);
        // A running hash that does not match the file's length is not trusted either.
        store
            .hashing
            .lock()
            .unwrap()
            .insert(digest.clone(), (Sha256::new_with_prefix(b"junk"), 7000));
        assert_eq!(put(&store, 8000, &bytes[8000..9000]), 200);
        assert!(store.binary(&digest).is_err(), "not complete yet");
        assert_eq!(put(&store, 9000, &bytes[9000..]), 200);
        assert_eq!(store.binary(&digest).unwrap(), bytes);
        assert!(
            store.hashing.lock().unwrap().is_empty(),
            "done: nothing kept"
        );
    }

    #[test]
    fn a_binary_completes_only_when_its_bytes_hash_to_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let bytes = vec![7u8; 3000];
        let digest = hex::encode(Sha256::digest(&bytes));
        let put = |offset: usize, chunk: &[u8]| {
            store.answer("PUT", &["binaries", &digest, &offset.to_string()], chunk)
        };
        assert_eq!(status(&put(0, &bytes[..1000]).unwrap()), 200);
        assert!(store.binary(&digest).is_err(), "not complete yet");
        // Out of order: refused, nothing written.
        assert_eq!(status(&put(2000, &bytes[2000..]).unwrap()), 409);
        assert_eq!(status(&put(1000, &bytes[1000..]).unwrap()), 200);
        assert_eq!(store.binary(&digest).unwrap(), bytes);
        // Bytes that hash to something else never complete.
        let other = hex::encode([1u8; 32]);
        store.answer("PUT", &["binaries", &other, "0"], b"not it");
        assert!(store.binary(&other).is_err());
        assert_eq!(
            status(&store.answer("PUT", &["binaries", "zz", "0"], b"x").unwrap()),
            400
        );
    }

    #[test]
    fn a_binary_past_its_bound_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let digest = hex::encode([2u8; 32]);
        let chunk = vec![0u8; 1 << 20];
        let mut offset = 0u64;
        let last = loop {
            let r = store
                .answer("PUT", &["binaries", &digest, &offset.to_string()], &chunk)
                .unwrap();
            if r.status() != 200 {
                break r.status();
            }
            offset += chunk.len() as u64;
        };
        assert_eq!(last, 413);
        assert_eq!(offset, MAX_BINARY);
        assert!(
            !store.partial_path(&digest).exists(),
            "the partial is removed"
        );
    }

    #[test]
    fn a_bundle_is_kept_by_the_digest_of_its_bytes_and_says_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let bundle = Bundle {
            application: "app".into(),
            descriptor_name: "aex.toml".into(),
            descriptor: String::new(),
            modules: [(
                "m".to_owned(),
                aex_governance::BundledModule {
                    binary: "ab".repeat(32),
                    size: 1,
                    measurement: "ab".repeat(32),
                    interface: serde_json::json!({}),
                    devices: vec![],
                    toolchain: None,
                },
            )]
            .into(),
        };
        let bytes = bundle.to_bytes();
        let r = store.answer("POST", &["bundles"], &bytes).unwrap();
        assert_eq!(r.status(), 201);
        let digest = Bundle::digest_of(&bytes);
        assert_eq!(store.bundle(&digest).unwrap(), bytes);
        assert_eq!(
            status(&store.answer("POST", &["bundles"], b"{}").unwrap()),
            400
        );
        assert!(store.answer("GET", &["elsewhere"], b"").is_none());
    }
}
