//! What module code can do besides changing its own state: emit events and make requests.
//!
//! A [`Context`] is lent to each port method for the length of one call. Emitting is fire and
//! forget (SPEC §4): one sealed event per connection bound to the output, none if the output
//! is not connected yet. A request blocks the module until the reply arrives or the timeout
//! passes; the module handles nothing else meanwhile.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Error;
use crate::module::{Output, Request};
use crate::payload;
use crate::state::Core;

/// The runtime's services for one call into module code.
pub struct Context<'a> {
    core: &'a mut Core,
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

    /// A [`Handle`](crate::Handle) through which threads the module starts can call back into
    /// it (e.g. an HTTP server thread that answers from the module's state). `M` must be the
    /// module's own state type; calls made with another type are dropped.
    pub fn handle<M: 'static>(&self) -> crate::Handle<M> {
        crate::Handle::new(self.core.link.local_sender())
    }

    /// Sets how long later requests wait for their reply (default 5 seconds).
    pub fn request_timeout(&mut self, timeout: Duration) {
        self.core.request_timeout = timeout;
    }
}
