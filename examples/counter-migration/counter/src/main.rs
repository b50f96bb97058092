//! The counter-migration example's counter.
//!
//! Its state is a plain serde struct, so `aex update` transfers it with no code here: the old
//! instance's runtime snapshots it as JSON after the last request it answered, and the new
//! instance's runtime restores it before any connection is keyed.

use serde::{Deserialize, Serialize};

/// The count, and how many instances it has lived in.
#[derive(Default, Serialize, Deserialize)]
struct Counter {
    count: u64,
}

#[aex::module]
impl Counter {
    /// Adds one; answers the new count.
    #[handler]
    fn increment(&mut self) -> u64 {
        self.count += 1;
        self.count
    }

    /// Answers the count.
    #[handler]
    fn get(&mut self) -> u64 {
        self.count
    }

    /// `{"count": n}` (shown by `aex status`).
    #[entry]
    fn status(&mut self) -> &Counter {
        self
    }
}

aex::main!(Counter);
