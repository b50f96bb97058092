//! The queue of one peer link, fair between stakeholders: one sub-queue per namespace, taken
//! round robin, each bounded in bytes, and all of them together bounded in bytes.
//!
//! A link carries the events of every application whose routes lead to that node, so one
//! tenant's flood must not make the node drop another tenant's events. With flow control
//! honoured a namespace never has more queued than its receivers granted, so the queue does
//! not fill; what fills it is a sender that ignores its credit, or a peer that stays
//! unreachable. Then the rule is:
//!
//! * a namespace whose sub-queue holds `per_namespace` bytes drops its own new events;
//! * when the link's queues together would exceed `total`, room is made by dropping the newest
//!   events of the namespace holding the most bytes, as long as that is another namespace
//!   holding more than the arriving event's namespace would; otherwise the arriving event is
//!   dropped (longest-queue drop: a namespace below its fair share never loses an event to
//!   one above it);
//! * the link's writer takes one event per namespace in turn.
//!
//! Each frame carries a tag (for a link: its connection, direction and cost), handed back with
//! every frame dropped, so that whoever drops it can give its credit back to its sender.
//!
//! Events are queued encoded (their `Forward` frame), so their cost is exact: the frame's
//! length plus [`OVERHEAD`]. Invariant: `held` = the sum of the queued frames' costs ≤ `total`,
//! and each namespace's ≤ `per_namespace` (a frame larger than either still passes an empty
//! queue: the configuration keeps both above the largest frame).

use std::collections::VecDeque;

use foldhash::{HashMap, HashMapExt};

use aex_proto::AppId;

use crate::queue::OVERHEAD;

/// The sub-queue of one namespace: frames with their tags.
struct Sub<T> {
    frames: VecDeque<(Vec<u8>, T)>,
    held: usize,
}

impl<T> Default for Sub<T> {
    fn default() -> Self {
        Sub {
            frames: VecDeque::new(),
            held: 0,
        }
    }
}

/// What [`FairQueue::push`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pushed<T> {
    /// Whether the new frame was queued (else it was dropped).
    pub(crate) queued: bool,
    /// The tags of the frames of other namespaces dropped to make room for it, with their
    /// namespaces (empty, unallocated, when nothing was).
    pub(crate) evicted: Vec<(AppId, T)>,
}

/// Per-namespace sub-queues taken round robin, of frames tagged with a `T` each; see the
/// file's documentation.
pub(crate) struct FairQueue<T> {
    subs: HashMap<AppId, Sub<T>>,
    /// Namespaces with queued frames, in the order the writer serves them.
    turn: VecDeque<AppId>,
    held: usize,
    per_namespace: usize,
    total: usize,
}

fn cost(frame: &[u8]) -> usize {
    frame.len() + OVERHEAD
}

impl<T> FairQueue<T> {
    /// An empty queue: each namespace may hold `per_namespace` bytes, all together `total`.
    pub(crate) fn new(per_namespace: usize, total: usize) -> FairQueue<T> {
        FairQueue {
            subs: HashMap::new(),
            turn: VecDeque::new(),
            held: 0,
            per_namespace,
            total: total.max(per_namespace),
        }
    }

