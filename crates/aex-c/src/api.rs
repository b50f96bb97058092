//! The functions a C module calls: emit, request, device read and write, replies, failure
//! messages, and `aex_run`.
//!
//! Each is a thin shell over the runtime's [`Context`]: it checks its pointers, turns C
//! buffers into slices, calls the runtime, and maps the runtime's [`Error`] to an
//! [`aex_status`] (keeping the error's message for `aex_last_error`). A NULL pointer where a
//! valid one is needed gives `AEX_INVALID_ARGUMENT`, never a crash in Rust; what the C side
//! promises (a `len` that matches its buffer, a `ctx` used only during its call) is stated in
//! the header beside each function.
#![allow(
    unsafe_code,
    reason = "the C ABI: exported unmangled functions that take raw pointers from C"
)]

use std::ffi::{c_char, c_int, CStr};
use std::time::Duration;

use aex_runtime::{Output, Request};

use crate::abi::{aex_module, aex_output, aex_request};
use crate::ctx::{aex_buf, aex_ctx};
use crate::module::{table, CModule};
use crate::status::aex_status;

/// The most bytes an `aex_buf` holds: the largest state a persistent module may seal.
const BUF_LIMIT: usize = aex_proto::persist::MAX_BLOB as usize;

/// A C buffer as a slice; `None` if `data` is NULL with a nonzero `len`.
///
/// # Safety
/// `data` must be NULL or point to `len` readable bytes for the returned lifetime.
unsafe fn bytes<'a>(data: *const u8, len: usize) -> Option<&'a [u8]> {
    if len == 0 {
        return Some(&[]);
    }
    if data.is_null() {
        return None;
    }
    // SAFETY: non-null, `len` readable bytes (caller's promise).
    Some(unsafe { std::slice::from_raw_parts(data, len) })
}

/// The `aex_ctx` behind `ctx`, if it is not NULL.
///
/// # Safety
/// `ctx` must be NULL or the `aex_ctx` passed to the running port function.
unsafe fn ctx<'a>(ctx: *mut aex_ctx) -> Option<&'a mut aex_ctx> {
    // SAFETY: NULL or valid and unaliased during the call (caller's promise).
    unsafe { ctx.as_mut() }
}

fn output_of(output: *const aex_output) -> Option<Output> {
    let t = table();
    let index = t.outputs.iter().position(|&a| a == output as usize)?;
    Some(Output::new(index, t.output_names[index]))
}

fn request_of(request: *const aex_request) -> Option<Request> {
    let t = table();
    let index = t.requests.iter().position(|&a| a == request as usize)?;
    Some(Request::new(index, t.request_names[index]))
}

fn emit(
    ctx: *mut aex_ctx,
    output: *const aex_output,
    data: *const u8,
    len: usize,
    wait: bool,
) -> aex_status {
    // SAFETY: the header's contract: `ctx` is the running call's, `data` holds `len` bytes.
    let (Some(c), Some(payload)) = (unsafe { self::ctx(ctx) }, unsafe { bytes(data, len) }) else {
        return aex_status::AEX_INVALID_ARGUMENT;
    };
    let Some(output) = output_of(output) else {
        c.set_error("not one of the outputs listed in the module's table".into());
        return aex_status::AEX_UNKNOWN_PORT;
    };
    let result = if wait {
        c.context().emit(output, payload)
    } else {
        c.context().try_emit(output, payload)
    };
    c.status(result).0
}

