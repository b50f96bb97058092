//! Governed deployments: a member's builds packed as an [`aex_governance::Bundle`] for the
//! governor, and the governor's side, which deploys from a bundle without sources.
//!
//! A member runs [`make`] (after [`build_all`](crate::ops::deploy::build_all)): the descriptor's
//! text and, per module, the digest, size, measurement, interface and toolchain of its build.
//! The proposal's change is the digest of the bundle's bytes. The governor, once the proposal
//! is accepted, runs [`open`]: it writes the descriptor into its own working directory, reads
//! it without looking for sources, checks every binary against the bundle (digest, size and
//! measurement), and hands back an [`App`] on the state it keeps sealed, ready for
//! [`apply`](crate::ops::deploy::apply).
//!
//! A governed descriptor must stand alone: the governor has none of the member's files, so
//! node keys are given inline (`platform_key`, `identity`), and it names no provider key file.
//! On a `trustzone` or `sancus` node appraisal needs the provider key of the deploying
//! identity, which is the governor's: the node's operator hands it to the governor, which
//! keeps it sealed and passes it to [`open`] in memory. No `native` node: it attests nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aex_crypto::Measurement;
use aex_governance::bundle::hex_digest;
use aex_governance::{Bundle, BundledModule};
use aex_tee::{ProviderKey, Scheme, TeeKind};

use crate::app::App;
use crate::build::Built;
use crate::descriptor::{Descriptor, NodeIdentitySource, PlatformKeySource};
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::ops::deploy::{assemble, BuiltApp};
use crate::state::State;

/// A bundle made for a proposal: its bytes (whose digest the proposal names) and the binaries
/// it names, by hex SHA-256.
#[derive(Debug, Clone)]
pub struct Made {
    /// The bundle.
    pub bundle: Bundle,
    /// Its bytes, as sent.
    pub bytes: Vec<u8>,
    /// Each binary the bundle names: hex SHA-256 → bytes.
    pub binaries: BTreeMap<String, Arc<Vec<u8>>>,
}

impl Made {
    /// The proposal's change: SHA-256 of [`Made::bytes`].
    pub fn digest(&self) -> [u8; 32] {
        Bundle::digest_of(&self.bytes)
    }
}

fn refused(reason: String) -> Error {
    Error::Bundle { reason }
}

/// Packs the application's builds for the governor; refuses a descriptor the governor could
/// not read alone.
pub fn make(app: &App, built: &BuiltApp) -> Result<Made> {
    let desc = app.descriptor();
    check_self_contained(desc)?;
    let mut modules = BTreeMap::new();
    let mut binaries = BTreeMap::new();
    for (name, b) in &built.modules {
        let digest = hex::encode(Measurement::of(&b.bytes).0);
        let interface = serde_json::to_value(&b.interface)
            .map_err(|e| refused(format!("module `{name}`: cannot encode its interface: {e}")))?;
        modules.insert(
            name.clone(),
            BundledModule {
                binary: digest.clone(),
                size: b.bytes.len() as u64,
                measurement: hex::encode(b.measurement.0),
                interface,
                devices: b.devices.clone(),
                toolchain: b.toolchain.clone(),
            },
        );
        binaries.insert(digest, b.bytes.clone());
    }
    let descriptor_name = desc
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "aex.toml".into());
    let bundle = Bundle {
        application: desc.application.clone(),
        descriptor_name,
        descriptor: desc.text().to_owned(),
        modules,
    };
    let bytes = bundle.to_bytes();
    Ok(Made {
        bundle,
        bytes,
        binaries,
    })
}

/// Refuses what the governor could not deploy from the descriptor alone.
fn check_self_contained(desc: &Descriptor) -> Result<()> {
    for node in &desc.nodes {
        let fix = |what: &str, field: &str| {
            refused(format!(
                "node `{}` names its {what} by a file, which the governor cannot read: give it \
                 inline as `{field} = \"<hex>\"` in {}",
                node.name,
                desc.path.display()
            ))
        };
        if node.tee == TeeKind::Native {
            return Err(refused(format!(
                "node `{}` is `native`: it attests nothing, so the governor could not check \
                 what runs there; a governed application runs on `sgx`, `trustzone` or \
                 `sancus` nodes",
                node.name
            )));
        }
        if node.provider_key_file.is_some() {
            return Err(refused(format!(
                "node `{}` names a `provider_key_file`, a secret of one deployer that the \
                 governor cannot read: remove it from {}; the node's operator hands the \
                 governor the provider key of the governor's own identity (`aex governor \
                 provider-key {}`)",
                node.name,
                desc.path.display(),
                node.name
            )));
        }
        if node.tee.scheme() == Scheme::Symmetric && node.provider_key_fingerprint.is_none() {
            return Err(refused(format!(
                "node `{}` is `{}` and {} pins no `provider_key_fingerprint`: the governor's \
                 provider key for it reaches the governor over the network, so the members \
                 approve which key that is. Ask the node's operator for the fingerprint of the \
                 governor's key (`aex node provider-key --data-dir DIR --tee {} --deployer KEY \
                 --fingerprint`, KEY as the governor's `GET /identity` gives it) and set \
                 `provider_key_fingerprint = \"<hex>\"` in the entry of node `{}`",
                node.name,
                node.tee.name(),
                desc.path.display(),
                node.tee.name(),
                node.name
            )));
        }
        if matches!(node.platform_key, Some(PlatformKeySource::File(_))) {
            return Err(fix("platform key", "platform_key"));
        }
        if matches!(node.identity, Some(NodeIdentitySource::File(_))) {
            return Err(fix("identity", "identity"));
        }
    }
    Ok(())
}

