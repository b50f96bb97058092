//! What the deployer remembers of an application, reached through [`App`]: reading its records
//! is open to every caller; changing them is for the operations of this crate, which save the
//! change ([`App::save`]) at the point their crash-safety argument needs it.
//!
//! Every method says what the caller wants of the records (record an attested module, forget
//! a stopped node, settle a revocation), so the rules that tie records together (a stopped
//! node takes its modules' keys with it; a revocation is dropped once complete) live here once.

use std::collections::{BTreeMap, BTreeSet};

use super::App;
use crate::audit::Change;
use crate::error::Result;
use crate::state::{
    ConnectionRecord, LedgerMark, ModuleRecord, NodeRecord, RetiredInstance, Revocation,
};

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

    /// Makes every change to the records since the last save durable (one transaction),
    /// after appending the changes noted for the audit ledger (`audit.rs`) and signing it.
    pub(crate) fn save(&mut self) -> Result<()> {
        let path = crate::audit::ledger_path(&self.desc.dir);
        let seen = self.state.state().ledger.as_ref().and_then(LedgerMark::get);
        let signed = crate::audit::lock(&self.audit)
            .flush(&path, self.identity.signing(), seen)
            .map_err(|source| crate::error::Error::Ledger { path, source })?;
        if let Some((size, root)) = signed {
            self.state.state_mut().ledger = Some(LedgerMark::new(size, &root));
        }
        Ok(self.state.save()?)
    }

    /// Durably saves the state and appends what was noted to the audit ledger, signed.
    pub fn save_now(&mut self) -> Result<()> {
        self.save()
    }

    /// Notes a governance record for the audit ledger (appended at the next save): `kind` is
    /// `proposal`, `ballot` or `proposal applied`; `signed` the member's COSE_Sign1.
    pub fn note_governance(&self, kind: &'static str, proposal: &str, member: &str, signed: &[u8]) {
        self.note(&Change::Governance {
            kind,
            proposal,
            member,
            signed,
        });
    }

    /// Notes the signer's attested certificate for the audit ledger (appended at the next
    /// save): what lets anyone check offline that the ledger's signing key is held by attested
    /// code (a governor's certificate attests its deployer key).
    pub fn note_signer(&self, certificate: &[u8]) {
        self.note(&Change::Signer { certificate });
    }

    /// Notes `change` for the audit ledger.
    fn note(&self, change: &Change<'_>) {
        crate::audit::lock(&self.audit).note(change);
    }

    /// Records `record` as `module`'s attested instance; returns the record it replaces.
    pub(crate) fn record_module(
        &mut self,
        module: &str,
        record: ModuleRecord,
    ) -> Option<ModuleRecord> {
        self.note(&Change::attested(module, &record));
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
        let gone = self.state.state_mut().modules.remove(module);
        if let Some(r) = &gone {
            self.note(&Change::module("module removed", module, r));
        }
        gone
    }

    /// Records connection `name` (replacing any earlier record of it).
    pub(crate) fn record_connection(&mut self, name: &str, record: ConnectionRecord) {
        self.note(&Change::keyed(name, &record));
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
        let gone = self.state.state_mut().connections.remove(name);
        if let Some(r) = &gone {
            self.note(&Change::connection("connection removed", name, r.id));
        }
        gone
    }

    /// Marks every connection keyed to instance `instance` of `module` as keyed to no
    /// instance (a disabled instance dropped their keys). The records and their ids stay, so
    /// the next deployment keys the same ids afresh: that replaces the key the other endpoint
    /// still holds, and the routes to the disabled instance. (Forgotten records gave the
    /// connections new ids, and the other endpoint went on sealing under the old key into a
    /// route that led to no module: its node dropped every such event.)
    pub(crate) fn unkey_connections_of(&mut self, module: &str, instance: u64) {
        for record in self.state.state_mut().connections.values_mut() {
            if record.instances.get(module) == Some(&instance) {
                record.instances.clear();
            }
        }
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
    /// the modules' records go, and every connection that reached one of them is keyed to no
    /// instance any more. Those records and their ids stay, as after `aex disable`
    /// ([`App::unkey_connections_of`]): a module on another node that is still running holds
    /// the old key, and the next deployment must replace it under the same id, or that module
    /// would go on sealing under it into a route that leads nowhere.
    pub(crate) fn forget_local_node(&mut self, node: &str) {
        self.state.state_mut().nodes.remove(node);
        let modules: Vec<String> = self
            .modules()
            .iter()
            .filter(|(_, m)| m.node == node)
            .map(|(name, _)| name.clone())
            .collect();
        for module in &modules {
            self.forget_module(module);
        }
        let known: BTreeSet<String> = self.modules().keys().cloned().collect();
        for record in self.state.state_mut().connections.values_mut() {
            if record.instances.keys().any(|m| !known.contains(m)) {
                record.instances.clear();
            }
        }
    }

    /// Lists `instance` of `module` for unloading.
    pub(crate) fn retire_instance(&mut self, module: &str, instance: RetiredInstance) {
        self.note(&Change::Retired {
            module,
            node: &instance.node,
            slot: &instance.slot,
        });
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
        for (module, r) in self.modules() {
            self.note(&Change::module("module removed", module, r));
        }
        for (name, c) in self.connections() {
            self.note(&Change::connection("connection removed", name, c.id));
        }
        let state = self.state.state_mut();
        state.modules.clear();
        state.retired.clear();
        state.connections.clear();
    }

    /// Adds a pending revocation.
    pub(crate) fn record_revocation(&mut self, revocation: Revocation) {
        self.note(&Change::connection(
            "connection revoked",
            &revocation.connection,
            revocation.id,
        ));
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
