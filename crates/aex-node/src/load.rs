//! Loading modules: receiving a binary in chunks, storing it, measuring it, starting it.
//!
//! Invariants: a module name matches `[A-Za-z0-9_-][A-Za-z0-9_.-]{0,79}` before it touches a
//! path (`names.rs`; no leading dot, so never `.` or `..`); a name is reserved in its namespace from
//! `LoadBegin` until its module is running or the upload is abandoned (so two sessions cannot
//! load the same name); a module's files live under `modules/<namespace>/<name>/`, so
//! namespaces never share a path; an upload never exceeds the size announced in
//! `LoadBegin`, itself at most [`MAX_MODULE_SIZE`]; the measurement is SHA-256 of exactly the
//! bytes written to `module.bin`.
//!
//! `LoadStored` starts a module from a binary its deployer uploaded before (`binaries.rs`): the
//! same name checks, reservation and module quota as `LoadBegin`, no upload, and the
//! measurement the node took when it wrote those bytes.
//!
//! A driver (`LoadDriver`) is loaded the same way, except that its devices are claimed from the
//! TEE layer, all or none, before its process starts, and its measurement (its identity for
//! the process, the backend's key provisioning and evidence, and the deployer) is the
//! device-bound one, `Measurement::of(binary).with_devices(devices)`. A driver that fails to
//! start gives its devices back. (When the claim took a device over from an earlier instance
//! of the same module, `name` before `name.2`, that instance does not get it back: the
//! deployer that updated it reloads.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aex_crypto::Measurement;
use aex_proto::{
    AppId, DeployerKey, NodeError as WireError, NodeErrorKind, NodeResponse, PersistenceStatus,
    ToModule,
};
use aex_tee::devices::{DeviceError, Holder};
use aex_tee::{Provider, SealPolicy};
use tracing::info;

use crate::error::refuse;
use crate::journal::ModuleEntry;
use crate::module::{Module, Wiring};
use crate::names::{check_name, Reservation};
use crate::quota::UploadCharge;
use crate::sealed::Persistent;
use crate::shared::Shared;
use crate::sync::lock;

/// Largest module binary a node accepts.
pub(crate) const MAX_MODULE_SIZE: u64 = 256 << 20;
/// Uploads one session may have in progress at once (each is held in memory).
const MAX_UPLOADS: usize = 4;
/// Most devices one driver may claim.
pub(crate) const MAX_DRIVER_DEVICES: usize = 16;

/// One upload in progress.
struct Upload {
    size: u64,
    data: Vec<u8>,
    _name: Reservation,
    /// Its announced size, charged to its deployer's quota until it ends.
    _charge: UploadCharge,
}

/// The uploads of one deployer session, in its namespace; dropping it abandons them.
pub(crate) struct Uploads {
    app: AppId,
    /// The deployer the namespace belongs to: symmetric TEEs key its modules under its
    /// provider key, and its modules count against its quotas.
    owner: DeployerKey,
    pending: HashMap<String, Upload>,
}

impl Uploads {
    /// No uploads yet, for a session in namespace `app` of deployer `owner`.
    pub(crate) fn new(app: AppId, owner: DeployerKey) -> Self {
        Uploads {
            app,
            owner,
            pending: HashMap::new(),
        }
    }

    /// The provider (deployer) the session's namespace belongs to.
    pub(crate) fn owner(&self) -> Provider {
        Provider(self.owner.0)
    }

    /// The deployer identity the session's namespace belongs to.
    pub(crate) fn deployer(&self) -> &DeployerKey {
        &self.owner
    }

