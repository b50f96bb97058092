//! The measurement shared by the `metering` bench (counting allocator installed, as in a
//! metered module with `count_heap!()`) and the `metering_system_alloc` bench (the system
//! allocator: a metered module without heap counting): the `metered` test module's JSON
//! validation on documents of three sizes, and the faas example's `thumbnail` on pictures of
//! three sizes, each called directly (`plain`) and through
//! `Meter::invoke_signed` (`metered`: thread CPU clock, wall clock, heap peak when counted,
//! SHA-256 of input and output, an Ed25519-signed receipt).
//!
//! Rounds alternate the variants (a batch of `plain` calls, then a batch of `metered` calls,
//! and so on), so that the machine's drift (other tenants of a shared machine) hits both
//! alike; each round gives one mean per call per variant, and the figures are the median and
//! the 10th and 90th percentiles over the rounds, and the median of the per-round ratios.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cpu_time::ThreadTime;

use aex_metering::{ClientId, Function, Meter, ReceiptKey, Signer};

#[path = "../../../aex-testkit/modules/metered/src/validate.rs"]
mod validate;

#[path = "../../../../examples/faas/thumb/src/thumbnail.rs"]
#[allow(
    unused_imports,
    reason = "its unit tests' imports: a bench target compiles `cfg(test)` code but not `#[test]` functions"
)]
mod thumbnail;

const FUNCTIONS: &[Function] = &[
    Function::new("validate", validate::validate_json),
    Function::new("thumbnail", thumbnail::thumbnail),
];

/// A function measured and the inputs it is measured on.
struct Workload {
    name: &'static str,
    run: fn(&[u8]) -> Result<Vec<u8>, String>,
    inputs: Vec<Vec<u8>>,
}

fn workloads() -> Vec<Workload> {
    vec![
        Workload {
            name: "validate",
            run: validate::validate_json,
            inputs: [1 << 10, 16 << 10, 256 << 10].map(document).to_vec(),
        },
        Workload {
            name: "thumbnail",
            run: thumbnail::thumbnail,
            // 36 KiB, 576 KiB and 2.3 MiB of RGB.
            inputs: [(128, 96), (512, 384), (1024, 768)]
                .map(|(w, h)| thumbnail::test_picture(w, h))
                .to_vec(),
        },
    ]
}

/// Rounds per size, and the least time one batch of a round takes.
const ROUNDS: usize = 41;
const BATCH_TIME: Duration = Duration::from_millis(40);

/// A JSON document of about `size` bytes: sensor records, as a function service would get.
pub fn document(size: usize) -> Vec<u8> {
    let mut out = String::from("[");
    let mut i = 0u64;
    while out.len() < size {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            "{{\"id\":{i},\"name\":\"sensor-{i}\",\"ok\":{},\"readings\":[{}.25,{}.5,-{}.125],\"tags\":[\"field\",\"row-{}\"]}}",
            i.is_multiple_of(3),
            i * 7 % 100,
            i * 13 % 100,
            i % 50,
            i % 17
        ));
        i += 1;
    }
    out.push(']');
    out.into_bytes()
}

/// Quantile `q` of sorted samples.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let at = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[at]
}

/// Calls per batch so that one batch takes about [`BATCH_TIME`].
fn calls_per_batch(mut call: impl FnMut()) -> u32 {
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < BATCH_TIME / 4 {
        call();
        n += 1;
    }
    (n * 4).max(1)
}

/// Mean nanoseconds per call over one batch of `n` calls: wall time, and this thread's CPU
/// time (what a shared machine's other tenants disturb least: time the thread was preempted
/// is not in it).
fn batch(n: u32, mut call: impl FnMut()) -> (f64, f64) {
    let cpu = ThreadTime::now();
    let start = Instant::now();
    for _ in 0..n {
        call();
    }
    let wall = start.elapsed().as_nanos() as f64 / f64::from(n);
    (wall, cpu.elapsed().as_nanos() as f64 / f64::from(n))
}

struct Figures {
    median: f64,
    p10: f64,
    p90: f64,
}

