//! Carrying out an accepted `disable` proposal, and keeping the orders such proposals name.
//!
//! A `disable` proposal's change is the digest of an [`aex_governance::DisableOrder`] (the
//! application and the modules to disable). Its proposer sends the order first
//! (`POST /orders`, bounded by [`aex_governance::order::MAX_ORDER`] before anything is
//! authenticated, and by the store's total); members read it back (`GET /orders/DIGEST`) and
//! check its digest before they approve. Once the proposal is accepted, the applier
//! ([`crate::apply`]) runs [`run`]: it reads the order stored under the approved digest and
//! checks it again (the store is the host's, not trusted), opens the application on the
//! descriptor of the latest deployment the governor applied (its bundle, checked against that
//! proposal's digest: not a file the host could swap), and disables each module with
//! aex-deploy's governed path under the governor's key. The ledger records the proposal and
//! its ballots first, each module's disabling, then `proposal applied`.
//!
//! A module the order names that the governor holds no record of is not deployed (never, or
//! disabled already: a retry after a partial failure finds the first modules done), and is
//! said so in the report rather than failing the order.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use aex_crypto::SigningIdentity;
use aex_deploy::error::error_chain as chain;
use aex_deploy::Identity;
use aex_example_http::Response;
use aex_governance::bundle::hex_digest;
use aex_governance::order::MAX_ORDER;
use aex_governance::{Book, DisableOrder, Status};
use serde::Serialize;

use crate::job::{deploys, load_bundle, note_authority, Job};
use crate::store::{Store, MAX_STORE};

/// What `POST /orders` answers.
#[derive(Serialize)]
struct Kept {
    digest: String,
    modules: Vec<String>,
}

impl Store {
    fn order_path(&self, digest: &str) -> std::path::PathBuf {
        self.dir.join("orders").join(digest)
    }

    /// An order's bytes, by the digest a proposal names.
    pub(crate) fn order(&self, digest: &[u8; 32]) -> std::io::Result<Vec<u8>> {
        fs::read(self.order_path(&hex::encode(digest)))
    }

    /// `POST /orders`: keeps an order (in its one encoding) by its digest.
    pub(crate) fn put_order(&self, body: &[u8]) -> Response {
        if body.len() > MAX_ORDER {
            return Response::text(413, &format!("an order has at most {MAX_ORDER} bytes"));
        }
        let order = match DisableOrder::from_bytes(body) {
            Ok(order) => order,
            Err(e) => return Response::text(400, &e.to_string()),
        };
        let digest = hex::encode(order.digest());
        let _guard = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let path = self.order_path(&digest);
        if !path.exists() {
            if self.used() + body.len() as u64 > MAX_STORE {
                return Response::text(507, &format!("the store is full ({MAX_STORE} bytes)"));
            }
            let tmp = path.with_extension("part");
            if let Err(e) = fs::write(&tmp, body).and_then(|()| fs::rename(&tmp, &path)) {
                return Response::text(507, &format!("cannot store the order: {e}"));
            }
        }
        let kept = Kept {
            digest,
            modules: order.modules,
        };
        match serde_json::to_vec(&kept) {
            Ok(json) => Response::bytes(201, "application/json", json),
            Err(e) => Response::text(500, &format!("cannot encode the answer: {e}")),
        }
    }

    /// `GET /orders/DIGEST`: the order's bytes, exactly as kept.
    pub(crate) fn get_order(&self, digest: &str) -> Response {
        match hex_digest(digest) {
            Some(d) => match self.order(&d) {
                Ok(bytes) => Response::bytes(200, "application/json", bytes),
                Err(_) => Response::text(404, &format!("no order {digest}")),
            },
            None => Response::text(400, "a digest is 64 hex digits"),
        }
    }
}

/// The bundle of the latest deployment applied (`deploy`, `update` or `move`): what runs now.
/// The book forgets decided proposals beyond [`aex_governance::book::MAX_DECIDED`]; after
/// that many decisions without a deployment, there is none to disable from.
pub fn in_force(book: &Book) -> Option<[u8; 32]> {
    book.records()
        .filter(|r| r.status == Status::Applied && deploys(r.proposal.action))
        .max_by_key(|r| r.decided_ms)
        .map(|r| r.proposal.change)
}

