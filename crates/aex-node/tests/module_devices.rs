//! Driver modules and devices: exclusive grants at load, device-bound measurements, accesses
//! answered for the loaded holder only, grants released on unload, and the physical-world
//! socket of a real node.

use std::path::Path;
use std::time::Duration;

use aex_crypto::{Measurement, SigningIdentity};
use aex_node::{physics_socket, NodeConfig, PhysicsClient, PhysicsError};
use aex_proto::frame;
use aex_proto::ToModule;
use aex_proto::{DeployerKey, DeviceOp, FromModule, NodeErrorKind, NodeRequest, NodeResponse};
use aex_tee::devices::DeviceSpec;
use aex_testkit::node::TestNode;
use aex_testkit::session::Session;
use aex_testkit::wait::{wait_until, PATIENCE};

use crate::scripts::script;

/// A node with a button, a valve and a soil probe, admitting the default deployer and
/// [`other_deployer`]. Its driver modules never answer `Stats`: a short `stats` limit keeps
/// each status from waiting out the default 2 s.
fn field_node() -> TestNode {
    TestNode::start_with("field", |c: &mut NodeConfig| {
        c.devices = DeviceSpec::parse_all(&[
            "button=digital_in",
            "valve=digital_out",
            "soil=analog_in:100@35",
        ])
        .unwrap();
        c.admit.push(DeployerKey::of(&other_deployer()));
        c.timeouts.set("stats", Duration::from_millis(50)).unwrap();
    })
}

fn other_deployer() -> SigningIdentity {
    SigningIdentity::from_seed(&[0xb0; 32])
}

/// A module that idles until unloaded; `tag` makes its binary (and measurement) distinct.
fn idle(node: &TestNode, tag: &str) -> Vec<u8> {
    script(&node.scratch, &format!("# {tag}\ncat > /dev/null"))
}

/// A module that records its `AEX_MEASUREMENT`, sends `accesses` as device frames, then
/// records everything the node sends it, in `scratch/<tag>.*`.
fn accessor(node: &TestNode, tag: &str, accesses: &[(u64, &str, DeviceOp)]) -> Vec<u8> {
    let mut frames = Vec::new();
    for (id, device, op) in accesses {
        frames.extend(frame::encode(&FromModule::Device {
            id: *id,
            device: (*device).into(),
            op: *op,
        }));
    }
    let sent = node.scratch.join(format!("{tag}.out"));
    std::fs::write(&sent, frames).unwrap();
    let base = node.scratch.join(tag).display().to_string();
    script(
        &node.scratch,
        &format!(
            "echo \"$AEX_MEASUREMENT\" > '{base}.measurement'\ncat '{}'\ncat > '{base}.in'",
            sent.display()
        ),
    )
}

/// Waits until `scratch/<tag>.in` holds exactly `replies`.
#[track_caller]
fn replies_arrive(node: &TestNode, tag: &str, replies: &[ToModule]) {
    let expected: Vec<u8> = replies.iter().flat_map(frame::encode).collect();
    let file = node.scratch.join(format!("{tag}.in"));
    wait_until(
        &format!("module `{tag}` to receive exactly {replies:?}"),
        PATIENCE,
        || match std::fs::read(&file) {
            Ok(got) if got == expected => Ok(()),
            Ok(got) => Err(format!("{} bytes: {got:?}", got.len())),
            Err(e) => Err(format!("{}: {e}", file.display())),
        },
    );
}

/// A session of [`other_deployer`] for the default application name.
fn other_session(node: &TestNode) -> Session {
    Session::open(node.addr(), &other_deployer(), "test-app")
}

/// The physical world of `node`. Each test keeps one connection: the node polls its device
/// socket for new connections, so every connection costs up to a poll period.
fn physics(node: &TestNode) -> PhysicsClient {
    PhysicsClient::connect(&physics_socket(&node.data_dir)).unwrap()
}

fn held(world: &mut PhysicsClient, device: &str) -> bool {
    world
        .list()
        .unwrap()
        .iter()
        .any(|d| d.name == device && d.held)
}

