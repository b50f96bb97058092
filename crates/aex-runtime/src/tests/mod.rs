//! Drives the runtime with in-memory frames, playing the node and the deployer: key
//! agreement, commands, events in every direction, and the refusals the runtime must count.

mod attest;
mod commands;
mod devices;
mod events;
mod harness;
mod periodic;
mod transfer;
