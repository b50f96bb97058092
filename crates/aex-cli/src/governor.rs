//! A member's client of the consortium's governor (`aex propose`, `aex proposals`, `aex vote`,
//! `aex withdraw`; docs/PROTOCOL.md §13).
//!
//! Besides proposals and ballots, the governor stores what a `deploy` or `update` proposal
//! asks it to run: the member's binaries (`/binaries`, uploaded in chunks a request body can
//! hold, resumable because the governor says how much it holds) and the bundle naming them
//! (`/bundles`). A member never trusts what it reads back: a bundle fetched by the proposal's
//! change is checked against that digest here, before anyone votes on it.
//!
//! Every request goes over a fresh attested TLS connection, and is sent only after two checks
//! against the member's *own* descriptor: the governor's evidence passes the appraisal of the
//! `[[node]]` it runs on with the pinned `governor_measurement`, and its certificate attests
//! (as the extra key `aex_governance::CERTIFICATE_KEY_NAME`) the digest of the very
//! constitution the member's descriptor declares. The second check is what makes the first
//! mean something: the governor's code is the same for every consortium, and whoever called
//! its `start` chose the constitution it counts ballots under.

use std::cell::Cell;
use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::Range;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aex_client::{Anchor, Policy, Verified};
use aex_crypto::Measurement;
use aex_deploy::descriptor::{Descriptor, GovernorSpec, PlatformKeySource};
use aex_governance::{Bundle, Constitution, CERTIFICATE_KEY_NAME};
use aex_tee::sgx::SimRootPublicKey;
use aex_tee::TeeKind;
use anyhow::{anyhow, bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::shell::Shell;

#[path = "governor_changed.rs"]
mod changed;

/// How long a member waits to connect and for each read and write, unless `--timeout` says.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// The extra key of the governor's certificate that attests its own deployer key: the key
/// the nodes of a governed application must admit for the governor to apply its proposals.
pub const IDENTITY_KEY_NAME: &str = "aex governor identity v1";

/// Bytes per `PUT /binaries/<sha256>/<offset>`: half the governor's 1 MiB limit on a request
/// body, so a chunk and its HTTP head always fit, in few enough requests (each is a fresh
/// attested connection) for a binary of a few MiB.
pub const CHUNK: usize = 512 * 1024;

/// What the governor holds of one binary (`GET`/`PUT /binaries/...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Stored {
    /// Bytes stored so far, from the start.
    pub have: u64,
    /// Whether the stored bytes hash to the binary's digest.
    pub complete: bool,
}

/// The governor's receipt for a document it stores under its digest (`POST /bundles`,
/// `/orders`, `/constitutions`).
#[derive(Debug, Clone, Deserialize)]
pub struct Received {
    /// The document's digest as the governor computed it, hex.
    pub digest: String,
    /// A bundle's binaries that the governor does not hold completely yet, hex SHA-256.
    #[serde(default)]
    pub missing: Vec<String>,
}

/// What became of an accepted proposal (`GET /proposals/<id>/outcome`). Its `report` (what
/// the deployment did) is shown by `aex proposals --json` only: a table has no room for it.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Outcome {
    /// `waiting`, `applying`, `applied` or `failed`.
    pub state: String,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// What carrying it out did, in one line.
    #[serde(default)]
    pub report: Option<String>,
}

/// Where the governor is, as the command line overrides the descriptor.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--governor URL`.
    pub url: Option<String>,
    /// `--governor-node NODE`.
    pub node: Option<String>,
    /// `--measurement HEX`.
    pub measurement: Option<String>,
    /// `--current-constitution FILE`: the constitution in force while the member's
    /// descriptor already declares a proposed one, and the file it was read from.
    pub current: Option<(Constitution, PathBuf)>,
}

/// A governor this member will talk to: where, how it is appraised, and which constitution
/// its certificate must attest.
pub struct Governor {
    url: String,
    addr: SocketAddr,
    policy: Policy,
    constitution: Constitution,
    digest: [u8; 32],
    descriptor: PathBuf,
    /// `--current-constitution`: a second constitution the member vouches for.
    current: Option<(Constitution, PathBuf)>,
    timeout: Duration,
    /// Whether the verified line was printed: once per command, not once per request.
    announced: Cell<bool>,
}