/// The governor's side: the application of `bundle` (whose bytes the caller checked against
/// the accepted proposal) in `workdir`, on `state`, commanded as `identity`; `binary` reads a
/// binary by its hex SHA-256. Every binary is checked against the bundle before it is used.
/// `provider_keys` are `identity`'s provider keys by node name: every `trustzone` or `sancus`
/// node a module runs on needs one (the App holds them in memory, never in a file).
pub fn open(
    workdir: &Path,
    bundle: &Bundle,
    binary: &dyn Fn(&str) -> std::io::Result<Vec<u8>>,
    identity: Arc<Identity>,
    state: State,
    mut provider_keys: BTreeMap<String, ProviderKey>,
) -> Result<(App, BuiltApp)> {
    let name = Path::new(&bundle.descriptor_name);
    if name.components().count() != 1 || name.file_name().is_none() {
        return Err(refused(format!(
            "descriptor name `{}` is not a plain file name",
            bundle.descriptor_name
        )));
    }
    // `.aex` holds the audit ledger (the state itself stays in memory).
    std::fs::create_dir_all(crate::state::StateFile::dir_for(workdir)).map_err(Error::Output)?;
    let file = workdir.join(name);
    std::fs::write(&file, &bundle.descriptor).map_err(Error::Output)?;
    let desc = Descriptor::prebuilt_from_text(&file, bundle.descriptor.clone())
        .map_err(|e| Error::Descriptor(Box::new(e)))?;
    check_self_contained(&desc)?;
    if desc.application != bundle.application {
        return Err(refused(format!(
            "the bundle names application `{}`, its descriptor `{}`",
            bundle.application, desc.application
        )));
    }
    let mut built = BTreeMap::new();
    for spec in &desc.modules {
        let m = bundle
            .modules
            .get(&spec.name)
            .ok_or_else(|| refused(format!("module `{}` has no build in the bundle", spec.name)))?;
        built.insert(
            spec.name.clone(),
            unpack(&spec.name, m, binary, workdir, &spec.devices)?,
        );
    }
    if let Some(extra) = bundle.modules.keys().find(|m| desc.module(m).is_none()) {
        return Err(refused(format!(
            "the bundle has a build of `{extra}`, which the descriptor does not declare"
        )));
    }
    let mut held = BTreeMap::new();
    for node in &desc.nodes {
        if node.tee.scheme() != Scheme::Symmetric {
            continue;
        }
        match provider_keys.remove(&node.name) {
            Some(key) => {
                held.insert(node.name.clone(), key);
            }
            None if desc.modules.iter().any(|m| m.node == node.name) => {
                return Err(refused(format!(
                    "node `{}` is `{}`, and the governor holds no provider key of its identity \
                     ({}) for it: the node's operator must hand it over (`aex governor \
                     provider-key {}` on the node's machine, docs/TUTORIAL.md 5g), then ask \
                     for the proposal again (`POST /proposals/ID/apply`)",
                    node.name,
                    node.tee.name(),
                    identity.public(),
                    node.name
                )));
            }
            None => {}
        }
    }
    let mut app = App::in_memory(desc, identity, state);
    app.hold_provider_keys(held);
    let built = assemble(&app, built)?;
    Ok((app, built))
}

