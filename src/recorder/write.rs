//! Writes a recorded, rate-based workload file: one class per statement with
//! its SQL, its share of calls as `weight`, its `recorded_rate` and
//! `peak_rate`, and inferred parameter generators; the file's own
//! `recorded_rate` and `peak_rate` let a scenario say `rate = "peak"`.

use crate::workload::file::max_param;
use std::fmt::Write as _;
use std::path::Path;

use super::infer::{Columns, Inferred, infer_with};
use crate::error::{Error, Result};

/// One recorded statement.
#[derive(Debug, Clone)]
pub struct RecordedClass {
    pub name: String,
    pub sql: String,
    /// Calls per second over the whole recording.
    pub rate: f64,
    /// Highest calls per second in one sample interval.
    pub peak: f64,
    /// A comment line above the class (e.g. the queryid or fingerprint).
    pub comment: String,
    /// Values seen for each `$n` (SQL literals, from a log's `parameters:`):
    /// a `choice` of them where no column can be sampled.
    pub observed: Vec<Vec<String>>,
}

/// Rounds to 4 significant digits, for a readable file.
fn round(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let d = 4 - x.abs().log10().ceil() as i32;
    let f = 10f64.powi(d);
    (x * f).round() / f
}

/// The workload file text; `header` lines become comments at the top.
pub fn workload_toml(
    header: &[String],
    classes: &[RecordedClass],
    recorded: f64,
    peak: f64,
    ops_by_second: &[u64],
    columns: &Columns,
) -> String {
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    let mut out = String::new();
    for h in header {
        let _ = writeln!(out, "# {h}");
    }
    let _ = writeln!(out, "recorded_rate = {:?}", round(recorded));
    let _ = writeln!(out, "peak_rate = {:?}", round(peak));
    if !ops_by_second.is_empty() {
        let _ = writeln!(out, "# statements per second of the recording: rate = \"peak\" replays its busiest window");
        let _ = writeln!(out, "ops_by_second = {ops_by_second:?}");
    }
    let todos =
        classes.iter().map(|c| generators(c, columns).iter().filter(|g| g.contains("\"todo\"")).count()).sum::<usize>();
    if todos > 0 {
        let _ =
            writeln!(out, "# {todos} parameter(s) below are type = \"todo\" placeholders: replace them before running");
    }
    for c in classes {
        let params = generators(c, columns);
        let _ = writeln!(out, "\n# {}", c.comment);
        let _ = writeln!(out, "[[class]]");
        let _ = writeln!(out, "name = {}", q(&c.name));
        let _ = writeln!(out, "weight = {:?}", round(c.rate).max(1e-6));
        let _ = writeln!(out, "recorded_rate = {:?}", round(c.rate));
        let _ = writeln!(out, "peak_rate = {:?}", round(c.peak));
        let _ = writeln!(out, "sql = {}", q(&c.sql));
        if !params.is_empty() {
            let _ = writeln!(out, "params = [");
            for p in &params {
                let _ = writeln!(out, "    {p},");
            }
            let _ = writeln!(out, "]");
        }
    }
    out
}

/// Each `$n`'s generator as inline TOML: a sampled column, else a choice of
/// the observed values, else a placeholder.
fn generators(c: &RecordedClass, columns: &Columns) -> Vec<String> {
    infer_with(&c.sql, max_param(&c.sql), columns)
        .into_iter()
        .enumerate()
        .map(|(i, g)| match (&g, c.observed.get(i)) {
            // Values seen: used where no column compares, and for inserted
            // values (the target table may hold none yet).
            (Inferred::Todo(_), Some(values)) | (Inferred::Sample { .. }, Some(values))
                if !values.is_empty() && (matches!(g, Inferred::Todo(_)) || is_insert(&c.sql)) =>
            {
                let vals: Vec<String> = values.iter().map(|v| literal_toml(v)).collect();
                format!("{{ type = \"choice\", values = [{}] }}", vals.join(", "))
            }
            _ => g.to_toml(),
        })
        .collect()
}

fn is_insert(sql: &str) -> bool {
    sql.trim_start().get(..6).is_some_and(|w| w.eq_ignore_ascii_case("insert"))
}

/// A SQL literal (`'42'`, `'it''s'`) as a TOML value: a number when it is one.
fn literal_toml(lit: &str) -> String {
    let inner = lit.strip_prefix('\'').and_then(|l| l.strip_suffix('\'')).map(|l| l.replace("''", "'"));
    let text = inner.unwrap_or_else(|| lit.to_string());
    if let Ok(i) = text.parse::<i64>() {
        return i.to_string();
    }
    toml::Value::String(text).to_string()
}

/// Writes `text` to `path` atomically (`files::Destination`), creating its directory.
pub fn write_file(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::input(format!("{}: cannot create the directory: {e}", dir.display())))?;
    }
    crate::files::Destination::check(path, "output", &[])?
        .write(|w| w.write_all(text.as_bytes()))
        .map_err(|e| Error::input(format!("{}: cannot write: {e}", path.display())))
}

/// Whether `sql` is one statement worth replaying as a class: SELECT, INSERT,
/// UPDATE, DELETE (not BEGIN/COMMIT/SET or other utility statements).
pub fn replayable(sql: &str) -> bool {
    use pg_query::NodeEnum;
    let Ok(p) = pg_query::parse(sql, 0) else { return false };
    if p.protobuf.stmts.len() != 1 {
        return false;
    }
    matches!(
        p.protobuf.stmts[0].stmt.as_ref().and_then(|s| s.node.as_ref()),
        Some(NodeEnum::SelectStmt(_) | NodeEnum::InsertStmt(_) | NodeEnum::UpdateStmt(_) | NodeEnum::DeleteStmt(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_file_loads_back_with_its_rates() {
        let classes = vec![
            RecordedClass {
                name: "q-42".into(),
                sql: "SELECT * FROM t WHERE id = $1".into(),
                rate: 30.123456,
                peak: 41.0,
                comment: "queryid -42".into(),
                observed: Vec::new(),
            },
            RecordedClass {
                name: "update_t_abc".into(),
                sql: "UPDATE t SET n = n + $1 WHERE id = $2".into(),
                rate: 10.0,
                peak: 12.5,
                comment: "fingerprint abc".into(),
                observed: vec![vec!["'-5'".into(), "'it''s'".into()], vec![]],
            },
        ];
        let text = workload_toml(&["recorded from test".into()], &classes, 40.123456, 50.0, &[3, 5], &Columns::new());
        println!("{text}");
        let parsed = crate::workload::file::parse_file(&text, Path::new("w.toml")).unwrap();
        assert_eq!(parsed.recorded_rate, Some(40.12));
        assert_eq!(parsed.peak_rate, Some(50.0));
        assert_eq!(parsed.ops_by_second, Some(vec![3, 5]));
        assert_eq!(parsed.classes[0].recorded_rate, Some(30.12));
        assert!(text.contains(r#"{ type = "choice", values = [-5, "it's"] }"#), "{text}");
        assert!(text.contains(r#"{ type = "sample", table = "t", column = "id" }"#), "{text}");
    }
}