/// Emits `len` bytes at `data` on every connection bound to `output`, waiting while a
/// receiver has no room (flow control), at most the emit timeout (5 s unless
/// `aex_set_emit_timeout` changed it).
///
/// Returns `AEX_OK` when every connection got the event (or the output has none yet),
/// `AEX_WINDOW_FULL` when some connections' receivers took nothing in for the whole timeout
/// (the event went out on the others, not on those; later emits on them fail at once until
/// room comes), `AEX_HELD_FULL` in a persistent module that emitted 4 MiB on a connection
/// since its last commit, `AEX_UNKNOWN_PORT` if `output` is not listed in the module's table,
/// `AEX_INVALID_ARGUMENT` for a NULL `ctx` or a NULL `data` with a nonzero `len`.
///
/// # Safety
/// `ctx` is the `aex_ctx` of the running port function (or NULL); `data` points to
/// `len` readable bytes (or is NULL with `len` 0). `output` is only compared, never read.
#[no_mangle]
pub unsafe extern "C" fn aex_emit(
    ctx: *mut aex_ctx,
    output: *const aex_output,
    data: *const u8,
    len: usize,
) -> aex_status {
    emit(ctx, output, data, len, true)
}

/// `aex_emit` without waiting: connections without room get nothing, and the call returns
/// `AEX_WOULD_BLOCK` (the event went out on the output's other connections).
///
/// # Safety
/// As `aex_emit`.
#[no_mangle]
pub unsafe extern "C" fn aex_try_emit(
    ctx: *mut aex_ctx,
    output: *const aex_output,
    data: *const u8,
    len: usize,
) -> aex_status {
    emit(ctx, output, data, len, false)
}

/// Sends `len` bytes at `data` on `request`'s connection and waits for the handler's reply
/// (at most the request timeout, 5 s unless `aex_set_request_timeout` changed it); events that
/// arrive meanwhile are handled after the current call returns.
///
/// The reply is copied to `reply` (`cap` bytes) and its length stored in `*reply_len`. A reply
/// longer than `cap` gives `AEX_TOO_LARGE` with its length in `*reply_len` and is dropped.
/// Other errors: `AEX_NOT_CONNECTED`, `AEX_TIMEOUT`, `AEX_HANDLER_FAILED` (the handler's
/// message is in `aex_last_error`), `AEX_REKEYED`, `AEX_WINDOW_FULL`, `AEX_CLOSED`,
/// `AEX_OVERLOADED`, `AEX_UNKNOWN_PORT`, `AEX_INVALID_ARGUMENT`.
///
/// # Safety
/// As `aex_emit`; besides, `reply` points to `cap` writable bytes (or is NULL with `cap`
/// 0) and `reply_len` to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn aex_send_request(
    ctx: *mut aex_ctx,
    request: *const aex_request,
    data: *const u8,
    len: usize,
    reply: *mut u8,
    cap: usize,
    reply_len: *mut usize,
) -> aex_status {
    // SAFETY: the header's contract: `ctx` is the running call's, `data` holds `len` bytes.
    let (Some(c), Some(payload)) = (unsafe { self::ctx(ctx) }, unsafe { bytes(data, len) }) else {
        return aex_status::AEX_INVALID_ARGUMENT;
    };
    if reply_len.is_null() || (reply.is_null() && cap > 0) {
        return aex_status::AEX_INVALID_ARGUMENT;
    }
    let Some(request) = request_of(request) else {
        c.set_error("not one of the requests listed in the module's table".into());
        return aex_status::AEX_UNKNOWN_PORT;
    };
    let result = c.context().request(request, payload);
    let (status, answer) = c.status(result);
    let Some(answer) = answer else {
        return status;
    };
    // SAFETY: non-null (checked above), a `size_t` the caller lent for this call.
    unsafe { *reply_len = answer.len() };
    if answer.len() > cap {
        c.set_error(format!(
            "the reply is {} bytes, the buffer {cap}",
            answer.len()
        ));
        return aex_status::AEX_TOO_LARGE;
    }
    if !answer.is_empty() {
        // SAFETY: `reply` holds `cap >= answer.len()` writable bytes (caller's promise; it
        // is non-null since `cap > 0`), and cannot overlap the runtime's own vector.
        unsafe { std::ptr::copy_nonoverlapping(answer.as_ptr(), reply, answer.len()) };
    }
    aex_status::AEX_OK
}

