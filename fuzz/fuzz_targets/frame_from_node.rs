//! Arbitrary bytes through the incremental frame decoder and the `FromNode` message decoder:
//! every outcome must be a value or a typed error, never a panic or an oversized allocation.
#![no_main]

use aex_proto::frame::{decode, FrameDecoder};
use aex_proto::FromNode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode::<FromNode>(data);
    let mut frames = FrameDecoder::new();
    frames.push(data);
    while let Ok(Some(body)) = frames.next_body() {
        let _ = decode::<FromNode>(&body);
    }
});
