//! Deployer → module commands, sealed under the module key.
//!
//! The module key is known only to the module and the deployer (see
//! `aex_crypto::ModuleKeyAgreement`). Every command carries a counter that must be strictly
//! greater than the last command the module accepted, so a recorded key delivery or entry-point
//! call cannot be replayed by the node agent. Each reply is sealed with the counter of the
//! command it answers, in the opposite nonce domain.
//!
//! Connection keys are delivered as a [`Command::SetKey`]: the AEAD seal under the module key
//! is the key wrap. Plaintext buffers that held a key are zeroized.

use aex_crypto::{Algorithm, Nonce, SealingKey, SecretKey};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::frame;
use crate::ids::ConnId;

const TO_MODULE: u8 = 2;
const FROM_MODULE: u8 = 3;
const COMMAND_LABEL: &[u8] = b"aex/v1 command";
const REPLY_LABEL: &[u8] = b"aex/v1 reply";
const CONFIRM_LABEL: &[u8] = b"aex/v1 confirm";

/// A sealed command or reply: counter in clear, everything else in the ciphertext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// Command counter.
    pub counter: u64,
    /// AEAD ciphertext and tag.
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

/// A 32-byte key inside a command plaintext. Zeroized on drop; never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct WireKey(pub [u8; 32]);

impl WireKey {
    /// Copies a secret key for delivery.
    pub fn from_secret(key: &SecretKey) -> Self {
        WireKey(*key.expose_secret())
    }

    /// Moves the bytes into a [`SecretKey`].
    pub fn into_secret(self) -> SecretKey {
        SecretKey::from_bytes(self.0)
    }
}

impl core::fmt::Debug for WireKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("WireKey(REDACTED)")
    }
}

/// The part a module plays on a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Role {
    /// The module sends on this connection from its output of that name.
    Output(String),
    /// The module receives on this connection into its input of that name.
    Input(String),
    /// The module sends requests from its request of that name and receives replies.
    Request(String),
    /// The module answers requests with its handler of that name.
    Handler(String),
}

/// Connection algorithm as encoded in commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum WireAlgorithm {
    /// AES-256-GCM.
    AesGcm,
    /// ChaCha20-Poly1305.
    ChaCha20Poly1305,
}

impl From<Algorithm> for WireAlgorithm {
    fn from(a: Algorithm) -> Self {
        match a {
            Algorithm::AesGcm => WireAlgorithm::AesGcm,
            Algorithm::ChaCha20Poly1305 => WireAlgorithm::ChaCha20Poly1305,
        }
    }
}

impl From<WireAlgorithm> for Algorithm {
    fn from(a: WireAlgorithm) -> Self {
        match a {
            WireAlgorithm::AesGcm => Algorithm::AesGcm,
            WireAlgorithm::ChaCha20Poly1305 => Algorithm::ChaCha20Poly1305,
        }
    }
}

