//! The checks of `[governance]`'s `governor`, `governor_node` and `governor_measurement`:
//! where members reach the consortium's governor and what they pin of it.
//!
//! Invariant: either none of the three is set, or all are, and then `governor` is
//! `https://HOST:PORT/` (a path other than `/` is refused: the governor's routes are fixed),
//! `governor_node` names a declared `sgx` node and `governor_measurement` is 64 hex digits.
//! All three are needed together because a governor a member cannot appraise is one the member
//! would have to take on trust, and the whole point of the governor is that no member has to.
//! Only `sgx` (asymmetric evidence) is accepted: on `trustzone` and `sancus` only the holder
//! of the node's provider key can check evidence, and no single member may be that holder.
//! The host is not resolved here: loading a descriptor never touches the network.

use aex_crypto::Measurement;
use aex_tee::TeeKind;

use super::{suggest, Checker};
use crate::descriptor::error::DescriptorError;
use crate::descriptor::field::Field;
use crate::descriptor::model::{GovernorSpec, NodeSpec};
use crate::descriptor::raw::RawGovernance;

/// What the three fields are for, in every error about them.
const GOVERNOR_HELP: &str = "members reach the governor with `governor = \"https://HOST:PORT/\"`, \
     appraise it with the `[[node]]` named by `governor_node` (an `sgx` node) and pin its code \
     with `governor_measurement` (64 hex digits, the measurement every member computes from the \
     governor's source); set all three, or none";

impl Checker<'_> {
    /// The governor's location and pins; `None` when none of the three fields is set.
    pub(super) fn governor(
        &self,
        raw: Option<&RawGovernance>,
        nodes: &[NodeSpec],
    ) -> Result<Option<GovernorSpec>, DescriptorError> {
        let Some(raw) = raw else { return Ok(None) };
        let help = || Some(GOVERNOR_HELP.to_owned());
        let fields = [
            ("governor", &raw.governor),
            ("governor_node", &raw.governor_node),
            ("governor_measurement", &raw.governor_measurement),
        ];
        let set: Vec<&str> = fields
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(n, _)| *n)
            .collect();
        let (Some(url), Some(node), Some(measurement)) =
            (&raw.governor, &raw.governor_node, &raw.governor_measurement)
        else {
            let Some(first) = set.first() else {
                return Ok(None);
            };
            let missing: Vec<String> = fields
                .iter()
                .filter(|(_, v)| v.is_none())
                .map(|(n, _)| format!("`{n}`"))
                .collect();
            return Err(self.error(
                Field::Governance(first),
                format!("`{first}` is set but {} is not", missing.join(" and ")),
                help(),
            ));
        };
        let address = parse_governor_url(url)
            .map_err(|reason| self.error(Field::Governance("governor"), reason, help()))?;
        let field = Field::Governance("governor_node");
        let Some(spec) = nodes.iter().find(|n| &n.name == node) else {
            let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
            return Err(self.error(
                field,
                format!("no node `{node}` in the descriptor"),
                suggest::help(node, "nodes", &names).or_else(help),
            ));
        };
        if spec.tee != TeeKind::Sgx {
            return Err(self.error(
                field,
                format!(
                    "the governor's node `{node}` is a `{}` node; members can check a \
                     governor's evidence themselves only on `sgx`",
                    spec.tee
                ),
                Some(
                    "run the governor on an `sgx` node: on `trustzone` and `sancus` only the \
                     holder of the node's provider key checks evidence, and no single member \
                     may be that holder; `native` has no evidence at all"
                        .to_owned(),
                ),
            ));
        }
        let measurement = Measurement::from_hex(measurement).map_err(|_| {
            self.error(
                Field::Governance("governor_measurement"),
                "not a measurement: expected 64 hex digits".to_owned(),
                help(),
            )
        })?;
        Ok(Some(GovernorSpec {
            url: url.clone(),
            address,
            node: node.clone(),
            measurement,
        }))
    }
}

/// `https://HOST:PORT/` (the final `/` optional): its `HOST:PORT`. The reason says what is
/// wrong, never resolving the host.
pub fn parse_governor_url(url: &str) -> Result<String, String> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(format!(
            "`{url}` is not an https URL: the governor serves attested HTTPS only"
        ));
    };
    let authority = match rest.split_once('/') {
        Some((authority, "")) => authority,
        None => rest,
        Some((_, path)) => {
            return Err(format!(
                "`{url}` has the path `/{path}`; give the governor's root, `https://HOST:PORT/`"
            ))
        }
    };
    let port = authority
        .rsplit_once(':')
        .filter(|(host, _)| !host.is_empty())
        .and_then(|(_, port)| port.parse::<u16>().ok())
        .filter(|port| *port != 0);
    match port {
        Some(_) => Ok(authority.to_owned()),
        None => Err(format!(
            "`{url}` has no HOST:PORT (a port from 1 to 65535) after `https://`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_governor_url;

    #[test]
    fn a_governor_url_is_an_https_root_with_a_port() {
        assert_eq!(
            parse_governor_url("https://127.0.0.1:8443/").as_deref(),
            Ok("127.0.0.1:8443")
        );
        assert_eq!(
            parse_governor_url("https://gov.example:443").as_deref(),
            Ok("gov.example:443")
        );
        assert_eq!(
            parse_governor_url("https://[::1]:9000/").as_deref(),
            Ok("[::1]:9000")
        );
        for (bad, says) in [
            ("http://127.0.0.1:80/", "not an https URL"),
            ("127.0.0.1:80", "not an https URL"),
            ("https://127.0.0.1/", "no HOST:PORT"),
            ("https://127.0.0.1:0/", "no HOST:PORT"),
            ("https://:80/", "no HOST:PORT"),
            ("https://127.0.0.1:99999/", "no HOST:PORT"),
            (
                "https://127.0.0.1:80/proposals",
                "has the path `/proposals`",
            ),
        ] {
            let err = parse_governor_url(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
