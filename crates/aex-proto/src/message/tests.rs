//! Round trips and pinned bytes of the link messages, their size bounds, and their decoders
//! on arbitrary input.

use aex_crypto::SecretKey;
use proptest::prelude::*;

use super::*;
use crate::channel::EventKind;
use crate::command::{Command, CommandChannel, CommandReply, StateBytes, STATE_CHUNK};
use crate::frame::{
    self, decode, decode_plain, encode, read_body, DecodeError, FrameDecoder, LEN_PREFIX,
    WIRE_VERSION,
};

#[test]
fn messages_round_trip() {
    let msgs = vec![
        ToNode::Hello(Hello::Deployer {
            client: "aex 0.1".into(),
            key: DeployerKey([9; 32]),
            app: "ping-pong".into(),
            signature: Signature([6; 64]),
        }),
        ToNode::Request {
            id: 7,
            body: NodeRequest::Route {
                conn: ConnId(3),
                dir: Direction::Backward,
                to: Endpoint::Node {
                    address: "127.0.0.1:1".into(),
                    identity: NodeKey([5; 32]),
                },
                from: Origin::Peer(NodeKey([4; 32])),
            },
        },
        ToNode::Forward {
            app: AppId([7; 16]),
            event: Event {
                conn: ConnId(2),
                dir: Direction::Forward,
                kind: EventKind::Event,
                counter: 1,
                ciphertext: vec![4],
            },
        },
        ToNode::Request {
            id: 8,
            body: NodeRequest::Periodic {
                module: "sensor".into(),
                triggers: vec![Trigger {
                    entry: "sample".into(),
                    period_ms: 1000,
                }],
            },
        },
        ToNode::Request {
            id: 9,
            body: NodeRequest::Unroute {
                conn: ConnId(3),
                dir: Direction::Forward,
            },
        },
        ToNode::Event(Event {
            conn: ConnId(1),
            dir: Direction::Forward,
            kind: EventKind::Request,
            counter: 42,
            ciphertext: vec![1, 2, 3],
        }),
    ];
    for m in msgs {
        let f = encode(&m);
        assert_eq!(decode::<ToNode>(&f[LEN_PREFIX..]).unwrap(), m);
    }
    let r = FromNode::Response {
        id: 1,
        result: Err(NodeError {
            kind: NodeErrorKind::UnknownModule,
            message: "no module `x`".into(),
        }),
    };
    assert_eq!(decode::<FromNode>(&encode(&r)[LEN_PREFIX..]).unwrap(), r);
}

#[test]
fn credit_round_trips_on_every_link_it_crosses() {
    use crate::flow::Credit;
    let credit = Credit {
        conn: ConnId(7),
        dir: crate::Direction::Backward,
        bytes: 65_536,
        dropped: 2,
    };
    let up = FromModule::Credit(credit);
    assert_eq!(
        decode::<FromModule>(&encode(&up)[LEN_PREFIX..]).unwrap(),
        up
    );
    let down = ToModule::Credit(credit);
    assert_eq!(
        decode::<ToModule>(&encode(&down)[LEN_PREFIX..]).unwrap(),
        down
    );
    let back = FromNode::Credit {
        app: AppId([3; 16]),
        credit,
    };
    assert_eq!(
        decode::<FromNode>(&encode(&back)[LEN_PREFIX..]).unwrap(),
        back
    );
    let window = FromNode::Response {
        id: 1,
        result: Ok(NodeResponse::Window {
            credit: -40,
            in_flight: 70_000,
        }),
    };
    assert_eq!(
        decode::<FromNode>(&encode(&window)[LEN_PREFIX..]).unwrap(),
        window
    );
}

