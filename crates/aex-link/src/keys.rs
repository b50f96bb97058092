//! A node's identity: its long-term X25519 static key, and the files that hold it.
//!
//! A node keeps its identity in its data directory: the secret half in `node-identity.key`
//! (64 hex digits, mode 0600, created in one `create_new` call so it is never readable by
//! others, not even briefly) and the public half in `node-identity.pub` (64 hex digits), which
//! the operator hands to deployers to pin. Rotation writes a new pair and keeps the old secret
//! as `node-identity.key.old` for the record; deployers keep refusing the node until their
//! descriptor pins the new public key.
//!
//! Invariant: secret bytes live only in [`StaticKey`] (zeroized on drop, never printed) and in
//! `Zeroizing` buffers while they are read or written.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use aex_proto::NodeKey;
use rand_core::{OsRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The secret half of a node's identity, in its data directory.
pub const IDENTITY_KEY_FILE: &str = "node-identity.key";
/// The public half, for deployers to pin.
pub const IDENTITY_PUB_FILE: &str = "node-identity.pub";
/// The secret half before the last rotation.
pub const IDENTITY_OLD_FILE: &str = "node-identity.key.old";

/// A long-term X25519 static key pair (a node's identity, or a test's stand-in for one).
///
/// Deliberately not `Clone`, `Debug` (beyond the public half) or `Display`.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct StaticKey {
    secret: [u8; 32],
    #[zeroize(skip)]
    public: NodeKey,
}

impl StaticKey {
    /// A fresh key pair from the operating system's CSPRNG.
    pub fn generate() -> StaticKey {
        let mut secret = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(&mut secret[..]);
        StaticKey::from_secret(*secret)
    }

    /// The key pair whose secret half is `secret` (the caller should zeroize its copy).
    pub fn from_secret(secret: [u8; 32]) -> StaticKey {
        let public = x25519_dalek::x25519(secret, x25519_dalek::X25519_BASEPOINT_BYTES);
        StaticKey {
            secret,
            public: NodeKey(public),
        }
    }

    /// The public half: the node's identity as deployers and peers pin it.
    pub fn public(&self) -> NodeKey {
        self.public
    }

    /// The secret half. Every call site is a place where the secret leaves this type.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.secret
    }
}

impl core::fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "StaticKey(public {}, secret REDACTED)", self.public)
    }
}

/// Reading or writing identity files failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file could not be read, written or renamed.
    #[error("cannot {action} `{}`", path.display())]
    Io {
        /// What was attempted.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file does not hold what it should.
    #[error("`{}` is not a node identity file: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what would be valid.
        reason: String,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError {
    let path = path.to_path_buf();
    move |source| KeyFileError::Io {
        action,
        path,
        source,
    }
}

/// The node identity in `data_dir`, created (with its public file) if there is none yet.
/// Returns the key and whether it was created.
pub fn load_or_create(data_dir: &Path) -> Result<(StaticKey, bool), KeyFileError> {
    let path = data_dir.join(IDENTITY_KEY_FILE);
    if let Some(key) = read_secret(&path)? {
        // The public file is derived; rewrite it if it went missing or differs.
        let pub_path = data_dir.join(IDENTITY_PUB_FILE);
        let written = fs::read_to_string(&pub_path).unwrap_or_default();
        if written.trim() != key.public().to_string() {
            write_public(&pub_path, &key.public())?;
        }
        return Ok((key, false));
    }
    let key = StaticKey::generate();
    write_pair(data_dir, &key)?;
    Ok((key, true))
}

/// Replaces the node identity in `data_dir` with a fresh one; the old secret is kept as
/// `node-identity.key.old` (replacing an older one). Returns the old public key (if there was
/// one) and the new key.
pub fn rotate(data_dir: &Path) -> Result<(Option<NodeKey>, StaticKey), KeyFileError> {
    let path = data_dir.join(IDENTITY_KEY_FILE);
    let old = read_secret(&path)?.map(|k| k.public());
    if old.is_some() {
        let kept = data_dir.join(IDENTITY_OLD_FILE);
        fs::rename(&path, &kept).map_err(io("rename", &path))?;
    }
    let key = StaticKey::generate();
    write_pair(data_dir, &key)?;
    Ok((old, key))
}

/// Reads a public identity file (`node-identity.pub`, or any file holding 64 hex digits).
pub fn read_public(path: &Path) -> Result<NodeKey, KeyFileError> {
    let text = fs::read_to_string(path).map_err(io("read", path))?;
    text.trim()
        .parse::<NodeKey>()
        .map_err(|e| KeyFileError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

/// Reads a secret key file, or `None` if there is none.
fn read_secret(path: &Path) -> Result<Option<StaticKey>, KeyFileError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => Zeroizing::new(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("read", path)(e)),
    };
    let corrupt = |reason: String| KeyFileError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let digits = text.trim();
    if digits.len() != 64 {
        return Err(corrupt(format!(
            "expected 64 hex digits, found {} characters",
            digits.len()
        )));
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(digits, &mut secret[..])
        .map_err(|_| corrupt("expected 64 hex digits, found other characters".into()))?;
    Ok(Some(StaticKey::from_secret(*secret)))
}

/// Writes `node-identity.key` (mode 0600, must not exist) and `node-identity.pub`.
fn write_pair(data_dir: &Path, key: &StaticKey) -> Result<(), KeyFileError> {
    fs::create_dir_all(data_dir).map_err(io("create", data_dir))?;
    let path = data_dir.join(IDENTITY_KEY_FILE);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path).map_err(io("create", &path))?;
    let text = Zeroizing::new(format!("{}\n", hex::encode(key.expose_secret())));
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io("write", &path))?;
    write_public(&data_dir.join(IDENTITY_PUB_FILE), &key.public())
}

