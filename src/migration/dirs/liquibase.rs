//! Liquibase formatted SQL: `.sql` files (below the directory, in path
//! order, as `includeAll` reads them) that begin with `--liquibase formatted
//! sql`. Each `--changeset author:id [attribute:value …]` is one group; its
//! `--rollback …` lines (or a `/* liquibase rollback … */` block) are its
//! down part. A changeset runs in its own transaction unless
//! `runInTransaction:false`; `splitStatements:false` sends it as one
//! statement; `endDelimiter:X` ends statements with X instead of `;`;
//! `dbms:` without postgresql and `ignore:true` leave it out; contexts and
//! labels are not filtered (every changeset is rehearsed). History:
//! `databasechangelog (id, author)`.

use std::ops::Range;
use std::path::Path;

use super::{Ctx, Read, Sending, Unit, line_starts};
use crate::error::{Error, Result};

pub const HISTORY_SQL: &str = "SELECT author || ':' || id FROM {table}";

/// Whether `text` is a Liquibase formatted SQL changelog.
pub fn is_formatted(text: &str) -> bool {
    let first = text.trim_start_matches('\u{feff}').lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
    let words: Vec<String> = first.trim_start_matches('-').split_whitespace().map(str::to_ascii_lowercase).collect();
    first.trim_start().starts_with("--") && words.starts_with(&["liquibase".into(), "formatted".into(), "sql".into()])
}

/// One changeset: its header line, attributes, body and rollback lines.
#[derive(Debug, Default)]
struct Changeset {
    key: String,
    line: usize,
    attrs: Vec<(String, String)>,
    body: Vec<usize>,
    rollback: Vec<(usize, String)>,
}

impl Changeset {
    fn attr(&self, k: &str) -> Option<&str> {
        self.attrs.iter().find(|(a, _)| a.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str())
    }
    /// Included for PostgreSQL (`dbms:`) and not `ignore:true`.
    fn included(&self) -> bool {
        let dbms = self.attr("dbms").map(|d| d.split(',').map(|x| x.trim().to_ascii_lowercase()).collect::<Vec<_>>());
        let for_pg = match dbms {
            None => true,
            Some(list) if list.iter().any(|d| d == "postgresql" || d == "all") => true,
            Some(list) if list.iter().any(|d| d == "!postgresql" || d == "none") => false,
            Some(list) => list.iter().all(|d| d.starts_with('!')),
        };
        for_pg && self.attr("ignore") != Some("true")
    }
}

const KNOWN: &[&str] = &[
    "runInTransaction",
    "splitStatements",
    "endDelimiter",
    "dbms",
    "ignore",
    "context",
    "contextFilter",
    "labels",
    "runAlways",
    "runOnChange",
    "failOnError",
    "stripComments",
    "logicalFilePath",
    "rollbackSplitStatements",
    "rollbackEndDelimiter",
    "created",
    "runOrder",
    "runWith",
];

fn changesets(text: &str, file: &str) -> Result<Vec<Changeset>> {
    let mut out: Vec<Changeset> = Vec::new();
    let mut in_rollback_block = false;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let t = line.trim();
        let lower = t.to_ascii_lowercase();
        let comment = t.strip_prefix("--").map(str::trim_start);
        if in_rollback_block {
            if let Some(before) = t.strip_suffix("*/") {
                in_rollback_block = false;
                push_rollback(&mut out, i, before);
            } else {
                push_rollback(&mut out, i, line.trim_end_matches(['\r', '\n']));
            }
        } else if lower.starts_with("/* liquibase rollback") || lower.starts_with("/*liquibase rollback") {
            in_rollback_block = !t.ends_with("*/");
        } else if let Some(rest) = comment.and_then(|c| c.strip_prefix("changeset")) {
            out.push(header(rest, file, i + 1)?);
        } else if let Some(rest) = comment.and_then(|c| c.strip_prefix("rollback")) {
            push_rollback(&mut out, i, rest.trim());
        } else if let Some(c) = out.last_mut() {
            c.body.push(i);
        }
    }
    Ok(out)
}

fn push_rollback(out: &mut [Changeset], line: usize, sql: &str) {
    if let Some(c) = out.last_mut() {
        c.rollback.push((line, sql.to_string()));
    }
}

/// `author:id attr:value …` after `--changeset`.
fn header(rest: &str, file: &str, line: usize) -> Result<Changeset> {
    let mut words = rest.split_whitespace();
    let key = words.next().filter(|k| k.contains(':')).ok_or_else(|| {
        Error::input(format!("{file}:{line}: a changeset needs author:id, e.g. --changeset jane:add-country"))
    })?;
    let mut attrs = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once(':') else {
            return Err(Error::input(format!("{file}:{line}: {w:?} is not attribute:value")));
        };
        if !KNOWN.iter().any(|known| known.eq_ignore_ascii_case(k)) {
            return Err(Error::input(format!(
                "{file}:{line}: unknown changeset attribute {k:?}; known: {}",
                KNOWN.join(", ")
            )));
        }
        attrs.push((k.to_string(), v.to_string()));
    }
    Ok(Changeset { key: key.to_string(), line, attrs, ..Default::default() })
}

