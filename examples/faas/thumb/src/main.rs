//! The faas example's function service: `thumbnail` (a PPM or PGM image scaled down to 64
//! pixels on its longer side) under trusted metering, served over attested HTTPS.
//!
//! The entry point `start` (called by `aex up` with `{"port": N}`) serves attested HTTPS
//! (`aex::tls`) with a certificate whose evidence also binds the module's receipt public key
//! (the extra key `aex receipt v1`), so a client that verified the certificate knows which key
//! signs its receipts. `POST /fn/thumbnail` from a client with a certificate (mutual TLS)
//! invokes the function for that client's key: the thumbnail in the body, the signed receipt
//! in the header `Aex-Receipt` (docs/PROTOCOL.md §12). `GET /` answers what the module serves.
//!
//! Persistent: the per-client sequence numbers and the TLS key are in the sealed state, so a
//! restart neither reissues a number nor changes the key clients see; the receipt key derives
//! from the platform's sealing key and is never stored.
#![allow(
    clippy::disallowed_macros,
    reason = "module code: stderr is the module's log, which the node keeps (stdout is its link)"
)]

mod thumbnail;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use aex::metering::{Function, Meter};
use aex::{tls, Context};
use aex_example_http::functions::{self, RECEIPT_KEY_NAME};
use aex_example_http::Response;
use serde::{Deserialize, Serialize};

aex::metering::count_heap!();

/// The functions clients may invoke.
const FUNCTIONS: &[Function] = &[Function::new("thumbnail", thumbnail::thumbnail)];

/// The argument of `start`.
#[derive(Deserialize)]
struct StartArgs {
    /// TCP port to listen on (`0`: any free port).
    port: u16,
}

/// The sealed state: the meter's sequence numbers and the TLS key.
#[derive(Default, Serialize, Deserialize)]
struct Thumb {
    meter: Meter,
    tls: tls::KeptIdentity,
    /// The port the server listens on, once started (not state: a restarted process serves
    /// again when `start` is called again).
    #[serde(skip)]
    port: Option<u16>,
}

/// What `start` answers (shown by `aex up`).
#[derive(Serialize)]
struct Started {
    url: String,
    /// The receipt public key, hex (also attested in the certificate).
    receipt_key: String,
}

#[aex::module(persistent)]
impl Thumb {
    /// Starts the HTTPS server on loopback once; asking again for the same port succeeds.
    #[entry]
    fn start(&mut self, ctx: &mut Context, args: StartArgs) -> Result<Started, String> {
        let receipt_key = self.meter.public_key(ctx);
        if let Some(port) = self.port {
            return match port == args.port || args.port == 0 {
                true => Ok(started(port, &receipt_key)),
                false => Err(format!("the server already runs on port {port}")),
            };
        }
        let identity = self.tls.identity().map_err(|e| e.to_string())?;
        let options = tls::Options::default().extra(RECEIPT_KEY_NAME, &receipt_key.0);
        let attested = tls::Attested::in_module::<Thumb>(ctx, identity, &options)
            .map_err(|e| e.to_string())?;
        let handle = ctx.handle::<Thumb>();
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), args.port);
        let addr =
            aex_example_http::start_attested(addr, attested, tls::Limits::default(), move |r| {
                functions::invoke(&handle, FUNCTIONS, |t: &mut Thumb| &mut t.meter, r)
                    .unwrap_or_else(|| match (r.method, r.path) {
                        ("GET", "/") => Response::text(
                            200,
                            "POST /fn/thumbnail with a PPM (P6) or PGM (P5) image, over mutual TLS",
                        ),
                        _ => Response::text(404, "not found"),
                    })
            })?;
        self.port = Some(addr.port());
        Ok(started(addr.port(), &receipt_key))
    }
}

fn started(port: u16, key: &aex::metering::ReceiptPublicKey) -> Started {
    Started {
        url: format!("https://127.0.0.1:{port}/"),
        receipt_key: key.to_string(),
    }
}

aex::main!(Thumb);
