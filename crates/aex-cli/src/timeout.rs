//! The global `--timeout` option and `AEX_TIMEOUT`: how long a command waits for nodes.
//!
//! Every command that talks to nodes takes one limit for all of its node waits, `--timeout 5s`
//! (or `AEX_TIMEOUT=5s`; the option wins): each answer, a local node's start and stop, a
//! request's reply. Unset, each wait keeps its own default (15 s for a node's answer). `aex
//! node` is the node itself, so there the option names one of the node's own timeouts,
//! `--timeout hello=250ms`, once per timeout; it ignores `AEX_TIMEOUT`, which its parent
//! deployer may have set for itself.
//!
//! Both forms are one clap option (clap would refuse two `--timeout`s in one command line), so
//! the form is checked against the command after parsing; the wrong one is a usage error.

use std::time::Duration;

use aex_node::{TimeoutError, Timeouts};

/// The environment variable holding the deployer's limit.
pub const ENV: &str = "AEX_TIMEOUT";

/// One `--timeout` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeoutArg {
    /// `DURATION`: the limit of every node wait of a deployer command.
    All(Duration),
    /// `NAME=DURATION`: one of a node's own timeouts (`aex node`).
    Named(&'static str, Duration),
}

/// Parses `DURATION` or `NAME=DURATION` (clap's value parser: its error is a usage error).
pub fn parse(text: &str) -> Result<TimeoutArg, String> {
    let parsed = if text.contains('=') {
        Timeouts::parse_setting(text).map(|(name, d)| TimeoutArg::Named(name, d))
    } else {
        Timeouts::parse_duration(text).map(TimeoutArg::All)
    };
    parsed.map_err(|e| e.to_string())
}

/// Parses a `--wait` value: a DURATION, where zero is allowed (do not wait at all), unlike a
/// timeout, whose zero would fail every wait at once.
pub fn parse_wait(text: &str) -> Result<Duration, String> {
    match Timeouts::parse_duration(text) {
        Ok(wait) => Ok(wait),
        Err(TimeoutError::Zero { .. }) => Ok(Duration::ZERO),
        Err(e) => Err(e.to_string()),
    }
}

/// Parses an interval (`aex status --watch=INTERVAL`): a DURATION longer than zero.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    Timeouts::parse_duration(text).map_err(|e| e.to_string())
}

/// The limit a deployer command uses: the last `--timeout DURATION`, else `env` (the value of
/// `AEX_TIMEOUT`), else none (each wait's default). A node timeout's name, or an invalid
/// `env`, is an error saying what is valid.
pub fn for_deployer(args: &[TimeoutArg], env: Option<&str>) -> Result<Option<Duration>, String> {
    let mut limit = None;
    for arg in args {
        match arg {
            TimeoutArg::All(d) => limit = Some(*d),
            TimeoutArg::Named(name, d) => {
                return Err(format!(
                    "`--timeout {name}={}` sets a node's own timeout, which only `aex node` \
                     takes; other commands take one DURATION for all their node waits, \
                     e.g. `--timeout 5s`",
                    show(*d)
                ))
            }
        }
    }
    if limit.is_some() {
        return Ok(limit);
    }
    match env {
        None => Ok(None),
        Some(text) => Timeouts::parse_duration(text)
            .map(Some)
            .map_err(|e| format!("invalid value '{text}' for {ENV}: {e}")),
    }
}

/// The node timeouts `aex node` sets, in order. A bare DURATION is an error: the node has
/// several timeouts, and the form is the deployer's.
pub fn for_node(args: &[TimeoutArg]) -> Result<Vec<(&'static str, Duration)>, String> {
    args.iter()
        .map(|arg| match arg {
            TimeoutArg::Named(name, d) => Ok((*name, *d)),
            TimeoutArg::All(d) => Err(format!(
                "`aex node --timeout` takes NAME=DURATION, not `{}` alone (e.g. `--timeout \
                 hello={0}`); valid names are {}",
                show(*d),
                Timeouts::names().join(", ")
            )),
        })
        .collect()
}

/// A duration as it would be written: `250ms`, `10s`.
pub fn show(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn values() {
        assert_eq!(parse("500ms"), Ok(TimeoutArg::All(MS(500))));
        assert_eq!(parse("2m"), Ok(TimeoutArg::All(MS(120_000))));
        assert_eq!(
            parse("hello=250ms"),
            Ok(TimeoutArg::Named("hello", MS(250)))
        );
        for (bad, says) in [
            ("5", "invalid duration `5`: write a whole number and a unit"),
            ("0s", "longer than zero"),
            (
                "helo=1s",
                "unknown timeout `helo`: valid names are hello, start,",
            ),
            ("hello=1.5s", "invalid duration `1.5s`"),
            ("hello=0ms", "longer than zero"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn a_wait_may_be_zero() {
        assert_eq!(parse_wait("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_wait("250ms"), Ok(MS(250)));
        let e = parse_wait("soon").unwrap_err();
        assert!(e.contains("invalid duration `soon`"), "{e}");
    }

    #[test]
    fn deployer_commands_take_one_duration_flag_over_environment() {
        assert_eq!(for_deployer(&[], None), Ok(None));
        assert_eq!(for_deployer(&[], Some("2s")), Ok(Some(MS(2_000))));
        let flags = [TimeoutArg::All(MS(1_000)), TimeoutArg::All(MS(300))];
        assert_eq!(for_deployer(&flags, Some("2s")), Ok(Some(MS(300))));
        // The flag wins even over an invalid variable, which is then not used.
        assert_eq!(for_deployer(&flags, Some("soon")), Ok(Some(MS(300))));

        let e = for_deployer(&[], Some("soon")).unwrap_err();
        assert!(
            e.contains("for AEX_TIMEOUT") && e.contains("e.g. `250ms`, `10s`"),
            "{e}"
        );
        let e = for_deployer(&[], Some("0ms")).unwrap_err();
        assert!(e.contains("longer than zero"), "{e}");
        let e = for_deployer(&[TimeoutArg::Named("reply", MS(30_000))], None).unwrap_err();
        assert!(
            e.contains("`--timeout reply=30s`") && e.contains("only `aex node`"),
            "{e}"
        );
    }

    #[test]
    fn the_node_takes_names_only() {
        let named = [
            TimeoutArg::Named("hello", MS(250)),
            TimeoutArg::Named("stale", MS(100)),
        ];
        assert_eq!(
            for_node(&named),
            Ok(vec![("hello", MS(250)), ("stale", MS(100))])
        );
        let e = for_node(&[TimeoutArg::All(MS(5_000))]).unwrap_err();
        assert!(
            e.contains("takes NAME=DURATION, not `5s` alone")
                && e.contains("`--timeout hello=5s`")
                && e.contains("valid names are hello, start"),
            "{e}"
        );
    }
}
