//! `aex status --json`, read into the deployer library's own status types, with lookups that
//! say what is missing.

pub use aex_deploy::ops::status::{AppStatus, ConnectionView, ModuleView, NodeView};

/// The counters of a connection, for comparisons: `(sent, received, rejected, gaps)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Events sent, both directions.
    pub sent: u64,
    /// Events accepted, both directions.
    pub received: u64,
    /// Events refused.
    pub rejected: u64,
    /// Counter gaps seen by receivers.
    pub gaps: u64,
}

/// Counters with the given values.
pub fn counters(sent: u64, received: u64, rejected: u64, gaps: u64) -> Counters {
    Counters {
        sent,
        received,
        rejected,
        gaps,
    }
}

/// Lookups on an [`AppStatus`].
pub trait StatusExt {
    /// Parses `aex status --json` output.
    fn parse(json: serde_json::Value) -> AppStatus;
    /// Node `name`; panics listing the status if there is none.
    fn node(&self, name: &str) -> &NodeView;
    /// Module `name`; panics listing the status if there is none.
    fn module(&self, name: &str) -> &ModuleView;
    /// Connection `name`; panics listing the status if there is none.
    fn connection(&self, name: &str) -> &ConnectionView;
    /// The counters of connection `name`.
    fn counters(&self, name: &str) -> Counters;
    /// Asserts that there are nodes and modules, every node answers and every module runs
    /// and is attested.
    fn assert_healthy(&self);
}

impl StatusExt for AppStatus {
    #[track_caller]
    fn parse(json: serde_json::Value) -> AppStatus {
        serde_json::from_value(json.clone())
            .unwrap_or_else(|e| panic!("`aex status --json` is not an AppStatus ({e}):\n{json:#}"))
    }

    #[track_caller]
    fn node(&self, name: &str) -> &NodeView {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node `{name}` in {self:#?}"))
    }

    #[track_caller]
    fn module(&self, name: &str) -> &ModuleView {
        self.modules
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no module `{name}` in {self:#?}"))
    }

    #[track_caller]
    fn connection(&self, name: &str) -> &ConnectionView {
        self.connections
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no connection `{name}` in {self:#?}"))
    }

    #[track_caller]
    fn counters(&self, name: &str) -> Counters {
        let c = self.connection(name);
        counters(c.sent, c.received, c.rejected, c.gaps)
    }

    #[track_caller]
    fn assert_healthy(&self) {
        assert!(
            !self.nodes.is_empty() && !self.modules.is_empty(),
            "a status without nodes or modules: {self:#?}"
        );
        for n in &self.nodes {
            assert!(n.reachable, "node `{}` unreachable: {self:#?}", n.name);
        }
        for m in &self.modules {
            assert!(
                m.running && m.attested,
                "module `{}` not running and attested: {self:#?}",
                m.name
            );
        }
    }
}
