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
    pub fn parse(text: &str) -> Result<Self, DeviceSpecError> {
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
                _ => return Err(DeviceSpecError::Maximum { max: max.into() }),
            },
            _ => return Err(DeviceSpecError::UnknownKind { kind: text.into() }),
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
    pub fn parse(text: &str) -> Result<Self, DeviceSpecError> {
        let (text, quantity) = match text.split_once('~') {
            Some((text, quantity)) => (text, Some(quantity)),
            None => (text, None),
        };
        let Some((name, rest)) = text.split_once('=') else {
            return Err(DeviceSpecError::NotADevice { text: text.into() });
        };
        let (kind, initial) = match rest.split_once('@') {
            Some((kind, initial)) => (kind, Some(initial)),
            None => (rest, None),
        };
        let kind = DeviceKind::parse(kind)?;
        let initial = match initial {
            None => 0,
            Some(v) => v.parse::<u32>().map_err(|_| DeviceSpecError::Initial {
                device: name.into(),
                value: v.into(),
            })?,
        };
        let mut spec = Self::new(name, kind, initial)?;
        if let Some(quantity) = quantity {
            if !valid_name(quantity) {
                return Err(DeviceSpecError::Quantity {
                    device: name.into(),
                    quantity: shown(quantity),
                });
            }
            if !kind.is_input() {
                return Err(DeviceSpecError::OutputQuantity {
                    device: name.into(),
                    quantity: quantity.into(),
                });
            }
            spec.quantity = Some(quantity.to_owned());
        }
        Ok(spec)
    }

    /// Parses every text of `texts` (see [`DeviceSpec::parse`]), stopping at the first error.
    pub fn parse_all<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Self>, DeviceSpecError> {
        texts.iter().map(|t| Self::parse(t.as_ref())).collect()
    }

    /// A checked device declaration.
    pub fn new(name: &str, kind: DeviceKind, initial: u32) -> Result<Self, DeviceSpecError> {
        check_name(name)?;
        if !kind.is_input() && initial != 0 {
            return Err(DeviceSpecError::OutputStartsOff {
                device: name.into(),
            });
        }
        if initial > kind.max() {
            return Err(DeviceSpecError::AboveMaximum {
                device: name.into(),
                initial,
                max: kind.max(),
            });
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
pub fn check_name(name: &str) -> Result<(), DeviceSpecError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(DeviceSpecError::Name { name: shown(name) })
    }
}

fn valid_name(name: &str) -> bool {
    (1..=MAX_DEVICE_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A name as an error shows it: at most [`MAX_DEVICE_NAME`] characters, escaped.
fn shown(name: &str) -> String {
    let short: String = name.chars().take(MAX_DEVICE_NAME).collect();
    short.escape_default().to_string()
}

/// Checks a node's declarations together: names are unique, and inputs sensing one quantity
/// agree on where it starts.
pub fn check_all(specs: &[DeviceSpec]) -> Result<(), DeviceSpecError> {
    for (i, spec) in specs.iter().enumerate() {
        if specs[..i].iter().any(|s| s.name == spec.name) {
            return Err(DeviceSpecError::Twice {
                device: spec.name.clone(),
            });
        }
    }
    for spec in specs {
        let Some(quantity) = &spec.quantity else {
            continue;
        };
        if let Some(other) = specs
            .iter()
            .find(|o| o.quantity.as_ref() == Some(quantity) && o.initial != spec.initial)
        {
            return Err(DeviceSpecError::QuantityStart {
                quantity: quantity.clone(),
                devices: [spec.name.clone(), other.name.clone()],
                initial: [spec.initial, other.initial],
            });
        }
    }
    Ok(())
}

/// A device declaration, or a node's set of them, that cannot be used. Each variant names the
/// device and says what would be valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceSpecError {
    /// The text is not `NAME=KIND...`.
    #[error(
        "`{text}` is not a device: write NAME=KIND, e.g. `valve=digital_out` or \
         `soil=analog_in:100@35`"
    )]
    NotADevice {
        /// The text given.
        text: String,
    },
    /// The kind is none of [`DeviceKind::NAMES`].
    #[error(
        "unknown device kind `{kind}`: valid kinds are {}, with an optional maximum for analog \
         inputs (`analog_in:100`)",
        DeviceKind::NAMES.join(", ")
    )]
    UnknownKind {
        /// The kind given.
        kind: String,
    },
    /// An analog input's maximum is not a whole number from 1.
    #[error(
        "`{max}` is not a maximum reading: use a whole number from 1 to {}",
        u32::MAX
    )]
    Maximum {
        /// The maximum given.
        max: String,
    },
    /// The initial value is not a number.
    #[error("initial value `{value}` of device `{device}` is not a number")]
    Initial {
        /// The device.
        device: String,
        /// The value given.
        value: String,
    },
    /// An output was given an initial value.
    #[error("device `{device}` is an output: it starts off, and only its driver drives it")]
    OutputStartsOff {
        /// The device.
        device: String,
    },
    /// The initial value is out of the device's range.
    #[error("initial value {initial} of device `{device}` is above its maximum {max}")]
    AboveMaximum {
        /// The device.
        device: String,
        /// The value given.
        initial: u32,
        /// The largest valid value.
        max: u32,
    },
    /// A device name is not `[A-Za-z0-9_-]{1,64}`.
    #[error(
        "invalid device name `{name}`: use 1 to {MAX_DEVICE_NAME} letters, digits, `_` or `-`"
    )]
    Name {
        /// The name given, at most 64 characters, escaped.
        name: String,
    },
    /// A quantity's name is not `[A-Za-z0-9_-]{1,64}`.
    #[error(
        "quantity of device `{device}`: invalid device name `{quantity}`: use 1 to \
         {MAX_DEVICE_NAME} letters, digits, `_` or `-`"
    )]
    Quantity {
        /// The device.
        device: String,
        /// The quantity given, at most 64 characters, escaped.
        quantity: String,
    },
    /// An output was given a quantity to sense.
    #[error("device `{device}` is an output: only inputs sense a quantity (`~{quantity}`)")]
    OutputQuantity {
        /// The device.
        device: String,
        /// The quantity given.
        quantity: String,
    },
    /// Two devices have one name.
    #[error("device `{device}` is declared twice: device names are unique on a node")]
    Twice {
        /// The name.
        device: String,
    },
    /// Inputs sensing one quantity start at different values.
    #[error(
        "devices `{}` and `{}` sense `{quantity}` but start at {} and {}",
        devices[0], devices[1], initial[0], initial[1]
    )]
    QuantityStart {
        /// The quantity.
        quantity: String,
        /// Two of the devices sensing it.
        devices: [String; 2],
        /// Their initial values.
        initial: [u32; 2],
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_has_unique_names_and_agreeing_quantities() {
        let specs = |texts: &[&str]| DeviceSpec::parse_all(texts).unwrap();
        assert_eq!(
            check_all(&specs(&[
                "a=digital_in",
                "b=analog_in@3~q",
                "c=analog_in@3~q"
            ])),
            Ok(())
        );
        assert_eq!(
            check_all(&specs(&["a=digital_in", "a=digital_out"])),
            Err(DeviceSpecError::Twice { device: "a".into() })
        );
        let e = check_all(&specs(&["a=analog_in@1~q", "b=analog_in@2~q"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "devices `a` and `b` sense `q` but start at 1 and 2"
        );
    }

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
            (
                "p=analog_in~a b",
                "quantity of device `p`: invalid device name `a b`",
            ),
        ] {
            let e = DeviceSpec::parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
