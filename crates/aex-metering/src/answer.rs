//! What a client checks of the receipt that came back with its own invocation, before it keeps
//! it: signed by the receipt key the module's certificate attests, for this client, this
//! function, this input and this output. A receipt that fails any of these is evidence of
//! nothing the client did (docs/PROTOCOL.md §12, "Over attested HTTPS").

use aex_crypto::sha256;

use crate::receipt::{ClientId, Receipt, ReceiptPublicKey};

/// The name under which a module attests its receipt public key among the extra keys of its
/// attested TLS certificate (`aex::tls::Options::extra`; a client reads it back from
/// `aex_client::Verified::extra`).
pub const RECEIPT_KEY_NAME: &str = "aex receipt v1";

/// The HTTP response header that carries the receipt of an invocation over attested HTTPS:
/// its binary encoding (§12) in hex.
pub const RECEIPT_HEADER: &str = "Aex-Receipt";

/// The receipt key among a verified certificate's extra keys `(name, key)`, if it attests one.
pub fn attested_key(extra: &[(String, Vec<u8>)]) -> Result<ReceiptPublicKey, String> {
    let (_, key) = extra
        .iter()
        .find(|(name, _)| name == RECEIPT_KEY_NAME)
        .ok_or_else(|| {
            format!("the module's certificate attests no receipt key (no extra key `{RECEIPT_KEY_NAME}`)")
        })?;
    let key: [u8; 32] = key.as_slice().try_into().map_err(|_| {
        format!(
            "the certificate's `{RECEIPT_KEY_NAME}` is {} bytes, not a 32-byte Ed25519 key",
            key.len()
        )
    })?;
    Ok(ReceiptPublicKey(key))
}

/// A receipt header's value decoded: one receipt and nothing after it.
pub fn decode_header(value: &str) -> Result<Receipt, String> {
    let bytes = hex::decode(value.trim())
        .map_err(|e| format!("the {RECEIPT_HEADER} header is not hex: {e}"))?;
    let (receipt, used) =
        Receipt::decode(&bytes).map_err(|e| format!("the {RECEIPT_HEADER} header: {e}"))?;
    if used != bytes.len() {
        return Err(format!(
            "the {RECEIPT_HEADER} header has {} bytes after its receipt",
            bytes.len() - used
        ));
    }
    Ok(receipt)
}

/// Checks that `receipt` bills the call `client` just made: `function` with `input`, answered
/// `output` (the output, or the error message of a failed call), signed under `key`.
pub fn check(
    receipt: &Receipt,
    key: &ReceiptPublicKey,
    client: ClientId,
    function: &str,
    input: &[u8],
    output: &[u8],
) -> Result<(), String> {
    receipt
        .verify(key)
        .map_err(|e| format!("the receipt: {e}"))?;
    if receipt.client != client {
        return Err(format!(
            "the receipt bills client {}, not this client ({client})",
            receipt.client
        ));
    }
    if receipt.function != function {
        return Err(format!(
            "the receipt is for function `{}`, not `{function}`",
            receipt.function
        ));
    }
    if receipt.input_sha256 != sha256(&[input]) {
        return Err("the receipt's input hash is not that of the input sent".into());
    }
    if receipt.output_sha256 != sha256(&[output]) {
        return Err("the receipt's output hash is not that of the answer received".into());
    }
    Ok(())
}

#[cfg(all(test, feature = "module"))]
mod tests {
    use super::*;
    use crate::{Function, Meter, ReceiptKey, Signer};

    fn echo(input: &[u8]) -> Result<Vec<u8>, String> {
        Ok(input.to_vec())
    }

    #[test]
    fn a_receipt_checks_only_for_its_own_call() {
        let signer = Signer::new(ReceiptKey::from_seed(&[3; 32]), [0; 32]);
        let key = signer.public();
        let me = ClientId([1; 32]);
        let done = Meter::default()
            .invoke_signed(&signer, &[Function::new("echo", echo)], me, "echo", b"in")
            .unwrap();
        let header = hex::encode(done.receipt.encode());
        let r = decode_header(&header).unwrap();
        check(&r, &key, me, "echo", b"in", b"in").unwrap();
        let other = ReceiptKey::from_seed(&[4; 32]).public();
        for (e, says) in [
            (
                check(&r, &other, me, "echo", b"in", b"in"),
                "another receipt key",
            ),
            (
                check(&r, &key, ClientId([2; 32]), "echo", b"in", b"in"),
                "not this client",
            ),
            (check(&r, &key, me, "other", b"in", b"in"), "not `other`"),
            (check(&r, &key, me, "echo", b"IN", b"in"), "input hash"),
            (check(&r, &key, me, "echo", b"in", b"out"), "output hash"),
        ] {
            assert!(e.unwrap_err().contains(says), "{says}");
        }
        assert!(decode_header(&format!("{header}00"))
            .unwrap_err()
            .contains("1 bytes after"));
        assert!(decode_header("zz").unwrap_err().contains("not hex"));
        let extra = vec![(RECEIPT_KEY_NAME.to_owned(), key.0.to_vec())];
        assert_eq!(attested_key(&extra).unwrap(), key);
        assert!(attested_key(&[])
            .unwrap_err()
            .contains("attests no receipt key"));
    }
}
