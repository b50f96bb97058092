//! The connections a node holds open: capped in total and per source address, refused at once
//! when over a cap, and the refusals logged at a bounded rate.
//!
//! A connection takes a [`Slot`] as it is accepted, before anything is read from it, and
//! gives it back when its task ends (the slot is dropped). A connection over a cap is closed
//! right away and counted in the node's `refused` counter; a flood of them is logged once per
//! [`LOG_EVERY`] with how many there were, not once each.
//!
//! Addresses: an IPv4 source counts by its address; an IPv6 source by its /64 prefix (one
//! machine usually holds a whole /64), or as the IPv4 address it maps.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::sync::lock;

/// How often a refused flood is logged at most.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(10);

/// `warn!` through a [`Throttle`]: at most once per its period, with `seen` = how many such
/// events there were since the last warning (this one included); the others at debug level.
/// For what anyone can cause by connecting, so that a flood cannot flood the log.
macro_rules! throttled_warn {
    ($throttle:expr, $($arg:tt)+) => {
        match $throttle.hit() {
            Some(seen) => tracing::warn!(seen, $($arg)+),
            None => tracing::debug!($($arg)+),
        }
    };
}
pub(crate) use throttled_warn;

/// Counts occurrences of something noisy and says when to log them.
pub(crate) struct Throttle {
    every: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    /// Logs at most once per `every`.
    pub(crate) fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            state: Mutex::new((None, 0)),
        }
    }

    /// Counts one occurrence; `Some(n)` when it is time to log: `n` occurrences since the
    /// last log, this one included.
    pub(crate) fn hit(&self) -> Option<u64> {
        let mut state = lock(&self.state);
        let (last, count) = &mut *state;
        *count += 1;
        let due = last.is_none_or(|at| at.elapsed() >= self.every);
        if !due {
            return None;
        }
        *last = Some(Instant::now());
        Some(std::mem::take(count))
    }
}

/// Which cap a connection is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Over {
    /// `max_connections`.
    Total(u64),
    /// `max_connections_per_address`.
    Address(u64),
}

impl Over {
    /// The setting that raises the cap.
    pub(crate) fn setting(self) -> &'static str {
        match self {
            Over::Total(_) => "max_connections",
            Over::Address(_) => "max_connections_per_address",
        }
    }

    /// The cap.
    pub(crate) fn limit(self) -> u64 {
        match self {
            Over::Total(n) | Over::Address(n) => n,
        }
    }
}

/// The open connections of a node.
pub(crate) struct Connections {
    max_total: u64,
    max_per_address: u64,
    open: Mutex<Open>,
    /// Connections refused over a cap, for logging.
    pub(crate) refusals: Throttle,
    /// Connections that failed or were refused before authenticating, for logging.
    pub(crate) failures: Throttle,
}

#[derive(Default)]
struct Open {
    total: u64,
    by_address: HashMap<IpAddr, u64>,
}

/// One open connection's place; given back on drop.
pub(crate) struct Slot {
    conns: Arc<Connections>,
    address: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = lock(&self.conns.open);
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

/// What a source address counts as.
fn counted_as(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl Connections {
    /// Connections open now.
    pub(crate) fn open(&self) -> u64 {
        lock(&self.open).total
    }

    /// No connection open yet; at most `max_total` at once, `max_per_address` from one
    /// address.
    pub(crate) fn new(max_total: u64, max_per_address: u64) -> Arc<Connections> {
        Arc::new(Connections {
            max_total,
            max_per_address,
            open: Mutex::default(),
            refusals: Throttle::new(LOG_EVERY),
            failures: Throttle::new(LOG_EVERY),
        })
    }

    /// Takes a slot for a connection from `ip`, or says which cap it is over.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Over> {
        let address = counted_as(ip);
        let mut open = lock(&self.open);
        if open.total >= self.max_total {
            return Err(Over::Total(self.max_total));
        }
        let n = open.by_address.entry(address).or_insert(0);
        if *n >= self.max_per_address {
            if *n == 0 {
                open.by_address.remove(&address);
            }
            return Err(Over::Address(self.max_per_address));
        }
        *n += 1;
        open.total += 1;
        Ok(Slot {
            conns: self.clone(),
            address,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn caps_in_total_and_per_address_and_slots_come_back() {
        let conns = Connections::new(6, 2);
        let a1 = conns.admit(ip("10.0.0.1")).unwrap();
        let _a2 = conns.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(conns.admit(ip("10.0.0.1")).err(), Some(Over::Address(2)));
        // The same machine over IPv4-mapped IPv6 counts as the same address.
        assert!(conns.admit(ip("::ffff:10.0.0.1")).is_err());
        let _b = conns.admit(ip("10.0.0.2")).unwrap();
        // A /64 is one address.
        let _c1 = conns.admit(ip("2001:db8::1")).unwrap();
        let _c2 = conns.admit(ip("2001:db8::2:3")).unwrap();
        assert_eq!(
            conns.admit(ip("2001:db8::ffff")).err(),
            Some(Over::Address(2))
        );
        let _d = conns.admit(ip("10.0.0.4")).unwrap();
        assert_eq!(conns.open(), 6);
        assert_eq!(conns.admit(ip("10.0.0.3")).err(), Some(Over::Total(6)));
        drop(a1);
        assert_eq!(conns.open(), 5);
        let _a3 = conns.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(Over::Total(6).setting(), "max_connections");
        assert_eq!(Over::Address(2).limit(), 2);
    }

    #[test]
    fn no_address_is_remembered_once_its_connections_are_gone() {
        let conns = Connections::new(10, 1);
        for i in 0..100 {
            let slot = conns.admit(IpAddr::from([10, 0, 0, i])).unwrap();
            drop(slot);
        }
        assert!(lock(&conns.open).by_address.is_empty());
    }

    #[test]
    fn a_throttle_logs_the_first_and_then_counts() {
        let t = Throttle::new(Duration::from_secs(3600));
        assert_eq!(t.hit(), Some(1));
        for _ in 0..99 {
            assert_eq!(t.hit(), None);
        }
        let t = Throttle::new(Duration::ZERO);
        assert_eq!(t.hit(), Some(1));
        assert_eq!(t.hit(), Some(1));
    }
}