/// Writes a public file aside and renames it over `path`, so a reader never sees half of it.
fn write_public(path: &Path, key: &NodeKey) -> Result<(), KeyFileError> {
    let partial = path.with_extension("pub.partial");
    fs::write(&partial, format!("{key}\n")).map_err(io("write", &partial))?;
    fs::rename(&partial, path).map_err(io("rename", &partial))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_half_is_x25519_of_the_secret() {
        // RFC 7748 §6.1: Alice's private key and public key.
        let secret: [u8; 32] =
            hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .unwrap()
                .try_into()
                .unwrap();
        let key = StaticKey::from_secret(secret);
        assert_eq!(
            key.public().to_string(),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
        let shown = format!("{key:?}");
        assert!(!shown.contains("77076d0a"), "{shown}");
    }

    #[test]
    fn created_once_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let (key, created) = load_or_create(dir.path()).unwrap();
        assert!(created);
        let (again, created) = load_or_create(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(again.public(), key.public());
        assert_eq!(
            read_public(&dir.path().join(IDENTITY_PUB_FILE)).unwrap(),
            key.public()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(IDENTITY_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A lost public file is written again.
        fs::remove_file(dir.path().join(IDENTITY_PUB_FILE)).unwrap();
        load_or_create(dir.path()).unwrap();
        assert_eq!(
            read_public(&dir.path().join(IDENTITY_PUB_FILE)).unwrap(),
            key.public()
        );
    }

    #[test]
    fn rotation_keeps_the_old_secret_for_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let (first, _) = load_or_create(dir.path()).unwrap();
        let (old, new) = rotate(dir.path()).unwrap();
        assert_eq!(old, Some(first.public()));
        assert_ne!(new.public(), first.public());
        let (loaded, created) = load_or_create(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(loaded.public(), new.public());
        let kept = read_secret(&dir.path().join(IDENTITY_OLD_FILE))
            .unwrap()
            .unwrap();
        assert_eq!(kept.public(), first.public());
        // Rotating a directory without an identity just creates one.
        let empty = tempfile::tempdir().unwrap();
        let (old, _) = rotate(empty.path()).unwrap();
        assert_eq!(old, None);
    }

    #[test]
    fn corrupt_files_are_named_with_what_would_be_valid() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(IDENTITY_KEY_FILE), "abc\n").unwrap();
        let e = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains(IDENTITY_KEY_FILE) && e.contains("64 hex digits"),
            "{e}"
        );
        fs::write(dir.path().join("p.pub"), "zz".repeat(32)).unwrap();
        let e = read_public(&dir.path().join("p.pub"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("p.pub") && e.contains("64 hex digits"), "{e}");
        let e = read_public(&dir.path().join("missing.pub"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cannot read") && e.contains("missing.pub"),
            "{e}"
        );
    }
}
