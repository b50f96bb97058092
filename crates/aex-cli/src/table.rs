//! Plain-text tables for `aex status` and `aex up`.

use aex_deploy::ops::status::AppStatus;

/// Left-aligned columns separated by two spaces. Rows and header may differ in length (a
/// missing cell is blank); a table never panics. Cells (which may hold what a node said) are
/// escaped ([`crate::shell::escape`]), so each stays on its line and drives no terminal.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| crate::shell::escape(c).into_owned())
                .collect()
        })
        .collect();
    let rows = rows.as_slice();
    let columns = rows
        .iter()
        .map(Vec::len)
        .chain([header.len()])
        .max()
        .unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for (i, h) in header.iter().enumerate() {
        widths[i] = h.chars().count();
    }
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push('\n');
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

/// The three status tables.
pub fn status(s: &AppStatus) -> String {
    let nodes: Vec<Vec<String>> = s
        .nodes
        .iter()
        .map(|n| {
            vec![
                n.name.clone(),
                n.address.clone(),
                n.tee.clone(),
                yes(n.simulation),
                if n.reachable {
                    "up".into()
                } else {
                    "unreachable".into()
                },
                n.modules.to_string(),
                n.dropped.to_string(),
                n.refused.to_string(),
            ]
        })
        .collect();
    let modules: Vec<Vec<String>> = s
        .modules
        .iter()
        .map(|m| {
            vec![
                m.name.clone(),
                m.node.clone(),
                m.tee.clone(),
                m.measurement.chars().take(12).collect(),
                if !m.reachable {
                    // Its node did not answer: nothing is known of the instance.
                    "unknown".into()
                } else if m.attested {
                    if m.simulated {
                        "yes (simulated)".into()
                    } else {
                        "yes".into()
                    }
                } else {
                    "no".into()
                },
                match (m.reachable, m.running, &m.exit) {
                    (false, ..) => "unknown".into(),
                    // Ended on its own (a panic, a crash): say how, not just "no".
                    (true, false, Some(exit)) => format!("no: {exit}"),
                    (true, running, _) => yes(running),
                },
                m.persistence.as_ref().map(sealed).unwrap_or_default(),
                (m.rejected_unknown + m.rejected_commands).to_string(),
                m.state.as_ref().map(compact).unwrap_or_default(),
            ]
        })
        .collect();
    let conns: Vec<Vec<String>> = s
        .connections
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.from.clone(),
                c.to.clone(),
                c.algorithm.clone(),
                c.sent.to_string(),
                c.received.to_string(),
                c.failed.to_string(),
                c.replies.to_string(),
                c.rejected.to_string(),
                c.gaps.to_string(),
                c.dropped.to_string(),
                c.blocked.to_string(),
            ]
        })
        .collect();
    [
        render(
            &[
                "NODE",
                "ADDRESS",
                "TEE",
                "SIMULATED",
                "STATE",
                "MODULES",
                "DROPPED",
                "REFUSED",
            ],
            &nodes,
        ),
        render(
            &[
                "MODULE",
                "NODE",
                "TEE",
                "MEASUREMENT",
                "ATTESTED",
                "RUNNING",
                "SEALED",
                "REJECTED",
                "STATE",
            ],
            &modules,
        ),
        render(
            &[
                "CONNECTION",
                "FROM",
                "TO",
                "ALGORITHM",
                "SENT",
                "RECEIVED",
                "FAILED",
                "REPLIES",
                "REJECTED",
                "GAPS",
                "DROPPED",
                "BLOCKED",
            ],
            &conns,
        ),
    ]
    .join("\n\n")
}

/// What needs its owner's attention in a status, one paragraph each: a module whose process
/// ended (how, and the last lines of its log), and ports whose code failed (how often, and
/// why the last time).
pub fn problems(s: &AppStatus) -> Vec<String> {
    let mut out = Vec::new();
    for m in &s.modules {
        if let (true, false, Some(exit)) = (m.reachable, m.running, &m.exit) {
            let mut text = format!("module `{}` is not running: {exit}", m.name);
            if !m.log_tail.is_empty() {
                text.push_str("; the last lines of its log:");
                for line in &m.log_tail {
                    text.push_str("\n  ");
                    text.push_str(line);
                }
            }
            out.push(text);
        }
        for f in &m.failures {
            let (kind, port) = f.port.split_once(' ').unwrap_or(("port", &f.port));
            let times = match f.failed {
                1 => "once".to_owned(),
                n => format!("{n} times"),
            };
            let event = match f.conn {
                Some(conn) => {
                    let name = s
                        .connections
                        .iter()
                        .find(|c| c.id == Some(conn.0))
                        .map_or_else(|| conn.to_string(), |c| format!("`{}`", c.name));
                    format!(" (event {} on connection {name})", f.counter)
                }
                None => String::new(),
            };
            out.push(format!(
                "module `{}`: {kind} `{port}` failed {times}; the last time{event}: {}",
                m.name, f.reason
            ));
        }
    }
    out
}

