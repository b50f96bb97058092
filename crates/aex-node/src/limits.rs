//! Limits: how much of the node a connection, a peer link, a module or a deployer can take.
//!
//! Untrusted input is bounded in bytes (docs/SECURITY.md): connections are capped in total and
//! per source address, the queues toward peer nodes and modules hold at most so many bytes
//! (a peer link's per namespace, so that one tenant's flood cannot make the node drop
//! another's events), and an admitted deployer that turns hostile is held to a request rate,
//! an amount of upload in progress, a number of modules, and a number of routes and of peer
//! nodes they lead to. Like timeouts, these are
//! configuration, not constants: `node.toml`'s `[limits]` table or `aex node --limit
//! NAME=VALUE`. Defaults are generous: a deployment of a thousand modules on one node fits
//! them.
//!
//! Counts are whole numbers; byte sizes a whole number with an optional unit, `B`, `KiB`,
//! `MiB` or `GiB` (`"16MiB"`; a bare number is bytes). Zero is refused: it would refuse
//! everything.

/// What kind of value a limit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A number of things (or of things per second).
    Count,
    /// A number of bytes.
    Bytes,
}

/// The smallest byte queue: room for the largest frame (1 MiB) and more.
pub const MIN_QUEUE_BYTES: u64 = 2 << 20;

/// How much of the node each party may take. [`Default`] holds the values a node uses unless
/// its configuration says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// `max_connections`: connections open at once, of every kind and stage (handshakes,
    /// deployer sessions, peer links). One more is closed as soon as it is accepted, counted
    /// in `refused`. Default 1024.
    pub max_connections: u64,
    /// `max_connections_per_address`: connections open at once from one source address (an
    /// IPv6 source counts by its /64 prefix). Default 64.
    pub max_connections_per_address: u64,
    /// `peer_queue`: bytes of events queued for one peer node, all namespaces together.
    /// Under honoured credit (`aex_proto::flow`) it holds at most what the peer's modules
    /// granted and never fills; past it (a sender that ignores its credit, or a peer
    /// unreachable longer than `stale`), events are dropped, counted, and their credit
    /// returned to their sender with `dropped` set. Default 64 MiB.
    pub peer_queue: u64,
    /// `peer_queue_per_namespace`: bytes of events of one namespace queued for one peer node
    /// (past it, that namespace's new events are dropped, and their credit returned; others'
    /// are not). Default 16 MiB: the windows of many connections of one application.
    pub peer_queue_per_namespace: u64,
    /// `module_queue`: bytes of events, commands and ticks queued for one module's input.
    /// Default 8 MiB: a module's runtime takes in 4 MiB, plus one window per connection
    /// (`aex_proto::flow::MAX_WINDOW` at most) of events its senders may have in flight, so
    /// under honoured credit it never fills; an event that does not fit is dropped, counted,
    /// and its credit returned to its sender with `dropped` set.
    pub module_queue: u64,
    /// `deployer_requests_per_second`: management requests one deployer identity may send,
    /// over all its sessions, per second on average; up to a second's worth at once. Default
    /// 10,000.
    pub deployer_requests_per_second: u64,
    /// `deployer_upload_bytes`: bytes of module uploads one deployer identity may have in
    /// progress at once (announced by `LoadBegin`, held until the module starts). Default
    /// 512 MiB.
    pub deployer_upload_bytes: u64,
    /// `deployer_modules`: modules one deployer identity may have on the node, in all its
    /// applications, uploads in progress included. Default 2048.
    pub deployer_modules: u64,
    /// `deployer_routes`: routes one deployer identity may have installed on the node, in
    /// all its applications (each route is kept in memory and in the node's journal on
    /// disk). Default 16,384: eight per module at the default `deployer_modules`.
    pub deployer_routes: u64,
    /// `deployer_peers`: distinct peer nodes (address and identity) one deployer identity's
    /// routes may lead to; each is a link the node keeps and connects. Default 256.
    pub deployer_peers: u64,
}

impl Default for Limits {
    fn default() -> Self {
        const MIB: u64 = 1 << 20;
        Limits {
            max_connections: 1024,
            max_connections_per_address: 64,
            peer_queue: 64 * MIB,
            peer_queue_per_namespace: 16 * MIB,
            module_queue: 8 * MIB,
            deployer_requests_per_second: 10_000,
            deployer_upload_bytes: 512 * MIB,
            deployer_modules: 2048,
            deployer_routes: 16_384,
            deployer_peers: 256,
        }
    }
}

