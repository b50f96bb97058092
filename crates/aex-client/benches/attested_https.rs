//! Attested HTTPS against plain HTTP, and metered functions over it (issue 19 item 6), on
//! loopback in one process: the examples' HTTP server (`aex-example-http`) serving attested
//! TLS (`aex-tls`) with evidence from a real simulated `sgx` backend (aex-tee's), and the
//! verifying client (`aex-client`), as `aex fetch` uses it.
//!
//! * **handshake**: `aex_client::connect` (TCP connect, TLS 1.3 handshake, the certificate's
//!   evidence appraised with the deployer's code), anonymous and with a client certificate;
//!   and the appraisal alone (`verify_certificate`).
//! * **requests per second**: one small `GET /` per connection (the server closes each, as
//!   the examples' server does), over attested HTTPS (a handshake each) and over plain HTTP.
//! * **metered over HTTPS**: the faas example's `thumbnail` on a 576 KiB picture, invoked
//!   with a client certificate at `/fn/thumbnail` (through the meter: clocks, heap, SHA-256 of
//!   input and output, a signed receipt in a header) and at `/plain/thumbnail` (the function
//!   alone), end to end as a client sees it. The persistent module's state commit before the
//!   answer (`Handle::call_committed`) is not in it: no node runs here (the `sealing` bench of
//!   aex-proto-bench measures a commit).
//!
//! Rounds alternate the variants compared, batch by batch, so that a shared machine's drift
//! hits both alike; figures are medians with the 10th and 90th percentiles over rounds, in wall
//! time and in the process's CPU time (client and server together: what other tenants of the
//! machine disturb least). `cargo bench -p aex-client --bench attested_https`.
#![allow(
    clippy::disallowed_macros,
    reason = "a benchmark: the figures go to stdout"
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aex_client::{Anchor, ClientKey, Policy};
use aex_crypto::Measurement;
use aex_example_http::{Request, Response};
use aex_metering::answer::{RECEIPT_HEADER, RECEIPT_KEY_NAME};
use aex_metering::{ClientId, Function, Meter, ReceiptKey, Signer};
use aex_tee::{SimSgxPlatform, TeeKind};
use aex_tls::{Attested, Identity, Limits, Options};
use cpu_time::ProcessTime;

#[path = "../../../examples/faas/thumb/src/thumbnail.rs"]
#[allow(
    unused_imports,
    reason = "its unit tests' imports: a bench target compiles `cfg(test)` code but not `#[test]` functions"
)]
mod thumbnail;

const FUNCTIONS: &[Function] = &[Function::new("thumbnail", thumbnail::thumbnail)];
const ROUNDS: usize = 31;
const TIMEOUT: Duration = Duration::from_secs(10);

#[path = "../tests/support/sim_tee.rs"]
mod sim_tee;
use sim_tee::Tee;

/// The routes both servers answer.
fn route(r: &Request<'_>, meter: &Mutex<Meter>, signer: &Signer) -> Response {
    match (r.method, r.path) {
        ("GET", "/") => Response::text(200, "hello"),
        ("POST", "/plain/thumbnail") => match thumbnail::thumbnail(r.body) {
            Ok(out) => Response::bytes(200, "application/octet-stream", out),
            Err(e) => Response::text(422, &e),
        },
        ("POST", "/fn/thumbnail") => {
            let Some(client) = r.client else {
                return Response::text(401, "no client key");
            };
            let done = meter
                .lock()
                .unwrap()
                .invoke_signed(signer, FUNCTIONS, ClientId(client.0), "thumbnail", r.body)
                .unwrap();
            let receipt = hex::encode(done.receipt.encode());
            match done.result {
                Ok(out) => Response::bytes(200, "application/octet-stream", out),
                Err(e) => Response::text(422, &e),
            }
            .header(RECEIPT_HEADER, receipt)
        }
        _ => Response::text(404, "not found"),
    }
}

struct Figures {
    median: f64,
    p10: f64,
    p90: f64,
}

fn figures(mut samples: Vec<f64>) -> Figures {
    samples.sort_by(f64::total_cmp);
    let q = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Figures {
        median: q(0.5),
        p10: q(0.1),
        p90: q(0.9),
    }
}

