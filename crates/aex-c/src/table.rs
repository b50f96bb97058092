//! Reading and checking a C module's port table (`aex_module`), once, when the process starts.
//!
//! Everything the runtime needs later is copied out here into owned, checked Rust values:
//! names as `&'static str` (the runtime's port handles and deadlines take those), function
//! pointers, and the addresses of the `aex_output` and `aex_request` objects, which
//! `aex_emit` and `aex_send_request` compare the pointers they get with (they never read
//! through them). A table the runtime cannot serve from gets an error that names the entry and
//! what is wrong with it, so the deployer reports it when it asks the binary for its
//! interface, before anything is deployed.
#![allow(
    unsafe_code,
    reason = "reads the module table a C caller hands over as raw pointers"
)]

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::time::Duration;

use aex_proto::Interface;
use aex_runtime::Deadline;

use crate::abi::{aex_module, AEX_PERSISTENT, AEX_PERSISTENT_BY_SIGNER, AEX_VOLATILE};
use crate::ctx::{aex_buf, aex_ctx};

/// The port functions' types, checked non-NULL (`abi.rs` has their nullable C spellings).
pub(crate) type EventFn =
    extern "C" fn(state: *mut c_void, ctx: *mut aex_ctx, data: *const u8, len: usize) -> c_int;
pub(crate) type ReplyFn = extern "C" fn(
    state: *mut c_void,
    ctx: *mut aex_ctx,
    data: *const u8,
    len: usize,
    reply: *mut aex_buf,
) -> c_int;
pub(crate) type TickFn = extern "C" fn(state: *mut c_void, ctx: *mut aex_ctx) -> c_int;
pub(crate) type SaveFn = extern "C" fn(state: *const c_void, out: *mut aex_buf) -> c_int;
pub(crate) type RestoreFn = extern "C" fn(state: *mut c_void, data: *const u8, len: usize) -> c_int;

/// The shortest deadline period, as `#[deadline(every = ..)]` allows.
const MIN_DEADLINE: Duration = Duration::from_millis(10);

/// The module's `state` pointer, handed back to C unchanged.
#[derive(Clone, Copy)]
pub(crate) struct StatePtr(pub(crate) *mut c_void);

// SAFETY: the pointer is never dereferenced in Rust, only passed back to the module's own
// functions, which the runtime calls on one thread (the main loop), one call at a time; the
// table lives in a process-wide `OnceLock`, which needs `Sync`.
unsafe impl Sync for StatePtr {}
// SAFETY: as for `Sync`: Rust only carries the pointer, C code uses it on one thread.
unsafe impl Send for StatePtr {}

/// A checked module table.
pub(crate) struct Table {
    pub(crate) state: StatePtr,
    pub(crate) interface: Interface,
    /// Addresses of the `aex_output` objects, in `interface.outputs` order.
    pub(crate) outputs: Vec<usize>,
    /// Addresses of the `aex_request` objects, in `interface.requests` order.
    pub(crate) requests: Vec<usize>,
    pub(crate) output_names: Vec<&'static str>,
    pub(crate) request_names: Vec<&'static str>,
    pub(crate) inputs: Vec<EventFn>,
    pub(crate) handlers: Vec<ReplyFn>,
    pub(crate) entries: Vec<ReplyFn>,
    pub(crate) periodic: Vec<TickFn>,
    pub(crate) deadlines: Vec<Deadline>,
    pub(crate) deadline_fns: Vec<TickFn>,
    pub(crate) hooks: Option<(SaveFn, RestoreFn)>,
}

/// Reads the C slice `ptr[..len]`, or fails naming the list.
///
/// # Safety
/// `ptr` must be NULL or point to `len` valid, initialized `T`s that live for the process.
unsafe fn list<'a, T>(ptr: *const T, len: usize, what: &str) -> Result<&'a [T], String> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(format!("`{what}` is NULL but `n_{what}` is {len}"));
    }
    // SAFETY: non-null, and the caller promises `len` valid elements for the process.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Reads a port name: a NUL-terminated C identifier, borrowed from the C table for the
