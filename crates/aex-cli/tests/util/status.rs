//! `aex status --json`, typed (only the fields the tests read).

use serde::Deserialize;

/// The whole application's status.
#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    pub nodes: Vec<Node>,
    pub modules: Vec<Module>,
    pub connections: Vec<Connection>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Node {
    pub name: String,
    pub reachable: bool,
    /// Modules the node runs for this application.
    pub modules: usize,
    pub dropped: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Module {
    pub name: String,
    /// Where its attested instance runs.
    pub node: String,
    /// The TEE kind of the module's node.
    pub tee: String,
    pub attested: bool,
    pub running: bool,
    pub measurement: String,
    pub pid: Option<u32>,
    /// What the module's `status` entry point answered, if it has one.
    pub state: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Counters {
    pub sent: u64,
    pub received: u64,
    pub rejected: u64,
    pub gaps: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Connection {
    pub name: String,
    pub id: Option<u32>,
    pub keyed: bool,
    #[serde(flatten)]
    pub counters: Counters,
}

impl Status {
    /// Parses `aex status --json` output.
    pub fn parse(json: serde_json::Value) -> Status {
        serde_json::from_value(json).expect("`aex status --json` has the documented shape")
    }

    #[track_caller]
    pub fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node `{name}` in {self:#?}"))
    }

    #[track_caller]
    pub fn module(&self, name: &str) -> &Module {
        self.modules
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no module `{name}` in {self:#?}"))
    }

    #[track_caller]
    pub fn connection(&self, name: &str) -> &Connection {
        self.connections
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no connection `{name}` in {self:#?}"))
    }

    /// The counters of connection `name`.
    #[track_caller]
    pub fn counters(&self, name: &str) -> Counters {
        self.connection(name).counters
    }

    /// Asserts that every node answers and every module runs and is attested.
    #[track_caller]
    pub fn assert_healthy(&self) {
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

/// Counters with the given values, for comparisons.
pub fn counters(sent: u64, received: u64, rejected: u64, gaps: u64) -> Counters {
    Counters {
        sent,
        received,
        rejected,
        gaps,
    }
}
