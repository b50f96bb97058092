//! Attested TLS between the module side (`aex-tls`, served with the examples' HTTP helper) and
//! the verifying client, on loopback, with evidence from a real simulated `sgx` backend
//! (aex-tee's, as a node runs it): what a client accepts, and each refusal with its precise
//! error. The same paths through real node and module processes are in aex-cli's e2e tests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use aex_client::{connect, Anchor, ClientError, ClientKey, Endorsement, Policy};
use aex_crypto::Measurement;
use aex_example_http::{Request, Response};
use aex_tee::{Backend, Provider, SimSgxPlatform, TeeKind};
use aex_tls::{Attest, Attested, Identity, Limits, Options};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const TIMEOUT: Duration = Duration::from_secs(10);

#[path = "support/sim_tee.rs"]
mod sim_tee;
use sim_tee::Tee;

/// A simulated sgx platform and a module served on it.
struct Module {
    addr: SocketAddr,
    certificate: Vec<u8>,
    serving: Arc<AtomicBool>,
    policy: Policy,
    _dir: tempfile::TempDir,
}

fn measurement(n: u8) -> Measurement {
    Measurement([n; 32])
}

/// Serves module `n` over attested HTTPS; `GET /` answers `hello <client id>`.
fn module(n: u8, limits: Limits, options: &Options) -> Module {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(SimSgxPlatform::load_or_create(dir.path()).unwrap());
    let serving = Arc::new(AtomicBool::new(true));
    let tee = Tee {
        backend: backend.clone(),
        measurement: measurement(n),
        serving: serving.clone(),
    };
    let attested = Attested::new(Identity::generate().unwrap(), tee, options).unwrap();
    let certificate = attested.certificate().to_vec();
    let addr = aex_example_http::start_attested(
        "127.0.0.1:0".parse().unwrap(),
        attested,
        limits,
        |r: &Request<'_>| {
            let who = r
                .client
                .map(|c| c.to_string())
                .unwrap_or("anonymous".into());
            Response::text(200, &format!("hello {who}"))
        },
    )
    .unwrap();
    let policy = Policy {
        kind: TeeKind::Sgx,
        anchor: Anchor::SimSgxRoot(backend.root_public_key().clone()),
        measurements: vec![measurement(n)],
        allow_simulated: true,
        allow_debug: false,
        allow_insecure: false,
    };
    Module {
        addr,
        certificate,
        serving,
        policy,
        _dir: dir,
    }
}

#[test]
fn a_pinned_module_passes_answers_fresh_evidence_and_knows_its_client() {
    let options = Options::default().extra("receipt-signing", &[9; 32]);
    let m = module(1, Limits::default(), &options);
    let key = ClientKey::generate().unwrap();
    let mut session = connect(m.addr, &m.policy, Some(&key), TIMEOUT).unwrap();
    let v = session.verified().clone();
    assert_eq!(v.kind, TeeKind::Sgx);
    assert_eq!(v.measurement, measurement(1));
    assert!(v.simulated && !v.debug && !v.insecure);
    assert_eq!(v.certificate, m.certificate);
    assert_eq!(v.extra("receipt-signing"), Some(&[9u8; 32][..]));
    let fresh = session.fresh_evidence().unwrap();
    assert_ne!(fresh.exporter, [0; 32]);
    let (code, body) = session.request("GET", "/").unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        body.trim(),
        format!("hello {}", hex::encode(key.fingerprint()))
    );
    // Anonymous clients (curl, browsers) are served too.
    let (code, body) = connect(m.addr, &m.policy, None, TIMEOUT)
        .unwrap()
        .request("GET", "/")
        .unwrap();
    assert_eq!((code, body.trim()), (200, "hello anonymous"));
}

