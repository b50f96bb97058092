//! End to end: the governor carries out accepted `move` and `disable` proposals, and one
//! member of a 2-of-3 consortium can do neither alone (issue 20, items 2 and 7).
//!
//! The setup is the test kit's (`aex_testkit::governor`): the governor on its own simulated `sgx` node, the
//! governed ping-pong's two nodes admitting only the governor's deployer key. Once a and b
//! accepted its deployment:
//!
//! * **move**: a bundle approved as a `move` that also adds a connection fails before
//!   anything is sent (a move's rule must not deploy more). a changes the descriptor to place
//!   `pong` on `node1`, sends the bundle and proposes it as a `move`; a's approval alone changes nothing (the outcome waits, the
//!   ledger does not grow). b's approval: the governor attests a new `pong` on `node1` and
//!   retires the one on `node2` (its state handed over), as the ledger records.
//! * **disable**: a sends the order naming `pong` (`POST /orders`, read back by digest) and
//!   proposes its digest; with a's approval alone nothing happens, and a raw client holding
//!   a's complete key that sends `Command::Disable` to the node itself is refused
//!   (`NotAdmitted`). b's approval: the governor disables `pong` (the ledger's
//!   `module removed` follows the module's own sealed answer to `Disable`, under the module
//!   key only the governor holds), between the proposal with its ballots and
//!   `proposal applied`; the proposal is applied once.

use aex_governance::{Action, DisableOrder};
use aex_proto::{CommandChannel, NodeErrorKind, NodeRequest};
use aex_testkit::session::Session;

use aex_testkit::governor::{field, member, Governed, APP};

/// The entries of `kind` for `module`, from `from` on.
fn of_module<'a>(
    entries: &'a [aex_ledger::Entry],
    from: usize,
    kind: &str,
    module: &str,
) -> Vec<&'a aex_ledger::Entry> {
    entries[from..]
        .iter()
        .filter(|e| e.kind == kind && field(e, "module").as_deref() == Some(module))
        .collect()
}

