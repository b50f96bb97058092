//! End to end: the thermostat example's periodic sensor and the heater's deadline, on real
//! nodes. The node's periodic trigger drives a chain of authentic events (sensor → heater);
//! once the sensor stops (disabled under its module key, so it refuses further ticks), the
//! heater's deadline fires inside the heater and its authentic alarm crosses to the panel on
//! the other node within the deadline plus [`TOLERANCE`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aex_testkit::cli::{self, COMMAND_TIMEOUT};
use aex_testkit::cluster::AppDir;
use aex_testkit::descriptor::{example_descriptor, write_toml};
use aex_testkit::status::StatusExt;
use aex_testkit::{free_addr, wait_for, PATIENCE};

const EXAMPLE: &str = "thermostat";
/// The heater's `#[deadline(input = temperature, every = "2s")]`.
const DEADLINE: Duration = Duration::from_secs(2);
/// The sensor's period in this test (the example uses 1 s).
const PERIOD: Duration = Duration::from_millis(200);
/// How late after the deadline the alarm may reach the panel: scheduling of three processes
/// on two nodes of a loaded test machine, one hop between nodes.
const TOLERANCE: Duration = Duration::from_secs(1);

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn periodic_sensor_feeds_the_heater_and_its_silence_raises_an_alarm_in_time() {
    let app = AppDir::new();
    let mut doc = example_descriptor(EXAMPLE, &[free_addr(), free_addr()]);
    let periodic = doc["periodic"]
        .as_array_mut()
        .expect("[[periodic]] entries");
    periodic[0]["every"] = toml::Value::String(format!("{}ms", PERIOD.as_millis()));
    write_toml(app.path(), &doc);
    let dir = app.path().display().to_string();
    cli::run(None, &["up", "--detach", &dir], COMMAND_TIMEOUT)
        .ok()
        .stderr_has(&["Deployed", "sensor.sample every 200 ms"]);

    // The node's ticks drive sensor → heater end to end, with no alarm while they flow.
    let heater = wait_for("periodic readings to reach the heater", PATIENCE, || {
        let status = app.status();
        let heater = status.module("heater").state.clone()?;
        (heater["readings"].as_u64()? >= 3).then_some(heater)
    });
    assert_eq!(heater["last_celsius"], 18.0, "{heater}");
    assert_eq!(
        heater["on"], true,
        "18 °C is below the 20 °C set point: {heater}"
    );
    let status = app.status();
    assert_eq!(status.module("heater").state.as_ref().unwrap()["alarms"], 0);
    assert_eq!(status.module("panel").state.as_ref().unwrap()["alarms"], 0);
    let ticked = status.counters("sensor.temperature->heater.temperature");
    assert!(ticked.received >= 3 && ticked.rejected == 0, "{ticked:?}");

    // Stop the sender: a disabled sensor drops its keys and refuses every later tick.
    let before = unix_ms();
    app.aex(&["disable", "sensor"]).ok();
    let stopped = unix_ms();

    let panel = wait_for("the alarm to reach the panel", PATIENCE, || {
        let status = app.status();
        let panel = status.module("panel").state.clone()?;
        (panel["alarms"].as_u64()? >= 1).then_some(panel)
    });
    let arrived = panel["first_at_ms"].as_u64().expect("arrival time");
    let latency = Duration::from_millis(arrived.saturating_sub(stopped));
    eprintln!(
        "alarm reached the panel {} ms after the sensor was disabled (deadline {} ms, tolerance {} ms)",
        latency.as_millis(),
        DEADLINE.as_millis(),
        TOLERANCE.as_millis()
    );
    assert!(
        latency <= DEADLINE + TOLERANCE,
        "alarm {latency:?} after the sensor stopped: {panel}"
    );
    // Not early either: the last reading was accepted at most one period before `disable`.
    let earliest = before + (DEADLINE - PERIOD).as_millis() as u64 - 100;
    assert!(
        arrived >= earliest,
        "alarm too early: {arrived} < {earliest}: {panel}"
    );
    assert!(
        panel["last"].as_str().unwrap_or("").contains("heater off"),
        "{panel}"
    );

    // The silence goes on: the heater raises one alarm per silent period, not a storm. The
    // panel's alarms arrive a period apart (usually two of them when this looks).
    let panel = wait_for("a second alarm to reach the panel", PATIENCE, || {
        let panel = app.status().module("panel").state.clone()?;
        (panel["alarms"].as_u64()? >= 2).then_some(panel)
    });
    // Asked after the panel (`aex status` asks modules one after the other): the heater has
    // raised every alarm the panel shows, and at most the next one since.
    let heater = app.status().module("heater").state.clone();
    let heater = heater.expect("the heater reports its state");
    assert_eq!(
        heater["on"], false,
        "the heater switched itself off: {heater}"
    );
    let shown = panel["alarms"].as_u64().expect("the panel counts alarms");
    let raised = heater["alarms"]
        .as_u64()
        .expect("the heater counts its alarms");
    assert!(
        (shown..=shown + 1).contains(&raised),
        "the heater raised {raised} alarms, the panel showed {shown}: {heater}"
    );
    // The runtime counts its deadline alarms itself too (`aex status`, the dashboard): as
    // many as the heater's code saw, at least.
    let status = app.status();
    let counted = &status.module("heater").alarms;
    assert_eq!(counted.len(), 1, "{counted:?}");
    assert_eq!(counted[0].input, "temperature");
    assert!(counted[0].fired >= raised, "{counted:?} < {raised}");
    assert!(counted[0].last_ms > 0);
    let first = panel["first_at_ms"].as_u64().expect("first arrival");
    let latest = panel["last_at_ms"].as_u64().expect("latest arrival");
    let apart = Duration::from_millis(latest.saturating_sub(first));
    let expected = DEADLINE * (shown - 1) as u32;
    assert!(
        apart + TOLERANCE >= expected && apart <= expected + TOLERANCE,
        "{shown} alarms {apart:?} apart (deadline {DEADLINE:?}): {panel}"
    );

    cli::run(None, &["down", &dir], COMMAND_TIMEOUT).ok();
}