/// A device name from C, or an error status.
///
/// # Safety
/// `device` must be NULL or a NUL-terminated string.
unsafe fn device_name<'a>(device: *const c_char) -> Option<&'a str> {
    if device.is_null() {
        return None;
    }
    // SAFETY: non-null and NUL-terminated (caller's promise).
    unsafe { CStr::from_ptr(device) }.to_str().ok()
}

/// Reads `device` (granted to this module instance by the node's TEE layer) into `*value`: a
/// digital input gives 0 or 1, an analog input `0..=max`, an output its current level.
///
/// Blocks until the TEE layer answers (at most the request timeout). Errors:
/// `AEX_DEVICE_REFUSED` (not granted, no such device; the TEE layer's words in
/// `aex_last_error`), `AEX_DEVICE_TIMEOUT`, `AEX_DISABLED`, `AEX_RETIRED`, `AEX_CLOSED`,
/// `AEX_INVALID_ARGUMENT` (NULL or non-UTF-8 `device`, NULL `value`).
///
/// # Safety
/// `ctx` as for `aex_emit`; `device` is a NUL-terminated string; `value` points to a
/// writable `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn aex_device_read(
    ctx: *mut aex_ctx,
    device: *const c_char,
    value: *mut u32,
) -> aex_status {
    // SAFETY: the header's contract: `ctx` is the running call's, `device` a C string.
    let (Some(c), Some(device)) = (unsafe { self::ctx(ctx) }, unsafe { device_name(device) })
    else {
        return aex_status::AEX_INVALID_ARGUMENT;
    };
    if value.is_null() {
        return aex_status::AEX_INVALID_ARGUMENT;
    }
    let result = c.context().read_device(device);
    let (status, read) = c.status(result);
    if let Some(read) = read {
        // SAFETY: non-null (checked above), a `uint32_t` the caller lent for this call.
        unsafe { *value = read };
    }
    status
}

/// Drives `device`, a digital output granted to this module instance: 0 off, 1 on. Errors as
/// `aex_device_read`. In a persistent module the write is held until the state that explains
/// it is sealed and stored, and this returns `AEX_OK` at once.
///
/// # Safety
/// `ctx` as for `aex_emit`; `device` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn aex_device_write(
    ctx: *mut aex_ctx,
    device: *const c_char,
    value: u32,
) -> aex_status {
    // SAFETY: the header's contract: `ctx` is the running call's, `device` a C string.
    let (Some(c), Some(device)) = (unsafe { self::ctx(ctx) }, unsafe { device_name(device) })
    else {
        return aex_status::AEX_INVALID_ARGUMENT;
    };
    let result = c.context().write_device(device, value);
    c.status(result).0
}

/// Sets how long later emits wait, in all, for room on full windows (default 5000 ms).
///
/// # Safety
/// `ctx` as for `aex_emit`.
#[no_mangle]
pub unsafe extern "C" fn aex_set_emit_timeout(ctx: *mut aex_ctx, ms: u32) -> aex_status {
    // SAFETY: the header's contract: `ctx` is the running call's.
    let Some(c) = (unsafe { self::ctx(ctx) }) else {
        return aex_status::AEX_INVALID_ARGUMENT;
    };
    c.context()
        .emit_timeout(Duration::from_millis(u64::from(ms)));
    aex_status::AEX_OK
}

/// Sets how long later requests wait for their reply, and device accesses for the TEE
/// layer's answer (default 5000 ms).
///
/// # Safety
/// `ctx` as for `aex_emit`.
#[no_mangle]
pub unsafe extern "C" fn aex_set_request_timeout(ctx: *mut aex_ctx, ms: u32) -> aex_status {
    // SAFETY: the header's contract: `ctx` is the running call's.
    let Some(c) = (unsafe { self::ctx(ctx) }) else {
        return aex_status::AEX_INVALID_ARGUMENT;
    };
    c.context()
        .request_timeout(Duration::from_millis(u64::from(ms)));
    aex_status::AEX_OK
}

