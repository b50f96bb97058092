//! The checks of `[[periodic]]` triggers: a declared module's entry, a period that parses and
//! is neither too short nor too long, at most one trigger per entry. Whether the binary declares the entry
//! `#[periodic]` is checked after building (`ops::deploy::check`).

use std::collections::HashMap;
use std::time::Duration;

use super::Checker;
use crate::descriptor::error::DescriptorError;
use crate::descriptor::field::Field;
use crate::descriptor::model::PeriodicSpec;
use crate::descriptor::raw::RawPeriodic;

/// The shortest period a node accepts (`aex_proto::Trigger::MIN_PERIOD_MS`).
pub(crate) const MIN_PERIOD: Duration = Duration::from_millis(aex_proto::Trigger::MIN_PERIOD_MS);
/// The longest period a node accepts (`aex_proto::Trigger::MAX_PERIOD_MS`).
pub(crate) const MAX_PERIOD: Duration = Duration::from_millis(aex_proto::Trigger::MAX_PERIOD_MS);

const DURATION_HELP: &str = "write a whole number and a unit: `500ms`, `5s`, `1m` or `1h`";

impl Checker<'_> {
    pub(super) fn periodic(
        &self,
        raw: &[RawPeriodic],
        modules: &[String],
    ) -> Result<Vec<PeriodicSpec>, DescriptorError> {
        let mut seen = HashMap::new();
        let mut specs = Vec::with_capacity(raw.len());
        for (i, trigger) in raw.iter().enumerate() {
            let call = self.port(Field::Periodic(i, "call"), &trigger.call, modules)?;
            let every = parse_duration(&trigger.every).ok_or_else(|| {
                self.error(
                    Field::Periodic(i, "every"),
                    format!("`{}` is not a duration", trigger.every),
                    Some(DURATION_HELP.to_owned()),
                )
            })?;
            if every < MIN_PERIOD {
                let message = format!(
                    "a period of {} ms is too short for a periodic trigger",
                    every.as_millis()
                );
                let help = format!("the shortest period is {} ms", MIN_PERIOD.as_millis());
                return Err(self.error(Field::Periodic(i, "every"), message, Some(help)));
            }
            if every > MAX_PERIOD {
                let message = format!(
                    "a period of {} h is too long for a periodic trigger",
                    every.as_secs() / 3600
                );
                let help = format!("the longest period is {} h", MAX_PERIOD.as_secs() / 3600);
                return Err(self.error(Field::Periodic(i, "every"), message, Some(help)));
            }
            if let Some(first) = seen.insert(trigger.call.clone(), i) {
                let message = format!("`{}` already has a periodic trigger", trigger.call);
                let help = format!("keep one of periodic[{first}] and periodic[{i}]");
                return Err(self.error(Field::Periodic(i, "call"), message, Some(help)));
            }
            specs.push(PeriodicSpec {
                module: call.module,
                entry: call.port,
                every,
            });
        }
        Ok(specs)
    }
}

/// A whole number and a unit, `500ms`, `5s`, `1m` (or `1min`), `1h`, with optional spaces;
/// `None` if it is not one or overflows.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let scale: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    n.checked_mul(scale).map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("500ms"), Some(ms(500)));
        assert_eq!(parse_duration(" 5 s "), Some(ms(5_000)));
        assert_eq!(parse_duration("1m"), Some(ms(60_000)));
        assert_eq!(parse_duration("2min"), Some(ms(120_000)));
        assert_eq!(parse_duration("1h"), Some(ms(3_600_000)));
        for bad in [
            "",
            "5",
            "s",
            "1.5s",
            "-1s",
            "5 sec",
            "99999999999999999999h",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
