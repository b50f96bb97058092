//! `aex vote ID approve|reject`: before approving, a member checks what the proposal would
//! do from their own side (the bundle rebuilt from their checkout, the disable order, the new
//! constitution), and signs nothing that does not match.

use super::*;

/// `aex vote`.
pub fn exec_vote(args: VoteArgs, shell: &Shell) -> Result<()> {
    let (desc, governor) = open(&args.app, args.path.as_ref(), &args.governor)?;
    let identity = args.app.identity(shell)?;
    warn_if_not_member(&governor, &identity, shell);
    let id = resolve_id(&governor, &args.id, shell)?;
    let vote = match args.vote {
        VoteArg::Approve => {
            let check = Check {
                app: &args.app,
                desc: &desc,
                identity: identity.clone(),
                rebuild: !args.no_rebuild,
            };
            check.before_approving(&governor, &id, shell)?;
            Vote::Approve
        }
        VoteArg::Reject => Vote::Reject,
    };
    let ballot = Ballot { proposal: id, vote }.sign(identity.signing());
    let (verified, text) =
        governor.send("POST", &format!("/proposals/{}/ballots", id.hex()), &ballot)?;
    governor.announce(&verified, shell);
    let view = parse_view(&text)?;
    shell.status("Voted", standing(&view));
    if view.status == "accepted" && action_of(&view).is_some_and(applied) {
        shell.note(
            "note: the governor applies it now; `aex proposals` shows how that goes (OUTCOME)",
        );
    }
    if view.status == "accepted" && action_of(&view).is_some_and(Action::changes_constitution) {
        members::accepted(&view, shell);
    }
    Ok(())
}

/// What an approval of a deploy or update checks first: the member's own rebuild.
struct Check<'a> {
    app: &'a AppPath,
    desc: &'a Descriptor,
    identity: Arc<Identity>,
    /// Whether to rebuild and compare (not `--no-rebuild`).
    rebuild: bool,
}

impl Check<'_> {
    /// For an open deploy or update: fetches the bundle the proposal names (checked against
    /// its change), rebuilds it from the member's descriptor and refuses the approval unless
    /// the two are the same bundle. Other proposals need no check; nor does a closed one,
    /// which the governor refuses anyway.
    fn before_approving(&self, governor: &Governor, id: &ProposalId, shell: &Shell) -> Result<()> {
        let (verified, view) =
            governor.json::<View>("GET", &format!("/proposals/{}", id.hex()), b"")?;
        governor.announce(&verified, shell);
        if view.status == "open" && action_of(&view) == Some(Action::Disable) {
            return super::super::govern_disable::check(governor, &view, self.desc, shell);
        }
        if view.status == "open" && action_of(&view).is_some_and(Action::changes_constitution) {
            return members::before_approving(governor, self.desc, &view, shell);
        }
        if view.status != "open" || !action_of(&view).is_some_and(bundled) {
            return Ok(());
        }
        let change = change_of(&view)?;
        let theirs = governor.bundle(&change, shell)?;
        shell.status(
            "Fetched",
            format!(
                "bundle {} of `{}` ({} modules), the proposal's change",
                short(&view.change),
                theirs.application,
                theirs.modules.len()
            ),
        );
        if !self.rebuild {
            shell.warn(format!(
                "--no-rebuild: approving bundle {} without rebuilding it from your descriptor; \
                 you vouch for binaries you did not check",
                short(&view.change)
            ));
            return Ok(());
        }
        let (opened, built) = build(self.app, self.desc, self.identity.clone(), shell)
            .context("your rebuild, to compare with the proposed bundle, failed; not approved")?;
        let mine = bundle::make(&opened, &built)
            .context("your descriptor makes no bundle to compare with; not approved")?;
        if mine.digest() == change {
            shell.status(
                "Matched",
                format!(
                    "your build matches the bundle (digest {})",
                    hex::encode(change)
                ),
            );
            return Ok(());
        }
        let listed: String = differences(&theirs, &mine.bundle)
            .iter()
            .map(|d| format!("\n  - {d}"))
            .collect();
        bail!(
            "your build from {} does not match the bundle proposal {} names (digest {} here, \
             {} proposed); not approved:{listed}\nRebuild from the descriptor and sources the \
             proposer used (with the toolchain the bundle names), or vote with --no-rebuild \
             to approve without this check",
            self.desc.path.display(),
            short(&view.id),
            short(&hex::encode(mine.digest())),
            short(&view.change)
        )
    }
}

