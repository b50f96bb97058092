//! `aex dashboard`: a live web page of one application, served on loopback.
//!
//! It reads the deployer's state, which holds keys, so it serves only what it shows and only
//! to the person who started it:
//! * it binds to loopback unless told otherwise (`--listen`), and answers only requests whose
//!   `Host` names the address it listens on (`127.0.0.1:PORT`, `localhost:PORT`, `[::1]:PORT`):
//!   a page on another origin that rebinds its own name to 127.0.0.1 is refused;
//! * every path needs the per-run token it prints in its URL (128 random bits, compared in
//!   constant time); the page passes it on to its script, style and data requests;
//! * it sends no CORS header (so other origins' scripts cannot read its answers), a strict
//!   content security policy (no inline script, no third-party asset), `no-store` and
//!   `no-referrer`;
//! * what it sends is the status `aex status --json` prints (no key, no ciphertext), the
//!   application's connections, local nodes' devices and the modules' alarms.
//!
//! The page gets a new snapshot every period over server-sent events (`snapshot.rs` takes
//! them: the application's state is opened for each and closed at once, so other commands
//! run meanwhile).

mod server;
mod snapshot;

pub use server::{serve, Options};
