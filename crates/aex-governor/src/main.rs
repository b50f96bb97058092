//! The governor: the module that holds a consortium's book of proposals and ballots in a TEE,
//! so that no member's machine holds it (issue 20; docs/ARCHITECTURE.md, "Governance").
//!
//! This is its first cut. It is `persistent`: its sealed state holds the
//! [`aex_governance::Book`] (and with it the constitution in force), committed after every
//! call, so a restart of its process resumes the same book and a rolled-back state is refused
//! by the runtime.
//!
//! * The entry point `start` takes `{"port": N, "application": "NAME", "constitution": DOC}`
//!   (DOC: [`aex_governance::Document`], the descriptor's `[governance]` as JSON). The first
//!   call fixes the constitution; a later call (after a restart, to serve again) must give
//!   the very same one, or is refused. Since whoever calls `start` could pass a constitution
//!   of their own, the TLS certificate attests its digest
//!   ([`aex_governance::Constitution::digest`]) as the extra key
//!   [`aex_governance::CERTIFICATE_KEY_NAME`]: each member's verifying client checks both the
//!   governor's measurement and that digest against their own descriptor.
//! * It serves attested HTTPS (docs/PROTOCOL.md §13): `POST /proposals`, `POST /ballots`,
//!   `POST /proposals/ID/ballots`, `POST /withdrawals` take COSE_Sign1 objects signed by
//!   members (self-authenticating: no client certificate is needed); `GET /proposals`,
//!   `GET /proposals/ID` and `GET /constitution` show the book. A refusal is a 4xx whose
//!   body is the book's own error text. Every answer leaves only after the state it saw or
//!   made is committed (`Handle::call_committed`), so a member never sees a ballot counted
//!   that a crash could forget.
//!
//! * It carries out accepted `deploy`, `update` and `move` proposals itself ([`apply`]): it
//!   deploys the bundle the proposal approved (the descriptor and the members' builds, sent
//!   to `PUT /binaries/D/OFFSET` and `POST /bundles` first; [`store`]) under its own deployer
//!   identity, made here and sealed, whose public key (`GET /identity`, and the certificate's
//!   extra key [`IDENTITY_KEY_NAME`]) is the only one the application's nodes admit for it.
//!   The deployer state with every module and connection key stays in the sealed state.
//!   `GET /proposals/ID/outcome` says how it went; `POST /proposals/ID/apply` runs a failed
//!   one again; `GET /ledger` gives the audit ledger its deployments append to. On
//!   `trustzone` and `sancus` nodes it appraises with the provider keys of its identity that
//!   the nodes' operators hand it (`PUT /provider-keys/NODE`, kept sealed; [`provider`]).
//!
//! * It carries out accepted `disable` proposals ([`disable`]): their change is the digest
//!   of an order (`POST /orders`, `GET /orders/DIGEST`) naming the modules to disable.
//! * It puts accepted changes of members or rules in force ([`members`]): their documents
//!   go to `POST /constitutions` first; once applied, the certificate attests the new
//!   constitution's digest (re-attested without a restart), and a later `start` must give
//!   the constitution in force.
//! * It keeps members' recovery shares and an encrypted backup ([`recovery`]): `start` with
//!   `"recover": true` on a new node restores a governor whose node was lost, from `k`
//!   members' shares (`/recovery` routes).
#![allow(
    clippy::disallowed_macros,
    reason = "module code: stderr is the module's log, which the node keeps (stdout is its link)"
)]

mod apply;
mod attest;
mod decided;
mod disable;
mod job;
mod members;
mod moves;
mod provider;
mod recovery;
mod service;
mod store;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aex::{tls, Context};
use aex_crypto::SigningIdentity;
use aex_example_http::Response;
use aex_governance::{Document, ProposalId};
use apply::Applier;
use job::{Outcome, Outcomes};
use serde::{Deserialize, Serialize};
use service::{Body, Held};
use store::Store;
use zeroize::Zeroizing;

/// The certificate's extra key holding the governor's deployer key (32 bytes, Ed25519): what
/// the application's nodes admit.
pub const IDENTITY_KEY_NAME: &str = "aex governor identity v1";

/// The one thread that carries out accepted proposals.
static APPLIER: Applier = Applier::new();

/// The attested certificate the server presents (DER): the ledger records it before each
/// proposal carried out, as the evidence that its signing key is this governor's.
static CERTIFICATE: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// The certificate the server presents now (empty before the first `start`).
fn certificate() -> Vec<u8> {
    CERTIFICATE.lock().map(|c| c.clone()).unwrap_or_default()
}

/// Keeps `attested`'s certificate as the one the ledger records from now on.
fn keep_certificate(attested: &tls::Attested) {
    if let Ok(mut kept) = CERTIFICATE.lock() {
        *kept = attested.certificate().to_vec();
    }
}

