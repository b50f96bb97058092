//! What the deployer remembers of an application, reached through [`App`]: reading its records
//! is open to every caller; changing them is for the operations of this crate, which save the
//! change ([`App::save`]) at the point their crash-safety argument needs it.
//!
//! Every method says what the caller wants of the records (record an attested module, forget
//! a stopped node, settle a revocation), so the rules that tie records together (a stopped
//! node takes its modules' keys with it; a revocation is dropped once complete) live here once.

use std::collections::BTreeMap;

use super::App;
use crate::error::Result;
use crate::state::{ConnectionRecord, ModuleRecord, NodeRecord, RetiredInstance, Revocation};

impl App {
    /// The record of `module`'s attested instance, if there is one.
    pub fn module(&self, module: &str) -> Option<&ModuleRecord> {
        self.state.state().modules.get(module)
    }

    /// Every attested module instance, by module name.
    pub fn modules(&self) -> &BTreeMap<String, ModuleRecord> {
        &self.state.state().modules
    }

    /// The record of connection `name`, if its key was delivered (or is being delivered).
    pub fn connection(&self, name: &str) -> Option<&ConnectionRecord> {
        self.state.state().connections.get(name)
    }

    /// Every keyed connection, by name.
    pub fn connections(&self) -> &BTreeMap<String, ConnectionRecord> {
        &self.state.state().connections
    }

    /// The nodes `aex up` started on this machine, by name.
    pub fn local_nodes(&self) -> &BTreeMap<String, NodeRecord> {
        &self.state.state().nodes
    }

    /// Instances replaced by an update and still to be unloaded, by module name.
    pub fn retired(&self) -> &BTreeMap<String, Vec<RetiredInstance>> {
        &self.state.state().retired
    }

    /// Connections whose revocation is not complete.
    pub fn revocations(&self) -> &[Revocation] {
        &self.state.state().revocations
    }

    /// Makes every change to the records since the last save durable (one transaction).
    pub(crate) fn save(&self) -> Result<()> {
        Ok(self.state.save()?)
    }

    /// Records `record` as `module`'s attested instance; returns the record it replaces.
    pub(crate) fn record_module(
        &mut self,
        module: &str,
        record: ModuleRecord,
    ) -> Option<ModuleRecord> {
        self.state
            .state_mut()
            .modules
            .insert(module.to_string(), record)
    }

    /// The record of `module`'s attested instance, to change.
    pub(crate) fn module_mut(&mut self, module: &str) -> Option<&mut ModuleRecord> {
        self.state.state_mut().modules.get_mut(module)
    }

    /// Forgets `module`'s attested instance (and with it its module key); returns its record.
    pub(crate) fn forget_module(&mut self, module: &str) -> Option<ModuleRecord> {
        self.state.state_mut().modules.remove(module)
    }

    /// Records connection `name` (replacing any earlier record of it).
    pub(crate) fn record_connection(&mut self, name: &str, record: ConnectionRecord) {
        self.state
            .state_mut()
            .connections
            .insert(name.to_string(), record);
    }

    /// The record of connection `name`, to change.
    pub(crate) fn connection_mut(&mut self, name: &str) -> Option<&mut ConnectionRecord> {
        self.state.state_mut().connections.get_mut(name)
    }

    /// Forgets connection `name`; returns its record.
    pub(crate) fn forget_connection(&mut self, name: &str) -> Option<ConnectionRecord> {
        self.state.state_mut().connections.remove(name)
    }

    /// Forgets every connection keyed to instance `instance` of `module` (a disabled instance
    /// dropped their keys).
    pub(crate) fn forget_connections_of(&mut self, module: &str, instance: u64) {
        self.state
            .state_mut()
            .connections
            .retain(|_, c| c.instances.get(module) != Some(&instance));
    }

    /// A connection id never used before in this application.
    pub(crate) fn new_connection_id(&mut self) -> u32 {
        let state = self.state.state_mut();
        let id = state.next_conn_id;
        state.next_conn_id += 1;
        id
    }

    /// Records a node `aex up` started on this machine.
    pub(crate) fn record_local_node(&mut self, node: &str, record: NodeRecord) {
        self.state
            .state_mut()
            .nodes
            .insert(node.to_string(), record);
    }

    /// Forgets a local node that was stopped, and with it the modules it ran and their keys:
    /// the modules' records and every connection that reached one of them.
    pub(crate) fn forget_local_node(&mut self, node: &str) {
        let state = self.state.state_mut();
        state.nodes.remove(node);
        state.modules.retain(|_, m| m.node != node);
        let modules = &state.modules;
        state
            .connections
            .retain(|_, c| c.instances.keys().all(|m| modules.contains_key(m)));
    }

    /// Lists `instance` of `module` for unloading.
    pub(crate) fn retire_instance(&mut self, module: &str, instance: RetiredInstance) {
        self.state
            .state_mut()
            .retired
            .entry(module.to_string())
            .or_default()
            .push(instance);
    }

    /// Takes the list of instances to unload (those still to unload are listed again with
    /// [`App::retire_instance`]).
    pub(crate) fn take_retired(&mut self) -> BTreeMap<String, Vec<RetiredInstance>> {
        std::mem::take(&mut self.state.state_mut().retired)
    }

    /// Forgets every module instance, retired instance and connection: the application is
    /// no longer deployed. Local nodes and pending revocations stay.
    pub(crate) fn forget_deployment(&mut self) {
        let state = self.state.state_mut();
        state.modules.clear();
        state.retired.clear();
        state.connections.clear();
    }

    /// Adds a pending revocation.
    pub(crate) fn record_revocation(&mut self, revocation: Revocation) {
        self.state.state_mut().revocations.push(revocation);
    }

    /// Records what is left of a pending revocation (matched by connection id): dropped once
    /// no holder and no node is left, kept as it is now otherwise. Returns whether it is
    /// complete.
    pub(crate) fn settle_revocation(&mut self, revocation: Revocation) -> bool {
        let done = revocation.holders.is_empty() && revocation.nodes.is_empty();
        let list = &mut self.state.state_mut().revocations;
        match list.iter().position(|r| r.id == revocation.id) {
            Some(i) if done => {
                list.remove(i);
            }
            Some(i) => list[i] = revocation,
            None => {}
        }
        done
    }
}
