//! Billing: verify a set of receipts offline and total them per client.
//!
//! Everything a provider could do to a client's bill shows as a [`Problem`]: a receipt that
//! does not verify under the module's receipt key (forged, or altered after signing, such as
//! an inflated CPU time), one signed by another key, the same sequence number twice (a receipt
//! counted twice, or two receipts the module should never have issued), and numbers missing
//! from a client's sequence (a receipt dropped). Only receipts that verify count in the
//! totals, each sequence number once.
//!
//! A module signs with one key per platform: moved to another node (`aex update --node`), it
//! signs with another key while its clients' numbers go on. A bill therefore takes every key the
//! module had ([`Billing::with_keys`]), and numbers each client across them.
//!
//! A gap is seen only before a client's highest number: a client that wants the tail covered
//! states its last sequence number ([`Billing::expect_last`]), which it knows from the
//! receipts it was handed.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::receipt::{ClientId, Receipt, ReceiptPublicKey};

/// Where a receipt came from, for messages: a file name and the receipt's position in it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Origin {
    /// The file (or other source) the receipt was read from.
    pub source: String,
    /// Its position there, from 1.
    pub index: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} receipt #{}", self.source, self.index)
    }
}

/// One thing wrong with a set of receipts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// The receipt does not verify: forged, or altered after signing. Not counted.
    Invalid {
        /// Which receipt.
        origin: Origin,
        /// Its client and sequence number, as it claims them.
        client: ClientId,
        /// Its claimed sequence number.
        sequence: u64,
        /// Why.
        reason: String,
    },
    /// A sequence number seen again with the same receipt: counted once.
    Replayed {
        /// The copy.
        origin: Origin,
        /// Where it was seen first.
        first: Origin,
        /// The client.
        client: ClientId,
        /// The number.
        sequence: u64,
    },
    /// Two different valid receipts with one sequence number: the module issued the number
    /// twice (a rollback of its state, or a fork). The first is counted.
    Conflicting {
        /// The second receipt.
        origin: Origin,
        /// The first.
        first: Origin,
        /// The client.
        client: ClientId,
        /// The number.
        sequence: u64,
    },
    /// Sequence numbers missing for a client: receipts dropped.
    Missing {
        /// The client.
        client: ClientId,
        /// The missing numbers, as inclusive ranges.
        ranges: Vec<(u64, u64)>,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Invalid {
                origin,
                client,
                sequence,
                reason,
            } => write!(
                f,
                "{origin} (client {client}, sequence {sequence}): invalid, not counted: {reason}"
            ),
            Problem::Replayed {
                origin,
                first,
                client,
                sequence,
            } => write!(
                f,
                "{origin}: replayed: client {client}'s sequence {sequence} again, the same receipt as {first}; counted once"
            ),
            Problem::Conflicting {
                origin,
                first,
                client,
                sequence,
            } => write!(
                f,
                "{origin}: conflicting: client {client}'s sequence {sequence} was already issued for another invocation ({first}); the module's state went back or forked; the first one is counted"
            ),
            Problem::Missing { client, ranges } => {
                let list: Vec<String> = ranges
                    .iter()
                    .map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") })
                    .collect();
                let count: u64 = ranges.iter().map(|&(a, b)| b - a + 1).sum();
                write!(
                    f,
                    "client {client}: {count} receipt(s) missing from the sequence (dropped): {}",
                    list.join(", ")
                )
            }
        }
    }
}

/// One client's totals over its valid receipts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Invocations billed.
    pub invocations: u64,
    /// Of which the function failed.
    pub failed: u64,
    /// CPU time, nanoseconds.
    pub cpu_ns: u64,
    /// Wall time, nanoseconds.
    pub wall_ns: u64,
    /// The largest peak heap of one invocation, bytes.
    pub peak_heap_max: u64,
    /// Input bytes.
    pub input_bytes: u64,
    /// Output bytes.
    pub output_bytes: u64,
    /// The highest sequence number seen.
    pub last_sequence: u64,
}

