//! The workload file format (`workloads/<name>/workload.toml`) and its
//! validation into `Class`es. The file is a template: `{{var}}` is replaced by
//! the scenario's variables before it is parsed.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::params::{Param, ParamSpec};
use super::script::{Num, Script};
use crate::error::{Error, Result};
use crate::files::dur::Dur;
use crate::files::text::toml_message;
use crate::pg::lex::{pg_message, scan_tokens};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadFile {
    /// Total ops/s of the classes when the workload was recorded (`lockimpact record`).
    recorded_rate: Option<f64>,
    /// Highest total ops/s seen across the recording's samples.
    peak_rate: Option<f64>,
    /// Statements the recording logged in each second (`record log`): `rate =
    /// "peak"` takes the busiest window of the rehearsal's length from it.
    ops_by_second: Option<Vec<u64>>,
    #[serde(rename = "class")]
    classes: Vec<ClassFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassFile {
    name: String,
    /// One SQL statement; or `script` / `script_text` (a pgbench script).
    sql: Option<String>,
    /// A pgbench script file (relative to the workload file), or
    /// `builtin:tpcb-like`, `builtin:simple-update`, `builtin:select-only`.
    script: Option<String>,
    /// A pgbench script inline.
    script_text: Option<String>,
    /// Script variables set before each run (e.g. `scale`).
    #[serde(default)]
    vars: BTreeMap<String, toml::Value>,
    /// Share of the scenario's target rate (relative to the other weights).
    weight: Option<f64>,
    /// Own rate in operations per second, independent of the target rate.
    rate: Option<f64>,
    #[serde(default)]
    params: Vec<ParamSpec>,
    /// Long transaction: BEGIN, run `sql`, keep the transaction open this long, COMMIT.
    hold: Option<Dur>,
    /// This class's ops/s when it was recorded (informational; `weight` drives the mix).
    recorded_rate: Option<f64>,
    /// This class's highest ops/s across the recording's samples (informational).
    peak_rate: Option<f64>,
    /// Where it runs: `"primary"` (default) or `"replica"` (the clone's first standby, `[replica]`).
    target: Option<String>,
}

/// A validated query class.
#[derive(Debug, Clone)]
pub struct Class {
    pub name: String,
    pub sql: String,
    pub pace: Pace,
    pub params: Vec<Param>,
    pub hold: Option<Duration>,
    /// The class's recorded ops/s and peak ops/s, when the file was recorded.
    pub recorded_rate: Option<f64>,
    pub peak_rate: Option<f64>,
    /// A pgbench script class: `sql` is empty and each run runs the script.
    pub script: Option<Arc<Script>>,
    /// `target = "replica"`: it runs on the clone's first standby, not the primary.
    pub on_replica: bool,
}

impl Class {
    /// The SQL this class prepares: its statement, or each of its script's.
    pub fn statements(&self) -> Vec<&str> {
        match &self.script {
            Some(s) => s.statements().collect(),
            None => vec![self.sql.as_str()],
        }
    }
}

/// A parsed workload file: its classes and the rates it declares.
#[derive(Debug, Clone)]
pub struct ParsedFile {
    pub classes: Vec<Class>,
    /// `recorded_rate` of the file, else the sum of the classes' own.
    pub recorded_rate: Option<f64>,
    /// `peak_rate` of the file, else the sum of the classes' own (an upper bound).
    pub peak_rate: Option<f64>,
    /// `ops_by_second` of the file: statements per second of the recording.
    pub ops_by_second: Option<Vec<u64>>,
    /// The pgbench script files its classes read.
    pub scripts: Vec<std::path::PathBuf>,
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
    parse_file(text, path).map(|p| p.classes)
}

/// `parse`, with the recorded and peak rates the file declares.
pub fn parse_file(text: &str, path: &Path) -> Result<ParsedFile> {
    let file = path.display();
    let wf: WorkloadFile =
        toml::from_str(text).map_err(|e| Error::input(format!("{file}: {}", toml_message(&e, text))))?;
    for (key, v) in [("recorded_rate", wf.recorded_rate), ("peak_rate", wf.peak_rate)] {
        if let Some(v) = v
            && !(v > 0.0 && v.is_finite())
        {
            return Err(Error::input(format!("{file}: {key} must be greater than 0 ops/s, not {v}")));
        }
    }
    if wf.classes.is_empty() {
        return Err(Error::input(format!("{file}: no query classes; add at least one [[class]] with a name and sql")));
    }
    let mut classes: Vec<Class> = Vec::new();
    let mut scripts = Vec::new();
    for c in wf.classes {
        if c.name.trim().is_empty() {
            return Err(Error::input(format!("{file}: a class has an empty name")));
        }
        let at = format!("{file}: class {:?}", c.name);
        if classes.iter().any(|o| o.name == c.name) {
            return Err(Error::input(format!("{at}: the name is used twice; class names must be unique")));
        }
        classes.push(parse_class(c, &at, path, &mut scripts)?);
    }
    let sum = |f: fn(&Class) -> Option<f64>| classes.iter().map(f).sum::<Option<f64>>();
    let recorded_rate = wf.recorded_rate.or_else(|| sum(|c| c.recorded_rate));
    let peak_rate = wf.peak_rate.or_else(|| sum(|c| c.peak_rate));
    Ok(ParsedFile { classes, recorded_rate, peak_rate, ops_by_second: wf.ops_by_second, scripts })
}

/// One `[[class]]`, named `at` in messages; a script file it reads is added to `scripts`.
fn parse_class(c: ClassFile, at: &str, path: &Path, scripts: &mut Vec<std::path::PathBuf>) -> Result<Class> {
    let pace = class_pace(c.weight, c.rate, at)?;
    let (sql, script) = match (c.sql, c.script, c.script_text) {
        (Some(sql), None, None) => {
            if !c.vars.is_empty() {
                return Err(Error::input(format!("{at}: vars apply to script classes only")));
            }
            (sql, None)
        }
        (None, Some(_), Some(_)) | (Some(_), _, _) | (None, None, None) => {
            return Err(Error::input(format!(
                "{at}: set exactly one of sql (one statement), script (a pgbench script file or \
                 builtin:tpcb-like) or script_text (a pgbench script inline)"
            )));
        }
        (None, script, text) => {
            let (label, text) = script_source(script, text, at, path, scripts)?;
            let script = parse_script(&label, &text, &c.vars, at)?;
            if !c.params.is_empty() || c.hold.is_some() {
                return Err(Error::input(format!(
                    "{at}: params and hold apply to sql classes; a script sets its own variables"
                )));
            }
            (String::new(), Some(Arc::new(script)))
        }
    };
    if script.is_none() {
        check_sql(&sql).map_err(|e| e.context(at))?;
    }
    let used = max_param(&sql);
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
        .map(|(i, p)| Param::from_spec(p).map_err(|e| e.context(format_args!("{at}: params[{i}] (${})", i + 1))))
        .collect::<Result<Vec<_>>>()?;
    let hold = match c.hold {
        Some(Dur(d)) if d.is_zero() => return Err(Error::input(format!("{at}: hold must be longer than 0"))),
        h => h.map(|d| d.0),
    };
    for (key, v) in [("recorded_rate", c.recorded_rate), ("peak_rate", c.peak_rate)] {
        if let Some(v) = v
            && !(v >= 0.0 && v.is_finite())
        {
            return Err(Error::input(format!("{at}: {key} must be 0 or more ops/s, not {v}")));
        }
    }
    let on_replica = class_target(c.target.as_deref(), at)?;
    let (recorded_rate, peak_rate) = (c.recorded_rate, c.peak_rate);
    let class = Class { name: c.name, sql, pace, params, hold, recorded_rate, peak_rate, script, on_replica };
    if on_replica {
        read_only(&class, at)?;
    }
    Ok(class)
}

/// `target`: `"primary"` (default) or `"replica"`.
fn class_target(target: Option<&str>, at: &str) -> Result<bool> {
    match target {
        None | Some("primary") => Ok(false),
        Some("replica") => Ok(true),
        Some(other) => Err(Error::input(format!("{at}: target = {other:?}: use \"primary\" or \"replica\""))),
    }
}

/// A `target = "replica"` class runs on a hot standby, which is read-only:
/// a statement of it that writes is refused, naming the statement.
fn read_only(class: &Class, at: &str) -> Result<()> {
    for sql in class.statements() {
        if let Some(why) = super::replica::write_in(sql) {
            return Err(Error::input(format!(
                "{at}: target = \"replica\", but {sql:?} cannot run on a standby ({why}): a hot standby is \
                 read-only; run this class on the primary (remove target) or make it read-only"
            )));
        }
    }
    Ok(())
}

/// A class's `weight` or `rate`, exactly one of them, greater than 0.
fn class_pace(weight: Option<f64>, rate: Option<f64>, at: &str) -> Result<Pace> {
    match (weight, rate) {
        (Some(w), None) if w > 0.0 && w.is_finite() => Ok(Pace::Weight(w)),
        (None, Some(r)) if r > 0.0 && r.is_finite() => Ok(Pace::Rate(r)),
        (Some(w), None) => Err(Error::input(format!("{at}: weight must be greater than 0, not {w}"))),
        (None, Some(r)) => Err(Error::input(format!("{at}: rate must be greater than 0 ops/s, not {r}"))),
        (Some(_), Some(_)) => Err(Error::input(format!("{at}: set either weight or rate, not both"))),
        (None, None) => {
            Err(Error::input(format!("{at}: set weight (a share of the scenario's rate) or rate (its own ops/s)")))
        }
    }
}

/// A script class's text and the label its messages carry: a built-in, a
/// file next to the workload file (added to `scripts`), or `script_text`.
fn script_source(
    script: Option<String>,
    text: Option<String>,
    at: &str,
    path: &Path,
    scripts: &mut Vec<std::path::PathBuf>,
) -> Result<(String, String)> {
    match (script, text) {
        (Some(s), _) => match s.strip_prefix("builtin:") {
            Some(b) => {
                let text = super::script::builtin(b).ok_or_else(|| {
                    Error::input(format!(
                        "{at}: script {s:?} is not a pgbench built-in; use builtin:tpcb-like, \
                         builtin:simple-update or builtin:select-only"
                    ))
                })?;
                Ok((format!("{at}: script {s:?}"), text.to_string()))
            }
            None => {
                let p = path.parent().unwrap_or(Path::new(".")).join(&s);
                let text = crate::files::text::read_text(&p, "pgbench script")?;
                scripts.push(p.clone());
                Ok((p.display().to_string(), text))
            }
        },
        (None, Some(t)) => Ok((format!("{at}: script_text"), t)),
        (None, None) => unreachable!("a script class has script or script_text"),
    }
}

/// Parses a pgbench script and sets the class's `vars` in it; every variable
/// it reads (but `:scale`) must then be set.
fn parse_script(label: &str, text: &str, vars: &BTreeMap<String, toml::Value>, at: &str) -> Result<Script> {
    let mut script = Script::parse(text).map_err(|e| e.context(label))?;
    for (k, v) in vars {
        let n = match v {
            toml::Value::Integer(i) => Num::Int(*i),
            toml::Value::Float(f) => Num::Double(*f),
            other => {
                return Err(Error::input(format!("{at}: vars.{k} = {other} must be a number")));
            }
        };
        script.vars.insert(k.clone(), n);
    }
    let unset: Vec<String> = script.unset_vars().into_iter().filter(|v| v != "scale").collect();
    if !unset.is_empty() {
        return Err(Error::input(format!(
            "{label}: :{} is used but never set; \\set it in the script or add vars = {{ {} = … }}",
            unset.join(", :"),
            unset[0]
        )));
    }
    Ok(script)
}

/// Checks that `sql` is exactly one statement PostgreSQL's parser accepts.
fn check_sql(sql: &str) -> Result<()> {
    let parsed = pg_query::parse(sql, 0).map_err(|e| Error::input(format!("SQL syntax error: {}", pg_message(&e))))?;
    match parsed.protobuf.stmts.len() {
        1 => Ok(()),
        0 => Err(Error::input("sql is empty")),
        n => Err(Error::input(format!("sql holds {n} statements; a class runs exactly one"))),
    }
}

/// The highest `$n` in `sql` (0 when there is none).
pub fn max_param(sql: &str) -> usize {
    let Ok(tokens) = scan_tokens(sql) else { return 0 };
    tokens
        .iter()
        .filter(|t| t.token == pg_query::protobuf::Token::Param as i32)
        .filter_map(|t| sql.get(t.start as usize + 1..t.end as usize)?.parse::<usize>().ok())
        .max()
        .unwrap_or(0)
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