#[test]
fn evidence_naming_another_measurement_is_refused() {
    let m = module(1, Limits::default(), &Options::default());
    let mut policy = m.policy.clone();
    policy.measurements = vec![measurement(2), measurement(3)];
    let e = connect(m.addr, &policy, None, TIMEOUT).err().unwrap();
    match &e {
        ClientError::MeasurementNotPinned { got, pinned } => {
            assert_eq!(*got, measurement(1));
            assert_eq!(pinned.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("does not pin"), "{e}");
    // An update the client accepts is followed: pin the new measurement beside the old.
    policy.measurements.push(measurement(1));
    connect(m.addr, &policy, None, TIMEOUT).unwrap();
}

#[test]
fn simulated_evidence_under_a_hardware_policy_is_refused() {
    let m = module(1, Limits::default(), &Options::default());
    let mut policy = m.policy.clone();
    policy.allow_simulated = false;
    let e = connect(m.addr, &policy, None, TIMEOUT).err().unwrap();
    assert!(
        matches!(e, ClientError::SimulatedRefused { kind: TeeKind::Sgx }),
        "{e:?}"
    );
}

#[test]
fn another_platforms_root_is_refused() {
    let m = module(1, Limits::default(), &Options::default());
    let other = module(1, Limits::default(), &Options::default());
    let e = connect(m.addr, &other.policy, None, TIMEOUT).err().unwrap();
    assert!(matches!(e, ClientError::Appraisal(_)), "{e:?}");
}

/// Serves one TLS 1.3 handshake with `cert` and `key` whatever they are (a node replaying a
/// certificate without its key; a man in the middle with an ordinary certificate).
fn impostor(cert: Vec<u8>, key: Vec<u8>) -> SocketAddr {
    #[derive(Debug)]
    struct Fixed(Arc<rustls::sign::CertifiedKey>);
    impl rustls::server::ResolvesServerCert for Fixed {
        fn resolve(
            &self,
            _: rustls::server::ClientHello<'_>,
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            Some(self.0.clone())
        }
    }
    #[allow(deprecated, reason = "the ring provider, as the modules use")]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let signing = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)))
        .unwrap();
    // `CertifiedKey::new` does not check that the key matches the certificate.
    let certified = rustls::sign::CertifiedKey::new(vec![CertificateDer::from(cert)], signing);
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(Arc::new(certified))));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for sock in listener.incoming().flatten() {
            let mut conn = rustls::ServerConnection::new(Arc::new(config.clone())).unwrap();
            let mut sock = sock;
            while conn.is_handshaking() {
                if conn.complete_io(&mut sock).is_err() {
                    break;
                }
            }
        }
    });
    addr
}

#[test]
fn a_native_module_is_refused_unless_insecure_is_allowed() {
    let tee = Tee::serving(Arc::new(aex_tee::NativePlatform), measurement(4));
    let attested = Attested::new(Identity::generate().unwrap(), tee, &Options::default()).unwrap();
    let addr = aex_example_http::start_attested(
        "127.0.0.1:0".parse().unwrap(),
        attested,
        Limits::default(),
        |_: &Request<'_>| Response::text(200, "native"),
    )
    .unwrap();
    let mut policy = Policy {
        kind: TeeKind::Native,
        anchor: Anchor::None,
        measurements: vec![measurement(4)],
        allow_simulated: true,
        allow_debug: false,
        allow_insecure: false,
    };
    let e = connect(addr, &policy, None, TIMEOUT).err().unwrap();
    assert!(matches!(e, ClientError::InsecureRefused), "{e:?}");
    policy.allow_insecure = true;
    let mut session = connect(addr, &policy, None, TIMEOUT).unwrap();
    assert!(session.verified().insecure);
    session.fresh_evidence().unwrap();
    // Evidence for another kind than the policy's is refused by name.
    policy.kind = TeeKind::Sgx;
    let e = connect(addr, &policy, None, TIMEOUT).err().unwrap();
    assert!(matches!(e, ClientError::WrongKind { .. }), "{e:?}");
}

/// A trustzone TEE layer, in-process: the module MACs its binding with its provisioned key
/// (as the runtime does) and the platform wraps the MAC.
struct Symmetric {
    platform: aex_tee::SimSymmetricPlatform,
    provider: Provider,
    measurement: Measurement,
}

impl Attest for Symmetric {
    fn evidence(&self, key: [u8; 32], challenge: [u8; 32]) -> Result<Vec<u8>, String> {
        let module_key = self
            .platform
            .provision(&self.provider, &self.measurement)
            .unwrap();
        let transcript = aex_crypto::symmetric::Transcript {
            kind: "trustzone",
            simulated: true,
            challenge: &challenge,
            measurement: &self.measurement,
            module_pk: &key,
            deployer_pk: &aex_proto::attested_tls::SYMMETRIC_PEER,
        };
        let mac = aex_crypto::symmetric::attest_mac(&module_key, &transcript);
        self.platform
            .evidence(
                &self.provider,
                &self.measurement,
                &challenge,
                Some(&key),
                Some(&mac),
            )
            .map_err(|e| e.to_string())
    }

    fn serving(&self) -> bool {
        true
    }
}

