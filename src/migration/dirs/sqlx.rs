//! sqlx: `<version>_<description>.sql`, or reversible pairs
//! `<version>_<description>.up.sql` / `.down.sql`, in version order. sqlx
//! runs a file as one query string inside a transaction, or without one when
//! the file begins with `-- no-transaction`. History: `_sqlx_migrations`,
//! successful rows by `version`.

use std::path::{Path, PathBuf};

use super::{Ctx, Read, Sending, Unit};
use crate::error::{Error, Result};

pub const HISTORY_SQL: &str = "SELECT version::text FROM {table} WHERE success";

/// sqlx's own test: the file starts with the marker.
pub fn no_transaction(text: &str) -> bool {
    text.starts_with("-- no-transaction")
}

/// (version, up?) of `3_x.sql` (up), `3_x.up.sql` (up), `3_x.down.sql` (down).
fn parse_name(file: &str) -> Option<(i64, bool)> {
    let v = super::leading_version(file)?.parse().ok()?;
    if file.ends_with(".down.sql") { Some((v, false)) } else { file.ends_with(".sql").then_some((v, true)) }
}

fn sending(text: &str) -> Sending {
    if no_transaction(text) { Sending::OneString } else { Sending::InTransaction }
}

pub fn read(dir: &Path, ctx: &Ctx) -> Result<Read> {
    let mut ups: Vec<(i64, PathBuf)> = Vec::new();
    let mut downs: Vec<(i64, PathBuf)> = Vec::new();
    for p in super::list(dir)? {
        match parse_name(&super::file_name(&p)) {
            Some((v, true)) => ups.push((v, p)),
            Some((v, false)) => downs.push((v, p)),
            None => {}
        }
    }
    ups.sort();
    if let Some(w) = ups.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Error::input(format!(
            "{} and {}: two migrations of version {}; sqlx refuses that",
            w[0].1.display(),
            w[1].1.display(),
            w[0].0
        )));
    }
    let hint = |text: &str| {
        if no_transaction(text) {
            super::one_string_hint("sqlx")
        } else {
            super::in_transaction_hint("sqlx", "begin the file with `-- no-transaction`")
        }
    };
    let mut parts = Vec::new();
    for (version, path) in &ups {
        let text = super::read_text(path)?;
        let name = super::file_name(path);
        let v = version.to_string();
        let unit = Unit { path, name: &name, version: Some(&v) };
        let mut groups = super::groups(ctx, unit, &text, &[], sending(&text), &hint(&text))?;
        if let Some((_, d)) = downs.iter().find(|(dv, _)| dv == version) {
            let dtext = super::read_text(d)?;
            let down = super::script(ctx, &dtext, &[], d, sending(&dtext), &hint(&dtext))?;
            groups.iter_mut().for_each(|(g, _)| g.down = down.clone());
        }
        parts.extend(groups);
    }
    Ok(Read::parts(parts))
}
