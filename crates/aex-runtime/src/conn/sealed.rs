//! The connection table of a persistent module, sealed and resumed (`persist.rs`): each
//! connection's key and counters as a blob holds them, the send counters a committed blob
//! reserved, and a table keyed again from a blob after a restart.

use aex_proto::{
    ConnId, ConnStats, Interface, RecvChannel, Role, SendChannel, WireAlgorithm, WireKey,
};

use super::Conns;

/// One connection as a persistent module seals it: its key and where its counters stand.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct SealedConn {
    pub(crate) conn: ConnId,
    pub(crate) role: Role,
    pub(crate) algorithm: WireAlgorithm,
    pub(crate) key: WireKey,
    /// The send counter a restart resumes after: the last one used plus the reservation.
    pub(crate) send_reserved: u64,
    /// The last counter accepted.
    pub(crate) recv_last: u64,
    /// Its counters so far, so that status counts across restarts.
    pub(crate) stats: SealedStats,
}

/// The counters of a connection as a blob holds them: [`ConnStats`] as it was when sealed
/// state began, so that blobs keep their layout (an update by signer opens its
/// predecessor's, sealed by an older runtime) when `ConnStats` gains a field. Counters added
/// since (`failed`) start again from zero in a resumed process.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct SealedStats {
    conn: ConnId,
    sent: u64,
    received: u64,
    rejected: u64,
    gaps: u64,
    dropped: u64,
    blocked: u64,
}

impl SealedStats {
    fn of(s: &ConnStats) -> Self {
        SealedStats {
            conn: s.conn,
            sent: s.sent,
            received: s.received,
            rejected: s.rejected,
            gaps: s.gaps,
            dropped: s.dropped,
            blocked: s.blocked,
        }
    }

    fn to_stats(&self) -> ConnStats {
        ConnStats {
            conn: self.conn,
            sent: self.sent,
            received: self.received,
            rejected: self.rejected,
            gaps: self.gaps,
            dropped: self.dropped,
            blocked: self.blocked,
            ..ConnStats::default()
        }
    }
}

/// Persistence (`persist.rs`): sealing the table, and resuming from it.
impl Conns {
    /// Limits send counters to what committed blobs reserve, from now on.
    pub(crate) fn persist(&mut self) {
        self.persistent = true;
        for conn in self.map.values_mut() {
            conn.limit = conn
                .limit
                .min(conn.send.as_ref().map_or(0, SendChannel::last_counter));
        }
    }

    /// Every connection as a blob seals it, each reserving `reserve` send counters beyond the
    /// last one used.
    pub(crate) fn export(&self, reserve: u64) -> Vec<SealedConn> {
        self.map
            .iter()
            .map(|(id, c)| SealedConn {
                conn: *id,
                role: c.seed.role.clone(),
                algorithm: c.seed.algorithm,
                key: WireKey::from_secret(&c.seed.key),
                send_reserved: c
                    .send
                    .as_ref()
                    .map_or(0, |s| s.last_counter().saturating_add(reserve)),
                recv_last: c.recv.as_ref().map_or(0, RecvChannel::last_counter),
                stats: SealedStats::of(&c.counted()),
            })
            .collect()
    }

    /// After `sealed` (what [`Conns::export`] gave) was committed: each connection may send up
    /// to the counter it reserved.
    pub(crate) fn committed(&mut self, sealed: &[SealedConn]) {
        for s in sealed {
            if let Some(conn) = self.map.get_mut(&s.conn) {
                conn.limit = conn.limit.max(s.send_reserved);
            }
        }
    }

    /// Keys the connections of a blob, each resuming after its reserved send counter and its
    /// last accepted one, with fresh windows (docs/PROTOCOL.md §9, "Credit after a restart").
    /// Sending waits for the next commit's reservation.
    pub(crate) fn resume(
        &mut self,
        interface: &Interface,
        sealed: Vec<SealedConn>,
    ) -> Result<(), String> {
        for s in sealed {
            let alg = s.algorithm.into();
            let key = aex_crypto::SecretKey::from_bytes(s.key.0);
            self.install(interface, s.conn, s.role, s.algorithm, s.key)?;
            if let Some(conn) = self.map.get_mut(&s.conn) {
                if let Some(send) = &mut conn.send {
                    *send =
                        SendChannel::resume(alg, &key, s.conn, send.direction(), s.send_reserved);
                }
                if let Some(recv) = &mut conn.recv {
                    *recv = RecvChannel::resume(alg, &key, s.conn, recv.direction(), s.recv_last);
                }
                conn.limit = 0;
                conn.gaps_before = s.stats.gaps;
                conn.stats = s.stats.to_stats();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use aex_proto::{ConnId, Interface, Role, WireAlgorithm, WireKey};

    use super::Conns;

    fn interface() -> Interface {
        Interface {
            outputs: vec!["out".into()],
            ..Interface::default()
        }
    }

    fn keyed(conns: &mut Conns) {
        conns
            .install(
                &interface(),
                ConnId(1),
                Role::Output("out".into()),
                WireAlgorithm::AesGcm,
                WireKey([7; 32]),
            )
            .unwrap();
    }

    /// The counters `conns` seals on `out` now, `n` times.
    fn seal(conns: &mut Conns, n: usize) -> Vec<u64> {
        (0..n)
            .filter_map(|_| {
                let s = conns.seal_on(&[ConnId(1)], b"x", Instant::now(), Duration::ZERO);
                s.events.first().map(|e| e.counter)
            })
            .collect()
    }

    #[test]
    fn a_resumed_table_never_seals_under_a_counter_used_before() {
        let mut conns = Conns::default();
        conns.persist();
        keyed(&mut conns);
        // No commit reserved counters yet: nothing is sealed (a restart could reuse them).
        assert!(seal(&mut conns, 1).is_empty());
        let first = conns.export(3);
        conns.committed(&first);
        assert_eq!(
            seal(&mut conns, 5),
            vec![1, 2, 3],
            "at most what was reserved"
        );
        // A crash here: counters 1 to 3 were used, the blob reserved up to 3. A process
        // resumed from it seals only above, once its own first commit reserved more.
        let mut resumed = Conns::default();
        resumed.persist();
        resumed.resume(&interface(), first).unwrap();
        assert!(seal(&mut resumed, 1).is_empty());
        let next = resumed.export(3);
        resumed.committed(&next);
        assert_eq!(seal(&mut resumed, 2), vec![4, 5]);
    }

    /// A blob's counters keep the layout of `ConnStats` before it gained `failed`: what an
    /// older runtime sealed opens, and what this one seals, an older one opens.
    #[test]
    fn sealed_counters_keep_their_layout() {
        let stats = aex_proto::ConnStats {
            conn: ConnId(300),
            sent: 1,
            received: 2,
            rejected: 3,
            gaps: 400,
            dropped: 5,
            blocked: 6,
            failed: 7,
        };
        let sealed = postcard::to_allocvec(&super::SealedStats::of(&stats)).unwrap();
        // ConnId 300 is a two-byte varint, gaps 400 too; one byte for each other counter.
        assert_eq!(sealed, [0xac, 0x02, 1, 2, 3, 0x90, 0x03, 5, 6]);
        let back: super::SealedStats = postcard::from_bytes(&sealed).unwrap();
        let resumed = back.to_stats();
        assert_eq!((resumed.gaps, resumed.failed), (400, 0));
    }
}
