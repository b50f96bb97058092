//! Micro-benchmarks of what a persistent module's commit costs besides the node's I/O
//! (issue 16): sealing its state into a blob (a fresh HKDF blob key, then AES-256-GCM) for a
//! 1 KiB and a 1 MiB state, against the baseline of sealing one 64-byte event in the same run;
//! and the simulated platform's counter advance (a 72-byte file written, synced, renamed, and
//! its directory synced), against the baseline of writing the same file without syncing.
//!
//! `cargo bench -p aex-proto-bench --bench sealing`. `BENCHMARKS.md` lists the figures. The
//! counter's figures depend on the disk under `$TMPDIR`.

use std::hint::black_box;

use aex_crypto::seal::seal_blob;
use aex_crypto::{Algorithm, Nonce, SealingKey, SecretKey};
use aex_tee::{CounterRequest, SealingPlatform};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// A blob of `size` bytes of state, sealed; and the one-event baseline.
fn seal_state(c: &mut Criterion) {
    let mut g = c.benchmark_group("seal-state");
    let key = SecretKey::from_bytes([0x42; 32]);
    for size in [1 << 10, 1 << 20] {
        let state = vec![0xa5u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("blob", size), &state, |b, s| {
            b.iter(|| seal_blob(&key, b"aex/v1 sealed state", black_box(s)))
        });
    }
    let event = SealingKey::new(Algorithm::AesGcm, &key);
    let payload = [0xa5u8; 64];
    let mut counter = 0u64;
    g.throughput(Throughput::Bytes(64));
    g.bench_function(BenchmarkId::new("event-baseline", 64), |b| {
        b.iter(|| {
            counter += 1;
            event.seal(Nonce::new(0, counter), b"aad", black_box(&payload))
        })
    });
    g.finish();
}

/// One compare-and-advance of a platform counter, durable; and the same write unsynced.
fn counter(c: &mut Criterion) {
    let mut g = c.benchmark_group("platform-counter");
    let dir = std::env::temp_dir().join(format!("aex-bench-counter-{}", std::process::id()));
    let platform = SealingPlatform::load_or_create(&dir).expect("a platform in the temp dir");
    let key = SecretKey::from_bytes([0x42; 32]);
    let (_, created) = platform
        .counter(&key, CounterRequest::Create, &[0; 16])
        .expect("a counter");
    let mut value = 0u64;
    g.bench_function("advance (synced)", |b| {
        b.iter(|| {
            let (_, answer) = platform
                .counter(
                    &key,
                    CounterRequest::Advance(created.id, value, [1; 32]),
                    &[1; 16],
                )
                .expect("advance");
            value = answer.value;
        })
    });
    let plain = dir.join("unsynced");
    g.bench_function("write (unsynced baseline)", |b| {
        b.iter(|| {
            let tmp = plain.with_extension("tmp");
            std::fs::write(&tmp, [0u8; 72]).unwrap();
            std::fs::rename(&tmp, &plain).unwrap();
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, seal_state, counter);
criterion_main!(benches);
