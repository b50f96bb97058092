//! What the dashboard shows, taken every period from the application's nodes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aex_deploy::ops::status::{status, AppStatus};
use aex_deploy::{App, Identity};
use aex_node::{physics_socket, PhysicsClient};
use serde::Serialize;

/// One picture of the application.
#[derive(Debug, Serialize)]
pub(crate) struct Snapshot {
    /// When it was taken, in milliseconds since the Unix epoch.
    as_of_ms: u64,
    /// The status, as `aex status --json` prints it; `None` if it could not be taken.
    status: Option<AppStatus>,
    /// Why it could not be taken.
    error: Option<String>,
    /// Devices of the nodes `aex up` runs on this machine, by node.
    devices: BTreeMap<String, Vec<Device>>,
    /// Alarms the modules report in their own status (`state`): every field whose name
    /// contains "alarm". (Deadline alarms the runtimes counted are in `status`.)
    alarms: Vec<Alarm>,
}

/// A device of a local node.
#[derive(Debug, Serialize)]
struct Device {
    name: String,
    kind: String,
    value: u32,
    /// Whether a driver module holds it.
    held: bool,
}

/// A module's alarm field and its value.
#[derive(Debug, Serialize)]
struct Alarm {
    module: String,
    field: String,
    value: serde_json::Value,
}

/// Takes snapshots of the application at `path`.
pub(crate) struct Snapshots {
    pub(crate) path: PathBuf,
    pub(crate) identity: Arc<Identity>,
    /// The limit on each node wait.
    pub(crate) timeout: Duration,
}

impl Snapshots {
    /// A snapshot now, as JSON.
    pub(crate) fn take(&self) -> String {
        let snapshot = match self.status() {
            Ok((status, node_dirs)) => Snapshot {
                as_of_ms: now_ms(),
                alarms: alarms(&status),
                devices: devices(&node_dirs),
                status: Some(status),
                error: None,
            },
            Err(e) => Snapshot {
                as_of_ms: now_ms(),
                status: None,
                error: Some(format!("{:#}", anyhow::Error::from(e))),
                devices: BTreeMap::new(),
                alarms: vec![],
            },
        };
        serde_json::to_string(&snapshot).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The status, and the data directories of the local nodes; the state is closed on return.
    fn status(&self) -> aex_deploy::Result<(AppStatus, Vec<(String, PathBuf)>)> {
        let mut app =
            App::open_with_timeout(&self.path, self.identity.clone(), Some(self.timeout))?;
        let status = status(&mut app)?;
        let dirs = app
            .local_nodes()
            .keys()
            .map(|node| (node.clone(), app.node_data_dir(node)))
            .collect();
        Ok((status, dirs))
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The devices of the local nodes whose device socket answers.
fn devices(node_dirs: &[(String, PathBuf)]) -> BTreeMap<String, Vec<Device>> {
    node_dirs
        .iter()
        .filter_map(|(node, dir)| Some((node.clone(), list(dir)?)))
        .filter(|(_, devices)| !devices.is_empty())
        .collect()
}

fn list(dir: &Path) -> Option<Vec<Device>> {
    let mut client = PhysicsClient::connect(&physics_socket(dir)).ok()?;
    let listed = client.list().ok()?;
    Some(
        listed
            .into_iter()
            .map(|d| Device {
                name: d.name,
                kind: d.kind.to_string(),
                value: d.value,
                held: d.held,
            })
            .collect(),
    )
}

/// Every field of a module's `state` whose name contains "alarm", at any depth.
fn alarms(status: &AppStatus) -> Vec<Alarm> {
    fn walk(module: &str, prefix: &str, value: &serde_json::Value, out: &mut Vec<Alarm>) {
        if let serde_json::Value::Object(fields) = value {
            for (name, value) in fields {
                let field = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                if name.to_lowercase().contains("alarm") {
                    out.push(Alarm {
                        module: module.to_string(),
                        field,
                        value: value.clone(),
                    });
                } else {
                    walk(module, &field, value, out);
                }
            }
        }
    }
    let mut out = vec![];
    for m in &status.modules {
        if let Some(state) = &m.state {
            walk(&m.name, "", state, &mut out);
        }
    }
    out
}
