//! Persistent modules without their owner: a killed process comes back by itself with its
//! state, and the node agent (which controls the blob storage and the process starts) cannot
//! make a module run on an older state, on no state, twice, or on another node.
//!
//! The test kit's `tally` module (`#[aex::module(persistent)]`) keeps a running total. The
//! attacker's moves are only what a hostile node agent can do: copy, swap and delete files in
//! a module's `sealed/` directory, and kill processes (its node restarts them). The platform
//! counters (`platform/counters/` in the node's data directory) stand for hardware and are
//! never touched.

use std::path::{Path, PathBuf};

use aex_proto::ResumeOutcome;
use aex_testkit::cluster::AppDir;
use aex_testkit::node::NodeProcess;
use aex_testkit::status::{AppStatus, StatusExt};
use aex_testkit::{process, wait_for, wait_until, PATIENCE};
use serde_json::Value;

/// `tally` applications on test-started nodes.
pub(crate) struct Tallies {
    // Fields drop in order: the nodes first (they live in the app directory).
    pub(crate) nodes: Vec<NodeProcess>,
    pub(crate) app: AppDir,
    /// The C tally (`ctally`) instead of the Rust one, and descriptor text appended.
    c: Option<String>,
}

impl Tallies {
    /// `nodes` nodes and the `(module, node)` instances of `tally`, deployed.
    pub(crate) fn deploy(nodes: usize, modules: &[(&str, &str)], relay: bool) -> Tallies {
        Self::deploy_as(None, nodes, modules, relay)
    }

    /// [`Tallies::deploy`] with the test kit's C tally, and `extra` appended to the
    /// descriptor (more connections).
    pub(crate) fn deploy_in_c(
        nodes: usize,
        modules: &[(&str, &str)],
        relay: bool,
        extra: &str,
    ) -> Tallies {
        Self::deploy_as(Some(extra.to_owned()), nodes, modules, relay)
    }

    fn deploy_as(
        c: Option<String>,
        nodes: usize,
        modules: &[(&str, &str)],
        relay: bool,
    ) -> Tallies {
        let app = AppDir::new();
        let nodes: Vec<NodeProcess> = (1..=nodes)
            .map(|i| NodeProcess::start(&format!("node{i}"), app.path().join(format!("node{i}"))))
            .collect();
        let t = Tallies { nodes, app, c };
        t.describe(modules, relay);
        t.app.deploy().ok();
        t.app.status().assert_healthy();
        t
    }

    /// Writes the descriptor: the `(module, node)` instances of `tally` on these nodes.
    pub(crate) fn describe(&self, modules: &[(&str, &str)], relay: bool) {
        let sections: Vec<String> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                aex_testkit::descriptor::sgx_node(
                    &format!("node{}", i + 1),
                    n.addr,
                    &n.platform_pub_file(),
                    &n.identity_pub_file(),
                )
            })
            .collect();
        let text = match &self.c {
            None => aex_testkit::descriptor::tally(&sections, modules, relay),
            Some(extra) => {
                aex_testkit::descriptor::tally_in_c(&sections, modules, relay) + extra.as_str()
            }
        };
        self.app.write_descriptor(&text);
    }

    pub(crate) fn bump(&self, module: &str, n: u64) -> u64 {
        let total = self.app.call(module, "bump", Some(&n.to_string()));
        total
            .as_u64()
            .unwrap_or_else(|| panic!("bump answered {total}"))
    }

    /// Sends `n` on the direct connection `feed`; the module must accept it.
    pub(crate) fn feed(&self, n: u64) {
        self.app
            .aex(&["output", "feed", &n.to_string()])
            .ok()
            .stderr_has(&["the module accepted it"]);
    }

    pub(crate) fn totals(&self, module: &str) -> Value {
        self.app.call(module, "totals", None)
    }

    /// The module's `sealed/` directory on node `node` (1-based).
    pub(crate) fn sealed(&self, node: usize, module: &str) -> PathBuf {
        sealed_dir(&self.nodes[node - 1], module)
    }

    pub(crate) fn pid(&self, module: &str) -> u32 {
        self.app
            .status()
            .module(module)
            .pid
            .unwrap_or_else(|| panic!("{module} has a pid"))
    }

    /// Kills `module`'s process and waits until its node restarted it and the restart
    /// settled (resumed or refused); the status then.
    pub(crate) fn kill_and_wait_restart(&self, module: &str) -> AppStatus {
        kill_and_wait_restart(&self.app, module)
    }
}

