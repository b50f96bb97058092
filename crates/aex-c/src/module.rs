//! A C module as the runtime sees it: [`CModule`] implements [`Module`] from the checked
//! table (`table.rs`), the way `#[aex::module]` implements it from a Rust `impl` block.
//!
//! The runtime's `Module` trait reads the interface without a value (`Module::interface()`),
//! so the table lives in a process-wide `OnceLock`, set once by `aex_run` before the runtime
//! starts. Calling the C functions is safe Rust: their pointers were checked non-NULL, and
//! what they do with their arguments is the C side's contract (docs/SECURITY.md "C modules").

use std::ffi::c_int;
use std::sync::OnceLock;

use aex_proto::Interface;
use aex_runtime::{Context, Deadline, Module, PortError, PortKind};

use crate::ctx::{aex_buf, aex_ctx};
use crate::table::Table;

static TABLE: OnceLock<Table> = OnceLock::new();

/// The module's table. `aex_run` sets it before the runtime can call [`CModule`]; the empty
/// table stands in before (nothing calls a module before `aex_run`, and tests set theirs).
pub(crate) fn table() -> &'static Table {
    TABLE.get_or_init(Table::empty)
}

/// The C module behind `aex_run`: all of it is in the table, so the value is empty.
#[derive(Default)]
pub(crate) struct CModule;

impl CModule {
    /// Serves the node (or answers `--aex-describe`) with the table already set. Never
    /// returns.
    pub(crate) fn serve() -> c_int {
        aex_runtime::run_after::<CModule>(crate::stdout::to_stderr)
    }
}

/// Sets the table and runs `serve`, or reports a bad table and exits 2.
#[expect(
    clippy::disallowed_methods,
    clippy::disallowed_macros,
    reason = "the C module's process entry: a bad table ends it, on its log (stderr)"
)]
pub(crate) fn run(table: Result<Table, String>, serve: fn() -> c_int) -> c_int {
    let table = match table {
        Ok(table) => table,
        Err(e) => {
            eprintln!("aex: the module table (aex_module) is invalid: {e}");
            std::process::exit(2)
        }
    };
    if TABLE.set(table).is_err() {
        eprintln!("aex: aex_run was called twice");
        std::process::exit(2)
    }
    serve()
}

/// What a C port function returned, as the runtime takes it.
fn outcome(code: c_int, c: &mut aex_ctx, reply: aex_buf) -> Result<Vec<u8>, PortError> {
    if code == 0 {
        return Ok(reply.bytes);
    }
    Err(PortError::Method(
        c.failure
            .take()
            .unwrap_or_else(|| format!("returned {code}")),
    ))
}

impl Module for CModule {
    fn interface() -> Interface {
        table().interface.clone()
    }

    fn deadlines() -> Vec<Deadline> {
        table().deadlines.clone()
    }

    fn dispatch(
        &mut self,
        ctx: &mut Context<'_>,
        kind: PortKind,
        index: usize,
        payload: &[u8],
    ) -> Result<Vec<u8>, PortError> {
        let t = table();
        let state = t.state.0;
        let mut c = aex_ctx::new(ctx);
        let mut reply = aex_buf { bytes: Vec::new() };
        let (data, len) = (payload.as_ptr(), payload.len());
        let code = match kind {
            PortKind::Input => t.inputs.get(index).map(|f| f(state, &mut c, data, len)),
            PortKind::Handler => t
                .handlers
                .get(index)
                .map(|f| f(state, &mut c, data, len, &mut reply)),
            PortKind::Entry => t
                .entries
                .get(index)
                .map(|f| f(state, &mut c, data, len, &mut reply)),
            PortKind::Periodic => t.periodic.get(index).map(|f| f(state, &mut c)),
            PortKind::Deadline => t.deadline_fns.get(index).map(|f| f(state, &mut c)),
        };
        match code {
            Some(code) => outcome(code, &mut c, reply),
            // The runtime addresses ports by the positions of the interface it was given.
            None => Err(PortError::Method(format!("no {kind:?} port {index}"))),
        }
    }

    fn save(&self) -> Option<Result<Vec<u8>, String>> {
        let t = table();
        let (save, _) = t.hooks?;
        let mut out = aex_buf { bytes: Vec::new() };
        Some(match save(t.state.0, &mut out) {
            0 => Ok(out.bytes),
            code => Err(format!("the module's `save` returned {code}")),
        })
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let t = table();
        let Some((_, restore)) = t.hooks else {
            return Err("this C module has no `restore` (aex_module.restore is NULL)".into());
        };
        match restore(t.state.0, state.as_ptr(), state.len()) {
            0 => Ok(()),
            code => Err(format!("the module's `restore` returned {code}")),
        }
    }
}
