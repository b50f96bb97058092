//! The platform's half of persistence: sealing keys and monotonic counters.
//!
//! A module that keeps its state across restarts needs two things from its TEE that the node
//! agent cannot fake (docs/PROTOCOL.md §9):
//!
//! * a **sealing key** bound to its identity on this platform, so that what it writes to the
//!   node's (untrusted) storage opens only in the same module on the same platform
//!   ([`Backend::sealing_key`]: `sgx` and `native` derive it from this platform's sealing root
//!   and the measurement, `trustzone`/`sancus` from the module key);
//! * **monotonic counters** that survive restarts and live apart from the blobs, so that a blob
//!   can name the counter value it was sealed at and an older blob is refused. Each counter
//!   holds, with its value, the digest of the blob committed at that value, so that two blobs
//!   of one version (two processes that both sealed one) are told apart. Every answer
//!   carries a MAC under a key derived from the asking module's sealing key
//!   (`aex_crypto::seal::CounterAnswer`), bound to its nonce.
//!
//! In simulation the platform is this node process and its files: the sealing root is
//! `platform/seal-root.key` and each counter a file `platform/counters/<id>`, both in the
//! node's data directory but apart from the modules' sealed blobs (`modules/.../sealed/`),
//! which a hostile node agent is assumed to control. On hardware the counters would be SGX
//! platform counters, a TPM NV counter index or TrustZone RPMB, whose writes wear and are rate
//! limited (docs/SECURITY.md, "Sealed state").
//!
//! Invariants: a counter never goes down, and every increment is on disk (written, synced and
//! renamed into place) before it is answered; a counter answers only the module identity that
//! created it (its owner tag, a hash of the sealing key).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aex_crypto::seal::{CounterAnswer, CounterOp, COUNTER_ID_LEN};
use aex_crypto::{random_bytes, sha256, Measurement, SecretKey};

use crate::backend::{Backend, SealPolicy};
use crate::files::{io_err, read_secret, write_secret, PlatformError};
use crate::provider::Provider;

/// The directory of the simulated platform's persistence material in a node's data directory.
pub const PLATFORM_DIR: &str = "platform";

/// A platform's sealing root and counters.
pub struct SealingPlatform {
    root: SecretKey,
    counters: PathBuf,
    /// Serializes counter updates: two processes of one module (a fork attempt) must not both
    /// move a counter from the same value.
    update: Mutex<()>,
}

/// A counter operation a module asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterRequest {
    /// A new counter at 0, owned by the asking module.
    Create,
    /// The value of a counter.
    Read([u8; COUNTER_ID_LEN]),
    /// Moves a counter from the given value to the next, holding the given digest (of the
    /// blob committed at the next value); at any other value it stays (the answer gives its
    /// value and digest), so two processes cannot both advance from one value.
    Advance([u8; COUNTER_ID_LEN], u64, [u8; 32]),
}

/// Why a counter operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CounterError {
    /// No such counter on this platform (a blob from another node, or its counter was lost).
    #[error("this platform has no counter {0}")]
    Unknown(String),
    /// The counter belongs to another module identity.
    #[error("counter {0} belongs to another module")]
    NotOwner(String),
    /// The platform's storage failed.
    #[error(transparent)]
    Platform(#[from] PlatformError),
}

/// Bytes of a counter file: owner tag (32), value (8, big-endian), digest (32).
const COUNTER_FILE_LEN: usize = 72;

