//! goose: `<version>_<name>.sql` in version order, with annotations in SQL
//! comments: `-- +goose Up` and `-- +goose Down` open the forward and down
//! parts, `-- +goose StatementBegin` … `-- +goose StatementEnd` make one
//! statement of what they enclose (goose sends it as is; pg_query splits the
//! rest), `-- +goose NO TRANSACTION` runs the file statement by statement in
//! autocommit (else goose runs it in one transaction). `-- +goose ENVSUB`
//! (environment substitution) is refused: the rehearsal would run other SQL.
//! History: `goose_db_version (version_id, is_applied)`: a version is
//! applied when its latest row says so.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use super::{Ctx, Read, Sending, Unit, line_starts};
use crate::error::{Error, Result};
use crate::migration::Group;

pub const HISTORY_SQL: &str = "SELECT version_id::text, is_applied::text FROM {table} ORDER BY id";

/// A goose annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Annotation {
    Up,
    Down,
    StatementBegin,
    StatementEnd,
    NoTransaction,
    Other(String),
}

/// The annotation on `line`, if it is one (`-- +goose …`).
pub fn annotation(line: &str) -> Option<Annotation> {
    let rest = line.trim().strip_prefix("--")?.trim_start().strip_prefix("+goose")?;
    let word = rest.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_uppercase();
    Some(match word.as_str() {
        "UP" => Annotation::Up,
        "DOWN" => Annotation::Down,
        "STATEMENTBEGIN" => Annotation::StatementBegin,
        "STATEMENTEND" => Annotation::StatementEnd,
        "NO TRANSACTION" => Annotation::NoTransaction,
        _ => Annotation::Other(rest.trim().to_string()),
    })
}

/// The parts of one goose file: which lines are Up and Down, the statement
/// blocks (byte ranges) and whether it runs outside a transaction.
#[derive(Debug)]
struct Parsed {
    up: Vec<bool>,
    down: Vec<bool>,
    blocks: Vec<Range<usize>>,
    no_transaction: bool,
}

fn parse(text: &str, file: &str) -> Result<Parsed> {
    let starts = line_starts(text);
    let n = text.split_inclusive('\n').count();
    let mut p = Parsed { up: vec![false; n], down: vec![false; n], blocks: Vec::new(), no_transaction: false };
    let mut section: Option<bool> = None; // Some(true): Up
    let mut block: Option<usize> = None;
    let mut seen_up = false;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let at = |msg: &str| Error::input(format!("{file}:{}: {msg}", i + 1));
        match annotation(line) {
            Some(Annotation::Up) if block.is_none() => {
                section = Some(true);
                seen_up = true;
            }
            Some(Annotation::Down) if block.is_none() => section = Some(false),
            Some(Annotation::NoTransaction) => p.no_transaction = true,
            Some(Annotation::StatementBegin) if block.is_none() && section.is_some() => block = Some(i + 1),
            Some(Annotation::StatementEnd) => {
                let start = block.take().ok_or_else(|| at("StatementEnd without a StatementBegin"))?;
                p.blocks.push(starts[start]..starts[i]);
            }
            Some(Annotation::Other(what)) if what.to_ascii_uppercase().starts_with("ENVSUB") => {
                return Err(at(
                    "-- +goose ENVSUB substitutes environment variables into the SQL, which lockimpact does not \
                     do; write the values out or capture goose itself with migration.command",
                ));
            }
            Some(Annotation::Other(what)) => return Err(at(&format!("unknown goose annotation {what:?}"))),
            Some(_) => return Err(at("this annotation cannot stand inside a StatementBegin … StatementEnd block")),
            None => match section {
                Some(true) => p.up[i] = true,
                Some(false) => p.down[i] = true,
                None => {}
            },
        }
    }
    if let Some(start) = block {
        return Err(Error::input(format!("{file}:{start}: StatementBegin without a StatementEnd")));
    }
    if !seen_up {
        return Err(Error::input(format!("{file}: no `-- +goose Up` annotation; goose refuses such a file")));
    }
    Ok(p)
}

pub fn read(dir: &Path, ctx: &Ctx) -> Result<Read> {
    let mut files: Vec<(i64, std::path::PathBuf)> = Vec::new();
    for p in super::list(dir)? {
        let name = super::file_name(&p);
        let Some(v) = super::leading_version(&name) else { continue };
        if name.ends_with(".go") {
            return Err(Error::input(format!(
                "{}: a goose Go migration; lockimpact reads SQL migrations only (capture what goose sends with \
                 migration.command = \"goose up\")",
                p.display()
            )));
        }
        if name.ends_with(".sql") {
            files.push((v.parse().map_err(|_| Error::input(format!("{}: version out of range", p.display())))?, p));
        }
    }
    files.sort();
    let mut parts = Vec::new();
    for (version, path) in &files {
        let text = super::read_text(path)?;
        let file = path.display().to_string();
        let p = parse(&text, &file)?;
        let sending = if p.no_transaction { Sending::Autocommit } else { Sending::InTransaction };
        let hint = super::in_transaction_hint("goose", "mark the file `-- +goose NO TRANSACTION`");
        let in_part = |lines: &[bool]| -> Vec<Range<usize>> {
            let starts = line_starts(&text);
            let line_of = |b: usize| starts.partition_point(|&s| s <= b) - 1;
            p.blocks.iter().filter(|r| lines.get(line_of(r.start)).copied().unwrap_or(false)).cloned().collect()
        };
        let up = super::keep_lines(&text, |i| p.up[i]);
        let down = super::keep_lines(&text, |i| p.down[i]);
        let name = super::file_name(path);
        let v = version.to_string();
        let unit = Unit { path, name: &name, version: Some(&v) };
        let mut groups = super::groups(ctx, unit, &up, &in_part(&p.up), sending, &hint)?;
        let down = super::script(ctx, &down, &in_part(&p.down), path, sending, &hint)?;
        groups.iter_mut().for_each(|(g, _)| g.down = down.clone());
        parts.extend(groups);
    }
    Ok(Read::parts(parts))
}

/// Rows (version_id, is_applied) in insertion order: the latest row of a version decides.
pub fn applied(groups: &[Group], rows: &[Vec<String>]) -> super::Applied {
    let mut latest: HashMap<&str, bool> = HashMap::new();
    for r in rows {
        latest.insert(r[0].as_str(), r[1] == "true");
    }
    super::Applied::of(
        groups.iter().map(|g| g.version.as_deref().and_then(|v| latest.get(v).copied()).unwrap_or(false)).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_and_blocks() {
        let text = "-- +goose Up\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n-- +goose StatementEnd\nALTER TABLE t ADD c int;\n-- +goose Down\nDROP FUNCTION f;\n";
        let p = parse(text, "x.sql").unwrap();
        assert_eq!(p.up, [false, false, true, false, true, false, false]);
        assert_eq!(p.down, [false, false, false, false, false, false, true]);
        assert_eq!(&text[p.blocks[0].clone()], "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n");
        assert!(!p.no_transaction);
        assert!(parse("SELECT 1;\n", "x.sql").unwrap_err().message.contains("no `-- +goose Up`"));
        assert!(parse("-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n", "x.sql").is_err());
        assert!(parse("-- +goose Up\n-- +goose ENVSUB ON\n", "x.sql").unwrap_err().message.contains("ENVSUB"));
        assert_eq!(annotation("--  +goose  no  transaction"), Some(Annotation::NoTransaction));
    }
}