/// One module's build from the bundle, checked.
fn unpack(
    module: &str,
    m: &BundledModule,
    binary: &dyn Fn(&str) -> std::io::Result<Vec<u8>>,
    workdir: &Path,
    devices: &[String],
) -> Result<Built> {
    let bad = |what: String| refused(format!("module `{module}`: {what}"));
    let (Some(digest), Some(expected)) = (hex_digest(&m.binary), hex_digest(&m.measurement)) else {
        return Err(bad("a digest that is not 64 hex digits".into()));
    };
    let bytes =
        binary(&m.binary).map_err(|e| bad(format!("binary {} is not available: {e}", m.binary)))?;
    if Measurement::of(&bytes).0 != digest || bytes.len() as u64 != m.size {
        return Err(bad(format!(
            "the binary held as {} is not the one the bundle names",
            m.binary
        )));
    }
    let mut sorted = devices.to_vec();
    sorted.sort();
    let mut named = m.devices.clone();
    named.sort();
    if sorted != named {
        return Err(bad(format!(
            "the bundle binds devices {named:?}, the descriptor {sorted:?}"
        )));
    }
    let interface = serde_json::from_value(m.interface.clone())
        .map_err(|e| bad(format!("its interface does not parse: {e}")))?;
    let built = Built {
        binary: PathBuf::from(workdir).join(&m.binary),
        bytes: Arc::new(bytes),
        measurement: Measurement([0; 32]),
        interface,
        devices: vec![],
        toolchain: m.toolchain.clone(),
    }
    .bound_to(devices);
    if built.measurement.0 != expected {
        return Err(bad(format!(
            "measures {}, the bundle says {}",
            hex::encode(built.measurement.0),
            m.measurement
        )));
    }
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str =
        "[[node]]\nname = \"n1\"\naddress = \"127.0.0.1:1\"\ntee = \"sgx\"\nsimulation = true\n";

    fn descriptor(keys: &str) -> String {
        format!(
            "[application]\nname = \"app\"\n\n{NODE}{keys}\n[[module]]\nname = \"m\"\ncrate = \"m\"\nnode = \"n1\"\n"
        )
    }

    fn inline() -> String {
        descriptor(&format!(
            "platform_key = \"{}\"\nidentity = \"{}\"\n",
            "2e".repeat(33),
            "11".repeat(32)
        ))
    }

    fn bundled(bytes: &[u8]) -> BundledModule {
        BundledModule {
            binary: hex::encode(Measurement::of(bytes).0),
            size: bytes.len() as u64,
            measurement: hex::encode(Measurement::of(bytes).0),
            interface: serde_json::to_value(aex_proto::Interface::default()).unwrap(),
            devices: vec![],
            toolchain: None,
        }
    }

    fn bundle(modules: &[(&str, BundledModule)]) -> Bundle {
        Bundle {
            application: "app".into(),
            descriptor_name: "aex.toml".into(),
            descriptor: inline(),
            modules: modules
                .iter()
                .map(|(n, m)| ((*n).to_owned(), m.clone()))
                .collect(),
        }
    }

    fn open_with(bundle: &Bundle, held: &[u8]) -> Result<(App, BuiltApp)> {
        open_keyed(bundle, held, BTreeMap::new())
    }

    fn open_keyed(
        bundle: &Bundle,
        held: &[u8],
        keys: BTreeMap<String, ProviderKey>,
    ) -> Result<(App, BuiltApp)> {
        let dir = tempfile::tempdir().unwrap();
        let identity = Arc::new(Identity::from_signing(
            aex_crypto::SigningIdentity::from_seed(&[5; 32]),
            Path::new("test"),
        ));
        let held = held.to_vec();
        open(
            dir.path(),
            bundle,
            &move |_| Ok(held.clone()),
            identity,
            State::default(),
            keys,
        )
    }

    fn refusal(r: Result<(App, BuiltApp)>) -> String {
        match r {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_bundle_opens_without_sources_and_every_binary_is_checked() {
        let bytes = b"the module".to_vec();
        let (app, built) = open_with(&bundle(&[("m", bundled(&bytes))]), &bytes).unwrap();
        assert_eq!(app.descriptor().application, "app");
        assert_eq!(built.modules["m"].bytes.as_slice(), bytes.as_slice());

        let e = refusal(open_with(
            &bundle(&[("m", bundled(&bytes))]),
            b"another module",
        ));
        assert!(e.contains("is not the one the bundle names"), "{e}");
        let mut wrong = bundled(&bytes);
        wrong.measurement = "00".repeat(32);
        let e = refusal(open_with(&bundle(&[("m", wrong)]), &bytes));
        assert!(e.contains("the bundle says 0000"), "{e}");
        let e = refusal(open_with(&bundle(&[]), &bytes));
        assert!(e.contains("module `m` has no build in the bundle"), "{e}");
        let e = refusal(open_with(
            &bundle(&[("m", bundled(&bytes)), ("x", bundled(&bytes))]),
            &bytes,
        ));
        assert!(e.contains("which the descriptor does not declare"), "{e}");
        let mut escaping = bundle(&[("m", bundled(&bytes))]);
        escaping.descriptor_name = "../aex.toml".into();
        let e = refusal(open_with(&escaping, &bytes));
        assert!(e.contains("not a plain file name"), "{e}");
    }

    #[test]
    fn a_descriptor_the_governor_cannot_read_alone_is_refused() {
        let load = |text: String| {
            Descriptor::prebuilt_from_text(Path::new("/nonexistent/aex.toml"), text).unwrap()
        };
        assert!(check_self_contained(&load(inline())).is_ok());
        let by_file = load(descriptor(&format!(
            "platform_key_file = \"k\"\nidentity = \"{}\"\n",
            "11".repeat(32)
        )));
        let e = check_self_contained(&by_file).unwrap_err().to_string();
        assert!(e.contains("give it inline as `platform_key"), "{e}");
        let with_key_file = load(
            descriptor(&format!(
                "identity = \"{}\"\nprovider_key_file = \"p\"\n",
                "11".repeat(32)
            ))
            .replace("tee = \"sgx\"", "tee = \"trustzone\""),
        );
        let e = check_self_contained(&with_key_file)
            .unwrap_err()
            .to_string();
        assert!(e.contains("names a `provider_key_file`"), "{e}");
        let symmetric = |tee: &str, pin: &str| {
            load(
                descriptor(&format!("identity = \"{}\"\n{pin}", "11".repeat(32)))
                    .replace("tee = \"sgx\"", &format!("tee = \"{tee}\"")),
            )
        };
        let pinned = format!("provider_key_fingerprint = \"{}\"\n", "22".repeat(32));
        assert!(check_self_contained(&symmetric("trustzone", &pinned)).is_ok());
        assert!(check_self_contained(&symmetric("sancus", &pinned)).is_ok());
        // Unpinned, whoever reaches the governor first would choose the key it appraises with.
        for tee in ["trustzone", "sancus"] {
            let e = check_self_contained(&symmetric(tee, ""))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("node `n1` is `{tee}`"))
                    && e.contains("pins no `provider_key_fingerprint`")
                    && e.contains("--fingerprint"),
                "{e}"
            );
        }
        let native = load(
            descriptor(&format!("identity = \"{}\"\n", "11".repeat(32)))
                .replace("tee = \"sgx\"", "tee = \"native\"")
                + "allow_insecure = true\n",
        );
        let e = check_self_contained(&native).unwrap_err().to_string();
        assert!(e.contains("is `native`: it attests nothing"), "{e}");
    }

    #[test]
    fn a_symmetric_node_is_appraised_with_the_provider_key_handed_in_memory() {
        let bytes = b"the module".to_vec();
        let key = |b: u8| ProviderKey::new(aex_crypto::SecretKey::from_bytes([b; 32]));
        let mut tz = bundle(&[("m", bundled(&bytes))]);
        tz.descriptor = descriptor(&format!(
            "identity = \"{}\"\nprovider_key_fingerprint = \"{}\"\n",
            "11".repeat(32),
            hex::encode(key(9).fingerprint())
        ))
        .replace("tee = \"sgx\"", "tee = \"trustzone\"");
        let e = refusal(open_with(&tz, &bytes));
        assert!(
            e.contains("node `n1` is `trustzone`, and the governor holds no provider key"),
            "{e}"
        );
        assert!(e.contains("aex governor provider-key n1"), "{e}");
        let keys = BTreeMap::from([("n1".to_owned(), key(9)), ("elsewhere".to_owned(), key(8))]);
        let (app, _) = open_keyed(&tz, &bytes, keys).unwrap();
        match app.trust_anchor("n1").unwrap() {
            crate::app::Anchor::Provider(k) => assert_eq!(k.key_id(), key(9).key_id()),
            _ => panic!("a trustzone node is appraised with its provider key"),
        }
        // Another key than the pinned one is never used: the error names both fingerprints
        // and never the key.
        let keys = BTreeMap::from([("n1".to_owned(), key(8))]);
        let (app, _) = open_keyed(&tz, &bytes, keys).unwrap();
        let e = match app.trust_anchor("n1") {
            Err(e) => e.to_string(),
            Ok(_) => panic!("an unpinned key was taken"),
        };
        for part in [
            hex::encode(key(8).fingerprint()),
            hex::encode(key(9).fingerprint()),
            "node `n1`".to_owned(),
        ] {
            assert!(e.contains(&part), "`{part}` in {e}");
        }
        assert!(!e.contains(&hex::encode([8u8; 32])), "{e}");
    }
}
