//! The certificate check: a rustls [`ServerCertVerifier`] that appraises the evidence in the
//! module's certificate with `aex_tee::appraise` (the deployer's code) against a [`Policy`],
//! and checks that the evidence binds the certificate's key.

use std::sync::{Arc, Mutex, PoisonError};

use aex_crypto::Measurement;
use aex_proto::attested_tls::{
    binding, cert_challenge, CertEvidence, EVIDENCE_OID, SYMMETRIC_PEER,
};
use aex_tee::{appraise, AppraisalError, Appraised, Expected};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use x509_cert::der::{Decode, Encode};

use crate::endorse::Endorsement;
use crate::error::ClientError;
use crate::policy::{Anchor, Policy, Verified};

/// The evidence a certificate carries, and the key it binds.
pub(crate) struct CertParts {
    pub(crate) spki: Vec<u8>,
    pub(crate) evidence: CertEvidence,
}

/// Reads the SubjectPublicKeyInfo and the CMW evidence extension of a certificate.
pub(crate) fn parts(der: &[u8]) -> Result<CertParts, ClientError> {
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|e| ClientError::BadCertificate(e.to_string()))?;
    let tbs = cert.tbs_certificate();
    let spki = tbs
        .subject_public_key_info()
        .to_der()
        .map_err(|e| ClientError::BadCertificate(e.to_string()))?;
    let oid = evidence_oid();
    let ext = tbs
        .extensions()
        .into_iter()
        .flatten()
        .find(|e| e.extn_id == oid)
        .ok_or(ClientError::NoEvidence)?;
    let evidence = CertEvidence::decode(ext.extn_value.as_bytes())
        .map_err(|e| ClientError::BadEvidence(e.to_string()))?;
    Ok(CertParts { spki, evidence })
}

fn evidence_oid() -> x509_cert::der::asn1::ObjectIdentifier {
    let dotted: Vec<String> = EVIDENCE_OID.iter().map(u64::to_string).collect();
    // Invariant: EVIDENCE_OID is a valid constant OID.
    x509_cert::der::asn1::ObjectIdentifier::new(&dotted.join(".")).unwrap_or(
        x509_cert::der::asn1::ObjectIdentifier::new_unwrap("2.23.133.5.4.9"),
    )
}

/// Appraises `evidence` answering `challenge` over `bound` against `policy`, trying each
/// pinned measurement.
pub(crate) fn appraise_for(
    evidence: &[u8],
    bound: [u8; 32],
    challenge: [u8; 32],
    policy: &Policy,
) -> Result<Appraised, ClientError> {
    if policy.measurements.is_empty() {
        return Err(ClientError::NothingPinned);
    }
    let Some(anchor) = policy.anchor.as_trust_anchor() else {
        return Err(ClientError::Fresh(
            "a symmetric kind's evidence is checked by the deployer only; the client relies on its endorsement".into(),
        ));
    };
    let mut got = None;
    for m in &policy.measurements {
        let expected = Expected {
            kind: policy.kind,
            anchor,
            measurement: *m,
            challenge,
            module_pk: Some(bound),
            // Symmetric kinds' MAC covers the all-zero peer key (PROTOCOL.md §11).
            deployer_pk: Some(SYMMETRIC_PEER),
            allow_simulated: policy.allow_simulated,
            allow_debug: policy.allow_debug,
            allow_insecure: policy.allow_insecure,
        };
        match appraise(evidence, &expected) {
            Ok(a) => return Ok(a),
            Err(AppraisalError::MeasurementMismatch { got: g, .. }) => got = Some(g),
            Err(e) => return Err(ClientError::from_appraisal(e)),
        }
    }
    Err(ClientError::MeasurementNotPinned {
        got: got.unwrap_or(Measurement([0; 32])),
        pinned: policy.measurements.clone(),
    })
}

/// Appraises a module certificate in PEM (what `aex tls export` writes) against `policy`.
pub fn verify_certificate_pem(pem: &str, policy: &Policy) -> Result<Verified, ClientError> {
    use x509_cert::der::DecodePem;
    let der = x509_cert::Certificate::from_pem(pem)
        .and_then(|c| c.to_der())
        .map_err(|e| ClientError::BadCertificate(format!("not a PEM certificate: {e}")))?;
    verify_certificate(&der, policy)
}

