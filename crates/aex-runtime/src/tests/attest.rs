//! Symmetric attestation (`trustzone`, `sancus`) as an eavesdropper sees it: whoever knows the
//! module key (the node agent that provisioned it in simulation, a co-tenant under the old
//! shared vendor key) and records the whole attestation still cannot derive the command key.

use aex_crypto::symmetric::{self, Transcript};
use aex_crypto::{Algorithm, ModuleKeyAgreement, SecretKey};
use aex_proto::{
    Command, CommandChannel, CommandReply, ConnId, FromModule, Role, ToModule, WireKey,
};
use hkdf::Hkdf;
use sha2::Sha256;

use super::harness::{Harness, MEASURED};

const MODULE_KEY: [u8; 32] = [0x4d; 32];

/// What a recording of one symmetric attestation and the first command holds.
struct Recording {
    challenge: [u8; 32],
    deployer_pk: [u8; 32],
    module_pk: [u8; 32],
    confirm: Vec<u8>,
    mac: Vec<u8>,
    set_key: aex_proto::Sealed,
}

/// Attests a module with a genuine deployer, delivers one connection key, and returns what
/// crossed the node.
fn record() -> Recording {
    let mut h = Harness::new();
    h.handle(ToModule::Provision {
        kind: "sancus".into(),
        simulated: true,
        key: WireKey(MODULE_KEY),
    });
    let challenge = aex_crypto::random_bytes::<32>();
    let agreement = ModuleKeyAgreement::new();
    let deployer_pk = agreement.public_key();
    let out = h.handle(ToModule::Attest {
        challenge,
        deployer_pk,
    });
    let [FromModule::Attested {
        public_key: module_pk,
        confirm,
        mac: Some(mac),
    }] = &out[..]
    else {
        panic!("expected a symmetric Attested, got {out:?}")
    };
    let transcript = Transcript {
        kind: "sancus",
        simulated: true,
        challenge: &challenge,
        measurement: &MEASURED,
        module_pk,
        deployer_pk: &deployer_pk,
    };
    let session = symmetric::session_key(agreement, module_pk, &transcript).unwrap();
    let mut channel = CommandChannel::new(&session);
    assert!(channel.check_confirmation(confirm), "the deployer's key");
    let set_key = channel
        .seal_command(&Command::SetKey {
            conn: ConnId(7),
            role: Role::Input("inp".into()),
            algorithm: Algorithm::AesGcm.into(),
            key: WireKey([0x77; 32]),
        })
        .unwrap();
    let out = h.handle(ToModule::Command(set_key.clone()));
    let [FromModule::CommandReply(reply)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        channel.open_reply(reply, 1).unwrap(),
        CommandReply::Done(vec![])
    );
    Recording {
        challenge,
        deployer_pk,
        module_pk: *module_pk,
        confirm: confirm.clone(),
        mac: mac.clone(),
        set_key,
    }
}

fn hkdf(salt: &[u8], ikm: &[u8], info: &[&[u8]]) -> SecretKey {
    let mut okm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand_multi_info(info, &mut okm)
        .unwrap();
    SecretKey::from_bytes(okm)
}

#[test]
fn the_module_key_and_the_transcript_do_not_give_the_session_key() {
    let r = record();
    let mk = SecretKey::from_bytes(MODULE_KEY);
    // The recording is genuine: the MAC verifies under the module key the attacker holds.
    let transcript = Transcript {
        kind: "sancus",
        simulated: true,
        challenge: &r.challenge,
        measurement: &MEASURED,
        module_pk: &r.module_pk,
        deployer_pk: &r.deployer_pk,
    };
    assert_eq!(symmetric::attest_mac(&mk, &transcript)[..], r.mac[..]);
    // Every key an attacker can compute from the module key and public values: the old
    // scheme's session key (module key, challenge, the module's public value), the new
    // label over the module key instead of the shared secret, the module key itself, and an
    // "exchange" with the public keys in place of the secrets.
    let m = &MEASURED.0;
    let candidates = [
        hkdf(
            &r.challenge,
            &MODULE_KEY,
            &[b"aex/v1 symmetric session", &r.module_pk],
        ),
        hkdf(
            &r.challenge,
            &MODULE_KEY,
            &[symmetric::SESSION_INFO, &r.module_pk, &r.deployer_pk, m],
        ),
        hkdf(
            &r.challenge,
            &r.module_pk,
            &[symmetric::SESSION_INFO, &r.module_pk, &r.deployer_pk, m],
        ),
        hkdf(
            &r.challenge,
            &r.deployer_pk,
            &[symmetric::SESSION_INFO, &r.module_pk, &r.deployer_pk, m],
        ),
        SecretKey::from_bytes(MODULE_KEY),
    ];
    for (i, key) in candidates.iter().enumerate() {
        let mut channel = CommandChannel::new(key);
        assert!(
            !channel.check_confirmation(&r.confirm),
            "candidate {i} matches the key confirmation"
        );
        assert!(
            channel.open_command(&r.set_key).is_err(),
            "candidate {i} opens the recorded SetKey"
        );
    }
}

#[test]
fn every_attestation_draws_a_new_exchange() {
    let (a, b) = (record(), record());
    assert_ne!(a.module_pk, b.module_pk);
    // The same module key, a second instance: the first one's command does not open there.
    let mut h = Harness::new();
    let d =
        aex_testkit::deployer::Deployer::attest_symmetric(&mut h, "sancus", MODULE_KEY, &MEASURED);
    assert!(d.confirmed);
    assert_eq!(
        h.handle(ToModule::Command(a.set_key)),
        vec![FromModule::CommandRejected { counter: 1 }]
    );
}

#[test]
fn a_low_order_deployer_key_is_refused_on_symmetric_kinds() {
    let mut h = Harness::new();
    h.handle(ToModule::Provision {
        kind: "sancus".into(),
        simulated: true,
        key: WireKey(MODULE_KEY),
    });
    let zero = ToModule::Attest {
        challenge: [1; 32],
        deployer_pk: [0; 32],
    };
    assert_eq!(h.handle(zero), vec![FromModule::AttestRefused]);
    // And that was the process's one attestation.
    let genuine = ToModule::Attest {
        challenge: [1; 32],
        deployer_pk: ModuleKeyAgreement::new().public_key(),
    };
    assert_eq!(h.handle(genuine), vec![FromModule::AttestRefused]);
}
