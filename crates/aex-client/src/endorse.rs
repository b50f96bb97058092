//! Endorsements: how an outside client trusts a module on a symmetric TEE kind (`trustzone`,
//! `sancus`), whose evidence only the deployer can check (docs/PROTOCOL.md §11).
//!
//! The deployer appraises the module's certificate with its provider key, then signs, with a
//! per-application Ed25519 key it holds, a statement naming the kind, the measurement, whether
//! the platform is simulated, and the certificate's key binding. A client pins that key (the
//! deployer's, not the platform's) and the measurement; the handshake then proves the module
//! holds the endorsed key. An endorsement names one key, so it names one instance: a new
//! instance needs a new endorsement.

use aex_crypto::Measurement;
use aex_crypto::{verify_signature, SigningIdentity};
use aex_tee::TeeKind;

use crate::error::ClientError;

/// What the signature covers starts with this label.
const LABEL: &[u8] = b"aex/v1 tls endorsement";
/// The first word of an endorsement's text form.
const TAG: &str = "aex-tls-endorsement-v1";

/// A deployer's signed statement that a module key belongs to code it checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endorsement {
    /// The module's TEE kind.
    pub kind: TeeKind,
    /// The measurement the deployer checked.
    pub measurement: Measurement,
    /// Whether the module's platform is simulated.
    pub simulated: bool,
    /// The certificate's key binding (`aex_proto::attested_tls::binding`).
    pub binding: [u8; 32],
    /// The endorsing key (Ed25519 public key).
    pub signer: [u8; 32],
    /// Ed25519 over the label, kind, measurement, simulated flag and binding.
    pub signature: [u8; 64],
}

fn message(
    kind: TeeKind,
    measurement: &Measurement,
    simulated: bool,
    binding: &[u8; 32],
) -> Vec<u8> {
    let mut m = LABEL.to_vec();
    m.push(kind.name().len() as u8);
    m.extend_from_slice(kind.name().as_bytes());
    m.extend_from_slice(&measurement.0);
    m.push(u8::from(simulated));
    m.extend_from_slice(binding);
    m
}

/// Signs an endorsement with `key` ([`Verified::endorse`](crate::Verified::endorse)).
pub(crate) fn sign(
    kind: TeeKind,
    measurement: Measurement,
    simulated: bool,
    binding: [u8; 32],
    key: &SigningIdentity,
) -> Endorsement {
    let msg = message(kind, &measurement, simulated, &binding);
    Endorsement {
        kind,
        measurement,
        simulated,
        binding,
        signer: key.public(),
        signature: key.sign(&msg),
    }
}

impl Endorsement {
    /// One line: `aex-tls-endorsement-v1 KIND MEASUREMENT SIMULATED BINDING SIGNER SIGNATURE`.
    pub fn to_text(&self) -> String {
        format!(
            "{TAG} {} {} {} {} {} {}\n",
            self.kind.name(),
            self.measurement,
            self.simulated,
            hex::encode(self.binding),
            hex::encode(self.signer),
            hex::encode(self.signature)
        )
    }

    /// Reads [`Endorsement::to_text`]'s form.
    pub fn parse(text: &str) -> Result<Endorsement, ClientError> {
        let bad = |what: &str| ClientError::BadEndorsement(what.into());
        let words: Vec<&str> = text.split_whitespace().collect();
        let [tag, kind, measurement, simulated, binding, signer, signature] = words[..] else {
            return Err(bad("not seven words"));
        };
        if tag != TAG {
            return Err(bad("not an aex endorsement (v1)"));
        }
        let bytes = |h: &str, what: &str| hex::decode(h).map_err(|_| bad(what));
        Ok(Endorsement {
            kind: TeeKind::from_name(kind).map_err(|_| bad("unknown TEE kind"))?,
            measurement: Measurement::from_hex(measurement).map_err(|_| bad("measurement"))?,
            simulated: simulated.parse().map_err(|_| bad("simulated flag"))?,
            binding: bytes(binding, "binding")?
                .try_into()
                .map_err(|_| bad("binding length"))?,
            signer: bytes(signer, "signer")?
                .try_into()
                .map_err(|_| bad("signer length"))?,
            signature: bytes(signature, "signature")?
                .try_into()
                .map_err(|_| bad("signature length"))?,
        })
    }

    /// Checks the signature under the pinned `signer`.
    pub(crate) fn check(&self, signer: &[u8; 32]) -> Result<(), ClientError> {
        if &self.signer != signer {
            return Err(ClientError::EndorsementSigner {
                got: hex::encode(self.signer),
                pinned: hex::encode(signer),
            });
        }
        let msg = message(self.kind, &self.measurement, self.simulated, &self.binding);
        verify_signature(signer, &msg, &self.signature)
            .map_err(|_| ClientError::BadEndorsement("the signature does not verify".into()))
    }
}