    /// Queues `frame`, tagged `tag`, for namespace `app`, or drops it (see the file's
    /// documentation).
    pub(crate) fn push(&mut self, app: AppId, frame: Vec<u8>, tag: T) -> Pushed<T> {
        let cost = cost(&frame);
        let own = self.subs.get(&app).map_or(0, |s| s.held);
        if own > 0 && own + cost > self.per_namespace {
            return Pushed {
                queued: false,
                evicted: Vec::new(),
            };
        }
        let mut evicted = Vec::new();
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
            if let Some(tag) = self.drop_newest(largest) {
                evicted.push((largest, tag));
            }
        }
        let sub = self.subs.entry(app).or_default();
        if sub.frames.is_empty() {
            self.turn.push_back(app);
        }
        sub.held += cost;
        sub.frames.push_back((frame, tag));
        self.held += cost;
        Pushed {
            queued: true,
            evicted,
        }
    }

    /// Drops the newest frame of namespace `app`; returns its tag.
    fn drop_newest(&mut self, app: AppId) -> Option<T> {
        let sub = self.subs.get_mut(&app)?;
        let dropped = sub.frames.pop_back().map(|(frame, tag)| {
            sub.held -= cost(&frame);
            self.held -= cost(&frame);
            tag
        });
        if sub.frames.is_empty() {
            self.subs.remove(&app);
            self.turn.retain(|a| *a != app);
        }
        dropped
    }

    /// The next frame, with its namespace and tag: the oldest of the namespace whose turn it
    /// is.
    pub(crate) fn pop(&mut self) -> Option<(AppId, Vec<u8>, T)> {
        let app = self.turn.pop_front()?;
        let sub = self.subs.get_mut(&app)?;
        let (frame, tag) = sub.frames.pop_front()?;
        sub.held -= cost(&frame);
        self.held -= cost(&frame);
        if sub.frames.is_empty() {
            self.subs.remove(&app);
        } else {
            self.turn.push_back(app);
        }
        Some((app, frame, tag))
    }

    /// Drops everything queued; returns the tags of the frames dropped, with their
    /// namespaces.
    pub(crate) fn clear(&mut self) -> Vec<(AppId, T)> {
        let dropped = self
            .subs
            .drain()
            .flat_map(|(app, sub)| sub.frames.into_iter().map(move |(_, tag)| (app, tag)))
            .collect();
        self.turn.clear();
        self.held = 0;
        dropped
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.turn.is_empty()
    }

    /// Bytes queued (costs included).
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Frames queued, over every namespace.
    pub(crate) fn len(&self) -> usize {
        self.subs.values().map(|s| s.frames.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(n: u8) -> AppId {
        AppId([n; 16])
    }

    /// Queues for namespace `n` a frame whose cost is `kib` KiB, tagged with `tag` (which
    /// its bytes repeat).
    fn push(q: &mut FairQueue<u8>, n: u8, kib: usize, tag: u8) -> Pushed<u8> {
        q.push(app(n), vec![tag; kib * 1024 - OVERHEAD], tag)
    }

    /// The next frame's tag, checked against its bytes.
    fn pop(q: &mut FairQueue<u8>) -> Option<u8> {
        let (_, frame, tag) = q.pop()?;
        assert!(frame.iter().all(|b| *b == tag));
        Some(tag)
    }

    fn refused() -> Pushed<u8> {
        Pushed {
            queued: false,
            evicted: vec![],
        }
    }

    #[test]
    fn a_namespace_over_its_share_drops_its_own_new_events() {
        let mut q = FairQueue::new(4 * 1024, 64 * 1024);
        for _ in 0..4 {
            assert!(push(&mut q, 1, 1, 1).queued);
        }
        assert_eq!(push(&mut q, 1, 1, 1), refused());
        // Another namespace is not affected.
        assert!(push(&mut q, 2, 1, 2).queued);
        assert_eq!(q.held(), 5 * 1024);
    }

    #[test]
    fn turns_alternate_between_namespaces() {
        let mut q = FairQueue::new(1 << 20, 1 << 20);
        for i in 0..5 {
            push(&mut q, 1, 1, 10 + i);
        }
        push(&mut q, 2, 1, 20);
        push(&mut q, 2, 1, 21);
        let order: Vec<u8> = std::iter::from_fn(|| pop(&mut q)).collect();
        assert_eq!(order, [10, 20, 11, 21, 12, 13, 14]);
        assert!(q.is_empty());
        assert_eq!(q.held(), 0);
    }

    #[test]
    fn a_full_link_makes_room_from_the_largest_namespace_never_from_a_smaller_one() {
        // Room for 8 KiB in all, 6 KiB per namespace.
        let mut q = FairQueue::new(6 * 1024, 8 * 1024);
        for i in 0..6 {
            assert!(push(&mut q, 1, 1, 10 + i).queued);
        }
        // The flood holds 6 KiB; another namespace's events take room from it, newest first,
        // and the tags of the frames dropped come back with their namespace.
        let mut evicted = vec![];
        for _ in 0..4 {
            let p = push(&mut q, 2, 1, 2);
            assert!(p.queued);
            evicted.extend(p.evicted);
        }
        assert_eq!(evicted, [(app(1), 15), (app(1), 14)]);
        assert_eq!(q.held(), 8 * 1024);
        // Now both hold 4 KiB: neither may take from the other.
        assert_eq!(push(&mut q, 1, 1, 1), refused());
        assert!(!push(&mut q, 2, 1, 2).queued);
        let (mut ones, mut twos) = (0, 0);
        while let Some(tag) = pop(&mut q) {
            if tag == 2 {
                twos += 1
            } else {
                ones += 1
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
                    dropped += u64::from(!push(&mut q, flood, 2, flood).queued);
                }
            }
            if round % 5 == 0 {
                assert!(push(&mut q, 1, 1, 1).queued, "round {round}");
            }
            for _ in 0..4 {
                quiet += pop(&mut q).filter(|t| *t == 1).map_or(0, |_| 1);
            }
        }
        quiet += std::iter::from_fn(|| pop(&mut q))
            .filter(|t| *t == 1)
            .count();
        assert_eq!(quiet, 20);
        assert!(dropped > 1000, "the floods lost {dropped}");
    }

    #[test]
    fn clear_hands_back_every_tag_and_empties() {
        let mut q = FairQueue::new(1 << 20, 1 << 20);
        push(&mut q, 1, 1, 1);
        push(&mut q, 2, 1, 2);
        push(&mut q, 2, 1, 3);
        let mut dropped = q.clear();
        dropped.sort();
        assert_eq!(dropped, [(app(1), 1), (app(2), 2), (app(2), 3)]);
        assert!(q.is_empty() && q.held() == 0 && q.pop().is_none());
    }
}
