//! What an admitted deployer may take of the node: a request rate, an amount of upload in
//! progress and a number of modules, each per deployer identity (over all its sessions and
//! applications), each from the node's [`Limits`].
//!
//! Admission says who may manage applications here; it does not make a deployer harmless. One
//! that turns hostile (or is compromised) could otherwise spin requests, announce uploads the
//! node holds in memory, or start processes until the node falls over. A request over a limit
//! is answered `Refused`, naming the limit, its value and the setting that raises it, and
//! counted in the node's `refused` counter; nothing else of the session changes.
//!
//! The request rate is a token bucket: `deployer_requests_per_second` tokens a second, at most
//! a second's worth saved up. Upload bytes are charged when `LoadBegin` announces them and
//! given back when the upload ends (the module started, or the upload abandoned). Modules are
//! counted from the node's tables when an upload begins (`load.rs`).
//!
//! Invariant: the table holds an entry only for an identity with an open session or an upload
//! in progress, so its size is bounded by the connections (even in `--open` mode).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aex_proto::{DeployerKey, NodeError as WireError, NodeErrorKind};

use crate::conns::{Throttle, LOG_EVERY};
use crate::error::refuse;
use crate::limits::{raise, show_bytes, Limits};
use crate::sync::lock;

/// What one deployer identity uses now.
struct Usage {
    sessions: usize,
    tokens: f64,
    refilled: Instant,
    uploading: u64,
}

/// The deployer quotas of a node.
pub(crate) struct Quotas {
    node: String,
    rate: u64,
    upload_bytes: u64,
    modules: u64,
    usage: Mutex<HashMap<DeployerKey, Usage>>,
    /// Refused requests, for logging.
    pub(crate) refusals: Throttle,
}

/// An open session's hold on its identity's entry; released on drop.
pub(crate) struct SessionQuota {
    quotas: Arc<Quotas>,
    key: DeployerKey,
}

/// Upload bytes charged to an identity; given back on drop.
pub(crate) struct UploadCharge {
    quotas: Arc<Quotas>,
    key: DeployerKey,
    bytes: u64,
}

impl Quotas {
    /// Quotas of node `node` from its limits.
    pub(crate) fn new(node: &str, limits: &Limits) -> Arc<Quotas> {
        Arc::new(Quotas {
            node: node.to_owned(),
            rate: limits.deployer_requests_per_second,
            upload_bytes: limits.deployer_upload_bytes,
            modules: limits.deployer_modules,
            usage: Mutex::default(),
            refusals: Throttle::new(LOG_EVERY),
        })
    }

    /// The most modules one identity may have.
    pub(crate) fn max_modules(&self) -> u64 {
        self.modules
    }

    fn entry<'a>(
        usage: &'a mut HashMap<DeployerKey, Usage>,
        key: &DeployerKey,
        rate: u64,
    ) -> &'a mut Usage {
        usage.entry(*key).or_insert_with(|| Usage {
            sessions: 0,
            tokens: rate as f64,
            refilled: Instant::now(),
            uploading: 0,
        })
    }

    /// Forgets an identity that holds nothing any more.
    fn release_if_idle(usage: &mut HashMap<DeployerKey, Usage>, key: &DeployerKey) {
        if usage
            .get(key)
            .is_some_and(|u| u.sessions == 0 && u.uploading == 0)
        {
            usage.remove(key);
        }
    }

    /// Registers an admitted session of `key`.
    pub(crate) fn open_session(self: &Arc<Self>, key: DeployerKey) -> SessionQuota {
        let mut usage = lock(&self.usage);
        Self::entry(&mut usage, &key, self.rate).sessions += 1;
        SessionQuota {
            quotas: self.clone(),
            key,
        }
    }

    /// Takes one request of `key` from its rate, or refuses it.
    pub(crate) fn take_request(&self, key: &DeployerKey) -> Result<(), WireError> {
        let mut usage = lock(&self.usage);
        let u = Self::entry(&mut usage, key, self.rate);
        let now = Instant::now();
        let rate = self.rate as f64;
        let earned = now.duration_since(u.refilled).as_secs_f64() * rate;
        u.tokens = (u.tokens + earned).min(rate);
        u.refilled = now;
        if u.tokens >= 1.0 {
            u.tokens -= 1.0;
            return Ok(());
        }
        Err(refuse(
            NodeErrorKind::Refused,
            format!(
                "node `{}` refused the request: deployer {} sent more than {} requests per \
                 second (`deployer_requests_per_second`); {}",
                self.node,
                key.short(),
                self.rate,
                raise("deployer_requests_per_second")
            ),
        ))
    }

    /// Charges `bytes` of upload (module `module`) to `key`, or refuses.
    pub(crate) fn charge_upload(
        self: &Arc<Self>,
        key: &DeployerKey,
        module: &str,
        bytes: u64,
    ) -> Result<UploadCharge, WireError> {
        let mut usage = lock(&self.usage);
        let u = Self::entry(&mut usage, key, self.rate);
        let total = u.uploading.saturating_add(bytes);
        if total > self.upload_bytes {
            let held = u.uploading;
            Self::release_if_idle(&mut usage, key);
            return Err(refuse(
                NodeErrorKind::Refused,
                format!(
                    "node `{}` refused to load module `{module}` ({}): deployer {} would have \
                     {} of uploads in progress ({} already), over its limit of {} \
                     (`deployer_upload_bytes`); {}",
                    self.node,
                    show_bytes(bytes),
                    key.short(),
                    show_bytes(total),
                    show_bytes(held),
                    show_bytes(self.upload_bytes),
                    raise("deployer_upload_bytes")
                ),
            ));
        }
        u.uploading = total;
        Ok(UploadCharge {
            quotas: self.clone(),
            key: *key,
            bytes,
        })
    }

    /// The refusal of one more module for `key`, which has `count` (uploads included).
    pub(crate) fn too_many_modules(
        &self,
        key: &DeployerKey,
        module: &str,
        count: u64,
    ) -> WireError {
        refuse(
            NodeErrorKind::Refused,
            format!(
                "node `{}` refused to load module `{module}`: deployer {} has {count} modules \
                 there (uploads in progress included), its limit (`deployer_modules`); {}",
                self.node,
                key.short(),
                raise("deployer_modules")
            ),
        )
    }

    /// Bytes of uploads `key` has in progress.
    #[cfg(test)]
    fn uploading(&self, key: &DeployerKey) -> Option<u64> {
        lock(&self.usage).get(key).map(|u| u.uploading)
    }
}