#[test]
fn driver_grants_are_exclusive_and_end_at_unload() {
    let node = field_node();
    let mut world = physics(&node);
    let mut a = node.session();
    let mut b = other_session(&node);

    let driver = idle(&node, "valve driver");
    let loaded = a.load_driver("valve", &driver, &["valve"]).unwrap();
    let bound = Measurement::of(&driver).with_devices(&["valve"]);
    assert_ne!(bound, Measurement::of(&driver));
    assert_eq!(
        loaded,
        NodeResponse::Loaded {
            measurement: bound.0
        }
    );
    assert_eq!(a.status().modules[0].measurement, bound.0);
    assert!(held(&mut world, "valve") && !held(&mut world, "soil"));

    // Another module of the same application.
    let other = idle(&node, "second driver");
    let e = a
        .load_driver("pump", &other, &["soil", "valve"])
        .unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::Refused);
    assert!(
        e.message
            .contains("device `valve` is held exclusively by another module"),
        "{e}"
    );
    // All or nothing: `soil` was not granted either.
    assert!(!held(&mut world, "soil"));
    // Another deployer's module, under the same application and module name.
    let e = b.load_driver("valve", &other, &["valve"]).unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::Refused);
    assert!(e.message.contains("held exclusively"), "{e}");
    // A plain load claims nothing.
    assert!(b.load("plain", &other).is_ok());

    // Unknown devices, bad names and long lists are the deployer's mistakes.
    let e = a.load_driver("x", &other, &["pump"]).unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::BadRequest);
    assert!(
        e.message
            .contains("no device `pump` (devices: button, soil, valve)"),
        "{e}"
    );
    let e = a.load_driver("x", &other, &["a b"]).unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::BadRequest);
    assert!(e.message.contains("invalid device name"), "{e}");
    let many = ["valve"; 17];
    let e = a.load_driver("x", &other, &many).unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::BadRequest);
    assert!(e.message.contains("the limit is 16"), "{e}");

    // Unloading the holder frees the valve for the next claim.
    let unload = |module: &str| NodeRequest::Unload {
        module: module.into(),
    };
    assert_eq!(a.request(unload("valve")), Ok(NodeResponse::Done));
    assert!(!held(&mut world, "valve"));
    let loaded = b.load_driver("valve", &other, &["valve"]).unwrap();
    assert_eq!(
        loaded,
        NodeResponse::Loaded {
            measurement: Measurement::of(&other).with_devices(&["valve"]).0
        }
    );
    assert!(held(&mut world, "valve"));
}

#[test]
fn a_driver_that_fails_to_start_gives_its_devices_back() {
    let node = field_node();
    let mut world = physics(&node);
    let mut c = node.session();
    let e = c
        .load_driver("broken", b"#!/bin/sh\nexit 3\n", &["valve"])
        .unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::ModuleUnavailable, "{e}");
    assert!(!held(&mut world, "valve"));
    let driver = idle(&node, "good");
    assert!(c.load_driver("good", &driver, &["valve"]).is_ok());
}

