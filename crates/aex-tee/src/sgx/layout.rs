//! Byte layout of a DCAP v3 SGX quote, shared by Intel's quotes and the simulated ones.
//!
//! ```text
//! offset  size  field                         (all integers little endian, as in DCAP)
//!      0    48  header: version u16 (= 3), attestation key type u16 (= 2, ECDSA P-256),
//!                       tee type u32 (= 0, SGX), qe_svn u16, pce_svn u16,
//!                       qe_vendor_id [16], user_data [20]
//!     48   384  SGX report body (below)
//!    432     4  signature data length u32
//!    436    64  ECDSA P-256 signature (r || s) over bytes 0..432, by the attestation key
//!    500    64  attestation public key (x || y)
//!    564     …  how the attestation key is certified: Intel's QE report, QE auth data and
//!               PCK chain, or the simulated vendor's compact certificate (`sgx::sim`)
//!
//! report body: cpu_svn [16] @0, misc_select u32 @16, reserved [28] @20, attributes [16] @48
//!   (flags u64 @48: bit 0 INIT, bit 1 DEBUG, bit 2 MODE64BIT; xfrm u64 @56), mr_enclave [32] @64,
//!   reserved [32] @96, mr_signer [32] @128, reserved [96] @160, isv_prod_id u16 @256,
//!   isv_svn u16 @258, reserved [60] @260, report_data [64] @320
//! ```
//!
//! Invariant: parsing reads only within the slice it was given and never panics.

/// Header length.
pub const HEADER_LEN: usize = 48;
/// Report body length.
pub const BODY_LEN: usize = 384;
/// Bytes covered by the attestation key's signature (header and report body).
pub const SIGNED_LEN: usize = HEADER_LEN + BODY_LEN;
/// Offset of the signature data (after its 4-byte length).
pub const SIG_DATA_OFFSET: usize = SIGNED_LEN + 4;

/// Intel's quoting enclave vendor id (`939A7233-F79C-4CA9-940A-0DB3957F0607`).
pub const INTEL_QE_VENDOR_ID: [u8; 16] = dcap_qvl::INTEL_QE_VENDOR_ID;
/// The vendor id aex's simulated quoting enclave writes: it can never be mistaken for Intel's.
pub const SIM_QE_VENDOR_ID: [u8; 16] = *b"aex-simulated-qe";

/// `attributes.flags` bit 1: the enclave was launched in debug mode (its memory is readable).
pub const ATTR_DEBUG: u64 = 1 << 1;
/// `attributes.flags` bit 0: the enclave is initialised.
pub const ATTR_INIT: u64 = 1 << 0;
/// `attributes.flags` bit 2: 64-bit enclave.
pub const ATTR_MODE64BIT: u64 = 1 << 2;

/// DCAP quote header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuoteHeader {
    /// Quote version (3 for SGX).
    pub version: u16,
    /// Attestation key type (2: ECDSA-256 with P-256).
    pub attestation_key_type: u16,
    /// TEE type (0: SGX, 0x81: TDX).
    pub tee_type: u32,
    /// Quoting enclave SVN.
    pub qe_svn: u16,
    /// Provisioning certification enclave SVN.
    pub pce_svn: u16,
    /// Who made the quote: Intel's QE or aex's simulated one.
    pub qe_vendor_id: [u8; 16],
    /// Free data of the quoting enclave.
    pub user_data: [u8; 20],
}

/// An SGX report body: what the CPU says about the enclave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SgxReportBody {
    /// CPU security version.
    pub cpu_svn: [u8; 16],
    /// Miscellaneous select.
    pub misc_select: u32,
    /// Attributes: flags (u64 LE) then xfrm (u64 LE).
    pub attributes: [u8; 16],
    /// Enclave measurement; in aex, the module's [`Measurement`](aex_crypto::Measurement).
    pub mr_enclave: [u8; 32],
    /// Hash of the enclave signer's key.
    pub mr_signer: [u8; 32],
    /// Product id.
    pub isv_prod_id: u16,
    /// Security version.
    pub isv_svn: u16,
    /// Report data: in aex, `SHA-256(module_pk || challenge) || 32 zero bytes`.
    pub report_data: [u8; 64],
}