    /// `LoadBegin`: reserves the name and starts collecting `size` bytes, if the deployer's
    /// quotas leave room for one more module and `size` more bytes of upload.
    pub(crate) fn begin(
        &mut self,
        shared: &Shared,
        module: String,
        size: u64,
    ) -> Result<NodeResponse, WireError> {
        check_name(&module)?;
        if size > MAX_MODULE_SIZE {
            return Err(refuse(
                NodeErrorKind::BadRequest,
                format!(
                    "module `{module}` is {size} bytes; the limit is {} MiB",
                    MAX_MODULE_SIZE >> 20
                ),
            ));
        }
        if self.pending.len() >= MAX_UPLOADS {
            return Err(refuse(
                NodeErrorKind::BadRequest,
                format!("at most {MAX_UPLOADS} uploads may be in progress on one session"),
            ));
        }
        self.check_free(shared, &module)?;
        let charge = shared.quotas.charge_upload(&self.owner, &module, size)?;
        let name = self.reserve(shared, &module)?;
        self.pending.insert(
            module,
            Upload {
                size,
                data: Vec::new(),
                _name: name,
                _charge: charge,
            },
        );
        Ok(NodeResponse::Done)
    }

    /// Refuses a name a module of the namespace already has.
    fn check_free(&self, shared: &Shared, module: &str) -> Result<(), WireError> {
        if shared.router.has_module(self.app, module) {
            return Err(exists(module));
        }
        Ok(())
    }

    /// Reserves `module` in the namespace until the returned reservation is dropped, if the
    /// deployer's quota leaves room for one more module.
    fn reserve(&self, shared: &Shared, module: &str) -> Result<Reservation, WireError> {
        let reserved = (self.app, module.to_string());
        // Counted and reserved under one lock, so two sessions of one deployer cannot both
        // take the last place.
        let mut names = lock(&shared.reservations.0);
        if names.contains_key(&reserved) {
            return Err(exists(module));
        }
        let count = shared.router.count_modules(&self.owner)
            + names.values().filter(|k| **k == self.owner).count() as u64;
        if count >= shared.quotas.max_modules() {
            return Err(shared.quotas.too_many_modules(&self.owner, module, count));
        }
        names.insert(reserved.clone(), self.owner);
        Ok(Reservation {
            names: shared.reservations.clone(),
            name: reserved,
        })
    }

