//! dbmate: `<version>_<name>.sql` in version order, split by
//! `-- migrate:up` and `-- migrate:down`; each part is sent as one query
//! string inside a transaction, or without one when its marker says
//! `transaction:false`. History: `schema_migrations (version)`, one row per
//! applied migration.

use std::path::Path;

use super::{Ctx, Read, Sending, Unit};
use crate::error::{Error, Result};

pub const HISTORY_SQL: &str = "SELECT version::text FROM {table}";

/// A `-- migrate:` marker: (up?, transaction?).
fn marker(line: &str, file: &str, n: usize) -> Result<Option<(bool, bool)>> {
    let Some(rest) = line.trim().strip_prefix("-- migrate:") else { return Ok(None) };
    let mut words = rest.split_whitespace();
    let up = match words.next() {
        Some("up") => true,
        Some("down") => false,
        other => {
            return Err(Error::input(format!(
                "{file}:{n}: `-- migrate:{}` is not a dbmate marker; use -- migrate:up or -- migrate:down",
                other.unwrap_or_default()
            )));
        }
    };
    let mut transaction = true;
    for w in words {
        match w {
            "transaction:false" => transaction = false,
            "transaction:true" => transaction = true,
            other => {
                return Err(Error::input(format!(
                    "{file}:{n}: unknown dbmate option {other:?}; dbmate knows transaction:false"
                )));
            }
        }
    }
    Ok(Some((up, transaction)))
}

pub fn read(dir: &Path, ctx: &Ctx) -> Result<Read> {
    let mut files = Vec::new();
    for p in super::list(dir)? {
        let name = super::file_name(&p);
        if let (Some(v), true) = (super::leading_version(&name), name.ends_with(".sql")) {
            files.push((v.to_string(), p));
        }
    }
    files.sort_by(|a, b| super::version_cmp(&a.0, &b.0));
    let mut parts = Vec::new();
    for (version, path) in &files {
        let text = super::read_text(path)?;
        let file = path.display().to_string();
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let mut section = vec![None; lines.len()];
        let (mut current, mut up_tx, mut down_tx, mut seen_up) = (None, true, true, false);
        for (i, line) in lines.iter().enumerate() {
            if let Some((up, tx)) = marker(line, &file, i + 1)? {
                current = Some(up);
                if up {
                    (up_tx, seen_up) = (tx, true);
                } else {
                    down_tx = tx;
                }
            } else {
                section[i] = current;
            }
        }
        if !seen_up {
            return Err(Error::input(format!("{file}: no `-- migrate:up` marker; dbmate needs one")));
        }
        let sending = |tx: bool| if tx { Sending::InTransaction } else { Sending::OneString };
        let hint = super::in_transaction_hint("dbmate", "add transaction:false to its -- migrate:up line");
        let up = super::keep_lines(&text, |i| section[i] == Some(true));
        let down = super::keep_lines(&text, |i| section[i] == Some(false));
        let name = super::file_name(path);
        let unit = Unit { path, name: &name, version: Some(version) };
        let up_hint = if up_tx { hint } else { super::one_string_hint("dbmate") };
        let mut groups = super::groups(ctx, unit, &up, &[], sending(up_tx), &up_hint)?;
        let down_hint = if down_tx {
            super::in_transaction_hint("dbmate", "add transaction:false to its -- migrate:down line")
        } else {
            super::one_string_hint("dbmate")
        };
        let down = super::script(ctx, &down, &[], path, sending(down_tx), &down_hint)?;
        groups.iter_mut().for_each(|(g, _)| g.down = down.clone());
        parts.extend(groups);
    }
    Ok(Read::parts(parts))
}