/// The statement ranges a changeset's own settings define (none: split by
/// pg_query), and where its end delimiters stand.
fn fixed(text: &str, c: &Changeset) -> (Vec<Range<usize>>, Vec<Range<usize>>) {
    let starts = line_starts(text);
    let (Some(&first), Some(&last)) = (c.body.first(), c.body.last()) else { return Default::default() };
    let end_of = |l: usize| starts.get(l + 1).copied().unwrap_or(text.len());
    if c.attr("splitStatements") == Some("false") {
        return (std::iter::once(starts[first]..end_of(last)).collect(), Vec::new());
    }
    let Some(delim) = c.attr("endDelimiter").filter(|d| *d != ";") else { return Default::default() };
    let (mut pieces, mut delims) = (Vec::new(), Vec::new());
    let mut from = starts[first];
    for &l in &c.body {
        let line = text[starts[l]..end_of(l)].trim_end();
        if line.ends_with(delim) {
            let at = starts[l] + line.len() - delim.len();
            pieces.push(from..at);
            delims.push(at..at + delim.len());
            from = end_of(l);
        }
    }
    if !text[from..end_of(last)].trim().is_empty() {
        pieces.push(from..end_of(last));
    }
    (pieces, delims)
}

pub fn read(dir: &Path, ctx: &Ctx) -> Result<Read> {
    let mut files = Vec::new();
    super::sql_files_below(dir, &mut files)?;
    let mut parts = Vec::new();
    let mut notes = Vec::new();
    for path in &files {
        let text = super::read_text(path)?;
        if !is_formatted(&text) {
            notes.push(format!(
                "{}: not Liquibase formatted SQL (no --liquibase formatted sql); not read",
                path.display()
            ));
            continue;
        }
        let file = path.display().to_string();
        for c in changesets(&text, &file)?.into_iter().filter(Changeset::included) {
            if c.attr("context").or(c.attr("contextFilter")).or(c.attr("labels")).is_some() {
                notes.push(format!(
                    "{file}:{}: changeset {} has contexts or labels; rehearsed (no filter applies)",
                    c.line, c.key
                ));
            }
            let (sending, hint) = if c.attr("runInTransaction") == Some("false") {
                (Sending::Autocommit, super::in_transaction_hint("Liquibase", ""))
            } else {
                (
                    Sending::InTransaction,
                    super::in_transaction_hint("Liquibase", "add runInTransaction:false to the changeset"),
                )
            };
            let (pieces, delims) = fixed(&text, &c);
            let mut body = super::keep_lines(&text, |i| c.body.contains(&i));
            for d in delims {
                body.replace_range(d.clone(), &" ".repeat(d.len()));
            }
            let name = format!("{} {}", super::file_name(path), c.key);
            let unit = Unit { path, name: &name, version: Some(&c.key) };
            let mut groups = super::groups(ctx, unit, &body, &pieces, sending, &hint)?;
            let rollback = rollback_text(&text, &c);
            let down = super::script(ctx, &rollback, &[], path, sending, &hint)?;
            groups.iter_mut().for_each(|(g, _)| g.down = down.clone());
            parts.extend(groups);
        }
    }
    let mut read = Read::parts(parts);
    read.notes = notes;
    Ok(read)
}

/// The rollback SQL on the lines it came from (other lines blank), so
/// messages name the right line; `not required` and `empty` mean none.
fn rollback_text(text: &str, c: &Changeset) -> String {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(|_| "\n".to_string()).collect();
    for (l, sql) in &c.rollback {
        let lower = sql.to_ascii_lowercase();
        if lower != "not required" && lower != "empty" {
            lines[*l] = format!("{sql}\n");
        }
    }
    lines.concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changesets_and_rollbacks() {
        let text = "--liquibase formatted sql\n\n--changeset jane:1 runInTransaction:false\nCREATE INDEX CONCURRENTLY i ON t (a);\n--rollback DROP INDEX i;\n\n--changeset jane:2 dbms:oracle\nSELECT 1;\n--changeset joe:3 splitStatements:false\nSELECT 1; SELECT 2;\n/* liquibase rollback\nSELECT 3;\n*/\n";
        assert!(is_formatted(text));
        let cs = changesets(text, "c.sql").unwrap();
        assert_eq!(cs.len(), 3);
        assert_eq!(cs[0].attr("runInTransaction"), Some("false"));
        assert_eq!(cs[0].rollback, vec![(4, "DROP INDEX i;".to_string())]);
        assert!(!cs[1].included());
        assert_eq!(fixed(text, &cs[2]).0.len(), 1);
        assert_eq!(cs[2].rollback.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(), ["SELECT 3;", ""]);
        assert!(header("jane", "c.sql", 1).is_err());
        assert!(header("jane:1 bogus:x", "c.sql", 1).unwrap_err().message.contains("unknown changeset attribute"));
    }
}