/// A module that is no endpoint of any connection is armed by the deployer's `Start` (no key
/// arms it), so the node's ticks run its periodic entry: the module runtime refuses ticks
/// before a module is armed (it may still be waiting for the state it must not run without).
#[test]
fn a_module_with_only_a_periodic_entry_is_started_by_deploy_and_ticks() {
    let app = AppDir::new();
    let mut doc = example_descriptor(EXAMPLE, &[free_addr(), free_addr()]);
    let keep = |table: &toml::Value, key: &str, value: &str| table[key].as_str() == Some(value);
    let array = |doc: &mut toml::Table, key: &str| -> Vec<toml::Value> {
        doc[key].as_array().expect("an array of tables").clone()
    };
    let nodes: Vec<_> = array(&mut doc, "node")
        .into_iter()
        .filter(|n| keep(n, "name", "edge"))
        .collect();
    let modules: Vec<_> = array(&mut doc, "module")
        .into_iter()
        .filter(|m| keep(m, "name", "sensor"))
        .collect();
    doc.insert("node".into(), toml::Value::Array(nodes));
    doc.insert("module".into(), toml::Value::Array(modules));
    doc.remove("connection");
    doc["periodic"][0]["every"] = toml::Value::String("100ms".into());
    write_toml(app.path(), &doc);
    let dir = app.path().display().to_string();
    cli::run(None, &["up", "--detach", &dir], COMMAND_TIMEOUT)
        .ok()
        .stderr_has(&["Deployed", "sensor.sample every 100 ms"]);

    // Nothing but the deployer's `Start` armed it: no key, no call yet.
    let sensor = app.status().module("sensor").clone();
    assert!(sensor.armed, "the sensor was never started: {sensor:?}");
    let readings = wait_for("the sensor's ticks to run", PATIENCE, || {
        let n = app.call("sensor", "readings", None).as_u64()?;
        (n >= 3).then_some(n)
    });
    let sensor = app.status().module("sensor").clone();
    assert_eq!(sensor.rejected_ticks, 0, "{readings} readings: {sensor:?}");
    cli::run(None, &["down", &dir], COMMAND_TIMEOUT).ok();
}

/// `aex disable heater; aex deploy` leaves no stale connection behind: the sensor's periodic
/// readings reach the new heater instance on the same connection id, and none is sealed under
/// the old key into a route that leads nowhere. (The deployer used to forget the disabled
/// instance's connections: the deploy keyed them under new ids, and the sensor went on
/// sealing each reading under the old id too, which its nodes dropped, one a period.)
#[test]
fn disable_then_deploy_leaves_no_stale_route() {
    const TEMPERATURE: &str = "sensor.temperature->heater.temperature";
    let app = AppDir::new();
    let mut doc = example_descriptor(EXAMPLE, &[free_addr(), free_addr()]);
    doc["periodic"][0]["every"] = toml::Value::String(format!("{}ms", PERIOD.as_millis()));
    write_toml(app.path(), &doc);
    let dir = app.path().display().to_string();
    cli::run(None, &["up", "--detach", &dir], COMMAND_TIMEOUT).ok();
    let id = app.conn_id(TEMPERATURE);
    let readings = |status: &aex_testkit::status::AppStatus| {
        status.module("heater").state.as_ref()?["readings"].as_u64()
    };
    wait_for("readings to reach the heater", PATIENCE, || {
        (readings(&app.status())? >= 2).then_some(())
    });

    app.aex(&["disable", "heater"]).ok();
    app.deploy().ok();
    // The new instance counts from zero.
    let status = wait_for("readings to reach the new heater", PATIENCE, || {
        let status = app.status();
        (readings(&status)? >= 2).then_some(status)
    });
    let dropped = |status: &aex_testkit::status::AppStatus| -> u64 {
        status.nodes.iter().map(|n| n.dropped).sum()
    };
    let (before, seen) = (dropped(&status), readings(&status).unwrap_or(0));
    // Five more periods: each would have dropped a reading sealed under the old key.
    let status = wait_for("five more readings", PATIENCE, || {
        let status = app.status();
        (readings(&status)? >= seen + 5).then_some(status)
    });
    assert_eq!(
        (dropped(&status), status.module("heater").rejected_unknown),
        (before, 0),
        "events of a stale connection: {status:#?}"
    );
    let temperature = status.counters(TEMPERATURE);
    assert_eq!(
        (temperature.rejected, temperature.gaps),
        (0, 0),
        "{status:#?}"
    );
    assert_eq!(app.conn_id(TEMPERATURE), id, "re-keyed under its id");
    cli::run(None, &["down", &dir], COMMAND_TIMEOUT).ok();
}