#[test]
fn a_trustzone_module_passes_for_its_own_deployer_only() {
    let dir = tempfile::tempdir().unwrap();
    let kind = aex_tee::SymmetricKind::TrustZone;
    let platform = aex_tee::SimSymmetricPlatform::load_or_create(kind, dir.path()).unwrap();
    let (mine, theirs) = (Provider([1; 32]), Provider([2; 32]));
    let my_key = Arc::new(platform.provider_key(&mine));
    let their_key = Arc::new(platform.provider_key(&theirs));
    let tee = Symmetric {
        platform: aex_tee::SimSymmetricPlatform::load_or_create(kind, dir.path()).unwrap(),
        provider: mine,
        measurement: measurement(5),
    };
    let attested = Attested::new(Identity::generate().unwrap(), tee, &Options::default()).unwrap();
    let addr = aex_example_http::start_attested(
        "127.0.0.1:0".parse().unwrap(),
        attested,
        Limits::default(),
        |_: &Request<'_>| Response::text(200, "trustzone"),
    )
    .unwrap();
    let mut policy = Policy {
        kind: TeeKind::TrustZone,
        anchor: Anchor::ProviderKey(my_key),
        measurements: vec![measurement(5)],
        allow_simulated: true,
        allow_debug: false,
        allow_insecure: false,
    };
    let mut session = connect(addr, &policy, None, TIMEOUT).unwrap();
    assert_eq!(session.verified().kind, TeeKind::TrustZone);
    session.fresh_evidence().unwrap();
    // Another stakeholder's provider key on the same node checks nothing of this module.
    let deployers = policy.clone();
    policy.anchor = Anchor::ProviderKey(their_key);
    let e = connect(addr, &policy, None, TIMEOUT).err().unwrap();
    assert!(matches!(e, ClientError::Appraisal(_)), "{e:?}");

    // An outside client trusts the deployer's endorsement of this instance's key instead.
    let endorser = aex_crypto::SigningIdentity::generate();
    let endorsement = session.verified().endorse(&endorser);
    let text = endorsement.to_text();
    assert_eq!(Endorsement::parse(&text).unwrap(), endorsement);
    let outside = |signer: [u8; 32], e: &Endorsement| Policy {
        anchor: Anchor::Endorsed {
            signer,
            endorsement: Box::new(e.clone()),
        },
        ..deployers.clone()
    };
    let mut client = connect(
        addr,
        &outside(endorser.public(), &endorsement),
        None,
        TIMEOUT,
    )
    .unwrap();
    assert_eq!(client.verified().measurement, measurement(5));
    // Fresh symmetric evidence is the deployer's to check, not the client's.
    assert!(matches!(
        client.fresh_evidence(),
        Err(ClientError::Fresh(_))
    ));
    let other = aex_crypto::SigningIdentity::generate();
    let e = connect(addr, &outside(other.public(), &endorsement), None, TIMEOUT)
        .err()
        .unwrap();
    assert!(matches!(e, ClientError::EndorsementSigner { .. }), "{e:?}");
    let mut forged = endorsement.clone();
    forged.measurement = measurement(6);
    let mut pins_forged = outside(endorser.public(), &forged);
    pins_forged.measurements.push(measurement(6));
    let e = connect(addr, &pins_forged, None, TIMEOUT).err().unwrap();
    assert!(matches!(e, ClientError::BadEndorsement(_)), "{e:?}");
    // The endorsement names this instance's key: another instance (a new key) needs its own.
    let next = Symmetric {
        platform: aex_tee::SimSymmetricPlatform::load_or_create(kind, dir.path()).unwrap(),
        provider: mine,
        measurement: measurement(5),
    };
    let attested = Attested::new(Identity::generate().unwrap(), next, &Options::default()).unwrap();
    let next_addr = aex_example_http::start_attested(
        "127.0.0.1:0".parse().unwrap(),
        attested,
        Limits::default(),
        |_: &Request<'_>| Response::text(200, "trustzone"),
    )
    .unwrap();
    let e = connect(
        next_addr,
        &outside(endorser.public(), &endorsement),
        None,
        TIMEOUT,
    )
    .err()
    .unwrap();
    assert!(matches!(e, ClientError::EndorsementForAnotherKey), "{e:?}");
}

#[test]
fn a_certificate_replayed_without_its_key_is_refused() {
    let m = module(1, Limits::default(), &Options::default());
    // The node has the old instance's certificate (it is public) but not its key, which
    // stayed inside that instance.
    let node_key = Identity::generate().unwrap();
    let addr = impostor(m.certificate.clone(), node_key.to_pkcs8());
    let e = connect(addr, &m.policy, None, TIMEOUT).err().unwrap();
    assert!(matches!(e, ClientError::KeyNotHeld(_)), "{e:?}");
    assert!(e.to_string().contains("replayed"), "{e}");
}

#[test]
fn a_man_in_the_middle_with_an_ordinary_valid_certificate_is_refused() {
    // A certificate authority any browser might trust, and a valid certificate it issued for
    // the module's address: the client does not look at authorities at all.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca_cert, &ca_key)
        .unwrap();
    let addr = impostor(leaf.der().to_vec(), leaf_key.serialize_der());
    let m = module(1, Limits::default(), &Options::default());
    let e = connect(addr, &m.policy, None, TIMEOUT).err().unwrap();
    assert!(matches!(e, ClientError::NoEvidence), "{e:?}");
}

