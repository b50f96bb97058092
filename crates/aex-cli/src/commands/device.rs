//! `aex device`: play the physical world of a local node's simulated devices.
//!
//! This is not an application command and needs no deployer identity: it talks to the node's
//! device socket (`<data_dir>/devices.sock`, see `aex_node::PhysicsClient`), which only lets
//! someone on the node's machine stand in for physics (press the button, dry the soil, look at
//! the valve). Applications reach devices only through their attested driver modules.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use aex_deploy::descriptor::{did_you_mean, Descriptor};
use aex_node::{physics_socket, PhysicsClient};
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};

use crate::shell::Shell;

/// Play the physical world of a local node's simulated devices (physics, not an application
/// command)
///
/// Lists a node's devices, reads one, sets what an input senses, or watches one change, through
/// the node's device socket on this machine. It carries no authority: it cannot load, command
/// or attest anything, and cannot drive an output (only the driver module granted it does).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    aex device field                   list the devices of node `field`\n  \
    aex device field soil              read the soil probe\n  \
    aex device field soil set 20       the soil dries to 20\n  \
    aex device field valve watch       print the valve's value at every change (Ctrl-C stops)")]
pub struct DeviceArgs {
    /// The node: its name in the descriptor, whose data is in `.aex/nodes/NODE`
    node: String,
    /// The device [default: list every device]
    device: Option<String>,
    /// What to do with DEVICE
    #[arg(value_enum, default_value = "read", requires = "device")]
    action: Action,
    /// The value for `set`
    #[arg(required_if_eq("action", "set"))]
    value: Option<u32>,
    /// The node's data directory, instead of finding NODE in the descriptor
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Descriptor file, or a directory holding aex.toml [default: current directory]
    #[arg(short = 'C', long = "app", value_name = "PATH")]
    app: Option<PathBuf>,
}

/// What `aex device NODE DEVICE` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Action {
    /// Print the device's value
    Read,
    /// Make an input sense VALUE (outputs are refused)
    Set,
    /// Print the value at every change until interrupted
    Watch,
}

pub fn exec(args: DeviceArgs, shell: &Shell) -> Result<()> {
    if args.value.is_some() && args.action != Action::Set {
        bail!("a VALUE is only for `set`: use `aex device NODE DEVICE set VALUE`");
    }
    let data_dir = data_dir(&args)?;
    let socket = physics_socket(&data_dir);
    let node = &args.node;
    let mut client = PhysicsClient::connect(&socket).map_err(|e| {
        anyhow!(
            "node `{node}` has no device socket at {}: is it running on this machine? \
             (`aex device` works only on the node's own machine)",
            socket.display()
        )
        .context(e)
    })?;
    let Some(device) = args.device.as_deref() else {
        let rows: Vec<Vec<String>> = client
            .list()
            .with_context(|| format!("failed to list the devices of node `{node}`"))?
            .into_iter()
            .map(|d| {
                let driver = if d.held { "held" } else { "free" };
                vec![
                    d.name,
                    d.kind.to_string(),
                    d.value.to_string(),
                    driver.into(),
                ]
            })
            .collect();
        if rows.is_empty() {
            shell.note(format!("node `{node}` declares no devices"));
            return Ok(());
        }
        shell.out(crate::table::render(
            &["DEVICE", "KIND", "VALUE", "DRIVER"],
            &rows,
        ))?;
        return Ok(());
    };
    let failed = |what: &str| format!("failed to {what} device `{device}` of node `{node}`");
    match (args.action, args.value) {
        (Action::Set, Some(value)) => {
            let value = client.set(device, value).with_context(|| failed("set"))?;
            shell.status("Set", format!("`{device}` on node `{node}` to {value}"));
        }
        (Action::Set, None) => bail!("`set` needs a VALUE"),
        (Action::Read, _) => {
            let value = client.read(device).with_context(|| failed("read"))?;
            shell.out(value.to_string())?;
        }
        (Action::Watch, _) => {
            let mut out = Ok(());
            client
                .watch(device, |value| {
                    out = shell.out(format!("{} {device} {value}", timestamp(SystemTime::now())));
                    out.is_ok()
                })
                .with_context(|| failed("watch"))?;
            out?;
        }
    }
    Ok(())
}

/// The node's data directory: `--data-dir`, else `.aex/nodes/NODE` beside the descriptor (as
/// `aex up` lays it out).
fn data_dir(args: &DeviceArgs) -> Result<PathBuf> {
    if let Some(dir) = &args.data_dir {
        return Ok(dir.clone());
    }
    let path = args.app.clone().unwrap_or_else(|| PathBuf::from("."));
    let desc = Descriptor::load(&path).map_err(aex_deploy::Error::from)?;
    if desc.node(&args.node).is_none() {
        let names: Vec<String> = desc.nodes.iter().map(|n| n.name.clone()).collect();
        let hint = did_you_mean(&args.node, &names)
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        bail!(
            "no node `{}` in {} (nodes: {}){hint}",
            args.node,
            desc.path.display(),
            names.join(", ")
        );
    }
    Ok(aex_deploy::state::node_data_dir(&desc.dir, &args.node))
}

/// `time` as RFC 3339 UTC with milliseconds, e.g. `2025-01-31T12:03:04.123Z`.
fn timestamp(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant, "chrono-Compatible Low-Level Date
    // Algorithms", `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timestamps_are_utc_rfc3339() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789);
        assert_eq!(timestamp(t), "2024-02-29T12:34:56.789Z");
    }
}
