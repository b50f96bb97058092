//! The queue of one peer link, fair between stakeholders: one sub-queue per namespace, taken
//! round robin, each bounded in bytes, and all of them together bounded in bytes.
//!
//! A link carries the events of every application whose routes lead to that node, so one
//! tenant's flood must not make the node drop another tenant's events. Until flow control
//! replaces drops with credit, the rule is:
//!
//! * a namespace whose sub-queue holds `per_namespace` bytes drops its own new events;
//! * when the link's queues together would exceed `total`, room is made by dropping the newest
//!   events of the namespace holding the most bytes, as long as that is another namespace
//!   holding more than the arriving event's namespace would; otherwise the arriving event is
//!   dropped (longest-queue drop: a namespace below its fair share never loses an event to
//!   one above it);
//! * the link's writer takes one event per namespace in turn.
//!
//! Events are queued encoded (their `Forward` frame), so their cost is exact: the frame's
//! length plus [`OVERHEAD`]. Invariant: `held` = the sum of the queued frames' costs ≤ `total`,
//! and each namespace's ≤ `per_namespace` (a frame larger than either still passes an empty
//! queue: the configuration keeps both above the largest frame).

use std::collections::{HashMap, VecDeque};

use aex_proto::AppId;

use crate::queue::OVERHEAD;

/// The sub-queue of one namespace.
#[derive(Default)]
struct Sub {
    frames: VecDeque<Vec<u8>>,
    held: usize,
}

/// What [`FairQueue::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pushed {
    /// Whether the new frame was queued (else it was dropped).
    pub(crate) queued: bool,
    /// Frames of other namespaces dropped to make room for it.
    pub(crate) evicted: u64,
}

/// Per-namespace sub-queues taken round robin; see the file's documentation.
pub(crate) struct FairQueue {
    subs: HashMap<AppId, Sub>,
    /// Namespaces with queued frames, in the order the writer serves them.
    turn: VecDeque<AppId>,
    held: usize,
    per_namespace: usize,
    total: usize,
}

fn cost(frame: &[u8]) -> usize {
    frame.len() + OVERHEAD
}

impl FairQueue {
    /// An empty queue: each namespace may hold `per_namespace` bytes, all together `total`.
    pub(crate) fn new(per_namespace: usize, total: usize) -> FairQueue {
        FairQueue {
            subs: HashMap::new(),
            turn: VecDeque::new(),
            held: 0,
            per_namespace,
            total: total.max(per_namespace),
        }
    }

    /// Queues `frame` for namespace `app`, or drops it (see the file's documentation).
    pub(crate) fn push(&mut self, app: AppId, frame: Vec<u8>) -> Pushed {
        let cost = cost(&frame);
        let own = self.subs.get(&app).map_or(0, |s| s.held);
        let dropped = Pushed {
            queued: false,
            evicted: 0,
        };
        if own > 0 && own + cost > self.per_namespace {
            return dropped;
        }
        let mut evicted = 0;
        while self.held > 0 && self.held + cost > self.total {
            let Some((&largest, held)) = self
                .subs
                .iter()
                .map(|(app, sub)| (app, sub.held))
                .max_by_key(|(_, held)| *held)
            else {
                break;
            };
            if largest == app || held <= own + cost {
                return Pushed {
                    queued: false,
                    evicted,
                };
            }
            self.drop_newest(largest);
            evicted += 1;
        }
        let sub = self.subs.entry(app).or_default();
        if sub.frames.is_empty() {
            self.turn.push_back(app);
        }
        sub.held += cost;
        sub.frames.push_back(frame);
        self.held += cost;
        Pushed {
            queued: true,
            evicted,
        }
    }

    /// Drops the newest frame of namespace `app`.
    fn drop_newest(&mut self, app: AppId) {
        let Some(sub) = self.subs.get_mut(&app) else {
            return;
        };
        if let Some(frame) = sub.frames.pop_back() {
            sub.held -= cost(&frame);
            self.held -= cost(&frame);
        }
        if sub.frames.is_empty() {
            self.subs.remove(&app);
            self.turn.retain(|a| *a != app);
        }
    }

    /// The next frame: the oldest of the namespace whose turn it is.
    pub(crate) fn pop(&mut self) -> Option<Vec<u8>> {
        let app = self.turn.pop_front()?;
        let sub = self.subs.get_mut(&app)?;
        let frame = sub.frames.pop_front()?;
        sub.held -= cost(&frame);
        self.held -= cost(&frame);
        if sub.frames.is_empty() {
            self.subs.remove(&app);
        } else {
            self.turn.push_back(app);
        }
        Some(frame)
    }

