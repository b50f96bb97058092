//! Timeouts: how long a node agent waits for what it does not control.
//!
//! Every wait of the node on a deployer, a peer node or a module process has a limit, so a
//! silent or stalled party can hold up only itself (docs/SECURITY.md). The limits are
//! configuration, not constants: an operator may lengthen them for slow links or slow TEEs,
//! and fault tests shorten them so that a stalled peer is noticed in milliseconds. They are
//! set in `node.toml`'s `[timeouts]` table or with `aex node --timeout NAME=DURATION`, and
//! reach each use through the node's shared state.
//!
//! Durations are written as a whole number and a unit: `250ms`, `10s`, `1m`, `1h`. A zero
//! limit is refused: it would fail every wait at once.

use std::time::Duration;

/// How long the node waits for each thing it does not control. [`Default`] holds the values
/// a node uses unless its configuration says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// `hello`: a new connection's first frame, the `Hello` of a deployer or peer node;
    /// without it the connection is closed. Default 10 s.
    pub hello: Duration,
    /// `start`: a started module process's `Hello`; without it the load fails. Default 10 s.
    pub start: Duration,
    /// `body`: the rest of a frame once its length prefix has arrived, on any connection or
    /// module output; a stalled frame closes the stream. Default 10 s.
    pub body: Duration,
    /// `reply`: a module's answer to `Attest` or `Command`, queueing included. Default 10 s.
    /// It bounds silence: each sealed-state chunk a persistent module stores before it
    /// answers restarts it, up to `MAX_STRETCH` (30) times in all.
    pub reply: Duration,
    /// `stats`: a module's answer to `Stats` (its counters in status, reported as unknown
    /// after it). Default 2 s.
    pub stats: Duration,
    /// `write`: one batch of writes to a deployer session or a peer node's link; a stalled
    /// reader loses its session or link. Default 10 s.
    pub write: Duration,
    /// `connect`: opening a link to a peer node (TCP connection and `Hello`). Default 3 s.
    pub connect: Duration,
    /// `backoff`: the first pause between attempts to reconnect a peer link; it doubles up to
    /// `backoff_max`. Default 50 ms.
    pub backoff: Duration,
    /// `backoff_max`: the longest pause between reconnection attempts. Default 1 s.
    pub backoff_max: Duration,
    /// `stale`: how long a peer link may be down before the events queued for it are dropped
    /// (not replayed after the outage). Default 1 s.
    pub stale: Duration,
    /// `stop`: a killed module process to end (unload, node shutdown) or, after a failed
    /// start, to report its exit status. Default 2 s.
    pub stop: Duration,
    /// `exit`: a module that closed its output to report its exit status, named in the error
    /// of the request that found it gone. Default 500 ms.
    pub exit: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        Timeouts {
            hello: s(10),
            start: s(10),
            body: s(10),
            reply: s(10),
            stats: s(2),
            write: s(10),
            connect: s(3),
            backoff: ms(50),
            backoff_max: s(1),
            stale: s(1),
            stop: s(2),
            exit: ms(500),
        }
    }
}

/// A timeout setting that cannot be used. The message says what would be valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeoutError {
    /// No timeout has this name.
    #[error("unknown timeout `{name}`: valid names are {}", Timeouts::names().join(", "))]
    Unknown {
        /// The name given.
        name: String,
    },
    /// The text is not a duration.
    #[error(
        "invalid duration `{text}`: write a whole number and a unit, e.g. `250ms`, `10s`, `1m` \
         or `1h`"
    )]
    Duration {
        /// The text given.
        text: String,
    },
    /// A zero limit would fail every wait at once.
    #[error("a timeout must be longer than zero (got `{text}`)")]
    Zero {
        /// The text given.
        text: String,
    },
    /// A setting is not `NAME=DURATION`.
    #[error(
        "`{text}` is not NAME=DURATION (e.g. `hello=250ms`); valid names are {}",
        Timeouts::names().join(", ")
    )]
    Setting {
        /// The text given.
        text: String,
    },
    /// The first reconnection pause is longer than the longest.
    #[error("`backoff` ({}) must not exceed `backoff_max` ({})", show(*backoff), show(*backoff_max))]
    Backoff {
        /// The first pause.
        backoff: Duration,
        /// The longest pause.
        backoff_max: Duration,
    },
}