/// A proposal as the governor shows it (shared with the governor: one type on both sides).
pub use aex_governance::ProposalView as View;

impl Governor {
    /// The governor `desc` names (with `overrides` taking precedence), for the constitution
    /// `desc` declares.
    pub fn of(desc: &Descriptor, overrides: &Overrides, timeout: Duration) -> Result<Governor> {
        let file = desc.path.display();
        let constitution = desc.governance.clone().ok_or_else(|| {
            anyhow!(
                "{file} declares no `[governance]`: the governor counts ballots under the \
                 constitution in your descriptor, so it must declare one (see docs/DESCRIPTOR.md)"
            )
        })?;
        let spec = located(desc.governor.as_ref(), overrides).with_context(|| {
            format!("{file}: where is the governor, and what does this member pin of it?")
        })?;
        let policy = policy(desc, &spec)?;
        let addr = spec
            .address
            .to_socket_addrs()
            .with_context(|| {
                format!(
                    "governor `{}`: `{}` does not resolve",
                    spec.url, spec.address
                )
            })?
            .next()
            .with_context(|| {
                format!("governor `{}`: `{}` has no address", spec.url, spec.address)
            })?;
        Ok(Governor {
            url: spec.url,
            addr,
            policy,
            digest: constitution.digest(),
            constitution,
            descriptor: desc.path.clone(),
            current: overrides.current.clone(),
            timeout,
            announced: Cell::new(false),
        })
    }

    /// Where it serves.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How it is appraised.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The constitution this member holds.
    pub fn constitution(&self) -> &Constitution {
        &self.constitution
    }

    /// Connects, verifies the governor and its constitution, and sends one request: the
    /// body of a 2xx answer as text, what was verified; a refusal (4xx) or a failure is an
    /// error carrying the governor's own text.
    pub fn send(&self, method: &str, path: &str, body: &[u8]) -> Result<(Verified, String)> {
        let (verified, bytes) = self.send_bytes(method, path, body)?;
        Ok((verified, String::from_utf8_lossy(&bytes).trim().to_owned()))
    }

    /// [`Governor::send`] with the answer's body exactly as sent (a bundle, whose digest must
    /// match to the byte).
    pub fn send_bytes(&self, method: &str, path: &str, body: &[u8]) -> Result<(Verified, Vec<u8>)> {
        let session = aex_client::connect(self.addr, &self.policy, None, self.timeout)
            .with_context(|| {
                format!(
                    "the governor at {} was not accepted: it must run the pinned \
                     `governor_measurement` on the `governor_node` your descriptor names; \
                     nothing was sent",
                    self.url
                )
            })?;
        let verified = session.verified().clone();
        self.check_constitution(&verified)?;
        let answer = session
            .send(method, path, body)
            .with_context(|| format!("{method} {path} to the governor at {}", self.url))?;
        let text = || String::from_utf8_lossy(&answer.body).trim().to_owned();
        match answer.status {
            200..=299 => Ok((verified, answer.body)),
            code @ 400..=499 => bail!("the governor refused ({code}): {}", text()),
            code => bail!(
                "the governor could not answer ({code}): {}; try again, and if it \
                 persists ask the governor node's operator",
                text()
            ),
        }
    }

    /// [`Governor::send`] whose 2xx answer is JSON of type `T`.
    pub fn json<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<(Verified, T)> {
        let (verified, text) = self.send(method, path, body)?;
        let value = serde_json::from_str(&text).with_context(|| {
            format!("the governor's answer to {method} {path} is not what this aex reads: {text}")
        })?;
        Ok((verified, value))
    }

    /// Stores `bytes`, the `what` a proposal will name by its digest `digest`, with `POST
    /// path`, and announces the governor (what was verified, and the receipt); fails unless the governor says it holds it under
    /// that very digest (else the proposal would name something it cannot find).
    pub fn store(
        &self,
        path: &str,
        what: &str,
        bytes: &[u8],
        digest: &[u8; 32],
        shell: &Shell,
    ) -> Result<(Verified, Received)> {
        let (verified, received): (_, Received) = self
            .json("POST", path, bytes)
            .with_context(|| format!("POST {path}: the {what} the proposal names"))?;
        self.announce(&verified, shell);
        let mine = hex::encode(digest);
        if received.digest != mine {
            bail!(
                "the governor stored the {what} as {}, not as its digest {mine}: it would not \
                 find it by the proposal's change; nothing was proposed",
                received.digest
            );
        }
        Ok((verified, received))
    }

