//! `aex proposals` and the proposals' part of `aex status`: the governor's list, verified as
//! every member command verifies it, as a table with what became of each accepted proposal.

use super::*;

/// `aex proposals`.
pub fn exec_proposals(args: ProposalsArgs, shell: &Shell) -> Result<()> {
    let (_, governor) = open(&args.app, args.path.as_ref(), &args.governor)?;
    let (views, text) = list(&governor, shell)?;
    if args.json {
        // The governor's list as it sent it, each carried-out proposal with its outcome.
        let mut value: serde_json::Value = serde_json::from_str(&text)?;
        let outcomes = outcomes(&governor, &views, shell);
        for item in value.as_array_mut().into_iter().flatten() {
            let id = item["id"].as_str().unwrap_or_default().to_owned();
            if let (Some(outcome), Some(map)) = (outcomes.get(&id), item.as_object_mut()) {
                map.insert("outcome".into(), serde_json::to_value(outcome)?);
            }
        }
        shell.out(serde_json::to_string_pretty(&value)?)?;
        return Ok(());
    }
    if views.is_empty() {
        shell.status("Empty", "the governor holds no proposal");
        return Ok(());
    }
    show(&governor, &views, "", shell)
}

/// `aex status`'s part for a governed application whose descriptor names its governor: the
/// governor's proposals, verified as every member command verifies it (nothing when the
/// descriptor names no governor).
pub fn status_section(desc: &Descriptor, timeout: Option<Duration>, shell: &Shell) -> Result<()> {
    if desc.governor.is_none() {
        return Ok(());
    }
    let governor = Governor::of(
        desc,
        &Overrides::default(),
        timeout.unwrap_or(governor::TIMEOUT),
    )?;
    let (views, _) = list(&governor, shell)?;
    if views.is_empty() {
        shell.status("Proposals", "none: the governor holds no proposal");
        return Ok(());
    }
    show(&governor, &views, "\nproposals:\n", shell)
}

/// Prints the proposals' table under `heading`, with what became of each accepted
/// proposal.
fn show(governor: &Governor, views: &[View], heading: &str, shell: &Shell) -> Result<()> {
    let outcomes = outcomes(governor, views, shell);
    shell.out(format!("{heading}{}", table(views, &outcomes)))?;
    for (id, outcome) in &outcomes {
        if let Some(error) = &outcome.error {
            shell.warn(format!("proposal {} failed to apply: {error}", short(id)));
        }
    }
    Ok(())
}

/// What became of each accepted or applied deploy and update, by proposal id: one request
/// each (there are few). One that cannot be asked is left out, with a warning.
fn outcomes(governor: &Governor, views: &[View], shell: &Shell) -> BTreeMap<String, Outcome> {
    let mut found = BTreeMap::new();
    for v in views {
        if !matches!(v.status.as_str(), "accepted" | "applied")
            || !action_of(v).is_some_and(applied)
        {
            continue;
        }
        let path = format!("/proposals/{}/outcome", v.id);
        match governor.json::<Outcome>("GET", &path, b"") {
            Ok((_, outcome)) => {
                found.insert(v.id.clone(), outcome);
            }
            Err(e) => shell.warn(format!(
                "what became of proposal {} is unknown: GET {path}: {e:#}",
                short(&v.id)
            )),
        }
    }
    found
}

/// The proposals as a table: id (its first 16 digits), action, proposer, status, approvals
/// of those required, rejections, rule, and the outcome of an accepted deploy or update
/// (`waiting`, `applying`, `applied`, `failed`; `-` for the others).
fn table(views: &[View], outcomes: &BTreeMap<String, Outcome>) -> String {
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            vec![
                short(&v.id).to_owned(),
                v.action.clone(),
                v.proposer.clone(),
                v.status.clone(),
                format!("{}/{}", v.approvals, v.required),
                v.rejections.to_string(),
                v.rule.clone(),
                outcomes
                    .get(&v.id)
                    .map_or_else(|| "-".to_owned(), |o| o.state.clone()),
            ]
        })
        .collect();
    let header = [
        "ID",
        "ACTION",
        "PROPOSER",
        "STATUS",
        "APPROVALS",
        "REJECTIONS",
        "RULE",
        "OUTCOME",
    ];
    crate::table::render(&header, &rows)
}