    /// Drops everything queued; returns how many frames that was.
    pub(crate) fn clear(&mut self) -> u64 {
        let n = self.subs.values().map(|s| s.frames.len() as u64).sum();
        self.subs.clear();
        self.turn.clear();
        self.held = 0;
        n
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.turn.is_empty()
    }

    /// Bytes queued (costs included).
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(n: u8) -> AppId {
        AppId([n; 16])
    }

    /// A frame whose cost is `kib` KiB, tagged with `tag`.
    fn frame(kib: usize, tag: u8) -> Vec<u8> {
        vec![tag; kib * 1024 - OVERHEAD]
    }

    #[test]
    fn a_namespace_over_its_share_drops_its_own_new_events() {
        let mut q = FairQueue::new(4 * 1024, 64 * 1024);
        for _ in 0..4 {
            assert!(q.push(app(1), frame(1, 1)).queued);
        }
        assert_eq!(
            q.push(app(1), frame(1, 1)),
            Pushed {
                queued: false,
                evicted: 0
            }
        );
        // Another namespace is not affected.
        assert!(q.push(app(2), frame(1, 2)).queued);
        assert_eq!(q.held(), 5 * 1024);
    }

    #[test]
    fn turns_alternate_between_namespaces() {
        let mut q = FairQueue::new(1 << 20, 1 << 20);
        for i in 0..5 {
            q.push(app(1), frame(1, 10 + i));
        }
        q.push(app(2), frame(1, 20));
        q.push(app(2), frame(1, 21));
        let order: Vec<u8> = std::iter::from_fn(|| q.pop()).map(|f| f[0]).collect();
        assert_eq!(order, [10, 20, 11, 21, 12, 13, 14]);
        assert!(q.is_empty());
        assert_eq!(q.held(), 0);
    }

    #[test]
    fn a_full_link_makes_room_from_the_largest_namespace_never_from_a_smaller_one() {
        // Room for 8 KiB in all, 6 KiB per namespace.
        let mut q = FairQueue::new(6 * 1024, 8 * 1024);
        for _ in 0..6 {
            assert!(q.push(app(1), frame(1, 1)).queued);
        }
        // The flood holds 6 KiB; another namespace's events take room from it.
        for _ in 0..4 {
            let p = q.push(app(2), frame(1, 2));
            assert!(p.queued);
        }
        assert_eq!(q.held(), 8 * 1024);
        // Now both hold 4 KiB: neither may take from the other.
        assert_eq!(
            q.push(app(1), frame(1, 1)),
            Pushed {
                queued: false,
                evicted: 0
            }
        );
        assert!(!q.push(app(2), frame(1, 2)).queued);
        let (mut ones, mut twos) = (0, 0);
        while let Some(f) = q.pop() {
            if f[0] == 1 {
                ones += 1
            } else {
                twos += 1
            }
        }
        assert_eq!((ones, twos), (4, 4));
    }

    #[test]
    fn many_flooding_namespaces_cannot_crowd_out_a_quiet_one() {
        // Ten namespaces push 4 KiB a round each; the writer takes 4 frames a round. A quiet
        // namespace sends 1 KiB every fifth round: every one of its events gets through.
        let mut q = FairQueue::new(16 * 1024, 32 * 1024);
        let (mut quiet, mut dropped) = (0, 0);
        for round in 0..100u8 {
            for flood in 10..20 {
                for _ in 0..2 {
                    dropped += u64::from(!q.push(app(flood), frame(2, flood)).queued);
                }
            }
            if round % 5 == 0 {
                assert!(q.push(app(1), frame(1, 1)).queued, "round {round}");
            }
            for _ in 0..4 {
                quiet += q.pop().filter(|f| f[0] == 1).map_or(0, |_| 1);
            }
        }
        quiet += std::iter::from_fn(|| q.pop()).filter(|f| f[0] == 1).count();
        assert_eq!(quiet, 20);
        assert!(dropped > 1000, "the floods lost {dropped}");
    }

    #[test]
    fn clear_counts_and_empties() {
        let mut q = FairQueue::new(1 << 20, 1 << 20);
        q.push(app(1), frame(1, 1));
        q.push(app(2), frame(1, 2));
        q.push(app(2), frame(1, 2));
        assert_eq!(q.clear(), 3);
        assert!(q.is_empty() && q.held() == 0 && q.pop().is_none());
    }
}
