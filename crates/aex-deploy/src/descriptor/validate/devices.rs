//! Devices: what a node declares, which module drives what, and other stakeholders' descriptors.
//!
//! Invariants: a node's device names are unique and well formed; a module binds each device at
//! most once, only devices of its own node when that node declares any, and no device is bound
//! to two modules of this application (the node would refuse the second claim anyway, after
//! building and uploading it; saying so here is cheaper and names both modules).

use std::collections::HashMap;

use aex_tee::devices::{check_name, DeviceSpec};

use super::super::error::DescriptorError;
use super::super::field::Field;
use super::super::model::{ModuleSpec, NodeSpec, TenantSpec};
use super::super::raw::{RawModule, RawTenant};
use super::Checker;

/// How a device is written.
const DEVICE_HELP: &str = "write NAME=KIND[@INITIAL], KIND one of digital_in, digital_out, \
     analog_in or analog_in:MAX, e.g. \"valve=digital_out\" or \"soil=analog_in:100@35\"";

impl Checker<'_> {
    /// Parses node `i`'s `devices`.
    pub(super) fn node_devices(
        &self,
        i: usize,
        devices: &[String],
    ) -> Result<Vec<DeviceSpec>, DescriptorError> {
        let field = Field::Node(i, "devices");
        let mut specs: Vec<DeviceSpec> = Vec::with_capacity(devices.len());
        for text in devices {
            let spec = DeviceSpec::parse(text.trim())
                .map_err(|e| self.error(field, e.to_string(), Some(DEVICE_HELP.to_owned())))?;
            if specs.iter().any(|s| s.name == spec.name) {
                let message = format!("device `{}` is declared twice", spec.name);
                return Err(self.error(field, message, None));
            }
            specs.push(spec);
        }
        Ok(specs)
    }

    /// Checks every module's `devices` against its node and the other modules.
    pub(super) fn bindings(
        &self,
        raw: &[RawModule],
        nodes: &[NodeSpec],
        modules: &mut [ModuleSpec],
    ) -> Result<(), DescriptorError> {
        // (node, device) -> the module index that binds it.
        let mut bound: HashMap<(String, String), String> = HashMap::new();
        for (i, (raw, module)) in raw.iter().zip(modules.iter_mut()).enumerate() {
            let field = Field::Module(i, "devices");
            let node = nodes.iter().find(|n| n.name == module.node);
            let declared: Vec<String> = node
                .map(|n| n.devices.iter().map(|d| d.name.clone()).collect())
                .unwrap_or_default();
            let mut devices: Vec<String> = Vec::new();
            for device in raw.devices.as_deref().unwrap_or_default() {
                check_name(device).map_err(|e| self.error(field, e.to_string(), None))?;
                if devices.contains(device) {
                    let message = format!("device `{device}` is bound twice");
                    return Err(self.error(field, message, None));
                }
                if !declared.is_empty() && !declared.contains(device) {
                    let message = format!("node `{}` declares no device `{device}`", module.node);
                    let help = crate::descriptor::suggest::help(device, "devices", &declared);
                    return Err(self.error(field, message, help));
                }
                let key = (module.node.clone(), device.clone());
                if let Some(first) = bound.get(&key) {
                    let message = format!(
                        "device `{device}` of node `{}` is already bound to module `{first}`",
                        module.node
                    );
                    let help = "a device is granted to exactly one driver module; let the other \
                                modules talk to that driver over a connection"
                        .to_owned();
                    return Err(self.error(field, message, Some(help)));
                }
                bound.insert(key, module.name.clone());
                devices.push(device.clone());
            }
            devices.sort();
            module.devices = devices;
        }
        Ok(())
    }

    /// Resolves the `[[tenant]]` entries.
    pub(super) fn tenants(&self, raw: &[RawTenant]) -> Result<Vec<TenantSpec>, DescriptorError> {
        raw.iter()
            .enumerate()
            .map(|(i, tenant)| {
                let path = |field: &'static str, text: &str, help: &str| {
                    if text.trim().is_empty() {
                        Err(self.error(
                            Field::Tenant(i, field),
                            "empty path".to_owned(),
                            Some(help.to_owned()),
                        ))
                    } else {
                        Ok(self.dir.join(text))
                    }
                };
                let descriptor = path(
                    "descriptor",
                    &tenant.descriptor,
                    "give the tenant's descriptor file or directory, relative to this one",
                )?;
                if !descriptor.exists() {
                    let message =
                        format!("tenant descriptor {} does not exist", descriptor.display());
                    return Err(self.error(Field::Tenant(i, "descriptor"), message, None));
                }
                let identity = path(
                    "identity",
                    &tenant.identity,
                    "give the file of the tenant's deployer identity (created if missing)",
                )?;
                Ok(TenantSpec {
                    descriptor,
                    identity,
                })
            })
            .collect()
    }
}