impl Timeouts {
    /// Every timeout by name, in the order of the fields.
    fn slots(&mut self) -> [(&'static str, &mut Duration); 12] {
        [
            ("hello", &mut self.hello),
            ("start", &mut self.start),
            ("body", &mut self.body),
            ("reply", &mut self.reply),
            ("stats", &mut self.stats),
            ("write", &mut self.write),
            ("connect", &mut self.connect),
            ("backoff", &mut self.backoff),
            ("backoff_max", &mut self.backoff_max),
            ("stale", &mut self.stale),
            ("stop", &mut self.stop),
            ("exit", &mut self.exit),
        ]
    }

    /// The names of the timeouts (as in `node.toml` and `aex node --timeout NAME=DURATION`).
    pub fn names() -> [&'static str; 12] {
        Timeouts::default().slots().map(|(name, _)| name)
    }

    /// The timeout called `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<Duration> {
        let mut copy = *self;
        let found = copy
            .slots()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| *d);
        found
    }

    /// Sets the timeout called `name`; refuses an unknown name and a zero duration.
    pub fn set(&mut self, name: &str, value: Duration) -> Result<(), TimeoutError> {
        if value.is_zero() {
            return Err(TimeoutError::Zero {
                text: format!("{name} = {}", show(value)),
            });
        }
        let slot = self
            .slots()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| d)
            .ok_or_else(|| TimeoutError::Unknown { name: name.into() })?;
        *slot = value;
        Ok(())
    }

    /// Applies a `NAME=DURATION` setting (`aex node --timeout hello=250ms`).
    pub fn apply(&mut self, setting: &str) -> Result<(), TimeoutError> {
        let (name, value) = Timeouts::parse_setting(setting)?;
        self.set(name, value)
    }

    /// Parses `NAME=DURATION` into a known timeout name and a non-zero duration.
    pub fn parse_setting(text: &str) -> Result<(&'static str, Duration), TimeoutError> {
        let Some((name, value)) = text.split_once('=') else {
            return Err(TimeoutError::Setting { text: text.into() });
        };
        let name = name.trim();
        let known = Timeouts::names()
            .into_iter()
            .find(|n| *n == name)
            .ok_or_else(|| TimeoutError::Unknown { name: name.into() })?;
        Ok((known, Timeouts::parse_duration(value)?))
    }

    /// Parses a timeout: a whole number and a unit, `250ms`, `10s`, `1m` (or `1min`), `1h`, with
    /// optional spaces; zero is refused.
    pub fn parse_duration(text: &str) -> Result<Duration, TimeoutError> {
        let trimmed = text.trim();
        let split = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(split);
        let invalid = || TimeoutError::Duration {
            text: trimmed.into(),
        };
        let n: u64 = number.parse().map_err(|_| invalid())?;
        let scale: u64 = match unit.trim() {
            "ms" => 1,
            "s" => 1_000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            _ => return Err(invalid()),
        };
        let value = n
            .checked_mul(scale)
            .map(Duration::from_millis)
            .ok_or_else(invalid)?;
        if value.is_zero() {
            return Err(TimeoutError::Zero {
                text: trimmed.into(),
            });
        }
        Ok(value)
    }

    /// Checks what each setting alone cannot: the first reconnection pause does not exceed
    /// the longest.
    pub fn check(&self) -> Result<(), TimeoutError> {
        if self.backoff > self.backoff_max {
            return Err(TimeoutError::Backoff {
                backoff: self.backoff,
                backoff_max: self.backoff_max,
            });
        }
        Ok(())
    }
}

