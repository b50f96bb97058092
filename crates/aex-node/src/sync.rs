//! Synchronisation helpers every layer of the node uses: poison-ignoring lock guards and the
//! wait for the node's shutdown signal.
//!
//! They sit at the bottom so that a file needing a lock or the shutdown wait does not import
//! the router or the server (which own the tables and the listener) for it.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

use tokio::sync::watch;

/// Locks a mutex; a panicked holder cannot leave the node's tables inconsistent (every update
/// is a single insert or remove), so poisoning is ignored.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Read-locks one of the node's tables, ignoring poisoning as [`lock`] does.
pub(crate) fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

/// Write-locks one of the node's tables, ignoring poisoning as [`lock`] does.
pub(crate) fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// Resolves once the node is stopping (or its state is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
