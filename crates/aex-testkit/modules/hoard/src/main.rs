//! A test module whose state is a byte string of any size: the state-transfer tests fill it
//! (up to 64 MiB), update or move the module, and check that every byte arrived.
//!
//! The state travels through its own `#[save]`/`#[restore]` pair, as raw bytes (JSON would
//! triple a byte string). `fill` makes the bytes from a seed inside the module, so a test
//! sends a few bytes to make many; `summary` answers their length and an FNV-1a digest, so a
//! test compares many bytes by reading a few. Events on `add` append to the state, so a test
//! can tell which instance received what.
//!
//! Its code is `store.rs`, shared with the persistent `vault`.

include!("store.rs");

hoard_module!();

aex::main!(Hoard);