fn figures(mut samples: Vec<f64>) -> Figures {
    samples.sort_by(f64::total_cmp);
    Figures {
        median: quantile(&samples, 0.5),
        p10: quantile(&samples, 0.1),
        p90: quantile(&samples, 0.9),
    }
}

fn show(name: &str, size: usize, f: &Figures) {
    println!(
        "{name:<34} {size:>8} B  median {:>10.1} us  (p10 {:>10.1}, p90 {:>10.1})  {:>9.0} calls/s  {:>7.1} MB/s",
        f.median / 1e3,
        f.p10 / 1e3,
        f.p90 / 1e3,
        1e9 / f.median,
        size as f64 / f.median * 1e3
    );
}

/// Runs the measurement under the binary's `allocator` (named for the output): without the
/// counting allocator the meter finds no heap counter and leaves the heap uncounted.
pub fn run(allocator: &str) {
    let metered = true;
    let signer = Signer::new(ReceiptKey::from_seed(&[0x42; 32]), [7; 32]);
    let mut meter = Meter::default();
    let client = ClientId([0xc1; 32]);
    println!("allocator: {allocator}; {ROUNDS} rounds per size, batches of about {BATCH_TIME:?}");
    for (workload, doc) in workloads()
        .iter()
        .flat_map(|w| w.inputs.iter().map(move |i| (w, i)))
    {
        let (name, run) = (workload.name, workload.run);
        let size = doc.len();
        assert!(run(doc).is_ok(), "{name} takes its input");
        let mut plain_call = || {
            black_box(run(black_box(doc)).ok());
        };
        let n = calls_per_batch(&mut plain_call);
        let mut plain = [vec![], vec![]];
        let mut with = [vec![], vec![]];
        let mut ratios = [vec![], vec![]];
        for _ in 0..ROUNDS {
            let p = batch(n, &mut plain_call);
            plain[0].push(p.0);
            plain[1].push(p.1);
            if metered {
                let m = batch(n, || {
                    let done = meter
                        .invoke_signed(&signer, FUNCTIONS, client, name, black_box(doc))
                        .expect("a function");
                    black_box(done);
                });
                with[0].push(m.0);
                with[1].push(m.1);
                ratios[0].push(m.0 / p.0);
                ratios[1].push(m.1 / p.1);
            }
        }
        for (i, clock) in ["wall", "cpu"].into_iter().enumerate() {
            show(
                &format!("{clock} {name}/plain ({allocator})"),
                size,
                &figures(std::mem::take(&mut plain[i])),
            );
            if metered {
                show(
                    &format!("{clock} {name}/metered"),
                    size,
                    &figures(std::mem::take(&mut with[i])),
                );
                let r = figures(std::mem::take(&mut ratios[i]));
                println!(
                    "{:<34} {size:>8} B  metered/plain per round: median {:.4} (p10 {:.4}, p90 {:.4}): overhead {:+.2} %",
                    format!("{clock} ratio"),
                    r.median,
                    r.p10,
                    r.p90,
                    (r.median - 1.0) * 100.0
                );
            }
        }
    }
    if metered {
        // What the meter adds besides the function, each part alone (CPU time).
        let key = ReceiptKey::from_seed(&[0x42; 32]);
        let mut receipt = meter
            .invoke_signed(&signer, FUNCTIONS, client, "validate", b"1")
            .expect("validate")
            .receipt;
        let sign = figures(
            (0..ROUNDS)
                .map(|_| batch(200, || key.sign(black_box(&mut receipt))).1)
                .collect(),
        );
        println!(
            "parts: signing a receipt: median {:.1} us",
            sign.median / 1e3
        );
        for size in [1 << 10, 16 << 10, 256 << 10, 576 << 10] {
            let doc = document(size);
            let hash = figures(
                (0..ROUNDS)
                    .map(|_| {
                        batch(50, || {
                            black_box(aex_crypto::sha256(&[black_box(&doc)]));
                        })
                        .1
                    })
                    .collect(),
            );
            println!(
                "parts: SHA-256 of the {}-byte input: median {:.1} us",
                doc.len(),
                hash.median / 1e3
            );
        }
    }
}
