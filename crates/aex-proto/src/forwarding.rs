//! Events relayed by a node agent without copying them twice: the event frames a node reads
//! (`FromModule::Event`, `ToNode::Forward`) are read in place, header decoded and ciphertext
//! borrowed ([`EventRef`]), and the frame for the next hop (`ToModule::Event`,
//! `ToNode::Forward`, `FromNode::Event`) is written from it with one copy of the ciphertext.
//! Decoding into an [`Event`] and encoding it again cost a second copy and an allocation per
//! event and hop (BENCHMARKS.md, "Node agents forward events in place").
//!
//! The bytes are exactly those of the messages themselves: an enum variant in postcard is its
//! index as a varint followed by its fields in order, which is what the tuples here encode. The
//! tests hold each function to `frame::encode`/`frame::decode` of the message it stands for.
//!
//! Invariant: a body these functions do not recognise exactly (another message, trailing bytes,
//! another version) gives `None`, and the caller decodes it as usual, so every error a frame
//! can cause is still reported by `frame::decode`.

use serde::{Deserialize, Serialize};

use crate::channel::{Direction, Event, EventKind};
use crate::frame::{self, WIRE_VERSION};
use crate::ids::{AppId, ConnId};

/// Index of `FromModule::Event` among `FromModule`'s variants.
const FROM_MODULE_EVENT: u32 = 5;
/// Index of `ToModule::Event`.
const TO_MODULE_EVENT: u32 = 2;
/// Index of `ToNode::Forward`.
const TO_NODE_FORWARD: u32 = 3;
/// Index of `FromNode::Event`.
const FROM_NODE_EVENT: u32 = 1;

/// An event as it lies in a frame: everything a node routes on, and the ciphertext borrowed.
/// Encodes exactly as [`Event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRef<'a> {
    /// Connection the event claims to belong to.
    pub conn: ConnId,
    /// Direction on that connection.
    pub dir: Direction,
    /// Kind of event.
    pub kind: EventKind,
    /// Per-direction counter.
    pub counter: u64,
    /// AEAD ciphertext and tag.
    #[serde(with = "serde_bytes", borrow)]
    pub ciphertext: &'a [u8],
}

impl Event {
    /// The event as an [`EventRef`], to relay it like one read from a frame.
    pub fn view(&self) -> EventRef<'_> {
        EventRef {
            conn: self.conn,
            dir: self.dir,
            kind: self.kind,
            counter: self.counter,
            ciphertext: &self.ciphertext,
        }
    }
}

impl EventRef<'_> {
    /// An owned copy.
    pub fn to_event(&self) -> Event {
        Event {
            conn: self.conn,
            dir: self.dir,
            kind: self.kind,
            counter: self.counter,
            ciphertext: self.ciphertext.to_vec(),
        }
    }
}

/// The event of a frame body (without its length prefix) that is a `FromModule::Event`.
pub fn from_module(body: &[u8]) -> Option<EventRef<'_>> {
    let (variant, event): (u32, EventRef<'_>) = exactly(body)?;
    (variant == FROM_MODULE_EVENT).then_some(event)
}

