//! The C ABI of the aex module runtime: what lets a module written in C link the same trusted
//! runtime as a Rust module, with no second implementation of the wire format or the crypto.
//!
//! A C module includes `aex.h` (generated from this crate by cbindgen, checked in under
//! `include/`, and held to the code by `tests/header.rs`), declares its ports in a
//! `static const aex_module` table, and calls `aex_run(&MODULE)` from `main`. It links
//! `libaex_c.a`, this crate as a static library: the runtime, aex-proto, aex-crypto and
//! Rust's std. The deployer builds both (docs/DESCRIPTOR.md, `c = "…"`).
//!
//! ```text
//!  C port functions ◀── module.rs (CModule: the runtime's Module trait, from the table)
//!        │                         ▲
//!        ▼                         │ table.rs: the C table, read and checked once
//!  aex_emit, aex_send_request, … (api.rs) ──▶ aex_runtime::Context
//! ```
//!
//! * `abi.rs`: the `#[repr(C)]` table types and the typed function pointers of port
//!   functions (a function of the wrong shape is a C compile error).
//! * `table.rs`: reads the C table into checked Rust values (names unique and well formed,
//!   functions non-NULL, deadlines on declared inputs, persistence with save and restore);
//!   the runtime then answers `--aex-describe` from it, so there is no interface file.
//! * `module.rs`: [`Module`](aex_runtime::Module) for the table.
//! * `api.rs`: the functions C calls; `ctx.rs`: the handles they take (`aex_ctx`, `aex_buf`);
//!   `status.rs`: their return codes.
//! * `stdout.rs`: points descriptor 1 at stderr, so `printf` cannot corrupt the link.
//!
//! `unsafe` is denied in this crate (its lint table in Cargo.toml) and allowed, with a
//! reason, in `api.rs`, `ctx.rs`, `table.rs` and `stdout.rs` only; every `unsafe` block says why it is
//! sound. No other crate of the workspace may use `unsafe` (the workspace forbids it).
// An `unsafe fn`'s body is no unsafe block: each unsafe operation in it needs its own, with its
// own safety comment.
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(
    non_camel_case_types,
    reason = "the C ABI's types are named as C code names them in aex.h"
)]

mod abi;
mod api;
mod ctx;
mod module;
mod status;
mod stdout;
mod table;

pub use abi::*;
pub use api::*;
pub use ctx::{aex_buf, aex_ctx};
pub use status::aex_status;
