//! Drives the runtime with in-memory frames, playing the node and the deployer: key
//! agreement, commands, events in every direction, and the refusals the runtime must count.

mod attest;
mod backlog;
mod commands;
mod devices;
mod events;
mod failures;
mod flow;
mod generations;
mod harness;
mod lifecycle;
mod periodic;
mod transfer;

std::thread_local! {
    /// What the runtime logged on this test's thread (`log!`), for tests that check what the
    /// node could read on the module's stderr.
    pub(crate) static LOGGED: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}