impl Totals {
    fn add(&mut self, r: &Receipt) {
        self.invocations += 1;
        self.failed += u64::from(r.failed);
        self.cpu_ns = self.cpu_ns.saturating_add(r.usage.cpu_ns);
        self.wall_ns = self.wall_ns.saturating_add(r.usage.wall_ns);
        self.peak_heap_max = self.peak_heap_max.max(r.usage.peak_heap_bytes);
        self.input_bytes = self.input_bytes.saturating_add(r.usage.input_bytes);
        self.output_bytes = self.output_bytes.saturating_add(r.usage.output_bytes);
        self.last_sequence = self.last_sequence.max(r.sequence);
    }
}

/// The verified bill.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Bill {
    /// Per client, over its valid receipts.
    pub clients: BTreeMap<ClientId, Totals>,
    /// Everything wrong, in the order found (gaps last).
    pub problems: Vec<Problem>,
}

impl Bill {
    /// Whether every receipt verified and every sequence is complete.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Collects receipts and bills them under the module's receipt keys.
#[derive(Debug)]
pub struct Billing {
    keys: Vec<ReceiptPublicKey>,
    /// Per client, per sequence number: where the valid receipt was found, and the receipt.
    seen: BTreeMap<ClientId, BTreeMap<u64, (Origin, Receipt)>>,
    /// Clients' stated last sequence numbers.
    expected: BTreeMap<ClientId, u64>,
    problems: Vec<Problem>,
}

impl Billing {
    /// Bills receipts signed by `key` (the module's receipt public key).
    pub fn new(key: ReceiptPublicKey) -> Self {
        Billing::with_keys([key])
    }

    /// Bills receipts signed by any of `keys` (the keys the module had, one per platform it
    /// ran on).
    pub fn with_keys(keys: impl IntoIterator<Item = ReceiptPublicKey>) -> Self {
        Billing {
            keys: keys.into_iter().collect(),
            seen: BTreeMap::new(),
            expected: BTreeMap::new(),
            problems: Vec::new(),
        }
    }

    /// States that `client`'s last invocation had sequence number `last`, so that receipts
    /// dropped from the end of its sequence show too.
    pub fn expect_last(&mut self, client: ClientId, last: u64) {
        self.expected.insert(client, last);
    }