/// The argument of `start`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartArgs {
    /// TCP port to listen on (`0`: any free port).
    port: u16,
    /// The governed application (proposals name it).
    application: String,
    /// The constitution, as a document.
    constitution: Document,
    /// The directory for members' binaries and bundles and the audit ledger (default: the
    /// system's temporary directory, `aex-governor/APPLICATION`). Nothing in it is secret.
    #[serde(default)]
    data: Option<PathBuf>,
    /// Restore a lost governor from members' recovery shares and backup instead of adopting
    /// the constitution anew ([`recovery`]); ignored by a governor that holds a book.
    #[serde(default)]
    recover: bool,
}

/// The governor's deployer key: made in the TEE at the first `start`, kept sealed.
#[derive(Default, Serialize, Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
struct DeployerKey {
    /// The Ed25519 seed, hex.
    seed: Option<String>,
}

impl DeployerKey {
    fn seed(&self) -> Option<[u8; 32]> {
        hex::decode(self.seed.as_ref()?.as_bytes())
            .ok()?
            .try_into()
            .ok()
    }

    /// The key, made now if there is none.
    fn get_or_make(&mut self) -> Result<SigningIdentity, String> {
        if self.seed.is_none() {
            let seed = Zeroizing::new(aex_crypto::random_bytes::<32>());
            self.seed = Some(hex::encode(*seed));
        }
        let seed = Zeroizing::new(self.seed().ok_or("the sealed deployer key is damaged")?);
        Ok(SigningIdentity::from_seed(&seed))
    }
}

/// The sealed state.
#[derive(Default, Serialize, Deserialize)]
struct Governor {
    /// The book, once `start` gave the constitution.
    held: Option<Held>,
    /// The TLS key, kept so that members see the same key across restarts.
    tls: tls::KeptIdentity,
    /// The deployer key the governed application's nodes admit.
    #[serde(default)]
    deployer: DeployerKey,
    /// The governed application's deployer state (aex-deploy's `State`, JSON): its module and
    /// connection keys, which nothing outside this TEE holds.
    #[serde(default)]
    deployed: Option<String>,
    /// How each accepted proposal's application went, by id (hex).
    #[serde(default)]
    outcomes: Outcomes,
    /// The proposals decided without being carried out that the ledger already holds.
    #[serde(default)]
    recorded: decided::Recorded,
    /// The provider keys of the deployer key on the application's symmetric nodes.
    #[serde(default)]
    provider_keys: provider::ProviderKeys,
    /// The recovery key and members' shares of it ([`recovery`]).
    #[serde(default)]
    recovery: recovery::Kept,
    /// The port the server listens on, once started (not state: a restarted process serves
    /// again when `start` is called again).
    #[serde(skip)]
    port: Option<u16>,
}

/// What `start` answers.
#[derive(Serialize)]
struct Started {
    url: String,
    /// The constitution's digest, hex (also attested in the certificate).
    constitution: String,
}

#[aex::module(persistent)]
impl Governor {
    /// Adopts the constitution (once) and serves attested HTTPS on loopback; asking again
    /// with the same constitution and port succeeds.
    #[entry]
    fn start(&mut self, ctx: &mut Context, args: StartArgs) -> Result<Started, String> {
        let digest = match args.recover && self.held.is_none() {
            true => recovery::begin(self, &args.application, &args.constitution)?,
            false => service::adopt(&mut self.held, &args.application, &args.constitution)?,
        };
        if let Some(port) = self.port {
            return match port == args.port || args.port == 0 {
                true => Ok(started(port, &digest)),
                false => Err(format!("the server already runs on port {port}")),
            };
        }
        // A governor collecting shares has no deployer key until it recovers one.
        let deployer = match self.held {
            Some(_) => Some(self.deployer.get_or_make()?.public()),
            None => None,
        };
        let data = args.data.clone().unwrap_or_else(|| {
            std::env::temp_dir()
                .join("aex-governor")
                .join(&args.application)
        });
        let store = Arc::new(Store::open(&data)?);
        let identity = self.tls.identity().map_err(|e| e.to_string())?;
        let options = match &deployer {
            Some(deployer) => attest::certificate_options(&digest, deployer),
            // Collecting shares: no deployer key to attest until one is recovered.
            None => tls::Options::default().extra(aex_governance::CERTIFICATE_KEY_NAME, &digest),
        };
        let attested = tls::Attested::in_module::<Governor>(ctx, identity, &options)
            .map_err(|e| e.to_string())?;
        keep_certificate(&attested);
        let handle = ctx.handle::<Governor>();
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), args.port);
        let (serving, kicking) = (store.clone(), handle.clone());
        let server =
            aex_example_http::serve_attested(addr, attested, tls::Limits::default(), move |r| {
                route(&handle, &serving, r.method, r.path, r.body)
            })?;
        let addr = server.local_addr();
        attest::serving(server);
        self.port = Some(addr.port());
        if self.held.is_some() {
            recovery::ensure(self)?;
        }
        // A proposal accepted before a restart, or cut short by one, is carried out now.
        APPLIER.kick(kicking, store);
        Ok(started(addr.port(), &digest))
    }
}

