//! Keeping C code off the link: a module's stdout is its frame stream to the node, and one
//! `printf` in it would corrupt the stream. Once the runtime holds its own duplicate of
//! descriptor 1, descriptor 1 is pointed at stderr (the module's log), where C's `stdout`
//! then writes.
#![allow(unsafe_code, reason = "calls libc's dup2, which std does not wrap")]

use std::ffi::c_int;

extern "C" {
    fn dup2(old: c_int, new: c_int) -> c_int;
}

/// Points descriptor 1 at what descriptor 2 is; on failure (no stderr), logs nothing and
/// leaves it: the runtime already writes through its own duplicate.
pub(crate) fn to_stderr() {
    // SAFETY: dup2 on two descriptor numbers has no memory effects; descriptor 1 is no longer
    // used by Rust code (the runtime holds its own duplicate, made before this runs).
    let _ = unsafe { dup2(2, 1) };
}
