//! The plaintext of a reply on a request/handler connection.
//!
//! ```text
//! reply = request_counter:u64be || status:u8 || body
//! status 0: body is the handler's result; status 1: body is a UTF-8 failure message
//! ```
//!
//! Echoing the request's counter binds the reply to its request; the status lets a handler that
//! fails say so authentically instead of leaving the requester to time out.

/// Builds a reply plaintext.
pub fn encode(request_counter: u64, result: Result<&[u8], &str>) -> Vec<u8> {
    let (status, body) = match result {
        Ok(bytes) => (0u8, bytes),
        Err(message) => (1u8, message.as_bytes()),
    };
    let mut out = Vec::with_capacity(9 + body.len());
    out.extend_from_slice(&request_counter.to_be_bytes());
    out.push(status);
    out.extend_from_slice(body);
    out
}

/// A decoded reply: the request counter it answers and the handler's outcome.
pub type Decoded = (u64, Result<Vec<u8>, String>);

/// Parses a reply plaintext; `None` if it is too short or has an unknown status.
pub fn decode(plaintext: &[u8]) -> Option<Decoded> {
    let (counter, rest) = plaintext.split_first_chunk::<8>()?;
    let (&status, body) = rest.split_first()?;
    let outcome = match status {
        0 => Ok(body.to_vec()),
        1 => Err(String::from_utf8_lossy(body).into_owned()),
        _ => return None,
    };
    Some((u64::from_be_bytes(*counter), outcome))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_both_outcomes() {
        assert_eq!(decode(&encode(7, Ok(b"x"))), Some((7, Ok(b"x".to_vec()))));
        assert_eq!(
            decode(&encode(9, Err("no such item"))),
            Some((9, Err("no such item".into())))
        );
        assert_eq!(decode(&[0; 8]), None);
        let mut bad = encode(1, Ok(b""));
        bad[8] = 7;
        assert_eq!(decode(&bad), None);
    }

    proptest! {
        #[test]
        fn arbitrary_plaintexts_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }
    }
}
