//! Attestation and commands relayed between a deployer and a module.

use aex_crypto::Measurement;
use aex_proto::frame;
use aex_proto::{FromModule, NodeErrorKind, NodeRequest, NodeResponse, Sealed, ToModule};
use aex_tee::{appraise, Expected, TeeKind};

use aex_testkit::node::TestNode;

use crate::scripts::{frame_file, script};

#[test]
fn attest_then_commands_are_relayed() {
    let node = TestNode::start("attester");
    let dir = &node.scratch;
    let challenge = [7u8; 32];
    let deployer_pk = [9u8; 32];
    let module_pk = [42u8; 32];
    let command = Sealed {
        counter: 1,
        ciphertext: vec![5; 20],
    };
    let reply = Sealed {
        counter: 1,
        ciphertext: vec![6; 24],
    };
    let attest_len = frame::encode(&ToModule::Attest {
        challenge,
        deployer_pk,
    })
    .len();
    let command_len = frame::encode(&ToModule::Command(command.clone())).len();
    let attested = frame_file(
        dir,
        "attested.bin",
        &FromModule::Attested {
            public_key: module_pk,
            confirm: vec![1, 2, 3],
            mac: None,
        },
    );
    let rejected = frame_file(
        dir,
        "rejected.bin",
        &FromModule::CommandRejected { counter: 1 },
    );
    let replied = frame_file(dir, "reply.bin", &FromModule::CommandReply(reply.clone()));
    let refused = frame_file(dir, "refused.bin", &FromModule::AttestRefused);
    let bin = script(
        dir,
        &format!(
            "head -c {attest_len} > /dev/null; cat '{attested}'\n\
             head -c {command_len} > /dev/null; cat '{rejected}'\n\
             head -c {command_len} > /dev/null; cat '{replied}'\n\
             head -c {attest_len} > /dev/null; cat '{refused}'\n\
             exec cat > /dev/null"
        ),
    );
    let mut c = node.session();
    c.load("vault", &bin).unwrap();

    let attest = NodeRequest::Attest {
        module: "vault".into(),
        challenge,
        deployer_pk,
    };
    let Ok(NodeResponse::Evidence {
        public_key,
        confirm,
        tee,
        evidence,
    }) = c.request(attest.clone())
    else {
        panic!("no evidence");
    };
    assert_eq!(
        (public_key, confirm, tee.as_str()),
        (module_pk, vec![1, 2, 3], "sgx")
    );
    let root = aex_tee::sgx::SimRootPublicKey::from_sec1(node.handle().platform_key())
        .expect("an sgx node's identity is its simulated root key");
    let appraised = appraise(
        &evidence,
        &Expected {
            kind: TeeKind::Sgx,
            anchor: aex_tee::TrustAnchor::SimSgxRoot(&root),
            measurement: Measurement::of(&bin),
            challenge,
            module_pk: Some(module_pk),
            allow_simulated: true,
            allow_debug: false,
            allow_insecure: false,
        },
    )
    .expect("the evidence appraises");
    assert_eq!(appraised.measurement(), Measurement::of(&bin));

    let send = NodeRequest::Command {
        module: "vault".into(),
        sealed: command,
    };
    let e = c.request(send.clone()).unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::Refused);
    assert!(
        e.message
            .contains("module `vault` rejected the command (not authentic or replayed)"),
        "{e}"
    );
    assert_eq!(c.request(send), Ok(NodeResponse::CommandReply(reply)));

    let e = c.request(attest).unwrap_err();
    assert_eq!(e.kind, NodeErrorKind::Refused);
}
