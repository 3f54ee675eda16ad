//! The workload file format (`workloads/<name>/workload.toml`) and its
//! validation into `Class`es. The file is a template: `{{var}}` is replaced by
//! the scenario's variables before it is parsed.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::params::{Param, ParamSpec};
use crate::error::{Error, Result};
use crate::scenario::values::Dur;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadFile {
    #[serde(rename = "class")]
    classes: Vec<ClassFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassFile {
    name: String,
    sql: String,
    /// Share of the scenario's target rate (relative to the other weights).
    weight: Option<f64>,
    /// Own rate in operations per second, independent of the target rate.
    rate: Option<f64>,
    #[serde(default)]
    params: Vec<ParamSpec>,
    /// Long transaction: BEGIN, run `sql`, keep the transaction open this long, COMMIT.
    hold: Option<Dur>,
}

/// A validated query class.
#[derive(Debug, Clone)]
pub struct Class {
    pub name: String,
    pub sql: String,
    pub pace: Pace,
    pub params: Vec<Param>,
    pub hold: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// Share of the target rate.
    Weight(f64),
    /// Own rate, operations per second.
    Rate(f64),
}

/// Parses and validates a workload file whose `{{vars}}` are already rendered.
pub fn parse(text: &str, path: &Path) -> Result<Vec<Class>> {
    let file = path.display();
    let wf: WorkloadFile =
        toml::from_str(text).map_err(|e| Error::input(format!("{file}: {}", toml_message(&e, text))))?;
    if wf.classes.is_empty() {
        return Err(Error::input(format!("{file}: no query classes; add at least one [[class]] with a name and sql")));
    }
    let mut classes: Vec<Class> = Vec::new();
    for c in wf.classes {
        let at = format!("{file}: class {:?}", c.name);
        if c.name.trim().is_empty() {
            return Err(Error::input(format!("{file}: a class has an empty name")));
        }
        if classes.iter().any(|o| o.name == c.name) {
            return Err(Error::input(format!("{at}: the name is used twice; class names must be unique")));
        }
        let pace = match (c.weight, c.rate) {
            (Some(w), None) if w > 0.0 && w.is_finite() => Pace::Weight(w),
            (None, Some(r)) if r > 0.0 && r.is_finite() => Pace::Rate(r),
            (Some(w), None) => return Err(Error::input(format!("{at}: weight must be greater than 0, not {w}"))),
            (None, Some(r)) => return Err(Error::input(format!("{at}: rate must be greater than 0 ops/s, not {r}"))),
            (Some(_), Some(_)) => return Err(Error::input(format!("{at}: set either weight or rate, not both"))),
            (None, None) => {
                return Err(Error::input(format!(
                    "{at}: set weight (a share of the scenario's rate) or rate (its own ops/s)"
                )));
            }
        };
        check_sql(&c.sql).map_err(|e| Error::input(format!("{at}: {e}")))?;
        let used = max_param(&c.sql);
        if used != c.params.len() {
            return Err(Error::input(format!(
                "{at}: the SQL uses {used} parameter(s) ($1…${used}) but {} generator(s) are listed in params",
                c.params.len()
            )));
        }
        let params = c
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| Param::from_spec(p).map_err(|e| Error::input(format!("{at}: params[{i}] (${}): {e}", i + 1))))
            .collect::<Result<Vec<_>>>()?;
        let hold = match c.hold {
            Some(Dur(d)) if d.is_zero() => return Err(Error::input(format!("{at}: hold must be longer than 0"))),
            h => h.map(|d| d.0),
        };
        classes.push(Class { name: c.name, sql: c.sql, pace, params, hold });
    }
    Ok(classes)
}

/// Checks that `sql` is exactly one statement PostgreSQL's parser accepts.
fn check_sql(sql: &str) -> Result<(), String> {
    let parsed = pg_query::parse(sql, 0).map_err(|e| format!("SQL syntax error: {}", pg_message(&e)))?;
    match parsed.protobuf.stmts.len() {
        1 => Ok(()),
        0 => Err("sql is empty".into()),
        n => Err(format!("sql holds {n} statements; a class runs exactly one")),
    }
}

/// The highest `$n` in `sql` (0 when there is none).
fn max_param(sql: &str) -> usize {
    let Ok(tokens) = scan_tokens(sql) else { return 0 };
    tokens
        .iter()
        .filter(|t| t.token == pg_query::protobuf::Token::Param as i32)
        .filter_map(|t| sql.get(t.start as usize + 1..t.end as usize)?.parse::<usize>().ok())
        .max()
        .unwrap_or(0)
}

/// `pg_query::scan_tokens`, safe on text without a single token. For empty or
/// whitespace-only text the C scanner returns a null token array, which the
/// crate turns into a slice: undefined behaviour (a panic in debug builds,
/// found by fuzzing the migration splitter).
pub fn scan_tokens(sql: &str) -> Result<Vec<pg_query::protobuf::ScanToken>, pg_query::Error> {
    if sql.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')) {
        return Ok(Vec::new());
    }
    pg_query::scan_tokens(sql)
}

/// The message of a pg_query error without the crate's prefix.
pub fn pg_message(e: &pg_query::Error) -> String {
    match e {
        pg_query::Error::Parse(m) | pg_query::Error::Split(m) | pg_query::Error::Scan(m) => m.clone(),
        other => other.to_string(),
    }
}

/// A TOML error as "line L, column C: message" (the toml crate's own text
/// repeats the source line; this keeps one line).
pub fn toml_message(e: &toml::de::Error, text: &str) -> String {
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {col}: {}", e.message())
        }
        None => e.message().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Vec<Class>> {
        parse(s, Path::new("w.toml"))
    }

    #[test]
    fn a_valid_file() {
        let c = parse_str(
            r#"
[[class]]
name = "read"
sql = "SELECT * FROM t WHERE id = $1"
weight = 3
params = [{ type = "int", min = 1, max = 10, dist = "zipf" }]

[[class]]
name = "long"
sql = "SELECT 1"
rate = 0.2
hold = "5s"
"#,
        )
        .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].pace, Pace::Weight(3.0));
        assert_eq!(c[1].hold, Some(Duration::from_secs(5)));
    }

    #[test]
    fn errors_name_the_place() {
        let e = parse_str("[[class]]\nname = \"a\"\nsql = \"SELEC 1\"\nweight = 1\n").unwrap_err();
        assert!(e.message.contains("class \"a\": SQL syntax error"), "{}", e.message);
        let e = parse_str("[[class]]\nname = \"a\"\nsql = \"SELECT $2\"\nweight = 1\n").unwrap_err();
        assert!(e.message.contains("uses 2 parameter(s)"), "{}", e.message);
        let e = parse_str("[[class]]\nname = \"a\"\nsql = \"SELECT 1\"\nrate = 0\n").unwrap_err();
        assert!(e.message.contains("rate must be greater than 0"), "{}", e.message);
        let e = parse_str("[[class]]\nname = \"a\"\nsql = \"SELECT 1\"\nweight = 1\nbogus = 2\n").unwrap_err();
        assert!(e.message.contains("line 5") && e.message.contains("bogus"), "{}", e.message);
        let e = parse_str(
            "[[class]]\nname = \"a\"\nsql = \"SELECT $1\"\nweight = 1\nparams = [{ type = \"int\", min = 1 }]\n",
        )
        .unwrap_err();
        assert!(e.message.contains("line 5") && e.message.contains("max"), "{}", e.message);
    }
}
