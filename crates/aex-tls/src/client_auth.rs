//! Client identity: any client certificate (self-signed is enough) whose key signs the
//! handshake. The client is then named by its key ([`ClientId`](crate::ClientId)), not by a
//! certificate authority: who holds which key is the provider's record, not TLS's.

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};

/// Accepts any well-formed client certificate; the handshake signature proves its key.
#[derive(Debug)]
pub(crate) struct AnyClientKey {
    algorithms: WebPkiSupportedAlgorithms,
}

impl AnyClientKey {
    pub(crate) fn new() -> Self {
        AnyClientKey {
            algorithms: crate::provider().signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for AnyClientKey {
    /// Clients without a certificate (`curl`, browsers) are served too, anonymously.
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        // Only that it parses: its key is what names the client, and the signature over the
        // handshake (below) proves the client holds it.
        webpki::EndEntityCert::try_from(end_entity)
            .map_err(|_| Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        // The server offers TLS 1.3 only.
        Err(Error::General("TLS 1.2 is not offered".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The fingerprint of a peer certificate's public key, if it parses.
pub(crate) fn fingerprint(cert: &CertificateDer<'_>) -> Option<crate::ClientId> {
    let ee = webpki::EndEntityCert::try_from(cert).ok()?;
    Some(crate::ClientId::of_spki(
        ee.subject_public_key_info().as_ref(),
    ))
}
