//! Small value helpers of the scenario format: `{{var}}` templates and
//! `--set` overrides.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

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
