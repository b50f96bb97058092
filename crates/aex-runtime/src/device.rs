//! Secure I/O from the module's side: reading and driving the devices the node's TEE layer
//! granted to this module instance.
//!
//! A driver module reaches a device only by asking the TEE layer, which performs the access
//! only for the instance it granted the device to at load (docs/SECURITY.md, "Secure I/O:
//! devices and drivers"). The module sends `FromModule::Device` with a fresh id and blocks, as
//! a request does ([`Core::wait_for`]), until the `DeviceReply` with that id, the request
//! timeout, or the end of the link.
//!
//! A persistent module's writes are effects like its events (output commit, docs/PROTOCOL.md
//! §9): they are held until the state that explains them is sealed and stored, so
//! `write_device` returns at once and the TEE layer's answer comes after the commit; a refusal
//! is logged then. Reads are inputs and go out at once.
//!
//! Invariants this file owns:
//! * ids are fresh per process (a counter), so a late answer to an access that timed out is
//!   never taken for the answer to a later one: answers with another id are dropped;
//! * a disabled or retired instance sends no access at all;
//! * the runtime never logs a device's value (it may be a reading the owner keeps private);
//!   only the module decides what to emit.
//!
//! *Not authenticated in simulation:* the TEE layer is then part of the node process, so the
//! node can refuse, delay or answer any access as it likes. On hardware with device isolation
//! (Sancus, TrustZone) the grant is enforced by the platform and covered by the measurement the
//! deployer attested.

use aex_proto::{DeviceOp, FromModule, ToModule};

use crate::core::{Arrived, Core, Step, Unanswered};
use crate::error::Error;

impl Core {
    /// Performs `op` on `device` through the TEE layer and returns the value it answers.
    pub(crate) fn device(&mut self, device: &str, op: DeviceOp) -> Result<u32, Error> {
        if self.retired.is_some() {
            return Err(Error::Retired {
                device: device.to_owned(),
            });
        }
        if self.disabled {
            return Err(Error::Disabled {
                device: device.to_owned(),
            });
        }
        let id = self.next_device_id;
        // 2^64 accesses take longer than any process lives; wrapping is only a formality.
        self.next_device_id = id.wrapping_add(1);
        let access = FromModule::Device {
            id,
            device: device.to_owned(),
            op,
        };
        // A persistent module's write waits for the next commit, like its events.
        let access = match access {
            FromModule::Device {
                op: DeviceOp::Write(_),
                ..
            } => match self.hold_write(id, device, access) {
                None => return Ok(0),
                Some(access) => access,
            },
            access => access,
        };
        // Sent now, not at the next idle moment: its answer is what we wait for.
        if !(self.link.send(&access) && self.link.flush()) {
            return Err(Error::Closed);
        }
        let after = self.request_timeout;
        let answer = self.wait_for(after, |_, arrived| match arrived {
            Arrived::Message(ToModule::DeviceReply { id: got, result }) if got == id => {
                Step::Done(result)
            }
            // Stale: the answer to an access that already timed out.
            Arrived::Message(ToModule::DeviceReply { .. })
            | Arrived::Keyed(_)
            | Arrived::Credit(_) => Step::Wait,
            Arrived::Message(other) => Step::Defer(other),
        });
        match answer {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(message)) => Err(Error::Device {
                device: device.to_owned(),
                message,
            }),
            Err(Unanswered::Timeout) => Err(Error::DeviceTimeout {
                device: device.to_owned(),
                after,
            }),
            Err(Unanswered::Closed) => Err(Error::Closed),
            Err(Unanswered::Overloaded) => Err(Error::Overloaded),
        }
    }
}