/// A limit setting that cannot be used. The message says what would be valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// No limit has this name.
    #[error("unknown limit `{name}`: valid names are {}", Limits::names().join(", "))]
    Unknown {
        /// The name given.
        name: String,
    },
    /// The text is not a value of this limit's kind.
    #[error("invalid value `{text}` for `{name}`: {expected}")]
    Value {
        /// The limit.
        name: String,
        /// The text given.
        text: String,
        /// What would be valid.
        expected: &'static str,
    },
    /// Zero would refuse everything.
    #[error("`{name}` must be more than zero")]
    Zero {
        /// The limit.
        name: String,
    },
    /// A queue too small for the largest frame.
    #[error(
        "`{name}` must be at least {} (the largest event, 1 MiB, must fit with room to spare)",
        show_bytes(MIN_QUEUE_BYTES)
    )]
    Small {
        /// The limit.
        name: String,
    },
    /// A setting is not `NAME=VALUE`.
    #[error(
        "`{text}` is not NAME=VALUE (e.g. `max_connections=4096`, `module_queue=8MiB`); valid \
         names are {}",
        Limits::names().join(", ")
    )]
    Setting {
        /// The text given.
        text: String,
    },
    /// One namespace's share of a peer link exceeds the link's.
    #[error(
        "`peer_queue_per_namespace` ({}) must not exceed `peer_queue` ({})",
        show_bytes(*per_namespace),
        show_bytes(*total)
    )]
    PerNamespace {
        /// One namespace's share.
        per_namespace: u64,
        /// The link's.
        total: u64,
    },
}

impl Limits {
    /// Every limit by name and kind, in the order of the fields.
    fn slots(&mut self) -> [(&'static str, Kind, &mut u64); 10] {
        [
            ("max_connections", Kind::Count, &mut self.max_connections),
            (
                "max_connections_per_address",
                Kind::Count,
                &mut self.max_connections_per_address,
            ),
            ("peer_queue", Kind::Bytes, &mut self.peer_queue),
            (
                "peer_queue_per_namespace",
                Kind::Bytes,
                &mut self.peer_queue_per_namespace,
            ),
            ("module_queue", Kind::Bytes, &mut self.module_queue),
            (
                "deployer_requests_per_second",
                Kind::Count,
                &mut self.deployer_requests_per_second,
            ),
            (
                "deployer_upload_bytes",
                Kind::Bytes,
                &mut self.deployer_upload_bytes,
            ),
            ("deployer_modules", Kind::Count, &mut self.deployer_modules),
            ("deployer_routes", Kind::Count, &mut self.deployer_routes),
            ("deployer_peers", Kind::Count, &mut self.deployer_peers),
        ]
    }

    fn kind(name: &str) -> Option<Kind> {
        Limits::default()
            .slots()
            .into_iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, kind, _)| kind)
    }

    /// The names of the limits (as in `node.toml`'s `[limits]` and `aex node --limit`).
    pub fn names() -> [&'static str; 10] {
        Limits::default().slots().map(|(name, _, _)| name)
    }

    /// The limit called `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<u64> {
        let mut copy = *self;
        let found = copy
            .slots()
            .into_iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, _, v)| *v);
        found
    }

    /// Sets the limit called `name`; refuses an unknown name, zero, and a queue below
    /// [`MIN_QUEUE_BYTES`].
    pub fn set(&mut self, name: &str, value: u64) -> Result<(), LimitError> {
        let (kind, slot) = self
            .slots()
            .into_iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, kind, v)| (kind, v))
            .ok_or_else(|| LimitError::Unknown { name: name.into() })?;
        if value == 0 {
            return Err(LimitError::Zero { name: name.into() });
        }
        if kind == Kind::Bytes && name.contains("queue") && value < MIN_QUEUE_BYTES {
            return Err(LimitError::Small { name: name.into() });
        }
        *slot = value;
        Ok(())
    }

    /// Applies a `NAME=VALUE` setting (`aex node --limit max_connections=4096`).
    pub fn apply(&mut self, setting: &str) -> Result<(), LimitError> {
        let Some((name, value)) = setting.split_once('=') else {
            return Err(LimitError::Setting {
                text: setting.into(),
            });
        };
        let name = name.trim();
        let value = Limits::parse_value(name, value)?;
        self.set(name, value)
    }

    /// Parses the value of limit `name`: a whole number, with a unit (`B`, `KiB`, `MiB`,
    /// `GiB`) for byte sizes.
    pub fn parse_value(name: &str, text: &str) -> Result<u64, LimitError> {
        let kind = Limits::kind(name).ok_or_else(|| LimitError::Unknown { name: name.into() })?;
        let trimmed = text.trim();
        let invalid = |expected| LimitError::Value {
            name: name.into(),
            text: trimmed.into(),
            expected,
        };
        let split = trimmed
            .find(|c: char| !c.is_ascii_digit() && c != '_')
            .unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(split);
        let n: u64 = number.replace('_', "").parse().map_err(|_| match kind {
            Kind::Count => invalid("write a whole number, e.g. `4096`"),
            Kind::Bytes => invalid("write a whole number of bytes or with a unit, e.g. `16MiB`"),
        })?;
        let scale: u64 = match (kind, unit.trim()) {
            (_, "") => 1,
            (Kind::Bytes, "B") => 1,
            (Kind::Bytes, "KiB") => 1 << 10,
            (Kind::Bytes, "MiB") => 1 << 20,
            (Kind::Bytes, "GiB") => 1 << 30,
            (Kind::Count, _) => return Err(invalid("write a whole number, e.g. `4096`")),
            (Kind::Bytes, _) => {
                return Err(invalid(
                    "write a whole number of bytes or with a unit B, KiB, MiB or GiB, e.g. \
                     `16MiB`",
                ))
            }
        };
        n.checked_mul(scale)
            .ok_or_else(|| invalid("the value is too large"))
    }

    /// Checks what each setting alone cannot: one namespace's share of a peer link does not
    /// exceed the link's.
    pub fn check(&self) -> Result<(), LimitError> {
        if self.peer_queue_per_namespace > self.peer_queue {
            return Err(LimitError::PerNamespace {
                per_namespace: self.peer_queue_per_namespace,
                total: self.peer_queue,
            });
        }
        Ok(())
    }

    /// The value of limit `name` for messages: `16 MiB` for byte sizes, `4096` for counts.
    pub fn show(&self, name: &str) -> Option<String> {
        let value = self.get(name)?;
        Some(match Limits::kind(name)? {
            Kind::Bytes => show_bytes(value),
            Kind::Count => value.to_string(),
        })
    }

    /// As a byte count for queues (saturating on 32-bit machines).
    pub(crate) fn bytes(value: u64) -> usize {
        usize::try_from(value).unwrap_or(usize::MAX)
    }
}

