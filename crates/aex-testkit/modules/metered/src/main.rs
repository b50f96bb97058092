//! A test module with functions under trusted metering (`aex::metering`): `validate` checks
//! that its input is JSON. Persistent, so that the receipt tests see the per-client sequence
//! numbers and the receipt key survive a restart of its process.
//!
//! Clients will reach functions over the module's attested HTTPS; until then (and as the test
//! harness) two ways in carry the client id, the function's name and the input, and answer the
//! output and the receipt: the entry point `invoke` (the deployer's sealed command channel),
//! and a plain TCP listener on loopback started by the entry point `listen`, one JSON line in
//! and one out per connection, whose thread invokes through `Handle::call_committed`, as the
//! module's HTTPS server will (in `harness.rs`).
#![allow(
    clippy::disallowed_macros,
    reason = "module code: stderr is the module's log, which the node keeps (stdout is its link)"
)]

mod harness;
mod validate;

use aex::metering::{ClientId, Function, Meter};
use aex::Context;
use serde::{Deserialize, Serialize};

aex::metering::count_heap!();

/// The functions clients may invoke.
const FUNCTIONS: &[Function] = &[Function::new("validate", validate::validate_json)];

/// The sealed state: the meter's sequence numbers (its key is derived, never stored).
#[derive(Default, Serialize, Deserialize)]
struct Metered {
    meter: Meter,
    /// The harness listener's address, once started (not state: a restarted process has none).
    #[serde(skip)]
    listening: Option<String>,
}

/// What `invoke` takes.
#[derive(Deserialize, Serialize)]
struct Invocation {
    /// The client's key fingerprint, 64 hex characters.
    client: ClientId,
    function: String,
    /// The input, as text.
    input: String,
}

/// What `invoke` answers.
#[derive(Serialize, Deserialize)]
struct Answer {
    /// The output as text, or the function's error message.
    output: String,
    failed: bool,
    /// The receipt's binary encoding, in hex.
    receipt: String,
}

#[aex::module(persistent)]
impl Metered {
    /// Invokes a function for a client (the test harness's way in).
    #[entry]
    fn invoke(&mut self, ctx: &mut Context, call: Invocation) -> Result<Answer, String> {
        self.run(ctx, call)
    }

    /// Starts the harness's TCP listener (once); answers its address.
    #[entry]
    fn listen(&mut self, ctx: &mut Context) -> Result<String, String> {
        if let Some(addr) = &self.listening {
            return Ok(addr.clone());
        }
        let addr = harness::listen(ctx.handle::<Metered>())?;
        self.listening = Some(addr.clone());
        Ok(addr)
    }

    /// The receipt public key, 64 hex characters.
    #[entry]
    fn receipt_key(&mut self, ctx: &mut Context) -> String {
        self.meter.public_key(ctx).to_string()
    }
}

impl Metered {
    /// Invokes `call` and answers the output and the receipt.
    fn run(&mut self, ctx: &Context, call: Invocation) -> Result<Answer, String> {
        let done = self
            .meter
            .invoke(
                ctx,
                FUNCTIONS,
                call.client,
                &call.function,
                call.input.as_bytes(),
            )
            .map_err(|e| e.to_string())?;
        let (output, failed) = match done.result {
            Ok(out) => (String::from_utf8_lossy(&out).into_owned(), false),
            Err(message) => (message, true),
        };
        Ok(Answer {
            output,
            failed,
            receipt: hex::encode(done.receipt.encode()),
        })
    }
}

aex::main!(Metered);
