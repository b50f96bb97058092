//! `aex propose --action disable --module NAME` and the check `aex vote` makes before
//! approving a disable proposal.
//!
//! A disable proposal's change is the digest of a [`DisableOrder`] (the application and the
//! modules to disable, in one canonical encoding), so a ballot approves disabling exactly
//! those modules. The proposer sends the order to the governor first (`POST /orders`), which
//! keeps it by digest and, once the proposal is accepted, disables what it names. A member
//! who approves reads the order back (`GET /orders/DIGEST`), checks its digest against the
//! proposal's change and sees the modules before signing.

use aex_deploy::descriptor::{Descriptor, From};
use aex_governance::DisableOrder;
use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::governor::{short, Governor, View};
use crate::shell::Shell;

/// The plan of disabling `modules`, one line each: the node it runs on and the connections
/// that lose it.
fn plan_lines(desc: &Descriptor, modules: &[String]) -> Vec<String> {
    modules
        .iter()
        .map(|name| {
            let node = desc.module(name).map(|m| m.node.as_str()).unwrap_or("?");
            let conns: Vec<String> = desc
                .connections
                .iter()
                .filter(|c| {
                    c.to.module == *name || matches!(&c.from, From::Port(p) if p.module == *name)
                })
                .map(|c| format!("`{}`", c.name))
                .collect();
            let conns = match conns.is_empty() {
                true => String::new(),
                false => format!("; its connections {} stop", conns.join(", ")),
            };
            format!(
                "disable module `{name}` on node `{node}`: its instance drops all its keys{conns}"
            )
        })
        .collect()
}

/// Makes the order for `modules` (each a module of `desc`), sends it to the governor and
/// prints what will be disabled: the proposal's change, its description for the summary,
/// and its plan.
pub fn propose(
    governor: &Governor,
    desc: &Descriptor,
    modules: &[String],
    shell: &Shell,
) -> Result<([u8; 32], String, Vec<String>)> {
    let valid: Vec<&str> = desc.modules.iter().map(|m| m.name.as_str()).collect();
    if modules.is_empty() {
        bail!(
            "a disable proposal names the modules to disable: add `--module NAME` (valid: {})",
            valid.join(", ")
        );
    }
    if let Some(unknown) = modules.iter().find(|m| desc.module(m).is_none()) {
        bail!(
            "`--module {unknown}`: {} declares no such module (valid: {}); nothing was proposed",
            desc.path.display(),
            valid.join(", ")
        );
    }
    let order = DisableOrder::new(desc.application.clone(), modules.iter().cloned())
        .map_err(|e| anyhow!("{e}"))?;
    let bytes = order.to_bytes();
    governor.store("/orders", "disable order", &bytes, &order.digest(), shell)?;
    let mine = hex::encode(order.digest());
    shell.status(
        "Change",
        format!("disable order sha256 {mine}: {}", order.modules.join(", ")),
    );
    let lines = plan_lines(desc, &order.modules);
    for line in &lines {
        shell.status("Plan", line);
    }
    let described = format!(
        "disable order sha256 {mine}: modules {}\n",
        order.modules.join(", ")
    );
    Ok((order.digest(), described, lines))
}

/// Before approving an open disable proposal: fetches its order, checks it is the one the
/// proposal names (its digest), of this application, and shows what it disables; warns of a
/// module the member's descriptor does not declare.
pub fn check(governor: &Governor, view: &View, desc: &Descriptor, shell: &Shell) -> Result<()> {
    let change = super::govern::change_of(view)?;
    let path = format!("/orders/{}", view.change);
    let (verified, bytes) = governor
        .send_bytes("GET", &path, b"")
        .with_context(|| format!("GET {path}: the disable order the proposal names"))?;
    governor.announce(&verified, shell);
    if <[u8; 32]>::from(Sha256::digest(&bytes)) != change {
        bail!(
            "the governor answered an order whose digest is not the proposal's change {}; \
             not approved",
            short(&view.change)
        );
    }
    let order = DisableOrder::from_bytes(&bytes).map_err(|e| {
        anyhow!(
            "the order {} is not valid: {e}; not approved",
            short(&view.change)
        )
    })?;
    if order.application != desc.application {
        bail!(
            "the order disables modules of application `{}`, your descriptor's is `{}`; not \
             approved",
            order.application,
            desc.application
        );
    }
    shell.status(
        "Fetched",
        format!(
            "disable order {} (the proposal's change): modules {}",
            short(&view.change),
            order.modules.join(", ")
        ),
    );
    for line in plan_lines(desc, &order.modules) {
        shell.status("Disables", line);
    }
    for unknown in order.modules.iter().filter(|m| desc.module(m).is_none()) {
        shell.warn(format!(
            "module `{unknown}` is not in {}: disabling it changes nothing you run",
            desc.path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_names_each_module_s_node_and_the_connections_it_stops() {
        let dir = tempfile::tempdir().unwrap();
        let text = "[application]\nname = \"app\"\n\n[[node]]\nname = \"n1\"\n\
                    address = \"127.0.0.1:1\"\ntee = \"sgx\"\nsimulation = true\n\n\
                    [[module]]\nname = \"ping\"\ncrate = \"ping\"\nnode = \"n1\"\n\n\
                    [[module]]\nname = \"pong\"\ncrate = \"pong\"\nnode = \"n1\"\n\n\
                    [[connection]]\nname = \"there\"\nfrom = \"ping.out\"\nto = \"pong.in\"\n\n\
                    [[connection]]\nname = \"kick\"\nfrom = \"deployer\"\nto = \"ping.kick\"\n";
        let desc =
            Descriptor::prebuilt_from_text(&dir.path().join("aex.toml"), text.into()).unwrap();
        let lines = plan_lines(&desc, &["ping".to_owned(), "pong".to_owned()]);
        assert_eq!(
            lines,
            [
                "disable module `ping` on node `n1`: its instance drops all its keys; its \
                 connections `there`, `kick` stop",
                "disable module `pong` on node `n1`: its instance drops all its keys; its \
                 connections `there` stop",
            ]
        );
    }
}