/// Bytes for messages: `16 MiB` when whole MiB, else `1500 KiB` or `100 B`.
pub(crate) fn show_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

/// Where an operator raises limit `name` (for refusals).
pub(crate) fn raise(name: &str) -> String {
    format!(
        "raise `{name}` in the `[limits]` table of the node's configuration, or start it with \
         `aex node --limit {name}=VALUE`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_values() {
        let l = Limits::default();
        assert_eq!(
            Limits::names().map(|n| l.show(n).unwrap()),
            [
                "1024", "64", "64 MiB", "16 MiB", "8 MiB", "10000", "512 MiB", "2048", "16384",
                "256"
            ]
        );
        assert!(l.check().is_ok());
        assert_eq!(l.get("nope"), None);
    }

    #[test]
    fn values_by_kind() {
        assert_eq!(Limits::parse_value("peer_queue", "16MiB"), Ok(16 << 20));
        assert_eq!(Limits::parse_value("peer_queue", " 2 GiB "), Ok(2 << 30));
        assert_eq!(Limits::parse_value("peer_queue", "4096"), Ok(4096));
        assert_eq!(Limits::parse_value("peer_queue", "8 KiB"), Ok(8192));
        assert_eq!(Limits::parse_value("max_connections", "1_000"), Ok(1000));
        for (name, bad, says) in [
            ("max_connections", "10k", "whole number, e.g. `4096`"),
            ("max_connections", "many", "whole number"),
            ("max_connections", "-1", "whole number"),
            ("module_queue", "4MB", "unit B, KiB, MiB or GiB"),
            ("module_queue", "1.5MiB", "unit B, KiB, MiB or GiB"),
            ("module_queue", "99999999999GiB", "too large"),
        ] {
            let e = Limits::parse_value(name, bad).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains(name) && msg.contains(says),
                "{name}={bad}: {msg}"
            );
        }
        assert!(matches!(
            Limits::parse_value("nope", "1"),
            Err(LimitError::Unknown { .. })
        ));
    }

    #[test]
    fn settings_by_name() {
        let mut l = Limits::default();
        l.apply("max_connections=4096").unwrap();
        l.apply(" module_queue = 16MiB").unwrap();
        assert_eq!((l.max_connections, l.module_queue), (4096, 16 << 20));
        assert_eq!(
            Limits {
                max_connections: 1024,
                module_queue: 8 << 20,
                ..l
            },
            Limits::default()
        );
        let e = l.apply("max_conections=1").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("unknown limit `max_conections`: valid names are max_connections,"),
            "{e}"
        );
        let e = l.apply("max_connections").unwrap_err();
        assert!(e.to_string().contains("NAME=VALUE"), "{e}");
        let e = l.apply("deployer_modules=0").unwrap_err();
        assert_eq!(e.to_string(), "`deployer_modules` must be more than zero");
        let e = l.apply("module_queue=1MiB").unwrap_err();
        assert!(e.to_string().contains("at least 2 MiB"), "{e}");
        l.apply("peer_queue_per_namespace=128MiB").unwrap();
        let e = l.check().unwrap_err();
        assert_eq!(
            e.to_string(),
            "`peer_queue_per_namespace` (128 MiB) must not exceed `peer_queue` (64 MiB)"
        );
    }

    #[test]
    fn bytes_are_shown_in_their_largest_whole_unit() {
        assert_eq!(show_bytes(16 << 20), "16 MiB");
        assert_eq!(show_bytes(3 << 30), "3 GiB");
        assert_eq!(show_bytes(1500 * 1024), "1500 KiB");
        assert_eq!(show_bytes(100), "100 B");
    }
}