/// The namespace and event of a frame body that is a `ToNode::Forward`.
pub fn forwarded(body: &[u8]) -> Option<(AppId, EventRef<'_>)> {
    let (variant, app, event): (u32, AppId, EventRef<'_>) = exactly(body)?;
    (variant == TO_NODE_FORWARD).then_some((app, event))
}

/// The frame of `ToModule::Event(event)`.
pub fn to_module(event: &EventRef<'_>) -> Vec<u8> {
    frame::encode(&(TO_MODULE_EVENT, event))
}

/// The frame of `ToNode::Forward { app, event }`.
pub fn forward(app: AppId, event: &EventRef<'_>) -> Vec<u8> {
    frame::encode(&(TO_NODE_FORWARD, app, event))
}

/// The frame of `FromNode::Event(event)`.
pub fn from_node(event: &EventRef<'_>) -> Vec<u8> {
    frame::encode(&(FROM_NODE_EVENT, event))
}

/// `T` decoded in place from a whole frame body of the current version, nothing left over.
fn exactly<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Option<T> {
    let (&version, rest) = body.split_first()?;
    if version != WIRE_VERSION {
        return None;
    }
    match postcard::take_from_bytes(rest) {
        Ok((value, [])) => Some(value),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::frame::{decode, encode, LEN_PREFIX};
    use crate::message::{FromModule, FromNode, Hello, ToModule, ToNode};

    fn event_strategy() -> impl Strategy<Value = Event> {
        (
            any::<u32>(),
            any::<bool>(),
            0u8..3,
            any::<u64>(),
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(conn, backward, kind, counter, ciphertext)| Event {
                conn: ConnId(conn),
                dir: if backward {
                    Direction::Backward
                } else {
                    Direction::Forward
                },
                kind: match kind {
                    0 => EventKind::Event,
                    1 => EventKind::Request,
                    _ => EventKind::Reply,
                },
                counter,
                ciphertext,
            })
    }

    proptest! {
        #[test]
        fn frames_written_from_a_reference_are_the_messages_own(
            ev in event_strategy(),
            app in any::<[u8; 16]>(),
        ) {
            let app = AppId(app);
            prop_assert_eq!(to_module(&ev.view()), encode(&ToModule::Event(ev.clone())));
            prop_assert_eq!(
                forward(app, &ev.view()),
                encode(&ToNode::Forward { app, event: ev.clone() })
            );
            prop_assert_eq!(from_node(&ev.view()), encode(&FromNode::Event(ev.clone())));
        }

        #[test]
        fn events_read_in_place_are_the_decoded_ones(
            ev in event_strategy(),
            app in any::<[u8; 16]>(),
        ) {
            let app = AppId(app);
            let frame = encode(&FromModule::Event(ev.clone()));
            let read = from_module(&frame[LEN_PREFIX..]).expect("an event frame");
            prop_assert_eq!(read.to_event(), ev.clone());
            let frame = encode(&ToNode::Forward { app, event: ev.clone() });
            let (got_app, read) = forwarded(&frame[LEN_PREFIX..]).expect("a forward frame");
            prop_assert_eq!(got_app, app);
            prop_assert_eq!(read.to_event(), ev);
        }

        /// Whatever the bytes (an event frame with one byte changed, cut short or grown, or
        /// noise), in place reading never panics, and accepts only what the full decoder
        /// decodes to the same event.
        #[test]
        fn in_place_reading_accepts_only_what_decoding_accepts(
            ev in event_strategy(),
            app in any::<[u8; 16]>(),
            forward_frame in any::<bool>(),
            at in any::<usize>(),
            xor in any::<u8>(),
            how in 0u8..4,
            noise in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut body = if forward_frame {
                encode(&ToNode::Forward { app: AppId(app), event: ev })
            } else {
                encode(&FromModule::Event(ev))
            }
            .split_off(LEN_PREFIX);
            let at = at % body.len();
            match how {
                0 => body[at] ^= xor,
                1 => body.truncate(at),
                2 => body.insert(at, xor),
                _ => body = noise,
            }
            if let Some(ev) = from_module(&body) {
                prop_assert_eq!(decode::<FromModule>(&body), Ok(FromModule::Event(ev.to_event())));
            }
            if let Some((app, ev)) = forwarded(&body) {
                prop_assert_eq!(
                    decode::<ToNode>(&body),
                    Ok(ToNode::Forward { app, event: ev.to_event() })
                );
            }
        }
    }

    #[test]
    fn other_messages_trailing_bytes_and_other_versions_are_left_to_the_decoder() {
        let ev = Event {
            conn: ConnId(7),
            dir: Direction::Forward,
            kind: EventKind::Event,
            counter: 1,
            ciphertext: vec![1, 2, 3],
        };
        // The same event in another message of the same stream.
        let hello = encode(&ToNode::Hello(Hello::Peer { node: "n".into() }));
        assert_eq!(forwarded(&hello[LEN_PREFIX..]), None);
        let direct = encode(&ToNode::Event(ev.clone()));
        assert_eq!(forwarded(&direct[LEN_PREFIX..]), None);
        let credit = encode(&FromModule::Credit(crate::flow::Credit {
            conn: ConnId(7),
            dir: Direction::Forward,
            bytes: 1,
            dropped: 0,
        }));
        assert_eq!(from_module(&credit[LEN_PREFIX..]), None);
        let mut frame = encode(&FromModule::Event(ev.clone()));
        assert!(from_module(&frame[LEN_PREFIX..]).is_some());
        frame.push(0);
        assert_eq!(from_module(&frame[LEN_PREFIX..]), None);
        frame.pop();
        frame[LEN_PREFIX] = WIRE_VERSION + 1;
        assert_eq!(from_module(&frame[LEN_PREFIX..]), None);
    }
}
