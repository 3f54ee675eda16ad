//! Drizzle: `<tag>.sql` files in the order of `meta/_journal.json` (which
//! drizzle-kit writes with each migration's `when`, in milliseconds). Each
//! `--> statement-breakpoint` ends a statement (drizzle sends each piece as
//! is). Drizzle's `migrate()` runs every pending migration in one
//! transaction. No down part. History: `drizzle.__drizzle_migrations
//! (hash, created_at)`: a migration is applied when its `when` is not after
//! the latest `created_at`.

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;

use super::{Ctx, Read, Sending, Unit};
use crate::error::{Error, Result};
use crate::migration::{Group, TxHint};

pub const HISTORY_SQL: &str = "SELECT coalesce(max(created_at), 0)::text FROM {table}";

pub const BREAKPOINT: &str = "--> statement-breakpoint";

#[derive(Deserialize)]
struct Journal {
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    when: u64,
    tag: String,
}

/// The pieces between breakpoints, as byte ranges.
pub fn pieces(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, _) in text.match_indices(BREAKPOINT) {
        out.push(start..i);
        start = i + BREAKPOINT.len();
    }
    out.push(start..text.len());
    out
}

pub fn read(dir: &Path, ctx: &Ctx) -> Result<Read> {
    let journal_path = dir.join("meta/_journal.json");
    if !journal_path.is_file() {
        return Err(Error::input(format!(
            "{}: drizzle's meta/_journal.json is missing (drizzle-kit writes it next to the SQL files; it orders them)",
            dir.display()
        )));
    }
    let journal: Journal = serde_json::from_str(&super::read_text(&journal_path)?)
        .map_err(|e| Error::input(format!("{}: {e}", journal_path.display())))?;
    let hint = TxHint {
        why: ", and drizzle's migrate() runs every pending migration in one".into(),
        fix: "run it outside drizzle's migrate()".into(),
        control: "drizzle already runs the migrations in one transaction: a BEGIN/COMMIT would end it early; remove it"
            .into(),
    };
    let mut parts = Vec::new();
    for e in &journal.entries {
        let path = dir.join(format!("{}.sql", e.tag));
        let text = super::read_text(&path)
            .map_err(|err| err.context(format!("{} lists {}", journal_path.display(), e.tag)))?;
        let name = super::file_name(&path);
        let when = e.when.to_string();
        let unit = Unit { path: &path, name: &name, version: Some(&when) };
        parts.extend(super::groups(ctx, unit, &text, &pieces(&text), Sending::InTransaction, &hint)?);
    }
    let mut read = Read::parts(parts);
    read.one_transaction = true;
    Ok(read)
}

/// One row: the latest `created_at`.
pub fn applied(groups: &[Group], rows: &[Vec<String>]) -> super::Applied {
    let last: u64 = rows.first().and_then(|r| r[0].parse().ok()).unwrap_or(0);
    super::Applied::of(
        groups
            .iter()
            .map(|g| g.version.as_deref().and_then(|v| v.parse::<u64>().ok()).is_some_and(|w| w <= last))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn pieces() {
        let t = "CREATE TABLE a ();\n--> statement-breakpoint\nCREATE INDEX i ON a (x);";
        let p = super::pieces(t);
        assert_eq!(p.len(), 2);
        assert_eq!(t[p[1].clone()].trim(), "CREATE INDEX i ON a (x);");
    }
}