    /// Says what was verified of the governor, the first time in this command.
    pub fn announce(&self, verified: &Verified, shell: &Shell) {
        if !self.announced.replace(true) {
            shell.status("Verified", self.verified_line(verified));
        }
    }

    /// Makes sure the governor holds `bytes` completely as the binary `digest` (hex SHA-256;
    /// `label` names it in messages, e.g. its modules): asks what it holds, then sends the
    /// rest in [`CHUNK`]s from there, so an upload cut short resumes where it stopped.
    /// Returns the bytes sent (0 if the governor had them all).
    pub fn upload_binary(
        &self,
        digest: &str,
        bytes: &[u8],
        label: &str,
        shell: &Shell,
    ) -> Result<u64> {
        let path = format!("/binaries/{digest}");
        let what = || format!("binary {} ({label})", short(digest));
        let (verified, mut stored) = self
            .json::<Stored>("GET", &path, b"")
            .with_context(|| format!("{}: GET {path}", what()))?;
        self.announce(&verified, shell);
        let len = bytes.len() as u64;
        if stored.complete {
            shell.status("Present", format!("{} already on the governor", what()));
            return Ok(0);
        }
        let started = Instant::now();
        let from = stored.have;
        shell.status(
            if from == 0 { "Uploading" } else { "Resuming" },
            format!("{}: {} from byte {from}", what(), size(len)),
        );
        while !stored.complete {
            let Some(range) = next_chunk(len, stored.have) else {
                bail!(
                    "{}: the governor holds {} of its {len} bytes but does not take them as \
                     complete: they do not hash to its digest there",
                    what(),
                    stored.have
                );
            };
            let put = format!("{path}/{}", range.start);
            let (_, next) = self
                .json::<Stored>("PUT", &put, &bytes[range.start..range.end])
                .with_context(|| format!("{}: PUT {put}", what()))?;
            if next.have <= stored.have || next.have > len {
                bail!(
                    "{}: after PUT {put} of {} bytes the governor holds {} bytes of {len}",
                    what(),
                    range.len(),
                    next.have
                );
            }
            stored = next;
        }
        let sent = len - from.min(len);
        shell.status(
            "Uploaded",
            format!(
                "{}: {} in {:.2} s",
                what(),
                size(sent),
                started.elapsed().as_secs_f64()
            ),
        );
        Ok(sent)
    }

    /// The bundle the governor holds as `change` (a proposal's change), checked against it:
    /// a governor that answers other bytes is refused.
    pub fn bundle(&self, change: &[u8; 32], shell: &Shell) -> Result<Bundle> {
        let path = format!("/bundles/{}", hex::encode(change));
        let (verified, bytes) = self
            .send_bytes("GET", &path, b"")
            .with_context(|| format!("GET {path}: the bundle the proposal names"))?;
        self.announce(&verified, shell);
        check_bundle(change, &bytes)?;
        Bundle::from_bytes(&bytes).map_err(|e| {
            anyhow!(
                "the bundle {} does not parse: {e}",
                short(&hex::encode(change))
            )
        })
    }

