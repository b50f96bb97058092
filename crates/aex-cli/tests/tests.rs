//! Integration and adversarial tests of the `aex` binary: real `aex` and `aex node` processes
//! on loopback, the ping-pong example's modules, and an attacker on the network.
//!
//! Every test picks free ports and works in its own temporary directory, so tests run in
//! parallel with each other and with `aex up examples/ping-pong` on its fixed ports. Node
//! processes are stopped by drop guards, also when a test fails. Modules are built with the
//! dev profile (`AEX_BUILD_PROFILE=dev`), once per test run (see `util::modules`).

mod adversarial_attest;
mod adversarial_node_text;
mod adversarial_replay;
mod adversarial_revoke;
mod adversarial_update;
mod adversarial_wire;
mod agent_module_kill;
mod cli_device;
mod cli_errors;
mod crash_converge;
mod crash_update;
mod e2e_button_led;
mod e2e_counter_migration;
mod e2e_irrigation;
mod e2e_ping_pong;
mod fault_node_restart;
mod fault_partition;
mod fault_timeouts;
mod load_chain;
mod periodic_deadline;
mod two_stakeholders;