/// What the deployer asks of a module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Command {
    /// Install the key of a connection.
    SetKey {
        /// The connection.
        conn: ConnId,
        /// The module's part on it.
        role: Role,
        /// Its AEAD algorithm.
        algorithm: WireAlgorithm,
        /// The fresh connection key.
        key: WireKey,
    },
    /// Disable the module: it answers, then drops every connection key and its module key, so
    /// it accepts no event and no command again (a new instance must be deployed).
    Disable,
    /// Call an entry point.
    Call {
        /// Entry point name.
        entry: String,
        /// Argument bytes.
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
    // New variants go last: a variant's position is its wire encoding.
    /// First half of a state transfer (`aex update`): the module stops taking part in the
    /// application for good — it drops every connection key, so it accepts and emits no
    /// event, and its own threads' calls fail — snapshots its state, taken after the last
    /// event it accepted, and answers with a [`Retired`]: the snapshot's length and SHA-256,
    /// not its bytes (a snapshot may be larger than a frame; the deployer reads it with
    /// [`Command::ReadState`]). Asked again, it answers the same, so a deployer that crashed
    /// after sending it can ask again.
    Retire,
    /// Second half of a state transfer: the new instance replaces its fresh state with the
    /// snapshot staged by [`Command::WriteState`], if the staged bytes are exactly `len`
    /// bytes with SHA-256 `digest` (the old instance's [`Retired`]). Refused once a
    /// connection is keyed, so no event is ever handled by a state that is about to be
    /// replaced.
    Restore {
        /// Length of the snapshot, in bytes.
        len: u64,
        /// SHA-256 of the snapshot.
        digest: [u8; 32],
        /// The sealed-state version the old instance retired at ([`Retired::sealed`]), when
        /// it persisted: a persistent new instance continues its versions above it, so the
        /// module's logical counter never goes back across a move (docs/PROTOCOL.md §9).
        sealed: Option<u64>,
    },
    /// Arms a module that receives nothing else first: after attestation a module runs no
    /// tick, deadline or entry point until its first authenticated command (`Restore`,
    /// `SetKey`, `Call` or this), so nothing runs on a state that is about to be replaced.
    Start,
    /// Revokes a connection: the module drops every key it holds for `conn` (all roles), so
    /// it accepts and emits nothing more on it. Idempotent.
    Revoke {
        /// The connection.
        conn: ConnId,
    },
    /// Reads the retired instance's snapshot, or else its checkpoint ([`Command::Checkpoint`]):
    /// answers `Done` with the bytes from `offset`, at most [`STATE_CHUNK`] of them (fewer only
    /// at the end). Refused (`Failed`) unless the instance is retired with a snapshot or holds
    /// a checkpoint, and `offset` is within it.
    ReadState {
        /// Where the chunk starts, in bytes from the snapshot's start.
        offset: u64,
    },
    /// Stages a chunk of a snapshot in a fresh instance, for [`Command::Restore`]. `offset`
    /// must be the number of bytes staged so far, or 0, which discards what was staged (a
    /// deployer that crashed starts over). Refused under the same conditions as `Restore`.
    WriteState {
        /// Where the chunk goes: the number of bytes staged before it.
        offset: u64,
        /// At most [`STATE_CHUNK`] bytes of the snapshot.
        data: StateBytes,
    },
    /// Takes a checkpoint for the owner to hold (`aex checkpoint`): the module snapshots its
    /// state as it is, keeps running, and answers a [`Retired`] with the snapshot's length and
    /// SHA-256; [`Command::ReadState`] then reads the checkpoint (a retired instance's snapshot
    /// comes first). A persistent module seals the checkpoint with its state, so a chunk read
    /// again after a restart is the same bytes. A newer checkpoint replaces it.
    Checkpoint,
    /// A persistent module that seals by signer, on the node of its retired `predecessor`
    /// (an older instance of the same module): the new instance takes the predecessor's
    /// state from the predecessor's own sealed blobs, which its sealing key opens, instead of
    /// from staged bytes. It asks its node for them ([`crate::FromModule::Adopt`]), resumes
    /// from the blob the predecessor's platform counter names, which must be retired with a
    /// snapshot of exactly `len` bytes and SHA-256 `digest` (the predecessor's
    /// [`Retired`]), and continues its versions above `sealed`. Refused, changing nothing,
    /// under the conditions of `Restore`, or when no such blob opens: the deployer then
    /// stages the snapshot and sends `Restore`.
    Adopt {
        /// The predecessor's name on the node.
        predecessor: String,
        /// Length of the predecessor's snapshot, in bytes.
        len: u64,
        /// SHA-256 of the predecessor's snapshot.
        digest: [u8; 32],
        /// The version the predecessor retired at ([`Retired::sealed`]).
        sealed: Option<u64>,
    },
}

/// The most snapshot bytes one [`Command::ReadState`] answer or [`Command::WriteState`]
/// carries: 512 KiB, so a command or reply with its envelope stays well inside one frame
/// ([`crate::MAX_FRAME_LEN`]).
pub const STATE_CHUNK: usize = 512 * 1024;