/// A persistent module's sealed state on one short line: the newest version stored, and
/// what its last restart made of it.
fn sealed(p: &aex_proto::PersistenceStatus) -> String {
    let restarts = match p.restarts {
        1 => "1 restart".to_owned(),
        n => format!("{n} restarts"),
    };
    if p.store_error.is_some() {
        return format!("STORE FAILING, v{} (see aex status --json)", p.stored);
    }
    match &p.resume {
        None => format!("v{}", p.stored),
        Some(aex_proto::ResumeOutcome::Resumed { version }) => {
            format!("v{} (resumed v{version}, {restarts})", p.stored)
        }
        Some(aex_proto::ResumeOutcome::Refused(reason)) => {
            let what = if reason.contains("rollback detected") {
                "ROLLBACK DETECTED"
            } else if reason.contains("no sealed state") {
                "STATE MISSING"
            } else {
                "REFUSED"
            };
            format!("{what} ({restarts}; see aex status --json)")
        }
    }
}

/// A module's reported state on one short line.
fn compact(v: &serde_json::Value) -> String {
    let mut s = match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > 48 {
        s = s.chars().take(47).collect::<String>() + "…";
    }
    s
}

#[cfg(test)]
mod tests {
    use aex_deploy::ops::status::{AppStatus, ConnectionView, ModuleView, NodeView};