/// The message of the last call on `ctx` that did not return `AEX_OK` (empty if none): which
/// connections had no room, the handler's failure, the TEE layer's refusal. Valid until the
/// next call on `ctx`. Never holds payload bytes the module did not put there itself.
///
/// # Safety
/// `ctx` as for `aex_emit`.
#[no_mangle]
pub unsafe extern "C" fn aex_last_error(ctx: *const aex_ctx) -> *const c_char {
    // SAFETY: the header's contract: `ctx` is NULL or the running call's.
    match unsafe { ctx.as_ref() } {
        Some(c) => c.last_error.as_ptr(),
        None => c"".as_ptr(),
    }
}

/// Gives the message of the failure the running port function is about to return (a nonzero
/// return). For an entry point or a handler it goes back, authenticated, to the deployer or
/// the requester; for inputs, periodic entries and deadlines the runtime counts the failure
/// and does not log the message (it may quote payload bytes). A later call replaces it.
///
/// # Safety
/// `ctx` as for `aex_emit`; `message` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn aex_fail(ctx: *mut aex_ctx, message: *const c_char) -> aex_status {
    // SAFETY: the header's contract: `ctx` is the running call's, `message` a C string.
    let (Some(c), false) = (unsafe { self::ctx(ctx) }, message.is_null()) else {
        return aex_status::AEX_INVALID_ARGUMENT;
    };
    // SAFETY: non-null and NUL-terminated (caller's promise).
    let text = unsafe { CStr::from_ptr(message) };
    c.failure = Some(text.to_string_lossy().into_owned());
    aex_status::AEX_OK
}

/// Appends `len` bytes at `data` to `buf` (a reply, an entry point's result or a saved
/// state). `AEX_TOO_LARGE` past 256 MiB in all; `AEX_INVALID_ARGUMENT` for a NULL `buf`, or a
/// NULL `data` with a nonzero `len`.
///
/// # Safety
/// `buf` is the `aex_buf` passed to the running function (or NULL); `data` points to
/// `len` readable bytes (or is NULL with `len` 0).
#[no_mangle]
pub unsafe extern "C" fn aex_buf_write(
    buf: *mut aex_buf,
    data: *const u8,
    len: usize,
) -> aex_status {
    // SAFETY: the header's contract: `buf` is NULL or the one lent to the running function;
    // `data` holds `len` bytes.
    let (Some(buf), Some(data)) = (unsafe { buf.as_mut() }, unsafe { bytes(data, len) }) else {
        return aex_status::AEX_INVALID_ARGUMENT;
    };
    if buf.bytes.len().saturating_add(data.len()) > BUF_LIMIT {
        return aex_status::AEX_TOO_LARGE;
    }
    buf.bytes.extend_from_slice(data);
    aex_status::AEX_OK
}

/// The name of a status (`"AEX_WINDOW_FULL"`), or `"AEX_UNKNOWN_STATUS"`; a static string.
#[no_mangle]
pub extern "C" fn aex_status_name(status: c_int) -> *const c_char {
    aex_status::name(status).as_ptr()
}

/// Runs the C module `module` as this process; call it from `main` (or use `AEX_MAIN`).
/// Never returns: the process exits when the node ends it.
///
/// Checks the module table first; a bad one (a duplicate or malformed name, a NULL function,
/// a persistent module without `save` and `restore`) is reported on stderr and the process
/// exits with status 2. With `--aex-describe` as its first argument the process prints the
/// module's interface for the deployer and exits. Otherwise it serves its node on stdin and
/// stdout: module code must not write to stdout, so the runtime points the process's
/// descriptor 1 at stderr before it starts (`printf` then goes to the module's log).
///
/// `module` and everything it points to must stay valid for the process (`static const`).
///
/// # Safety
/// `module` points to an `aex_module` whose lists and strings stay valid for the process
/// (or is NULL).
#[no_mangle]
pub unsafe extern "C" fn aex_run(module: *const aex_module) -> c_int {
    // SAFETY: the header's contract: `module` is NULL or a table valid for the process.
    crate::module::run(unsafe { crate::table::Table::read(module) }, CModule::serve)
}
