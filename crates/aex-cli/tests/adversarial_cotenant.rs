//! The co-tenant attack of the outside review (issue 13, item 1), played against real node and
//! module processes.
//!
//! The farm and insight share a `sancus` field node, each holding the provider key the node's
//! operator handed it (`aex node provider-key`). A proxy in front of the field node keeps
//! every frame of the farm's deployment and of the events that reach the field: the valve
//! driver's load, its attestation, the sealed commands that key its connection, the
//! controller's commands. Links are encrypted, so the proxy holds the field node's identity
//! key and the edge node's (it sees what the field node's agent sees: the strongest position
//! a co-tenant could reach). Then insight, holding only its own identity and its own provider
//! key file, does what the review did with the node's one shared vendor key: derives the valve
//! driver's module key from the measurement in the recording, the session key from the
//! recorded challenge and public values, decrypts the `SetKey`, and forges an "open" command
//! into the farm's namespace over a peer link under the edge node's identity (the only one the
//! farm's route admits). The valve must never move, and the driver must count the forgery as
//! rejected.
//!
//! Against the scheme before provider keys (every stakeholder got the node's vendor key; the
//! session key derived from the module key and values that travel in clear) this attack
//! decrypts the `SetKey` and opens the valve.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aex_crypto::{Algorithm, SecretKey};
use aex_proto::{
    AppId, Command, CommandChannel, Direction, Endpoint, Event, EventKind, FromNode, Hello,
    NodeRequest, NodeResponse, SendChannel, ToNode,
};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use aex_testkit::cli::{self, COMMAND_TIMEOUT};
use aex_testkit::cluster::AppDir;
use aex_testkit::descriptor::{example_descriptor, write_toml};
use aex_testkit::identity::{self, TestIdentity};
use aex_testkit::node::{NodeOptions, NodeProcess};
use aex_testkit::proxy::{Insider, Link, Out, Proxy, Tamper};
use aex_testkit::session::forward_as_peer;
use aex_testkit::status::{AppStatus, StatusExt};
use aex_testkit::{free_addr, wait_for, PATIENCE};

/// The farm's connection from the controller to the valve driver.
const VALVE_CONN: &str = "controller.valve->valve.command";
/// How far above the genuine counters the forgeries are sealed, so a genuine command cannot
/// overtake them.
const FORGED_COUNTER: u64 = 1 << 30;

/// One frame through the proxy.
#[derive(Clone)]
enum Frame {
    /// Towards the field node (deployer requests, peer forwards).
    Up(ToNode),
    /// From the field node.
    Down(FromNode),
}

/// The eavesdropper on the field node's link: forwards everything, keeps every frame.
#[derive(Default)]
struct Recorder(Mutex<Vec<Frame>>);

impl Tamper for Recorder {
    fn upstream(&self, _link: Link, msg: ToNode) -> Vec<Out> {
        self.0.lock().unwrap().push(Frame::Up(msg.clone()));
        vec![Out::ToNode(msg)]
    }

    fn downstream(&self, _link: Link, msg: FromNode) -> Vec<Out> {
        self.0.lock().unwrap().push(Frame::Down(msg.clone()));
        vec![Out::ToClient(msg)]
    }
}

/// The operator's act: `aex node provider-key` on `node`'s data directory for `deployer`,
/// written to `out`.
fn hand_provider_key(node: &NodeProcess, tee: &str, deployer: &TestIdentity, out: &Path) {
    let data_dir = node.data_dir.display().to_string();
    let out_arg = out.display().to_string();
    cli::run(
        None,
        &[
            "node",
            "provider-key",
            "--data-dir",
            &data_dir,
            "--tee",
            tee,
            "--deployer",
            &deployer.hex(),
            "-o",
            &out_arg,
        ],
        COMMAND_TIMEOUT,
    )
    .ok()
    .stderr_has(&["Wrote", "hand it to that deployer alone"]);
}

fn hkdf(salt: Option<&[u8]>, ikm: &[u8], info: &[&[u8]]) -> SecretKey {
    let mut okm = [0u8; 32];
    Hkdf::<Sha256>::new(salt, ikm)
        .expand_multi_info(info, &mut okm)
        .unwrap();
    SecretKey::from_bytes(okm)
}

