//! How typed payloads are encoded: JSON, so the deployer's command line can build arguments
//! and show results without knowing a module's types.
//!
//! Raw `&[u8]`/`Vec<u8>` payloads bypass this module entirely. An empty payload (what
//! `aex call m entry` sends without an argument) decodes as JSON `null`, which gives `()` and
//! `None`, or else as `{}`, which gives a struct whose fields all have serde defaults.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Decodes a JSON payload into `T`; the error names the expected type.
pub fn from_json<T: DeserializeOwned>(payload: &[u8]) -> Result<T, String> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        if let Ok(value) = serde_json::from_slice(b"null") {
            return Ok(value);
        }
        if let Ok(value) = serde_json::from_slice(b"{}") {
            return Ok(value);
        }
        return Err(format!(
            "expected a JSON value of type `{}`, got an empty payload",
            std::any::type_name::<T>()
        ));
    }
    serde_json::from_slice(payload).map_err(|e| {
        format!(
            "expected a JSON value of type `{}`: {e}",
            std::any::type_name::<T>()
        )
    })
}

/// Encodes `value` as JSON.
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| {
        format!(
            "cannot encode a value of type `{}` as JSON: {e}",
            std::any::type_name::<T>()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(default)]
    struct Args {
        count: u32,
        size: u32,
    }

    impl Default for Args {
        fn default() -> Self {
            Args {
                count: 100,
                size: 64,
            }
        }
    }

    #[test]
    fn empty_payloads_give_unit_none_or_defaults() {
        from_json::<()>(b"").unwrap();
        assert_eq!(from_json::<Option<u32>>(b" ").unwrap(), None);
        assert_eq!(from_json::<Args>(b"").unwrap(), Args::default());
        assert_eq!(
            from_json::<Args>(br#"{"count":3}"#).unwrap(),
            Args { count: 3, size: 64 }
        );
        let err = from_json::<u32>(b"").unwrap_err();
        assert!(err.contains("`u32`") && err.contains("empty"), "{err}");
    }

    #[test]
    fn bad_json_names_the_type() {
        let err = from_json::<Args>(b"{\"count\":\"x\"}").unwrap_err();
        assert!(err.contains("Args"), "{err}");
        assert_eq!(to_json(&[1u8, 2]).unwrap(), b"[1,2]");
    }
}
