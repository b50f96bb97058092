//! `aex dashboard` in a real headless browser: Debian's chromium, driven through chromedriver
//! (WebDriver), on the ping-pong example deployed with `aex up`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aex_testkit::cli::{self, COMMAND_TIMEOUT};
use aex_testkit::cluster::AppDir;
use aex_testkit::descriptor::copy_example;
use aex_testkit::process::Captured;
use aex_testkit::{free_addr, wait_for, PATIENCE};
use fantoccini::{ClientBuilder, Locator};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The status line and body of a GET of `path_and_query` on `addr` with `host` as Host.
fn get(addr: &str, host: &str, path_and_query: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the dashboard");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        stream,
        "GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (head.to_string(), body.to_string())
}

/// chromedriver on a free port, killed on drop.
struct Driver(std::process::Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "long: a browser on a running example (needs Debian's chromium and chromium-driver)"]
fn the_dashboard_shows_the_live_application_and_a_module_s_details() {
    if !std::path::Path::new(CHROMEDRIVER).exists() {
        let why = format!("{CHROMEDRIVER} is missing: `apt-get install chromium chromium-driver`");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        eprintln!("SKIPPED: {why}");
        return;
    }
    let app = AppDir::new();
    copy_example(app.path(), free_addr(), free_addr());
    let dir = app.path().display().to_string();
    cli::run(None, &["up", "--detach", &dir], COMMAND_TIMEOUT).ok();

    let mut cmd = cli::aex();
    cmd.args(["dashboard", &dir, "--every", "300ms"]);
    let dashboard = Captured::spawn(cmd, "aex dashboard");
    let mut url = String::new();
    wait_for("the dashboard's URL on stdout", PATIENCE, || {
        url = dashboard.stdout_so_far().lines().next()?.trim().to_string();
        url.starts_with("http://").then_some(())
    });
    let addr = url["http://".len()..]
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let token = url.split("token=").nth(1).unwrap().to_string();

    // What a stranger gets: no token, a wrong one, another site's name for this address.
    assert!(get(&addr, &addr, "/").0.starts_with("HTTP/1.1 403"));
    assert!(get(&addr, &addr, "/snapshot?token=00")
        .0
        .starts_with("HTTP/1.1 403"));
    let rebound = get(
        &addr,
        "attacker.example",
        &format!("/snapshot?token={token}"),
    );
    assert!(rebound.0.starts_with("HTTP/1.1 421"), "{}", rebound.0);
    let (head, body) = get(&addr, &addr, &format!("/snapshot?token={token}"));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        !head.to_lowercase().contains("access-control-allow"),
        "{head}"
    );
    assert!(body.contains("\"application\":\"ping-pong\""), "{body}");

    let port = free_addr().port();
    let driver = Driver(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
        port,
    );
    wait_for("chromedriver to listen", PATIENCE, || {
        TcpStream::connect(("127.0.0.1", driver.1)).ok().map(|_| ())
    });

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let shot = runtime.block_on(async {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--window-size=1400,1000"]}),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let browser = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", driver.1))
            .await
            .expect("a chromium session");
        browser.goto(&url).await.expect("load the page");

        // Live figures: a run of pings makes ping-to-pong's rate climb above zero.
        let mut kick = cli::aex();
        kick.args([
            "output",
            "-C",
            &dir,
            "kick",
            r#"{"count": 200000, "size": 64}"#,
        ]);
        let kicked = kick.output().expect("aex output");
        assert!(kicked.status.success(), "{kicked:?}");
        let rate_cell = Locator::Css("#conn-ping-to-pong td.rate");
        let deadline = Instant::now() + PATIENCE;
        let mut last = String::new();
        loop {
            if let Ok(cell) = browser.find(rate_cell).await {
                last = cell.text().await.unwrap_or_default();
                if last.parse::<f64>().is_ok_and(|rate| rate > 0.0) {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "the rate stayed at {last:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // A click on a module shows its details (the graph is redrawn at every snapshot: retry
        // a click that found the element gone).
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(module) = browser
                .find(Locator::Css(r#"g[data-module="pong"] rect"#))
                .await
            {
                let _ = module.click().await;
            }
            let title = match browser.find(Locator::Css("#details h2")).await {
                Ok(h) => h.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if title == "pong" {
                break;
            }
            assert!(Instant::now() < deadline, "the details show {title:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let details = browser
            .find(Locator::Css("#details"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            details.contains("measurement") && details.contains("node2"),
            "{details}"
        );
        let png = browser.screenshot().await.expect("a screenshot");
        browser.close().await.expect("close the session");
        png
    });
    let artifact = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&artifact, &shot).unwrap();
    eprintln!("screenshot: {} ({} bytes)", artifact.display(), shot.len());
    assert!(shot.starts_with(b"\x89PNG"), "a PNG");

    drop(dashboard);
    cli::run(None, &["down", &dir], COMMAND_TIMEOUT).ok();
}
