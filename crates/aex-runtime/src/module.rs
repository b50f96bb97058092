//! The contract between module code and the runtime.
//!
//! `#[aex::module]` implements [`Module`] for a state struct: it lists the names the module
//! declares ([`Module::interface`]) and routes a call to the right method
//! ([`Module::dispatch`]). Ports are addressed by kind and by their position in the interface
//! lists, so the runtime never matches strings on the hot path (the typed handles module code
//! passes to [`Context`] are in `port.rs`). [`PortError`] says why a call failed, and so where
//! its message may go.

use aex_proto::Interface;

use crate::context::Context;
use crate::deadline::Deadline;

/// A module: its state struct plus the routing the `#[aex::module]` macro generates.
///
/// The runtime creates the state with [`Default`] when the process starts; state lives only
/// in this value, never in globals.
pub trait Module: Default + 'static {
    /// The names the module declares, in declaration order. Port indices passed to
    /// [`Module::dispatch`] are positions in these lists.
    fn interface() -> Interface;

    /// The module's deadlines: deadline handler `i` ([`PortKind::Deadline`]) runs when the
    /// input of the `i`-th deadline stays silent past its period. None by default.
    fn deadlines() -> Vec<Deadline> {
        Vec::new()
    }

    /// Calls the port `index` of `kind` with an authentic `payload`.
    ///
    /// Returns the result bytes (sent back for handlers and entry points, ignored for
    /// inputs), or why the call failed.
    fn dispatch(
        &mut self,
        ctx: &mut Context<'_>,
        kind: PortKind,
        index: usize,
        payload: &[u8],
    ) -> Result<Vec<u8>, PortError>;

    /// Snapshots the state for a transfer to a new instance (`aex update`), or `None` when
    /// this module's state cannot be transferred.
    ///
    /// `#[aex::module]` implements it with JSON when the state type is `Serialize` and
    /// `Deserialize`, or with the module's own `#[save]` method; otherwise the new instance
    /// starts from `Default`.
    fn save(&self) -> Option<Result<Vec<u8>, String>> {
        None
    }

    /// Replaces the state with a snapshot taken by [`Module::save`] in the old instance
    /// (which may run older code: the snapshot's format is the module author's contract).
    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        let _ = state;
        Err("this module cannot restore a state snapshot".into())
    }
}

/// Why a port call failed.
///
/// The two cases differ in where their message may go: a module's stderr is read by the
/// untrusted node, so a message that may quote payload bytes is only ever sent back sealed to
/// the deployer (for entry points), never logged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortError {
    /// The payload did not decode as the method's argument. The detail may quote the payload.
    Payload(String),
    /// The method (or encoding its result) failed; the message is the module's own.
    Method(String),
}

/// The kinds of port the runtime calls into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortKind {
    /// An input: receives events; its result is ignored.
    Input,
    /// A handler: answers a request; its result is the reply.
    Handler,
    /// An entry point: called by the deployer; its result goes back in the command reply.
    Entry,
    /// A periodic entry point ([`Interface::periodic`]): run on the node's untrusted tick,
    /// with an empty payload; its result is ignored.
    Periodic,
    /// A deadline handler ([`Module::deadlines`]): run by the runtime when an input stays
    /// silent, with an empty payload; its result is ignored.
    Deadline,
}
