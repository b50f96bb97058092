//! Payload arguments on the command line, and how results are shown.
//!
//! A payload is given as text (typed ports take JSON, e.g. `'{"count": 10}'`), as hex with
//! `--hex`, or read from a file with `@path`. Results that are UTF-8 text (typed ports answer
//! JSON) are printed as text, anything else as hex.

use anyhow::{Context, Result};

/// Turns a payload argument into bytes.
pub fn parse(arg: Option<&str>, hex: bool) -> Result<Vec<u8>> {
    let Some(arg) = arg else { return Ok(vec![]) };
    if hex {
        return hex::decode(arg.trim()).with_context(|| format!("`{arg}` is not hexadecimal"));
    }
    if let Some(path) = arg.strip_prefix('@') {
        return std::fs::read(path).with_context(|| format!("cannot read payload file `{path}`"));
    }
    Ok(arg.as_bytes().to_vec())
}

/// Renders result bytes for the terminal.
pub fn show(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => {
            match serde_json::from_str::<serde_json::Value>(s) {
                Ok(v) if v.is_object() || v.is_array() => {
                    serde_json::to_string_pretty(&v).unwrap_or_else(|_| s.to_string())
                }
                _ => s.to_string(),
            }
        }
        _ => hex::encode(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_forms() {
        assert_eq!(parse(None, false).unwrap(), b"");
        assert_eq!(parse(Some("{}"), false).unwrap(), b"{}");
        assert_eq!(parse(Some("0aff"), true).unwrap(), vec![0x0a, 0xff]);
        assert!(parse(Some("zz"), true).is_err());
        assert!(parse(Some("@/nonexistent/file"), false).is_err());
        assert_eq!(show(b"\x00\x01"), "0001");
        assert_eq!(show(b"42"), "42");
    }
}
