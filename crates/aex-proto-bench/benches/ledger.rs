//! Micro-benchmarks of the governance ledger (`aex-ledger`, issue 20), each beside a baseline
//! measured in the same run:
//!
//! * appending one ~150-byte entry, synced (`append`), and a batch of 100 with one sync
//!   (`append_all`), against writing and syncing the same bytes to a plain file;
//! * `verify` of a ledger of 100,000 entries with a signed root every 100, against SHA-256
//!   over the same bytes (the hashing floor);
//! * a receipt's size and `receipt::verify`, against one Ed25519 verification.
//!
//! `cargo bench -p aex-proto-bench --bench ledger`. `BENCHMARKS.md` lists the figures. The
//! append figures depend on the disk under `$TMPDIR`.

use std::hint::black_box;
use std::io::Write;

use aex_crypto::{verify_signature, SigningIdentity};
use aex_ledger::{receipt, verify, Expect, Ledger};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// A ballot-sized body.
const BODY: &[u8] = b"{module: \"pong\", node: \"node2\", measurement: \"5f0c5d4e97a1f8c3b2e6d7a9c0b1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9\", instance: 1}";

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("ledger-append");
    g.sample_size(20);
    let d = dir();
    let mut ledger = Ledger::create(&d.path().join("append.cbor")).expect("a ledger");
    g.throughput(Throughput::Elements(1));
    g.bench_function("append (synced)", |b| {
        b.iter(|| ledger.append("action", black_box(BODY)).expect("append"))
    });
    let mut plain = std::fs::File::create(d.path().join("plain")).expect("a file");
    let bytes = vec![0x5a; BODY.len() + 60];
    g.bench_function("baseline: write + sync_data", |b| {
        b.iter(|| {
            plain.write_all(&bytes).expect("write");
            plain.sync_data().expect("sync");
        })
    });
    g.throughput(Throughput::Elements(100));
    let batch: Vec<(&str, &[u8])> = (0..100).map(|_| ("action", BODY)).collect();
    g.bench_function("append_all 100 (one sync)", |b| {
        b.iter(|| ledger.append_all(black_box(&batch)).expect("append"))
    });
    g.finish();
}

/// A ledger of `n` entries with a signature entry after every 99; its bytes.
fn ledger_of(n: u64, signer: &SigningIdentity) -> (tempfile::TempDir, Vec<u8>, Ledger) {
    let d = dir();
    let path = d.path().join("big.cbor");
    let mut ledger = Ledger::create(&path).expect("a ledger");
    let batch: Vec<(&str, &[u8])> = (0..99).map(|_| ("action", BODY)).collect();
    while ledger.len() + 100 <= n {
        ledger.append_all(&batch).expect("append");
        ledger.sign(signer).expect("sign");
    }
    let bytes = std::fs::read(&path).expect("read");
    (d, bytes, ledger)
}

#[expect(
    clippy::disallowed_macros,
    reason = "a benchmark reports the sizes criterion does not measure"
)]
fn verify_ledger(c: &mut Criterion) {
    let mut g = c.benchmark_group("ledger-verify");
    g.sample_size(10);
    let signer = SigningIdentity::from_seed(&[7; 32]);
    let (_d, bytes, ledger) = ledger_of(100_000, &signer);
    eprintln!(
        "ledger of {} entries: {} bytes ({} per entry)",
        ledger.len(),
        bytes.len(),
        bytes.len() as u64 / ledger.len()
    );
    let expect = Expect {
        signers: vec![signer.public()],
        seen: None,
    };
    g.throughput(Throughput::Elements(ledger.len()));
    g.bench_function("verify 100,000 entries", |b| {
        b.iter(|| verify(black_box(&bytes), &expect).expect("verifies"))
    });
    g.bench_function("baseline: SHA-256 of the file", |b| {
        b.iter(|| aex_crypto::sha256(&[black_box(&bytes)]))
    });
    g.finish();

    let mut g = c.benchmark_group("ledger-receipt");
    let r = ledger.receipt(54_321).expect("a receipt");
    eprintln!("receipt for entry 54,321 of 100,000: {} bytes", r.len());
    let trusted = [signer.public()];
    g.bench_function("receipt::verify", |b| {
        b.iter(|| receipt::verify(black_box(&r), &trusted).expect("verifies"))
    });
    let sig = signer.sign(b"message");
    g.bench_function("baseline: one Ed25519 verify", |b| {
        b.iter(|| verify_signature(&trusted[0], black_box(b"message"), &sig).expect("verifies"))
    });
    g.finish();
}

criterion_group!(benches, append, verify_ledger);
criterion_main!(benches);
