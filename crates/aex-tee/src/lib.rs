//! The aex TEE backend layer.
//!
//! A TEE backend is the trusted platform part of a node: it measures a module and produces
//! attestation evidence that the module with that measurement, and only it, answered the
//! deployer's fresh challenge. This crate holds both halves of every backend's scheme, so each
//! format is defined once:
//!
//! * the node side: [`open`] (or [`open_with`]) returns the configured kind's
//!   `Box<dyn` [`Backend`]`>`, which [`provision`](Backend::provision)s module keys (symmetric
//!   kinds) and wraps what a module answered into [`evidence`](Backend::evidence);
//! * the deployer side: [`appraise`] checks evidence against an [`Expected`] — kind,
//!   [`TrustAnchor`], policy, the deployer's own measurement, challenge and the module's public
//!   key — and only on success mints an [`Appraised`] proof;
//! * the module side: [`symmetric::attest_mac`] (from `aex_crypto::symmetric`), a pure
//!   function the module runtime calls;
//! * secure I/O: [`devices`], the devices of a node and the exclusive grant of each to one
//!   attested driver module, which the node gets from its backend
//!   ([`device_grants`](Backend::device_grants)).
//!
//! Every kind's evidence travels in one envelope (see `evidence.rs`): version, kind, simulated
//! flag, the challenge it answers, and a kind-specific body. Connection algorithms per kind:
//! [`algorithms`].
//!
//! # Design overview
//!
//! **`sgx` — quote-based.** Evidence is a DCAP v3 quote: header, SGX report body
//! (`mr_enclave` = the module's measurement, `mr_signer`, `attributes` with the DEBUG flag,
//! `isv_prod_id`, `isv_svn`, `report_data = SHA-256(module X25519 pk || challenge) || 0^32`),
//! signed with ECDSA P-256 by an attestation key. In simulation ([`sgx::SimSgxPlatform`]) a
//! simulated vendor root ([`sgx::SimSgxVendor`], ECDSA P-256) certifies the attestation key
//! with a compact certificate, and the deployer trusts the root's public key
//! ([`sgx::SimRootPublicKey`], the node's `platform.pub`). Real Intel quotes go down the same
//! path ([`sgx::verify_sgx_quote`]): same parser and quote-signature check, then Intel's chain
//! through dcap-qvl (PCK certificates to Intel's root, CRLs, QE report, TCB info and QE
//! identity at a fixed time, [`TrustAnchor::IntelDcap`]) instead of the simulated
//! certificate, then the same common checks. *Simulation protects* against the network and
//! anyone without the node's data directory: forged, replayed or redirected quotes are
//! refused. *Against the node's operator it protects nothing*: whoever reads `sgx-ak.key` (or
//! the simulated root) signs quotes for any code with any attributes. *Hardware adds*: the
//! attestation key lives in Intel's quoting enclave, certified up to Intel's root; the
//! report body comes from the CPU, so `mr_enclave` and the DEBUG flag are facts, and enclave
//! memory is out of the operator's reach.
//!
//! **`trustzone`, `sancus` — symmetric.** Node key → provider key = HKDF(node key, kind,
//! provider) → module key = HKDF(provider key, measurement) ([`symmetric`] has the exact
//! labels), as on Sancus, where each software provider has its own key. A provider is a
//! stakeholder, named by its deployer identity ([`Provider`]: its Ed25519 public key). The
//! node's operator exports one provider key per stakeholder
//! ([`SimSymmetricPlatform::provider_key`], `aex node provider-key`) and hands it to that
//! stakeholder alone ([`ProviderKey`]); two stakeholders running identical code get different
//! module keys, and a provider key derives its own stakeholder's module keys only. The
//! platform hands each module the module key under the provider key of the deployer that
//! loaded it ([`Backend::provision`]). At attestation the module draws an ephemeral X25519
//! key pair and answers the deployer's fresh challenge and ephemeral public key with its
//! public key and `HMAC-SHA-256(module key, "aex/v2 <kind> attest" || simulated || challenge
//! || measurement || module_pk || deployer_pk)`; the deployer derives the module key of *its
//! own build* and checks the MAC in constant time. Commands are sealed under a session key
//! from the X25519 shared secret, so the module key and the whole transcript do not give it
//! (forward secrecy, as `sgx`). The module key never travels. *Simulation protects* against
//! the network and against other stakeholders: without the provider key nobody forges a MAC,
//! a co-tenant's provider key derives nothing of another's, and the simulated flag is bound so
//! it cannot be flipped. *Against the node's operator it protects nothing*: the node key is a
//! file, so the operator derives every provider and module key, impersonates any module, and
//! the node agent hands each module its key. *Hardware adds*: the node key is fused in the
//! chip and only the hardware derives module keys, for the code it actually loaded (Sancus),
//! or only the secure world does (TrustZone), and module memory is isolated from the
//! untrusted OS. aex has no hardware trust anchor for these kinds, so a descriptor may not ask
//! for hardware evidence from them (`simulation = false` is refused).
//!
//! **`native` — no TEE.** Evidence says `native`, carries the claimed measurement and the
//! binding of the module's public key to the challenge, and no signature. [`appraise`]
//! refuses it ([`AppraisalError::InsecureRefused`]) unless the descriptor opted in for that
//! module (`allow_insecure`); it counts as simulated, and [`Appraised::insecure`] is true. It
//! protects against nothing but honest mistakes (a stale build, a crossed wire).
//!
//! **Policy.** `allow_simulated = false` is a hardware-only policy: every simulated evidence,
//! of whatever kind, is refused on the envelope's claim before anything else is believed, and
//! again on the proven claim (the simulated flag is bound by the quote issuer or the MAC).
//! `allow_debug` admits debug enclaves; `allow_insecure` admits `native`. [`appraise`] is a
//! pure function: it does no I/O and trusts nothing it has not checked.
//!
//! **Data directory.** `sgx`: `sim-vendor/sgx-root.key`, `sgx-ak.key`, `sgx-ak.cert`,
//! `platform.pub` (see [`sgx`]); `trustzone`/`sancus`: `<kind>-node.key`;
//! `native`: nothing. Secrets are created with mode 0600.
//!
//! # Formats
//!
//! ```text
//! evidence = postcard(Envelope { version: u8 = 1, kind: str, simulated: bool,
//!                                challenge: [u8; 32], body: bytes })
//! sgx body        = DCAP v3 quote: header (48) || report body (384) || sig_data_len u32 LE
//!                   || ECDSA sig r||s (64) || attestation key x||y (64) || certification:
//!                   Intel: QE report, QE report sig, QE auth data, PCK chain (DCAP)
//!                   simulated: root pk SEC1 compressed (33) || cert sig r||s (64); 661 bytes
//!                   qe_vendor_id: Intel 939a7233f79c4ca9940a0db3957f0607, simulated
//!                   "aex-simulated-qe"
//! sim cert sig    = ECDSA-P256-SHA256(root, "aex/v1 sim sgx ak cert" || root pk (33) || ak (64))
//! report_data     = SHA-256(module_pk || challenge) || 0^32       (sgx and native)
//! trustzone/sancus body = provider key id (8) || measurement (32) || MAC (32)
//! native body     = measurement (32) || report_data (64)
//! ```
//!
//! The symmetric key schedule and MAC are in [`symmetric`]; the quote layout in
//! [`sgx::QuoteHeader`] and [`sgx::SgxReportBody`].
//!
//! # Layout
//!
//! Layered, with no import circle (check with `scripts/use-edges.py crates/aex-tee`):
//!
//! 1. shared types, importing nothing but each other downwards: `kind.rs` ([`TeeKind`],
//!    [`SymmetricKind`]), `provider.rs` ([`Provider`]), `error.rs` ([`AppraisalError`]),
//!    `evidence.rs` (the envelope, and the claims a check proves), `files.rs` (key files),
//!    [`devices`] (declarations, grants);
//! 2. `backend.rs`: the [`Backend`] trait;
//! 3. one folder or file per scheme, each with its node side (a `Backend`) and its
//!    cryptographic check: [`sgx`], [`symmetric`], `native.rs`; none imports another or the
//!    appraisal;
//! 4. on top, `open.rs` ([`open`]: the node picks a backend) and `appraise/` ([`appraise`]:
//!    the deployer maps its [`TrustAnchor`] to the scheme's check, then runs the common
//!    checks).
#![forbid(unsafe_code)]
#![deny(rustdoc::broken_intra_doc_links)]

mod appraise;
mod backend;
pub mod devices;
mod error;
mod evidence;
mod files;
mod kind;
mod native;
mod open;
mod provider;
mod sealing;
pub mod sgx;
pub mod symmetric;

pub use appraise::{appraise, Appraised, Expected, TrustAnchor};
pub use backend::{Backend, EvidenceError, SealPolicy};
pub use error::AppraisalError;
pub use evidence::{report_data, EVIDENCE_VERSION};
pub use files::{replace_durably, PlatformError};
pub use kind::{algorithms, Scheme, SymmetricKind, TeeKind, UnknownTeeKind};
pub use native::NativePlatform;
pub use open::{open, open_with, BackendOptions};
pub use provider::Provider;
pub use sealing::{CounterError, CounterRequest, SealingPlatform, PLATFORM_DIR};
pub use sgx::{sgx_evidence, SimSgxPlatform, PLATFORM_PUB_FILE};
pub use symmetric::{node_key_file, ProviderKey, ProviderKeyError, SimSymmetricPlatform};
