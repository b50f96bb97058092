//! The module's side: functions, the meter that runs and measures them, and the per-client
//! sequence numbers that go into its sealed state.
//!
//! A module keeps a [`Meter`] in its state struct. For a `persistent` module the runtime seals
//! that state after every call and releases the call's reply only once the state is committed
//! (docs/PROTOCOL.md §9), so a receipt never leaves the module before the sequence number it
//! carries is stored: a restart continues after it. The receipt key is not part of the state
//! (which the owner can read with `aex checkpoint`): it is derived from the platform's sealing
//! key each time the process starts ([`RECEIPT_KEY_PURPOSE`]), so it is the same after a
//! restart and never exists outside the module.

use std::collections::BTreeMap;
use std::time::Instant;

use aex_crypto::sha256;
use serde::{Deserialize, Serialize};

use crate::receipt::{ClientId, KeyId, Receipt, ReceiptKey, ReceiptPublicKey, Usage};
use crate::MAX_FUNCTION_NAME;

/// The purpose the receipt key is derived for from the sealing key
/// (`Context::purpose_key`).
pub const RECEIPT_KEY_PURPOSE: &str = "aex receipt key v1";

/// A function clients may invoke: a name and a handler from input bytes to output bytes (or
/// an error message, which goes back to the client; the receipt still bills the call).
#[derive(Clone, Copy)]
pub struct Function {
    /// The name clients invoke it by (1 to 64 bytes).
    pub name: &'static str,
    /// The handler.
    pub run: fn(&[u8]) -> Result<Vec<u8>, String>,
}

impl Function {
    /// A function named `name` that runs `run`.
    pub const fn new(name: &'static str, run: fn(&[u8]) -> Result<Vec<u8>, String>) -> Self {
        Function { name, run }
    }
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Function({})", self.name)
    }
}

/// What an invocation answers: the function's result and the signed receipt for it.
#[derive(Debug, Clone)]
pub struct Invoked {
    /// The output, or the function's error message.
    pub result: Result<Vec<u8>, String>,
    /// The receipt (also for a failed call: it used what it used).
    pub receipt: Receipt,
}

/// Why nothing ran (no receipt is issued for these).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// No function of that name.
    #[error("no function `{name}` (this module has: {known})")]
    UnknownFunction {
        /// The name asked for (cut to 64 bytes).
        name: String,
        /// The names the module has, comma-separated.
        known: String,
    },
    /// The module declares a function whose name a receipt cannot carry.
    #[error("the function name `{0}` is not 1 to 64 bytes long: a receipt cannot carry it (rename the function)")]
    BadName(String),
    /// The client used every sequence number (2^64 - 1 invocations).
    #[error("client {0} has no sequence number left under this receipt key")]
    Exhausted(ClientId),
    /// The thread CPU clock could not be read.
    #[error("the thread CPU clock is unavailable: {0}")]
    Clock(String),
}

/// Who signs receipts: the key, its id, and the module measurement receipts carry.
#[derive(Debug)]
pub struct Signer {
    key: ReceiptKey,
    key_id: KeyId,
    measurement: [u8; 32],
}

impl Signer {
    /// Signs with `key` for the module measured `measurement`.
    pub fn new(key: ReceiptKey, measurement: [u8; 32]) -> Self {
        let key_id = key.public().id();
        Signer {
            key,
            key_id,
            measurement,
        }
    }

    /// The receipt public key verifiers need.
    pub fn public(&self) -> ReceiptPublicKey {
        self.key.public()
    }
}

/// Runs functions, measures them and issues receipts; keep it in the module's state struct.
///
/// Serializes to the per-client sequence numbers only (`{"issued": {CLIENT: LAST}}`): the key
/// is never part of the state.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Meter {
    /// The signer, set up on first use in this process.
    #[serde(skip)]
    signer: Option<Signer>,
    /// The last sequence number issued to each client.
    #[serde(default)]
    issued: BTreeMap<ClientId, u64>,
}

impl Meter {
    /// The last sequence number issued to `client` (0: none yet).
    pub fn issued(&self, client: &ClientId) -> u64 {
        self.issued.get(client).copied().unwrap_or(0)
    }

    /// Invokes `name` among `functions` for `client` with `input`, signing with `signer`:
    /// the core that [`Meter::invoke`] calls once it has the module's signer, public for
    /// benchmarks and for hosts that manage the key themselves.
    pub fn invoke_signed(
        &mut self,
        signer: &Signer,
        functions: &[Function],
        client: ClientId,
        name: &str,
        input: &[u8],
    ) -> Result<Invoked, InvokeError> {
        invoke_with(&mut self.issued, signer, functions, client, name, input)
    }
}

