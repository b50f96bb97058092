//! `aex checkpoint MODULE -o FILE`: a copy of a running module's state for its owner to hold,
//! and reading it back for `aex deploy --restore-state MODULE=FILE`.
//!
//! This is the way back from a board that is lost for good (docs/SECURITY.md, "Sealed state"):
//! a persistent module's state otherwise lives only in blobs sealed to that board's platform.
//! The module snapshots its state as it is and keeps running (`Command::Checkpoint`, sealed
//! under its command key like every command); the deployer reads the snapshot in chunks, checks
//! its length and SHA-256 against what the module answered, and writes it to `FILE`, mode 0600,
//! written aside, synced and renamed into place. The file holds the state in clear, as the
//! deployer's own state file does: whoever holds it holds the module's state.
//!
//! File format: `"aex checkpoint v1\n"`, the SHA-256 of the state (32 bytes), the state.

use std::io::Write;
use std::path::{Path, PathBuf};

use aex_proto::{Command, Retired};
use zeroize::Zeroizing;

use crate::app::App;
use crate::error::{Error, Result};
use crate::ops::deploy::transfer::read_snapshot;
use crate::state::Snapshot;

/// The first bytes of a checkpoint file.
const MAGIC: &[u8] = b"aex checkpoint v1\n";

/// What `aex checkpoint` wrote.
#[derive(Debug, Clone)]
pub struct Checkpointed {
    /// The module.
    pub module: String,
    /// Bytes of state.
    pub bytes: usize,
    /// Its SHA-256, hex.
    pub digest: String,
    /// The file.
    pub path: PathBuf,
}

/// Takes a checkpoint of `module` and writes it to `out`.
pub fn checkpoint(app: &mut App, module: &str, out: &Path) -> Result<Checkpointed> {
    let answer = app.command(module, "take a checkpoint", &Command::Checkpoint)?;
    let taken = Retired::decode(&answer).map_err(|source| Error::Command {
        module: module.into(),
        source,
    })?;
    let Some(info) = taken.state else {
        return Err(Error::Snapshot {
            module: module.into(),
            reason: "the module has no transferable state".into(),
        });
    };
    let snapshot = read_snapshot(app, module, info)?;
    write(out, &snapshot).map_err(|e| Error::Checkpoint {
        path: out.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(Checkpointed {
        module: module.into(),
        bytes: snapshot.bytes().len(),
        digest: hex::encode(info.digest),
        path: out.to_path_buf(),
    })
}

fn write(out: &Path, snapshot: &Snapshot) -> std::io::Result<()> {
    let aside = out.with_extension("partial");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(&aside)?;
    file.write_all(MAGIC)?;
    file.write_all(&aex_crypto::sha256(&[snapshot.bytes()]))?;
    file.write_all(snapshot.bytes())?;
    file.sync_all()?;
    std::fs::rename(&aside, out)
}

/// Reads a checkpoint file back, checking its format and digest.
pub fn read(path: &Path) -> Result<Snapshot> {
    let bad = |reason: String| Error::Checkpoint {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| bad(e.to_string()))?);
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("not a checkpoint written by `aex checkpoint`".into()))?;
    let (digest, state) = rest
        .split_first_chunk::<32>()
        .ok_or_else(|| bad("truncated".into()))?;
    if aex_crypto::sha256(&[state]) != *digest {
        return Err(bad("its SHA-256 does not match: the file is damaged".into()));
    }
    Ok(Snapshot::new(state.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_file_reads_back_and_refuses_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tally.ckpt");
        write(&path, &Snapshot::new(b"{\"total\":6}".to_vec())).unwrap();
        assert_eq!(read(&path).unwrap().bytes(), b"{\"total\":6}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let mut bytes = std::fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("damaged"));
        std::fs::write(&path, b"hello").unwrap();
        assert!(read(&path)
            .unwrap_err()
            .to_string()
            .contains("not a checkpoint"));
    }
}