/// A module's state snapshot. Zeroized on drop; `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateBytes(#[serde(with = "serde_bytes")] pub Vec<u8>);

// By hand rather than derived: snapshots reach hundreds of MiB, and `aex_crypto::wipe` is
// compiled optimized where a derived wipe would be compiled with this crate.
impl Zeroize for StateBytes {
    fn zeroize(&mut self) {
        aex_crypto::wipe(&mut self.0);
    }
}

impl Drop for StateBytes {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for StateBytes {}

impl core::fmt::Debug for StateBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "StateBytes({} bytes, REDACTED)", self.0.len())
    }
}

/// What a module answers to [`Command::Retire`] (postcard, inside `CommandReply::Done`).
///
/// The snapshot itself is module state: the deployer reads it in chunks with
/// [`Command::ReadState`] (sealed under the old module key) and writes it to the new
/// instance with [`Command::WriteState`] (sealed under the new one), never in clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retired {
    /// The snapshot's size and digest, or `None` when the module's state cannot be
    /// transferred (its type is not serializable and it has no save hook): the new instance
    /// then starts from `Default`.
    pub state: Option<SnapshotInfo>,
    /// For a persistent instance, the version of the sealed state its retirement is
    /// committed under (or a later one): the new instance's versions continue above it.
    pub sealed: Option<u64>,
}

/// The size and SHA-256 of a state snapshot: what [`Command::Restore`] checks the staged
/// bytes against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Length in bytes.
    pub len: u64,
    /// SHA-256 of the bytes.
    pub digest: [u8; 32],
}

impl SnapshotInfo {
    /// The length and digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        SnapshotInfo {
            len: bytes.len() as u64,
            digest: aex_crypto::sha256(&[bytes]),
        }
    }

    /// How many [`STATE_CHUNK`]s the snapshot takes.
    pub fn chunks(&self) -> u64 {
        self.len.div_ceil(STATE_CHUNK as u64)
    }
}

impl Retired {
    /// Encodes the answer for a command reply.
    pub fn encode(&self) -> Vec<u8> {
        frame_body(self)
    }

    /// Decodes the answer from a command reply.
    pub fn decode(bytes: &[u8]) -> Result<Self, CommandError> {
        frame::decode_plain(bytes).map_err(CommandError::Malformed)
    }
}

/// A module's answer to a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum CommandReply {
    /// Done; entry points return their result bytes.
    Done(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The module refused or failed the command.
    Failed(String),
}

/// Why a command or reply was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// Counter not above the last accepted command: a replay.
    Replayed {
        /// Counter received.
        counter: u64,
        /// Last counter accepted.
        last: u64,
    },
    /// The reply answers another command than the one sent.
    UnexpectedCounter {
        /// Counter expected.
        expected: u64,
        /// Counter received.
        got: u64,
    },
    /// Authentication failed.
    Forged,
    /// Authentic but undecodable plaintext (a peer bug, not an attack).
    Malformed(String),
    /// The command counter space is exhausted.
    Exhausted,
}

impl core::fmt::Display for CommandError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CommandError::Replayed { counter, last } => write!(
                f,
                "replayed command (counter {counter}, last accepted {last})"
            ),
            CommandError::UnexpectedCounter { expected, got } => {
                write!(f, "reply for command {got}, expected command {expected}")
            }
            CommandError::Forged => f.write_str("command failed authentication"),
            CommandError::Malformed(r) => write!(f, "malformed command: {r}"),
            CommandError::Exhausted => f.write_str("command counter exhausted"),
        }
    }
}

impl std::error::Error for CommandError {}

/// Command state under one module key; one instance on each side.
pub struct CommandChannel {
    key: SealingKey,
    last: u64,
}

