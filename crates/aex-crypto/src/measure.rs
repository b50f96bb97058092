//! Measurements: what the deployer expects and what a TEE backend reports.
//!
//! A measurement is SHA-256 over the exact bytes a node will execute. The deployer computes it
//! from its own build and never trusts a node to say what code it runs.
//!
//! A driver module's identity also covers the devices its TEE grants it exclusively
//! ([`Measurement::with_devices`]), the way a Sancus module's identity covers its memory-mapped
//! I/O range: evidence for a driver then proves both the code and what it holds.

use sha2::{Digest, Sha256};

/// SHA-256 of a module binary.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Measurement(pub [u8; 32]);

impl Measurement {
    /// Measures `code`.
    pub fn of(code: &[u8]) -> Self {
        Measurement(sha256(&[code]))
    }

    /// The identity of this code holding `devices` exclusively: itself when `devices` is empty,
    /// else SHA-256 over a label, this measurement, and the device names (sorted,
    /// deduplicated, each length-prefixed, so no two lists collide).
    pub fn with_devices<S: AsRef<str>>(&self, devices: &[S]) -> Self {
        let mut names: Vec<&str> = devices.iter().map(AsRef::as_ref).collect();
        names.sort_unstable();
        names.dedup();
        if names.is_empty() {
            return *self;
        }
        let mut h = Sha256::new();
        h.update(b"aex/v1 device-bound measurement");
        h.update(self.0);
        for name in names {
            h.update((name.len() as u64).to_le_bytes());
            h.update(name.as_bytes());
        }
        Measurement(h.finalize().into())
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex_lower(&self.0)
    }

    /// The first `n` hex characters, for tables.
    pub fn short(&self, n: usize) -> String {
        let mut s = self.to_hex();
        s.truncate(n);
        s
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, ParseMeasurementError> {
        let s = s.trim();
        if s.len() != 64 {
            return Err(ParseMeasurementError);
        }
        let mut out = [0u8; 32];
        for (i, pair) in s.as_bytes().chunks(2).enumerate() {
            let hi = hex_val(pair[0]).ok_or(ParseMeasurementError)?;
            let lo = hex_val(pair[1]).ok_or(ParseMeasurementError)?;
            out[i] = hi << 4 | lo;
        }
        Ok(Measurement(out))
    }
}

impl core::fmt::Debug for Measurement {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Measurement({})", self.to_hex())
    }
}

impl core::fmt::Display for Measurement {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A measurement string was not 64 hex characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseMeasurementError;

impl core::fmt::Display for ParseMeasurementError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("a measurement is 64 hexadecimal characters (SHA-256)")
    }
}

impl std::error::Error for ParseMeasurementError {}

/// SHA-256 over the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer_sha256_abc() {
        // FIPS 180-2 appendix B.1.
        assert_eq!(
            Measurement::of(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hex_round_trip_and_rejects() {
        let m = Measurement::of(b"module");
        assert_eq!(Measurement::from_hex(&m.to_hex()), Ok(m));
        assert_eq!(Measurement::from_hex("abc"), Err(ParseMeasurementError));
        assert_eq!(
            Measurement::from_hex(&"zz".repeat(32)),
            Err(ParseMeasurementError)
        );
        assert_eq!(m.short(12).len(), 12);
    }

    #[test]
    fn device_binding() {
        let m = Measurement::of(b"driver");
        let none: [&str; 0] = [];
        assert_eq!(m.with_devices(&none), m);
        let valve = m.with_devices(&["valve"]);
        assert_ne!(valve, m);
        // Order and repetition do not matter; the set does.
        assert_eq!(
            m.with_devices(&["valve", "soil"]),
            m.with_devices(&["soil", "valve", "soil"])
        );
        assert_ne!(m.with_devices(&["valve", "soil"]), valve);
        // Length prefixes: ["ab", "c"] is not ["a", "bc"].
        assert_ne!(m.with_devices(&["ab", "c"]), m.with_devices(&["a", "bc"]));
        assert_ne!(Measurement::of(b"other").with_devices(&["valve"]), valve);
    }
}