/// Kills `module`'s process and waits until its node restarted it and the restart settled
/// (resumed or refused); the status then.
pub(crate) fn kill_and_wait_restart(app: &AppDir, module: &str) -> AppStatus {
    let before = app.status();
    let pid = before.module(module).pid.expect("a pid");
    let restarts = restarts(&before, module);
    process::signal(pid, process::Signal::Kill);
    wait_for(
        &format!("{module} to be restarted by its node"),
        PATIENCE,
        || {
            let s = app.status();
            let m = s.module(module);
            (m.running && m.pid != Some(pid) && restarts_of(m) > restarts).then_some(s)
        },
    )
}

/// `module`'s `sealed/` directory on `node`.
pub(crate) fn sealed_dir(node: &NodeProcess, module: &str) -> PathBuf {
    let modules = node.data_dir.join("modules");
    std::fs::read_dir(&modules)
        .expect("the node's modules directory")
        .flatten()
        .map(|ns| ns.path().join(module).join("sealed"))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| panic!("no sealed directory of `{module}` under {modules:?}"))
}

fn restarts(status: &AppStatus, module: &str) -> u32 {
    restarts_of(status.module(module))
}

fn restarts_of(m: &aex_testkit::status::ModuleView) -> u32 {
    m.persistence.as_ref().map_or(0, |p| p.restarts)
}

pub(crate) fn resume(status: &AppStatus, module: &str) -> ResumeOutcome {
    status
        .module(module)
        .persistence
        .as_ref()
        .and_then(|p| p.resume.clone())
        .unwrap_or_else(|| panic!("{module} reports no restart: {status:#?}"))
}

/// Replaces the blobs in `dir` with those in `from` (what a node agent can do to its storage).
/// The module may still run: its node removes a superseded blob after a commit, so a blob
/// listed here may be gone by the time it is removed (a CI run saw that), which is no error.
pub(crate) fn swap_blobs(from: &Path, dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        match std::fs::remove_file(entry.path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                panic!("cannot remove {}: {e}", entry.path().display())
            }
            _ => {}
        }
    }
    copy_blobs(from, dir);
}