#[test]
fn module_stats_round_trip_with_the_lifecycle_counters() {
    let stats = FromModule::Stats(ModuleStats {
        conns: vec![ConnStats {
            conn: ConnId(4),
            sent: 1,
            received: 2,
            rejected: 3,
            gaps: 4,
            dropped: 11,
            blocked: 12,
            failed: 14,
        }],
        rejected_unknown: 5,
        rejected_commands: 6,
        commands: 7,
        rejected_ticks: 8,
        refused_commands: 9,
        dropped_replies: 10,
        armed: true,
        retired: true,
        refused_writes: 13,
        failures: vec![crate::PortFailures {
            port: "input reading".into(),
            failed: 14,
            reason: "the payload does not decode as its argument".into(),
            conn: Some(ConnId(4)),
            counter: 20,
        }],
        alarms: vec![crate::DeadlineAlarms {
            input: "temperature".into(),
            fired: 3,
            last_ms: 1_796_412_072_576,
        }],
    });
    let f = encode(&stats);
    assert_eq!(decode::<FromModule>(&f[LEN_PREFIX..]).unwrap(), stats);
}

#[test]
fn persistence_messages_round_trip() {
    use crate::persist::{BlobChunk, CounterCall, CounterValue, ResumeOutcome};
    let chunk = BlobChunk {
        version: 3,
        total: 5,
        offset: 0,
        data: vec![1, 2, 3, 4, 5],
    };
    let value = CounterValue {
        id: [7; 16],
        value: 3,
        digest: [8; 32],
        advanced: true,
        mac: [9; 32],
    };
    for msg in [
        ToModule::Sealing {
            key: crate::WireKey([4; 32]),
        },
        ToModule::Resume(chunk.clone()),
        ToModule::Stored {
            version: 3,
            result: Err("disk full".into()),
        },
        ToModule::CounterAnswer {
            id: 1,
            result: Ok(value),
        },
        ToModule::ResumeEnd,
    ] {
        assert_eq!(
            decode::<ToModule>(&encode(&msg)[LEN_PREFIX..]).unwrap(),
            msg
        );
    }
    for msg in [
        FromModule::Store(chunk),
        FromModule::Counter {
            id: 2,
            call: CounterCall::Advance([7; 16], 2, [8; 32]),
            nonce: [6; 16],
        },
        FromModule::Resumed(ResumeOutcome::Refused("rollback detected".into())),
    ] {
        assert_eq!(
            decode::<FromModule>(&encode(&msg)[LEN_PREFIX..]).unwrap(),
            msg
        );
    }
}

/// Known-answer vector: a request's postcard bytes.
#[test]
fn a_request_s_bytes_are_pinned() {
    // Variant 1 (Request), id 258 as a varint, variant 6 (Status).
    let r = encode(&ToNode::Request {
        id: 258,
        body: NodeRequest::Status,
    });
    assert_eq!(&r[LEN_PREFIX..], &[1, 1, 0x82, 0x02, 6]);
}

/// Known-answer vector: `Working` goes after `Credit`, so older variants keep their bytes.
#[test]
fn working_is_the_fourth_answer_of_a_node() {
    // The wire version, variant 3, id 258 as a varint.
    let w = encode(&FromNode::Working { id: 258 });
    assert_eq!(&w[LEN_PREFIX..], &[1, 3, 0x82, 0x02]);
    assert_eq!(
        decode::<FromNode>(&w[LEN_PREFIX..]).unwrap(),
        FromNode::Working { id: 258 }
    );
}

/// A full chunk, sealed in a command, relayed in a deployer request, and its reply in a
/// node response, each fit in one frame.
#[test]
fn a_full_state_chunk_fits_in_a_frame_both_ways() {
    let k = SecretKey::from_bytes([3; 32]);
    let (mut deployer, module) = (CommandChannel::new(&k), CommandChannel::new(&k));
    let cmd = Command::WriteState {
        offset: u64::MAX,
        data: StateBytes(vec![0xff; STATE_CHUNK]),
    };
    let sealed = deployer.seal_command(&cmd).unwrap();
    let to_node = ToNode::Request {
        id: u64::MAX,
        body: NodeRequest::Command {
            module: "m".repeat(128),
            sealed: sealed.clone(),
        },
    };
    assert!(frame::encode(&to_node).len() <= frame::LEN_PREFIX + crate::MAX_FRAME_LEN);
    assert!(
        frame::encode(&ToModule::Command(sealed)).len() <= frame::LEN_PREFIX + crate::MAX_FRAME_LEN
    );
    let reply = module.seal_reply(u64::MAX, &CommandReply::Done(vec![0xff; STATE_CHUNK]));
    let answer = FromNode::Response {
        id: u64::MAX,
        result: Ok(NodeResponse::CommandReply(reply)),
    };
    assert!(frame::encode(&answer).len() <= frame::LEN_PREFIX + crate::MAX_FRAME_LEN);
}