impl CommandChannel {
    /// A fresh channel (no command sent or accepted yet).
    pub fn new(module_key: &SecretKey) -> Self {
        Self::resume(module_key, 0)
    }

    /// Deployer side: resume after `last` commands were sent (state restored from disk).
    pub fn resume(module_key: &SecretKey, last: u64) -> Self {
        CommandChannel {
            // Commands always use AES-GCM: every backend offers it for management.
            key: SealingKey::new(Algorithm::AesGcm, module_key),
            last,
        }
    }

    /// The last counter sent (deployer) or accepted (module).
    pub fn last_counter(&self) -> u64 {
        self.last
    }

    /// Deployer side: seal the next command.
    pub fn seal_command(&mut self, cmd: &Command) -> Result<Sealed, CommandError> {
        let counter = self.last.checked_add(1).ok_or(CommandError::Exhausted)?;
        self.last = counter;
        let pt = Zeroizing::new(frame_body(cmd));
        Ok(Sealed {
            counter,
            ciphertext: self.key.seal(
                Nonce::new(TO_MODULE, counter),
                &aad(COMMAND_LABEL, counter),
                &pt,
            ),
        })
    }

    /// Deployer side: open the reply to the command sealed with `expected` counter.
    pub fn open_reply(&self, sealed: &Sealed, expected: u64) -> Result<CommandReply, CommandError> {
        if sealed.counter != expected {
            return Err(CommandError::UnexpectedCounter {
                expected,
                got: sealed.counter,
            });
        }
        let pt = self
            .key
            .open(
                Nonce::new(FROM_MODULE, sealed.counter),
                &aad(REPLY_LABEL, sealed.counter),
                &sealed.ciphertext,
            )
            .map_err(|_| CommandError::Forged)?;
        frame::decode_plain(&pt).map_err(CommandError::Malformed)
    }

    /// Module side: authenticate a command and advance the replay window.
    pub fn open_command(&mut self, sealed: &Sealed) -> Result<Command, CommandError> {
        let opened = self.peek_command(sealed);
        // Authentic: the counter is consumed even if the plaintext is not understood, so an
        // authentic command is never processed twice.
        if matches!(opened, Ok(_) | Err(CommandError::Malformed(_))) {
            self.last = sealed.counter;
        }
        opened
    }

    /// Module side: what [`CommandChannel::open_command`] would return, without consuming the
    /// counter (to decide whether a command can be handled at once or must wait its turn).
    pub fn peek_command(&self, sealed: &Sealed) -> Result<Command, CommandError> {
        if sealed.counter <= self.last {
            return Err(CommandError::Replayed {
                counter: sealed.counter,
                last: self.last,
            });
        }
        let pt = Zeroizing::new(
            self.key
                .open(
                    Nonce::new(TO_MODULE, sealed.counter),
                    &aad(COMMAND_LABEL, sealed.counter),
                    &sealed.ciphertext,
                )
                .map_err(|_| CommandError::Forged)?,
        );
        frame::decode_plain(&pt).map_err(CommandError::Malformed)
    }

    /// Module side: seal the reply to the command with `counter`.
    pub fn seal_reply(&self, counter: u64, reply: &CommandReply) -> Sealed {
        let pt = frame_body(reply);
        Sealed {
            counter,
            ciphertext: self.key.seal(
                Nonce::new(FROM_MODULE, counter),
                &aad(REPLY_LABEL, counter),
                &pt,
            ),
        }
    }

    /// Module side: key confirmation sent with the attestation answer.
    pub fn confirmation(&self) -> Vec<u8> {
        self.key
            .seal(Nonce::new(FROM_MODULE, 0), CONFIRM_LABEL, &[])
    }

    /// Deployer side: does `confirm` prove the module derived the same module key?
    pub fn check_confirmation(&self, confirm: &[u8]) -> bool {
        self.key
            .open(Nonce::new(FROM_MODULE, 0), CONFIRM_LABEL, confirm)
            .is_ok()
    }
}

