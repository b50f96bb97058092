//! Persistence messages between a module and its node's TEE layer (docs/PROTOCOL.md §9).
//!
//! A persistent module seals its state, keys and counters into a **blob** the node stores
//! (storage is untrusted), and binds every blob to a value of a **platform counter** (kept by
//! the TEE layer, apart from the blobs) so an older blob is refused. Blobs may be larger than a
//! frame, so they travel in [`BlobChunk`]s of at most [`BLOB_CHUNK`] bytes, both when the
//! module stores one and when the node hands the stored one to a restarted process.
//!
//! Nothing here is secret or trusted: blobs are sealed, counter answers carry the platform's
//! MAC (`aex_crypto::seal::CounterAnswer`), and the rest only tells the node what to store.

use serde::{Deserialize, Serialize};

/// The largest chunk of a blob in one message: a full chunk with its envelope stays well inside
/// a frame.
pub const BLOB_CHUNK: usize = 512 * 1024;

/// The largest blob a node stores for one module (the largest state, keys and counters a
/// persistent module may have).
pub const MAX_BLOB: u64 = 256 << 20;

/// One chunk of a sealed blob.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobChunk {
    /// The commit the blob belongs to: the logical version it is sealed at (docs/PROTOCOL.md
    /// §9, "Blobs").
    pub version: u64,
    /// The whole blob's length.
    pub total: u64,
    /// Where this chunk starts.
    pub offset: u64,
    /// At most [`BLOB_CHUNK`] bytes.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

impl BlobChunk {
    /// Whether this chunk ends its blob.
    pub fn is_last(&self) -> bool {
        self.offset.saturating_add(self.data.len() as u64) >= self.total
    }

    /// `blob` of `version` cut into chunks (one empty chunk for an empty blob).
    pub fn split(version: u64, blob: &[u8]) -> Vec<BlobChunk> {
        let total = blob.len() as u64;
        let mut chunks: Vec<BlobChunk> = blob
            .chunks(BLOB_CHUNK)
            .scan(0u64, |offset, data| {
                let chunk = BlobChunk {
                    version,
                    total,
                    offset: *offset,
                    data: data.to_vec(),
                };
                *offset += data.len() as u64;
                Some(chunk)
            })
            .collect();
        if chunks.is_empty() {
            chunks.push(BlobChunk {
                version,
                total,
                offset: 0,
                data: Vec::new(),
            });
        }
        chunks
    }
}

impl core::fmt::Debug for BlobChunk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BlobChunk")
            .field("version", &self.version)
            .field("total", &self.total)
            .field("offset", &self.offset)
            .field("len", &self.data.len())
            .finish()
    }
}

/// A counter operation a module asks its platform for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CounterCall {
    /// A new counter at 0.
    Create,
    /// The value of counter `id`.
    Read([u8; 16]),
    /// Move counter `id` from the given value to the next one; a counter at any other value
    /// stays where it is (and the answer says where), so two processes of one module cannot
    /// both advance from the same value.
    /// The digest is the SHA-256 of the blob committed at the next value, which the counter
    /// holds with it.
    Advance([u8; 16], u64, [u8; 32]),
}

/// The platform's authenticated answer to a [`CounterCall`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterValue {
    /// The counter.
    pub id: [u8; 16],
    /// Its value after the operation.
    pub value: u64,
    /// The digest it holds with that value.
    pub digest: [u8; 32],
    /// For [`CounterCall::Advance`]: whether the counter moved (it was at the given value);
    /// bound into the MAC.
    pub advanced: bool,
    /// The platform's MAC (`aex_crypto::seal::CounterAnswer`).
    pub mac: [u8; 32],
}

/// How the last start of a persistent module's process went, as its runtime reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResumeOutcome {
    /// It unsealed the blob committed at `version` and runs on.
    Resumed {
        /// The counter value of the blob it took.
        version: u64,
    },
    /// It refused to run on what the node gave it, and says why ("rollback detected: ...",
    /// "no sealed state ...").
    Refused(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_the_blob_and_marks_its_end() {
        let blob = vec![7u8; BLOB_CHUNK * 2 + 3];
        let chunks = BlobChunk::split(4, &blob);
        assert_eq!(chunks.len(), 3);
        assert!(chunks
            .iter()
            .all(|c| c.version == 4 && c.total == blob.len() as u64));
        assert_eq!(chunks[2].offset, 2 * BLOB_CHUNK as u64);
        assert!(!chunks[1].is_last() && chunks[2].is_last());
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.data.clone()).collect();
        assert_eq!(joined, blob);
        let empty = BlobChunk::split(1, &[]);
        assert_eq!(empty.len(), 1);
        assert!(empty[0].is_last());
    }
}
