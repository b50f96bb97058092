//! The counter-migration example's web front end.
//!
//! The entry point `start` (called by `aex up` with `{"port": N}`) serves attested HTTPS
//! (`aex::tls`: TLS 1.3, a key made inside this module, a certificate carrying its evidence)
//! on a thread of its own: `GET /` answers the count and `POST /increment` adds one and answers the
//! new count, each asked of `counter` by an authenticated request. While `counter` moves to
//! another node its connections are re-keyed, so a request made meanwhile fails and is
//! answered `503`; the next one reaches the new instance, which holds the same count.
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
}

/// The web module's state (also what `aex status` shows).
#[derive(Default, Serialize)]
struct Web {
    /// The port the server listens on, once started.
    port: Option<u16>,
    /// Requests answered with a count from `counter`.
    served: u64,
    /// Requests answered `503` because `counter` did not answer.
    unavailable: u64,
}

#[aex::module(requests(increment, get))]
impl Web {
    /// Starts the HTTP server on loopback once; asking again for the same port succeeds.
    #[entry]
    fn start(&mut self, ctx: &mut Context, args: StartArgs) -> Result<String, String> {
        if let Some(port) = self.port {
            return match port == args.port {
                true => Ok(format!("https://127.0.0.1:{port}/")),
                false => Err(format!("the web server already runs on port {port}")),
            };
        }
        let handle = ctx.handle::<Web>();
        let identity = tls::Identity::generate().map_err(|e| e.to_string())?;
        let attested = tls::Attested::in_module::<Web>(ctx, identity, &tls::Options::default())
            .map_err(|e| e.to_string())?;
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), args.port);
        let addr =
            aex_example_http::start_attested(addr, attested, tls::Limits::default(), move |r| {
                route(r.method, r.path, &handle)
            })?;
        self.port = Some(addr.port());
        Ok(format!("https://{addr}/"))
    }

    /// `{"port": n, "served": n, "unavailable": n}` (shown by `aex status`).
    #[entry]
    fn status(&mut self) -> &Web {
        self
    }
}

fn route(method: &str, path: &str, handle: &Handle<Web>) -> Response {
    let request = match (method, path) {
        ("GET", "/") => Web::GET,
        ("POST", "/increment") => Web::INCREMENT,
        (_, "/" | "/increment") => return Response::text(405, "use GET / or POST /increment"),
        _ => return Response::text(404, "not found"),
    };
    let answer = handle.call(move |web, ctx| {
        let reply = ctx.request(request, b"");
        match reply.is_ok() {
            true => web.served += 1,
            false => web.unavailable += 1,
        }
        reply
    });
    let count = match answer {
        Ok(Ok(reply)) => aex::payload::from_json::<u64>(&reply),
        Ok(Err(e)) => Err(format!("asking counter: {e}")),
        Err(e) => Err(format!("module unavailable: {e}")),
    };
    match count {
        Ok(n) => Response::text(200, &n.to_string()),
        Err(e) => {
            eprintln!("web: {e}");
            Response::text(503, "the counter is not available")
        }
    }
}

aex::main!(Web);