fn arr<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = b.get(at..at + N) {
        out.copy_from_slice(src);
    }
    out
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(arr(b, at))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(arr(b, at))
}

impl QuoteHeader {
    /// Parses the first [`HEADER_LEN`] bytes.
    pub fn parse(quote: &[u8]) -> Option<Self> {
        let b = quote.get(..HEADER_LEN)?;
        Some(QuoteHeader {
            version: u16_at(b, 0),
            attestation_key_type: u16_at(b, 2),
            tee_type: u32_at(b, 4),
            qe_svn: u16_at(b, 8),
            pce_svn: u16_at(b, 10),
            qe_vendor_id: arr(b, 12),
            user_data: arr(b, 28),
        })
    }

    /// The 48 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..2].copy_from_slice(&self.version.to_le_bytes());
        b[2..4].copy_from_slice(&self.attestation_key_type.to_le_bytes());
        b[4..8].copy_from_slice(&self.tee_type.to_le_bytes());
        b[8..10].copy_from_slice(&self.qe_svn.to_le_bytes());
        b[10..12].copy_from_slice(&self.pce_svn.to_le_bytes());
        b[12..28].copy_from_slice(&self.qe_vendor_id);
        b[28..48].copy_from_slice(&self.user_data);
        b
    }
}

impl SgxReportBody {
    /// Parses bytes `48..432` of a quote.
    pub fn parse(quote: &[u8]) -> Option<Self> {
        let b = quote.get(HEADER_LEN..SIGNED_LEN)?;
        Some(SgxReportBody {
            cpu_svn: arr(b, 0),
            misc_select: u32_at(b, 16),
            attributes: arr(b, 48),
            mr_enclave: arr(b, 64),
            mr_signer: arr(b, 128),
            isv_prod_id: u16_at(b, 256),
            isv_svn: u16_at(b, 258),
            report_data: arr(b, 320),
        })
    }

    /// The 384 body bytes (reserved fields zero).
    pub fn to_bytes(&self) -> [u8; BODY_LEN] {
        let mut b = [0u8; BODY_LEN];
        b[0..16].copy_from_slice(&self.cpu_svn);
        b[16..20].copy_from_slice(&self.misc_select.to_le_bytes());
        b[48..64].copy_from_slice(&self.attributes);
        b[64..96].copy_from_slice(&self.mr_enclave);
        b[128..160].copy_from_slice(&self.mr_signer);
        b[256..258].copy_from_slice(&self.isv_prod_id.to_le_bytes());
        b[258..260].copy_from_slice(&self.isv_svn.to_le_bytes());
        b[320..384].copy_from_slice(&self.report_data);
        b
    }

    /// `attributes.flags`.
    pub fn flags(&self) -> u64 {
        u64::from_le_bytes(arr(&self.attributes, 0))
    }

    /// Whether the enclave runs in debug mode (flags bit 1), as SGX and dcap-qvl define it.
    pub fn debug(&self) -> bool {
        self.flags() & ATTR_DEBUG != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_round_trips() {
        let h = QuoteHeader {
            version: 3,
            attestation_key_type: 2,
            tee_type: 0,
            qe_svn: 7,
            pce_svn: 9,
            qe_vendor_id: SIM_QE_VENDOR_ID,
            user_data: [1; 20],
        };
        let mut attributes = [0u8; 16];
        attributes[0] = (ATTR_INIT | ATTR_DEBUG) as u8;
        let body = SgxReportBody {
            cpu_svn: [2; 16],
            misc_select: 5,
            attributes,
            mr_enclave: [3; 32],
            mr_signer: [4; 32],
            isv_prod_id: 6,
            isv_svn: 8,
            report_data: [9; 64],
        };
        let mut q = h.to_bytes().to_vec();
        q.extend_from_slice(&body.to_bytes());
        assert_eq!(QuoteHeader::parse(&q), Some(h));
        assert_eq!(SgxReportBody::parse(&q), Some(body));
        assert!(body.debug());
        assert_eq!(q[48 + 64], 3, "mr_enclave at body offset 64");
        assert_eq!(q[48 + 320], 9, "report_data at body offset 320");
        assert!(SgxReportBody::parse(&q[..431]).is_none());
        assert!(QuoteHeader::parse(&q[..47]).is_none());
    }
}
