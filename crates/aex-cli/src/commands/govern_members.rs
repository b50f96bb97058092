//! `aex propose --action add_member|remove_member|rotate_key|constitution` and the check
//! `aex vote` makes before approving one: a change of members or rules.
//!
//! Its change is the new constitution's digest. The proposer uploads the constitution
//! document (`POST /constitutions`) so every member can read what they vote on, and sees the
//! difference with the constitution in force (`GET /constitution`, whose digest the
//! certificate attests). A voter fetches the document by the proposal's change, checks it is
//! that constitution to the digest, sees the difference, and checks that it is the change the
//! action says (an `add_member` adds one member and changes nothing else:
//! `aex_governance::change`), as the governor checks it again when it applies it.
//!
//! While the change is open the governor still attests the constitution in force, so a
//! member who already edited `[governance]` names the one in force with
//! `--current-constitution FILE` (an older descriptor, or a document): the governor is then
//! accepted if its certificate attests either constitution, both being ones the member vouches
//! for. Once applied, the certificate attests the new one.

use std::path::Path;

use aex_deploy::descriptor::Descriptor;
use aex_governance::bundle::hex_digest;
use aex_governance::change::{check, Difference};
use aex_governance::{Constitution, Document, CERTIFICATE_KEY_NAME};
use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use super::{open, ProposeArgs};
use crate::governor::{short, Governor, View};
use crate::shell::Shell;

/// What `GET /constitution` answers.
#[derive(Deserialize)]
struct InForce {
    digest: String,
    constitution: Document,
}

/// The constitution in `file`: a JSON constitution document, or a descriptor's
/// `[governance]`.
pub(super) fn load_constitution(file: &Path) -> Result<Constitution> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    if let Ok(document) = serde_json::from_str::<Document>(&text) {
        return document
            .to_constitution()
            .with_context(|| format!("{}: the constitution is not valid", file.display()));
    }
    let desc = Descriptor::load(file).map_err(aex_deploy::Error::from)?;
    desc.governance.ok_or_else(|| {
        anyhow!(
            "{} declares no `[governance]` and is no JSON constitution document",
            file.display()
        )
    })
}

/// The constitution the governor holds in force, checked against the digest its certificate
/// attests.
fn in_force(governor: &Governor, shell: &Shell) -> Result<Constitution> {
    let (verified, view) = governor.json::<InForce>("GET", "/constitution", b"")?;
    governor.announce(&verified, shell);
    let constitution = view
        .constitution
        .to_constitution()
        .context("the governor's constitution in force does not check")?;
    let digest = constitution.digest();
    if hex::encode(digest) != view.digest
        || verified.extra(CERTIFICATE_KEY_NAME) != Some(&digest[..])
    {
        bail!(
            "the governor shows constitution {} as in force, but its certificate attests \
             another; refusing",
            hex::encode(digest)
        );
    }
    Ok(constitution)
}

/// The constitution whose document the governor stores as `change`, checked against it.
fn fetch(governor: &Governor, change: &[u8; 32]) -> Result<Constitution> {
    let path = format!("/constitutions/{}", hex::encode(change));
    let (_, text) = governor
        .send("GET", &path, b"")
        .with_context(|| format!("GET {path}: the constitution the proposal names"))?;
    let document: Document = serde_json::from_str(&text)
        .with_context(|| format!("the governor's answer to GET {path} is no constitution"))?;
    let constitution = document
        .to_constitution()
        .context("the proposed constitution does not check")?;
    if constitution.digest() != *change {
        bail!(
            "the governor answered constitution {} for the proposal's change {}: not the \
             change members vote on; refusing to vote. Ask the other members and the \
             governor node's operator",
            hex::encode(constitution.digest()),
            hex::encode(change)
        );
    }
    Ok(constitution)
}

/// Prints how `new` differs from the constitution in force, one line each.
fn show(diff: &Difference, shell: &Shell) {
    for line in diff.lines() {
        shell.status("Differs", line);
    }
}