/// Answers one request: the store's routes, the governor's identity and outcomes, or the
/// book's routes. A change to the book may have accepted a proposal: the applier is kicked.
fn route(
    handle: &aex::Handle<Governor>,
    store: &Arc<Store>,
    method: &str,
    path: &str,
    body: &[u8],
) -> Response {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    if let Some(answer) = store.answer(method, &segments, body) {
        return answer;
    }
    if let Some(answer) = members::answer(store, method, &segments, body) {
        return answer;
    }
    if (method, segments.as_slice()) == ("POST", ["proposals"].as_slice()) {
        if let Some(refused) = members::refused_proposal(handle, store, body) {
            return refused;
        }
    }
    if let Some(answer) = provider::answer(handle, method, &segments, body) {
        if method == "PUT" && answer.status() == 200 {
            recovery::refresh(handle, store);
        }
        return answer;
    }
    if let Some(answer) = recovery::answer(handle, store, method, &segments, body) {
        return answer;
    }
    match (method, segments.as_slice()) {
        ("GET", ["identity"]) => {
            // Read each time: a recovered governor's key is the one it recovered.
            let seed = handle.call(|g: &mut Governor, _ctx| g.deployer.seed());
            return match seed {
                Ok(Some(seed)) => {
                    let public = SigningIdentity::from_seed(&Zeroizing::new(seed)).public();
                    let key = serde_json::json!({ "key": hex::encode(public) });
                    Response::bytes(200, "application/json", key.to_string().into_bytes())
                }
                Ok(None) => Response::text(503, "no deployer key yet: the governor recovers"),
                Err(e) => Response::text(503, &format!("governor unavailable: {e}")),
            };
        }
        ("GET", ["proposals", id, "outcome"]) => {
            let Some(id) = parse_id(id) else {
                return Response::text(400, "a proposal id is 64 hex digits");
            };
            let outcome = handle.call(move |g: &mut Governor, _ctx| {
                g.outcomes.get(&id.hex()).cloned().unwrap_or(Outcome {
                    state: "waiting".into(),
                    error: None,
                    report: None,
                })
            });
            return match outcome {
                Ok(o) => Response::bytes(
                    200,
                    "application/json",
                    serde_json::to_vec(&o).unwrap_or_default(),
                ),
                Err(e) => Response::text(503, &format!("governor unavailable: {e}")),
            };
        }
        ("POST", ["proposals", id, "apply"]) => {
            let Some(id) = parse_id(id) else {
                return Response::text(400, "a proposal id is 64 hex digits");
            };
            return match handle.call_committed(move |g: &mut Governor, _ctx| g.retry(&id)) {
                Ok(Ok(())) => {
                    APPLIER.kick(handle.clone(), store.clone());
                    Response::text(202, "queued")
                }
                Ok(Err(e)) => Response::text(409, &e),
                Err(e) => Response::text(503, &format!("governor unavailable: {e}")),
            };
        }
        _ => {}
    }
    let (method, path, body) = (method.to_owned(), path.to_owned(), body.to_vec());
    let posted = method == "POST";
    // Committed before it is answered: a reading expires proposals, and a member must never
    // see a ballot counted that a crash would forget.
    let answered = handle.call_committed(move |g: &mut Governor, _ctx| {
        g.held
            .as_mut()
            .map(|held| service::answer(held, &method, &path, &body, wall_ms()))
    });
    match answered {
        Ok(Some(a)) => {
            if posted && a.status < 300 {
                recovery::refresh(handle, store);
                APPLIER.kick(handle.clone(), store.clone());
            }
            response(a)
        }
        Ok(None) => Response::text(503, "the governor has no constitution yet"),
        Err(e) => Response::text(503, &format!("governor unavailable: {e}")),
    }
}

fn parse_id(text: &str) -> Option<ProposalId> {
    aex_governance::bundle::hex_digest(text).map(ProposalId)
}

fn started(port: u16, digest: &[u8; 32]) -> Started {
    Started {
        url: format!("https://127.0.0.1:{port}/"),
        constitution: hex::encode(digest),
    }
}

fn response(a: service::Answer) -> Response {
    match a.body {
        Body::Json(json) => Response::bytes(a.status, "application/json", json.into_bytes()),
        Body::Text(text) => Response::text(a.status, &text),
    }
}

/// The host's clock, in milliseconds since the Unix epoch (0 if it reads before the epoch:
/// the book's clock then stays where it was, see [`Held::tick`]).
fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

aex::main!(Governor);
