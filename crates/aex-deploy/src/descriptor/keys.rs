//! A platform key as the descriptor writes it (`platform_key`) and as a `platform_key_file`
//! holds it: validation reads the first, the model reads the second when the deployer asks for
//! it, with the same rule and the same help.

/// What a platform key looks like, for the `help:` line of an error about one.
pub(super) const KEY_HELP: &str = "a platform key is the node's simulated root public key \
     (compressed P-256): 66 hex characters, as in the node's platform.pub";

/// Parses a compressed P-256 public key (66 hex characters); the error never repeats the text.
pub(super) fn parse_key(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    let mut key = vec![0; 33];
    match hex::decode_to_slice(text, &mut key) {
        Ok(()) => Ok(key),
        Err(_) if text.len() != 66 => Err(format!(
            "expected 66 hex characters, found {}",
            text.chars().count()
        )),
        Err(_) => Err("not a hexadecimal string".to_owned()),
    }
}
