//! Known-answer vectors pinning the exact bytes of the version 1 wire format.
//!
//! The event ciphertexts were cross-checked with an independent implementation (OpenSSL via
//! Python's `cryptography`: `AESGCM(key).encrypt(nonce, b"ping", aad)` with the nonce and AAD
//! layouts of docs/PROTOCOL.md §7). Any change to these bytes is a wire-format change and needs
//! a new `WIRE_VERSION`.

use aex_crypto::{Algorithm, SecretKey};
use aex_proto::frame::{decode, encode, LEN_PREFIX};
use aex_proto::{ConnId, Direction, EventKind, RecvChannel, SendChannel, ToModule};

#[test]
fn frame_bytes() {
    // length 2, version 1, variant index 3 (Stats).
    assert_eq!(encode(&ToModule::Stats), [0, 0, 0, 2, 1, 3]);
    assert_eq!(decode::<ToModule>(&[1, 4]).unwrap(), ToModule::Shutdown);
}

#[test]
fn sealed_event_bytes() {
    let key = SecretKey::from_bytes([0x42; 32]);
    let mut tx = SendChannel::new(Algorithm::AesGcm, &key, ConnId(7), Direction::Forward);
    let ev = tx.seal(EventKind::Event, b"ping").unwrap();
    assert_eq!(ev.counter, 1);
    assert_eq!(hex::encode(&ev.ciphertext), AES_GCM_PING);
    let frame = encode(&ToModule::Event(ev.clone()));
    assert_eq!(hex::encode(&frame), FRAME_PING);
    let mut rx = RecvChannel::new(Algorithm::AesGcm, &key, ConnId(7), Direction::Forward);
    let back: ToModule = decode(&frame[LEN_PREFIX..]).unwrap();
    let ToModule::Event(back) = back else {
        panic!("not an event")
    };
    assert_eq!(rx.open(&back).unwrap(), b"ping");

    let mut tx = SendChannel::new(
        Algorithm::ChaCha20Poly1305,
        &key,
        ConnId(7),
        Direction::Backward,
    );
    let ev = tx.seal(EventKind::Reply, b"pong").unwrap();
    assert_eq!(hex::encode(&ev.ciphertext), CHACHA_PONG);
}

const AES_GCM_PING: &str = "38e2ba73750a6e4ae94c8678368058d319d2c38d";
const FRAME_PING: &str = "0000001b0102070000011438e2ba73750a6e4ae94c8678368058d319d2c38d";
const CHACHA_PONG: &str = "6598a2a7f6fc3bdf48c724611cc41d3403b4e533";

/// `Tick` (the seventh `ToModule` variant) and `Hello` with the `periodic` list appended to
/// `Interface` (issue 5): a module without periodic entries adds one zero byte to its `Hello`,
/// and the `persistent` and `seal_by_signer` flags (issue 16) one more byte each: 0, or 1.
#[test]
fn tick_and_hello_bytes() {
    let tick = ToModule::Tick {
        entry: "tick".into(),
    };
    assert_eq!(hex::encode(encode(&tick)), "000000070106047469636b");
    let hello = aex_proto::FromModule::Hello(aex_proto::Interface {
        outputs: vec!["o".into()],
        periodic: vec!["t".into()],
        ..Default::default()
    });
    assert_eq!(
        hex::encode(encode(&hello)),
        "0000000e010001016f000000000101740000"
    );
    assert_eq!(
        decode::<ToModule>(&encode(&tick)[LEN_PREFIX..]).unwrap(),
        tick
    );
}
