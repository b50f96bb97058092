//! Attestation attacks: evidence for different code than the deployer built, a node lying
//! about what it loaded, evidence replayed from an earlier attestation, and evidence from a
//! platform the deployer does not trust. The deployer must refuse, give the module no key, and
//! say why.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use aex_crypto::Measurement;
use aex_proto::{FromNode, NodeRequest, NodeResponse, ToNode};

use aex_testkit::cluster::{Cluster, Node2Key, Options};
use aex_testkit::proxy::{Link, Out, Tamper};
use aex_testkit::session as wire;
use aex_testkit::status::{AppStatus as Status, StatusExt};
use aex_testkit::{modules, paths, process, wait_for, PATIENCE};

/// The chunk size of the deployer's uploads.
const CHUNK: usize = 256 * 1024;
/// The largest piece of the substitute that fits one frame with room to spare.
const MAX_PIECE: usize = aex_proto::MAX_FRAME_LEN - 4096;

/// A lying node in front of node2: when the deployer uploads `module`, it uploads
/// `substitute` instead (another valid module binary), then tells the deployer that it
/// measured exactly what the deployer uploaded.
struct SwapBinary {
    module: String,
    substitute: Vec<u8>,
    armed: AtomicBool,
    state: Mutex<SwapState>,
}

#[derive(Default)]
struct SwapState {
    /// What the deployer uploaded.
    original: Vec<u8>,
    /// Pieces of the substitute still to upload.
    pieces: VecDeque<Vec<u8>>,
    /// The deployer's `LoadEnd` request, whose answer is rewritten.
    load_end: Option<u64>,
    /// Whether a `Loaded` answer was rewritten.
    lied: bool,
}

impl SwapBinary {
    fn new(module: &str, substitute: Vec<u8>) -> Arc<Self> {
        Arc::new(SwapBinary {
            module: module.into(),
            substitute,
            armed: AtomicBool::new(true),
            state: Mutex::new(SwapState::default()),
        })
    }

    fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }

    fn lied(&self) -> bool {
        self.state.lock().unwrap().lied
    }

    /// Request `id` on the node's side of the link. A network attacker cannot do this (the
    /// link authenticates every record): the proxy stands for a compromised node agent, which
    /// loads what it likes.
    fn request(_st: &SwapState, id: u64, body: NodeRequest) -> Out {
        Out::ToNode(ToNode::Request { id, body })
    }
}

impl Tamper for SwapBinary {
    fn upstream(&self, link: Link, msg: ToNode) -> Vec<Out> {
        if link != Link::Deployer || !self.armed.load(Ordering::SeqCst) {
            return vec![Out::ToNode(msg)];
        }
        let ToNode::Request { id, body, .. } = msg else {
            return vec![Out::ToNode(msg)];
        };
        let mut st = self.state.lock().unwrap();
        match body {
            // The substitute is cut into as many pieces as the deployer sends chunks, so it
            // travels in the deployer's own requests (request ids must keep increasing).
            NodeRequest::LoadBegin { module, size } if module == self.module => {
                st.original.clear();
                let chunks = usize::try_from(size).unwrap().div_ceil(CHUNK).max(1);
                let piece = self.substitute.len().div_ceil(chunks);
                assert!(piece <= MAX_PIECE, "the substitute is too large to swap in");
                st.pieces = self.substitute.chunks(piece).map(<[u8]>::to_vec).collect();
                let size = self.substitute.len() as u64;
                vec![Self::request(
                    &st,
                    id,
                    NodeRequest::LoadBegin { module, size },
                )]
            }
            // Every deployer request gets a real answer, in order: each chunk carries the next
            // piece of the substitute (or nothing once it is all sent).
            NodeRequest::LoadChunk { module, data } if module == self.module => {
                st.original.extend_from_slice(&data);
                let data = st.pieces.pop_front().unwrap_or_default();
                vec![Self::request(
                    &st,
                    id,
                    NodeRequest::LoadChunk { module, data },
                )]
            }
            NodeRequest::LoadEnd { module } if module == self.module => {
                assert!(st.pieces.is_empty(), "the whole substitute was swapped in");
                st.load_end = Some(id);
                vec![Self::request(&st, id, NodeRequest::LoadEnd { module })]
            }
            body => vec![Self::request(&st, id, body)],
        }
    }

