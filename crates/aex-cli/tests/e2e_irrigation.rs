//! End to end: the irrigation example (issue 5), two stakeholders on three real nodes.
//!
//! The farm's `aex up` starts the nodes (the field node with its devices), deploys the farm's
//! application and, as `[[tenant]]`, insight's under insight's own identity. Then the physical
//! world plays its part through `aex device`: dry soil opens the valve, wet soil closes it.
//! Insight tries to drive the farm's valve every way it has (a second binding, the same driver
//! code without the grant) and fails; the valve never moves. Finally insight's gauge stops and
//! its aggregator's deadline alarm reaches the pager in time.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aex_testkit::cli::{self, COMMAND_TIMEOUT};
use aex_testkit::cluster::AppDir;
use aex_testkit::descriptor::{example_descriptor, write_toml};
use aex_testkit::identity::TestIdentity;
use aex_testkit::paths;
use aex_testkit::status::{AppStatus as Status, StatusExt};
use aex_testkit::{free_addr, process, wait_for, PATIENCE};

const EXAMPLE: &str = "irrigation";
/// The periodic sampling of both probes in this test (the example uses 1 s).
const PERIOD: &str = "200ms";
/// The aggregator's `#[deadline(input = reading, every = "3s")]`.
const DEADLINE: Duration = Duration::from_secs(3);
/// How late after the deadline the alarm may reach the pager (process scheduling on a loaded
/// 2-core machine; the alarm crosses no node boundary).
const TOLERANCE: Duration = Duration::from_secs(1);

/// `aex device -C <farm dir> field ARGS...`, which must succeed; its stdout.
fn device(farm: &AppDir, args: &[&str]) -> String {
    let mut all = vec!["device", "field"];
    all.extend(args);
    farm.aex(&all).ok().stdout.trim().to_owned()
}

/// The physical valve: `aex device field valve read`.
fn valve(farm: &AppDir) -> u32 {
    let out = device(farm, &["valve", "read"]);
    out.split_whitespace()
        .last()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("`aex device field valve read` printed {out:?}"))
}

/// Insight's `aex status --json` of the descriptor in `dir`.
fn insight_status(insight: &TestIdentity, dir: &Path) -> Status {
    let dir = dir.display().to_string();
    let run = cli::run_as(
        &insight.path,
        &["status", "--json", "-C", &dir],
        COMMAND_TIMEOUT,
    );
    Status::parse(run.ok().json())
}

/// Writes insight's descriptor (the example's, with `nodes` as addresses and absolute crate
/// paths) into `dir`, adjusted by `edit`. Its trust anchors stay where the example has them:
/// the cloud node's public platform key in the farm's node directory, and insight's own
/// provider key for the field node in insight's directory (`<farm>/insight`), where the farm's
/// `aex up`, as the nodes' operator, writes it.
fn insight_descriptor(
    dir: &Path,
    nodes: [std::net::SocketAddr; 2],
    edit: impl FnOnce(&mut toml::Table),
) {
    std::fs::create_dir_all(dir).unwrap();
    let mut doc = example_descriptor("irrigation/insight", &nodes);
    let farm = dir.parent().unwrap();
    for node in doc["node"].as_array_mut().unwrap() {
        if let Some(file) = node.get("platform_key_file").and_then(|v| v.as_str()) {
            let in_farm = file
                .strip_prefix("../")
                .expect("a path in the farm's directory");
            node["platform_key_file"] =
                toml::Value::String(farm.join(in_farm).display().to_string());
        }
        if let Some(file) = node.get("provider_key_file").and_then(|v| v.as_str()) {
            assert!(
                !file.starts_with(".."),
                "insight's provider key is insight's, not a file of the farm's: {file}"
            );
            let own = farm.join("insight").join(file);
            node["provider_key_file"] = toml::Value::String(own.display().to_string());
        }
    }
    for p in doc
        .get_mut("periodic")
        .and_then(|p| p.as_array_mut())
        .into_iter()
        .flatten()
    {
        p["every"] = toml::Value::String(PERIOD.into());
    }
    edit(&mut doc);
    write_toml(dir, &doc);
}

