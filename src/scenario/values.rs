//! Small value types shared by the file formats: durations written as
//! `"500ms"`/`"2s"`/`"1m"`, `{{var}}` templates, and `--set` overrides.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::error::{Error, Result};

/// The longest duration any setting accepts (a day); longer is a typo.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// A duration written with a unit: `"250ms"`, `"2s"`, `"1.5s"`, `"3m"`, `"1h"`, or `"0"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dur(pub Duration);

impl Dur {
    pub fn parse(text: &str) -> Result<Dur, String> {
        let t = text.trim();
        if t == "0" {
            return Ok(Dur(Duration::ZERO));
        }
        if t.starts_with('-') {
            return Err(format!("invalid duration {text:?}: durations cannot be negative"));
        }
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let value: f64 = num.parse().map_err(|_| {
            format!("invalid duration {text:?}: expected a number with a unit (ms, s, m, h), e.g. \"500ms\" or \"2s\"")
        })?;
        let secs = match unit.trim() {
            "ms" => value / 1000.0,
            "s" => value,
            "m" | "min" => value * 60.0,
            "h" => value * 3600.0,
            "" => return Err(format!("invalid duration {text:?}: add a unit (ms, s, m, h), e.g. \"{text}s\"")),
            u => return Err(format!("invalid duration {text:?}: unknown unit {u:?}; use ms, s, m or h")),
        };
        // Checked before the conversion: `from_secs_f64` panics on a value
        // beyond u64 seconds ("100000000000000000000s" parses as 1e20).
        if !secs.is_finite() || secs > MAX_DURATION.as_secs_f64() {
            return Err(format!("invalid duration {text:?}: longer than 24h"));
        }
        Ok(Dur(Duration::from_secs_f64(secs)))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0.as_millis())
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

/// Replaces every `{{name}}` in `text` with its value from `vars`. An unknown
/// name is an error naming `file` and the line.
pub fn render_template(text: &str, vars: &BTreeMap<String, String>, file: &str) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let line = text[..text.len() - rest.len() + start].matches('\n').count() + 1;
        let Some(end) = after.find("}}") else {
            return Err(Error::input(format!("{file}:{line}: `{{{{` is not closed with `}}}}`")));
        };
        let name = after[..end].trim();
        match vars.get(name) {
            Some(v) => out.push_str(v),
            None => {
                let known: Vec<&str> = vars.keys().map(String::as_str).collect();
                return Err(Error::input(format!(
                    "{file}:{line}: unknown variable {{{{{name}}}}}; define it under [vars] in the scenario \
                     or with --set vars.{name}=VALUE (known: {})",
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                )));
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Applies one `--set dotted.key=value` to a TOML document. The value is read
/// as TOML (`5`, `1.5`, `true`, `"text"`) and otherwise taken as a string.
pub fn apply_set(doc: &mut toml::Table, assignment: &str) -> Result<()> {
    let Some((key, raw)) = assignment.split_once('=') else {
        return Err(Error::input(format!(
            "--set {assignment:?}: expected DOTTED.KEY=VALUE, e.g. --set vars.rows=10000"
        )));
    };
    let key = key.trim();
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(Error::input(format!("--set {assignment:?}: the key {key:?} has an empty part")));
    }
    let value = parse_toml_value(raw.trim());
    let mut table = doc;
    for (i, part) in parts[..parts.len() - 1].iter().enumerate() {
        let entry = table.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(Error::input(format!(
                    "--set {assignment:?}: {} is a value, not a table",
                    parts[..=i].join(".")
                )));
            }
        };
    }
    table.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

fn parse_toml_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

/// Renders a TOML scalar as template text (`1000000`, `0.5`, `US`).
pub fn scalar_text(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(Dur::parse("250ms").unwrap().0, Duration::from_millis(250));
        assert_eq!(Dur::parse("1.5s").unwrap().0, Duration::from_millis(1500));
        assert_eq!(Dur::parse("2m").unwrap().0, Duration::from_secs(120));
        assert_eq!(Dur::parse("0").unwrap().0, Duration::ZERO);
        assert!(Dur::parse("-1s").unwrap_err().contains("negative"));
        assert!(Dur::parse("5").unwrap_err().contains("unit"));
        assert!(Dur::parse("5parsecs").unwrap_err().contains("unknown unit"));
        assert!(Dur::parse("100000h").unwrap_err().contains("24h"));
        assert!(Dur::parse("100000000000000000000000s").unwrap_err().contains("24h"));
        assert!(Dur::parse(&format!("{}ms", "9".repeat(400))).unwrap_err().contains("24h"));
        assert_eq!(Dur::parse("24h").unwrap().0, MAX_DURATION);
    }

    #[test]
    fn templates() {
        let vars = BTreeMap::from([("rows".to_string(), "10".to_string())]);
        assert_eq!(render_template("a {{rows}} b {{ rows }}", &vars, "f").unwrap(), "a 10 b 10");
        let e = render_template("x\ny {{nope}}", &vars, "seed.sql").unwrap_err();
        assert!(e.message.starts_with("seed.sql:2: unknown variable {{nope}}"), "{}", e.message);
    }

    #[test]
    fn set_overrides() {
        let mut doc: toml::Table = "[phases]\nbaseline = \"5s\"\n".parse().unwrap();
        apply_set(&mut doc, "phases.baseline=1s").unwrap();
        apply_set(&mut doc, "vars.rows=100").unwrap();
        assert_eq!(doc["phases"]["baseline"].as_str(), Some("1s"));
        assert_eq!(doc["vars"]["rows"].as_integer(), Some(100));
        assert!(apply_set(&mut doc, "novalue").is_err());
        assert!(apply_set(&mut doc, "phases.baseline.x=1").is_err());
    }
}