/// [`verify_certificate_pem`]'s DER form: appraises a certificate (one `aex tls export`
/// wrote, say) against `policy`, without a handshake. It proves what code the key belongs to
/// and which extra keys that code attested, not that the instance is alive.
pub fn verify_certificate(der: &[u8], policy: &Policy) -> Result<Verified, ClientError> {
    let CertParts { spki, evidence } = parts(der)?;
    let bound = binding(&spki, &evidence.extra_refs());
    let claims = match &policy.anchor {
        Anchor::Endorsed {
            signer,
            endorsement,
        } => endorsed(endorsement, signer, bound, policy)?,
        _ => {
            let a = appraise_for(&evidence.evidence, bound, cert_challenge(), policy)?;
            Claims {
                kind: a.kind(),
                measurement: a.measurement(),
                simulated: a.simulated(),
                debug: a.debug(),
                insecure: a.insecure(),
                tcb_status: a.tcb_status().map(str::to_owned),
            }
        }
    };
    Ok(Verified {
        kind: claims.kind,
        measurement: claims.measurement,
        simulated: claims.simulated,
        debug: claims.debug,
        insecure: claims.insecure,
        tcb_status: claims.tcb_status,
        key_fingerprint: aex_crypto::sha256(&[&spki]),
        extra: evidence
            .extra
            .into_iter()
            .map(|(n, k)| (n, k.into_vec()))
            .collect(),
        certificate: der.to_vec(),
        binding: bound,
    })
}

/// What the appraisal or the endorsement established.
struct Claims {
    kind: aex_tee::TeeKind,
    measurement: Measurement,
    simulated: bool,
    debug: bool,
    insecure: bool,
    tcb_status: Option<String>,
}

/// The checks of an endorsement in place of the appraisal: the pinned signer's signature, the
/// certificate's key, the policy's kind, measurements and simulation policy.
fn endorsed(
    e: &Endorsement,
    signer: &[u8; 32],
    bound: [u8; 32],
    policy: &Policy,
) -> Result<Claims, ClientError> {
    e.check(signer)?;
    if e.binding != bound {
        return Err(ClientError::EndorsementForAnotherKey);
    }
    if e.kind != policy.kind {
        return Err(ClientError::WrongKind {
            expected: policy.kind,
            got: e.kind.name().into(),
        });
    }
    if e.simulated && !policy.allow_simulated {
        return Err(ClientError::SimulatedRefused { kind: e.kind });
    }
    if !policy.measurements.contains(&e.measurement) {
        return Err(ClientError::MeasurementNotPinned {
            got: e.measurement,
            pinned: policy.measurements.clone(),
        });
    }
    Ok(Claims {
        kind: e.kind,
        measurement: e.measurement,
        simulated: e.simulated,
        debug: false,
        insecure: false,
        tcb_status: None,
    })
}

/// What one handshake's verifier learned: the module it verified, or why it refused.
pub(crate) type Outcome = Arc<Mutex<Option<Result<Verified, ClientError>>>>;

/// The verifier of one connection.
#[derive(Debug)]
pub(crate) struct AttestedVerifier {
    policy: Policy,
    algorithms: WebPkiSupportedAlgorithms,
    outcome: Outcome,
}

impl AttestedVerifier {
    pub(crate) fn new(policy: Policy, outcome: Outcome) -> Self {
        AttestedVerifier {
            policy,
            algorithms: crate::provider().signature_verification_algorithms,
            outcome,
        }
    }

    fn record(&self, result: Result<Verified, ClientError>) {
        *self.outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
    }
}

impl ServerCertVerifier for AttestedVerifier {
    /// The evidence, not a certificate authority or a name, says who the server is: clients
    /// pin code. Intermediates are ignored (the certificate is self-signed).
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match verify_certificate(end_entity, &self.policy) {
            Ok(v) => {
                self.record(Ok(v));
                Ok(ServerCertVerified::assertion())
            }
            Err(refusal) => {
                let message = refusal.to_string();
                self.record(Err(refusal));
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::Other(rustls::OtherError(Arc::new(
                        std::io::Error::other(message),
                    ))),
                ))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not offered".into()))
    }

    /// The standard check that the server holds the certified key: a node replaying an old
    /// instance's certificate fails here (the old key stayed in the old instance).
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
            .inspect_err(|e| self.record(Err(ClientError::KeyNotHeld(e.to_string()))))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
