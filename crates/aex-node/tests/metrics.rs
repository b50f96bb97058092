//! The Prometheus endpoint (`metrics = "ADDR"`): scraped over HTTP from real nodes that route
//! events to each other, and parsed with a Prometheus text-format parser.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use aex_proto::{ConnId, Direction, Endpoint, Event, EventKind, NodeRequest, Origin};
use aex_testkit::node::TestNode;
use aex_testkit::wait::{wait_until, PATIENCE};
use prometheus_parse::{Scrape, Value};

use crate::scripts::script;

/// A name no scrape may show: the node's operator must not learn stakeholders' names.
const SECRET_NAME: &str = "harvest-forecast-of-cooperative-b";

fn node(name: &str) -> TestNode {
    TestNode::start_with(name, |c| {
        c.metrics = Some("127.0.0.1:0".parse().expect("loopback address"))
    })
}

fn metrics_addr(node: &TestNode) -> SocketAddr {
    node.handle()
        .metrics_addr()
        .expect("the node serves metrics")
}

/// Sends `request` (a whole HTTP/1.1 request) and returns the status line and the body.
fn http(addr: SocketAddr, request: &str) -> (String, String) {
    try_http(addr, request).unwrap_or_else(|e| panic!("{e}"))
}

/// [`http`], with what went wrong as an error: a connection the endpoint closes at once
/// (every slot taken) is reset under a request already sent.
fn try_http(addr: SocketAddr, request: &str) -> Result<(String, String), String> {
    let mut stream =
        TcpStream::connect(addr).map_err(|e| format!("connect to the metrics endpoint: {e}"))?;
    stream
        .set_read_timeout(Some(PATIENCE))
        .map_err(|e| format!("read timeout: {e}"))?;
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send request: {e}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| format!("read the response: {e}"))?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {response:?}"))?;
    let status = head.lines().next().unwrap_or_default().to_string();
    Ok((status, body.to_string()))
}

/// The endpoint's text, and what the parser made of it.
fn scrape(addr: SocketAddr) -> (String, Scrape) {
    let (status, body) = http(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let parsed = Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("parses");
    (body, parsed)
}

/// The value of `metric` with `labels` (a subset of its labels), if the scrape has it.
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
            _ => panic!("{metric} is neither a counter nor a gauge"),
        })
}

fn event(conn: u32, counter: u64) -> Event {
    Event {
        conn: ConnId(conn),
        dir: Direction::Forward,
        kind: EventKind::Event,
        counter,
        ciphertext: vec![7; 40],
    }
}

fn route(conn: u32, to: Endpoint, from: Origin) -> NodeRequest {
    NodeRequest::Route {
        conn: ConnId(conn),
        dir: Direction::Forward,
        to,
        from,
    }
}

#[test]
fn metrics_count_what_each_route_hands_on_and_drops_and_name_no_stakeholder() {
    let a = node("field");
    let b = node("cloud");
    let sink = script(&b.scratch, "exec cat > /dev/null");
    let mut cb = b.session();
    cb.load(SECRET_NAME, &sink).unwrap();
    cb.request(route(
        7,
        Endpoint::Module(SECRET_NAME.into()),
        Origin::Peer(a.identity()),
    ))
    .unwrap();
    // A route to a module that is not loaded: what arrives on it is dropped.
    cb.request(route(
        8,
        Endpoint::Module("not-loaded".into()),
        Origin::Peer(a.identity()),
    ))
    .unwrap();
    let to_b = || Endpoint::Node {
        address: b.addr().to_string(),
        identity: b.identity(),
    };
    let mut ca = a.session();
    ca.request(route(7, to_b(), Origin::Deployer)).unwrap();
    ca.request(route(8, to_b(), Origin::Deployer)).unwrap();
    for counter in 1..=3 {
        ca.send_event(event(7, counter));
    }
    for counter in 1..=2 {
        ca.send_event(event(8, counter));
    }

    let conn = |c: &'static str| [("conn", c), ("dir", "forward")];
    wait_until("b to count the five events", PATIENCE, || {
        let (_, s) = scrape(metrics_addr(&b));
        let got = (
            value(&s, "aex_connection_events_routed_total", &conn("7")),
            value(&s, "aex_connection_events_dropped_total", &conn("8")),
        );
        match got {
            (Some(3.0), Some(2.0)) => Ok(()),
            other => Err(format!("routed on 7, dropped on 8: {other:?}")),
        }
    });

    let (text, s) = scrape(metrics_addr(&b));
    assert!(!text.contains(SECRET_NAME), "a module name leaked:\n{text}");
    assert!(!text.contains("not-loaded"), "a route's module name leaked");
    assert_eq!(value(&s, "aex_modules_loaded", &[]), Some(1.0));
    assert_eq!(value(&s, "aex_modules_running", &[]), Some(1.0));
    assert_eq!(value(&s, "aex_routes", &[]), Some(2.0));
    assert_eq!(
        value(&s, "aex_connection_events_dropped_total", &conn("7")),
        Some(0.0)
    );
    assert_eq!(value(&s, "aex_app_events_routed_total", &[]), Some(3.0));
    assert_eq!(value(&s, "aex_app_events_dropped_total", &[]), Some(2.0));
    let module = s
        .samples
        .iter()
        .find(|x| x.metric == "aex_module_running")
        .expect("a module series");
    let pseudonym = module.labels.get("module").expect("module label");
    assert_eq!(pseudonym.len(), 16, "8 bytes in hex: {pseudonym}");
    assert!(value(&s, "aex_node_info", &[("node", "cloud"), ("tee", "sgx")]).is_some());
    // What the stakeholder takes of the node, by its key's first 8 bytes.
    let owner = aex_proto::DeployerKey::of(&aex_testkit::node::test_deployer()).short();
    let owner = [("stakeholder", owner.as_str())];
    assert_eq!(value(&s, "aex_stakeholder_modules", &owner), Some(1.0));
    assert_eq!(value(&s, "aex_stakeholder_routes", &owner), Some(2.0));
    assert_eq!(
        value(&s, "aex_stakeholder_events_routed_total", &owner),
        Some(3.0)
    );
    assert_eq!(
        value(&s, "aex_stakeholder_events_dropped_total", &owner),
        Some(2.0)
    );
    assert!(value(&s, "aex_module_queue_messages", &[]).is_some());

    let (_, s) = scrape(metrics_addr(&a));
    assert_eq!(
        value(&s, "aex_connection_events_routed_total", &conn("7")),
        Some(3.0)
    );
    assert_eq!(
        value(&s, "aex_connection_events_routed_total", &conn("8")),
        Some(2.0)
    );
    let peer = [("peer", b.addr().to_string())];
    let peer: Vec<(&str, &str)> = peer.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(value(&s, "aex_peer_connected", &peer), Some(1.0));
    assert_eq!(
        value(&s, "aex_peer_events_forwarded_total", &peer),
        Some(5.0)
    );
    assert_eq!(value(&s, "aex_modules_loaded", &[]), Some(0.0));
}

