//! Proposals, ballots and withdrawals: each a tagged COSE_Sign1 (RFC 9052) by one member.
//!
//! The protected header holds `alg` (EdDSA, -8), `kid` (the signer's 32-byte Ed25519 public
//! key) and `content type` (label 3), which says what the payload is:
//!
//! | content type                     | payload (a CBOR map)                                   |
//! |----------------------------------|--------------------------------------------------------|
//! | `application/aex-proposal+cbor`  | `application`, `action`, `change` (32 bytes), `summary`, `created_ms` |
//! | `application/aex-ballot+cbor`    | `proposal` (32 bytes), `vote` (`approve` or `reject`)  |
//! | `application/aex-withdrawal+cbor`| `proposal` (32 bytes)                                  |
//!
//! Because the content type is signed, a ballot cannot be passed off as a proposal, and
//! because a ballot names its proposal's id (the SHA-256 of the proposal's payload), it counts
//! for that proposal only.

use aex_crypto::{verify_signature, SigningIdentity, PUBLIC_IDENTITY_LEN, SIGNATURE_LEN};
use coset::iana::Algorithm;
use coset::{CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::action::Action;
use crate::error::GovernanceError;
pub use crate::id::ProposalId;

/// The most bytes a signed proposal, ballot or withdrawal may have.
pub const MAX_SIGNED: usize = 128 * 1024;

/// The most bytes a proposal's summary may have (the plan people read before voting).
pub const MAX_SUMMARY: usize = 64 * 1024;

/// A change a member asks the consortium to approve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The governed application.
    pub application: String,
    /// What kind of action: it decides the rule.
    pub action: Action,
    /// The SHA-256 of the exact change: the deployment plan or descriptor it applies, or for
    /// a change of members or rules, the new constitution's digest.
    #[serde(with = "serde_bytes")]
    pub change: [u8; 32],
    /// What people read before voting (the plan, as `aex deploy --dry-run` prints it).
    pub summary: String,
    /// When it was made, by the proposer's clock (milliseconds since the Unix epoch): it makes
    /// a second proposal of the same change a different proposal.
    pub created_ms: u64,
}

/// A member's vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Vote {
    /// For.
    Approve,
    /// Against.
    Reject,
}

/// A member's ballot on one proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ballot {
    /// The proposal it is for.
    pub proposal: ProposalId,
    /// The vote.
    pub vote: Vote,
}

/// The proposer takes a proposal back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    /// The proposal.
    pub proposal: ProposalId,
}

/// A payload that travels signed.
pub trait Signed: Serialize + DeserializeOwned {
    /// Its COSE content type.
    const CONTENT_TYPE: &'static str;
    /// What people call it, in errors.
    const WHAT: &'static str;

    /// Signs it as `signer`: a tagged COSE_Sign1.
    fn sign(&self, signer: &SigningIdentity) -> Vec<u8> {
        let mut payload = Vec::new();
        // Invariant: strings, byte strings, integers and unit enums always encode.
        ciborium::into_writer(self, &mut payload).unwrap_or_default();
        let protected = HeaderBuilder::new()
            .algorithm(Algorithm::EdDSA)
            .key_id(signer.public().to_vec())
            .content_type(Self::CONTENT_TYPE.to_owned())
            .build();
        CoseSign1Builder::new()
            .protected(protected)
            .payload(payload)
            .create_signature(&[], |tbs| signer.sign(tbs).to_vec())
            .build()
            .to_tagged_vec()
            .unwrap_or_default()
    }
}

impl Signed for Proposal {
    const CONTENT_TYPE: &'static str = "application/aex-proposal+cbor";
    const WHAT: &'static str = "proposal";
}

impl Signed for Ballot {
    const CONTENT_TYPE: &'static str = "application/aex-ballot+cbor";
    const WHAT: &'static str = "ballot";
}

impl Signed for Withdrawal {
    const CONTENT_TYPE: &'static str = "application/aex-withdrawal+cbor";
    const WHAT: &'static str = "withdrawal";
}

/// A signed object whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened<T> {
    /// The signer's key (not yet checked against the members).
    pub signer: [u8; PUBLIC_IDENTITY_LEN],
    /// The payload.
    pub body: T,
    /// The SHA-256 of the payload's bytes as signed (a proposal's id).
    pub digest: [u8; 32],
}

