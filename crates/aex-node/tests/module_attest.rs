//! Attestation and commands relayed between a deployer and a module.

use aex_crypto::symmetric::{attest_mac, Transcript};
use aex_crypto::{Measurement, SigningIdentity};
use aex_proto::frame;
use aex_proto::{
    DeployerKey, FromModule, NodeErrorKind, NodeRequest, NodeResponse, Sealed, ToModule, WireKey,
};
use aex_tee::{
    appraise, AppraisalError, Expected, Provider, SimSymmetricPlatform, SymmetricKind, TeeKind,
    TrustAnchor,
};

use aex_testkit::node::{test_deployer, TestNode};
use aex_testkit::session::Session;
use aex_testkit::{wait_for, PATIENCE};

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
            deployer_pk: Some(deployer_pk),
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

/// On a symmetric node every module is keyed under the provider key of the deployer whose
/// namespace it is loaded in: two stakeholders loading the same binary get different module
/// keys, and each one's evidence names its own provider key.
#[test]
fn symmetric_nodes_key_each_module_under_its_deployers_provider_key() {
    let insight = SigningIdentity::from_seed(&[0x15; 32]);
    let node = TestNode::start_with("field", |c| {
        c.tee = TeeKind::Sancus;
        c.admit.push(DeployerKey::of(&insight));
    });
    let platform = SimSymmetricPlatform::load(SymmetricKind::Sancus, &node.data_dir).unwrap();
    let challenge = [7u8; 32];
    let (module_pk, deployer_pk) = ([42u8; 32], [9u8; 32]);
    let provision_len = frame::encode(&ToModule::Provision {
        kind: "sancus".into(),
        simulated: true,
        key: WireKey([0; 32]),
    })
    .len();
    let attest_len = frame::encode(&ToModule::Attest {
        challenge,
        deployer_pk,
    })
    .len();
    // The same code for both: it keeps what the platform provisioned in its own directory,
    // then answers the attestation with the frame the test leaves there.
    let bin = script(
        &node.scratch,
        &format!(
            "head -c {provision_len} > provisioned.bin\n\
             head -c {attest_len} > /dev/null; cat attested.bin\n\
             exec cat > /dev/null"
        ),
    );
    let code = Measurement::of(&bin);
    let mut keys = vec![];
    for (who, identity) in [("farm", test_deployer()), ("insight", insight)] {
        let provider = Provider(DeployerKey::of(&identity).0);
        let mut c = Session::open(node.addr(), &identity, who);
        c.load("probe", &bin).unwrap();
        let dir = node
            .data_dir
            .join("modules")
            .join(c.app().to_string())
            .join("probe");
        let file = dir.join("provisioned.bin");
        wait_for(&format!("{who}'s module to get its key"), PATIENCE, || {
            std::fs::metadata(&file)
                .is_ok_and(|m| m.len() as usize == provision_len)
                .then_some(())
        });
        let bytes = std::fs::read(&file).unwrap();
        let Ok(ToModule::Provision { kind, key, .. }) =
            frame::decode::<ToModule>(&bytes[frame::LEN_PREFIX..])
        else {
            panic!("{who}'s module got {bytes:?}")
        };
        assert_eq!(kind, "sancus");
        let provider_key = platform.provider_key(&provider);
        assert_eq!(
            &key.0,
            provider_key.module_key(&code).expose_secret(),
            "{who}'s module is keyed under {who}'s provider key"
        );
        keys.push(key.0);
        // The module proves that key; the evidence names the provider key it derives from.
        let transcript = Transcript {
            kind: "sancus",
            simulated: true,
            challenge: &challenge,
            measurement: &code,
            module_pk: &module_pk,
            deployer_pk: &deployer_pk,
        };
        let mac = attest_mac(&provider_key.module_key(&code), &transcript);
        frame_file(
            &dir,
            "attested.bin",
            &FromModule::Attested {
                public_key: module_pk,
                confirm: vec![1],
                mac: Some(mac.to_vec()),
            },
        );
        let Ok(NodeResponse::Evidence { evidence, .. }) = c.request(NodeRequest::Attest {
            module: "probe".into(),
            challenge,
            deployer_pk,
        }) else {
            panic!("no evidence for {who}");
        };
        let expected = |anchor| Expected {
            kind: TeeKind::Sancus,
            anchor,
            measurement: code,
            challenge,
            module_pk: Some(module_pk),
            deployer_pk: Some(deployer_pk),
            allow_simulated: true,
            allow_debug: false,
            allow_insecure: false,
        };
        let ok = appraise(
            &evidence,
            &expected(TrustAnchor::ProviderKey(&provider_key)),
        )
        .expect("the evidence appraises under the deployer's own provider key");
        assert_eq!(ok.provider_key_id(), Some(provider_key.key_id()));
        // Under the other stakeholder's key: a precise refusal.
        let other = if who == "farm" {
            Provider(DeployerKey::of(&SigningIdentity::from_seed(&[0x15; 32])).0)
        } else {
            Provider(DeployerKey::of(&test_deployer()).0)
        };
        let other_key = platform.provider_key(&other);
        assert!(matches!(
            appraise(&evidence, &expected(TrustAnchor::ProviderKey(&other_key))),
            Err(AppraisalError::UntrustedProviderKey { .. })
        ));
    }
    assert_ne!(
        keys[0], keys[1],
        "identical code, two stakeholders, two keys"
    );
}
