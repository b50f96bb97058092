//! The simulated SGX platform: a vendor root (standing in for Intel's) certifies an
//! attestation key (standing in for the quoting enclave's), which signs DCAP-shaped quotes.
//!
//! Files (in the node's data directory `dir`):
//!
//! ```text
//! dir/sim-vendor/sgx-root.key  32 bytes, P-256 private scalar of the simulated vendor root (0600)
//! dir/sgx-ak.key               32 bytes, P-256 private scalar of the attestation key (0600)
//! dir/sgx-ak.cert              161 bytes: issuer (33, SEC1 compressed root public key)
//!                              || subject (64, attestation public key x || y)
//!                              || signature (64, r || s)
//!                              signature = ECDSA-P256-SHA256(root,
//!                                  "aex/v1 sim sgx ak cert" || issuer || subject)
//! dir/platform.pub             the root public key, SEC1 compressed, 66 hex characters + "\n":
//!                              the trust anchor an operator gives deployers
//! ```
//!
//! A simulated quote is the DCAP v3 layout of `sgx::layout` with `qe_vendor_id =
//! "aex-simulated-qe"`, followed by `issuer (33) || certificate signature (64)` after the
//! attestation key: 661 bytes. Invariant: private scalars live only in those files and in
//! `SigningKey`s (zeroized on drop); nothing here sends them.

use std::path::Path;

use aex_crypto::{random_bytes, sha256, Measurement};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};

use super::layout::{
    QuoteHeader, SgxReportBody, ATTR_DEBUG, ATTR_INIT, ATTR_MODE64BIT, SIGNED_LEN, SIM_QE_VENDOR_ID,
};
use crate::files::{corrupt, read_secret, write_public, write_secret, PlatformError};

/// Directory (inside a data directory) where the simulated vendor keeps its root.
pub const SIM_VENDOR_DIR: &str = "sim-vendor";
/// The simulated vendor root's private key, inside [`SIM_VENDOR_DIR`].
pub const SGX_ROOT_KEY_FILE: &str = "sgx-root.key";
/// The attestation key's private scalar.
pub const SGX_AK_KEY_FILE: &str = "sgx-ak.key";
/// The attestation key's certificate by the simulated root.
pub const SGX_AK_CERT_FILE: &str = "sgx-ak.cert";
/// The trust anchor deployers use: the simulated root's public key, hex.
pub const PLATFORM_PUB_FILE: &str = "platform.pub";

/// Signed-message prefix of attestation-key certificates.
pub const CERT_LABEL: &[u8] = b"aex/v1 sim sgx ak cert";
/// `mr_signer` of simulated enclaves: `SHA-256("aex/v1 simulated enclave signer")`.
pub fn sim_mr_signer() -> [u8; 32] {
    sha256(&[b"aex/v1 simulated enclave signer"])
}

/// Length of a simulated quote.
pub const SIM_QUOTE_LEN: usize = SIGNED_LEN + 4 + 64 + 64 + 33 + 64;

/// A simulated root public key that is not a P-256 point.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a simulated SGX root key: expected a P-256 public key (SEC1, 33 or 65 bytes, hex)")]
pub struct InvalidRootKey;

/// The simulated vendor root's public key: the `sgx` trust anchor in simulation.
#[derive(Clone, PartialEq, Eq)]
pub struct SimRootPublicKey {
    key: VerifyingKey,
    sec1: [u8; 33],
}

impl SimRootPublicKey {
    /// From SEC1 bytes (compressed or uncompressed).
    pub fn from_sec1(bytes: &[u8]) -> Result<Self, InvalidRootKey> {
        let key = VerifyingKey::from_sec1_bytes(bytes).map_err(|_| InvalidRootKey)?;
        Ok(Self::from_key(key))
    }

    /// From hex of SEC1 bytes, e.g. the contents of `platform.pub` (surrounding space ignored).
    pub fn from_hex(text: &str) -> Result<Self, InvalidRootKey> {
        Self::from_sec1(&hex::decode(text.trim()).map_err(|_| InvalidRootKey)?)
    }

    fn from_key(key: VerifyingKey) -> Self {
        let mut sec1 = [0u8; 33];
        sec1.copy_from_slice(key.to_sec1_point(true).as_bytes());
        SimRootPublicKey { key, sec1 }
    }

    /// SEC1 compressed encoding (33 bytes).
    pub fn to_sec1(&self) -> [u8; 33] {
        self.sec1
    }