impl Drop for SessionQuota {
    fn drop(&mut self) {
        let mut usage = lock(&self.quotas.usage);
        if let Some(u) = usage.get_mut(&self.key) {
            u.sessions = u.sessions.saturating_sub(1);
        }
        Quotas::release_if_idle(&mut usage, &self.key);
    }
}

impl Drop for UploadCharge {
    fn drop(&mut self) {
        let mut usage = lock(&self.quotas.usage);
        if let Some(u) = usage.get_mut(&self.key) {
            u.uploading = u.uploading.saturating_sub(self.bytes);
        }
        Quotas::release_if_idle(&mut usage, &self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quotas(rate: u64, upload: u64) -> Arc<Quotas> {
        let mut limits = Limits::default();
        limits.set("deployer_requests_per_second", rate).unwrap();
        limits.set("deployer_upload_bytes", upload).unwrap();
        Quotas::new("n1", &limits)
    }

    #[test]
    fn a_second_s_worth_of_requests_then_refusals_naming_the_setting() {
        let q = quotas(50, 1 << 20);
        let key = DeployerKey([1; 32]);
        let _session = q.open_session(key);
        for _ in 0..50 {
            q.take_request(&key).unwrap();
        }
        let e = q.take_request(&key).unwrap_err();
        assert_eq!(e.kind, NodeErrorKind::Refused);
        assert!(
            e.message.contains("node `n1`")
                && e.message.contains("more than 50 requests per second")
                && e.message
                    .contains("aex node --limit deployer_requests_per_second="),
            "{}",
            e.message
        );
        // Another identity has its own rate.
        q.take_request(&DeployerKey([2; 32])).unwrap();
    }

    #[test]
    fn uploads_are_charged_until_they_end_and_idle_identities_are_forgotten() {
        let q = quotas(10, 1000);
        let key = DeployerKey([1; 32]);
        let a = q.charge_upload(&key, "a", 600).unwrap();
        let e = q.charge_upload(&key, "b", 500).err().unwrap();
        assert!(
            e.message.contains("module `b` (500 B)")
                && e.message
                    .contains("1100 B of uploads in progress (600 B already)")
                && e.message
                    .contains("limit of 1000 B (`deployer_upload_bytes`)"),
            "{}",
            e.message
        );
        let b = q.charge_upload(&key, "b", 400).unwrap();
        assert_eq!(q.uploading(&key), Some(1000));
        drop(a);
        drop(b);
        assert_eq!(q.uploading(&key), None);
        let session = q.open_session(key);
        q.take_request(&key).unwrap();
        assert!(q.uploading(&key).is_some());
        drop(session);
        assert_eq!(q.uploading(&key), None);
    }
}
