//! golang-migrate: `<version>_<title>.up.sql` and its down part
//! `<version>_<title>.down.sql`, in version order. The postgres driver
//! sends a file as one query string (no transaction of its own; PostgreSQL
//! runs several statements of one string as one transaction). History:
//! `schema_migrations (version bigint, dirty boolean)`, one row holding the
//! current version: every version up to it is applied, unless it is dirty
//! (its migration failed half-way), when it is not.

use std::path::Path;

use super::{Ctx, Read, Sending, Unit};
use crate::error::{Error, Result};
use crate::migration::Group;

pub const HISTORY_SQL: &str = "SELECT version::text, dirty::text FROM {table}";

/// `12_add_x.up.sql` → (12, "up").
fn parse_name(file: &str) -> Option<(u64, &str)> {
    let (rest, direction) =
        if let Some(r) = file.strip_suffix(".up.sql") { (r, "up") } else { (file.strip_suffix(".down.sql")?, "down") };
    let digits = rest.split('_').next()?;
    Some((digits.parse().ok()?, direction))
}

pub fn read(dir: &Path, ctx: &Ctx) -> Result<Read> {
    let hint = super::one_string_hint("golang-migrate");
    let mut ups = Vec::new();
    let mut downs = Vec::new();
    for p in super::list(dir)? {
        match parse_name(&super::file_name(&p)) {
            Some((v, "up")) => ups.push((v, p)),
            Some((v, _)) => downs.push((v, p)),
            None => {}
        }
    }
    ups.sort();
    if let Some(w) = ups.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Error::input(format!(
            "{} and {}: two up migrations of version {}",
            w[0].1.display(),
            w[1].1.display(),
            w[0].0
        )));
    }
    let mut parts = Vec::new();
    for (version, path) in &ups {
        let text = super::read_text(path)?;
        let name = super::file_name(path);
        let v = version.to_string();
        let mut groups =
            super::groups(ctx, Unit { path, name: &name, version: Some(&v) }, &text, &[], Sending::OneString, &hint)?;
        if let Some((_, d)) = downs.iter().find(|(dv, _)| dv == version) {
            let down = super::script(ctx, &super::read_text(d)?, &[], d, Sending::OneString, &hint)?;
            groups.iter_mut().for_each(|(g, _)| g.down = down.clone());
        }
        parts.extend(groups);
    }
    Ok(Read::parts(parts))
}

/// One row (version, dirty).
pub fn applied(groups: &[Group], rows: &[Vec<String>]) -> super::Applied {
    let Some(row) = rows.first() else { return super::Applied::of(vec![false; groups.len()]) };
    let current: u64 = row[0].parse().unwrap_or(0);
    let dirty = row[1] == "true";
    let applied = groups
        .iter()
        .map(|g| {
            let v: u64 = g.version.as_deref().and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
            v < current || (v == current && !dirty)
        })
        .collect();
    let mut out = super::Applied::of(applied);
    if dirty {
        out.notes.push(format!(
            "schema_migrations is dirty at version {current}: that migration failed half-way and golang-migrate \
             refuses to run until it is forced; it is rehearsed as pending"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        assert_eq!(super::parse_name("0002_add.up.sql"), Some((2, "up")));
        assert_eq!(super::parse_name("0002_add.down.sql"), Some((2, "down")));
        assert_eq!(super::parse_name("0002_add.sql"), None);
        assert_eq!(super::parse_name("x_add.up.sql"), None);
    }
}
