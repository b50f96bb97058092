//! The registry of loaded modules: each namespace's running [`Module`]s by name.
//!
//! It is apart from the route table (`routes.rs`): routes say where a connection's events go,
//! the registry which module answers to a name now. The router consults both for an event;
//! management requests (load, unload, status, commands) find their module here.
//!
//! Invariant: a module is registered under the namespace and name it was loaded with, once
//! (a second module of the same name in a namespace is refused), and every lookup names its
//! namespace, so no request or event of one namespace reaches another's module. Device grants
//! are not released here but by the router, when it forgets a module (`router.rs`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aex_proto::{AppId, DeployerKey, Event, NodeError as WireError, NodeErrorKind};

use crate::error::refuse;
use crate::module::Module;
use crate::sync::{read, write};

/// The loaded modules of a node, keyed by namespace and name.
#[derive(Default)]
pub(crate) struct Registry(RwLock<HashMap<(AppId, String), Arc<Module>>>);

impl Registry {
    /// Queues `ev` for module `name` of namespace `app`: `None` if there is no such module,
    /// else whether it took the event (see [`Module::deliver`]).
    pub(crate) fn deliver(&self, app: AppId, name: &str, ev: Event) -> Option<bool> {
        read(&self.0)
            .get(&(app, name.to_string()))
            .map(|module| module.deliver(ev))
    }

    /// Module `name` of namespace `app`.
    pub(crate) fn get(&self, app: AppId, name: &str) -> Option<Arc<Module>> {
        read(&self.0).get(&(app, name.to_string())).cloned()
    }

    /// Whether namespace `app` has a module of that name.
    pub(crate) fn contains(&self, app: AppId, name: &str) -> bool {
        read(&self.0).contains_key(&(app, name.to_string()))
    }

    /// Every module of namespace `app`, by name.
    pub(crate) fn in_namespace(&self, app: AppId) -> Vec<Arc<Module>> {
        let mut all: Vec<_> = read(&self.0)
            .iter()
            .filter(|((a, _), _)| *a == app)
            .map(|(_, m)| m.clone())
            .collect();
        all.sort_by(|a, b| a.name().cmp(b.name()));
        all
    }

    /// How many modules deployer `owner` has, in all its namespaces.
    pub(crate) fn count_owned(&self, owner: &DeployerKey) -> u64 {
        read(&self.0)
            .values()
            .filter(|m| m.owner() == owner)
            .count() as u64
    }

    /// Registers a started module in its namespace; refuses a duplicate name there.
    pub(crate) fn insert(&self, module: Arc<Module>) -> Result<(), WireError> {
        let mut modules = write(&self.0);
        let key = (module.app(), module.name().to_string());
        if modules.contains_key(&key) {
            return Err(refuse(
                NodeErrorKind::AlreadyExists,
                format!("a module named `{}` already exists", module.name()),
            ));
        }
        modules.insert(key, module);
        Ok(())
    }

    /// Registers `new` in the place of `old`, if `old` is still the module of its name.
    pub(crate) fn replace(&self, old: &Arc<Module>, new: Arc<Module>) -> bool {
        let mut modules = write(&self.0);
        let key = (old.app(), old.name().to_string());
        match modules.get_mut(&key) {
            Some(current) if Arc::ptr_eq(current, old) => {
                *current = new;
                true
            }
            _ => false,
        }
    }

    /// Unregisters module `name` of namespace `app`.
    pub(crate) fn remove(&self, app: AppId, name: &str) -> Option<Arc<Module>> {
        write(&self.0).remove(&(app, name.to_string()))
    }

    /// Unregisters every module.
    pub(crate) fn drain(&self) -> Vec<Arc<Module>> {
        write(&self.0).drain().map(|(_, m)| m).collect()
    }
}
