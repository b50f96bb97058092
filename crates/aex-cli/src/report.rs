//! How `aex` shows what a deployment plans and did: shared by `aex deploy`, `aex update` and
//! `aex up`.

use aex_deploy::ops::deploy::{Action, DeployReport, Plan, StateSource};

use crate::shell::Shell;

/// One line per change; kept items are counted, not listed.
pub fn plan(plan: &Plan, shell: &Shell) {
    for line in plan_lines(plan) {
        shell.status("Plan", line);
    }
}

/// [`plan`]'s lines, as text: `aex propose` also sends them as the proposal's summary, so
/// members read the plan they vote on.
pub fn plan_lines(plan: &Plan) -> Vec<String> {
    let mut lines = Vec::new();
    let line = |what: String, verb: &str, action: &Action| match action {
        Action::Keep => None,
        Action::Apply(why) => Some(format!("{what}: {verb} ({why})")),
        Action::Remove(why) => Some(format!("{what}: remove ({why})")),
        _ => Some(format!("{what}: {action:?}")),
    };
    let mut kept = 0;
    for m in &plan.modules {
        let what = format!("module `{}` on `{}`", m.module, m.node);
        let verb = match m.state {
            StateSource::Running => "load, attest and take over the running state",
            StateSource::Snapshot => "load, attest and restore the saved state",
            StateSource::Checkpoint => "load, attest and restore the checkpoint you gave",
            StateSource::Unconfirmed => {
                "ask the recorded instance for its state (its node reports it gone), then load and attest (if it does not answer, its state is lost: asked before the module starts from its default state)"
            }
            StateSource::Discarded => {
                "load and attest, discarding the recorded instance's state"
            }
            _ => "load and attest",
        };
        match line(what, verb, &m.action) {
            Some(l) => lines.push(l),
            None => kept += 1,
        }
    }
    for c in &plan.connections {
        let what = format!("connection `{}`", c.connection);
        match line(what, "deliver fresh keys", &c.action) {
            Some(l) => lines.push(l),
            None => kept += 1,
        }
    }
    if kept > 0 {
        lines.push(format!("{kept} modules and connections stay as they are"));
    }
    lines
}

/// What a deployment did: the state transfers, the revocations, a summary line and the
/// periodic triggers in place.
pub fn deployed(report: &DeployReport, shell: &Shell) {
    transfers(report, shell);
    revocations(report, shell);
    if report.loaded.is_empty()
        && report.keyed.is_empty()
        && report.removed.is_empty()
        && report.revoked.is_empty()
    {
        shell.status(
            "Unchanged",
            format!(
                "{} modules already attested and connected",
                report.kept.len()
            ),
        );
    } else {
        shell.status(
            "Deployed",
            format!(
                "{} loaded and attested, {} kept, {} removed, {} connections keyed ({:.2} s, builds {:.2} s)",
                report.loaded.len(),
                report.kept.len(),
                report.removed.len(),
                report.keyed.len(),
                report.deploy_secs,
                report.build_secs
            ),
        );
    }
    for trigger in &report.periodic {
        shell.status("Periodic", trigger);
    }
}

/// The connections revoked, and what needs the user's attention.
pub fn revocations(report: &DeployReport, shell: &Shell) {
    for name in &report.revoked {
        shell.status(
            "Revoked",
            format!("connection `{name}`: its keys dropped in its modules, its routes removed"),
        );
    }
    for warning in &report.warnings {
        shell.warn(warning);
    }
}

/// One line per module that was replaced while running: where its state came from, and how
/// long it took part in no connection.
pub fn transfers(report: &DeployReport, shell: &Shell) {
    for t in &report.transfers {
        let route = if t.from_node == t.to_node {
            format!("on `{}`", t.to_node)
        } else {
            format!("from `{}` to `{}`", t.from_node, t.to_node)
        };
        let what = match (t.source, t.bytes) {
            (StateSource::Running, Some(n)) if t.adopted => format!(
                "took over the state ({n} bytes) from the old instance's sealed blobs (both seal by signer)"
            ),
            (StateSource::Running, Some(n)) => format!("took over the state ({n} bytes)"),
            (StateSource::Snapshot, Some(n)) => {
                format!("restored the state an interrupted update saved ({n} bytes)")
            }
            (StateSource::Checkpoint, Some(n)) => {
                format!("restored your checkpoint ({n} bytes); what it did since is lost")
            }
            (StateSource::Unconfirmed, Some(n)) => format!(
                "took over the state ({n} bytes) of an instance its node had reported gone"
            ),
            (StateSource::Running | StateSource::Unconfirmed, None) => "starts from its default state: its state type is not serializable and it has no #[save]/#[restore] methods".into(),
            (StateSource::Discarded, _) => "starts from its default state: the state of the old instance was discarded".into(),
            _ => "starts from its default state".into(),
        };
        shell.status(
            "Transferred",
            format!(
                "`{}` {route}: {what}; connectivity gap {:.1} ms",
                t.module,
                t.gap.as_secs_f64() * 1e3
            ),
        );
    }
}
