//! The attested certificate: evidence from the TEE layer over the module's key, in the CMW
//! extension of a self-signed certificate, and the rustls configuration that serves it.

use std::sync::Arc;

use aex_proto::attested_tls::{
    binding, cert_challenge, ByteBuf, CertEvidence, EVIDENCE_OID, MAX_EXTRA, MAX_EXTRA_KEY,
    MAX_EXTRA_NAME,
};
use aex_runtime::{Context, Handle};
use rcgen::{CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;

use crate::client_auth::AnyClientKey;
use crate::error::TlsError;
use crate::identity::Identity;

/// Where evidence comes from: the module's runtime, reached from a server thread. Implemented
/// for [`aex_runtime::Handle`] (`ctx.handle::<M>()`); tests may play it.
pub trait Attest: Send + Sync + 'static {
    /// Evidence envelope bytes binding `key` and answering `challenge`
    /// (`Context::evidence`).
    fn evidence(&self, key: [u8; 32], challenge: [u8; 32]) -> Result<Vec<u8>, String>;

    /// Whether the instance still serves (not disabled, not retired, still running).
    fn serving(&self) -> bool;
}

impl<M: 'static> Attest for Handle<M> {
    fn evidence(&self, key: [u8; 32], challenge: [u8; 32]) -> Result<Vec<u8>, String> {
        match self.call(move |_, ctx| ctx.evidence(key, challenge)) {
            Ok(Ok(evidence)) => Ok(evidence),
            Ok(Err(e)) | Err(e) => Err(e.to_string()),
        }
    }

    fn serving(&self) -> bool {
        self.call(|_, ctx| ctx.serving()).unwrap_or(false)
    }
}

/// What the certificate says besides the evidence.
#[derive(Debug, Clone)]
pub struct Options {
    /// Subject alternative names: DNS names or IP addresses clients reach the module by
    /// (`curl` checks them against the URL). Default: `localhost`, `127.0.0.1`, `::1`.
    pub names: Vec<String>,
    /// Extra public keys the evidence binds beside the TLS key, `(name, key bytes)`: at most
    /// 8, names of 1 to 64 bytes and distinct, keys of at most 1024 bytes. A client reads them
    /// back from the verified certificate (`aex_client::Verified::extra`).
    pub extra: Vec<(String, Vec<u8>)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            extra: Vec::new(),
        }
    }
}

impl Options {
    /// Adds an extra public key for the evidence to bind (see [`Options::extra`]).
    pub fn extra(mut self, name: &str, key: &[u8]) -> Self {
        self.extra.push((name.into(), key.to_vec()));
        self
    }
}

/// A module's attested TLS identity: its key, the certificate carrying evidence over it, and
/// what answers fresh evidence.
pub struct Attested {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) binding: [u8; 32],
    pub(crate) attest: Arc<dyn Attest>,
    cert: CertificateDer<'static>,
}

impl Attested {
    /// Asks the TEE layer (through `attest`) for evidence over `identity`'s public key and
    /// `options.extra`, and builds the certificate and the TLS 1.3 server configuration.
    /// Consumes the identity: the private key lives on only inside the server. Call it from
    /// a thread the module started; module code (an entry point) calls
    /// [`Attested::in_module`].
    pub fn new(
        identity: Identity,
        attest: impl Attest,
        options: &Options,
    ) -> Result<Attested, TlsError> {
        let attest: Arc<dyn Attest> = Arc::new(attest);
        let asked = attest.clone();
        Self::build(
            identity,
            options,
            move |binding, challenge| asked.evidence(binding, challenge),
            attest,
        )
    }

    /// [`Attested::new`] from module code (an entry point of module `M`, say the one that
    /// starts the server): the certificate's evidence is asked for through `ctx` now, and
    /// later fresh evidence through a handle to the module.
    pub fn in_module<M: 'static>(
        ctx: &mut Context<'_>,
        identity: Identity,
        options: &Options,
    ) -> Result<Attested, TlsError> {
        let handle = ctx.handle::<M>();
        Self::build(
            identity,
            options,
            |binding, challenge| ctx.evidence(binding, challenge).map_err(|e| e.to_string()),
            Arc::new(handle),
        )
    }

    fn build(
        identity: Identity,
        options: &Options,
        evidence: impl FnOnce([u8; 32], [u8; 32]) -> Result<Vec<u8>, String>,
        attest: Arc<dyn Attest>,
    ) -> Result<Attested, TlsError> {
        check_extra(&options.extra)?;
        let spki = identity.spki();
        let extra: Vec<(&str, &[u8])> = options
            .extra
            .iter()
            .map(|(n, k)| (n.as_str(), k.as_slice()))
            .collect();
        let binding = binding(&spki, &extra);
        let evidence = evidence(binding, cert_challenge()).map_err(TlsError::Evidence)?;
        let cmw = CertEvidence {
            evidence,
            extra: options
                .extra
                .iter()
                .map(|(n, k)| (n.clone(), ByteBuf::from(k.clone())))
                .collect(),
        }
        .encode();
        let mut params = CertificateParams::new(options.names.clone())
            .map_err(|e| TlsError::Certificate(format!("names {:?}: {e}", options.names)))?;
        params
            .distinguished_name
            .push(DnType::CommonName, "aex attested module");
        // No key usage and no basic constraints: a self-signed end-entity certificate that
        // OpenSSL (`curl --cacert`) accepts as its own trust anchor.
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        // Not critical: ordinary TLS clients that pin the certificate ignore it.
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(EVIDENCE_OID, cmw));
        let cert = params
            .self_signed(&identity.key)
            .map_err(|e| TlsError::Certificate(e.to_string()))?;
        let cert = cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(crate::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(Arc::new(AnyClientKey::new()))
            .with_single_cert(vec![cert.clone()], key)?;
        // No resumption: every session shows the certificate, so every client appraises it.
        config.send_tls13_tickets = 0;
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        Ok(Attested {
            config: Arc::new(config),
            binding,
            attest,
            cert,
        })
    }

    /// The certificate's DER (public).
    pub fn certificate(&self) -> &[u8] {
        &self.cert
    }
}

fn check_extra(extra: &[(String, Vec<u8>)]) -> Result<(), TlsError> {
    if extra.len() > MAX_EXTRA {
        return Err(TlsError::Option(format!(
            "{} extra keys; at most {MAX_EXTRA}",
            extra.len()
        )));
    }
    for (i, (name, key)) in extra.iter().enumerate() {
        if name.is_empty() || name.len() > MAX_EXTRA_NAME {
            return Err(TlsError::Option(format!(
                "extra key name `{name}`: 1 to {MAX_EXTRA_NAME} bytes"
            )));
        }
        if key.len() > MAX_EXTRA_KEY {
            return Err(TlsError::Option(format!(
                "extra key `{name}` is {} bytes; at most {MAX_EXTRA_KEY}",
                key.len()
            )));
        }
        if extra[..i].iter().any(|(n, _)| n == name) {
            return Err(TlsError::Option(format!("extra key `{name}` named twice")));
        }
    }
    Ok(())
}
