//! What module code can do besides changing its own state: emit events, make requests and,
//! in a driver module, reach its devices.
//!
//! A [`Context`] is lent to each port method for the length of one call. Emitting is fire and
//! forget (aex does not promise delivery: docs/SECURITY.md, "What aex promises"): one sealed
//! event per connection bound to the output, none if the output is not connected yet
//! (docs/TUTORIAL.md §2). A request or a device access blocks the module until the answer
//! arrives or the timeout passes; the module handles nothing else meanwhile.

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

    /// Emits `payload` on every connection bound to `output`.
    ///
    /// Fire and forget: with no connection this does nothing, and a connection that cannot
    /// send (exhausted counters, node gone) is logged to stderr, not reported.
    pub fn emit(&mut self, output: Output, payload: &[u8]) {
        self.core.emit(output.index(), output.name(), payload);
    }

    /// Emits `value` encoded as JSON on every connection bound to `output`.
    pub fn emit_json<T: Serialize + ?Sized>(&mut self, output: Output, value: &T) {
        match payload::to_json(value) {
            Ok(bytes) => self.emit(output, &bytes),
            Err(e) => log!("output `{}`: {e}; not sent", output.name()),
        }
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
