//! The verifying client of attested HTTPS (`aex-client`) towards an application's web
//! module: the policy comes from the deployer's state, as `aex fetch` takes it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aex_client::{ClientError, ClientKey, Policy, Verified};
use aex_deploy::{App, Identity};

use crate::cluster::AppDir;

/// Connect and read timeout of one exchange.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The client policy for `module` of `app`, as the deployer attested it.
pub fn policy(app: &AppDir, module: &str) -> Policy {
    let (identity, _) =
        Identity::load_or_create(&app.identity).expect("the test deployer's identity");
    let opened = App::open(app.path(), Arc::new(identity)).expect("open the application");
    aex_deploy::ops::tls::client_policy(&opened, module).expect("a client policy for the module")
}

/// `METHOD path` over attested HTTPS to `addr` under `policy`, with fresh evidence bound to
/// the session first, presenting `key` if given: what was verified, the status and the body;
/// or the client's refusal.
pub fn https_with(
    policy: &Policy,
    addr: SocketAddr,
    key: Option<&ClientKey>,
    method: &str,
    path: &str,
) -> Result<(Verified, u16, String), ClientError> {
    let mut session = aex_client::connect(addr, policy, key, TIMEOUT)?;
    session.fresh_evidence()?;
    let verified = session.verified().clone();
    let (code, body) = session.request(method, path)?;
    Ok((verified, code, body))
}

/// `METHOD path` over attested HTTPS to `addr`, verified under `policy` (no fresh evidence:
/// the handshake proves the module's key is alive): the status code and the body. Panics on a
/// refusal, which no test of a working module expects.
pub fn https(policy: &Policy, addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let answer = aex_client::connect(addr, policy, None, TIMEOUT)
        .and_then(|session| session.request(method, path));
    match answer {
        Ok(answer) => answer,
        Err(e) => panic!("{method} {path} at {addr}: {e}"),
    }
}