    fn downstream(&self, link: Link, msg: FromNode) -> Vec<Out> {
        if link != Link::Deployer {
            return vec![Out::ToClient(msg)];
        }
        let mut st = self.state.lock().unwrap();
        match msg {
            FromNode::Response {
                id,
                result: Ok(NodeResponse::Loaded { .. }),
            } if st.load_end == Some(id) => {
                st.load_end = None;
                st.lied = true;
                let measurement = Measurement::of(&st.original).0;
                vec![Out::ToClient(FromNode::Response {
                    id,
                    result: Ok(NodeResponse::Loaded { measurement }),
                })]
            }
            msg => vec![Out::ToClient(msg)],
        }
    }
}

/// After a refused attestation of pong: ping is attested, pong is not, and pong's
/// connections are not keyed.
#[track_caller]
fn assert_pong_unkeyed(cluster: &Cluster) -> Status {
    let status = cluster.app.status();
    assert!(status.module("ping").attested, "{status:#?}");
    assert!(!status.module("pong").attested, "{status:#?}");
    for name in ["ping-to-pong", "pong-to-ping"] {
        assert!(
            !status.connection(name).keyed,
            "`{name}` keyed: {status:#?}"
        );
    }
    // Asked directly (not through the attacker): pong's runtime holds no connection key and
    // was sent no command.
    let node2 = wire::node_status(cluster.node2.addr);
    let pong = node2
        .modules
        .iter()
        .find(|m| m.name == "pong")
        .expect("pong is loaded on node2");
    let stats = pong.stats.as_ref().expect("pong reports its counters");
    assert!(stats.conns.is_empty(), "pong holds keys: {stats:?}");
    assert_eq!(stats.commands, 0, "pong accepted commands: {stats:?}");
    // The owner cannot use the module either.
    cluster
        .app
        .aex(&["call", "pong", "count"])
        .code(1)
        .stderr_has(&["module `pong` is not deployed"]);
    status
}

#[test]
fn evidence_for_a_different_binary_is_refused() {
    let ping =
        std::fs::read(modules::binary(&paths::ping_pong_crate("ping"))).expect("read ping binary");
    let pong =
        std::fs::read(modules::binary(&paths::ping_pong_crate("pong"))).expect("read pong binary");
    let swap = SwapBinary::new("pong", ping.clone());
    let mut cluster = Cluster::start(Options {
        tamper: Some(swap.clone()),
        ..Options::default()
    });

    let run = cluster.app.deploy().code(1);
    assert!(
        swap.lied(),
        "the attacker rewrote the node's `Loaded` answer"
    );
    run.stderr_has(&[
        "failed to attest module `pong` on node `node2`",
        "measurement mismatch",
        &Measurement::of(&pong).to_hex(),
        &Measurement::of(&ping).to_hex(),
        "help: ",
    ]);
    let status = assert_pong_unkeyed(&cluster);
    // What runs under the name `pong` is ping's code, and `aex status` shows it.
    assert_eq!(
        status.module("pong").measurement,
        Measurement::of(&ping).to_hex()
    );
    cluster.assert_nodes_running();

    // Once the attacker stops, the next deploy replaces the impostor and everything works.
    swap.disarm();
    cluster.deploy_ok();
    let status = cluster.app.status();
    assert_eq!(
        status.module("pong").measurement,
        Measurement::of(&pong).to_hex()
    );
    cluster.app.start_pings(10);
    cluster.app.wait_pings_done(10);
}

