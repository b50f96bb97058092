//! The governor's attested certificate: what it attests besides the TLS key (the constitution
//! in force and the deployer key), and serving a new one without a restart when either
//! changes (a change of members or rules, a recovery). Below the modules that cause such a
//! change, so they reach it without importing each other.

use std::sync::OnceLock;

use aex::{tls, Handle};
use aex_governance::CERTIFICATE_KEY_NAME;

use crate::{Governor, IDENTITY_KEY_NAME};

/// The running server, re-attested after a change.
static SERVER: OnceLock<tls::Server> = OnceLock::new();

/// Keeps the server `start` started, to re-attest it after a change.
pub fn serving(server: tls::Server) {
    let _ = SERVER.set(server);
}

/// What the certificate attests besides the TLS key: the constitution in force and the
/// governor's deployer key.
pub fn certificate_options(constitution: &[u8; 32], deployer: &[u8; 32]) -> tls::Options {
    tls::Options::default()
        .extra(CERTIFICATE_KEY_NAME, constitution)
        .extra(IDENTITY_KEY_NAME, deployer)
}

/// Serves a certificate attesting the constitution now in force, from the same kept key
/// (also after a recovery, whose server started with no deployer key to attest).
pub fn reattest(handle: &Handle<Governor>) -> Result<(), String> {
    let Some(server) = SERVER.get() else {
        return Ok(());
    };
    let (identity, digest, deployer) = handle
        .call(|g: &mut Governor, _ctx| -> Result<_, String> {
            let digest = g
                .held
                .as_ref()
                .ok_or("no book")?
                .book
                .constitution()
                .digest();
            let deployer = g.deployer.get_or_make()?.public();
            let identity = g.tls.identity().map_err(|e| e.to_string())?;
            Ok((identity, digest, deployer))
        })
        .map_err(|e| e.to_string())??;
    let options = certificate_options(&digest, &deployer);
    let attested =
        tls::Attested::new(identity, handle.clone(), &options).map_err(|e| e.to_string())?;
    crate::keep_certificate(&attested);
    server.replace(attested);
    Ok(())
}
