//! Records for the state's tests.

use std::collections::BTreeMap;
#[cfg(unix)]
use std::path::Path;

use aex_crypto::SecretKey;

use super::records::{ConnectionRecord, ModuleRecord, StoredKey};

pub(super) fn module(key: u8, last_command: u64) -> ModuleRecord {
    ModuleRecord {
        node: "n".into(),
        tee: "sgx".into(),
        measurement: "00".repeat(32),
        instance: 1,
        key: StoredKey::new(SecretKey::from_bytes([key; 32])),
        last_command,
        attested_at: 0,
        simulated: true,
        insecure: false,
        reports_status: false,
        generation: 0,
        pending_state: None,
        pending_sealed: None,
        pending_predecessor: None,
        seals_by_signer: false,
        retiring: false,
        disabling: false,
        evidence: String::new(),
        toolchain: None,
    }
}

pub(super) fn connection(key: u8) -> ConnectionRecord {
    ConnectionRecord {
        id: 7,
        key: StoredKey::new(SecretKey::from_bytes([key; 32])),
        algorithm: "aes-256-gcm".into(),
        from: "a.out".into(),
        to: "b.in".into(),
        instances: BTreeMap::from([("a".into(), 1), ("b".into(), 2)]),
        last_sent: 3,
        last_received: 0,
    }
}

#[cfg(unix)]
pub(super) fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}