    /// `LoadStored`: starts `module` from the binary measured `measurement` that this
    /// deployer uploaded before (`binaries.rs`), under the same checks and quotas as an
    /// upload's `LoadBegin` (nothing is uploaded, so no upload bytes are charged);
    /// `NotStored` if the node holds no such binary for this deployer.
    pub(crate) async fn load_stored(
        &self,
        shared: &Shared,
        module: &str,
        measurement: Measurement,
    ) -> Result<NodeResponse, WireError> {
        check_name(module)?;
        self.check_free(shared, module)?;
        let name = self.reserve(shared, module)?;
        let dir = self.module_dir(shared, module);
        let linked = {
            let (binaries, owner, dir) = (shared.binaries.clone(), self.owner, dir.clone());
            tokio::task::spawn_blocking(move || binaries.link(&owner, &measurement, &dir)).await
        };
        match linked {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                return Err(refuse(
                    NodeErrorKind::NotStored,
                    format!(
                        "this node holds no binary {measurement} of this deployer; upload module `{module}`"
                    ),
                ))
            }
            Ok(Err(e)) => return Err(cannot_store(module, &dir, e)),
            Err(e) => return Err(cannot_store(module, &dir, e)),
        }
        info!(module, app = %self.app, %measurement, "module linked to a stored binary");
        self.launch(shared, module, &dir, measurement, &[], name)
            .await
    }

    /// `modules/<namespace>/<module>` in the node's data directory.
    fn module_dir(&self, shared: &Shared, module: &str) -> PathBuf {
        shared
            .data_dir
            .join("modules")
            .join(self.app.to_string())
            .join(module)
    }

    /// `LoadChunk`: appends bytes; an overflow abandons the upload.
    pub(crate) fn chunk(&mut self, module: &str, data: &[u8]) -> Result<NodeResponse, WireError> {
        let upload = self
            .pending
            .get_mut(module)
            .ok_or_else(|| no_upload(module))?;
        let total = upload.data.len() as u64 + data.len() as u64;
        if total > upload.size {
            let size = upload.size;
            self.pending.remove(module);
            return Err(refuse(
                NodeErrorKind::BadRequest,
                format!(
                    "module `{module}` overflows its announced size of {size} bytes; upload abandoned"
                ),
            ));
        }
        upload.data.extend_from_slice(data);
        Ok(NodeResponse::Done)
    }

    /// `LoadEnd` (no `devices`) or `LoadDriver`: stores, measures and starts the module,
    /// granting it `devices` first.
    pub(crate) async fn finish(
        &mut self,
        shared: &Shared,
        module: &str,
        devices: &[String],
    ) -> Result<NodeResponse, WireError> {
        let upload = self
            .pending
            .remove(module)
            .ok_or_else(|| no_upload(module))?;
        check_devices(module, devices)?;
        if upload.data.len() as u64 != upload.size {
            return Err(refuse(
                NodeErrorKind::BadRequest,
                format!(
                    "module `{module}` is incomplete: received {} of {} bytes; upload abandoned",
                    upload.data.len(),
                    upload.size
                ),
            ));
        }
        let dir = self.module_dir(shared, module);
        let Upload { data, _name, .. } = upload;
        let stored = {
            let (binaries, owner, dir) = (shared.binaries.clone(), self.owner, dir.clone());
            tokio::task::spawn_blocking(move || binaries.store(&owner, &dir, &data)).await
        };
        let measurement = match stored {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => return Err(cannot_store(module, &dir, e)),
            Err(e) => return Err(cannot_store(module, &dir, e)),
        };
        info!(module, app = %self.app, %measurement, ?devices, "module stored");
        self.launch(shared, module, &dir, measurement, devices, _name)
            .await
    }

    /// Grants a stored module `devices` (its measurement then covers them) and starts it,
    /// giving the devices back if it does not start; its name stays reserved until then.
    async fn launch(
        &self,
        shared: &Shared,
        module: &str,
        dir: &Path,
        measurement: Measurement,
        devices: &[String],
        name: Reservation,
    ) -> Result<NodeResponse, WireError> {
        let measurement = measurement.with_devices(devices);
        let holder = Holder::new(self.app.to_string(), module);
        if !devices.is_empty() {
            shared
                .devices
                .claim(&holder, devices)
                .map_err(|e| claim_refused(module, e))?;
        }
        let started = self.start(shared, module, dir, measurement, devices).await;
        if started.is_err() && !devices.is_empty() {
            // The name is still reserved, so no other instance is this holder.
            shared.devices.release(&holder);
        }
        drop(name);
        started
    }

    /// Starts a stored module (with no sealed state from an earlier instance of that name)
    /// and adds it to the router.
    async fn start(
        &self,
        shared: &Shared,
        module: &str,
        dir: &Path,
        measurement: Measurement,
        devices: &[String],
    ) -> Result<NodeResponse, WireError> {
        // A fresh instance: blobs an earlier instance of the name left are not its own.
        let sealed = dir.join("sealed");
        if let Err(e) = std::fs::remove_dir_all(&sealed) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(cannot_store(module, &sealed, e));
            }
        }
        let process = Process {
            app: self.app,
            owner: self.owner,
            name: module,
            dir,
            measurement,
        };
        let started = spawn(shared, &process, PersistenceStatus::default()).await?;
        if let Err(e) = shared.router.insert_module(started.clone()) {
            started.kill();
            return Err(e);
        }
        shared.journal.record_module(&ModuleEntry {
            app: self.app,
            name: module.to_owned(),
            owner: self.owner,
            measurement: measurement.to_hex(),
            devices: devices.to_vec(),
            triggers: Vec::new(),
            persistent: started.declares_persistent(),
        });
        Ok(NodeResponse::Loaded {
            measurement: measurement.0,
        })
    }
}

/// Which module a process is started for.
pub(crate) struct Process<'a> {
    pub(crate) app: AppId,
    pub(crate) owner: DeployerKey,
    pub(crate) name: &'a str,
    pub(crate) dir: &'a Path,
    pub(crate) measurement: Measurement,
}