fn hmac(key: &SecretKey, parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose_secret()).unwrap();
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// What the attacker got out of the recording with its own provider key.
struct Loot {
    /// The farm's namespace (from the recorded `Hello`).
    app: AppId,
    /// Whether a derived module key verified the valve driver's recorded attestation MAC.
    mac_verified: bool,
    /// The valve driver's commands the attacker decrypted.
    opened: Vec<Command>,
    /// The "open" commands it forged, one per key it could try.
    forged: Vec<Event>,
}

/// Everything insight can do with the recording and `provider_key` (its own key file's
/// bytes): the derivations of both the old scheme and the current one, with insight's key in
/// place of the farm's.
fn attack(recording: &[Frame], provider_key: &[u8; 32]) -> Loot {
    let app = recording
        .iter()
        .find_map(|f| match f {
            Frame::Up(ToNode::Hello(Hello::Deployer { key, app, .. })) if app == "farm" => {
                Some(AppId::of(key, app))
            }
            _ => None,
        })
        .expect("the farm's session is in the recording");
    let evidences: Vec<([u8; 32], Vec<u8>)> = recording
        .iter()
        .filter_map(|f| match f {
            Frame::Down(FromNode::Response {
                result:
                    Ok(NodeResponse::Evidence {
                        public_key,
                        evidence,
                        ..
                    }),
                ..
            }) => Some((*public_key, evidence.clone())),
            _ => None,
        })
        .collect();
    let mut mac_verified = false;
    let mut keys = vec![];
    for f in recording {
        let Frame::Up(ToNode::Request {
            body:
                NodeRequest::Attest {
                    module,
                    challenge,
                    deployer_pk,
                },
            ..
        }) = f
        else {
            continue;
        };
        if module != "valve" {
            continue;
        }
        // The evidence answering this challenge: its body ends with the measurement and the
        // MAC, in clear.
        let (module_pk, ev) = evidences
            .iter()
            .find(|(_, ev)| ev.windows(32).any(|w| w == challenge))
            .expect("the valve driver's evidence is in the recording");
        let (measurement, mac) = (&ev[ev.len() - 64..ev.len() - 32], &ev[ev.len() - 32..]);
        for label in [
            &b"aex/v1 symmetric module key"[..],
            b"aex/v2 symmetric module key",
        ] {
            let mk = hkdf(None, provider_key, &[label, measurement]);
            let old = hmac(
                &mk,
                &[b"aex/v1 sancus attest", &[1], challenge, measurement],
            );
            let new = hmac(
                &mk,
                &[
                    b"aex/v2 sancus attest",
                    &[1],
                    challenge,
                    measurement,
                    module_pk,
                    deployer_pk,
                ],
            );
            mac_verified |= old[..] == mac[..] || new[..] == mac[..];
            let sessions = [
                hkdf(
                    Some(challenge),
                    mk.expose_secret(),
                    &[b"aex/v1 symmetric session", module_pk],
                ),
                hkdf(
                    Some(challenge),
                    mk.expose_secret(),
                    &[
                        b"aex/v2 symmetric session",
                        module_pk,
                        deployer_pk,
                        measurement,
                    ],
                ),
            ];
            keys.extend(sessions);
            keys.push(mk);
        }
    }
    assert!(
        !keys.is_empty(),
        "the valve driver's attestation is recorded"
    );
    // Every command the farm sealed for the valve driver, under every key.
    let mut opened = vec![];
    for f in recording {
        if let Frame::Up(ToNode::Request {
            body: NodeRequest::Command { module, sealed },
            ..
        }) = f
        {
            if module == "valve" {
                opened.extend(
                    keys.iter()
                        .filter_map(|k| CommandChannel::new(k).open_command(sealed).ok()),
                );
            }
        }
    }
    // Forge "open": under the connection key if a SetKey opened, else under every key tried,
    // on the connection the recorded routes name.
    let mut forged = vec![];
    let open = serde_json::to_vec(&true).unwrap();
    for cmd in &opened {
        if let Command::SetKey {
            conn,
            algorithm,
            key,
            ..
        } = cmd
        {
            let key = SecretKey::from_bytes(key.0);
            let mut ch = SendChannel::resume(
                Algorithm::from(*algorithm),
                &key,
                *conn,
                Direction::Forward,
                FORGED_COUNTER,
            );
            forged.push(ch.seal(EventKind::Event, &open).unwrap());
        }
    }
    if forged.is_empty() {
        let conn = recording
            .iter()
            .find_map(|f| match f {
                Frame::Up(ToNode::Request {
                    body:
                        NodeRequest::Route {
                            conn,
                            dir: Direction::Forward,
                            to: Endpoint::Module(m),
                            ..
                        },
                    ..
                }) if m == "valve" => Some(*conn),
                _ => None,
            })
            .expect("the route to the valve driver is in the recording");
        for k in &keys {
            let mut ch = SendChannel::resume(
                Algorithm::ChaCha20Poly1305,
                k,
                conn,
                Direction::Forward,
                FORGED_COUNTER,
            );
            forged.push(ch.seal(EventKind::Event, &open).unwrap());
        }
    }
    Loot {
        app,
        mac_verified,
        opened,
        forged,
    }
}