proptest! {
    #[test]
    fn auth_messages_round_trip(
        key in any::<[u8; 32]>(),
        app in ".{0,40}",
        id in any::<u64>(),
        sig in proptest::collection::vec(any::<u8>(), 64),
        ns in any::<[u8; 16]>(),
    ) {
        let signature = Signature(sig.try_into().unwrap());
        let msgs = [
            ToNode::Hello(Hello::Deployer { client: "t".into(), key: DeployerKey(key), app, signature }),
            ToNode::Hello(Hello::Peer { node: "n".into() }),
            ToNode::Request { id, body: NodeRequest::Status },
            ToNode::Forward {
                app: AppId(ns),
                event: crate::Event {
                    conn: crate::ConnId(id as u32),
                    dir: crate::Direction::Backward,
                    kind: crate::EventKind::Reply,
                    counter: id,
                    ciphertext: key.to_vec(),
                },
            },
        ];
        for m in msgs {
            prop_assert_eq!(decode::<ToNode>(&encode(&m)[LEN_PREFIX..]).unwrap(), m);
        }
    }
}

#[test]
fn load_stored_round_trips_and_keeps_its_place() {
    let m = ToNode::Request {
        id: 10,
        body: NodeRequest::LoadStored {
            module: "m2".into(),
            measurement: [3; 32],
        },
    };
    assert_eq!(decode::<ToNode>(&encode(&m)[LEN_PREFIX..]).unwrap(), m);
    // A variant's position is its wire encoding: `LoadStored` is request 13, `NotStored` is
    // error kind 7, whatever is added after them.
    let body = NodeRequest::LoadStored {
        module: String::new(),
        measurement: [0; 32],
    };
    assert_eq!(postcard::to_allocvec(&body).unwrap()[0], 13);
    let body = NodeRequest::Module { module: "m".into() };
    assert_eq!(postcard::to_allocvec(&body).unwrap(), [16, 1, b'm']);
    let answer = FromNode::Response {
        id: 11,
        result: Ok(NodeResponse::Module(Box::new(crate::ModuleStatus {
            name: "m".into(),
            exit: Some("exit status: 101".into()),
            log_tail: vec!["panicked".into()],
            ..crate::ModuleStatus::default()
        }))),
    };
    assert_eq!(
        decode::<FromNode>(&encode(&answer)[LEN_PREFIX..]).unwrap(),
        answer
    );
    let module = NodeResponse::Module(Box::default());
    assert_eq!(postcard::to_allocvec(&module).unwrap()[0], 8);
    assert_eq!(
        postcard::to_allocvec(&NodeErrorKind::NotStored).unwrap(),
        [7]
    );
    let r = FromNode::Response {
        id: 10,
        result: Err(NodeError {
            kind: NodeErrorKind::NotStored,
            message: "upload it".into(),
        }),
    };
    assert_eq!(decode::<FromNode>(&encode(&r)[LEN_PREFIX..]).unwrap(), r);
}

#[test]
fn logs_round_trip_and_keep_their_places() {
    let ask = ToNode::Request {
        id: 11,
        body: NodeRequest::Logs {
            module: "pong".into(),
            from: 4096,
        },
    };
    assert_eq!(decode::<ToNode>(&encode(&ask)[LEN_PREFIX..]).unwrap(), ask);
    let answer = FromNode::Response {
        id: 11,
        result: Ok(NodeResponse::Logs {
            from: 0,
            bytes: b"panicked at src/main.rs:3\n\xff".to_vec(),
            size: 27,
        }),
    };
    assert_eq!(
        decode::<FromNode>(&encode(&answer)[LEN_PREFIX..]).unwrap(),
        answer
    );
    // Appended: request 14, response 6, whatever comes after them.
    let body = NodeRequest::Logs {
        module: String::new(),
        from: 0,
    };
    assert_eq!(postcard::to_allocvec(&body).unwrap()[0], 14);
    let reply = NodeResponse::Logs {
        from: 0,
        bytes: vec![],
        size: 0,
    };
    assert_eq!(postcard::to_allocvec(&reply).unwrap()[0], 6);
}