#[test]
fn the_metrics_endpoint_serves_one_path_and_caps_connections_before_any_request() {
    let n = node("ops");
    let addr = metrics_addr(&n);
    assert_eq!(
        std::fs::read_to_string(n.data_dir.join("metrics.addr")).unwrap(),
        addr.to_string()
    );
    let (status, _) = http(
        addr,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _) = http(
        addr,
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");

    // Idle connections that never send a request hold every slot: the next one is closed at
    // once, without the node reading from it.
    let idle: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    wait_until("the idle connections to take every slot", PATIENCE, || {
        let mut extra = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        extra
            .set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|e| e.to_string())?;
        let mut byte = [0u8; 1];
        match extra.read(&mut byte) {
            Ok(0) => Ok(()),
            other => Err(format!("an extra connection was kept: {other:?}")),
        }
    });
    drop(idle);
    // Their slots come back once they are gone.
    wait_until(
        "a scrape after the idle connections closed",
        PATIENCE,
        || {
            // Until the node has seen them close, a new connection may still find every slot
            // taken and be reset: try again.
            let (status, body) = try_http(
                addr,
                "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            )?;
            (status == "HTTP/1.1 200 OK" && body.contains("aex_modules_loaded"))
                .then_some(())
                .ok_or_else(|| format!("{status}: no aex_modules_loaded"))
        },
    );
}

#[test]
fn a_bad_metrics_address_in_the_configuration_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("node.toml");
    std::fs::write(
        &file,
        "name = \"n\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"d\"\ntee = \"sgx\"\nopen = true\n\
         metrics = \"localhost\"\n",
    )
    .unwrap();
    let err = aex_node::NodeConfig::from_file(&file)
        .unwrap_err()
        .to_string();
    assert!(err.contains("metrics"), "{err}");
    assert!(err.contains("127.0.0.1:9464"), "{err}");
}

#[test]
fn per_connection_series_stop_at_the_limit_and_the_totals_keep_counting() {
    // 1,002 routes (to a module that is not loaded): 1,000 get series of their own, two are
    // counted only in their application's totals and in `aex_metrics_series_omitted`.
    let n = node("crowded");
    let mut session = n.session();
    for conn in 1..=1002 {
        session
            .request(route(
                conn,
                Endpoint::Module("not-loaded".into()),
                Origin::Deployer,
            ))
            .unwrap();
    }
    let (_, s) = scrape(metrics_addr(&n));
    let series = |metric: &str| s.samples.iter().filter(|x| x.metric == metric).count();
    assert_eq!(series("aex_connection_events_routed_total"), 1000);
    assert_eq!(series("aex_connection_events_dropped_total"), 1000);
    assert_eq!(value(&s, "aex_routes", &[]), Some(1002.0));
    assert_eq!(
        value(
            &s,
            "aex_metrics_series_omitted",
            &[("family", "connection")]
        ),
        Some(2.0)
    );
    assert_eq!(series("aex_app_events_routed_total"), 1);
    // An event on a route without a series of its own still counts in the totals.
    session.send_event(event(1002, 1));
    wait_until(
        "the application's total to count the drop",
        PATIENCE,
        || {
            let (_, s) = scrape(metrics_addr(&n));
            match value(&s, "aex_app_events_dropped_total", &[]) {
                Some(1.0) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    );
}
