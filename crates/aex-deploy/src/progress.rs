//! How deployer operations report progress without printing.
//!
//! Libraries do not write to the terminal; the `aex` binary implements [`Observer`] with
//! progress bars, tests use [`Quiet`].

/// Receives progress of long operations.
pub trait Observer {
    /// A phase with `total` steps begins (`total` 0: unknown).
    fn phase(&self, _name: &str, _total: u64) {}
    /// One step of the current phase is done.
    fn advance(&self, _detail: &str) {}
    /// The current phase is over.
    fn finish(&self) {}
    /// An informational message.
    fn note(&self, _message: &str) {}
    /// The recorded instance of a module being replaced cannot hand its state over (its
    /// process ended, its node lost it): whether to start the module from its default state,
    /// losing that state. Asked before anything is loaded; `false` (the default) stops the
    /// operation with [`Error::StateLost`](crate::error::Error::StateLost).
    fn start_afresh(&self, _loss: &StateLoss) -> bool {
        false
    }
}

/// A module whose state is lost unless its recorded instance comes back
/// ([`Observer::start_afresh`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateLoss {
    /// The module.
    pub module: String,
    /// The node of its recorded instance.
    pub node: String,
    /// Why the instance did not hand its state over (its node's answer).
    pub why: String,
}

/// Reports nothing.
pub struct Quiet;

impl Observer for Quiet {}