    /// Refuses a governor whose certificate does not attest this member's constitution (the
    /// descriptor's, or the one `--current-constitution` gives). A governor whose constitution
    /// was changed by an applied proposal is told apart, so the member knows to update.
    fn check_constitution(&self, verified: &Verified) -> Result<()> {
        let mine = hex::encode(self.digest);
        let Some(theirs) = verified.extra(CERTIFICATE_KEY_NAME) else {
            bail!(
                "the governor's certificate attests no constitution (no `{CERTIFICATE_KEY_NAME}` \
                 key): it is not an aex governor, or not started; nothing was sent"
            )
        };
        let current = self.current.as_ref().map(|(c, _)| c.digest());
        if theirs == self.digest || current.is_some_and(|c| theirs == c) {
            return Ok(());
        }
        if let Some((id, action)) = self.changed_by(theirs) {
            bail!(
                "the governor's constitution changed: proposal {} (`{action}`) was applied and \
                 put constitution {} in force; {} still declares {mine}. Update its \
                 `[governance]` to the constitution in force (the governor shows it at GET \
                 /constitution; the other members have it) and run this again; no proposal or \
                 ballot was sent",
                short(&id),
                hex::encode(theirs),
                self.descriptor.display()
            )
        }
        bail!(
            "the governor holds another constitution ({}) than {} declares ({mine}): it \
             counts ballots under members or rules you did not agree to; nothing was sent. \
             Compare your `[governance]` with the other members', or with what the \
             governor shows at GET /constitution",
            hex::encode(theirs),
            self.descriptor.display()
        )
    }

    /// One line saying what was verified.
    fn verified_line(&self, v: &Verified) -> String {
        if let Some(line) = self.verified_current(v) {
            return line;
        }
        let mode = match (v.simulated, v.debug) {
            (true, _) => ", simulated",
            (false, true) => ", debug",
            (false, false) => "",
        };
        format!(
            "governor at {}: measurement {} ({}{mode}), constitution {} ({} members), the one {} declares",
            self.url,
            v.measurement.short(16),
            v.kind,
            &hex::encode(self.digest)[..16],
            self.constitution.members().len(),
            self.descriptor.display()
        )
    }
}

/// The byte range of the next chunk of a binary of `len` bytes of which the governor holds
/// the first `have`; `None` when it holds them all (or, wrongly, more).
pub fn next_chunk(len: u64, have: u64) -> Option<Range<usize>> {
    if have >= len {
        return None;
    }
    let start = usize::try_from(have).ok()?;
    let end = usize::try_from(len.min(have + CHUNK as u64)).ok()?;
    Some(start..end)
}

/// Refuses `bytes` unless they are the bundle whose digest is `change`.
pub fn check_bundle(change: &[u8; 32], bytes: &[u8]) -> Result<()> {
    let got = Bundle::digest_of(bytes);
    if got != *change {
        bail!(
            "the governor answered another bundle ({} bytes, sha256 {}) than the proposal \
             names ({}): it is not the change members vote on; refusing to vote. Ask the \
             other members and the governor node's operator",
            bytes.len(),
            hex::encode(got),
            hex::encode(change)
        );
    }
    Ok(())
}

/// The first 16 hex digits of a digest, as tables show ids.
pub fn short(hex: &str) -> &str {
    &hex[..hex.len().min(16)]
}

/// A byte count for people: `812 B`, `40.0 KiB`, `3.25 MiB`.
pub fn size(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", b / 1024.0),
        _ => format!("{:.2} MiB", b / 1_048_576.0),
    }
}

/// The descriptor's governor with each override in its place; every part is needed.
fn located(declared: Option<&GovernorSpec>, o: &Overrides) -> Result<GovernorSpec> {
    let missing = |what: &str, flag: &str| {
        anyhow!(
            "no `{what}`: set `governor`, `governor_node` and `governor_measurement` in \
             `[governance]`, or give `{flag}`"
        )
    };
    let (url, address) = match (&o.url, declared) {
        (Some(url), _) => {
            let address = aex_deploy::descriptor::parse_governor_url(url)
                .map_err(|e| anyhow!("--governor: {e}"))?;
            (url.clone(), address)
        }
        (None, Some(d)) => (d.url.clone(), d.address.clone()),
        (None, None) => return Err(missing("governor", "--governor URL")),
    };
    let node = match (&o.node, declared) {
        (Some(node), _) => node.clone(),
        (None, Some(d)) => d.node.clone(),
        (None, None) => return Err(missing("governor_node", "--governor-node NODE")),
    };
    let measurement = match (&o.measurement, declared) {
        (Some(hex), _) => Measurement::from_hex(hex)
            .map_err(|_| anyhow!("--measurement: `{hex}` is not 64 hex digits"))?,
        (None, Some(d)) => d.measurement,
        (None, None) => return Err(missing("governor_measurement", "--measurement HEX")),
    };
    Ok(GovernorSpec {
        url,
        address,
        node,
        measurement,
    })
}