/// The order an accepted proposal approved, checked against its digest and the application.
fn load_order(job: &Job, store: &Store) -> Result<DisableOrder, String> {
    let digest = hex::encode(job.change);
    let bytes = store
        .order(&job.change)
        .map_err(|_| format!("no disable order {digest} was sent (POST /orders)"))?;
    let order = DisableOrder::from_bytes(&bytes).map_err(|e| e.to_string())?;
    if order.digest() != job.change {
        return Err(format!(
            "the order stored as {digest} is not the one approved"
        ));
    }
    if order.application != job.application {
        return Err(format!(
            "the order is for application `{}`, the governor governs `{}`",
            order.application, job.application
        ));
    }
    Ok(order)
}

/// Disables what an accepted `disable` proposal's order names: the new deployer state (when
/// it got as far as opening the application) and a report or the reason it failed.
pub fn run(job: Job, store: &Store) -> (Option<String>, Result<String, String>) {
    let order = match load_order(&job, store) {
        Ok(order) => order,
        Err(e) => return (None, Err(e)),
    };
    let Some(in_force) = job.in_force else {
        return (
            None,
            Err("no deployment of the application was applied: nothing runs to disable".into()),
        );
    };
    let bundle = match load_bundle(&in_force, &job.application, store) {
        Ok(bundle) => bundle,
        Err(e) => return (None, Err(format!("the deployment in force: {e}"))),
    };
    let identity = Arc::new(Identity::from_signing(
        SigningIdentity::from_seed(&job.seed),
        Path::new("the governor's identity"),
    ));
    let opened = aex_deploy::bundle::open(
        &store.workdir(),
        &bundle,
        &|d| store.binary(d),
        identity,
        job.state,
        job.provider_keys.keys(),
    );
    let mut app = match opened {
        Ok((app, _)) => app,
        Err(e) => return (None, Err(chain(&e))),
    };
    let record = job.record;
    note_authority(&app, &record);
    let (mut disabled, mut absent) = (vec![], vec![]);
    let mut result = Ok(());
    for module in &order.modules {
        if app.module(module).is_none() {
            absent.push(module.clone());
            continue;
        }
        if let Err(e) = aex_deploy::ops::disable::governed(&mut app, module) {
            result = Err(format!("module `{module}`: {}", chain(&e)));
            break;
        }
        disabled.push(module.clone());
    }
    let result = result.and_then(|()| {
        let id = record.id.hex();
        app.note_governance("proposal applied", &id, &record.proposer, &record.signed);
        app.save_now().map_err(|e| chain(&e))?;
        Ok(format!(
            "disabled {disabled:?}, not deployed (nothing to disable) {absent:?}"
        ))
    });
    let state = serde_json::to_string(app.state()).ok();
    (state, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_are_kept_by_digest_in_their_one_encoding_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let order = DisableOrder::new("app", ["pong".to_owned()]).unwrap();
        let r = store
            .answer("POST", &["orders"], &order.to_bytes())
            .unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(store.order(&order.digest()).unwrap(), order.to_bytes());
        let digest = hex::encode(order.digest());
        let r = store.answer("GET", &["orders", &digest], b"").unwrap();
        assert_eq!(r.status(), 200);
        // Not its one encoding, too large, not a digest, not there.
        let spaced = br#"{ "application":"app","modules":["pong"]}"#;
        assert_eq!(
            store.answer("POST", &["orders"], spaced).unwrap().status(),
            400
        );
        let big = vec![b' '; MAX_ORDER + 1];
        assert_eq!(
            store.answer("POST", &["orders"], &big).unwrap().status(),
            413
        );
        let r = store.answer("GET", &["orders", "zz"], b"").unwrap();
        assert_eq!(r.status(), 400);
        let r = store
            .answer("GET", &["orders", &"ab".repeat(32)], b"")
            .unwrap();
        assert_eq!(r.status(), 404);
    }
}
