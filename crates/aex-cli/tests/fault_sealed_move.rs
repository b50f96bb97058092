//! A persistent module moved between nodes while things fail (issue 16, after DSN'18): the
//! deployer is killed with SIGKILL at each step of the hand-over (`AEX_CRASH_AT`, see
//! `aex_deploy::crash`), and with it the node agent of the source or of the destination, which
//! is then started again from its data directory. The next `aex deploy` must converge with
//! the state intact, exactly one live instance, and the source retired for good.
//!
//! The steps are those where what persists changes hands: the source frozen (`retired`), its
//! snapshot read (`state-read`), the snapshot with the deployer and the destination not armed
//! (`handed-over`), the destination armed (`restored`), and everything re-keyed (`routed`).

use aex_testkit::status::{AppStatus, StatusExt};

use crate::fault_sealed_state::Tallies;

/// Which node agent dies with the deployer.
#[derive(Clone, Copy, Debug)]
enum Victim {
    Source,
    Destination,
}

/// `aex deploy` with `AEX_CRASH_AT=point`, which must die there.
pub(crate) fn deploy_killed_at(t: &Tallies, point: &str) {
    aex_testkit::cli::killed_at(
        point,
        [std::ffi::OsStr::new("deploy"), t.app.path().as_os_str()],
    );
}

/// Kills node `index`'s agent (0-based) with SIGKILL, waits until its modules are gone, and
/// starts it again from the same data directory.
fn restart_node_agent(t: &mut Tallies, index: usize) {
    let node = &mut t.nodes[index];
    let pids = aex_testkit::process::children(node.pid());
    node.kill();
    for pid in &pids {
        aex_testkit::process::assert_gone(*pid, "a module of a killed node", aex_testkit::PATIENCE);
    }
    node.restart();
}

/// Moves `tally` back and forth between node1 and node2, once per `(point, victim)`, each
/// move interrupted there; after each, a plain `aex deploy` converges.
fn moves_interrupted(cases: &[(&str, Victim)]) {
    let mut t = Tallies::deploy(2, &[("tally", "node1")], false);
    let mut total = t.bump("tally", 5);
    for (i, &(point, victim)) in cases.iter().enumerate() {
        let (from, to) = if i % 2 == 0 { (0, 1) } else { (1, 0) };
        let after = format!(
            "a move node{} -> node{} killed at `{point}` with the {victim:?} node agent",
            from + 1,
            to + 1
        );
        t.feed(1);
        total += 1;
        t.describe(&[("tally", &format!("node{}", to + 1))], false);
        deploy_killed_at(&t, point);
        restart_node_agent(
            &mut t,
            match victim {
                Victim::Source => from,
                Victim::Destination => to,
            },
        );
        t.app.deploy().ok();
        let json = t.app.aex(&["status", "--json"]).ok().json();
        let status = AppStatus::parse(json.clone());
        status.assert_healthy();
        assert_eq!(
            status.module("tally").node,
            format!("node{}", to + 1),
            "after {after}"
        );
        // One instance on the two nodes: the source's is gone, not a second live copy.
        let listed: u64 = json["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| n["modules"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(listed, 1, "after {after}: {json:#}");
        assert_eq!(t.totals("tally")["total"], total, "after {after}");
        // It takes events and commands, and a further deploy changes nothing.
        total = t.bump("tally", 1);
        t.app.deploy().ok().stderr_has(&["Unchanged"]);
    }
    assert_eq!(t.totals("tally")["total"], total);
}

/// Every step, with each node agent: the source dying frozen has its snapshot read from the
/// retired instance its node brings back; the destination dying with a loaded but unarmed
/// instance (which never committed) has it replaced; the destination dying armed resumes
/// the restored state; the source dying after the hand-over has its retired instance
/// unloaded, not revived.
#[test]
fn a_move_converges_with_either_node_agent_killed_at_each_step() {
    let mut cases = vec![];
    for point in ["retired", "state-read", "handed-over", "restored", "routed"] {
        cases.push((point, Victim::Source));
        cases.push((point, Victim::Destination));
    }
    moves_interrupted(&cases);
}