/// A duration for messages: `10 s` when whole seconds, else `250 ms`.
pub(crate) fn show(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn defaults_are_the_documented_values() {
        let t = Timeouts::default();
        assert_eq!(
            Timeouts::names().map(|n| t.get(n).unwrap()),
            [10_000, 10_000, 10_000, 10_000, 2_000, 10_000, 3_000, 50, 1_000, 1_000, 2_000, 500]
                .map(MS)
        );
        assert!(t.check().is_ok());
        assert_eq!(t.get("nope"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(Timeouts::parse_duration("250ms"), Ok(MS(250)));
        assert_eq!(Timeouts::parse_duration(" 10 s "), Ok(MS(10_000)));
        assert_eq!(Timeouts::parse_duration("1m"), Ok(MS(60_000)));
        assert_eq!(Timeouts::parse_duration("2min"), Ok(MS(120_000)));
        assert_eq!(Timeouts::parse_duration("1h"), Ok(MS(3_600_000)));
        for bad in [
            "",
            "10",
            "s",
            "1.5s",
            "-1s",
            "5 sec",
            "ten",
            "99999999999999999999h",
        ] {
            let e = Timeouts::parse_duration(bad).unwrap_err();
            assert!(matches!(e, TimeoutError::Duration { .. }), "{bad}: {e}");
            assert!(e.to_string().contains("e.g. `250ms`, `10s`"), "{e}");
        }
        for zero in ["0s", "0ms", "000 h"] {
            let e = Timeouts::parse_duration(zero).unwrap_err();
            assert!(matches!(e, TimeoutError::Zero { .. }), "{zero}: {e}");
            assert!(e.to_string().contains("longer than zero"), "{e}");
        }
    }

    #[test]
    fn settings_by_name() {
        let mut t = Timeouts::default();
        t.apply("hello=250ms").unwrap();
        t.apply(" backoff_max = 2s").unwrap();
        t.set("exit", MS(7)).unwrap();
        assert_eq!(
            (t.hello, t.backoff_max, t.exit),
            (MS(250), MS(2_000), MS(7))
        );
        // Nothing else moved.
        assert_eq!(
            Timeouts {
                hello: MS(10_000),
                backoff_max: MS(1_000),
                exit: MS(500),
                ..t
            },
            Timeouts::default()
        );

        let e = t.apply("helo=1s").unwrap_err();
        assert_eq!(
            e,
            TimeoutError::Unknown {
                name: "helo".into()
            }
        );
        assert!(
            e.to_string()
                .contains("valid names are hello, start, body, reply, stats, write, connect, backoff, backoff_max, stale, stop, exit"),
            "{e}"
        );
        let e = t.apply("hello=soon").unwrap_err();
        assert!(e.to_string().contains("invalid duration `soon`"), "{e}");
        let e = t.apply("hello=0ms").unwrap_err();
        assert!(matches!(e, TimeoutError::Zero { .. }), "{e}");
        let e = t.set("hello", Duration::ZERO).unwrap_err();
        assert!(e.to_string().contains("longer than zero"), "{e}");
        let e = t.apply("10s").unwrap_err();
        assert!(e.to_string().contains("is not NAME=DURATION"), "{e}");
        // A refused setting changes nothing.
        assert_eq!(t.hello, MS(250));
    }

    #[test]
    fn backoff_order_is_checked() {
        let mut t = Timeouts::default();
        t.set("backoff", MS(2_000)).unwrap();
        let e = t.check().unwrap_err();
        assert_eq!(
            e.to_string(),
            "`backoff` (2 s) must not exceed `backoff_max` (1 s)"
        );
    }

    #[test]
    fn shown_in_the_unit_written() {
        assert_eq!(show(MS(15_000)), "15 s");
        assert_eq!(show(MS(250)), "250 ms");
        assert_eq!(show(MS(1_500)), "1500 ms");
    }
}