#[test]
fn accesses_are_performed_for_the_loaded_holder_only() {
    let node = field_node();
    let mut world = physics(&node);
    let mut c = node.session();

    let driver = accessor(
        &node,
        "drv",
        &[
            (1, "valve", DeviceOp::Write(1)),
            (2, "soil", DeviceOp::Read),
            (3, "valve", DeviceOp::Write(7)),
            (4, "soil", DeviceOp::Write(1)),
        ],
    );
    c.load_driver("drv", &driver, &["valve", "soil"]).unwrap();
    let reply = |id, result: Result<u32, &str>| ToModule::DeviceReply {
        id,
        result: result.map_err(str::to_owned),
    };
    replies_arrive(
        &node,
        "drv",
        &[
            reply(1, Ok(1)),
            reply(2, Ok(35)),
            reply(3, Err("device `valve` takes values 0 to 1, not 7")),
            reply(
                4,
                Err("device `soil` is an input: the physical world sets it"),
            ),
        ],
    );
    let bound = Measurement::of(&driver).with_devices(&["soil", "valve"]);
    let told = std::fs::read_to_string(node.scratch.join("drv.measurement")).unwrap();
    assert_eq!(
        told.trim(),
        bound.to_hex(),
        "AEX_MEASUREMENT is device-bound"
    );
    assert_eq!(world.read("valve").unwrap(), 1);

    // A module that is not the holder, whatever it asks, reaches nothing.
    let spy = accessor(
        &node,
        "spy",
        &[
            (7, "valve", DeviceOp::Write(0)),
            (8, "soil", DeviceOp::Read),
            (9, "pump", DeviceOp::Read),
        ],
    );
    c.load("spy", &spy).unwrap();
    replies_arrive(
        &node,
        "spy",
        &[
            reply(7, Err("device `valve` is not granted to this module")),
            reply(8, Err("device `soil` is not granted to this module")),
            reply(
                9,
                Err("this node has no device `pump` (devices: button, soil, valve)"),
            ),
        ],
    );
    assert_eq!(world.read("valve").unwrap(), 1);

    // Unloading the driver releases its devices, and switches the released output off.
    c.request(NodeRequest::Unload {
        module: "drv".into(),
    })
    .unwrap();
    assert_eq!(world.read("valve").unwrap(), 0);
    assert!(!held(&mut world, "valve") && !held(&mut world, "soil"));
}

/// Another admitted deployer sends every management request there is, naming the owner's
/// driver: none of them reads, drives or frees the owner's device.
#[test]
fn the_management_interface_reaches_no_device() {
    let node = field_node();
    let mut world = physics(&node);
    let mut a = node.session();
    let driver = accessor(&node, "owner", &[(1, "valve", DeviceOp::Write(1))]);
    a.load_driver("valve", &driver, &["valve"]).unwrap();
    let reply = ToModule::DeviceReply {
        id: 1,
        result: Ok(1),
    };
    replies_arrive(&node, "owner", &[reply]);

    let mut b = other_session(&node);
    let module = || "valve".to_string();
    let requests = vec![
        NodeRequest::Status,
        NodeRequest::Attest {
            module: module(),
            challenge: [1; 32],
            deployer_pk: [9; 32],
        },
        NodeRequest::Command {
            module: module(),
            sealed: aex_proto::Sealed {
                counter: 1,
                ciphertext: vec![0; 32],
            },
        },
        NodeRequest::Route {
            conn: aex_proto::ConnId(1),
            dir: aex_proto::Direction::Forward,
            to: aex_proto::Endpoint::Module(module()),
            from: aex_proto::Origin::Local,
        },
        NodeRequest::Periodic {
            module: module(),
            triggers: vec![],
        },
        NodeRequest::Unload { module: module() },
        NodeRequest::LoadBegin {
            module: module(),
            size: 4,
        },
        NodeRequest::LoadChunk {
            module: module(),
            data: vec![0; 4],
        },
        NodeRequest::LoadDriver {
            module: module(),
            devices: vec!["valve".into()],
        },
    ];
    for request in requests {
        let what = format!("{request:?}");
        let _ = b.request(request);
        assert_eq!(world.read("valve").unwrap(), 1, "after {what}");
        assert!(held(&mut world, "valve"), "after {what}");
    }
    // B's status shows none of A's modules; A's driver still holds the valve.
    assert!(b.status().modules.iter().all(|m| m.name != "valve"));
    assert_eq!(a.status().modules.len(), 1);
}

#[test]
fn the_physics_socket_lives_with_the_node() {
    let mut node = field_node();
    let socket = physics_socket(&node.data_dir);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&socket).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let mut world = physics(&node);
    assert_eq!(world.set("soil", 12).unwrap(), 12);
    assert_eq!(world.read("soil").unwrap(), 12);
    match world.set("valve", 1) {
        Err(PhysicsError::Refused(m)) => assert_eq!(
            m,
            "device `valve` is an output: only the driver module it is granted to drives it"
        ),
        other => panic!("{other:?}"),
    }
    node.stop();
    assert!(!Path::new(&socket).exists(), "removed at a clean stop");

    // A node without devices still answers, with nothing.
    let bare = TestNode::start("bare");
    assert!(physics(&bare).list().unwrap().is_empty());
}