/// How the member's bundle (`mine`) differs from the proposed one (`theirs`), one line per
/// difference: the descriptor's text (and its first differing line), modules only one side
/// builds, and each module whose measurement differs (with the toolchains, the likeliest
/// cause). A difference only of encoding is said as such.
fn differences(theirs: &Bundle, mine: &Bundle) -> Vec<String> {
    let mut found = Vec::new();
    if theirs.application != mine.application {
        found.push(format!(
            "the application: `{}` proposed, `{}` yours",
            theirs.application, mine.application
        ));
    }
    if theirs.descriptor_name != mine.descriptor_name {
        found.push(format!(
            "the descriptor's file name: `{}` proposed, `{}` yours",
            theirs.descriptor_name, mine.descriptor_name
        ));
    }
    if theirs.descriptor != mine.descriptor {
        let line = theirs
            .descriptor
            .lines()
            .zip(mine.descriptor.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| {
                theirs
                    .descriptor
                    .lines()
                    .count()
                    .min(mine.descriptor.lines().count())
            })
            + 1;
        found.push(format!(
            "the descriptor's text differs from yours (first at line {line})"
        ));
    }
    for (one, other, here, there) in [
        (theirs, mine, "the bundle", "your build"),
        (mine, theirs, "your build", "the bundle"),
    ] {
        for name in one
            .modules
            .keys()
            .filter(|m| !other.modules.contains_key(*m))
        {
            found.push(format!("module `{name}` is in {here}, not in {there}"));
        }
    }
    for (name, t) in &theirs.modules {
        let Some(m) = mine.modules.get(name) else {
            continue;
        };
        if t.measurement != m.measurement {
            let toolchains = match (&t.toolchain, &m.toolchain) {
                (a, b) if a == b => String::new(),
                (a, b) => format!(
                    "; built with {} there, {} here",
                    a.as_deref().unwrap_or("an unknown toolchain"),
                    b.as_deref().unwrap_or("an unknown toolchain")
                ),
            };
            found.push(format!(
                "module `{name}`: measurement {} proposed, {} from your build{toolchains}",
                short(&t.measurement),
                short(&m.measurement)
            ));
        } else if t != m {
            found.push(format!(
                "module `{name}`: same measurement, but its interface, devices, size or \
                 toolchain differ"
            ));
        }
    }
    if found.is_empty() {
        found.push("the bundles hold the same values, encoded differently".into());
    }
    found
}

#[cfg(test)]
mod tests {
    use super::super::tests::{bundle, module};
    use super::*;

    #[test]
    fn a_mismatch_says_which_modules_and_whether_the_descriptor_differ() {
        let text = "[application]\nname = \"app\"\n[[module]]\nname = \"a\"\n";
        let theirs = bundle(
            text,
            &[
                ("a", module("aa", "01", "rustc 1.89")),
                ("b", module("bb", "02", "rustc 1.89")),
                ("c", module("cc", "03", "rustc 1.89")),
            ],
        );
        let mine = bundle(
            &text.replace("\"a\"\n", "\"a\"\nnode = \"n\"\n"),
            &[
                ("a", module("aa", "01", "rustc 1.89")),
                ("b", module("b0", "0f", "rustc 1.90")),
                ("d", module("dd", "04", "rustc 1.89")),
            ],
        );
        let found = differences(&theirs, &mine);
        assert_eq!(
            found,
            [
                "the descriptor's text differs from yours (first at line 5)",
                "module `c` is in the bundle, not in your build",
                "module `d` is in your build, not in the bundle",
                "module `b`: measurement 0202020202020202 proposed, 0f0f0f0f0f0f0f0f from \
                 your build; built with rustc 1.89 there, rustc 1.90 here",
            ]
        );
        // Only a module's interface differs: said, without a measurement.
        let mut other = theirs.clone();
        other.modules.get_mut("a").unwrap().interface = serde_json::json!({"inputs": []});
        assert_eq!(
            differences(&theirs, &other),
            ["module `a`: same measurement, but its interface, devices, size or toolchain differ"]
        );
        // A descriptor that only grows: the first line past the shorter one.
        let mut longer = theirs.clone();
        longer.descriptor.push_str("# more\n");
        assert_eq!(
            differences(&theirs, &longer),
            ["the descriptor's text differs from yours (first at line 5)"]
        );
        assert_eq!(
            differences(&theirs, &theirs),
            ["the bundles hold the same values, encoded differently"]
        );
    }
}