/// Mean wall and process-CPU microseconds per call over `n` calls.
fn batch(n: u32, mut call: impl FnMut()) -> (f64, f64) {
    let cpu = ProcessTime::now();
    let start = Instant::now();
    for _ in 0..n {
        call();
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(n);
    (per(start.elapsed()), per(cpu.elapsed()))
}

fn show(name: &str, f: &Figures, unit: &str) {
    println!(
        "{name:<44} median {:>9.1} {unit}  (p10 {:>9.1}, p90 {:>9.1})",
        f.median, f.p10, f.p90
    );
}

/// Runs `a` and `b` alternately, `n` calls per batch, [`ROUNDS`] rounds; prints both and
/// their per-round ratio, in wall and CPU time.
fn compare(what: &str, n: u32, names: [&str; 2], mut a: impl FnMut(), mut b: impl FnMut()) {
    let (mut wa, mut wb, mut ca, mut cb, mut rw, mut rc) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        let x = batch(n, &mut a);
        let y = batch(n, &mut b);
        wa.push(x.0);
        ca.push(x.1);
        wb.push(y.0);
        cb.push(y.1);
        rw.push(y.0 / x.0);
        rc.push(y.1 / x.1);
    }
    println!("{what}:");
    show(&format!("  wall {}", names[0]), &figures(wa.clone()), "us");
    show(&format!("  wall {}", names[1]), &figures(wb.clone()), "us");
    show(&format!("  cpu  {}", names[0]), &figures(ca), "us");
    show(&format!("  cpu  {}", names[1]), &figures(cb), "us");
    let (fw, fc) = (figures(rw), figures(rc));
    println!(
        "  {}/{} per round: wall median {:.3} (p10 {:.3}, p90 {:.3}), cpu median {:.3} (p10 {:.3}, p90 {:.3})",
        names[1], names[0], fw.median, fw.p10, fw.p90, fc.median, fc.p10, fc.p90
    );
    let (ma, mb) = (figures(wa).median, figures(wb).median);
    println!(
        "  requests/s (wall medians): {} {:.0}, {} {:.0}",
        names[0],
        1e6 / ma,
        names[1],
        1e6 / mb
    );
}

fn http(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    out
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(SimSgxPlatform::load_or_create(dir.path()).unwrap());
    let measurement = Measurement([7; 32]);
    let signer = Arc::new(Signer::new(ReceiptKey::generate(), measurement.0));
    let meter = Arc::new(Mutex::new(Meter::default()));
    let options = Options::default().extra(RECEIPT_KEY_NAME, &signer.public().0);
    let tee = Tee::serving(backend.clone(), measurement);
    let attested = Attested::new(Identity::generate().unwrap(), tee, &options).unwrap();
    let certificate = attested.certificate().to_vec();
    let (m, s) = (meter.clone(), signer.clone());
    let tls = aex_example_http::start_attested(
        "127.0.0.1:0".parse().unwrap(),
        attested,
        Limits::default(),
        move |r| route(r, &m, &s),
    )
    .unwrap();
    let (m, s) = (meter.clone(), signer.clone());
    let plain =
        aex_example_http::start_with("127.0.0.1:0".parse().unwrap(), move |r| route(r, &m, &s))
            .unwrap();
    let policy = Policy {
        kind: TeeKind::Sgx,
        anchor: Anchor::SimSgxRoot(backend.root_public_key().clone()),
        measurements: vec![measurement],
        allow_simulated: true,
        allow_debug: false,
        allow_insecure: false,
    };
    let key_dir = tempfile::tempdir().unwrap();
    let key = ClientKey::load_or_create(&key_dir.path().join("client.key")).unwrap();
    println!("{ROUNDS} rounds, variants alternating batch by batch; process CPU = client + server");

    // (b) Handshakes, with the evidence appraised.
    compare(
        "handshake (TCP connect + TLS 1.3 + evidence appraisal), per connection",
        20,
        ["anonymous", "client-cert"],
        || drop(aex_client::connect(tls, &policy, None, TIMEOUT).unwrap()),
        || drop(aex_client::connect(tls, &policy, Some(&key), TIMEOUT).unwrap()),
    );
    let appraise = figures(
        (0..ROUNDS)
            .map(|_| {
                batch(20, || {
                    aex_client::verify_certificate(&certificate, &policy).unwrap();
                })
                .1
            })
            .collect(),
    );
    show("appraisal alone (verify_certificate), cpu", &appraise, "us");

    // (c) Requests per second: attested HTTPS (a handshake per request) against plain HTTP.
    let get = b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
    compare(
        "GET / , one request per connection",
        20,
        ["http", "attested-https"],
        || drop(http(plain, get)),
        || {
            let (code, _) = aex_client::connect(tls, &policy, None, TIMEOUT)
                .unwrap()
                .request("GET", "/")
                .unwrap();
            assert_eq!(code, 200);
        },
    );

    // (a) Metering over attested HTTPS, end to end, on the example's function.
    for (w, h) in [(128, 96), (512, 384)] {
        let picture = thumbnail::test_picture(w, h);
        let call = |path: &str| {
            let answer = aex_client::connect(tls, &policy, Some(&key), TIMEOUT)
                .unwrap()
                .send("POST", path, &picture)
                .unwrap();
            assert_eq!(answer.status, 200);
            answer
        };
        assert!(call("/fn/thumbnail").header(RECEIPT_HEADER).is_some());
        compare(
            &format!(
                "thumbnail of a {w}x{h} picture ({} B) over attested HTTPS with a client certificate",
                picture.len()
            ),
            10,
            ["plain", "metered"],
            || drop(call("/plain/thumbnail")),
            || drop(call("/fn/thumbnail")),
        );
        let post = [
            format!(
                "POST /plain/thumbnail HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                picture.len()
            )
            .into_bytes(),
            picture.clone(),
        ]
        .concat();
        compare(
            &format!(
                "thumbnail of a {w}x{h} picture, unmetered: plain HTTP against attested HTTPS"
            ),
            10,
            ["http", "attested-https"],
            || drop(http(plain, &post)),
            || drop(call("/plain/thumbnail")),
        );
    }
}
