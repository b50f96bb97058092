//! Micro-benchmarks of the per-event work every hop does: sealing and opening an event
//! (AES-256-GCM and ChaCha20-Poly1305), and encoding and decoding its frame, for a 64-byte
//! and a 16 KiB payload.
//!
//! `cargo bench -p aex-proto-bench --bench event`. The figures bound what the runtime and
//! the node agent spend per event besides I/O; `BENCHMARKS.md` at the repository root lists
//! them.

use std::hint::black_box;

use aex_crypto::{Algorithm, Nonce, SealingKey, SecretKey};
use aex_proto::frame::{decode, encode, LEN_PREFIX};
use aex_proto::{ConnId, Direction, EventKind, RecvChannel, SendChannel, ToModule};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const SIZES: [usize; 2] = [64, 16 * 1024];

fn channels(alg: Algorithm) -> (SendChannel, RecvChannel) {
    let key = SecretKey::from_bytes([0x42; 32]);
    (
        SendChannel::new(alg, &key, ConnId(7), Direction::Forward),
        RecvChannel::new(alg, &key, ConnId(7), Direction::Forward),
    )
}

/// Seal one event and open it again (a fresh counter each time, as on the wire).
fn seal_open(c: &mut Criterion) {
    let mut g = c.benchmark_group("seal+open");
    for alg in [Algorithm::AesGcm, Algorithm::ChaCha20Poly1305] {
        for size in SIZES {
            let payload = vec![0xa5u8; size];
            let (mut tx, mut rx) = channels(alg);
            g.throughput(Throughput::Bytes(size as u64));
            g.bench_with_input(BenchmarkId::new(alg.name(), size), &payload, |b, p| {
                b.iter(|| {
                    let ev = tx.seal(EventKind::Event, black_box(p)).unwrap();
                    rx.open(black_box(&ev)).unwrap()
                })
            });
        }
    }
    g.finish();
}

/// The AEAD alone (`SealingKey::seal`, no channel, no associated-data building), both
/// algorithms: what issue 15 compares (ChaCha20-Poly1305 against AES-256-GCM).
fn aead_seal(c: &mut Criterion) {
    let mut g = c.benchmark_group("aead-seal");
    let key = SecretKey::from_bytes([0x42; 32]);
    let aad = [0x17u8; 26];
    for alg in [Algorithm::AesGcm, Algorithm::ChaCha20Poly1305] {
        let k = SealingKey::new(alg, &key);
        for size in SIZES {
            let payload = vec![0xa5u8; size];
            let mut counter = 0u64;
            g.throughput(Throughput::Bytes(size as u64));
            g.bench_with_input(BenchmarkId::new(alg.name(), size), &payload, |b, p| {
                b.iter(|| {
                    counter += 1;
                    k.seal(Nonce::new(0, counter), black_box(&aad), black_box(p))
                })
            });
        }
    }
    g.finish();
}

/// Seal alone and open alone (AES-256-GCM, the default).
fn seal_and_open_apart(c: &mut Criterion) {
    let mut g = c.benchmark_group("seal");
    for size in SIZES {
        let payload = vec![0xa5u8; size];
        let (mut tx, _) = channels(Algorithm::AesGcm);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("aes-gcm", size), &payload, |b, p| {
            b.iter(|| tx.seal(EventKind::Event, black_box(p)).unwrap())
        });
    }
    g.finish();
    let mut g = c.benchmark_group("open");
    for size in SIZES {
        let payload = vec![0xa5u8; size];
        let (mut tx, _) = channels(Algorithm::AesGcm);
        let ev = tx.seal(EventKind::Event, &payload).unwrap();
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("aes-gcm", size), &ev, |b, ev| {
            b.iter(|| {
                // A fresh receiver each time: a receiver accepts a counter once.
                let (_, mut rx) = channels(Algorithm::AesGcm);
                rx.open(black_box(ev)).unwrap()
            })
        });
    }
    g.finish();
}

/// Encode a sealed event as a `ToModule::Event` frame, and decode it back.
fn frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");
    for size in SIZES {
        let (mut tx, _) = channels(Algorithm::AesGcm);
        let msg = ToModule::Event(tx.seal(EventKind::Event, &vec![0xa5u8; size]).unwrap());
        let bytes = encode(&msg);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("encode", size), &msg, |b, m| {
            b.iter(|| encode(black_box(m)))
        });
        g.bench_with_input(BenchmarkId::new("decode", size), &bytes, |b, f| {
            b.iter(|| decode::<ToModule>(black_box(&f[LEN_PREFIX..])).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, seal_open, aead_seal, seal_and_open_apart, frames);
criterion_main!(benches);
