//! [`open`]: picks the backend of the configured kind and loads (or creates) its simulated
//! platform material in the node's data directory. The one place that knows every backend, so
//! the backends and the trait they implement (`backend.rs`) know none of each other.

use std::path::Path;

use crate::backend::Backend;
use crate::files::PlatformError;
use crate::kind::{SymmetricKind, TeeKind};
use crate::native::NativePlatform;
use crate::sgx::SimSgxPlatform;
use crate::symmetric::SimSymmetricPlatform;

/// Options of [`open_with`]; `Default` is what [`open`] uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendOptions {
    /// `sgx`: launch enclaves in debug mode (for testing debug policies).
    pub sgx_debug: bool,
}

/// [`open_with`] with default options.
pub fn open(kind: TeeKind, data_dir: &Path) -> Result<Box<dyn Backend>, PlatformError> {
    open_with(kind, data_dir, &BackendOptions::default())
}

/// Opens the simulated backend of `kind`, loading its material from `data_dir` or creating
/// it on first use (secrets mode 0600):
///
/// * `sgx`: `sim-vendor/sgx-root.key`, `sgx-ak.key`, `sgx-ak.cert`, and `platform.pub`;
/// * `trustzone`/`sancus`: `<kind>-node.key` (provider keys are exported on demand,
///   [`SimSymmetricPlatform::provider_key`]);
/// * `native`: nothing.
pub fn open_with(
    kind: TeeKind,
    data_dir: &Path,
    options: &BackendOptions,
) -> Result<Box<dyn Backend>, PlatformError> {
    Ok(match kind {
        TeeKind::Sgx => {
            Box::new(SimSgxPlatform::load_or_create(data_dir)?.with_debug(options.sgx_debug))
        }
        TeeKind::TrustZone => Box::new(SimSymmetricPlatform::load_or_create(
            SymmetricKind::TrustZone,
            data_dir,
        )?),
        TeeKind::Sancus => Box::new(SimSymmetricPlatform::load_or_create(
            SymmetricKind::Sancus,
            data_dir,
        )?),
        TeeKind::Native => Box::new(NativePlatform),
    })
}