impl SealingPlatform {
    /// Loads `data_dir/platform/seal-root.key`, creating it (and the counters' directory) on
    /// first use.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, PlatformError> {
        let dir = data_dir.join(PLATFORM_DIR);
        let path = dir.join("seal-root.key");
        let root = match read_secret::<32>(&path)? {
            Some(bytes) => SecretKey::from_bytes(*bytes),
            None => {
                let key = SecretKey::random();
                write_secret(&path, key.expose_secret())?;
                key
            }
        };
        let counters = dir.join("counters");
        fs::create_dir_all(&counters).map_err(io_err("create", &counters))?;
        Ok(SealingPlatform {
            root,
            counters,
            update: Mutex::new(()),
        })
    }

    /// The sealing key `backend` gives the module measured `measurement`, loaded by
    /// `provider`.
    pub fn sealing_key(
        &self,
        backend: &dyn Backend,
        provider: &Provider,
        measurement: &Measurement,
        policy: SealPolicy<'_>,
    ) -> SecretKey {
        backend.sealing_key(&self.root, provider, measurement, policy)
    }

    /// Performs `request` for the module whose sealing key is `sealing_key`, answering its
    /// `nonce`: what happened (`Stayed` for an advance from a value the counter is not at)
    /// and the signed answer.
    pub fn counter(
        &self,
        sealing_key: &SecretKey,
        request: CounterRequest,
        nonce: &[u8; 16],
    ) -> Result<(CounterOp, CounterAnswer), CounterError> {
        let owner = owner_tag(sealing_key);
        let _turn = self.update.lock().unwrap_or_else(|e| e.into_inner());
        let (op, id, held) = match request {
            CounterRequest::Create => {
                let id = random_bytes::<COUNTER_ID_LEN>();
                self.write(&id, &owner, (0, [0; 32]))?;
                (CounterOp::Create, id, (0, [0; 32]))
            }
            CounterRequest::Read(id) => (CounterOp::Read, id, self.read(&id, &owner)?),
            CounterRequest::Advance(id, from, digest) => {
                let current = self.read(&id, &owner)?;
                if current.0 == from {
                    let next = (current.0.saturating_add(1), digest);
                    self.write(&id, &owner, next)?;
                    (CounterOp::Increment, id, next)
                } else {
                    (CounterOp::Stayed, id, current)
                }
            }
        };
        Ok((op, CounterAnswer::sign(sealing_key, op, nonce, id, held)))
    }

    /// Deletes counter `id` of the module whose sealing key is `sealing_key` (its instance is
    /// gone for good: unloaded by its deployer). Blobs of that instance can then resume
    /// nothing: there is no counter to name them. A counter already gone is not an error.
    pub fn remove(
        &self,
        sealing_key: &SecretKey,
        id: &[u8; COUNTER_ID_LEN],
    ) -> Result<(), CounterError> {
        let owner = owner_tag(sealing_key);
        let _turn = self.update.lock().unwrap_or_else(|e| e.into_inner());
        match self.read(id, &owner) {
            Ok(_) => {}
            Err(CounterError::Unknown(_)) => return Ok(()),
            Err(e) => return Err(e),
        }
        let path = self.path(id);
        fs::remove_file(&path).map_err(io_err("remove", &path))?;
        fs::File::open(&self.counters)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("sync", &self.counters)(e).into())
    }

    fn path(&self, id: &[u8; COUNTER_ID_LEN]) -> PathBuf {
        self.counters.join(hex::encode(id))
    }

    fn read(
        &self,
        id: &[u8; COUNTER_ID_LEN],
        owner: &[u8; 32],
    ) -> Result<(u64, [u8; 32]), CounterError> {
        let path = self.path(id);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CounterError::Unknown(hex::encode(id)))
            }
            Err(e) => return Err(io_err("read", &path)(e).into()),
        };
        let Ok(bytes) = <[u8; COUNTER_FILE_LEN]>::try_from(bytes.as_slice()) else {
            return Err(crate::files::corrupt(&path, "not a counter file").into());
        };
        if bytes[..32] != owner[..] {
            return Err(CounterError::NotOwner(hex::encode(id)));
        }
        let mut value = [0u8; 8];
        value.copy_from_slice(&bytes[32..40]);
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&bytes[40..]);
        Ok((u64::from_be_bytes(value), digest))
    }

    /// Replaces counter `id` with `value`, durably: a temporary file, synced, renamed over it,
    /// and the directory synced.
    fn write(
        &self,
        id: &[u8; COUNTER_ID_LEN],
        owner: &[u8; 32],
        (value, digest): (u64, [u8; 32]),
    ) -> Result<(), PlatformError> {
        let path = self.path(id);
        let mut bytes = [0u8; COUNTER_FILE_LEN];
        bytes[..32].copy_from_slice(owner);
        bytes[32..40].copy_from_slice(&value.to_be_bytes());
        bytes[40..].copy_from_slice(&digest);
        crate::files::replace_durably(&path, &bytes).map_err(io_err("write", &path))
    }
}

