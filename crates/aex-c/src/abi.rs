//! The C declarations of a module: the `#[repr(C)]` types a C module fills in (its port
//! table, `aex_module`) and the function-pointer types of its port functions.
//!
//! Port functions have one typed signature per kind, so that a function of the wrong shape in
//! a table is a C compile error (the deployer compiles with
//! `-Werror=incompatible-pointer-types`), not a crash at run time. Everything here is plain
//! data: reading it from C memory is `table.rs`'s job.

use std::ffi::{c_char, c_int, c_void};

use crate::ctx::{aex_buf, aex_ctx};

/// The module's state is lost when its process ends (the default, 0).
pub const AEX_VOLATILE: u32 = 0;
/// The module keeps its state across restarts: the runtime seals what `save` returns under
/// the platform's sealing key for this code, and gives it back to `restore` in the next
/// process (the C spelling of `#[aex::module(persistent)]`). Needs `save` and `restore`.
pub const AEX_PERSISTENT: u32 = 1;
/// As `AEX_PERSISTENT`, sealed by signer: an update of the module opens what its
/// predecessor sealed (`#[aex::module(persistent(signer))]`).
pub const AEX_PERSISTENT_BY_SIGNER: u32 = 2;

/// An input: called with each authentic event that arrives on the input.
///
/// `state` is the module's `state` pointer; `data` and `len` the event's payload (`data` is
/// valid for this call only). Returns 0 on success, anything else when the event failed (the
/// runtime counts it as failed; the message is the one given to `aex_fail`, if any).
pub type aex_event_fn = Option<
    extern "C" fn(state: *mut c_void, ctx: *mut aex_ctx, data: *const u8, len: usize) -> c_int,
>;

/// A handler or an entry point: called with the request's (or the deployer's call's)
/// argument; what it writes to `reply` with `aex_buf_write` is the answer. Returns 0 on
/// success, anything else for a failure: the requester (or the deployer) then gets the
/// message given to `aex_fail`.
pub type aex_reply_fn = Option<
    extern "C" fn(
        state: *mut c_void,
        ctx: *mut aex_ctx,
        data: *const u8,
        len: usize,
        reply: *mut aex_buf,
    ) -> c_int,
>;

/// A periodic entry point or a deadline handler: called without a payload. Returns 0 on
/// success, anything else for a failure (logged by the runtime, without the message).
pub type aex_tick_fn = Option<extern "C" fn(state: *mut c_void, ctx: *mut aex_ctx) -> c_int>;

/// Saves the state as bytes (written to `out` with `aex_buf_write`), for a state transfer
/// (`aex update`) and, in a persistent module, for every commit. Returns 0 on success.
pub type aex_save_fn = Option<extern "C" fn(state: *const c_void, out: *mut aex_buf) -> c_int>;

/// Replaces the state with bytes an earlier `save` wrote (perhaps in an older version of the
/// module: the format is the module author's contract). Returns 0 on success.
pub type aex_restore_fn =
    Option<extern "C" fn(state: *mut c_void, data: *const u8, len: usize) -> c_int>;

/// An output: emits events with `aex_emit(ctx, &OUTPUT, ...)`. Declare one `static const`
/// object per output and list its address in `aex_module.outputs`.
#[repr(C)]
pub struct aex_output {
    /// The output's name: `[A-Za-z_][A-Za-z0-9_]*`, as the descriptor names it.
    pub name: *const c_char,
}

/// A request: sends a request to another module's handler with `aex_send_request(ctx,
/// &REQUEST, ...)`. Declare one `static const` object per request and list its address in
/// `aex_module.requests`.
#[repr(C)]
pub struct aex_request {
    /// The request's name.
    pub name: *const c_char,
}

/// An input: its name and the function that receives its events.
#[repr(C)]
pub struct aex_input {
    /// The input's name.
    pub name: *const c_char,
    /// The function called with each authentic event.
    pub run: aex_event_fn,
}

/// A handler (answers requests) or an entry point (called by the deployer, `aex call`).
#[repr(C)]
pub struct aex_handler {
    /// The handler's or entry point's name.
    pub name: *const c_char,
    /// The function that answers.
    pub run: aex_reply_fn,
}

/// An entry point: the same shape as a handler, called by the deployer (`aex call`).
pub type aex_entry = aex_handler;

/// A periodic entry point: run on the node's tick, at the period the descriptor's
/// `[[periodic]]` sets. The node may delay, drop or invent ticks: a tick is evidence of
/// nothing.
#[repr(C)]
pub struct aex_periodic {
    /// The entry point's name.
    pub name: *const c_char,
    /// The function run on each tick.
    pub run: aex_tick_fn,
}

/// A deadline: `run` is called when the input named `input` accepts no authentic event for
/// `every_ms` milliseconds (at least 10), once per missed period, on the module's own clock.
#[repr(C)]
pub struct aex_deadline {
    /// The watched input's name (one of `aex_module.inputs`).
    pub input: *const c_char,
    /// The longest silence tolerated, in milliseconds (at least 10).
    pub every_ms: u32,
    /// The function called when the input stays silent.
    pub run: aex_tick_fn,
}

/// A C module: its state and its ports. Define one `static const aex_module` and pass it to
/// `aex_run` from `main` (or use `AEX_MAIN`). Every list is a pointer and a length
/// (`AEX_LEN(array)`); a zero length needs no pointer. Names are unique across all kinds.
///
/// The runtime checks the table when the process starts, also for `--aex-describe`, so the
/// deployer reports a bad table (a duplicate name, a missing function, a persistent module
/// without `save`) when it builds the module.
#[repr(C)]
pub struct aex_module {
    /// Passed to every port function and hook as its `state` argument (usually the address of
    /// the module's state struct; may be NULL).
    pub state: *mut c_void,
    /// `AEX_VOLATILE` (0), `AEX_PERSISTENT` or `AEX_PERSISTENT_BY_SIGNER`.
    pub persistence: u32,
    /// The outputs, as addresses of `aex_output` objects (the same addresses `aex_emit` takes).
    pub outputs: *const *const aex_output,
    /// How many outputs.
    pub n_outputs: usize,
    /// The inputs.
    pub inputs: *const aex_input,
    /// How many inputs.
    pub n_inputs: usize,
    /// The requests, as addresses of `aex_request` objects.
    pub requests: *const *const aex_request,
    /// How many requests.
    pub n_requests: usize,
    /// The handlers.
    pub handlers: *const aex_handler,
    /// How many handlers.
    pub n_handlers: usize,
    /// The entry points (`aex call`).
    pub entries: *const aex_entry,
    /// How many entry points.
    pub n_entries: usize,
    /// The periodic entry points.
    pub periodic: *const aex_periodic,
    /// How many periodic entry points.
    pub n_periodic: usize,
    /// The deadlines.
    pub deadlines: *const aex_deadline,
    /// How many deadlines.
    pub n_deadlines: usize,
    /// Saves the state (NULL: the state cannot be transferred, and an `aex update` starts the
    /// new instance from its initial state). Comes with `restore`.
    pub save: aex_save_fn,
    /// Restores what `save` wrote. Comes with `save`.
    pub restore: aex_restore_fn,
}