    #[test]
    fn columns_align() {
        let t = super::render(&["A", "BB"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(t, "A    BB\nxxx  y");
        // Ragged input is tolerated, not a panic.
        let t = super::render(&["A"], &[vec!["x".into(), "extra".into()]]);
        assert_eq!(t, "A\nx  extra");
    }

    fn led() -> ModuleView {
        ModuleView {
            name: "led".into(),
            node: "field".into(),
            tee: "sancus".into(),
            reachable: true,
            attested: true,
            running: true,
            measurement: "ab".repeat(32),
            attested_at: Some(1),
            simulated: true,
            pid: Some(7),
            rejected_unknown: 0,
            rejected_commands: 0,
            armed: true,
            rejected_ticks: 0,
            refused_commands: 0,
            dropped_replies: 0,
            refused_writes: 0,
            insecure: false,
            state: Some(serde_json::json!({"on": true})),
            retired: false,
            persistence: None,
            exit: None,
            log_tail: vec![],
            failures: vec![],
            alarms: vec![],
        }
    }

    #[test]
    fn sealed_state_says_resumed_or_what_was_refused() {
        use aex_proto::{PersistenceStatus, ResumeOutcome};
        let fresh = PersistenceStatus {
            restarts: 0,
            stored: 3,
            resume: None,
            store_error: None,
        };
        assert_eq!(super::sealed(&fresh), "v3");
        let failing = PersistenceStatus {
            store_error: Some("No space left on device".into()),
            ..fresh.clone()
        };
        assert_eq!(
            super::sealed(&failing),
            "STORE FAILING, v3 (see aex status --json)"
        );
        let resumed = PersistenceStatus {
            restarts: 1,
            stored: 5,
            resume: Some(ResumeOutcome::Resumed { version: 4 }),
            store_error: None,
        };
        assert_eq!(super::sealed(&resumed), "v5 (resumed v4, 1 restart)");
        let rolled_back = PersistenceStatus {
            restarts: 2,
            stored: 5,
            resume: Some(ResumeOutcome::Refused(
                "rollback detected: the node handed over version 3".into(),
            )),
            store_error: None,
        };
        assert_eq!(
            super::sealed(&rolled_back),
            "ROLLBACK DETECTED (2 restarts; see aex status --json)"
        );
        let mut led = led();
        led.persistence = Some(rolled_back);
        let status = AppStatus {
            application: "a".into(),
            nodes: vec![field(true)],
            modules: vec![led],
            connections: vec![],
        };
        assert!(super::status(&status).contains("ROLLBACK DETECTED"));
    }

    fn field(reachable: bool) -> NodeView {
        NodeView {
            name: "field".into(),
            address: "127.0.0.1:1".into(),
            tee: "sancus".into(),
            simulation: true,
            reachable,
            error: (!reachable).then(|| "connection refused".into()),
            local: false,
            modules: usize::from(reachable),
            dropped: 3,
            refused: 41,
        }
    }

    #[test]
    fn a_module_on_an_unreachable_node_is_unknown_not_unattested() {
        let mut module = led();
        (module.reachable, module.attested, module.running) = (false, false, false);
        let status = AppStatus {
            application: "a".into(),
            nodes: vec![field(false)],
            modules: vec![module],
            connections: vec![],
        };
        let t = super::status(&status);
        let row = t.lines().find(|l| l.starts_with("led")).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[4..6], ["unknown", "unknown"], "{t}");
    }

    #[test]
    fn the_nodes_refused_counter_is_shown() {
        let status = AppStatus {
            application: "a".into(),
            nodes: vec![field(true)],
            modules: vec![],
            connections: vec![],
        };
        let t = super::status(&status);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].ends_with("DROPPED  REFUSED"), "{t}");
        assert!(lines[1].ends_with("3        41"), "{t}");
    }

    #[test]
    fn a_connection_shows_what_nodes_dropped_and_what_found_its_window_full() {
        let status = AppStatus {
            application: "a".into(),
            nodes: vec![],
            modules: vec![],
            connections: vec![ConnectionView {
                name: "ping-to-pong".into(),
                id: Some(1),
                from: "ping.ping".into(),
                to: "pong.ping".into(),
                algorithm: "aes-gcm".into(),
                keyed: true,
                sent: 10,
                received: 7,
                failed: 1,
                replies: 0,
                rejected: 0,
                gaps: 1,
                dropped: 2,
                blocked: 5,
            }],
        };
        let t = super::status(&status);
        let lines: Vec<&str> = t.lines().collect();
        let header = lines
            .iter()
            .position(|l| l.starts_with("CONNECTION"))
            .unwrap();
        let names: Vec<&str> = lines[header].split_whitespace().collect();
        let cells: Vec<&str> = lines[header + 1].split_whitespace().collect();
        assert_eq!(
            names[4..],
            ["SENT", "RECEIVED", "FAILED", "REPLIES", "REJECTED", "GAPS", "DROPPED", "BLOCKED"],
            "{t}"
        );
        assert_eq!(cells[4..], ["10", "7", "1", "0", "0", "1", "2", "5"], "{t}");
    }

    #[test]
    fn a_hostile_cell_stays_on_its_line() {
        let t = super::render(
            &["A", "B"],
            &[vec!["x\n   Deployed\x1b[2J".into(), "y".into()]],
        );
        assert_eq!(t.lines().count(), 2, "{t}");
        assert!(!t.contains('\x1b'), "{t}");
    }

    #[test]
    fn every_status_row_has_a_header() {
        let status = AppStatus {
            application: "a".into(),
            nodes: vec![],
            modules: vec![ModuleView {
                name: "led".into(),
                node: "field".into(),
                ..led()
            }],
            connections: vec![],
        };
        let t = super::status(&status);
        let lines: Vec<&str> = t.lines().collect();
        let header = lines.iter().position(|l| l.starts_with("MODULE")).unwrap();
        assert!(lines[header].ends_with("STATE"), "{t}");
        assert!(lines[header + 1].ends_with("{\"on\":true}"), "{t}");
    }

    #[test]
    fn a_crashed_module_and_failing_ports_are_explained() {
        let status = AppStatus {
            application: "a".into(),
            nodes: vec![],
            modules: vec![ModuleView {
                running: false,
                exit: Some("exit status: 101".into()),
                log_tail: vec!["aex-runtime: module code panicked at src/main.rs:9:5".into()],
                failures: vec![aex_proto::PortFailures {
                    port: "input reading".into(),
                    failed: 2,
                    reason: "the payload does not decode as its argument".into(),
                    conn: Some(aex_proto::ConnId(3)),
                    counter: 5,
                }],
                ..led()
            }],
            connections: vec![],
        };
        let t = super::status(&status);
        assert!(t.contains("no: exit status: 101"), "{t}");
        let problems = super::problems(&status);
        assert_eq!(
            problems,
            [
                "module `led` is not running: exit status: 101; the last lines of its log:\n  \
                 aex-runtime: module code panicked at src/main.rs:9:5",
                "module `led`: input `reading` failed 2 times; the last time (event 5 on \
                 connection #3): the payload does not decode as its argument"
            ]
        );
    }
}