    /// Adds one receipt, found at `origin`.
    pub fn add(&mut self, origin: Origin, receipt: Receipt) {
        let verified = match self.keys.iter().find(|k| k.id() == receipt.key_id) {
            Some(key) => receipt.verify(key).map_err(|e| e.to_string()),
            None => Err(format!(
                "forged: signed by another receipt key (key id {}), not by a given one (key id {})",
                receipt.key_id,
                self.keys
                    .iter()
                    .map(|k| k.id().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
        if let Err(reason) = verified {
            self.problems.push(Problem::Invalid {
                origin,
                client: receipt.client,
                sequence: receipt.sequence,
                reason,
            });
            return;
        }
        if receipt.sequence == 0 {
            // The meter starts at 1: a valid signature on 0 cannot come from it.
            self.problems.push(Problem::Invalid {
                origin,
                client: receipt.client,
                sequence: 0,
                reason: "sequence number 0 (numbers start at 1)".into(),
            });
            return;
        }
        let client = receipt.client;
        let sequence = receipt.sequence;
        let numbers = self.seen.entry(client).or_default();
        match numbers.get(&sequence) {
            Some((first, earlier)) => {
                let first = first.clone();
                self.problems.push(if *earlier == receipt {
                    Problem::Replayed {
                        origin,
                        first,
                        client,
                        sequence,
                    }
                } else {
                    Problem::Conflicting {
                        origin,
                        first,
                        client,
                        sequence,
                    }
                });
            }
            None => {
                numbers.insert(sequence, (origin, receipt));
            }
        }
    }

    /// Totals the valid receipts and finds the gaps.
    pub fn finish(self) -> Bill {
        let mut bill = Bill {
            clients: BTreeMap::new(),
            problems: self.problems,
        };
        let mut clients: Vec<ClientId> = self.seen.keys().copied().collect();
        clients.extend(self.expected.keys().filter(|c| !self.seen.contains_key(c)));
        clients.sort();
        for client in clients {
            let empty = BTreeMap::new();
            let numbers = self.seen.get(&client).unwrap_or(&empty);
            let mut totals = Totals::default();
            for (_, receipt) in numbers.values() {
                totals.add(receipt);
            }
            let last = self
                .expected
                .get(&client)
                .copied()
                .unwrap_or(0)
                .max(totals.last_sequence);
            let ranges = gaps(numbers.keys().copied(), last);
            if !ranges.is_empty() {
                bill.problems.push(Problem::Missing { client, ranges });
            }
            bill.clients.insert(client, totals);
        }
        bill
    }
}

/// The numbers in `1..=last` not in `present` (ascending), as inclusive ranges.
fn gaps(present: impl Iterator<Item = u64>, last: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut next = 1u64;
    for n in present {
        if n > next {
            out.push((next, n - 1));
        }
        next = n.saturating_add(1);
    }
    if last >= next {
        out.push((next, last));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::{KeyId, ReceiptKey, Usage};

    fn receipt(key: &ReceiptKey, client: u8, sequence: u64, cpu_ns: u64) -> Receipt {
        let mut r = Receipt {
            function: "validate".into(),
            client: ClientId([client; 32]),
            sequence,
            measurement: [7; 32],
            key_id: KeyId([0; 32]),
            input_sha256: [1; 32],
            output_sha256: [2; 32],
            usage: Usage {
                cpu_ns,
                wall_ns: cpu_ns + 10,
                peak_heap_bytes: sequence * 100,
                input_bytes: 5,
                output_bytes: 7,
            },
            heap_counted: true,
            failed: false,
            signature: [0; 64],
        };
        key.sign(&mut r);
        r
    }

    fn at(index: usize) -> Origin {
        Origin {
            source: "r.bin".into(),
            index,
        }
    }

    fn bill(key: &ReceiptKey, receipts: Vec<Receipt>) -> Bill {
        let mut b = Billing::new(key.public());
        for (i, r) in receipts.into_iter().enumerate() {
            b.add(at(i + 1), r);
        }
        b.finish()
    }

    #[test]
    fn clean_receipts_total_per_client() {
        let key = ReceiptKey::from_seed(&[1; 32]);
        let b = bill(
            &key,
            vec![
                receipt(&key, 1, 2, 100),
                receipt(&key, 2, 1, 50),
                receipt(&key, 1, 1, 200),
            ],
        );
        assert!(b.is_clean(), "{:?}", b.problems);
        let a = &b.clients[&ClientId([1; 32])];
        assert_eq!(
            (
                a.invocations,
                a.cpu_ns,
                a.wall_ns,
                a.peak_heap_max,
                a.input_bytes,
                a.output_bytes
            ),
            (2, 300, 320, 200, 10, 14)
        );
        assert_eq!(b.clients[&ClientId([2; 32])].invocations, 1);
    }

    #[test]
    fn a_receipt_from_another_key_is_forged_and_not_counted() {
        let key = ReceiptKey::from_seed(&[1; 32]);
        let other = ReceiptKey::from_seed(&[2; 32]);
        let b = bill(
            &key,
            vec![receipt(&key, 1, 1, 100), receipt(&other, 1, 2, 100)],
        );
        assert_eq!(b.clients[&ClientId([1; 32])].invocations, 1);
        assert!(
            matches!(&b.problems[..], [Problem::Invalid { reason, .. }] if reason.starts_with("forged: signed by another receipt key")),
            "{:?}",
            b.problems
        );
        // A forger who copies the key id still cannot sign.
        let mut copied = receipt(&other, 1, 2, 100);
        copied.key_id = key.public().id();
        let b = bill(&key, vec![receipt(&key, 1, 1, 100), copied]);
        assert!(
            matches!(&b.problems[..], [Problem::Invalid { reason, .. }] if reason.contains("does not verify"))
        );
    }

    #[test]
    fn a_module_that_moved_signs_with_its_new_key_and_its_numbers_go_on() {
        let (old, new) = (
            ReceiptKey::from_seed(&[1; 32]),
            ReceiptKey::from_seed(&[2; 32]),
        );
        let receipts = [
            receipt(&old, 1, 1, 10),
            receipt(&old, 1, 2, 10),
            receipt(&new, 1, 3, 10),
        ];
        let mut both = Billing::with_keys([old.public(), new.public()]);
        for (i, r) in receipts.iter().enumerate() {
            both.add(at(i + 1), r.clone());
        }
        let both = both.finish();
        assert!(both.is_clean(), "{:?}", both.problems);
        assert_eq!(both.clients[&ClientId([1; 32])].invocations, 3);
        // Billed under the new key alone, the old receipts are someone else's.
        let alone = bill(&new, receipts.to_vec());
        assert_eq!(alone.clients[&ClientId([1; 32])].invocations, 1);
        assert!(matches!(
            alone.problems[0],
            Problem::Invalid { sequence: 1, .. }
        ));
    }

    #[test]
    fn an_inflated_receipt_is_invalid() {
        let key = ReceiptKey::from_seed(&[1; 32]);
        let mut inflated = receipt(&key, 1, 2, 100);
        inflated.usage.cpu_ns = 1_000_000;
        let b = bill(
            &key,
            vec![receipt(&key, 1, 1, 100), inflated, receipt(&key, 1, 3, 100)],
        );
        let text = b.problems[0].to_string();
        assert!(
            text.contains("r.bin receipt #2")
                && text.contains("sequence 2")
                && text.contains("altered"),
            "{text}"
        );
        // Its number is now missing: the honest receipt was replaced.
        assert_eq!(
            b.problems[1],
            Problem::Missing {
                client: ClientId([1; 32]),
                ranges: vec![(2, 2)]
            }
        );
        assert_eq!(b.clients[&ClientId([1; 32])].cpu_ns, 200);
    }

    #[test]
    fn a_replayed_receipt_counts_once_and_a_conflicting_one_is_named() {
        let key = ReceiptKey::from_seed(&[1; 32]);
        let r = receipt(&key, 1, 1, 100);
        let b = bill(&key, vec![r.clone(), r.clone(), receipt(&key, 1, 1, 999)]);
        assert_eq!(b.clients[&ClientId([1; 32])].invocations, 1);
        assert_eq!(b.clients[&ClientId([1; 32])].cpu_ns, 100);
        assert!(matches!(
            b.problems[0],
            Problem::Replayed { sequence: 1, .. }
        ));
        assert!(matches!(
            b.problems[1],
            Problem::Conflicting { sequence: 1, .. }
        ));
        assert!(
            b.problems[0]
                .to_string()
                .contains("r.bin receipt #2: replayed"),
            "{}",
            b.problems[0]
        );
    }

    #[test]
    fn dropped_receipts_show_as_gaps_with_their_numbers() {
        let key = ReceiptKey::from_seed(&[1; 32]);
        let kept = [1, 4, 5, 7].map(|n| receipt(&key, 1, n, 10));
        let mut b = Billing::new(key.public());
        for (i, r) in kept.into_iter().enumerate() {
            b.add(at(i + 1), r);
        }
        b.expect_last(ClientId([1; 32]), 9);
        b.expect_last(ClientId([3; 32]), 2);
        let bill = b.finish();
        assert_eq!(
            bill.problems,
            vec![
                Problem::Missing {
                    client: ClientId([1; 32]),
                    ranges: vec![(2, 3), (6, 6), (8, 9)]
                },
                Problem::Missing {
                    client: ClientId([3; 32]),
                    ranges: vec![(1, 2)]
                },
            ]
        );
        assert!(
            bill.problems[0]
                .to_string()
                .ends_with("5 receipt(s) missing from the sequence (dropped): 2-3, 6, 8-9"),
            "{}",
            bill.problems[0]
        );
    }
}
