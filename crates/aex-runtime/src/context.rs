//! What module code can do besides changing its own state: emit events, make requests and,
//! in a driver module, reach its devices.
//!
//! A [`Context`] is lent to each port method for the length of one call. Emitting is
//! asynchronous (no reply) but never silently lossy: one sealed event per connection bound to
//! the output, none if the output is not connected yet (docs/TUTORIAL.md §2), each sent only
//! when its receiver has room for it (flow control, `flow.rs`). [`Context::emit`] waits for
//! room, up to a bound, and says which connections had none; [`Context::try_emit`] does not
//! wait. A request or a device access blocks the module until the answer arrives or the
//! timeout passes. While module code waits, the module handles nothing else (what arrives is
//! queued in order), but it keeps granting credit for what arrives, so modules that wait on
//! each other do not deadlock.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use aex_proto::DeviceOp;

use crate::core::Core;
use crate::error::Error;
use crate::payload;
use crate::port::{Output, Request};

/// The runtime's services for one call into module code.
pub struct Context<'a> {
    pub(crate) core: &'a mut Core,
}

impl<'a> Context<'a> {
    pub(crate) fn new(core: &'a mut Core) -> Self {
        Context { core }
    }

    /// Emits `payload` on every connection bound to `output`, waiting while a receiver has no
    /// room for it.
    ///
    /// Each connection carries at most a window of bytes its receiver has not taken in yet
    /// (flow control, docs/PROTOCOL.md "Flow control"). A connection with room gets the event
    /// at once; for the others this waits until their receivers take events in, at most
    /// [`Context::emit_timeout`] (5 s by default) in all, and meanwhile the module handles
    /// nothing else (what arrives is queued, and credited, for after this call).
    ///
    /// Fails with [`Error::WindowFull`] naming the connections that got no room: the event was
    /// sent on every other connection of the output, and not on these, so nothing is lost
    /// without the module knowing. Until room comes, later emits on those connections fail at
    /// once instead of waiting again: a stopped receiver (or a node withholding credit) delays
    /// the module once, not at every event. With no connection this does nothing; a connection
    /// whose counters are exhausted is logged to stderr.
    ///
    /// ```no_run
    /// use aex_runtime::{Context, Error, Output};
    ///
    /// /// Sends a reading; when the consumer is slow, keeps the reading for the next call.
    /// fn send(ctx: &mut Context, reading: Output, value: &[u8], kept: &mut Vec<Vec<u8>>) {
    ///     if let Err(Error::WindowFull { .. }) = ctx.emit(reading, value) {
    ///         kept.push(value.to_vec());
    ///     }
    /// }
    /// ```
    pub fn emit(&mut self, output: Output, payload: &[u8]) -> Result<(), Error> {
        self.core.emit(output, payload, true)
    }

    /// [`Context::emit`] without waiting: connections without room get nothing and the call
    /// fails with [`Error::WouldBlock`] naming them (the event went out on the others).
    pub fn try_emit(&mut self, output: Output, payload: &[u8]) -> Result<(), Error> {
        self.core.emit(output, payload, false)
    }

    /// [`Context::emit`] of `value` encoded as JSON.
    pub fn emit_json<T: Serialize + ?Sized>(
        &mut self,
        output: Output,
        value: &T,
    ) -> Result<(), Error> {
        let bytes = payload::to_json(value).map_err(Error::Encode)?;
        self.emit(output, &bytes)
    }

    /// [`Context::try_emit`] of `value` encoded as JSON.
    pub fn try_emit_json<T: Serialize + ?Sized>(
        &mut self,
        output: Output,
        value: &T,
    ) -> Result<(), Error> {
        let bytes = payload::to_json(value).map_err(Error::Encode)?;
        self.try_emit(output, &bytes)
    }

    /// Sets how long later emits wait, in all, for room on full windows (default 5 seconds).
    pub fn emit_timeout(&mut self, timeout: Duration) {
        self.core.emit_timeout = timeout;
    }

    /// Sends `payload` on `request`'s connection and waits for the handler's reply.
    ///
    /// Events and commands that arrive while waiting are handled after the current call
    /// returns. Fails if the request is not connected, on timeout (see
    /// [`Context::request_timeout`]), or if the node closes the link.
    pub fn request(&mut self, request: Request, payload: &[u8]) -> Result<Vec<u8>, Error> {
        self.core.request(request, payload)
    }

    /// [`Context::request`] with a JSON-encoded argument and a JSON-decoded reply.
    pub fn request_json<T, R>(&mut self, request: Request, value: &T) -> Result<R, Error>
    where
        T: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let bytes = payload::to_json(value).map_err(Error::Encode)?;
        let reply = self.request(request, &bytes)?;
        payload::from_json(&reply).map_err(Error::Decode)
    }

    /// Reads `device`, one the node's TEE layer granted to this module instance: a digital
    /// input gives `0` or `1`, an analog input `0..=max`, an output its current level.
    ///
    /// Blocks until the TEE layer answers, like [`Context::request`]: events and commands that
    /// arrive meanwhile are handled after the current call returns. Waits at most the request
    /// timeout (default 5 s, see [`Context::request_timeout`]).
    ///
    /// Fails with [`Error::Device`] if the TEE layer refuses (the device is not granted to this
    /// instance, say), [`Error::DeviceTimeout`], [`Error::Closed`] if the node closes the link,
    /// and, without asking the TEE layer, [`Error::Disabled`] or [`Error::Retired`] once the
    /// deployer disabled or retired this instance.
    ///
    /// *Trust:* the device is reachable only through the TEE layer's exclusive grant, and module
    /// code runs only once the deployer attested the module, so only attested driver code
    /// touches the device. In simulation, though, the answer comes through the untrusted node
    /// process and is not authenticated. The runtime never logs the value.
    ///
    /// ```no_run
    /// use aex_runtime::{Context, Error};
    ///
    /// /// Whether the soil needs water, from a probe reading `0..=1023`.
    /// fn dry(ctx: &mut Context) -> Result<bool, Error> {
    ///     Ok(ctx.read_device("soil")? < 300)
    /// }
    /// ```
    pub fn read_device(&mut self, device: &str) -> Result<u32, Error> {
        self.core.device(device, DeviceOp::Read)
    }

    /// Drives `device`, a digital output granted to this module instance: `0` off, `1` on.
    ///
    /// Blocks and fails as [`Context::read_device`] does; the TEE layer refuses a value out of
    /// range or a device that is not an output ([`Error::Device`]).
    ///
    /// In a persistent module (`#[aex::module(persistent)]`) a write is an effect like an
    /// event: it is held until the state that explains it is sealed and stored, and this
    /// returns at once. The TEE layer's refusal then reaches the module's log, not the caller,
    /// and a read in the same handler sees the device as it was before the write.
    ///
    /// ```no_run
    /// use aex_runtime::Context;
    ///
    /// fn set_valve(ctx: &mut Context, open: bool) {
    ///     if let Err(e) = ctx.write_device("valve", u32::from(open)) {
    ///         eprintln!("cannot drive the valve: {e}");
    ///     }
    /// }
    /// ```
    pub fn write_device(&mut self, device: &str, value: u32) -> Result<(), Error> {
        self.core.device(device, DeviceOp::Write(value)).map(|_| ())
    }

    /// Sets how long later requests wait for their reply, and device accesses for the TEE
    /// layer's answer (default 5 seconds).
    pub fn request_timeout(&mut self, timeout: Duration) {
        self.core.request_timeout = timeout;
    }
}
