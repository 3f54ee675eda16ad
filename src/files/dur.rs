//! The duration type of every file format and flag: written with a unit,
//! `"500ms"`, `"2s"`, `"1m"`, `"1h"`, or `"0"`; at most a day.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::error::Error;

/// The longest duration any setting accepts (a day); longer is a typo.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// A duration written with a unit: `"250ms"`, `"2s"`, `"1.5s"`, `"3m"`, `"1h"`, or `"0"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dur(pub Duration);

impl Dur {
    pub fn parse(text: &str) -> Result<Dur, Error> {
        let t = text.trim();
        if t == "0" {
            return Ok(Dur(Duration::ZERO));
        }
        if t.starts_with('-') {
            return Err(Error::input(format!("invalid duration {text:?}: durations cannot be negative")));
        }
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let value: f64 = num.parse().map_err(|_| {
            Error::input(format!(
                "invalid duration {text:?}: expected a number with a unit (ms, s, m, h), e.g. \"500ms\" or \"2s\""
            ))
        })?;
        let secs = match unit.trim() {
            "ms" => value / 1000.0,
            "s" => value,
            "m" | "min" => value * 60.0,
            "h" => value * 3600.0,
            "" => {
                return Err(Error::input(format!(
                    "invalid duration {text:?}: add a unit (ms, s, m, h), e.g. \"{text}s\""
                )));
            }
            u => return Err(Error::input(format!("invalid duration {text:?}: unknown unit {u:?}; use ms, s, m or h"))),
        };
        // Checked before the conversion: `from_secs_f64` panics on a value
        // beyond u64 seconds ("100000000000000000000s" parses as 1e20).
        if !secs.is_finite() || secs > MAX_DURATION.as_secs_f64() {
            return Err(Error::input(format!("invalid duration {text:?}: longer than 24h")));
        }
        Ok(Dur(Duration::from_secs_f64(secs)))
    }
}

/// In the largest unit that writes it whole (`"20s"`, not `"20000ms"`), as
/// `parse` reads it back.
impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0.as_nanos();
        if ns == 0 {
            return f.write_str("0");
        }
        let units = [("h", 3_600_000_000_000), ("m", 60_000_000_000), ("s", 1_000_000_000), ("ms", 1_000_000)];
        match units.iter().find(|(_, per)| ns.is_multiple_of(*per)) {
            Some((unit, per)) => write!(f, "{}{unit}", ns / per),
            None => write!(f, "{}ms", ns as f64 / 1e6),
        }
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string such as \"500ms\", \"2s\" or \"1m\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Dur, E> {
                Dur::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Dur, E> {
                if v == 0 {
                    Ok(Dur(Duration::ZERO))
                } else {
                    Err(E::custom(format!("invalid duration {v}: add a unit, e.g. \"{v}s\" or \"{v}ms\"")))
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_duration_is_written_in_its_largest_whole_unit_and_read_back() {
        for (text, shown) in [
            ("20000ms", "20s"),
            ("1.5s", "1500ms"),
            ("90s", "90s"),
            ("2m", "2m"),
            ("1h", "1h"),
            ("0.5ms", "0.5ms"),
            ("0", "0"),
            ("250ms", "250ms"),
        ] {
            let d = Dur::parse(text).unwrap();
            assert_eq!(d.to_string(), shown, "{text}");
            assert_eq!(Dur::parse(&d.to_string()).unwrap(), d, "{text}");
        }
    }

    use super::*;

    #[test]
    fn durations() {
        assert_eq!(Dur::parse("250ms").unwrap().0, Duration::from_millis(250));
        assert_eq!(Dur::parse("1.5s").unwrap().0, Duration::from_millis(1500));
        assert_eq!(Dur::parse("2m").unwrap().0, Duration::from_secs(120));
        assert_eq!(Dur::parse("0").unwrap().0, Duration::ZERO);
        assert!(Dur::parse("-1s").unwrap_err().message.contains("negative"));
        assert!(Dur::parse("5").unwrap_err().message.contains("unit"));
        assert!(Dur::parse("5parsecs").unwrap_err().message.contains("unknown unit"));
        assert!(Dur::parse("100000h").unwrap_err().message.contains("24h"));
        assert!(Dur::parse("100000000000000000000000s").unwrap_err().message.contains("24h"));
        assert!(Dur::parse(&format!("{}ms", "9".repeat(400))).unwrap_err().message.contains("24h"));
        assert_eq!(Dur::parse("24h").unwrap().0, MAX_DURATION);
    }
}
