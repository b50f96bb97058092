//! The button-led example's web front end, on the `sgx` node.
//!
//! The entry point `start` (called by `aex up` with `{"port": N}`) opens an attested HTTPS
//! server (`aex::tls`) on a thread of its own: TLS 1.3 with a key made inside this module and
//! a certificate carrying its attestation evidence, so a client checks it talks to this code
//! in this TEE (`aex fetch`, or `curl --cacert` after `aex tls export`). `GET /` answers with
//! the number of presses as plain text,
//! which it asks `db` for with an authenticated request (`requests(get_presses)`): the
//! number comes from the attested counter, over a connection whose key only `web` and `db`
//! hold. Everything else is `404`.
//!
//! The server thread never touches the module's state or keys itself: it goes through an
//! [`aex::Handle`], so the runtime runs its closure between events on the module's thread.
//! What arrives over HTTPS is not authentic (anyone can connect, anonymously or with a client
//! key); only the count is.
//!
//! The HTTP side is the examples' small server (`aex-example-http`).
#![allow(
    clippy::disallowed_macros,
    reason = "module code: stderr is the module's log, which the node keeps (stdout is its link)"
)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use aex::{tls, Context, Handle};
use aex_example_http::Response;
use serde::{Deserialize, Serialize};

/// The argument of `start`.
#[derive(Deserialize)]
struct StartArgs {
    /// TCP port to listen on (`0`: any free port).
    port: u16,
    /// Address to listen on; loopback unless given.
    #[serde(default = "loopback")]
    bind: IpAddr,
}

fn loopback() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

/// The web module's state (also what `aex status` shows).
#[derive(Default, Serialize)]
struct Web {
    /// Whether the server runs.
    started: bool,
    /// The port it listens on.
    port: Option<u16>,
    /// `GET /` requests answered with a count from `db`.
    served: u64,
}

/// What `start` answers.
#[derive(Serialize)]
struct Started {
    url: String,
}

#[aex::module(requests(get_presses))]
impl Web {
    /// Starts the HTTP server once. Asking again for the port it already serves succeeds
    /// (so `aex up` can be re-run); asking for another port fails and changes nothing.
    #[entry]
    fn start(&mut self, ctx: &mut Context, args: StartArgs) -> Result<Started, String> {
        if self.started {
            let port = self.port.unwrap_or_default();
            if port == args.port {
                return Ok(Started {
                    url: format!("https://{}:{port}/", args.bind),
                });
            }
            return Err(format!("the web server already runs on port {port}"));
        }
        let handle = ctx.handle::<Web>();
        let attested = attest(ctx, args.bind).map_err(|e| e.to_string())?;
        let addr = aex_example_http::start_attested(
            SocketAddr::new(args.bind, args.port),
            attested,
            tls::Limits::default(),
            move |r| route(r.method, r.path, &handle),
        )?;
        self.started = true;
        self.port = Some(addr.port());
        Ok(Started {
            url: format!("https://{addr}/"),
        })
    }

    /// `{"started": bool, "port": n, "served": n}` (shown by `aex status`).
    #[entry]
    fn status(&mut self) -> &Web {
        self
    }
}

/// A fresh TLS key and its certificate, with evidence from this node's TEE layer; its names
/// are loopback's and the address bound, if one is named.
fn attest(ctx: &mut Context, bind: IpAddr) -> Result<tls::Attested, tls::TlsError> {
    let mut options = tls::Options::default();
    if !bind.is_unspecified() && !bind.is_loopback() {
        options.names.push(bind.to_string());
    }
    tls::Attested::in_module::<Web>(ctx, tls::Identity::generate()?, &options)
}

/// `GET /`: the press count; anything else is `404`.
fn route(method: &str, path: &str, handle: &Handle<Web>) -> Response {
    if method != "GET" || path != "/" {
        return Response::text(404, "not found");
    }
    match presses(handle) {
        Ok(n) => Response::text(200, &n.to_string()),
        Err(e) => {
            eprintln!("web: {e}");
            Response::text(503, "the press counter is not available")
        }
    }
}

/// The press count, from `db` by an authenticated request made on the module's thread.
fn presses(handle: &Handle<Web>) -> Result<u64, String> {
    let reply = handle
        .call(|web, ctx| {
            let reply = ctx.request(Web::GET_PRESSES, b"");
            if reply.is_ok() {
                web.served += 1;
            }
            reply
        })
        .map_err(|e| format!("module unavailable: {e}"))?
        .map_err(|e| format!("asking db: {e}"))?;
    aex::payload::from_json(&reply).map_err(|e| format!("db's answer: {e}"))
}

aex::main!(Web);