#[test]
fn evidence_from_an_untrusted_platform_is_refused() {
    // The descriptor pins node1's platform key for node2: node2's genuine evidence is signed
    // by a key the deployer does not trust for it.
    let cluster = Cluster::start(Options {
        node2_key: Node2Key::Node1sInline,
        ..Options::default()
    });
    cluster.app.deploy().code(1).stderr_has(&[
        "failed to attest module `pong` on node `node2`",
        "not by the trusted root",
    ]);
    assert_pong_unkeyed(&cluster);
}

/// A node that answers every `LoadEnd` with a made-up measurement.
struct LieAboutLoad;

impl Tamper for LieAboutLoad {
    fn downstream(&self, _link: Link, msg: FromNode) -> Vec<Out> {
        match msg {
            FromNode::Response {
                id,
                result: Ok(NodeResponse::Loaded { .. }),
            } => vec![Out::ToClient(FromNode::Response {
                id,
                result: Ok(NodeResponse::Loaded {
                    measurement: [0x5a; 32],
                }),
            })],
            msg => vec![Out::ToClient(msg)],
        }
    }
}

#[test]
fn node_misreporting_the_loaded_measurement_is_refused() {
    let pong =
        std::fs::read(modules::binary(&paths::ping_pong_crate("pong"))).expect("read pong binary");
    let cluster = Cluster::start(Options {
        tamper: Some(Arc::new(LieAboutLoad)),
        ..Options::default()
    });
    cluster.app.deploy().code(1).stderr_has(&[
        "failed to attest module `pong` on node `node2`",
        &format!(
            "the node measured {}, but the deployer uploaded {}",
            "5a".repeat(32),
            Measurement::of(&pong).to_hex()
        ),
    ]);
    assert_pong_unkeyed(&cluster);
}

/// Keeps the first evidence node2 sends and, once armed, answers later attestations with it.
#[derive(Default)]
struct ReplayEvidence {
    armed: AtomicBool,
    kept: Mutex<Option<NodeResponse>>,
    replayed: AtomicBool,
}

impl Tamper for ReplayEvidence {
    fn downstream(&self, _link: Link, msg: FromNode) -> Vec<Out> {
        let FromNode::Response {
            id,
            result: Ok(evidence @ NodeResponse::Evidence { .. }),
        } = msg
        else {
            return vec![Out::ToClient(msg)];
        };
        let mut kept = self.kept.lock().unwrap();
        let evidence = match kept.as_ref() {
            None => {
                *kept = Some(evidence.clone());
                evidence
            }
            Some(old) if self.armed.load(Ordering::SeqCst) => {
                self.replayed.store(true, Ordering::SeqCst);
                old.clone()
            }
            Some(_) => evidence,
        };
        vec![Out::ToClient(FromNode::Response {
            id,
            result: Ok(evidence),
        })]
    }
}

#[test]
fn replayed_evidence_is_refused() {
    let replay = Arc::new(ReplayEvidence::default());
    let cluster = Cluster::start(Options {
        tamper: Some(replay.clone()),
        ..Options::default()
    });
    cluster.deploy_ok();
    assert!(
        replay.kept.lock().unwrap().is_some(),
        "pong's evidence seen"
    );

    // A new pong instance needs a new attestation; the attacker answers it with the old
    // evidence (valid signature, genuine platform, right code), which answers an old challenge.
    let pid = cluster.app.status().module("pong").pid.expect("pong's pid");
    process::signal(pid, process::Signal::Kill);
    wait_for("pong to be reported stopped", PATIENCE, || {
        (!cluster.app.status().module("pong").running).then_some(())
    });
    replay.armed.store(true, Ordering::SeqCst);
    cluster
        .app
        .deploy_with(&["--discard-state", "pong"])
        .code(1)
        .stderr_has(&[
            "failed to attest module `pong` on node `node2`",
            "evidence answers another challenge",
        ]);
    assert!(replay.replayed.load(Ordering::SeqCst));
    assert_pong_unkeyed(&cluster);
}