/// [`Meter::invoke_signed`] on the meter's fields, so that [`Meter::invoke`] can lend its own
/// signer and its sequence numbers at once.
fn invoke_with(
    issued: &mut BTreeMap<ClientId, u64>,
    signer: &Signer,
    functions: &[Function],
    client: ClientId,
    name: &str,
    input: &[u8],
) -> Result<Invoked, InvokeError> {
    let Some(function) = functions.iter().find(|f| f.name == name) else {
        let cut = &name.as_bytes()[..name.len().min(MAX_FUNCTION_NAME)];
        return Err(InvokeError::UnknownFunction {
            name: String::from_utf8_lossy(cut).into_owned(),
            known: functions
                .iter()
                .map(|f| f.name)
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    if function.name.is_empty() || function.name.len() > MAX_FUNCTION_NAME {
        return Err(InvokeError::BadName(function.name.to_owned()));
    }
    let sequence = issued
        .get(&client)
        .copied()
        .unwrap_or(0)
        .checked_add(1)
        .ok_or(InvokeError::Exhausted(client))?;
    let (result, usage, heap_counted) = measure(function.run, input)?;
    let output: &[u8] = match &result {
        Ok(out) => out,
        Err(message) => message.as_bytes(),
    };
    let mut receipt = Receipt {
        function: function.name.to_owned(),
        client,
        sequence,
        measurement: signer.measurement,
        key_id: signer.key_id,
        input_sha256: sha256(&[input]),
        output_sha256: sha256(&[output]),
        usage: Usage {
            output_bytes: output.len() as u64,
            ..usage
        },
        heap_counted,
        failed: result.is_err(),
        signature: [0; 64],
    };
    signer.key.sign(&mut receipt);
    issued.insert(client, sequence);
    Ok(Invoked { result, receipt })
}

/// What a function answers.
type Outcome = Result<Vec<u8>, String>;

/// Runs `run(input)` and measures it: the thread's CPU time, wall time, and the heap's peak
/// above its level at the start (when the counting allocator is installed; the flag says).
fn measure(run: fn(&[u8]) -> Outcome, input: &[u8]) -> Result<(Outcome, Usage, bool), InvokeError> {
    let heap = crate::heap::start();
    // The wall clock's span encloses the CPU clock's, so that a function that never waits
    // shows CPU time ≤ wall time (read the other way round, the CPU clock's own readings
    // fell outside the wall span and a busy function showed more CPU than wall time).
    let wall = Instant::now();
    let cpu = cpu_now()?;
    let result = run(input);
    let cpu_ns = nanos(cpu_now()?.saturating_sub(cpu));
    let wall_ns = nanos(wall.elapsed());
    let peak = crate::heap::peak_since(heap);
    let usage = Usage {
        cpu_ns,
        wall_ns,
        peak_heap_bytes: peak.unwrap_or(0),
        input_bytes: input.len() as u64,
        output_bytes: 0,
    };
    Ok((result, usage, peak.is_some()))
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The calling thread's CPU time (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`).
fn cpu_now() -> Result<std::time::Duration, InvokeError> {
    cpu_time::ThreadTime::try_now()
        .map(|t| t.as_duration())
        .map_err(|e| InvokeError::Clock(e.to_string()))
}

/// The runtime's side: the signer from the platform's sealing key.
mod runtime {
    use super::*;
    use aex_runtime::Context;

    impl Meter {
        /// Invokes `name` among `functions` for `client` with `input`: runs it, measures it,
        /// and signs a receipt with the next sequence number of `client`.
        ///
        /// Call it with the `ctx` of a port method (an entry point, a handler), or from a
        /// thread the module started (its HTTPS server) inside `Handle::call_committed`: for a
        /// `persistent` module either way the answer, receipt included, leaves only after the
        /// state holding the new sequence number is committed. (`Handle::call` would answer
        /// before the commit, and a crash then could issue the number again.)
        pub fn invoke(
            &mut self,
            ctx: &Context,
            functions: &[Function],
            client: ClientId,
            name: &str,
            input: &[u8],
        ) -> Result<Invoked, InvokeError> {
            let signer = self.signer.get_or_insert_with(|| module_signer(ctx));
            invoke_with(&mut self.issued, signer, functions, client, name, input)
        }

        /// The receipt public key, to publish (for example among the attested keys of the
        /// module's TLS certificate): verifiers check receipts against it.
        pub fn public_key(&mut self, ctx: &Context) -> ReceiptPublicKey {
            self.signer
                .get_or_insert_with(|| module_signer(ctx))
                .public()
        }
    }

    /// The module's signer: a persistent module derives its key from the sealing key (the
    /// same key after every restart); any other module makes a fresh key, which lives as
    /// long as its process.
    fn module_signer(ctx: &Context) -> Signer {
        let key = match ctx.purpose_key(RECEIPT_KEY_PURPOSE) {
            Some(seed) => ReceiptKey::from_seed(seed.expose_secret()),
            None => ReceiptKey::generate(),
        };
        Signer::new(key, ctx.measurement().0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Holds 1 MiB at once, then frees it; spins until it used 2 ms of CPU.
    fn busy(input: &[u8]) -> Result<Vec<u8>, String> {
        let held = std::hint::black_box(vec![1u8; 1 << 20]);
        drop(held);
        let start = cpu_now().map_err(|e| e.to_string())?;
        while cpu_now().map_err(|e| e.to_string())? - start < std::time::Duration::from_millis(2) {
            std::hint::black_box(input);
        }
        Ok(input.to_vec())
    }

    fn fails(_: &[u8]) -> Result<Vec<u8>, String> {
        Err("no such thing".into())
    }

    const FUNCTIONS: &[Function] = &[
        Function::new("busy", busy),
        Function::new("fails", fails),
        Function::new(LONG, fails),
    ];

    const LONG: &str = "a_function_name_of_sixty_five_bytes_which_no_receipt_can_carry_xx";

    #[test]
    fn invocations_are_measured_numbered_per_client_and_signed() {
        let signer = Signer::new(ReceiptKey::from_seed(&[5; 32]), [9; 32]);
        let mut meter = Meter::default();
        let (a, b) = (ClientId([1; 32]), ClientId([2; 32]));
        let first = meter
            .invoke_signed(&signer, FUNCTIONS, a, "busy", b"abc")
            .unwrap();
        let r = &first.receipt;
        assert_eq!(first.result.as_deref(), Ok(&b"abc"[..]));
        assert_eq!((r.sequence, r.client, r.measurement), (1, a, [9; 32]));
        assert!(r.usage.cpu_ns >= 2_000_000, "{r:?}");
        assert!(r.usage.wall_ns >= r.usage.cpu_ns, "{r:?}");
        assert!(
            r.heap_counted && r.usage.peak_heap_bytes >= 1 << 20,
            "{r:?}"
        );
        assert_eq!((r.usage.input_bytes, r.usage.output_bytes), (3, 3));
        assert_eq!(r.input_sha256, sha256(&[b"abc"]));
        r.verify(&signer.public()).unwrap();
        let second = meter
            .invoke_signed(&signer, FUNCTIONS, a, "fails", b"")
            .unwrap();
        assert_eq!(second.receipt.sequence, 2);
        assert!(second.receipt.failed);
        assert_eq!(second.receipt.output_sha256, sha256(&[b"no such thing"]));
        let other = meter
            .invoke_signed(&signer, FUNCTIONS, b, "busy", b"")
            .unwrap();
        assert_eq!(other.receipt.sequence, 1);
        // The state keeps the numbers and not the key.
        let json = serde_json::to_string(&meter).unwrap();
        let back: Meter = serde_json::from_str(&json).unwrap();
        assert_eq!((back.issued(&a), back.issued(&b)), (2, 1));
        assert!(back.signer.is_none(), "{json}");
    }

    #[test]
    fn an_unknown_function_runs_nothing_and_issues_nothing() {
        let signer = Signer::new(ReceiptKey::from_seed(&[5; 32]), [9; 32]);
        let mut meter = Meter::default();
        let e = meter
            .invoke_signed(&signer, FUNCTIONS, ClientId([1; 32]), "nope", b"")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("no function `nope` (this module has: busy, fails, {LONG})")
        );
        assert_eq!(LONG.len(), 65);
        let e = meter
            .invoke_signed(&signer, FUNCTIONS, ClientId([1; 32]), LONG, b"")
            .unwrap_err();
        assert_eq!(e, InvokeError::BadName(LONG.into()));
        assert_eq!(meter.issued(&ClientId([1; 32])), 0);
    }
}
