//! Adoption: a persistent module that seals by signer takes its retired predecessor's state
//! from the predecessor's own sealed blobs (`Command::Adopt`, docs/PROTOCOL.md §9, "Updates
//! by signer").
//!
//! Both instances derive the same sealing key on their platform (the stakeholder's and the
//! module name's, not the code's), so the new one opens the old one's blobs and calls its
//! platform counter. It takes a blob only as resumption would (the version and digest the
//! counter holds: no rollback), and only if the predecessor retired in it with exactly the
//! snapshot the deployer was told of (so no live instance is copied, and the state is the one
//! the owner's deployer approved). The node hands the blobs over; it can withhold or swap
//! them, which fails the adoption (the deployer then stages the snapshot), never changes it.

use aex_proto::{BlobChunk, FromModule, SnapshotInfo, StateBytes, ToModule, MAX_BLOB};

use crate::core::{Arrived, Core, Step};
use crate::persist::COMMIT_WAIT;

/// Blobs taken in (a node keeps two per module, `aex-node/src/sealed.rs`): what a node hands
/// over beyond them is dropped, so at most this many blobs are held at once.
const KEPT: usize = 2;

/// What the node hands over next.
enum Handed {
    Chunk(BlobChunk),
    End,
}

impl Core {
    /// The snapshot `predecessor` retired with, from its sealed blobs: `len` bytes with
    /// SHA-256 `digest`. Why not, otherwise (every blob's reason).
    pub(crate) fn adopt_snapshot(
        &mut self,
        predecessor: &str,
        len: u64,
        digest: &[u8; 32],
    ) -> Result<StateBytes, String> {
        let asked = FromModule::Adopt {
            predecessor: predecessor.to_owned(),
        };
        if !(self.link.send(&asked) && self.link.flush()) {
            return Err("the node closed the link".into());
        }
        let mut reasons = Vec::new();
        // Every chunk is taken in up to the end before any blob is opened: opening one calls
        // the platform counter, and a wait for its answer would set later chunks aside.
        let mut blobs: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut blob: Option<(u64, Vec<u8>)> = None;
        loop {
            let handed = self.wait_for(COMMIT_WAIT, |_, arrived| match arrived {
                Arrived::Message(ToModule::Adopted(chunk)) => Step::Done(Handed::Chunk(chunk)),
                Arrived::Message(ToModule::AdoptEnd) => Step::Done(Handed::End),
                Arrived::Keyed(_) | Arrived::Credit(_) => Step::Wait,
                Arrived::Message(other) => Step::Defer(other),
            });
            let chunk = match handed {
                Ok(Handed::Chunk(chunk)) => chunk,
                Ok(Handed::End) => break,
                Err(_) => {
                    reasons.push("the node did not hand the blobs over".to_owned());
                    break;
                }
            };
            if blobs.len() >= KEPT || chunk.total > MAX_BLOB {
                // More than a node keeps, or too large: not held in memory.
                blob = None;
                continue;
            }
            if chunk.offset == 0 {
                blob = Some((chunk.version, Vec::new()));
            }
            let Some((version, bytes)) = &mut blob else {
                continue;
            };
            if *version != chunk.version || chunk.offset != bytes.len() as u64 {
                reasons.push("the node handed a blob over out of order".into());
                blob = None;
                continue;
            }
            bytes.extend_from_slice(&chunk.data);
            if chunk.is_last() {
                blobs.extend(blob.take());
            }
        }
        let mut found = None;
        for (version, bytes) in blobs {
            match self.take_retired(version, &bytes, len, digest) {
                Ok(snapshot) => {
                    found = Some(snapshot);
                    break;
                }
                Err(reason) => reasons.push(reason),
            }
        }
        found.ok_or_else(|| {
            if reasons.is_empty() {
                format!("the node handed over no sealed state of `{predecessor}`")
            } else {
                format!(
                    "no sealed state of `{predecessor}` can be adopted: {}",
                    reasons.join("; ")
                )
            }
        })
    }

    /// The retired snapshot in the committed blob `bytes` of `version`, if it is the one
    /// expected.
    fn take_retired(
        &mut self,
        version: u64,
        bytes: &[u8],
        len: u64,
        digest: &[u8; 32],
    ) -> Result<StateBytes, String> {
        let mut sealed = self.try_open(version, bytes)?;
        if !sealed.retired {
            return Err(format!(
                "version {version} is not retired: its instance may still run"
            ));
        }
        let snapshot = sealed
            .state
            .take()
            .ok_or_else(|| format!("version {version} holds no state"))?;
        let expected = SnapshotInfo {
            len,
            digest: *digest,
        };
        if SnapshotInfo::of(&snapshot.0) != expected {
            return Err(format!(
                "version {version} holds another snapshot than the one its instance answered"
            ));
        }
        Ok(snapshot)
    }
}
