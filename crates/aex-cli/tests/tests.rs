//! Integration and adversarial tests of the `aex` binary: real `aex` and `aex node` processes
//! on loopback (and, in `fault_netns`, on hosts in network namespaces of their own), the
//! examples' modules, and an attacker on the network.
//!
//! Files are named `<area>_<topic>.rs`: `adversarial_*` play an attacker (network, node agent,
//! replayed messages), `cli_*` check what the command line says, `e2e_*` run an example end to
//! end, `fault_*` break something (a process, a link, the deployer mid-deploy) and check the
//! recovery, `load_*` stream events, `packaging_*` check the files of `packaging/`,
//! `tenants_*` put two stakeholders on shared nodes; `support_*` hold setup several tests
//! share.
//!
//! Every test picks free ports and works in its own temporary directory, so tests run in
//! parallel with each other and with `aex up examples/ping-pong` on its fixed ports. Node
//! processes are stopped by drop guards, also when a test fails. Modules are built with the
//! dev profile, once per test run (`aex_testkit::modules`). No test sleeps for a fixed time:
//! each waits for a condition with a deadline, and a test that shows something does not
//! happen waits for a later event that proves the time for it has passed.
#![allow(
    clippy::disallowed_macros,
    reason = "test code: a test notes what it measured on stderr"
)]

mod adversarial_attest;
mod adversarial_cotenant;
mod adversarial_flood;
mod adversarial_links;
mod adversarial_node_text;
mod adversarial_replay;
mod adversarial_revoke;
mod adversarial_update;
mod adversarial_wire;
mod cli_checks;
mod cli_device;
mod cli_down;
mod cli_errors;
mod cli_failures;
mod cli_new;
mod cli_node_ops;
mod cli_provider_key;
mod cli_window;
mod e2e_button_led;
mod e2e_counter_migration;
mod e2e_faas;
mod e2e_governance_cli;
mod e2e_governor;
mod e2e_governor_apply;
mod e2e_governor_disable;
mod e2e_governor_members;
mod e2e_governor_recovery;
mod e2e_governor_recovery_apply;
mod e2e_governor_symmetric;
mod e2e_irrigation;
mod e2e_metering;
mod e2e_ping_pong;
mod e2e_ping_pong_c;
mod e2e_thermostat_deadline;
mod fault_deployer_crash;
mod fault_module_kill;
mod fault_netns;
mod fault_node_restart;
mod fault_partition;
mod fault_sealed_c;
mod fault_sealed_device;
mod fault_sealed_move;
mod fault_sealed_signer;
mod fault_sealed_state;
mod fault_timeouts;
mod fault_update_crash;
mod flow_control;
mod load_lossless_chain;
mod load_shared_binary;
mod ops_dashboard;
mod packaging_compose;
mod tenants_isolation;
