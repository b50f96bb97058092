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
}

/// Reports nothing.
pub struct Quiet;

impl Observer for Quiet {}
