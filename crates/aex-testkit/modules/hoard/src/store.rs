// The hoard shared by the `hoard` and `vault` test modules, which differ only in
// `#[aex::module]`'s arguments: `include!`d by both, so the state-transfer tests run the same
// module code with and without persistence (issue 16).

use serde::{Deserialize, Serialize};

/// `fill`'s argument.
#[derive(Deserialize)]
struct Fill {
    /// Bytes to make.
    len: u64,
    /// Seed of the byte sequence.
    seed: u64,
}

/// What `summary` answers.
#[derive(Serialize)]
struct Summary {
    len: u64,
    fnv: String,
}

#[derive(Default)]
struct Hoard {
    bytes: Vec<u8>,
    /// Events received on `add`.
    added: u64,
}

/// `#[aex::module(ARGS)] impl Hoard { .. }`.
macro_rules! hoard_module {
    ($($arg:ident),*) => {
        #[aex::module($($arg),*)]
        impl Hoard {
            /// Replaces the state with `len` bytes derived from `seed`.
            #[entry]
            fn fill(&mut self, arg: Fill) -> Summary {
                let mut x = arg.seed | 1;
                self.bytes = (0..arg.len)
                    .map(|_| {
                        // xorshift64: fast in a debug build, and never constant.
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        (x >> 32) as u8
                    })
                    .collect();
                self.summary()
            }

            /// The state's length and digest.
            #[entry]
            fn summary(&mut self) -> Summary {
                let fnv = self.bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                    (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
                });
                Summary {
                    len: self.bytes.len() as u64,
                    fnv: format!("{fnv:016x}"),
                }
            }

            /// Events received on `add` (by this instance and those it took over from).
            #[entry]
            fn added(&mut self) -> u64 {
                self.added
            }

            /// Appends an event's bytes to the state.
            #[input]
            fn add(&mut self, data: &[u8]) {
                self.added += 1;
                self.bytes.extend_from_slice(data);
            }

            /// The state as raw bytes: the count of events, then the bytes.
            #[save]
            fn save(&self) -> Vec<u8> {
                let mut out = Vec::with_capacity(8 + self.bytes.len());
                out.extend_from_slice(&self.added.to_be_bytes());
                out.extend_from_slice(&self.bytes);
                out
            }

            /// The state [`Hoard::save`] wrote.
            #[restore]
            fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
                let (count, bytes) = snapshot
                    .split_first_chunk::<8>()
                    .ok_or("a hoard snapshot starts with 8 bytes of count")?;
                self.added = u64::from_be_bytes(*count);
                self.bytes = bytes.to_vec();
                Ok(())
            }
        }
    };
}
