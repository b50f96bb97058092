// The tally shared by the `tally` and `signed` test modules, which differ only in
// `#[aex::module]`'s arguments (`persistent` and `persistent(signer)`): `include!`d by both.

use aex::Context;
use serde::{Deserialize, Serialize};

/// What `totals` answers, and the sealed state.
#[derive(Default, Serialize, Deserialize)]
struct Tally {
    /// The sum of every number added.
    total: u64,
    /// How many numbers were added.
    added: u64,
}

/// `#[aex::module(ARGS)] impl Tally { .. }`.
macro_rules! tally_module {
    ($($arg:tt)*) => {
        #[aex::module($($arg)*)]
        impl Tally {
            /// Adds an event's number (JSON) and emits the new total on `receipt` (JSON too, so
            /// another tally's `add` takes it).
            #[input]
            fn add(&mut self, ctx: &mut Context, n: u64) {
                self.total += n;
                self.added += 1;
                if let Err(e) = ctx.emit_json(Self::RECEIPT, &self.total) {
                    eprintln!("tally: receipt not sent: {e}");
                }
            }

            /// Drives the device `lamp` (`0` off, `1` on), when a test grants it one: the write is
            /// an effect, held like a receipt until the state is committed.
            #[input]
            fn drive(&mut self, ctx: &mut Context, on: u32) {
                self.added += 1;
                if let Err(e) = ctx.write_device("lamp", on) {
                    eprintln!("tally: cannot drive the lamp: {e}");
                }
            }

            /// Emits the total on `receipt` `n` times in one call: with `n` large, more than a
            /// window, all held until the commit after the call, then sent as the receiver's credit
            /// allows. Answers how many emits succeeded.
            #[entry]
            fn burst(&mut self, ctx: &mut Context, n: u64) -> u64 {
                let mut sent = 0;
                for _ in 0..n {
                    match ctx.emit_json(Self::RECEIPT, &self.total) {
                        Ok(()) => sent += 1,
                        Err(e) => eprintln!("tally: receipt not sent: {e}"),
                    }
                }
                sent
            }

            /// Adds `n` (an entry point, so a test can change the state without a connection).
            #[entry]
            fn bump(&mut self, n: u64) -> u64 {
                self.total += n;
                self.added += 1;
                self.total
            }

            /// The state.
            #[entry]
            fn totals(&mut self) -> Tally {
                Tally {
                    total: self.total,
                    added: self.added,
                }
            }
        }
    };
}
