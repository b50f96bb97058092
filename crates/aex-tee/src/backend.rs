//! The node side of every backend: one trait the node agent holds as `Box<dyn Backend>` (which
//! backend of which kind it gets is [`open`](crate::open)'s business, in `open.rs`).
//!
//! Invariant: no method returns a key the node agent could use against a module except
//! [`Backend::provision`], whose result goes to that module's process only; in hardware the
//! platform hands it to the module inside the TEE and the node agent never sees it.

use std::sync::Arc;

use aex_crypto::{Measurement, SecretKey};

use crate::devices::{DeviceGrants, DevicePins, DeviceSpec, DeviceSpecError, GrantTable};
use crate::kind::TeeKind;
use crate::provider::Provider;

/// Whose a persistent module's sealing key is (docs/PROTOCOL.md §9, "Sealing keys"): the
/// module chooses in its code (`#[aex::module(persistent)]` or `persistent(signer)`), and the
/// platform derives accordingly, as SGX's `EGETKEY` does with the enclave's key policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealPolicy<'a> {
    /// The code's: only the same measurement on the same platform derives it (MRENCLAVE).
    Measurement,
    /// The signer's: every instance of `product` (the module's name in its application)
    /// that the same stakeholder loads on the same platform derives it, whatever its code
    /// (MRSIGNER with the product id), so an update opens what its predecessor sealed.
    Signer {
        /// The module's name, without the instance suffix (`tally` for `tally.3`).
        product: &'a str,
    },
}

/// What a node's TEE backend does for the node agent.
///
/// Attestation, per kind (see [`TeeKind::scheme`](crate::TeeKind::scheme)):
///
/// 1. at load, the node measures the module binary (`Measurement::of`) and, for symmetric
///    kinds, calls [`provision`](Backend::provision) with the [`Provider`] that loads it (the
///    deployer identity that owns the namespace) and hands the module key to the module
///    process;
/// 2. on `Attest{challenge, deployer_pk}` the module answers with its ephemeral X25519 public
///    key (every kind) and, on `trustzone`/`sancus`, a MAC under its module key over the
///    challenge and both public keys (`aex_crypto::symmetric::attest_mac`);
/// 3. the node calls [`evidence`](Backend::evidence) with what the module answered and sends
///    the bytes to the deployer, which calls [`appraise`](crate::appraise).
pub trait Backend: Send + Sync {
    /// The TEE kind.
    fn kind(&self) -> TeeKind;

    /// Whether this backend's root is simulated (always, in this crate; `native` counts as
    /// simulated: nothing in it comes from hardware). Symmetric modules bind this in their MAC.
    fn simulated(&self) -> bool;

    /// A public identifier of the platform, for logs and `aex status`: `sgx`, the root public
    /// key (SEC1 compressed, as in `platform.pub`); `trustzone`/`sancus`, the 8-byte id of
    /// the node key; `native`, empty.
    fn platform_identity(&self) -> Vec<u8>;

    /// The module key of `measurement` under `provider`'s provider key (symmetric kinds;
    /// `None` for the others), for the module process only.
    fn provision(&self, provider: &Provider, measurement: &Measurement) -> Option<SecretKey>;

    /// The sealing key of the module with `measurement`, loaded by `provider`, on a platform
    /// whose sealing root is `root` (`sealing.rs`), under `policy`. By default the root and
    /// the measurement derive it (`sgx`'s MRENCLAVE policy; `native`), or with
    /// [`SealPolicy::Signer`] the root, the provider and the product (MRSIGNER); symmetric
    /// kinds derive it from the module key, or the provider key, instead, so it is the
    /// stakeholder's as well as the code's.
    fn sealing_key(
        &self,
        root: &SecretKey,
        provider: &Provider,
        measurement: &Measurement,
        policy: SealPolicy<'_>,
    ) -> SecretKey {
        match policy {
            SealPolicy::Measurement => {
                aex_crypto::seal::sealing_key(root, self.kind().name(), measurement)
            }
            SealPolicy::Signer { product } => {
                aex_crypto::seal::signer_sealing_key(root, self.kind().name(), &provider.0, product)
            }
        }
    }

    /// Evidence for the module with `measurement`, loaded by `provider`, answering
    /// `challenge`, as envelope bytes.
    ///
    /// `module_pk` is required for `sgx` and `native`, `module_mac` (32 bytes) for
    /// `trustzone` and `sancus` (which name `provider`'s key id); the other argument is
    /// ignored.
    fn evidence(
        &self,
        provider: &Provider,
        measurement: &Measurement,
        challenge: &[u8; 32],
        module_pk: Option<&[u8; 32]>,
        module_mac: Option<&[u8]>,
    ) -> Result<Vec<u8>, EvidenceError>;

    /// The TEE layer's grants of the node's `devices`, reaching them through `pins`: the one
    /// way a driver module reaches a device (see [`devices`](crate::devices)). Fails on a
    /// repeated name, or on inputs sensing one quantity that start at different values.
    ///
    /// Every backend of this crate keeps its grants in the node process ([`GrantTable`]), as
    /// simulation does; a hardware backend would hand out the hardware's (Sancus: memory
    /// protection of the devices' I/O addresses; TrustZone: peripherals of the secure world).
    fn device_grants(
        &self,
        devices: &[DeviceSpec],
        pins: Arc<dyn DevicePins>,
    ) -> Result<Arc<dyn DeviceGrants>, DeviceSpecError> {
        Ok(Arc::new(GrantTable::new(devices, pins)?))
    }
}

/// The node agent called [`Backend::evidence`] without what the kind needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// A required input is missing.
    #[error("{kind} evidence needs the {what}")]
    Missing {
        /// The backend's kind.
        kind: TeeKind,
        /// The missing input.
        what: &'static str,
    },
    /// The module's MAC is not 32 bytes.
    #[error("{kind} module MAC is {got} bytes, expected 32")]
    MacLength {
        /// The backend's kind.
        kind: TeeKind,
        /// Its length.
        got: usize,
    },
}