/// Decodes a signed `T` and checks its signature under the key it names. Never panics, on
/// any input.
pub fn open<T: Signed>(bytes: &[u8]) -> Result<Opened<T>, GovernanceError> {
    let malformed = |reason: String| GovernanceError::Malformed {
        what: T::WHAT,
        reason,
    };
    if bytes.len() > MAX_SIGNED {
        return Err(malformed(format!(
            "{} bytes, more than the {MAX_SIGNED} allowed",
            bytes.len()
        )));
    }
    let sign1 = CoseSign1::from_tagged_slice(bytes)
        .or_else(|_| CoseSign1::from_slice(bytes))
        .map_err(|e| malformed(format!("not a COSE_Sign1: {e}")))?;
    let header = &sign1.protected.header;
    if header.alg
        != Some(coset::RegisteredLabelWithPrivate::Assigned(
            Algorithm::EdDSA,
        ))
    {
        return Err(malformed("its algorithm is not EdDSA".into()));
    }
    let content_type = match &header.content_type {
        Some(coset::ContentType::Text(t)) => t.as_str(),
        _ => "",
    };
    if content_type != T::CONTENT_TYPE {
        return Err(malformed(format!(
            "its content type is `{content_type}`, not `{}`",
            T::CONTENT_TYPE
        )));
    }
    let signer: [u8; PUBLIC_IDENTITY_LEN] = header
        .key_id
        .as_slice()
        .try_into()
        .map_err(|_| malformed("its key id is not a 32-byte Ed25519 public key".into()))?;
    sign1
        .verify_signature(&[], |sig, tbs| {
            let sig: &[u8; SIGNATURE_LEN] = sig.try_into().map_err(|_| ())?;
            verify_signature(&signer, tbs, sig).map_err(|_| ())
        })
        .map_err(|()| GovernanceError::BadSignature { what: T::WHAT })?;
    let payload = sign1.payload.as_deref().unwrap_or_default();
    let body: T = ciborium::from_reader(payload)
        .map_err(|e| malformed(format!("its payload does not decode: {e}")))?;
    Ok(Opened {
        signer,
        body,
        digest: Sha256::digest(payload).into(),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn proposal() -> Proposal {
        Proposal {
            application: "ping-pong".into(),
            action: Action::Deploy,
            change: [7; 32],
            summary: "load ping and pong".into(),
            created_ms: 1,
        }
    }

    #[test]
    fn a_signed_proposal_opens_and_any_changed_byte_is_refused() {
        let member = SigningIdentity::from_seed(&[1; 32]);
        let signed = proposal().sign(&member);
        let opened = open::<Proposal>(&signed).unwrap();
        assert_eq!(opened.signer, member.public());
        assert_eq!(opened.body, proposal());
        for i in 0..signed.len() {
            let mut bad = signed.clone();
            bad[i] ^= 0x01;
            if let Ok(o) = open::<Proposal>(&bad) {
                panic!("byte {i} changed and still opened: {o:?}");
            }
        }
    }

    #[test]
    fn one_kind_is_not_taken_for_another() {
        let member = SigningIdentity::from_seed(&[1; 32]);
        let ballot = Ballot {
            proposal: ProposalId([2; 32]),
            vote: Vote::Approve,
        }
        .sign(&member);
        let err = open::<Withdrawal>(&ballot).unwrap_err().to_string();
        assert!(
            err.contains("content type is `application/aex-ballot+cbor`, not `application/aex-withdrawal+cbor`"),
            "{err}"
        );
        assert!(open::<Ballot>(&ballot).is_ok());
    }

    #[test]
    fn a_payload_signed_by_one_key_and_relabelled_with_another_is_forged() {
        let a = SigningIdentity::from_seed(&[1; 32]);
        let b = SigningIdentity::from_seed(&[2; 32]);
        let signed = proposal().sign(&a);
        let mut sign1 = CoseSign1::from_tagged_slice(&signed).unwrap();
        sign1.protected = coset::ProtectedHeader {
            original_data: None,
            header: HeaderBuilder::new()
                .algorithm(Algorithm::EdDSA)
                .key_id(b.public().to_vec())
                .content_type(Proposal::CONTENT_TYPE.to_owned())
                .build(),
        };
        let forged = sign1.to_tagged_vec().unwrap();
        assert_eq!(
            open::<Proposal>(&forged).unwrap_err(),
            GovernanceError::BadSignature { what: "proposal" }
        );
    }

    #[test]
    fn oversized_input_is_refused_before_decoding() {
        let err = open::<Ballot>(&vec![0; MAX_SIGNED + 1]).unwrap_err();
        assert!(err.to_string().contains("more than the"), "{err}");
    }

    proptest! {
        #[test]
        fn opening_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = open::<Proposal>(&bytes);
            let _ = open::<Ballot>(&bytes);
            let _ = open::<Withdrawal>(&bytes);
        }

        #[test]
        fn a_signed_ballot_round_trips(id in any::<[u8; 32]>(), approve in any::<bool>(), seed in any::<[u8; 32]>()) {
            let member = SigningIdentity::from_seed(&seed);
            let ballot = Ballot {
                proposal: ProposalId(id),
                vote: if approve { Vote::Approve } else { Vote::Reject },
            };
            let opened = open::<Ballot>(&ballot.sign(&member)).unwrap();
            prop_assert_eq!(opened.body, ballot);
            prop_assert_eq!(opened.signer, member.public());
        }
    }
}
