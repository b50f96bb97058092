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
        self.run(f, false)
    }

    /// [`Handle::call`], but the answer comes only once the state `f` left is committed: for
    /// a `persistent` module, after the runtime sealed and stored it (output commit,
    /// docs/PROTOCOL.md §9), as a handler's reply would. Use it when the answer promises
    /// something a restart must not forget, such as a receipt carrying a sequence number
    /// (`aex-metering`). For other modules it is [`Handle::call`].
    ///
    /// Fails with [`Error::Closed`] if the module stops first: the state may then be lost with
    /// the process, and the answer was never given.
    pub fn call_committed<R, F>(&self, f: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: FnOnce(&mut M, &mut Context<'_>) -> R + Send + 'static,
    {
        self.run(f, true)
    }

    /// Runs `f` on the module's thread and waits for its answer, given at once or, with
    /// `committed`, after the commit of the state it left.
    fn run<R, F>(&self, f: F, committed: bool) -> Result<R, Error>
    where
        R: Send + 'static,
        F: FnOnce(&mut M, &mut Context<'_>) -> R + Send + 'static,
    {
        let (done, result) = mpsc::sync_channel(1);
        let call = Box::new(move |state: &mut dyn std::any::Any, core: &mut Core| {
            // Invariant: the runtime that created this handle runs module type `M`.
            if let Some(state) = state.downcast_mut::<M>() {
                let answer = f(state, &mut Context::new(core));
                if committed {
                    core.answer_after_commit(Box::new(move || {
                        let _ = done.send(answer);
                    }));
                } else {
                    let _ = done.send(answer);
                }
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