pub(crate) fn copy_blobs(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn a_killed_persistent_module_resumes_with_its_state_and_keys_without_its_deployer() {
    let t = Tallies::deploy(1, &[("tally", "node1")], false);
    assert_eq!(t.bump("tally", 5), 5);
    t.feed(3);
    assert_eq!(t.totals("tally")["total"], 8);
    let stored = t.app.status().module("tally").persistence.clone();
    assert!(stored.as_ref().is_some_and(|p| p.stored >= 2), "{stored:?}");

    let status = t.kill_and_wait_restart("tally");
    assert!(
        matches!(resume(&status, "tally"), ResumeOutcome::Resumed { .. }),
        "{status:#?}"
    );
    assert!(status.module("tally").attested, "{status:#?}");
    let table = t.app.aex(&["status"]).ok().stdout;
    assert!(table.contains("resumed v"), "{table}");

    // The same instance as far as its deployer knows: commands and events go on, under the
    // keys and counters it had, and nothing was redeployed.
    assert_eq!(t.totals("tally")["total"], 8);
    assert_eq!(t.bump("tally", 1), 9);
    t.feed(1);
    assert_eq!(
        t.totals("tally"),
        serde_json::json!({"total": 10, "added": 4})
    );
    let pid = t.pid("tally");
    t.app.deploy().ok();
    assert_eq!(
        t.pid("tally"),
        pid,
        "a second deploy finds nothing to replace"
    );

    // Twice more: a restart is not a one-off.
    t.kill_and_wait_restart("tally");
    assert_eq!(t.bump("tally", 2), 12);
}

#[test]
fn rollback_deletion_fork_and_stale_copies_are_refused() {
    let t = Tallies::deploy(
        2,
        &[
            ("tally", "node1"),
            ("twin", "node1"),
            ("spare", "node1"),
            ("clone", "node1"),
            ("far", "node2"),
        ],
        false,
    );
    let scratch = t.app.path().join("stolen");

    // Rollback: blobs saved at total 1 are put back after the total moved on.
    t.bump("tally", 1);
    let old = scratch.join("tally-at-1");
    copy_blobs(&t.sealed(1, "tally"), &old);
    t.bump("tally", 1);
    t.bump("tally", 1);
    swap_blobs(&old, &t.sealed(1, "tally"));
    let status = t.kill_and_wait_restart("tally");
    match resume(&status, "tally") {
        ResumeOutcome::Refused(reason) => assert!(reason.contains("rollback detected"), "{reason}"),
        other => panic!("an old blob was taken: {other:?}"),
    }
    assert!(!status.module("tally").attested, "{status:#?}");
    let table = t.app.aex(&["status"]).ok().stdout;
    assert!(table.contains("ROLLBACK DETECTED"), "{table}");
    // The process runs on no state: it holds no key, so its deployer's commands fail.
    t.app.aex(&["call", "tally", "totals"]).code(1);
    // The owner decides: a deploy names what happened and what would be lost, and only
    // `--discard-state` starts the module over.
    t.app.deploy().code(1).stderr_has(&[
        "refused its sealed state: rollback detected",
        "aex deploy --discard-state tally",
    ]);
    t.app.deploy_with(&["--discard-state", "tally"]).ok();
    assert_eq!(t.totals("tally")["total"], 0);
    assert_eq!(t.bump("tally", 2), 2);

    // Deletion: no blob does not mean a fresh start.
    t.bump("spare", 4);
    let empty = scratch.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    swap_blobs(&empty, &t.sealed(1, "spare"));
    let status = t.kill_and_wait_restart("spare");
    match resume(&status, "spare") {
        ResumeOutcome::Refused(reason) => assert!(reason.contains("no sealed state"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(table_has(&t, "STATE MISSING"));
    t.app.aex(&["call", "spare", "totals"]).code(1);

    // A stale copy on another node: another platform's sealing key does not open it.
    t.bump("twin", 2);
    t.bump("far", 1);
    swap_blobs(&t.sealed(1, "twin"), &t.sealed(2, "far"));
    let status = t.kill_and_wait_restart("far");
    match resume(&status, "far") {
        ResumeOutcome::Refused(reason) => assert!(
            reason.contains("does not open under this module's sealing key"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }

    // A fork on the same node: the node agent starts a second process (clone's) from twin's
    // blobs. It resumes as twin and commits; twin's own process can then commit nothing: its
    // effect is never released, it stops, and its restart finds the counter moved on.
    swap_blobs(&t.sealed(1, "twin"), &t.sealed(1, "clone"));
    let status = t.kill_and_wait_restart("clone");
    assert!(
        matches!(resume(&status, "clone"), ResumeOutcome::Resumed { .. }),
        "{status:#?}"
    );
    let twin_pid = t.pid("twin");
    let forked = t.app.aex(&["--timeout", "3s", "call", "twin", "bump", "1"]);
    assert_ne!(
        forked.code, 0,
        "the forked copy answered: {}",
        forked.stdout
    );
    process::assert_gone(twin_pid, "twin's process to stop", PATIENCE);
    let status = wait_for("twin to be restarted", PATIENCE, || {
        let s = t.app.status();
        (restarts(&s, "twin") >= 1 && s.module("twin").running).then_some(s)
    });
    match resume(&status, "twin") {
        ResumeOutcome::Refused(reason) => assert!(reason.contains("rollback detected"), "{reason}"),
        other => panic!("both copies run on: {other:?}"),
    }
}

fn table_has(t: &Tallies, text: &str) -> bool {
    t.app.aex(&["status"]).ok().stdout.contains(text)
}

#[test]
fn every_node_restarts_and_its_persistent_modules_resume_wired_as_before() {
    let mut t = Tallies::deploy(2, &[("tally", "node1"), ("mirror", "node2")], true);
    t.feed(3);
    wait_for("mirror to take tally's receipt", PATIENCE, || {
        (t.totals("mirror")["total"] == 3).then_some(())
    });
    let pids = [t.pid("tally"), t.pid("mirror")];

    // Power cut: both node agents die at once; their modules see their input end and exit.
    for node in &mut t.nodes {
        node.kill();
    }
    for pid in pids {
        process::assert_gone(pid, "a module to stop with its node agent", PATIENCE);
    }
    // The deployer plays no part from here: no `aex deploy`, only events and reads.
    let restarted = std::time::Instant::now();
    for node in &mut t.nodes {
        node.restart();
    }
    let status = wait_for("both modules to resume", PATIENCE, || {
        let s = t.app.status();
        let resumed = |m: &str| {
            s.module(m).running
                && matches!(
                    s.module(m)
                        .persistence
                        .as_ref()
                        .and_then(|p| p.resume.clone()),
                    Some(ResumeOutcome::Resumed { .. })
                )
        };
        (resumed("tally") && resumed("mirror")).then_some(s)
    });
    let resumed_after = restarted.elapsed();
    assert!(
        status.module("tally").attested && status.module("mirror").attested,
        "{status:#?}"
    );
    t.feed(4);
    wait_for("the event to cross both restarted nodes", PATIENCE, || {
        (t.totals("mirror")["total"] == 10).then_some(())
    });
    let flowing_after = restarted.elapsed();
    eprintln!(
        "node restart: both modules resumed {} ms, events flowing across both nodes {} ms after the nodes were started again",
        resumed_after.as_millis(),
        flowing_after.as_millis()
    );
    assert_eq!(
        t.totals("tally"),
        serde_json::json!({"total": 7, "added": 2})
    );
    assert_eq!(
        t.totals("mirror"),
        serde_json::json!({"total": 10, "added": 2})
    );
}

#[test]
fn a_persistent_module_is_refused_on_a_node_that_admits_only_hardware_evidence() {
    let app = AppDir::new();
    let node = NodeProcess::start("node1", app.path().join("node1"));
    let section = aex_testkit::descriptor::sgx_node(
        "node1",
        node.addr,
        &node.platform_pub_file(),
        &node.identity_pub_file(),
    )
    .replace("simulation = true", "simulation = false");
    app.write_descriptor(&aex_testkit::descriptor::tally(
        &[section],
        &[("tally", "node1")],
        false,
    ));
    app.deploy().code(1).stderr_has(&[
        "module `tally` is persistent",
        "node `node1` admits only hardware evidence",
        "no hardware monotonic counters",
        "aex.toml",
    ]);
}

#[test]
fn moving_a_persistent_module_retires_the_source_for_good() {
    let t = Tallies::deploy(2, &[("tally", "node1"), ("clone", "node1")], false);
    // Many commits on node1, so that the sealed-state version there is far above what the
    // move's own commits on node2 reach.
    for _ in 0..20 {
        t.bump("tally", 0);
    }
    assert_eq!(t.bump("tally", 6), 6);
    let stored = |s: &AppStatus| {
        s.module("tally")
            .persistence
            .as_ref()
            .map_or(0, |p| p.stored)
    };
    let on_source = stored(&t.app.status());
    assert!(on_source > 20, "{on_source}");
    // The move, with the deployer stopped before it unloads the source (as a hostile node
    // agent could hold it up there), so the source's blobs are still on node1.
    t.describe(&[("tally", "node2"), ("clone", "node1")], false);
    crate::fault_sealed_move::deploy_killed_at(&t, "routed");
    assert_eq!(t.app.status().module("tally").node, "node2");
    assert_eq!(t.bump("tally", 1), 7);
    // The logical counter continues (DSN'18): node2's platform counter for the new instance
    // started at zero, but its sealed-state versions go on above the source's.
    let on_destination = stored(&t.app.status());
    assert!(
        on_destination > on_source,
        "version {on_destination} on node2 after {on_source} on node1"
    );

    // The source committed its retirement before its state was handed over. A hostile node
    // that keeps its last blobs and starts a process from them (here as `clone`, the same code
    // on the same node) gets the retired instance back, never a second live copy.
    let source = t.app.path().join("source-blobs");
    let own = t.app.path().join("clone-blobs");
    copy_blobs(&t.sealed(1, "tally"), &source);
    copy_blobs(&t.sealed(1, "clone"), &own);
    swap_blobs(&source, &t.sealed(1, "clone"));
    let status = t.kill_and_wait_restart("clone");
    assert!(
        matches!(resume(&status, "clone"), ResumeOutcome::Resumed { .. }),
        "{status:#?}"
    );
    let clone = wait_for("the resumed copy to report its counters", PATIENCE, || {
        let s = t.app.status();
        s.module("clone").armed.then(|| s.module("clone").clone())
    });
    assert!(clone.retired, "the copy resumed live: {clone:#?}");
    // (`clone` gets its own blobs back, for the deploy below.)
    swap_blobs(&own, &t.sealed(1, "clone"));
    t.kill_and_wait_restart("clone");

    // The deploy completes: node1 unloads the source, and with it its blobs and its platform
    // counter. The same copy started again now resumes nothing at all.
    t.app.deploy().ok();
    let source_dir = t
        .sealed(1, "clone")
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("tally");
    assert!(
        !source_dir.join("sealed").exists(),
        "the source's blobs outlived it"
    );
    swap_blobs(&source, &t.sealed(1, "clone"));
    let status = t.kill_and_wait_restart("clone");
    let ResumeOutcome::Refused(why) = resume(&status, "clone") else {
        panic!("a copy of an unloaded instance's blobs resumed: {status:#?}");
    };
    assert!(why.contains("has no counter"), "{why}");

    // The moved instance is persistent too: killed, it resumes on node2 with the total, and
    // its versions go on from where they were.
    let status = t.kill_and_wait_restart("tally");
    assert!(
        matches!(resume(&status, "tally"), ResumeOutcome::Resumed { version } if version >= on_destination),
        "{status:#?}"
    );
    assert_eq!(t.bump("tally", 1), 8);
    assert!(stored(&t.app.status()) > on_destination);
}

#[test]
fn aex_up_starts_a_killed_local_node_again_and_says_its_modules_resumed() {
    let app = AppDir::new();
    let sections: Vec<String> = ["node1", "node2"]
        .iter()
        .map(|name| {
            format!(
                "\n[[node]]\nname = \"{name}\"\naddress = \"{}\"\ntee = \"sgx\"\nsimulation = true\n",
                aex_testkit::free_addr()
            )
        })
        .collect();
    app.write_descriptor(&aex_testkit::descriptor::tally(
        &sections,
        &[("tally", "node1"), ("mirror", "node2")],
        true,
    ));
    let mut cmd = aex_testkit::cli::aex();
    cmd.arg("up").arg(app.path());
    let mut up = aex_testkit::process::Captured::spawn(cmd, "aex up");
    wait_for("`aex up` to follow", PATIENCE, || {
        following(&mut up).contains("Following").then_some(())
    });
    app.aex(&["output", "feed", "2"]).ok();
    wait_for("mirror to take the receipt", PATIENCE, || {
        (app.call("mirror", "totals", None)["total"] == 2).then_some(())
    });

    // The user kills node1's agent by hand; `aex up` starts it again and says what became of
    // the persistent module it ran.
    let pid_file = app.path().join(".aex/nodes/node1/node.pid");
    let pid: u32 = std::fs::read_to_string(pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    process::signal(pid, process::Signal::Kill);
    wait_until("`aex up` to narrate the restart", PATIENCE, || {
        let err = following(&mut up);
        if err.contains("local node node1 from its data directory")
            && err.contains("module `tally` on `node1`: resumed its sealed state")
        {
            Ok(())
        } else {
            Err(err)
        }
    });
    let narrated = following(&mut up);
    assert!(
        narrated.contains("node `node1` is unreachable"),
        "{narrated}"
    );
    app.aex(&["output", "feed", "3"]).ok();
    wait_for("the event to cross the restarted node", PATIENCE, || {
        (app.call("mirror", "totals", None)["total"] == 7).then_some(())
    });

    process::signal(up.child.id(), process::Signal::Int);
    let exit = wait_for("`aex up` to exit", PATIENCE, || {
        up.child.try_wait().expect("wait for aex up")
    });
    assert!(exit.success(), "{}", up.output().1);
}

/// What `aex up` wrote to stderr so far; fails the test if it exited.
fn following(up: &mut aex_testkit::process::Captured) -> String {
    if let Ok(Some(exit)) = up.child.try_wait() {
        panic!("`aex up` exited early with {exit}");
    }
    up.stderr_so_far()
}

#[test]
fn a_node_that_cannot_store_slows_the_module_says_why_and_loses_nothing() {
    let t = Tallies::deploy(1, &[("tally", "node1"), ("mirror", "node1")], true);
    assert_eq!(t.bump("tally", 1), 1);
    // The node's storage fails (here: its `sealed` directory replaced by a file, as a full
    // or broken disk would refuse every write).
    let sealed = t.sealed(1, "tally");
    std::fs::remove_dir_all(&sealed).unwrap();
    std::fs::write(&sealed, b"not a directory").unwrap();
    t.feed(5);
    let status = wait_for("status to say the store fails", PATIENCE, || {
        let s = t.app.status();
        let failing = s
            .module("tally")
            .persistence
            .as_ref()
            .is_some_and(|p| p.store_error.is_some());
        failing.then_some(s)
    });
    assert!(
        t.app.aex(&["status"]).ok().stdout.contains("STORE FAILING"),
        "{status:#?}"
    );
    // Nothing the event caused left tally before its state is stored: mirror has no receipt.
    assert_eq!(t.totals("mirror")["total"], 0);

    // The disk comes back: the commit goes through, and the held receipt with it.
    std::fs::remove_file(&sealed).unwrap();
    wait_for("the held receipt to reach mirror", PATIENCE, || {
        (t.totals("mirror")["total"] == 6).then_some(())
    });
    let status = t.app.status();
    let p = status.module("tally").persistence.clone().unwrap();
    assert!(p.store_error.is_none(), "{p:?}");
    assert_eq!(
        t.totals("tally"),
        serde_json::json!({"total": 6, "added": 2})
    );
}

#[test]
fn a_module_whose_board_is_lost_starts_elsewhere_from_the_owners_checkpoint() {
    let mut t = Tallies::deploy(2, &[("tally", "node1"), ("mirror", "node2")], true);
    t.feed(2);
    let file = t.app.path().join("tally.ckpt");
    let file_arg = file.display().to_string();
    t.app
        .aex(&["checkpoint", "tally", "-o", &file_arg])
        .ok()
        .stderr_has(&["Checkpoint", "`tally`", "--restore-state tally="]);
    // The module goes on after the checkpoint; what it does from here dies with its board.
    assert_eq!(t.bump("tally", 1), 3);

    // node1 is lost for good. The owner takes it out of the descriptor, places tally on
    // node2, and restores the checkpoint there.
    t.nodes[0].kill();
    let node2 = &t.nodes[1];
    let section = aex_testkit::descriptor::sgx_node(
        "node2",
        node2.addr,
        &node2.platform_pub_file(),
        &node2.identity_pub_file(),
    );
    t.app.write_descriptor(&aex_testkit::descriptor::tally(
        &[section],
        &[("tally", "node2"), ("mirror", "node2")],
        true,
    ));
    let restore = format!("tally={file_arg}");
    t.app
        .deploy_with(&["--restore-state", &restore])
        .ok()
        .stderr_has(&[
            "restore the checkpoint you gave",
            "`tally` from `node1` to `node2`: restored your checkpoint (21 bytes)",
        ]);
    let status = t.app.status();
    status.assert_healthy();
    assert_eq!(status.module("tally").node, "node2");
    assert_eq!(
        t.totals("tally"),
        serde_json::json!({"total": 2, "added": 1})
    );
    t.feed(4);
    wait_for(
        "the restored tally's receipt to reach mirror",
        PATIENCE,
        || (t.totals("mirror")["total"] == 8).then_some(()),
    );
    // A damaged checkpoint is refused, naming the file.
    let mut bytes = std::fs::read(&file).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(&file, bytes).unwrap();
    t.app
        .deploy_with(&["--restore-state", &restore])
        .code(1)
        .stderr_has(&["checkpoint file", "damaged"]);
}