/// How a member appraises the governor `desc` names (with `overrides` taking precedence),
/// without reaching it: what checks its certificates in a ledger offline.
pub fn appraisal(desc: &Descriptor, overrides: &Overrides) -> Result<Policy> {
    let spec = located(desc.governor.as_ref(), overrides).with_context(|| {
        format!(
            "{}: where is the governor, and what does this member pin of it?",
            desc.path.display()
        )
    })?;
    policy(desc, &spec)
}

/// [`appraisal`], then the same appraisal (the pinned measurement) on every other `sgx` node
/// of the descriptor that has a platform key: the governor's node first. A ledger outlives
/// the governor's node: after a recovery onto another node, the certificates recorded on the
/// lost one pass under its `[[node]]`, which the member keeps in the descriptor for that.
pub fn appraisals(desc: &Descriptor, overrides: &Overrides) -> Result<Vec<Policy>> {
    let primary = appraisal(desc, overrides)?;
    let spec = located(desc.governor.as_ref(), overrides)?;
    let mut all = vec![primary];
    for node in desc.nodes.iter().filter(|n| n.name != spec.node) {
        let other = GovernorSpec {
            node: node.name.clone(),
            ..spec.clone()
        };
        if let Ok(p) = policy(desc, &other) {
            all.push(p);
        }
    }
    Ok(all)
}

/// How a member appraises the governor: as the deployer appraises a module on that node,
/// from the descriptor alone (a member need not hold any deployer state).
fn policy(desc: &Descriptor, spec: &GovernorSpec) -> Result<Policy> {
    let node = desc.node(&spec.node).ok_or_else(|| {
        anyhow!(
            "the governor's node `{}` is not a `[[node]]` of {}",
            spec.node,
            desc.path.display()
        )
    })?;
    if node.tee != TeeKind::Sgx {
        bail!(
            "the governor's node `{}` is a `{}` node: members can check a governor's evidence \
             themselves only on `sgx`",
            node.name,
            node.tee
        );
    }
    let key = match &node.platform_key {
        Some(PlatformKeySource::Inline(k)) => k.clone(),
        Some(PlatformKeySource::File(p)) => std::fs::read_to_string(p)
            .ok()
            .and_then(|t| hex::decode(t.trim()).ok())
            .ok_or_else(|| {
                anyhow!(
                    "node `{}`: cannot read a platform key in hex from {}",
                    node.name,
                    p.display()
                )
            })?,
        Some(_) => bail!(
            "node `{}`: this `aex` does not know that form of platform key",
            node.name
        ),
        None => bail!(
            "node `{}` has no `platform_key` or `platform_key_file`: a member appraises the \
             governor against its node's platform key, so pin it in the descriptor",
            node.name
        ),
    };
    let root = SimRootPublicKey::from_sec1(&key).map_err(|_| {
        anyhow!(
            "node `{}`: its platform key is not a P-256 public key",
            node.name
        )
    })?;
    Ok(Policy {
        kind: TeeKind::Sgx,
        anchor: Anchor::SimSgxRoot(root),
        measurements: vec![spec.measurement],
        allow_simulated: node.simulation,
        allow_debug: node.allow_debug,
        allow_insecure: false,
    })
}

