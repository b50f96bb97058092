//! What a node remembers across its own restarts: the modules it loaded and the routes it
//! installed, so that it can bring persistent modules back, wired as before, with no deployer
//! (`supervise.rs` does, when the node starts).
//!
//! Each entry is one small JSON file, written aside and renamed into place, so a change costs
//! one file whatever the node holds (a deployment of 1,000 modules writes 1,000 module entries,
//! not 1,000 versions of one growing file):
//!
//! * `modules/<namespace>/<module>/instance.json`: the owner, the measurement (device-bound
//!   for drivers), the devices, the periodic triggers, and whether the module declared itself
//!   persistent;
//! * `routes/<namespace>/<connection>.<f|b>.json`: where the events of one (connection,
//!   direction) go and where they may come from.
//!
//! Entries are not synced to disk one by one: a crash of the machine may lose the newest ones,
//! and then the modules they describe wait for their deployer, as without a journal. A
//! journal entry is the node's own memory and carries no authority: a module restarted from it
//! runs only on the sealed state its platform counter names, and an event routed by it is
//! still sealed under keys the node never sees. An entry that does not read is skipped with a
//! warning.

use std::fs;
use std::path::{Path, PathBuf};

use aex_crypto::Measurement;
use aex_proto::{AppId, ConnId, DeployerKey, Direction, Endpoint, Origin, Trigger};
use serde::{Deserialize, Serialize};
use tracing::warn;

/// A loaded module as the journal keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ModuleEntry {
    pub(crate) app: AppId,
    pub(crate) name: String,
    pub(crate) owner: DeployerKey,
    /// Hex, device-bound for a driver.
    pub(crate) measurement: String,
    pub(crate) devices: Vec<String>,
    pub(crate) triggers: Vec<Trigger>,
    pub(crate) persistent: bool,
}

impl ModuleEntry {
    /// The measurement it was loaded with.
    pub(crate) fn measurement(&self) -> Option<Measurement> {
        Measurement::from_hex(&self.measurement).ok()
    }
}

/// An installed route as the journal keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RouteEntry {
    /// The deployer identity whose namespace it is in (what it counts against). Journals
    /// written before it was kept read as the all-zero key: their routes were admitted then.
    #[serde(default = "unknown_owner")]
    pub(crate) owner: DeployerKey,
    pub(crate) app: AppId,
    pub(crate) conn: ConnId,
    pub(crate) dir: Direction,
    pub(crate) to: Endpoint,
    pub(crate) from: Origin,
}

/// The owner of a route journalled before routes recorded theirs.
fn unknown_owner() -> DeployerKey {
    DeployerKey([0; aex_crypto::PUBLIC_IDENTITY_LEN])
}

/// The journal of the node whose data directory is `data_dir`.
pub(crate) struct Journal {
    data_dir: PathBuf,
}

impl Journal {
    pub(crate) fn new(data_dir: &Path) -> Self {
        Journal {
            data_dir: data_dir.to_path_buf(),
        }
    }

    fn module_file(&self, app: AppId, name: &str) -> PathBuf {
        self.data_dir
            .join("modules")
            .join(app.to_string())
            .join(name)
            .join("instance.json")
    }

    fn route_dir(&self, app: AppId) -> PathBuf {
        self.data_dir.join("routes").join(app.to_string())
    }

    fn route_file(&self, app: AppId, conn: ConnId, dir: Direction) -> PathBuf {
        let d = match dir {
            Direction::Forward => "f",
            Direction::Backward => "b",
        };
        self.route_dir(app).join(format!("{}.{d}.json", conn.0))
    }

    /// Records a loaded module (replacing what an earlier instance of the name left).
    pub(crate) fn record_module(&self, entry: &ModuleEntry) {
        write(&self.module_file(entry.app, &entry.name), entry);
    }

    /// Replaces a recorded module's periodic triggers.
    pub(crate) fn record_triggers(&self, app: AppId, name: &str, triggers: &[Trigger]) {
        let path = self.module_file(app, name);
        if let Some(mut entry) = read::<ModuleEntry>(&path) {
            entry.triggers = triggers.to_vec();
            write(&path, &entry);
        }
    }