/// process (the runtime's handles take `&'static str`; nothing is copied or leaked).
///
/// # Safety
/// `name` must be NULL or a NUL-terminated string that stays valid and unchanged for the
/// process (a string literal in a `static const` table is).
unsafe fn name(name: *const c_char, at: &str) -> Result<&'static str, String> {
    if name.is_null() {
        return Err(format!("{at}: the name is NULL"));
    }
    // SAFETY: non-null, NUL-terminated, and valid and unchanged for the process, as the
    // caller promises: so it may be borrowed for `'static`.
    let text: &'static str = unsafe { CStr::from_ptr(name) }
        .to_str()
        .map_err(|_| format!("{at}: the name is not UTF-8"))?;
    let ident = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ident {
        return Err(format!(
            "{at}: `{text}` is not a port name (letters, digits and `_`, not starting with a digit)"
        ));
    }
    Ok(text)
}

fn function<F>(f: Option<F>, at: &str) -> Result<F, String> {
    f.ok_or_else(|| format!("{at}: the function is NULL"))
}

/// Port names are unique across all kinds (as `#[aex::module]` requires), so a descriptor's
/// `module.port` is unambiguous.
#[derive(Default)]
struct Names(HashMap<&'static str, String>);

impl Names {
    fn add(&mut self, name: &'static str, at: String) -> Result<(), String> {
        match self.0.insert(name, at.clone()) {
            None => Ok(()),
            Some(prev) => Err(format!(
                "{at}: duplicate port name `{name}`, already declared as {prev}"
            )),
        }
    }
}

impl Table {
    /// A module without ports.
    pub(crate) fn empty() -> Table {
        Table {
            state: StatePtr(std::ptr::null_mut()),
            interface: Interface::default(),
            outputs: Vec::new(),
            requests: Vec::new(),
            output_names: Vec::new(),
            request_names: Vec::new(),
            inputs: Vec::new(),
            handlers: Vec::new(),
            entries: Vec::new(),
            periodic: Vec::new(),
            deadlines: Vec::new(),
            deadline_fns: Vec::new(),
            hooks: None,
        }
    }

    /// Reads and checks `module`.
    ///
    /// # Safety
    /// `module` must be NULL or point to an `aex_module` whose lists and names are valid for
    /// the process (a `static const` table is).
    pub(crate) unsafe fn read(module: *const aex_module) -> Result<Table, String> {
        if module.is_null() {
            return Err("aex_run was given a NULL module".into());
        }
        // SAFETY: non-null; valid for the process as the caller promises.
        let m = unsafe { &*module };
        let persistent = match m.persistence {
            AEX_VOLATILE => false,
            AEX_PERSISTENT | AEX_PERSISTENT_BY_SIGNER => true,
            other => {
                return Err(format!(
                    "`persistence` is {other}: use AEX_VOLATILE, AEX_PERSISTENT or \
                     AEX_PERSISTENT_BY_SIGNER"
                ))
            }
        };
        let mut names = Names::default();
        let mut interface = Interface {
            persistent,
            seal_by_signer: m.persistence == AEX_PERSISTENT_BY_SIGNER,
            ..Interface::default()
        };

        let mut outputs = Vec::new();
        let mut output_names = Vec::new();
        // SAFETY: the caller promises valid lists (here and below).
        for (i, &output) in unsafe { list(m.outputs, m.n_outputs, "outputs") }?
            .iter()
            .enumerate()
        {
            let at = format!("output {i}");
            if output.is_null() {
                return Err(format!("{at}: the pointer is NULL"));
            }
            // SAFETY: non-null, points to a valid `aex_output` (caller's promise).
            let n = unsafe { name((*output).name, &at) }?;
            names.add(n, format!("output `{n}`"))?;
            outputs.push(output as usize);
            output_names.push(n);
            interface.outputs.push(n.to_owned());
        }

        let mut requests = Vec::new();
        let mut request_names = Vec::new();
        // SAFETY: as above.
        for (i, &request) in unsafe { list(m.requests, m.n_requests, "requests") }?
            .iter()
            .enumerate()
        {
            let at = format!("request {i}");
            if request.is_null() {
                return Err(format!("{at}: the pointer is NULL"));
            }
            // SAFETY: non-null, points to a valid `aex_request` (caller's promise).
            let n = unsafe { name((*request).name, &at) }?;
            names.add(n, format!("request `{n}`"))?;
            requests.push(request as usize);
            request_names.push(n);
            interface.requests.push(n.to_owned());
        }

        let mut inputs = Vec::new();
        // SAFETY: as above.
        for (i, input) in unsafe { list(m.inputs, m.n_inputs, "inputs") }?
            .iter()
            .enumerate()
        {
            // SAFETY: an element of a valid list.
            let n = unsafe { name(input.name, &format!("input {i}")) }?;
            names.add(n, format!("input `{n}`"))?;
            inputs.push(function(input.run, &format!("input `{n}`"))?);
            interface.inputs.push(n.to_owned());
        }

        let mut handlers = Vec::new();
        // SAFETY: as above.
        for (i, h) in unsafe { list(m.handlers, m.n_handlers, "handlers") }?
            .iter()
            .enumerate()
        {
            // SAFETY: an element of a valid list.
            let n = unsafe { name(h.name, &format!("handler {i}")) }?;
            names.add(n, format!("handler `{n}`"))?;
            handlers.push(function(h.run, &format!("handler `{n}`"))?);
            interface.handlers.push(n.to_owned());
        }

        let mut entries = Vec::new();
        // SAFETY: as above.
        for (i, e) in unsafe { list(m.entries, m.n_entries, "entries") }?
            .iter()
            .enumerate()
        {
            // SAFETY: an element of a valid list.
            let n = unsafe { name(e.name, &format!("entry {i}")) }?;
            names.add(n, format!("entry point `{n}`"))?;
            entries.push(function(e.run, &format!("entry point `{n}`"))?);
            interface.entries.push(n.to_owned());
        }

        let mut periodic = Vec::new();
        // SAFETY: as above.
        for (i, p) in unsafe { list(m.periodic, m.n_periodic, "periodic") }?
            .iter()
            .enumerate()
        {
            // SAFETY: an element of a valid list.
            let n = unsafe { name(p.name, &format!("periodic entry {i}")) }?;
            names.add(n, format!("periodic entry point `{n}`"))?;
            periodic.push(function(p.run, &format!("periodic entry point `{n}`"))?);
            interface.periodic.push(n.to_owned());
        }

        let mut deadlines = Vec::new();
        let mut deadline_fns = Vec::new();
        let mut watched: HashMap<&str, usize> = HashMap::new();
        // SAFETY: as above.
        for (i, d) in unsafe { list(m.deadlines, m.n_deadlines, "deadlines") }?
            .iter()
            .enumerate()
        {
            let at = format!("deadline {i}");
            // SAFETY: an element of a valid list.
            let input = unsafe { name(d.input, &at) }?;
            if !interface.inputs.iter().any(|x| x == input) {
                return Err(format!(
                    "{at}: `{input}` is not an input of this module (inputs: {})",
                    interface.inputs.join(", ")
                ));
            }
            if let Some(first) = watched.insert(input, i) {
                return Err(format!(
                    "{at}: input `{input}` already has a deadline (deadline {first})"
                ));
            }
            let every = Duration::from_millis(u64::from(d.every_ms));
            if every < MIN_DEADLINE {
                return Err(format!(
                    "{at}: every_ms is {}, less than the shortest period, {} ms",
                    d.every_ms,
                    MIN_DEADLINE.as_millis()
                ));
            }
            deadlines.push(Deadline::new(input, every));
            deadline_fns.push(function(d.run, &at)?);
        }

        let hooks = match (m.save, m.restore) {
            (Some(save), Some(restore)) => Some((save, restore)),
            (None, None) => None,
            (Some(_), None) => {
                return Err("`save` needs a `restore` to read what it saves".into());
            }
            (None, Some(_)) => {
                return Err("`restore` needs a `save` to write what it reads".into());
            }
        };
        if persistent && hooks.is_none() {
            return Err(
                "a persistent module needs `save` and `restore`: its state is what they write \
                 and read"
                    .into(),
            );
        }

        Ok(Table {
            state: StatePtr(m.state),
            interface,
            outputs,
            requests,
            output_names,
            request_names,
            inputs,
            handlers,
            entries,
            periodic,
            deadlines,
            deadline_fns,
            hooks,
        })
    }
}