/// The one proposal whose id starts with `prefix` (hex, as `aex proposals` shows the first
/// 16 digits), among `views`.
pub fn find_id<'a>(prefix: &str, views: &'a [View]) -> Result<&'a View> {
    let prefix = prefix.to_ascii_lowercase();
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "`{prefix}` is not a proposal id: give its hex digits, as `aex proposals` shows them"
        );
    }
    let found: Vec<&View> = views.iter().filter(|v| v.id.starts_with(&prefix)).collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => bail!("no proposal's id starts with `{prefix}`; `aex proposals` lists them"),
        many => bail!(
            "{} proposals' ids start with `{prefix}`: give more digits",
            many.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: &str) -> View {
        View {
            id: id.into(),
            action: "deploy".into(),
            proposer: "a".into(),
            status: "open".into(),
            approvals: 1,
            rejections: 0,
            rule: "any 2".into(),
            required: 2,
            change: String::new(),
            summary: String::new(),
            opened_ms: 0,
            expires_ms: 0,
        }
    }

    #[test]
    fn an_id_prefix_names_exactly_one_proposal() {
        let views = [view("ab12cd"), view("ab34ef"), view("ff00aa")];
        assert_eq!(find_id("AB12", &views).unwrap().id, "ab12cd");
        assert_eq!(find_id("ff", &views).unwrap().id, "ff00aa");
        let err = |p: &str| find_id(p, &views).unwrap_err().to_string();
        assert!(err("ab").contains("2 proposals' ids start with `ab`"));
        assert!(err("99").contains("no proposal's id starts with `99`"));
        assert!(err("xyz").contains("is not a proposal id"));
        assert!(err("").contains("is not a proposal id"));
    }

    #[test]
    fn binaries_go_in_chunks_from_what_the_governor_holds() {
        let c = CHUNK as u64;
        assert_eq!(next_chunk(0, 0), None);
        assert_eq!(next_chunk(10, 0), Some(0..10));
        assert_eq!(next_chunk(c, 0), Some(0..CHUNK));
        assert_eq!(next_chunk(c + 1, 0), Some(0..CHUNK));
        assert_eq!(next_chunk(c + 1, c), Some(CHUNK..CHUNK + 1));
        // Resumed mid-chunk (a governor that took part of a body): from there, one chunk.
        assert_eq!(next_chunk(3 * c, 100), Some(100..100 + CHUNK));
        assert_eq!(next_chunk(10, 10), None);
        assert_eq!(next_chunk(10, 11), None);
        // Every byte once, in order, whatever the length.
        for len in [1, c - 1, c, c + 1, 5 * c + 7] {
            let (mut have, mut sent) = (0, 0);
            while let Some(r) = next_chunk(len, have) {
                assert_eq!(r.start as u64, have);
                assert!(r.len() <= CHUNK && !r.is_empty());
                sent += r.len() as u64;
                have = r.end as u64;
            }
            assert_eq!((have, sent), (len, len));
        }
    }

    #[test]
    fn a_bundle_is_taken_only_with_the_proposals_digest() {
        let bytes = b"{\"application\":\"a\"}";
        let change = Bundle::digest_of(bytes);
        assert!(check_bundle(&change, bytes).is_ok());
        let err = check_bundle(&change, b"{}").unwrap_err().to_string();
        assert!(err.contains("another bundle (2 bytes"), "{err}");
        assert!(err.contains(&hex::encode(change)), "{err}");
    }

    #[test]
    fn sizes_read_as_people_read_them() {
        assert_eq!(size(812), "812 B");
        assert_eq!(size(40 * 1024), "40.0 KiB");
        assert_eq!(size(3 * 1_048_576 + 262_144), "3.25 MiB");
    }

    #[test]
    fn flags_replace_the_descriptor_and_every_part_is_needed() {
        let declared = GovernorSpec {
            url: "https://127.0.0.1:1/".into(),
            address: "127.0.0.1:1".into(),
            node: "n1".into(),
            measurement: Measurement([1; 32]),
        };
        let o = Overrides {
            url: Some("https://127.0.0.1:2".into()),
            ..Overrides::default()
        };
        let got = located(Some(&declared), &o).unwrap();
        assert_eq!(
            (got.address.as_str(), got.node.as_str()),
            ("127.0.0.1:2", "n1")
        );
        let err = located(None, &o).unwrap_err().to_string();
        assert!(err.contains("--governor-node NODE"), "{err}");
        let bad = Overrides {
            measurement: Some("12".into()),
            ..Overrides::default()
        };
        let err = located(Some(&declared), &bad).unwrap_err().to_string();
        assert!(
            err.contains("--measurement: `12` is not 64 hex digits"),
            "{err}"
        );
        let bad = Overrides {
            url: Some("http://x:1/".into()),
            ..Overrides::default()
        };
        let err = located(Some(&declared), &bad).unwrap_err().to_string();
        assert!(err.contains("not an https URL"), "{err}");
    }
}
