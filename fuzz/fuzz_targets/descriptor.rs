//! Arbitrary text as a TOML, YAML and JSON deployment descriptor: a descriptor or a located
//! error, never a panic.
#![no_main]

use std::path::Path;

use aex_deploy::descriptor::Descriptor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for file in ["fuzz/aex.toml", "fuzz/aex.yaml", "fuzz/aex.json"] {
        if let Err(e) = Descriptor::from_text(Path::new(file), text.to_owned()) {
            let _ = e.to_string();
        }
    }
});
