//! Letting a module's own threads act on the module: [`Handle`].
//!
//! Some modules serve something other than events, such as an HTTP port or a device poller,
//! on a thread they start. Such a thread must not touch the module's state or its keys
//! directly: module code runs on one thread, and the runtime's channels are not shared.
//! Instead the thread sends a closure through a [`Handle`]; the runtime runs it between events
//! with the module's state and a [`Context`], so it can emit events and make authenticated
//! requests, and hands the result back.
//!
//! What a thread receives from outside (an HTTP request, say) is not an authentic event: only
//! what the module then emits or obtains through its connections carries aex's guarantee.

use std::marker::PhantomData;
use std::sync::mpsc::{self, Sender};

use crate::context::Context;
use crate::core::Core;
use crate::error::Error;
use crate::link::Incoming;

/// A cloneable, sendable way into module `M` from another thread.
pub struct Handle<M> {
    tx: Sender<Incoming>,
    _module: PhantomData<fn(&mut M)>,
}

impl<M> Clone for Handle<M> {
    fn clone(&self) -> Self {
        Handle {
            tx: self.tx.clone(),
            _module: PhantomData,
        }
    }
}

impl Context<'_> {
    /// A [`Handle`] through which threads the module starts can call back into it (e.g. an
    /// HTTP server thread that answers from the module's state). `M` must be the module's own
    /// state type; calls made with another type are dropped.
    pub fn handle<M: 'static>(&self) -> Handle<M> {
        Handle::new(self.core.link.local_sender())
    }
}

impl<M: 'static> Handle<M> {
    pub(crate) fn new(tx: Sender<Incoming>) -> Self {
        Handle {
            tx,
            _module: PhantomData,
        }
    }

    /// Runs `f` on the module's thread with its state and a [`Context`], waits for it, and
    /// returns its result. Fails with [`Error::Closed`] once the module is shutting down.
    ///
    /// Call it only from threads the module started: called from module code itself it would
    /// wait for itself forever.
    pub fn call<R, F>(&self, f: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: FnOnce(&mut M, &mut Context<'_>) -> R + Send + 'static,
    {
        let (done, result) = mpsc::sync_channel(1);
        let call = Box::new(move |state: &mut dyn std::any::Any, core: &mut Core| {
            // Invariant: the runtime that created this handle runs module type `M`.
            if let Some(state) = state.downcast_mut::<M>() {
                let _ = done.send(f(state, &mut Context::new(core)));
            }
        });
        self.tx
            .send(Incoming::Local(call))
            .map_err(|_| Error::Closed)?;
        result.recv().map_err(|_| Error::Closed)
    }
}

impl<M> std::fmt::Debug for Handle<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handle")
    }
}
