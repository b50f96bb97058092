//! The deployer's identity: the Ed25519 key that signs its management requests.
//!
//! Node agents accept management requests only from deployer keys their operator admitted
//! (`aex node --admit KEY`), and each key manages only its own applications there. The secret
//! lives in one file, created on first use with mode 0600: the `--identity FILE` option, else
//! `$AEX_IDENTITY`, else `$XDG_CONFIG_HOME/aex/identity` or `~/.config/aex/identity`. The file
//! holds the 32-byte secret seed in hex, after comment lines naming the public key. `aex
//! identity` prints the public key; nothing ever prints the secret.
//!
//! Invariant: the secret is read into zeroizing buffers and kept only inside
//! [`aex_crypto::SigningIdentity`]; [`Identity`]'s `Debug` shows the path and public key only.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aex_crypto::SigningIdentity;
use aex_proto::DeployerKey;
use zeroize::Zeroizing;

/// Environment variable naming the identity file.
pub const IDENTITY_ENV: &str = "AEX_IDENTITY";

/// A deployer identity loaded from its file.
pub struct Identity {
    key: SigningIdentity,
    public: DeployerKey,
    path: PathBuf,
}

/// The identity file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Neither `AEX_IDENTITY`, `XDG_CONFIG_HOME` nor `HOME` is set.
    #[error("cannot find a place for the deployer identity: none of AEX_IDENTITY, XDG_CONFIG_HOME and HOME is set")]
    NoHome,
    /// The file could not be read.
    #[error("cannot read deployer identity `{path}`")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file could not be created.
    #[error("cannot create deployer identity `{path}`")]
    Create {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file does not hold an identity.
    #[error("deployer identity `{path}` is not valid: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the secret).
        reason: String,
    },
    /// Other users may read the file.
    #[error("deployer identity `{path}` is accessible by other users (mode {mode:03o})")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

impl IdentityError {
    /// A next step for the user.
    pub fn help(&self) -> Option<String> {
        match self {
            IdentityError::NoHome => {
                Some("pass `--identity FILE` or set AEX_IDENTITY to a file path".into())
            }
            IdentityError::Permissions { path, .. } => {
                Some(format!("run `chmod 600 {}`", path.display()))
            }
            IdentityError::Invalid { .. } => Some(
                "restore the file from a backup, or point `--identity` at another file (a new identity must be admitted by the nodes again)".into(),
            ),
            _ => None,
        }
    }
}

impl Identity {
    /// Where the identity lives when neither `--identity` nor `AEX_IDENTITY` says:
    /// `$XDG_CONFIG_HOME/aex/identity`, else `$HOME/.config/aex/identity`.
    pub fn default_path() -> Result<PathBuf, IdentityError> {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(config) = var("XDG_CONFIG_HOME").map(PathBuf::from) {
            if config.is_absolute() {
                return Ok(config.join("aex").join("identity"));
            }
        }
        var("HOME")
            .map(|home| {
                PathBuf::from(home)
                    .join(".config")
                    .join("aex")
                    .join("identity")
            })
            .ok_or(IdentityError::NoHome)
    }

    /// The identity file to use: `explicit` (from `--identity`), else `$AEX_IDENTITY`, else
    /// [`Identity::default_path`].
    pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, IdentityError> {
        if let Some(path) = explicit {
            return Ok(path.to_path_buf());
        }
        match std::env::var_os(IDENTITY_ENV).filter(|v| !v.is_empty()) {
            Some(path) => Ok(PathBuf::from(path)),
            None => Self::default_path(),
        }
    }

    /// Loads the identity at `path`, creating it (mode 0600, parent directories 0700) if there
    /// is no file. Returns whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Identity, bool), IdentityError> {
        match Self::load(path) {
            Err(IdentityError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                match Self::create(path) {
                    Ok(identity) => Ok((identity, true)),
                    // Another aex process created it first.
                    Err(IdentityError::Create { source, .. })
                        if source.kind() == std::io::ErrorKind::AlreadyExists =>
                    {
                        Ok((Self::load(path)?, false))
                    }
                    Err(e) => Err(e),
                }
            }
            other => other.map(|identity| (identity, false)),
        }
    }

    /// Loads the identity at `path`; refuses a file other users can access.
    pub fn load(path: &Path) -> Result<Identity, IdentityError> {
        let read = |source| IdentityError::Read {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read)?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(IdentityError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(read)?);
        let invalid = |reason: &str| IdentityError::Invalid {
            path: path.to_path_buf(),
            reason: reason.into(),
        };
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or_else(|| invalid("no key line"))?;
        let bytes = Zeroizing::new(
            hex::decode(line).map_err(|_| invalid("the key line is not hexadecimal"))?,
        );
        let mut seed = Zeroizing::new([0u8; 32]);
        if bytes.len() != seed.len() {
            return Err(invalid("the key line is not 64 hex digits"));
        }
        seed.copy_from_slice(&bytes);
        Ok(Self::from_key(SigningIdentity::from_seed(&seed), path))
    }

    /// An identity that has no file: `key`, kept elsewhere (the governor seals its own), with
    /// `name` standing for the path in messages.
    pub fn from_signing(key: SigningIdentity, name: &Path) -> Identity {
        Self::from_key(key, name)
    }

    /// The public key nodes admit.
    pub fn public(&self) -> DeployerKey {
        self.public
    }

    /// The identity file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The signing key: for the management client, and for tools that sign a session by hand
    /// (tests playing an attacker).
    pub fn signing(&self) -> &SigningIdentity {
        &self.key
    }

    fn from_key(key: SigningIdentity, path: &Path) -> Identity {
        Identity {
            public: DeployerKey::of(&key),
            key,
            path: path.to_path_buf(),
        }
    }

    fn create(path: &Path) -> Result<Identity, IdentityError> {
        let create = |source| IdentityError::Create {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(create)?;
            }
        }
        let key = SigningIdentity::generate();
        let text = Zeroizing::new(format!(
            "# aex deployer identity: SECRET, do not share or commit.\n\
             # public key (give this to node operators): {}\n{}\n",
            DeployerKey::of(&key),
            hex::encode(key.expose_secret())
        ));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(create)?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(create)?;
        Ok(Self::from_key(key, path))
    }
}

impl core::fmt::Debug for Identity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Identity")
            .field("path", &self.path)
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg/aex/identity");
        let (a, created) = Identity::load_or_create(&path).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let (b, created) = Identity::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(a.public(), b.public());
        // The file names the public key; Debug never shows the secret.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(&a.public().to_string()));
        let secret = hex::encode(a.signing().expose_secret());
        assert!(!format!("{a:?}").contains(&secret));
    }

    #[test]
    fn loose_permissions_and_garbage_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity");
        Identity::load_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Identity::load(&path).unwrap_err();
        assert!(
            matches!(e, IdentityError::Permissions { mode: 0o644, .. }),
            "{e}"
        );
        assert!(e.help().unwrap().contains("chmod 600"));

        std::fs::write(&path, "# nothing\nzz\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = Identity::load(&path).unwrap_err();
        assert!(e.to_string().contains("not hexadecimal"), "{e}");
        std::fs::write(&path, "abcd\n").unwrap();
        assert!(Identity::load(&path)
            .unwrap_err()
            .to_string()
            .contains("64 hex digits"));
    }
}
