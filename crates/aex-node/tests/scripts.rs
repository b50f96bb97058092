//! Shell-script stand-ins for modules: a script says hello with a prepared frame, then does
//! what the test needs (replays more prepared frames, records its input to a file, idles).
//!
//! Node tests only: real module binaries speak the runtime's protocol and are tested through
//! the deployer (aex-cli's tests); here the node must see a module do exactly one thing, or
//! something no real module would.

use std::path::Path;

use aex_proto::{FromModule, Interface};
use aex_testkit::session::frame_bytes;

/// The `Hello` every script module sends first: one input, no periodic entries.
fn hello() -> FromModule {
    FromModule::Hello(Interface {
        inputs: vec!["input".into()],
        ..Interface::default()
    })
}

/// Writes `msg` as a frame to `dir/file` and returns the path, for scripts to `cat`.
pub fn frame_file<M: serde::Serialize>(dir: &Path, file: &str, msg: &M) -> String {
    let path = dir.join(file);
    std::fs::write(&path, frame_bytes(msg))
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path.display().to_string()
}

/// A shell-script module: says hello, then runs `body`.
pub fn script(dir: &Path, body: &str) -> Vec<u8> {
    let hello = frame_file(dir, "hello.bin", &hello());
    format!("#!/bin/sh\ncat '{hello}'\n{body}\n").into_bytes()
}