    /// Forgets an unloaded module and the routes that led to it.
    pub(crate) fn forget_module(&self, app: AppId, name: &str) {
        remove(&self.module_file(app, name));
        for (path, route) in entries::<RouteEntry>(&self.route_dir(app)) {
            if matches!(&route.to, Endpoint::Module(n) if n == name) {
                remove(&path);
            }
        }
    }

    /// Records an installed route.
    pub(crate) fn record_route(&self, route: &RouteEntry) {
        write(&self.route_file(route.app, route.conn, route.dir), route);
    }

    /// Forgets a removed route.
    pub(crate) fn forget_route(&self, app: AppId, conn: ConnId, dir: Direction) {
        remove(&self.route_file(app, conn, dir));
    }

    /// Every recorded module.
    pub(crate) fn modules(&self) -> Vec<ModuleEntry> {
        let mut all = Vec::new();
        for namespace in subdirs(&self.data_dir.join("modules")) {
            for module in subdirs(&namespace) {
                if let Some(entry) = read(&module.join("instance.json")) {
                    all.push(entry);
                }
            }
        }
        all
    }

    /// Every recorded route.
    pub(crate) fn routes(&self) -> Vec<RouteEntry> {
        subdirs(&self.data_dir.join("routes"))
            .iter()
            .flat_map(|dir| entries::<RouteEntry>(dir))
            .map(|(_, route)| route)
            .collect()
    }
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

fn entries<T: for<'de> Deserialize<'de>>(dir: &Path) -> Vec<(PathBuf, T)> {
    let Ok(files) = fs::read_dir(dir) else {
        return Vec::new();
    };
    files
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| read(&p).map(|entry| (p, entry)))
        .collect()
}

fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            warn!(path = %path.display(), error = %e, "cannot read a journal entry; skipped");
            return None;
        }
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| warn!(path = %path.display(), error = %e, "a journal entry does not decode; skipped"))
        .ok()
}

/// Durably: a node that loses power right after a deployer's load or route was answered
/// still finds it when it starts again.
fn write<T: Serialize>(path: &Path, entry: &T) {
    let written = serde_json::to_vec(entry)
        .map_err(std::io::Error::other)
        .and_then(|bytes| aex_tee::replace_durably(path, &bytes));
    if let Err(e) = written {
        warn!(path = %path.display(), error = %e, "cannot write a journal entry: a restart of this node will not restore it");
    }
}

fn remove(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            warn!(path = %path.display(), error = %e, "cannot remove a journal entry");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_and_routes_are_remembered_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(dir.path());
        let app = AppId([3; 16]);
        let entry = ModuleEntry {
            app,
            name: "tally".into(),
            owner: DeployerKey([1; 32]),
            measurement: Measurement([2; 32]).to_hex(),
            devices: vec![],
            triggers: vec![],
            persistent: true,
        };
        journal.record_module(&entry);
        let trigger = Trigger {
            entry: "tick".into(),
            period_ms: 100,
        };
        journal.record_triggers(app, "tally", std::slice::from_ref(&trigger));
        for (conn, to) in [
            (1, Endpoint::Module("tally".into())),
            (2, Endpoint::Deployer),
        ] {
            journal.record_route(&RouteEntry {
                owner: DeployerKey([4; aex_crypto::PUBLIC_IDENTITY_LEN]),
                app,
                conn: ConnId(conn),
                dir: Direction::Forward,
                to,
                from: Origin::Deployer,
            });
        }
        let modules = journal.modules();
        assert_eq!(modules.len(), 1);
        assert_eq!(modules[0].triggers, vec![trigger]);
        assert_eq!(modules[0].measurement(), Some(Measurement([2; 32])));
        assert_eq!(journal.routes().len(), 2);
        journal.forget_route(app, ConnId(2), Direction::Forward);
        assert_eq!(journal.routes().len(), 1);
        journal.forget_module(app, "tally");
        assert!(journal.modules().is_empty());
        assert!(journal.routes().is_empty(), "the route to it went with it");
    }

    #[test]
    fn an_entry_that_does_not_read_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes/x/1.f.json");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"{not json").unwrap();
        assert!(Journal::new(dir.path()).routes().is_empty());
    }
}
