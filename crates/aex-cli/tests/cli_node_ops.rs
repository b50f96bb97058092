//! What an operator gets from `aex node`: JSON logs (`--log-format json`) and the Prometheus
//! endpoint (`--metrics`), from a real node process.

use std::io::{Read, Write};
use std::net::TcpStream;

use aex_testkit::node::NodeOptions;
use aex_testkit::wait::{wait_until, PATIENCE};

#[test]
fn a_node_logs_one_json_object_per_line_and_serves_metrics_where_it_says() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeOptions::new("ops", dir.path().join("node"))
        .args(&["--log-format", "json", "--open", "--metrics", "127.0.0.1:0"])
        .start();

    // Open mode is announced at `warn`, the default level: at least that line is there.
    wait_until("the node to log in JSON", PATIENCE, || {
        let log = node.log();
        let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            return Err("no line yet".into());
        }
        for line in &lines {
            let value: serde_json::Value =
                serde_json::from_str(line).map_err(|e| format!("{line:?} is not JSON: {e}"))?;
            if value["level"].as_str().is_none() || value["fields"]["message"].as_str().is_none() {
                return Err(format!("{line:?} lacks level or fields.message"));
            }
        }
        if !log.contains("OPEN MODE") {
            return Err(format!("no open-mode warning in {log:?}"));
        }
        Ok(())
    });

    let addr = std::fs::read_to_string(node.data_dir.join("metrics.addr")).unwrap();
    let mut stream = TcpStream::connect(addr.trim()).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(
        response.contains("aex_node_info{node=\"ops\",tee=\"sgx\""),
        "{response}"
    );

    // What deployers trust for its simulated quotes, printed without reading files by hand.
    let data_dir = node.data_dir.display().to_string();
    let printed = aex_testkit::cli::run(
        None,
        &["node", "platform-key", "--data-dir", &data_dir],
        PATIENCE,
    )
    .ok();
    let file = std::fs::read_to_string(node.data_dir.join("platform.pub")).unwrap();
    assert_eq!(printed.stdout.trim(), file.trim());
    let elsewhere = dir.path().display().to_string();
    aex_testkit::cli::run(
        None,
        &["node", "platform-key", "--data-dir", &elsewhere],
        PATIENCE,
    )
    .code(1)
    .stderr_has(&[
        "only an sgx node has a platform key",
        "aex node provider-key",
    ]);
}