/// Who a counter belongs to: a hash of the sealing key (the key itself stays secret).
fn owner_tag(sealing_key: &SecretKey) -> [u8; 32] {
    sha256(&[b"aex/v1 counter owner ", sealing_key.expose_secret()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::SymmetricKind;
    use crate::native::NativePlatform;
    use crate::symmetric::SimSymmetricPlatform;

    #[test]
    fn counters_survive_reopening_and_answer_only_their_owner() {
        let dir = tempfile::tempdir().unwrap();
        let p = SealingPlatform::load_or_create(dir.path()).unwrap();
        let key = SecretKey::from_bytes([1; 32]);
        let (_, created) = p.counter(&key, CounterRequest::Create, &[0; 16]).unwrap();
        assert!(created.verify(&key, CounterOp::Create, &[0; 16]));
        assert_eq!(created.value, 0);
        let id = created.id;
        for want in 1..=3 {
            let (_, a) = p
                .counter(
                    &key,
                    CounterRequest::Advance(id, want - 1, [want as u8; 32]),
                    &[want as u8; 16],
                )
                .unwrap();
            assert_eq!(a.value, want);
            assert!(a.verify(&key, CounterOp::Increment, &[want as u8; 16]));
        }
        // A second process advancing from a value already left stays where the counter is.
        let (op, stale) = p
            .counter(&key, CounterRequest::Advance(id, 1, [1; 32]), &[7; 16])
            .unwrap();
        assert_eq!(op, CounterOp::Stayed);
        assert_eq!((stale.value, stale.digest), (3, [3; 32]));
        assert!(stale.verify(&key, CounterOp::Stayed, &[7; 16]));
        assert!(!stale.verify(&key, CounterOp::Increment, &[7; 16]));
        drop(p);
        let p = SealingPlatform::load_or_create(dir.path()).unwrap();
        assert_eq!(
            p.counter(&key, CounterRequest::Read(id), &[9; 16])
                .unwrap()
                .1
                .value,
            3
        );
        let other = SecretKey::from_bytes([2; 32]);
        assert!(matches!(
            p.counter(&other, CounterRequest::Read(id), &[9; 16]),
            Err(CounterError::NotOwner(_))
        ));
        assert!(matches!(
            p.counter(&key, CounterRequest::Read([0; 16]), &[9; 16]),
            Err(CounterError::Unknown(_))
        ));
    }

    /// Only the owner removes a counter; afterwards it is unknown, and removing it again is
    /// not an error.
    #[test]
    fn a_removed_counter_is_gone_and_only_its_owner_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = SealingPlatform::load_or_create(dir.path()).unwrap();
        let key = SecretKey::from_bytes([1; 32]);
        let id = p
            .counter(&key, CounterRequest::Create, &[0; 16])
            .unwrap()
            .1
            .id;
        let other = SecretKey::from_bytes([2; 32]);
        assert!(matches!(
            p.remove(&other, &id),
            Err(CounterError::NotOwner(_))
        ));
        p.remove(&key, &id).unwrap();
        assert!(matches!(
            p.counter(&key, CounterRequest::Read(id), &[9; 16]),
            Err(CounterError::Unknown(_))
        ));
        p.remove(&key, &id).unwrap();
    }

    /// By signer, the key is the stakeholder's and the product's on this platform, whatever
    /// the code: an update derives its predecessor's key, another product or stakeholder
    /// does not, and neither does the same code by measurement.
    #[test]
    fn a_signer_sealing_key_survives_a_change_of_code_only() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let pa = SealingPlatform::load_or_create(a.path()).unwrap();
        let pb = SealingPlatform::load_or_create(b.path()).unwrap();
        let (v1, v2) = (Measurement([5; 32]), Measurement([6; 32]));
        let (alice, bob) = (Provider([1; 32]), Provider([2; 32]));
        let tz = SimSymmetricPlatform::from_node_key(
            SymmetricKind::TrustZone,
            SecretKey::from_bytes([3; 32]),
        );
        for backend in [&NativePlatform as &dyn Backend, &tz] {
            let key = |p: &SealingPlatform, who: &Provider, m: &Measurement, policy| {
                *p.sealing_key(backend, who, m, policy).expose_secret()
            };
            let tally = SealPolicy::Signer { product: "tally" };
            assert_eq!(key(&pa, &alice, &v1, tally), key(&pa, &alice, &v2, tally));
            assert_ne!(
                key(&pa, &alice, &v1, tally),
                key(&pa, &alice, &v1, SealPolicy::Signer { product: "mirror" })
            );
            assert_ne!(key(&pa, &alice, &v1, tally), key(&pa, &bob, &v1, tally));
            assert_ne!(
                key(&pa, &alice, &v1, tally),
                key(&pa, &alice, &v1, SealPolicy::Measurement)
            );
            if backend.kind().name() == "native" {
                // Quote kinds: the platform's root too.
                assert_ne!(key(&pa, &alice, &v1, tally), key(&pb, &alice, &v1, tally));
            }
        }
    }

    #[test]
    fn sealing_keys_differ_by_platform_provider_and_code() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let pa = SealingPlatform::load_or_create(a.path()).unwrap();
        let pb = SealingPlatform::load_or_create(b.path()).unwrap();
        let m = Measurement([5; 32]);
        let (alice, bob) = (Provider([1; 32]), Provider([2; 32]));
        let native = NativePlatform;
        let key = |p: &SealingPlatform, b: &dyn Backend, who: &Provider, m: &Measurement| {
            *p.sealing_key(b, who, m, SealPolicy::Measurement)
                .expose_secret()
        };
        // Quote kinds: per platform root and measurement.
        assert_ne!(key(&pa, &native, &alice, &m), key(&pb, &native, &alice, &m));
        assert_ne!(
            key(&pa, &native, &alice, &m),
            key(&pa, &native, &alice, &Measurement([6; 32]))
        );
        // Symmetric kinds: per node key and provider, from the module key hierarchy.
        let tz = SimSymmetricPlatform::from_node_key(
            SymmetricKind::TrustZone,
            SecretKey::from_bytes([3; 32]),
        );
        assert_ne!(key(&pa, &tz, &alice, &m), key(&pa, &tz, &bob, &m));
        assert_eq!(key(&pa, &tz, &alice, &m), key(&pb, &tz, &alice, &m));
    }
}
