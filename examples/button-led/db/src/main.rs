//! The button-led example's database, on the `sgx` node: a press counter.
//!
//! The gateway increments it with authentic events; `web` (or anyone else the descriptor
//! connects to the handler `get_presses`) reads it with an authenticated request.

use serde::Serialize;

/// The counter.
#[derive(Default, Serialize)]
struct Db {
    presses: u64,
}

#[aex::module]
impl Db {
    /// One more press (the payload is ignored).
    #[input]
    fn increment(&mut self, _event: &[u8]) {
        self.presses += 1;
    }

    /// The number of presses, as JSON (e.g. `2`).
    #[handler]
    fn get_presses(&mut self) -> u64 {
        self.presses
    }

    /// `{"presses": n}` (shown by `aex status`).
    #[entry]
    fn status(&mut self) -> &Db {
        self
    }
}

aex::main!(Db);