/// `aex propose` for a change of members or rules.
pub(super) fn propose(args: ProposeArgs, shell: &Shell) -> Result<()> {
    let (desc, governor) = open(&args.app, args.path.as_ref(), &args.governor)?;
    let identity = args.app.identity(shell)?;
    let new = match &args.constitution {
        Some(file) => load_constitution(file)?,
        None => governor.constitution().clone(),
    };
    let old = in_force(&governor, shell)?;
    let digest = new.digest();
    let diff = check(args.action, &old, &new).map_err(|e| {
        anyhow!(
            "{e}; nothing was proposed. The new constitution is {}'s `[governance]` (or \
             --constitution FILE); the one in force is the governor's ({})",
            desc.path.display(),
            short(&hex::encode(old.digest()))
        )
    })?;
    shell.status(
        "Change",
        format!(
            "constitution {} ({} members), replacing {} ({} members)",
            hex::encode(digest),
            new.members().len(),
            hex::encode(old.digest()),
            old.members().len()
        ),
    );
    show(&diff, shell);
    let document = serde_json::to_vec(&Document::of(&new))?;
    governor.store("/constitutions", "constitution", &document, &digest, shell)?;
    shell.status(
        "Stored",
        format!(
            "constitution {} on the governor",
            short(&hex::encode(digest))
        ),
    );
    let summary = args.summary.unwrap_or_else(|| {
        let mut s = format!(
            "{} of application `{}`: constitution {}\n",
            args.action,
            desc.application,
            hex::encode(digest)
        );
        diff.lines()
            .iter()
            .for_each(|l| s.push_str(&format!("{l}\n")));
        s
    });
    super::send_proposal(
        &governor,
        &desc,
        args.action,
        digest,
        summary,
        &identity,
        shell,
    )
}

/// Before approving an open change of members or rules: fetches the proposed constitution
/// (checked against the change), shows how it differs from the one in force, and refuses
/// unless it is the change the action says.
pub(super) fn before_approving(
    governor: &Governor,
    desc: &Descriptor,
    view: &View,
    shell: &Shell,
) -> Result<()> {
    let change = hex_digest(&view.change).ok_or_else(|| {
        anyhow!(
            "the governor shows proposal {}'s change as `{}`, not 64 hex digits",
            short(&view.id),
            view.change
        )
    })?;
    let new = fetch(governor, &change)?;
    let old = in_force(governor, shell)?;
    let action = view.action.parse().map_err(|e| anyhow!("{e}"))?;
    let diff = check(action, &old, &new)
        .map_err(|e| anyhow!("proposal {}: {e}; not approved", short(&view.id)))?;
    shell.status(
        "Fetched",
        format!(
            "constitution {} ({} members), the proposal's change",
            short(&view.change),
            new.members().len()
        ),
    );
    show(&diff, shell);
    if desc
        .governance
        .as_ref()
        .is_some_and(|c| c.digest() == change)
    {
        shell.status(
            "Matched",
            "your descriptor declares the proposed constitution",
        );
    }
    Ok(())
}

/// What a member is told once their ballot accepted a change of members or rules.
pub(super) fn accepted(view: &View, shell: &Shell) {
    shell.note(format!(
        "note: the governor applies it now; then its certificate attests constitution {}, \
         and every member updates `[governance]` in their descriptor to it",
        short(&view.change)
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = "[[node]]\nname = \"n\"\naddress = \"127.0.0.1:1\"\ntee = \"native\"\n";

    #[test]
    fn a_constitution_file_is_a_json_document_or_a_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let key = hex::encode(aex_crypto::SigningIdentity::from_seed(&[1; 32]).public());
        let json = dir.path().join("c.json");
        let text = format!(
            "{{\"members\": [{{\"name\": \"a\", \"key\": \"{key}\"}}], \"proposal_lifetime_ms\": 5}}"
        );
        std::fs::write(&json, text).unwrap();
        assert_eq!(load_constitution(&json).unwrap().members()[0].name, "a");
        let toml = dir.path().join("aex.toml");
        std::fs::write(
            &toml,
            format!(
                "[application]\nname = \"x\"\n{NODE}[governance]\nproposal_lifetime = \"1h\"\n\
                 [[governance.member]]\nname = \"b\"\nkey = \"{key}\"\n"
            ),
        )
        .unwrap();
        assert_eq!(load_constitution(&toml).unwrap().members()[0].name, "b");
        std::fs::write(&toml, format!("[application]\nname = \"x\"\n{NODE}")).unwrap();
        let err = format!("{:#}", load_constitution(&toml).unwrap_err());
        assert!(err.contains("declares no `[governance]`"), "{err}");
        let err = format!(
            "{:#}",
            load_constitution(&dir.path().join("none")).unwrap_err()
        );
        assert!(err.contains("cannot read"), "{err}");
    }
}