fn aad(label: &[u8], counter: u64) -> Vec<u8> {
    let mut a = Vec::with_capacity(label.len() + 8);
    a.extend_from_slice(label);
    a.extend_from_slice(&counter.to_be_bytes());
    a
}

fn frame_body<T: Serialize>(value: &T) -> Vec<u8> {
    // Invariant: our command types always serialize.
    postcard::to_stdvec(value).expect("commands always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channels() -> (CommandChannel, CommandChannel) {
        let k = SecretKey::from_bytes([3; 32]);
        (CommandChannel::new(&k), CommandChannel::new(&k))
    }

    #[test]
    fn command_round_trip_and_replay() {
        let (mut deployer, mut module) = channels();
        let cmd = Command::SetKey {
            conn: ConnId(4),
            role: Role::Input("pong".into()),
            algorithm: WireAlgorithm::AesGcm,
            key: WireKey([7; 32]),
        };
        let sealed = deployer.seal_command(&cmd).unwrap();
        assert_eq!(module.open_command(&sealed).unwrap(), cmd);
        assert_eq!(
            module.open_command(&sealed),
            Err(CommandError::Replayed {
                counter: 1,
                last: 1
            })
        );
        let reply = module.seal_reply(sealed.counter, &CommandReply::Done(vec![1]));
        assert_eq!(
            deployer.open_reply(&reply, 1).unwrap(),
            CommandReply::Done(vec![1])
        );
        assert!(matches!(
            deployer.open_reply(&reply, 2),
            Err(CommandError::UnexpectedCounter { .. })
        ));
    }

    #[test]
    fn key_never_in_clear_and_tamper_refused() {
        let (mut deployer, mut module) = channels();
        let cmd = Command::SetKey {
            conn: ConnId(1),
            role: Role::Output("o".into()),
            algorithm: WireAlgorithm::ChaCha20Poly1305,
            key: WireKey([0x5a; 32]),
        };
        let mut sealed = deployer.seal_command(&cmd).unwrap();
        assert!(!sealed.ciphertext.windows(32).any(|w| w == [0x5a; 32]));
        assert!(!format!("{cmd:?}").contains("90"));
        sealed.ciphertext[0] ^= 1;
        assert_eq!(module.open_command(&sealed), Err(CommandError::Forged));
        // A forged command does not consume the counter.
        sealed.ciphertext[0] ^= 1;
        assert!(module.open_command(&sealed).is_ok());
    }

    #[test]
    fn state_transfer_commands_round_trip() {
        let (mut deployer, mut module) = channels();
        let data = vec![0xa5; STATE_CHUNK];
        let info = SnapshotInfo::of(&data);
        for cmd in [
            Command::Retire,
            Command::ReadState { offset: 7 },
            Command::WriteState {
                offset: 0,
                data: StateBytes(data.clone()),
            },
            Command::Restore {
                len: info.len,
                digest: info.digest,
                sealed: Some(41),
            },
        ] {
            let sealed = deployer.seal_command(&cmd).unwrap();
            assert_eq!(module.open_command(&sealed).unwrap(), cmd);
        }
        let retired = Retired {
            state: Some(info),
            sealed: Some(41),
        };
        assert_eq!(Retired::decode(&retired.encode()).unwrap(), retired);
        assert_eq!(info.chunks(), 1);
        assert_eq!(SnapshotInfo::of(&[]).chunks(), 0);
        assert_eq!(SnapshotInfo::of(&vec![0; STATE_CHUNK + 1]).chunks(), 2);
        assert_eq!(
            SnapshotInfo::of(b"abc").digest[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256"
        );
    }

    #[test]
    fn confirmation_detects_a_different_key() {
        let (deployer, module) = channels();
        assert!(deployer.check_confirmation(&module.confirmation()));
        let other = CommandChannel::new(&SecretKey::from_bytes([4; 32]));
        assert!(!deployer.check_confirmation(&other.confirmation()));
    }
}
