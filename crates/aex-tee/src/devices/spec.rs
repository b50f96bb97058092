//! Device declarations: what a node's configuration (or a descriptor's `devices`) says a
//! device is, parsed and checked before anything uses it.

use std::fmt;

/// What a device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// A digital input, such as a button: reads `0` or `1`.
    DigitalIn,
    /// A digital output, such as an LED or a valve: driven `0` (off) or `1` (on).
    DigitalOut,
    /// An analog input, such as a soil-moisture probe: reads `0..=max`.
    AnalogIn {
        /// The largest reading.
        max: u32,
    },
}

impl DeviceKind {
    /// The kinds as written in configuration.
    pub const NAMES: [&'static str; 3] = ["digital_in", "digital_out", "analog_in"];

    /// Parses `digital_in`, `digital_out`, `analog_in` or `analog_in:MAX`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (name, max) = match text.split_once(':') {
            Some((name, max)) => (name, Some(max)),
            None => (text, None),
        };
        let kind = match (name, max) {
            ("digital_in", None) => DeviceKind::DigitalIn,
            ("digital_out", None) => DeviceKind::DigitalOut,
            ("analog_in", None) => DeviceKind::AnalogIn {
                max: DEFAULT_ANALOG_MAX,
            },
            ("analog_in", Some(max)) => match max.parse::<u32>() {
                Ok(max) if max > 0 => DeviceKind::AnalogIn { max },
                _ => {
                    return Err(format!(
                        "`{max}` is not a maximum reading: use a whole number from 1 to {}",
                        u32::MAX
                    ))
                }
            },
            _ => {
                return Err(format!(
                    "unknown device kind `{text}`: valid kinds are {}, with an optional maximum \
                     for analog inputs (`analog_in:100`)",
                    Self::NAMES.join(", ")
                ))
            }
        };
        Ok(kind)
    }

    /// Whether the physical world sets this device (an input), rather than its driver.
    pub fn is_input(self) -> bool {
        !matches!(self, DeviceKind::DigitalOut)
    }

    /// The largest value of this device.
    pub fn max(self) -> u32 {
        match self {
            DeviceKind::AnalogIn { max } => max,
            DeviceKind::DigitalIn | DeviceKind::DigitalOut => 1,
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceKind::DigitalIn => f.write_str("digital_in"),
            DeviceKind::DigitalOut => f.write_str("digital_out"),
            DeviceKind::AnalogIn { max } => write!(f, "analog_in:{max}"),
        }
    }
}

/// The largest reading of an analog input declared without one (a 10-bit converter).
pub const DEFAULT_ANALOG_MAX: u32 = 1023;

/// Longest device name.
pub const MAX_DEVICE_NAME: usize = 64;

/// One device in a node's configuration: `name=kind`, with an optional initial value for
/// inputs (`soil=analog_in:100@35`) and, for inputs, an optional physical quantity it senses
/// (`probe-1=analog_in:100~bed`): inputs sensing the same quantity, such as two probes in one
/// bed, always read the same value, and the world sets them together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    /// Unique on the node: `[A-Za-z0-9_-]`, 1 to 64 characters.
    pub name: String,
    /// What it is.
    pub kind: DeviceKind,
    /// Its value when the node starts (`0` unless given; outputs always start off).
    pub initial: u32,
    /// Inputs: the physical quantity it senses, shared with the other inputs naming it.
    pub quantity: Option<String>,
}

impl DeviceSpec {
    /// Parses `name=kind[@initial][~quantity]`, e.g. `valve=digital_out`,
    /// `soil=analog_in:100@35`, `probe-1=analog_in:100@35~bed`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (text, quantity) = match text.split_once('~') {
            Some((text, quantity)) => (text, Some(quantity)),
            None => (text, None),
        };
        let Some((name, rest)) = text.split_once('=') else {
            return Err(format!(
                "`{text}` is not a device: write NAME=KIND, e.g. `valve=digital_out` or \
                 `soil=analog_in:100@35`"
            ));
        };
        let (kind, initial) = match rest.split_once('@') {
            Some((kind, initial)) => (kind, Some(initial)),
            None => (rest, None),
        };
        let kind = DeviceKind::parse(kind)?;
        let initial = match initial {
            None => 0,
            Some(v) => v
                .parse::<u32>()
                .map_err(|_| format!("initial value `{v}` of device `{name}` is not a number"))?,
        };
        let mut spec = Self::new(name, kind, initial)?;
        if let Some(quantity) = quantity {
            check_name(quantity).map_err(|e| format!("quantity of device `{name}`: {e}"))?;
            if !kind.is_input() {
                return Err(format!(
                    "device `{name}` is an output: only inputs sense a quantity (`~{quantity}`)"
                ));
            }
            spec.quantity = Some(quantity.to_owned());
        }
        Ok(spec)
    }

    /// Parses every text of `texts` (see [`DeviceSpec::parse`]), stopping at the first error.
    pub fn parse_all<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Self>, String> {
        texts.iter().map(|t| Self::parse(t.as_ref())).collect()
    }

    /// A checked device declaration.
    pub fn new(name: &str, kind: DeviceKind, initial: u32) -> Result<Self, String> {
        check_name(name)?;
        if !kind.is_input() && initial != 0 {
            return Err(format!(
                "device `{name}` is an output: it starts off, and only its driver drives it"
            ));
        }
        if initial > kind.max() {
            return Err(format!(
                "initial value {initial} of device `{name}` is above its maximum {}",
                kind.max()
            ));
        }
        Ok(DeviceSpec {
            name: name.to_owned(),
            kind,
            initial,
            quantity: None,
        })
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.kind)?;
        if self.initial != 0 {
            write!(f, "@{}", self.initial)?;
        }
        if let Some(quantity) = &self.quantity {
            write!(f, "~{quantity}")?;
        }
        Ok(())
    }
}

/// Checks a device name: `[A-Za-z0-9_-]{1,64}`.
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = (1..=MAX_DEVICE_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        let shown: String = name.chars().take(MAX_DEVICE_NAME).collect();
        Err(format!(
            "invalid device name `{}`: use 1 to {MAX_DEVICE_NAME} letters, digits, `_` or `-`",
            shown.escape_default()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_refuse_with_reasons() {
        let soil = DeviceSpec::parse("soil=analog_in:100@35").unwrap();
        assert_eq!(soil.kind, DeviceKind::AnalogIn { max: 100 });
        assert_eq!(soil.initial, 35);
        assert_eq!(soil.to_string(), "soil=analog_in:100@35");
        assert_eq!(
            DeviceSpec::parse("adc=analog_in").unwrap().kind.max(),
            DEFAULT_ANALOG_MAX
        );
        for (bad, says) in [
            ("valve", "NAME=KIND"),
            (
                "valve=servo",
                "valid kinds are digital_in, digital_out, analog_in",
            ),
            ("valve=digital_out@1", "starts off"),
            ("soil=analog_in:0", "maximum"),
            ("soil=analog_in:10@11", "above its maximum 10"),
            ("b=digital_in@x", "not a number"),
            ("a b=digital_in", "invalid device name"),
            ("=digital_in", "invalid device name"),
        ] {
            let e = DeviceSpec::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