    /// Hex of [`SimRootPublicKey::to_sec1`], as in `platform.pub`.
    pub fn to_hex(&self) -> String {
        hex::encode(self.sec1)
    }
}

impl core::fmt::Debug for SimRootPublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SimRootPublicKey({})", self.to_hex())
    }
}

impl core::fmt::Display for SimRootPublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

fn generate_key() -> SigningKey {
    // A random 32-byte string is a valid scalar unless it is 0 or >= n (probability < 2^-32).
    loop {
        let bytes = zeroize::Zeroizing::new(random_bytes::<32>());
        if let Ok(k) = SigningKey::from_slice(bytes.as_ref()) {
            return k;
        }
    }
}

fn load_or_generate(path: &Path) -> Result<SigningKey, PlatformError> {
    if let Some(bytes) = read_secret::<32>(path)? {
        return SigningKey::from_slice(bytes.as_ref())
            .map_err(|_| corrupt(path, "not a P-256 private scalar"));
    }
    let key = generate_key();
    write_secret(path, &key.to_bytes())?;
    Ok(key)
}

/// The raw `x || y` of a public key, as DCAP carries attestation keys.
pub(crate) fn raw_xy(key: &VerifyingKey) -> [u8; 64] {
    let mut out = [0u8; 64];
    out.copy_from_slice(&key.to_sec1_point(false).as_bytes()[1..]);
    out
}

/// A simulated attestation-key certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCert {
    /// SEC1 compressed public key of the issuing root.
    pub issuer: [u8; 33],
    /// Attestation public key, `x || y`.
    pub subject: [u8; 64],
    /// ECDSA P-256 signature `r || s` by the root.
    pub signature: [u8; 64],
}

impl SimCert {
    /// Encoded length.
    pub const LEN: usize = 33 + 64 + 64;

    /// The message the root signs.
    pub fn signed_message(issuer: &[u8; 33], subject: &[u8; 64]) -> Vec<u8> {
        [CERT_LABEL, issuer, subject].concat()
    }

    /// `issuer || subject || signature`.
    pub fn to_bytes(&self) -> Vec<u8> {
        [&self.issuer[..], &self.subject, &self.signature].concat()
    }

    /// Parses [`SimCert::to_bytes`].
    pub fn parse(b: &[u8]) -> Option<Self> {
        if b.len() != Self::LEN {
            return None;
        }
        Some(SimCert {
            issuer: b[..33].try_into().ok()?,
            subject: b[33..97].try_into().ok()?,
            signature: b[97..].try_into().ok()?,
        })
    }

    /// Whether `root` signed this certificate (the trusted root, not the embedded issuer).
    pub(crate) fn verifies_under(&self, root: &SimRootPublicKey) -> bool {
        let Ok(sig) = Signature::from_slice(&self.signature) else {
            return false;
        };
        let msg = Self::signed_message(&self.issuer, &self.subject);
        root.key.verify(&msg, &sig).is_ok()
    }
}

/// The simulated vendor: holds the root that certifies attestation keys.
pub struct SimSgxVendor {
    root: SigningKey,
    public: SimRootPublicKey,
}

impl SimSgxVendor {
    /// A fresh vendor in memory (tests, or a vendor that keeps its root elsewhere).
    pub fn generate() -> Self {
        Self::from_key(generate_key())
    }

    fn from_key(root: SigningKey) -> Self {
        let public = SimRootPublicKey::from_key(*root.verifying_key());
        SimSgxVendor { root, public }
    }

    /// Loads `dir/sgx-root.key`, creating it on first use.
    pub fn load_or_create(dir: &Path) -> Result<Self, PlatformError> {
        Ok(Self::from_key(load_or_generate(
            &dir.join(SGX_ROOT_KEY_FILE),
        )?))
    }

    /// The root public key deployers trust.
    pub fn public_key(&self) -> &SimRootPublicKey {
        &self.public
    }

    /// Certifies an attestation public key (`x || y`).
    pub fn certify(&self, subject: &[u8; 64]) -> SimCert {
        let issuer = self.public.sec1;
        let sig: Signature = self.root.sign(&SimCert::signed_message(&issuer, subject));
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&sig.to_bytes());
        SimCert {
            issuer,
            subject: *subject,
            signature,
        }
    }
}

/// A node's simulated SGX platform: the attestation key, its certificate, and the attributes
/// its enclaves get.
pub struct SimSgxPlatform {
    ak: SigningKey,
    cert: SimCert,
    root: SimRootPublicKey,
    debug: bool,
}

