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
//! Not done yet: the governor neither attests modules nor delivers keys, so an accepted
//! proposal is not applied by it; nor does it apply a change of constitution.
#![allow(
    clippy::disallowed_macros,
    reason = "module code: stderr is the module's log, which the node keeps (stdout is its link)"
)]

mod service;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

use aex::{tls, Context};
use aex_example_http::Response;
use aex_governance::{Document, CERTIFICATE_KEY_NAME};
use serde::{Deserialize, Serialize};
use service::{Body, Held};

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
}

/// The sealed state.
#[derive(Default, Serialize, Deserialize)]
struct Governor {
    /// The book, once `start` gave the constitution.
    held: Option<Held>,
    /// The TLS key, kept so that members see the same key across restarts.
    tls: tls::KeptIdentity,
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
        let digest = service::adopt(&mut self.held, &args.application, &args.constitution)?;
        if let Some(port) = self.port {
            return match port == args.port || args.port == 0 {
                true => Ok(started(port, &digest)),
                false => Err(format!("the server already runs on port {port}")),
            };
        }
        let identity = self.tls.identity().map_err(|e| e.to_string())?;
        let options = tls::Options::default().extra(CERTIFICATE_KEY_NAME, &digest);
        let attested = tls::Attested::in_module::<Governor>(ctx, identity, &options)
            .map_err(|e| e.to_string())?;
        let handle = ctx.handle::<Governor>();
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), args.port);
        let addr =
            aex_example_http::start_attested(addr, attested, tls::Limits::default(), move |r| {
                let (method, path, body) =
                    (r.method.to_owned(), r.path.to_owned(), r.body.to_vec());
                // Committed before it is answered: a reading expires proposals, and a
                // member must never see a ballot counted that a crash would forget.
                let answered = handle.call_committed(move |g: &mut Governor, _ctx| {
                    g.held
                        .as_mut()
                        .map(|held| service::answer(held, &method, &path, &body, wall_ms()))
                });
                match answered {
                    Ok(Some(a)) => response(a),
                    Ok(None) => Response::text(503, "the governor has no constitution yet"),
                    Err(e) => Response::text(503, &format!("governor unavailable: {e}")),
                }
            })?;
        self.port = Some(addr.port());
        Ok(started(addr.port(), &digest))
    }
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