/// The physical valve, as the world sees it (`aex device --data-dir DIR valve read`).
fn valve(field: &NodeProcess) -> u32 {
    let dir = field.data_dir.display().to_string();
    let out = cli::run(
        None,
        &["device", "field", "valve", "read", "--data-dir", &dir],
        COMMAND_TIMEOUT,
    )
    .ok()
    .stdout
    .clone();
    out.split_whitespace()
        .last()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("`aex device field valve read` printed {out:?}"))
}

/// The farm's descriptor: the irrigation example's farm on the test's nodes (the field node
/// behind `field_addr`), with the provider keys the operator handed the farm and the nodes'
/// identity pins.
fn farm_descriptor(
    farm: &AppDir,
    field_addr: SocketAddr,
    edge_addr: SocketAddr,
    keys: [&Path; 2],
    pins: [&Path; 2],
) {
    let mut doc = example_descriptor("irrigation", &[field_addr, edge_addr, free_addr()]);
    let nodes = doc["node"].as_array_mut().unwrap();
    nodes.truncate(2); // the farm runs nothing on the cloud node
    for ((node, key), pin) in nodes.iter_mut().zip(keys).zip(pins) {
        let node = node.as_table_mut().unwrap();
        node.insert("provider_key_file".into(), key.display().to_string().into());
        node.insert("identity_file".into(), pin.display().to_string().into());
    }
    doc.remove("tenant");
    doc["periodic"][0]["every"] = toml::Value::String("200ms".into());
    write_toml(farm.path(), &doc);
}

/// Insight's own application on the field node: its gauge driver, attested under insight's
/// provider key (which shows the key file it holds is genuine).
fn insight_descriptor(dir: &Path, field: SocketAddr, key: &Path, pin: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut doc = example_descriptor("irrigation/insight", &[field, free_addr()]);
    let nodes = doc["node"].as_array_mut().unwrap();
    nodes.truncate(1);
    nodes[0]["provider_key_file"] = key.display().to_string().into();
    let node = nodes[0].as_table_mut().unwrap();
    node.insert("identity_file".into(), pin.display().to_string().into());
    doc["module"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["name"].as_str() == Some("gauge"));
    doc.remove("connection");
    doc.remove("periodic");
    write_toml(dir, &doc);
}

