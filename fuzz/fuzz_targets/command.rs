//! Arbitrary bytes as command plaintexts, reply plaintexts and sealed commands: typed errors
//! only, and a forged sealed command never authenticates.
#![no_main]

use aex_crypto::SecretKey;
use aex_proto::frame::decode_plain;
use aex_proto::{Command, CommandChannel, Sealed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_plain::<Command>(data);
    let _ = aex_proto::reply::decode(data);
    let mut module = CommandChannel::new(&SecretKey::from_bytes([7; 32]));
    let sealed = Sealed {
        counter: data.len() as u64 + 1,
        ciphertext: data.to_vec(),
    };
    assert!(module.open_command(&sealed).is_err());
});
