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

use foldhash::HashMap;
use std::sync::{Arc, RwLock};

use aex_proto::forwarding::EventRef;
use aex_proto::{AppId, DeployerKey, NodeError as WireError, NodeErrorKind};

use crate::error::refuse;
use crate::module::Module;
use crate::sync::{read, write};

/// The loaded modules of a node, by namespace, then by name. (Two levels, so that an event's
/// lookup borrows the route's name instead of building a `(namespace, String)` key: an
/// allocation per delivered event.)
#[derive(Default)]
pub(crate) struct Registry(RwLock<HashMap<AppId, HashMap<String, Arc<Module>>>>);

impl Registry {
    /// Queues `ev` for module `name` of namespace `app`: `None` if there is no such module,
    /// else whether it took the event (see [`Module::deliver`]).
    pub(crate) fn deliver(&self, app: AppId, name: &str, ev: &EventRef<'_>) -> Option<bool> {
        read(&self.0)
            .get(&app)
            .and_then(|modules| modules.get(name))
            .map(|module| module.deliver(ev))
    }

    /// Module `name` of namespace `app`.
    pub(crate) fn get(&self, app: AppId, name: &str) -> Option<Arc<Module>> {
        read(&self.0)
            .get(&app)
            .and_then(|modules| modules.get(name))
            .cloned()
    }

    /// Whether namespace `app` has a module of that name.
    pub(crate) fn contains(&self, app: AppId, name: &str) -> bool {
        read(&self.0)
            .get(&app)
            .is_some_and(|modules| modules.contains_key(name))
    }

    /// Every module of namespace `app`, by name.
    pub(crate) fn in_namespace(&self, app: AppId) -> Vec<Arc<Module>> {
        let mut all: Vec<_> = read(&self.0)
            .get(&app)
            .map(|modules| modules.values().cloned().collect())
            .unwrap_or_default();
        all.sort_by(|a, b| a.name().cmp(b.name()));
        all
    }

    /// Every module, by namespace then name.
    pub(crate) fn all(&self) -> Vec<Arc<Module>> {
        let mut all: Vec<_> = read(&self.0)
            .values()
            .flat_map(|modules| modules.values().cloned())
            .collect();
        all.sort_by(|a, b| (a.app(), a.name()).cmp(&(b.app(), b.name())));
        all
    }

    /// How many modules deployer `owner` has, in all its namespaces.
    pub(crate) fn count_owned(&self, owner: &DeployerKey) -> u64 {
        read(&self.0)
            .values()
            .flat_map(|modules| modules.values())
            .filter(|m| m.owner() == owner)
            .count() as u64
    }

    /// Registers a started module in its namespace; refuses a duplicate name there.
    pub(crate) fn insert(&self, module: Arc<Module>) -> Result<(), WireError> {
        let mut all = write(&self.0);
        let modules = all.entry(module.app()).or_default();
        if modules.contains_key(module.name()) {
            return Err(refuse(
                NodeErrorKind::AlreadyExists,
                format!("a module named `{}` already exists", module.name()),
            ));
        }
        modules.insert(module.name().to_string(), module);
        Ok(())
    }

    /// Registers `new` in the place of `old`, if `old` is still the module of its name.
    pub(crate) fn replace(&self, old: &Arc<Module>, new: Arc<Module>) -> bool {
        let mut all = write(&self.0);
        match all
            .get_mut(&old.app())
            .and_then(|modules| modules.get_mut(old.name()))
        {
            Some(current) if Arc::ptr_eq(current, old) => {
                *current = new;
                true
            }
            _ => false,
        }
    }

    /// Unregisters module `name` of namespace `app`.
    pub(crate) fn remove(&self, app: AppId, name: &str) -> Option<Arc<Module>> {
        let mut all = write(&self.0);
        let modules = all.get_mut(&app)?;
        let removed = modules.remove(name);
        if modules.is_empty() {
            // A namespace without modules keeps no table.
            all.remove(&app);
        }
        removed
    }

    /// Unregisters every module.
    pub(crate) fn drain(&self) -> Vec<Arc<Module>> {
        write(&self.0)
            .drain()
            .flat_map(|(_, modules)| modules.into_values())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn modules_are_found_in_their_own_namespace_only_and_empty_namespaces_go() {
        let registry = Registry::default();
        let (a, b) = (AppId([1; 16]), AppId([2; 16]));
        let (sensor, _rx1) = Module::detached(a, "sensor", 4096);
        let (other, _rx2) = Module::detached(b, "sensor", 4096);
        registry.insert(sensor.clone()).unwrap();
        registry.insert(other.clone()).unwrap();
        let (twin, _rx3) = Module::detached(a, "sensor", 4096);
        let refused = registry.insert(twin.clone()).unwrap_err();
        assert_eq!(refused.kind, NodeErrorKind::AlreadyExists);
        assert!(Arc::ptr_eq(&registry.get(a, "sensor").unwrap(), &sensor));
        assert!(Arc::ptr_eq(&registry.get(b, "sensor").unwrap(), &other));
        assert!(!registry.contains(a, "other"));
        assert_eq!(registry.in_namespace(a).len(), 1);
        // Replaced only while the old one is still registered.
        assert!(registry.replace(&sensor, twin.clone()));
        assert!(!registry.replace(&sensor, sensor.clone()));
        assert!(Arc::ptr_eq(&registry.remove(a, "sensor").unwrap(), &twin));
        assert!(registry.remove(a, "sensor").is_none());
        assert!(
            !read(&registry.0).contains_key(&a),
            "an empty namespace keeps no table"
        );
        assert_eq!(registry.drain().len(), 1);
        assert!(registry.get(b, "sensor").is_none());
    }
}
