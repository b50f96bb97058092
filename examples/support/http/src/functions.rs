//! Metered functions over attested HTTPS (docs/PROTOCOL.md §12, "Over attested HTTPS"): the
//! link between a module's TLS server and its `aex::metering::Meter`.
//!
//! `POST /fn/NAME` with the input as the body, from a client that presented a certificate
//! (mutual TLS): the client is the SHA-256 of that certificate's public key, the same
//! `ClientId` the client computes of its own key. The answer is the output (`200`) or the
//! function's error message (`422`), with the signed receipt in the header `Aex-Receipt`
//! (hex). The call runs through `Handle::call_committed`, so for a persistent module the
//! answer, receipt included, leaves only once the state holding its sequence number is
//! committed: a number a client has seen is never issued again after a restart.

use aex::metering::{ClientId, Function, Meter};
use aex::Handle;

use crate::{Request, Response};

/// Where functions are invoked: `POST /fn/NAME`.
pub const PREFIX: &str = "/fn/";
pub use aex::metering::answer::{RECEIPT_HEADER, RECEIPT_KEY_NAME};

/// Answers `request` if its path is under [`PREFIX`] (`None` otherwise, for the module's other
/// routes): invokes the function it names among `functions` for the client's key, on the
/// module's thread, with the meter `meter` picks out of the module's state.
pub fn invoke<S: 'static>(
    handle: &Handle<S>,
    functions: &'static [Function],
    meter: fn(&mut S) -> &mut Meter,
    request: &Request<'_>,
) -> Option<Response> {
    let name = request.path.strip_prefix(PREFIX)?;
    if request.method != "POST" {
        return Some(Response::text(405, "invoke a function with POST"));
    }
    if !functions.iter().any(|f| f.name == name) {
        let known: Vec<&str> = functions.iter().map(|f| f.name).collect();
        return Some(Response::text(
            404,
            &format!(
                "no function `{name}` (this module has: {})",
                known.join(", ")
            ),
        ));
    }
    let Some(client) = request.client else {
        return Some(Response::text(
            401,
            "functions are billed to a client key: connect with a client certificate (mutual TLS)",
        ));
    };
    let client = ClientId(client.0);
    let name = name.to_owned();
    let input = request.body.to_vec();
    let done = handle.call_committed(move |state, ctx| {
        meter(state).invoke(ctx, functions, client, &name, &input)
    });
    Some(match done {
        Ok(Ok(done)) => {
            let receipt = crate::encode_hex(&done.receipt.encode());
            let response = match done.result {
                Ok(output) => Response::bytes(200, "application/octet-stream", output),
                // Exactly the bytes the receipt hashes (no newline added), so that the client
                // checks the receipt of a failed call as of any other.
                Err(message) => {
                    Response::bytes(422, "text/plain; charset=utf-8", message.into_bytes())
                }
            };
            response.header(RECEIPT_HEADER, receipt)
        }
        // Nothing ran (the clock is unreadable, or the client used every number).
        Ok(Err(e)) => Response::text(500, &e.to_string()),
        Err(e) => Response::text(503, &format!("module unavailable: {e}")),
    })
}
