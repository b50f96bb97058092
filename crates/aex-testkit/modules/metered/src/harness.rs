//! The test harness's TCP way in: what the module's attested HTTPS server will do, without
//! TLS. One connection carries one invocation: a JSON line `{"client","function","input"}` in,
//! a JSON line out (`{"output","failed","receipt"}`, or `{"error"}`). The thread invokes
//! through `Handle::call_committed`, so the receipt leaves only once the state holding its
//! sequence number is committed.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

use aex::Handle;

use crate::{Invocation, Metered};

/// The longest request line read.
const MAX_LINE: u64 = 1 << 20;

/// Listens on a free loopback port, serving on a thread of its own; answers the address.
pub(crate) fn listen(handle: Handle<Metered>) -> Result<String, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot listen: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("no local address: {e}"))?
        .to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let handle = handle.clone();
            std::thread::spawn(move || serve(stream, &handle));
        }
    });
    Ok(addr)
}

fn serve(stream: TcpStream, handle: &Handle<Metered>) {
    let mut line = String::new();
    let mut reader = BufReader::new((&stream).take_limited());
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let answer = match serde_json::from_str::<Invocation>(&line) {
        Err(e) => serde_json::json!({ "error": format!("not an invocation: {e}") }),
        Ok(call) => match handle.call_committed(move |m: &mut Metered, ctx| m.run(ctx, call)) {
            Ok(Ok(answer)) => serde_json::to_value(answer).unwrap_or_default(),
            Ok(Err(e)) => serde_json::json!({ "error": e }),
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        },
    };
    let mut out = &stream;
    let _ = writeln!(out, "{answer}");
}

/// A reader bounded to [`MAX_LINE`] bytes.
trait TakeLimited: std::io::Read + Sized {
    fn take_limited(self) -> std::io::Take<Self> {
        self.take(MAX_LINE)
    }
}

impl<R: std::io::Read> TakeLimited for R {}
