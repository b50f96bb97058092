//! The two opaque handles C code gets: `aex_ctx`, the runtime's services during one call of a
//! port function, and `aex_buf`, the bytes a function writes (a reply, a result, a state).
#![allow(
    unsafe_code,
    reason = "an `aex_ctx` holds the call's `Context` as a raw pointer: C cannot carry a lifetime"
)]

use std::ffi::CString;

use aex_runtime::{Context, Error};

use crate::status::aex_status;

/// The runtime's services during one call of a port function. Valid only for that call:
/// never keep it.
pub struct aex_ctx {
    /// The call's context. The lifetime is erased because C cannot carry one; the pointer is
    /// valid while the port function the `aex_ctx` was made for runs (`module.rs` makes it on
    /// its stack around that call).
    ctx: *mut Context<'static>,
    /// The message the module gave with `aex_fail`, for its failure.
    pub(crate) failure: Option<String>,
    /// The message of the last call that failed, for `aex_last_error`.
    pub(crate) last_error: CString,
}

impl aex_ctx {
    /// A C handle on `ctx`, for one call into module code.
    pub(crate) fn new(ctx: &mut Context<'_>) -> Self {
        let ctx: *mut Context<'_> = ctx;
        aex_ctx {
            ctx: ctx.cast(),
            failure: None,
            last_error: CString::default(),
        }
    }

    /// Maps a runtime result to a status, keeping the error's message.
    pub(crate) fn status<T>(&mut self, result: Result<T, Error>) -> (aex_status, Option<T>) {
        match result {
            Ok(value) => (aex_status::AEX_OK, Some(value)),
            Err(e) => {
                let status = aex_status::of(&e);
                self.set_error(e.to_string());
                (status, None)
            }
        }
    }

    pub(crate) fn set_error(&mut self, message: String) {
        // A message with a NUL in it (a handler's own text) is cut there.
        let bytes: Vec<u8> = message
            .into_bytes()
            .into_iter()
            .take_while(|&b| b != 0)
            .collect();
        self.last_error = CString::new(bytes).unwrap_or_default();
    }

    pub(crate) fn context(&mut self) -> &mut Context<'static> {
        // SAFETY: `ctx` was made from a `&mut Context` that outlives this `aex_ctx` (see the
        // field), and `&mut self` makes this the only use of it meanwhile.
        unsafe { &mut *self.ctx }
    }
}

/// Bytes the module writes: a reply, an entry point's result, or a saved state.
pub struct aex_buf {
    pub(crate) bytes: Vec<u8>,
}