#[test]
fn two_stakeholders_irrigate_one_field_through_exclusive_drivers() {
    let insight = TestIdentity::named("insight");
    let farm = AppDir::new();
    let (field, edge, cloud) = (free_addr(), free_addr(), free_addr());
    let mut doc = example_descriptor(EXAMPLE, &[field, edge, cloud]);
    doc["periodic"][0]["every"] = toml::Value::String(PERIOD.into());
    doc["tenant"][0]["identity"] = toml::Value::String(insight.path.display().to_string());
    write_toml(farm.path(), &doc);
    let insight_dir = farm.path().join("insight");
    insight_descriptor(&insight_dir, [field, cloud], |_| {});

    let dir = farm.path().display().to_string();
    let up = cli::run_as(&farm.identity, &["up", "--detach", &dir], COMMAND_TIMEOUT);
    up.ok().stderr_has(&[
        "Tenant",
        "application `insight`",
        "Provider key",
        "probe.sample every 200 ms",
    ]);

    // Each stakeholder holds its own provider key for the field node, and only its own: the
    // farm's in the local node's directory, insight's in insight's directory.
    let field_dir = farm.path().join(".aex/nodes/field");
    let farm_key = field_dir.join(format!("provider-{}.key", &farm_identity_hex(&farm)[..16]));
    let insight_key = insight_dir.join(".aex/provider/field.key");
    let (farm_text, insight_text) = (read_key(&farm_key), read_key(&insight_key));
    assert_ne!(
        farm_text, insight_text,
        "two stakeholders, two provider keys"
    );
    let keys: Vec<String> = std::fs::read_dir(&field_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".key"))
        .collect();
    assert!(
        keys.iter().all(|k| k == "sancus-node.key"
            || k == "node-identity.key"
            || k.starts_with("provider-"))
            && !keys.iter().any(|k| k.contains(&insight.hex()[..16])),
        "no shared vendor key and no insight key in the farm's node directory: {keys:?}"
    );

    // Both probes sense the soil at 45 %: between the thresholds, the valve stays closed.
    let controller = wait_for("readings to reach the controller", PATIENCE, || {
        let state = farm.status().module("controller").state.clone()?;
        (state["readings"].as_u64()? >= 3).then_some(state)
    });
    assert_eq!(controller["moisture"], 45, "{controller}");
    assert_eq!(controller["valve"], "closed", "{controller}");
    assert_eq!(valve(&farm), 0);

    // Insight's gauge senses the same soil: its aggregator must have seen 45 % before the
    // soil dries, or the maximum checked below would be a race with its first reading.
    wait_for("insight to see the moist soil", PATIENCE, || {
        let state = insight_status(&insight, &insight_dir)
            .module("aggregator")
            .state
            .clone()?;
        (state["last"] == 45).then_some(())
    });

    // The soil dries: authentic readings make the controller open the valve.
    let started = Instant::now();
    device(&farm, &["soil", "set", "20"]);
    wait_for("dry soil to open the valve", PATIENCE, || {
        (valve(&farm) == 1).then_some(())
    });
    eprintln!("dry soil opened the valve in {:?}", started.elapsed());
    let status = farm.status();
    let valve_state = status.module("valve").state.clone().unwrap();
    assert_eq!(valve_state["valve"], "open", "{valve_state}");
    assert_eq!(valve_state["refused"], 0, "{valve_state}");

    // The edge node loses power: its agent and the controller die at once. Started again,
    // the node brings the persistent controller back by itself, with the valve history and
    // the water given, resumed from its sealed state; `aex up` then finds nothing to redo.
    let before = farm.status().module("controller").state.clone().unwrap();
    assert_eq!(before["valve"], "open", "{before}");
    assert!(before["watered"].as_u64().unwrap() >= 1, "{before}");
    let edge_dir = farm.path().join(".aex/nodes/edge");
    let edge_pid: u32 = std::fs::read_to_string(edge_dir.join("node.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let controller_pid = farm.status().module("controller").pid.unwrap();
    process::signal(edge_pid, process::Signal::Kill);
    process::assert_gone(
        controller_pid,
        "the controller to die with its node",
        PATIENCE,
    );
    cli::run_as(&farm.identity, &["up", "--detach", &dir], COMMAND_TIMEOUT).ok();
    let after = wait_for("the controller to take readings again", PATIENCE, || {
        let status = farm.status();
        let controller = status.module("controller");
        let state = controller.state.clone()?;
        let resumed = matches!(
            controller.persistence.as_ref()?.resume,
            Some(aex_proto::ResumeOutcome::Resumed { .. })
        );
        (resumed && state["readings"].as_u64()? > before["readings"].as_u64()?).then_some(state)
    });
    assert_eq!(after["valve"], "open", "{after}");
    assert_eq!(after["switches"], before["switches"], "{after}");
    assert_eq!(after["history"], before["history"], "{after}");
    assert!(
        after["watered"].as_u64() > before["watered"].as_u64(),
        "{after}"
    );
    assert_ne!(farm.status().module("controller").pid, Some(controller_pid));

    // The edge board is to be replaced: the farm moves the controller to another node. Its
    // sealed state goes along (the old instance commits its retirement before handing it
    // over), and the moved controller goes on from the same history.
    farm.aex_timeout(
        &["update", "controller", "--node", "cloud"],
        COMMAND_TIMEOUT,
    )
    .ok()
    .stderr_has(&["took over the state"]);
    let moved = wait_for("the moved controller to take readings", PATIENCE, || {
        let status = farm.status();
        let controller = status.module("controller");
        let state = controller.state.clone()?;
        (controller.node == "cloud" && state["readings"].as_u64()? > after["readings"].as_u64()?)
            .then_some(state)
    });
    assert_eq!(moved["history"], before["history"], "{moved}");
    assert!(
        moved["watered"].as_u64() > after["watered"].as_u64(),
        "{moved}"
    );
    // The new edge board is in: back to where the descriptor says, state and all.
    farm.aex_timeout(&["update", "controller", "--node", "edge"], COMMAND_TIMEOUT)
        .ok()
        .stderr_has(&["took over the state"]);
    let home = farm.status().module("controller").state.clone().unwrap();
    assert_eq!(home["history"], before["history"], "{home}");
    assert!(
        home["readings"].as_u64() >= moved["readings"].as_u64(),
        "{home}"
    );

    // Insight reads its own probe in the same soil and keeps statistics in the cloud.
    let stats = wait_for("insight to see the dry soil", PATIENCE, || {
        let state = insight_status(&insight, &insight_dir)
            .module("aggregator")
            .state
            .clone()?;
        (state["last"] == 20 && state["max"] == 45).then_some(state)
    });
    assert_eq!(stats["min"], 20, "{stats}");
    assert_eq!(stats["alarms"], 0, "{stats}");

    // Insight tries to drive the farm's valve. A second binding of the same device is refused
    // by the field node's TEE layer, with the reason, and nothing is left behind.
    let rogue_dir = farm.path().join("rogue");
    let farm_nodes = farm.path().join(".aex").join("nodes");
    insight_descriptor(&rogue_dir, [field, cloud], |doc| {
        doc["application"]["name"] = toml::Value::String("insight-valve".into());
        // Not a tenant of the farm's `aex up`: its descriptor pins the nodes' identities.
        for node in doc["node"].as_array_mut().unwrap() {
            let name = node["name"].as_str().unwrap().to_string();
            let pin = farm_nodes.join(name).join("node-identity.pub");
            let pin = toml::Value::String(pin.display().to_string());
            node.as_table_mut()
                .unwrap()
                .insert("identity_file".into(), pin);
        }
        let mut valve = toml::toml! {
            name = "valve"
            node = "field"
            devices = ["valve"]
        };
        let valve_crate = paths::example(EXAMPLE).join("valve");
        valve.insert("crate".into(), valve_crate.display().to_string().into());
        doc["module"] = toml::Value::Array(vec![toml::Value::Table(valve)]);
        doc["connection"] = toml::Value::Array(vec![toml::Value::Table(toml::toml! {
            name = "poke"
            from = "deployer"
            to = "valve.command"
            algorithm = "chacha20-poly1305"
        })]);
        doc.remove("periodic");
    });
    let rogue = rogue_dir.display().to_string();
    cli::run_as(&insight.path, &["deploy", &rogue], COMMAND_TIMEOUT)
        .code(1)
        .stderr_has(&[
            "valve",
            "device `valve` is held exclusively by another module",
        ]);

    // The same driver code without the grant: attested, keyed, commanded by its own deployer
    // over an authentic connection, and still refused by the TEE layer.
    let text = std::fs::read_to_string(rogue_dir.join("aex.toml")).unwrap();
    std::fs::write(
        rogue_dir.join("aex.toml"),
        text.replace("devices = [\"valve\"]", ""),
    )
    .unwrap();
    cli::run_as(&insight.path, &["deploy", &rogue], COMMAND_TIMEOUT).ok();
    for open in ["false", "true", "false"] {
        cli::run_as(
            &insight.path,
            &["output", "-C", &rogue, "poke", open],
            COMMAND_TIMEOUT,
        )
        .ok();
    }
    let refused = wait_for("the rogue driver to be refused", PATIENCE, || {
        let state = insight_status(&insight, &rogue_dir)
            .module("valve")
            .state
            .clone()?;
        (state["commands"].as_u64()? >= 3).then_some(state)
    });
    assert!(refused["refused"].as_u64().unwrap() >= 1, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or("")
            .contains("device `valve` is not granted to this module"),
        "{refused}"
    );
    assert_eq!(refused["switches"], 0, "{refused}");
    assert_eq!(valve(&farm), 1, "the farm's valve stayed open");

    // The farm updates its valve driver: the new instance takes the grant over at load, the
    // old one is cut off and unloaded, and the valve stays as it was.
    farm.aex_timeout(&["update", "valve"], COMMAND_TIMEOUT)
        .ok()
        .stderr_has(&["Updated"]);
    assert_eq!(valve(&farm), 1, "the valve stayed open across the update");
    assert!(device(&farm, &[])
        .lines()
        .any(|l| l.starts_with("valve") && l.ends_with("held")));
    // The new instance starts from its default state (it has no state to hand over), so the
    // controller's next command, sent with every reading, has it drive the valve open again.
    let fresh = wait_for(
        "the new valve instance to get the controller's command",
        PATIENCE,
        || {
            let state = farm.status().module("valve").state.clone()?;
            (state["commands"].as_u64()? >= 1).then_some(state)
        },
    );
    assert_eq!(fresh["valve"], "open", "{fresh}");
    assert_eq!(fresh["switches"], 1, "{fresh}");

    // It rains: the valve closes, driven by the new instance.
    device(&farm, &["soil", "set", "70"]);
    wait_for("wet soil to close the valve", PATIENCE, || {
        (valve(&farm) == 0).then_some(())
    });
    let status = farm.status();
    assert_eq!(
        status.module("controller").state.as_ref().unwrap()["valve"],
        "closed"
    );
    let switches = status.module("valve").state.clone().unwrap();
    assert_eq!(
        switches["switches"], 2,
        "the new instance drove the valve open, then closed: {switches}"
    );
    for c in &status.connections {
        assert_eq!(c.rejected, 0, "{}: {:?}", c.name, c);
    }

    // Insight's gauge stops: the aggregator's deadline alarm reaches the pager in time.
    cli::run_as(
        &insight.path,
        &["disable", "gauge", "-C", &insight_dir.display().to_string()],
        COMMAND_TIMEOUT,
    )
    .ok();
    let stopped = unix_ms();
    let pager = wait_for("the silence alarm to reach the pager", PATIENCE, || {
        let state = insight_status(&insight, &insight_dir)
            .module("pager")
            .state
            .clone()?;
        (state["alarms"].as_u64()? >= 1).then_some(state)
    });
    let arrived = pager["first_at_ms"].as_u64().expect("arrival time");
    let latency = Duration::from_millis(arrived.saturating_sub(stopped));
    eprintln!(
        "the pager got the alarm {} ms after the gauge was disabled (deadline {} ms, tolerance {} ms)",
        latency.as_millis(),
        DEADLINE.as_millis(),
        TOLERANCE.as_millis()
    );
    assert!(
        latency <= DEADLINE + TOLERANCE,
        "alarm after {latency:?}: {pager}"
    );
    assert!(
        pager["last"]
            .as_str()
            .unwrap_or("")
            .contains("no moisture reading"),
        "{pager}"
    );
    // The farm saw nothing of it.
    let valve_state = farm.status().module("valve").state.clone().unwrap();
    assert_eq!(valve_state["refused"], 0, "{valve_state}");
}

/// The farm's deployer key in hex.
fn farm_identity_hex(farm: &AppDir) -> String {
    let (identity, _) = aex_deploy::Identity::load_or_create(&farm.identity).unwrap();
    identity.public().to_string()
}

/// A provider key file's text, which must be private to its owner.
fn read_key(path: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(text.trim().len(), 64, "{}", path.display());
    text
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}