#[test]
fn the_governor_moves_and_disables_only_what_a_quorum_accepted() {
    let rules = [
        ("deploy", "2 of 3"),
        ("move", "2 of 3"),
        ("disable", "2 of 3"),
    ];
    let g = Governed::start(&rules);
    let deployed = g.propose_bundle(Action::Deploy);
    assert_eq!(g.approve(&deployed, 1), "open");
    assert_eq!(g.approve(&deployed, 2), "accepted");
    assert_eq!(g.settled(&deployed)["state"], "applied");

    // Move: `pong` to node1, in the members' descriptor.
    let text = std::fs::read_to_string(g.member_dir.path().join("aex.toml")).expect("reads");
    let (head, pong) = text.split_once("name = \"pong\"\n").expect("pong's entry");
    assert!(pong.contains("node = \"node2\""), "{text}");
    let pong = pong.replacen("node = \"node2\"", "node = \"node1\"", 1);
    let moving = format!("{head}name = \"pong\"\n{pong}");

    // A bundle approved as a move may not do more (here: add a connection), whatever the
    // rules of the other kinds: refused before anything is sent.
    g.member_dir.write_descriptor(&format!(
        "{moving}\n[[connection]]\nname = \"extra\"\nfrom = \"deployer\"\nto = \"pong.ping\"\n"
    ));
    let more = g.propose_bundle(Action::Move);
    let (_, _, before) = g.ledger();
    assert_eq!(g.approve(&more, 1), "open");
    assert_eq!(g.approve(&more, 2), "accepted");
    let last = g.settled(&more);
    assert_eq!(last["state"], "failed", "{last}");
    let why = last["error"].as_str().unwrap_or_default();
    assert!(why.contains("connection `extra` is new"), "{last}");
    assert_eq!(g.ledger().2.len(), before.len(), "nothing was done");

    g.member_dir.write_descriptor(&moving);
    let moved = g.propose_bundle(Action::Move);
    let (_, _, before) = g.ledger();
    assert_eq!(g.approve(&moved, 1), "open");
    assert_eq!(g.outcome(&moved)["state"], "waiting");
    let a = member(1);
    let mut session = Session::open(g.node1.addr, &a, APP);
    let e = session
        .request(NodeRequest::LoadBegin {
            module: "pong".into(),
            size: 4,
        })
        .unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::NotAdmitted, "{e}");
    assert_eq!(g.ledger().2.len(), before.len(), "a alone appended nothing");
    assert_eq!(g.approve(&moved, 2), "accepted");
    let last = g.settled(&moved);
    assert_eq!(last["state"], "applied", "{last}");
    let (_, _, entries) = g.ledger();
    let attested = of_module(&entries, before.len(), "module attested", "pong");
    assert_eq!(attested.len(), 1, "{last}");
    assert_eq!(field(attested[0], "node").as_deref(), Some("node1"));
    let retired = of_module(&entries, before.len(), "module retired", "pong");
    assert_eq!(field(retired[0], "node").as_deref(), Some("node2"));
    assert!(of_module(&entries, before.len(), "module attested", "ping").is_empty());

    // Disable: a sends the order, which reads back by its digest, and proposes it.
    let order = DisableOrder::new(APP, ["pong".to_owned()]).expect("an order");
    let (code, kept) = g.client.json("POST", "/orders", &order.to_bytes());
    assert_eq!(code, 201, "{kept}");
    let digest = hex::encode(order.digest());
    assert_eq!(kept["digest"], digest);
    let (code, back) = g.client.bytes("GET", &format!("/orders/{digest}"), b"");
    assert_eq!((code, back), (200, order.to_bytes()));
    let disabled = g.propose(Action::Disable, order.digest());
    let before = entries.len();
    assert_eq!(g.approve(&disabled, 1), "open");
    assert_eq!(g.outcome(&disabled)["state"], "waiting");

    // a, with its complete key, tells pong's node to disable it: refused.
    let mut channel = CommandChannel::new(&aex_crypto::SecretKey::from_bytes([7; 32]));
    let sealed = channel
        .seal_command(&aex_proto::Command::Disable)
        .expect("seals");
    for node in [&g.node1, &g.node2] {
        let mut session = Session::open(node.addr, &a, APP);
        let e = session
            .request(NodeRequest::Command {
                module: "pong".into(),
                sealed: sealed.clone(),
            })
            .unwrap_err();
        assert_eq!(e.kind, NodeErrorKind::NotAdmitted, "{e}");
    }
    assert_eq!(g.ledger().2.len(), before, "a alone appended nothing");

    // b approves: the governor disables pong.
    assert_eq!(g.approve(&disabled, 2), "accepted");
    let last = g.settled(&disabled);
    assert_eq!(last["state"], "applied", "{last}");
    let report = last["report"].as_str().unwrap_or_default();
    assert!(report.contains("disabled [\"pong\"]"), "{last}");
    let (_, summary, entries) = g.ledger();
    // Signed roots (`signature`) come between, as often as the ledger signs.
    let kinds: Vec<&str> = entries[before..]
        .iter()
        .map(|e| e.kind.as_str())
        .filter(|k| *k != "signature")
        .collect();
    assert_eq!(
        kinds,
        [
            "signer attested",
            "proposal",
            "ballot",
            "ballot",
            "module removed",
            "module retired",
            "proposal applied"
        ]
    );
    let removed = of_module(&entries, before, "module removed", "pong");
    assert_eq!(removed.len(), 1, "{kinds:?}");
    assert_eq!(field(removed[0], "node").as_deref(), Some("node1"));
    assert!(of_module(&entries, before, "module removed", "ping").is_empty());
    assert_eq!(
        field(&entries[before + 1], "proposal").as_deref(),
        Some(disabled.as_str())
    );
    assert_eq!(
        summary.signers.iter().map(hex::encode).collect::<Vec<_>>(),
        vec![g.governor_key.clone()]
    );

    // Applied once.
    let (code, why) = g
        .client
        .send("POST", &format!("/proposals/{disabled}/apply"), b"");
    assert_eq!(code, 409, "{why}");
}