#[test]
fn a_cotenant_with_the_recording_and_its_own_provider_key_cannot_drive_the_valve() {
    let farm_id = identity::deployer();
    let insight = TestIdentity::named("insight");
    let farm = AppDir::new();
    let admit = [farm_id.hex(), insight.hex()];
    let field = NodeOptions::new("field", farm.path().join("field-node"))
        .tee("sancus")
        .admit(&admit)
        .args(&[
            "--device",
            "moisture-1=analog_in:100@45~soil",
            "--device",
            "moisture-2=analog_in:100@45~soil",
            "--device",
            "valve=digital_out",
        ])
        .start();
    let edge = NodeOptions::new("edge", farm.path().join("edge-node"))
        .tee("trustzone")
        .admit(&admit)
        .start();
    let recorder = Arc::new(Recorder::default());
    let insider = Insider::of(
        &field.data_dir,
        &[&edge.data_dir],
        farm_id.identity.signing(),
    );
    let proxy = Proxy::inside(field.addr, insider, recorder.clone());

    // The operator hands each stakeholder its own provider key.
    let keys = farm.path().join("keys");
    let farm_field: PathBuf = keys.join("farm-field.key");
    let farm_edge = keys.join("farm-edge.key");
    let insight_field = keys.join("insight-field.key");
    hand_provider_key(&field, "sancus", farm_id, &farm_field);
    hand_provider_key(&edge, "trustzone", farm_id, &farm_edge);
    hand_provider_key(&field, "sancus", &insight, &insight_field);

    // The farm deploys through the recording proxy; its controller commands the valve.
    let pins = [field.identity_pub_file(), edge.identity_pub_file()];
    farm_descriptor(
        &farm,
        proxy.addr(),
        edge.addr,
        [&farm_field, &farm_edge],
        [&pins[0], &pins[1]],
    );
    farm.deploy().ok();
    let before = wait_for("the controller to command the valve", PATIENCE, || {
        let status = farm.status();
        let valve_state = status.module("valve").state.clone()?;
        (valve_state["commands"].as_u64()? >= 2).then_some(status)
    });
    let driver = before.module("valve").state.clone().unwrap();
    assert_eq!(driver["valve"], "closed", "{driver}");
    assert_eq!(valve(&field), 0);

    // Insight deploys its own driver on the field node with its key: the key is genuine.
    let insight_dir = farm.path().join("insight");
    insight_descriptor(&insight_dir, field.addr, &insight_field, &pins[0]);
    let dir = insight_dir.display().to_string();
    cli::run_as(&insight.path, &["deploy", &dir], COMMAND_TIMEOUT).ok();

    // The attack, with the recording and insight's key file only.
    let recording = recorder.0.lock().unwrap().clone();
    let text = std::fs::read_to_string(&insight_field).unwrap();
    let mut own_key = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut own_key).unwrap();
    let loot = attack(&recording, &own_key);
    eprintln!(
        "recorded {} frames; insight's key: MAC verified {}, {} commands to the valve decrypted, \
         {} forgeries sent",
        recording.len(),
        loot.mac_verified,
        loot.opened.len(),
        loot.forged.len()
    );
    let _link = forward_as_peer(field.addr, &edge.identity_key(), loot.app, &loot.forged)
        .expect("the edge node's identity is admitted by the farm's route");

    // The forgeries reach the driver (counted against its connection); the valve never moves.
    let rejected_before = before.counters(VALVE_CONN).rejected;
    let forged = loot.forged.len() as u64;
    let after: AppStatus = wait_for("the forgeries to reach the valve driver", PATIENCE, || {
        let status = farm.status();
        let driver = status.module("valve").state.clone()?;
        let moved = driver["switches"] != before.module("valve").state.as_ref()?["switches"];
        let rejected = status.counters(VALVE_CONN).rejected >= rejected_before + forged;
        (moved || rejected || valve(&field) != 0).then_some(status)
    });
    let driver = after.module("valve").state.clone().unwrap();
    assert_eq!(
        valve(&field),
        0,
        "the forged command opened the valve: {driver}"
    );
    assert_eq!(driver["valve"], "closed", "{driver}");
    assert_eq!(
        driver["switches"],
        before.module("valve").state.as_ref().unwrap()["switches"],
        "the driver moved the valve: {driver}"
    );
    assert_eq!(
        after.counters(VALVE_CONN).rejected,
        rejected_before + forged,
        "the driver counts each forgery as rejected"
    );
    // And the cryptography gave the attacker nothing to work with.
    assert!(
        !loot.mac_verified,
        "insight's key derived the key the farm's valve driver attested with"
    );
    assert!(
        loot.opened.is_empty(),
        "insight decrypted the farm's commands to the valve driver: {:?}",
        loot.opened.len()
    );
    // The farm's application runs on, untouched.
    farm.status().assert_healthy();
    drop(proxy);
}