#[test]
fn a_disabled_module_serves_no_handshake() {
    let m = module(1, Limits::default(), &Options::default());
    connect(m.addr, &m.policy, None, TIMEOUT).unwrap();
    m.serving.store(false, Ordering::SeqCst);
    // The server trusts a "still serving" answer for 50 ms at most.
    let deadline = Instant::now() + TIMEOUT;
    let e = loop {
        match connect(m.addr, &m.policy, None, TIMEOUT) {
            Err(e) => break e,
            Ok(_) => assert!(Instant::now() < deadline, "still served"),
        }
        thread::sleep(Duration::from_millis(10));
    };
    assert!(
        matches!(e, ClientError::Handshake { .. } | ClientError::Io { .. }),
        "{e:?}"
    );
    // The listener closes at the next connection: nothing is served any more.
    let deadline = Instant::now() + TIMEOUT;
    while TcpStream::connect(m.addr).is_ok() {
        assert!(Instant::now() < deadline, "the listener stays open");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn half_open_connections_do_not_lock_a_client_out() {
    let limits = Limits {
        max_handshakes: 8,
        ..Limits::default()
    };
    let m = module(1, limits, &Options::default());
    // Many connections that never send a byte, beyond the handshake limit...
    let flood: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(m.addr).unwrap())
        .collect();
    // ...do not keep a legitimate client out, and are closed, oldest first.
    let (code, _) = connect(m.addr, &m.policy, None, TIMEOUT)
        .unwrap()
        .request("GET", "/")
        .unwrap();
    assert_eq!(code, 200);
    let mut first = &flood[0];
    first.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut buf = [0u8; 1];
    assert!(matches!(first.read(&mut buf), Ok(0) | Err(_)));
}

#[test]
fn a_handshake_longer_than_its_byte_limit_is_cut() {
    let limits = Limits {
        handshake_bytes: 4096,
        handshake_time: Duration::from_secs(600),
        ..Limits::default()
    };
    let m = module(1, limits, &Options::default());
    let mut s = TcpStream::connect(m.addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    // The start of a ClientHello announced as 61,440 bytes (rustls buffers up to 64 KiB of
    // one handshake message), 8 KiB of it sent, then silence: without the byte limit the
    // server would wait for the rest until its handshake time (10 minutes here).
    let mut record = vec![0x16, 0x03, 0x01, 0x20, 0x00, 0x01, 0x00, 0xf0, 0x00];
    record.resize(5 + 0x2000, 0x01);
    s.write_all(&record).unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(started.elapsed() < TIMEOUT, "the connection was not cut");
}

/// A module whose certificate attests something that changes (the governor's constitution)
/// re-attests without closing its port: the next session sees the new extra key, with fresh
/// evidence bound to it, and a client that pins the old value can tell.
#[test]
fn a_replaced_certificate_is_served_from_the_next_session_on() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(SimSgxPlatform::load_or_create(dir.path()).unwrap());
    let tee = || Tee {
        backend: backend.clone(),
        measurement: measurement(4),
        serving: Arc::new(AtomicBool::new(true)),
    };
    let identity = Identity::generate().unwrap();
    let pkcs8 = identity.to_pkcs8();
    let first = Options::default().extra("constitution", &[1; 32]);
    let attested = Attested::new(identity, tee(), &first).unwrap();
    let server = aex_example_http::serve_attested(
        "127.0.0.1:0".parse().unwrap(),
        attested,
        Limits::default(),
        |_: &Request<'_>| Response::text(200, "ok"),
    )
    .unwrap();
    let policy = Policy {
        kind: TeeKind::Sgx,
        anchor: Anchor::SimSgxRoot(backend.root_public_key().clone()),
        measurements: vec![measurement(4)],
        allow_simulated: true,
        allow_debug: false,
        allow_insecure: false,
    };
    let before = connect(server.local_addr(), &policy, None, TIMEOUT).unwrap();
    assert_eq!(
        before.verified().extra("constitution"),
        Some(&[1u8; 32][..])
    );

    // The same kept key, attesting another value.
    let again = Identity::from_pkcs8(&pkcs8).unwrap();
    let second = Options::default().extra("constitution", &[2; 32]);
    server.replace(Attested::new(again, tee(), &second).unwrap());
    let mut after = connect(server.local_addr(), &policy, None, TIMEOUT).unwrap();
    assert_eq!(after.verified().extra("constitution"), Some(&[2u8; 32][..]));
    assert_eq!(after.verified().certificate, server.certificate());
    // Fresh evidence answers with the new binding (the client checks it against the
    // certificate it verified).
    after.fresh_evidence().unwrap();
    assert_eq!(after.request("GET", "/").unwrap().0, 200);
    // The session opened before keeps the certificate it saw.
    assert_eq!(
        before.verified().extra("constitution"),
        Some(&[1u8; 32][..])
    );
}
