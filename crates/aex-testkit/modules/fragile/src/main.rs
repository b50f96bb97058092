//! Test module `fragile`: ports that fail in each way module code can, for the tests of what
//! the owner learns of a failure (`crates/aex-cli/tests/cli_failures.rs`).
//!
//! * `level` takes `{"metres": 1.5}` events: any other payload does not decode;
//! * `crash` panics on any event; `ask` answers a question, and panics on `"panic"`;
//! * the entry `boom` panics; `levels` counts the levels taken.

use serde::Deserialize;

#[derive(Deserialize)]
struct Level {
    metres: f64,
}

#[derive(Default)]
struct Fragile {
    levels: u64,
    last: f64,
}

#[aex::module]
impl Fragile {
    /// A typed input: a payload that is not a `Level` fails before this runs.
    #[input]
    fn level(&mut self, level: Level) {
        self.levels += 1;
        self.last = level.metres;
    }

    /// Panics on every event.
    #[input]
    fn crash(&mut self, _data: &[u8]) {
        panic!("the secret payload is not logged");
    }

    /// Answers `question`, and panics on `"panic"`.
    #[handler]
    fn ask(&mut self, question: String) -> String {
        assert!(question != "panic", "asked to panic");
        format!(
            "{question}? {} levels, the last {} m",
            self.levels, self.last
        )
    }

    /// Panics.
    #[entry]
    fn boom(&mut self) {
        panic!("boom");
    }

    /// How many levels were taken.
    #[entry]
    fn levels(&mut self) -> u64 {
        self.levels
    }
}

aex::main!(Fragile);