impl SimSgxPlatform {
    /// Loads the attestation key and certificate from `dir`, creating them (and the simulated
    /// vendor root in `dir/sim-vendor/`) on first use; (re)writes `dir/platform.pub`.
    pub fn load_or_create(dir: &Path) -> Result<Self, PlatformError> {
        let ak = load_or_generate(&dir.join(SGX_AK_KEY_FILE))?;
        let subject = raw_xy(ak.verifying_key());
        let cert_path = dir.join(SGX_AK_CERT_FILE);
        let cert = match std::fs::read(&cert_path) {
            Ok(bytes) => {
                let cert = SimCert::parse(&bytes).ok_or_else(|| {
                    corrupt(&cert_path, format!("expected {} bytes", SimCert::LEN))
                })?;
                if cert.subject != subject {
                    return Err(corrupt(
                        &cert_path,
                        format!("certifies another key than `{SGX_AK_KEY_FILE}`"),
                    ));
                }
                cert
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let vendor = SimSgxVendor::load_or_create(&dir.join(SIM_VENDOR_DIR))?;
                let cert = vendor.certify(&subject);
                write_public(&cert_path, &cert.to_bytes())?;
                cert
            }
            Err(e) => return Err(crate::files::io_err("read", &cert_path)(e)),
        };
        let root = SimRootPublicKey::from_sec1(&cert.issuer)
            .map_err(|_| corrupt(&cert_path, "issuer is not a P-256 public key"))?;
        write_public(
            &dir.join(PLATFORM_PUB_FILE),
            format!("{}\n", root.to_hex()).as_bytes(),
        )?;
        Ok(SimSgxPlatform {
            ak,
            cert,
            root,
            debug: false,
        })
    }

    /// A platform in memory whose fresh attestation key `vendor` certifies.
    pub fn provisioned_by(vendor: &SimSgxVendor) -> Self {
        let ak = generate_key();
        let cert = vendor.certify(&raw_xy(ak.verifying_key()));
        SimSgxPlatform {
            ak,
            cert,
            root: vendor.public.clone(),
            debug: false,
        }
    }

    /// Launch enclaves in debug mode (attributes flag DEBUG) from now on.
    pub fn with_debug(mut self, debug: bool) -> Self {
        self.debug = debug;
        self
    }

    /// The root that certified this platform: what deployers trust.
    pub fn root_public_key(&self) -> &SimRootPublicKey {
        &self.root
    }

    /// The report body this platform's CPU gives an enclave with `measurement`.
    pub fn report_body(&self, measurement: &Measurement, report_data: &[u8; 64]) -> SgxReportBody {
        let mut flags = ATTR_INIT | ATTR_MODE64BIT;
        if self.debug {
            flags |= ATTR_DEBUG;
        }
        let mut attributes = [0u8; 16];
        attributes[..8].copy_from_slice(&flags.to_le_bytes());
        attributes[8..].copy_from_slice(&0x3u64.to_le_bytes()); // xfrm: x87, SSE
        SgxReportBody {
            cpu_svn: [0; 16],
            misc_select: 0,
            attributes,
            mr_enclave: measurement.0,
            mr_signer: sim_mr_signer(),
            isv_prod_id: 0,
            isv_svn: 0,
            report_data: *report_data,
        }
    }

    /// Signs a quote over `body` (the simulated quoting enclave's job).
    pub fn quote(&self, body: &SgxReportBody) -> Vec<u8> {
        let header = QuoteHeader {
            version: 3,
            attestation_key_type: 2,
            tee_type: 0,
            qe_svn: 0,
            pce_svn: 0,
            qe_vendor_id: SIM_QE_VENDOR_ID,
            user_data: [0; 20],
        };
        let mut q = Vec::with_capacity(SIM_QUOTE_LEN);
        q.extend_from_slice(&header.to_bytes());
        q.extend_from_slice(&body.to_bytes());
        let sig: Signature = self.ak.sign(&q);
        let sig_data_len = (SIM_QUOTE_LEN - SIGNED_LEN - 4) as u32;
        q.extend_from_slice(&sig_data_len.to_le_bytes());
        q.extend_from_slice(&sig.to_bytes());
        q.extend_from_slice(&self.cert.subject);
        q.extend_from_slice(&self.cert.issuer);
        q.extend_from_slice(&self.cert.signature);
        q
    }
}