/// Starts a process of a stored module and hands it what its platform derives for it: the
/// module key under the namespace owner's provider key (symmetric kinds) and, for a module
/// that declares itself persistent, its sealing key (its sealed storage then carries
/// `status` over from earlier processes). The module is not added to the router.
pub(crate) async fn spawn(
    shared: &Shared,
    process: &Process<'_>,
    status: PersistenceStatus,
) -> Result<Arc<Module>, WireError> {
    let Process {
        app,
        owner,
        name,
        dir,
        measurement,
    } = *process;
    let wiring = Wiring {
        to_router: shared.router.connect_module(app, name),
        timeouts: shared.timeouts,
        input_bytes: shared.router.module_queue(),
        exits: shared.exits.clone(),
        backend: shared.backend.clone(),
    };
    let started = Module::start(app, owner, name, dir, measurement, wiring).await?;
    let provider = Provider(owner.0);
    let mut handover = Vec::new();
    if let Some(key) = shared.backend.provision(&provider, &measurement) {
        handover.push(ToModule::Provision {
            kind: shared.backend.kind().name().into(),
            simulated: shared.backend.simulated(),
            key: aex_proto::WireKey::from_secret(&key),
        });
    }
    if started.declares_persistent() {
        // By signer: the stakeholder's and the module's (its name without the instance
        // suffix: `tally` for `tally.3`), so its later instances derive it too.
        let product = name.split('.').next().unwrap_or(name);
        let policy = if started.seals_by_signer() {
            SealPolicy::Signer { product }
        } else {
            SealPolicy::Measurement
        };
        let key =
            shared
                .sealing
                .sealing_key(shared.backend.as_ref(), &provider, &measurement, policy);
        handover.push(ToModule::Sealing {
            key: aex_proto::WireKey::from_secret(&key),
        });
        started.set_persistent(Arc::new(Persistent::new(
            dir,
            shared.sealing.clone(),
            key,
            status,
        )));
    }
    for msg in handover {
        if !started.provision(msg).await {
            started.kill();
            return Err(refuse(
                NodeErrorKind::ModuleUnavailable,
                format!("module `{name}` exited before its platform keys were handed over"),
            ));
        }
    }
    Ok(started)
}

fn exists(module: &str) -> WireError {
    refuse(
        NodeErrorKind::AlreadyExists,
        format!("a module named `{module}` already exists or is being loaded"),
    )
}

fn cannot_store(module: &str, dir: &Path, e: impl std::fmt::Display) -> WireError {
    refuse(
        NodeErrorKind::Io,
        format!("cannot store module `{module}` in {}: {e}", dir.display()),
    )
}

fn no_upload(module: &str) -> WireError {
    refuse(
        NodeErrorKind::BadRequest,
        format!(
            "no upload of module `{module}` in progress on this session (send LoadBegin first)"
        ),
    )
}

/// Checks a driver's device list: at most [`MAX_DRIVER_DEVICES`] valid names.
fn check_devices(module: &str, devices: &[String]) -> Result<(), WireError> {
    if devices.len() > MAX_DRIVER_DEVICES {
        return Err(refuse(
            NodeErrorKind::BadRequest,
            format!(
                "driver `{module}` claims {} devices; the limit is {MAX_DRIVER_DEVICES}",
                devices.len()
            ),
        ));
    }
    for device in devices {
        aex_tee::devices::check_name(device)
            .map_err(|e| refuse(NodeErrorKind::BadRequest, e.to_string()))?;
    }
    Ok(())
}

/// The answer to a refused claim: an unknown device is the deployer's mistake (the message
/// lists the node's devices), a held one a refusal.
fn claim_refused(module: &str, e: DeviceError) -> WireError {
    let kind = match e {
        DeviceError::Unknown { .. } => NodeErrorKind::BadRequest,
        _ => NodeErrorKind::Refused,
    };
    refuse(kind, format!("cannot load driver `{module}`: {e}"))
}