#[test]
fn traces_round_trip_and_keep_their_places() {
    let entry = crate::TraceEntry {
        seq: 9,
        at_ms: 1_796_412_072_576,
        conn: ConnId(4),
        dir: crate::Direction::Forward,
        counter: 77,
        size: 16_400,
        outcome: crate::TraceOutcome::Accepted { gap: 3 },
    };
    let report = crate::TraceReport {
        last: 9,
        entries: vec![entry],
    };
    let up = FromModule::Trace(report.clone());
    assert_eq!(
        decode::<FromModule>(&encode(&up)[LEN_PREFIX..]).unwrap(),
        up
    );
    let down = ToModule::Trace { after: 8 };
    assert_eq!(
        decode::<ToModule>(&encode(&down)[LEN_PREFIX..]).unwrap(),
        down
    );
    let answer = FromNode::Response {
        id: 2,
        result: Ok(NodeResponse::Trace(report.clone())),
    };
    assert_eq!(
        decode::<FromNode>(&encode(&answer)[LEN_PREFIX..]).unwrap(),
        answer
    );
    // Appended after what was there (docs/PROTOCOL.md names these indexes).
    let index = |bytes: Vec<u8>| bytes[0];
    assert_eq!(index(postcard::to_allocvec(&down).unwrap()), 16);
    assert_eq!(index(postcard::to_allocvec(&up).unwrap()), 13);
    let ask = NodeRequest::Trace {
        module: String::new(),
        after: 0,
    };
    assert_eq!(index(postcard::to_allocvec(&ask).unwrap()), 15);
    assert_eq!(
        index(postcard::to_allocvec(&NodeResponse::Trace(report)).unwrap()),
        7
    );
}

#[test]
fn evidence_requests_round_trip_and_keep_their_places() {
    let ask = FromModule::Evidence {
        id: 3,
        key: [1; 32],
        challenge: [2; 32],
        mac: Some(vec![3; 32]),
    };
    assert_eq!(
        decode::<FromModule>(&encode(&ask)[LEN_PREFIX..]).unwrap(),
        ask
    );
    for result in [
        Ok(vec![7; 700]),
        Err("a sancus node has no evidence".into()),
    ] {
        let answer = ToModule::Evidence { id: 3, result };
        assert_eq!(
            decode::<ToModule>(&encode(&answer)[LEN_PREFIX..]).unwrap(),
            answer
        );
        // Appended after `Trace` (docs/PROTOCOL.md §3 and §11 name these indexes).
        assert_eq!(postcard::to_allocvec(&answer).unwrap()[0], 17);
    }
    assert_eq!(postcard::to_allocvec(&ask).unwrap()[0], 14);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode::<ToModule>(&bytes);
        let _ = decode::<FromModule>(&bytes);
        let _ = decode::<ToNode>(&bytes);
        let _ = decode::<FromNode>(&bytes);
        let _ = decode_plain::<Command>(&bytes);
        let mut d = FrameDecoder::new();
        d.push(&bytes);
        while let Ok(Some(body)) = d.next_body() {
            let _ = decode::<ToNode>(&body);
        }
        let _ = read_body(&mut std::io::Cursor::new(&bytes));
    }

    #[test]
    fn versioned_arbitrary_bodies_give_typed_errors(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut body = vec![WIRE_VERSION];
        body.extend_from_slice(&bytes);
        match decode::<FromNode>(&body) {
            Ok(_) | Err(DecodeError::Malformed { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error {e:?}"),
        }
    }
}
