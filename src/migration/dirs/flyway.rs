//! Flyway: `V<version>__<description>.sql` (versioned, in version order),
//! `U<version>__<description>.sql` (its undo: the down part),
//! `R__<description>.sql` (repeatable: after the versioned ones, by
//! description, whenever its checksum changed), anywhere below the directory.
//! Each migration runs in a transaction unless its `<file>.sql.conf` says
//! `executeInTransaction=false`, or it holds a statement that cannot run in
//! one (Flyway then runs it without: `CREATE INDEX CONCURRENTLY`, …).
//! History: `flyway_schema_history` (successful rows; a repeatable counts as
//! applied with the same checksum).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Ctx, Read, Sending, Unit, version_cmp};
use crate::error::{Error, Result};
use crate::migration::{Group, Step, TxHint};

pub const HISTORY_SQL: &str = "SELECT coalesce(version, ''), description, coalesce(checksum, 0)::text, type \
     FROM {table} WHERE success";

/// What a Flyway file name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Name {
    Versioned { version: String, description: String },
    Undo { version: String },
    Repeatable { description: String },
}

/// `V1_2__add_x.sql` → versioned 1.2 "add x"; `None` for other files.
pub fn parse_name(file: &str) -> Option<Name> {
    let stem = file.strip_suffix(".sql")?;
    let (head, description) = stem.split_once("__")?;
    let description = description.replace('_', " ");
    let version = |v: &str| {
        (!v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '_')).then(|| v.replace('_', "."))
    };
    match head.split_at_checked(1)? {
        ("V", v) => Some(Name::Versioned { version: version(v)?, description }),
        ("U", v) => Some(Name::Undo { version: version(v)? }),
        ("R", "") => Some(Name::Repeatable { description }),
        _ => None,
    }
}

/// Flyway's checksum: CRC32 of the file's lines without their line ends.
pub fn checksum(text: &str) -> i32 {
    let mut crc = Crc32::default();
    for line in text.lines() {
        crc.update(line.as_bytes());
    }
    crc.finish() as i32
}

/// CRC-32 (IEEE), as `java.util.zip.CRC32` computes it.
#[derive(Default)]
struct Crc32(u32);

impl Crc32 {
    fn update(&mut self, bytes: &[u8]) {
        let mut c = !self.0;
        for &b in bytes {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        self.0 = !c;
    }
    fn finish(&self) -> u32 {
        self.0
    }
}

/// `executeInTransaction` from `<file>.sql.conf`, when it sets it.
fn execute_in_transaction(path: &Path) -> Result<Option<bool>> {
    let conf = PathBuf::from(format!("{}.conf", path.display()));
    if !conf.is_file() {
        return Ok(None);
    }
    let text = super::read_text(&conf)?;
    for (n, line) in text.lines().enumerate() {
        let Some((k, v)) = line.split_once('=') else { continue };
        if k.trim() == "executeInTransaction" {
            return match v.trim() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                other => Err(Error::input(format!(
                    "{}:{}: executeInTransaction must be true or false, not {other:?}",
                    conf.display(),
                    n + 1
                ))),
            };
        }
    }
    Ok(None)
}

/// How Flyway sends a file: in a transaction unless its `.conf` says
/// otherwise or a statement cannot run in one.
fn sending(ctx: &Ctx, path: &Path, text: &str) -> Result<Sending> {
    if execute_in_transaction(path)? == Some(false) {
        return Ok(Sending::Autocommit);
    }
    let steps: Vec<Step> = super::steps(ctx, text, &[], path)?.unwrap_or_default();
    let non_transactional = steps.iter().flat_map(Step::statements).any(|s| s.needs_autocommit.is_some());
    Ok(if non_transactional { Sending::Autocommit } else { Sending::InTransaction })
}

fn hint() -> TxHint {
    super::in_transaction_hint("Flyway", "set executeInTransaction=false in the file's .sql.conf")
}

pub fn read(dir: &Path, ctx: &Ctx) -> Result<Read> {
    let mut files = Vec::new();
    super::sql_files_below(dir, &mut files)?;
    let mut versioned: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut undo: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut repeatable: Vec<(String, PathBuf)> = Vec::new();
    let mut notes = Vec::new();
    for p in files {
        let name = super::file_name(&p);
        let (map, version) = match parse_name(&name) {
            Some(Name::Versioned { version, .. }) => (&mut versioned, version),
            Some(Name::Undo { version }) => (&mut undo, version),
            Some(Name::Repeatable { description }) => {
                repeatable.push((description, p));
                continue;
            }
            None => {
                notes.push(format!("{}: not a Flyway migration name (V…__, U…__, R__…); not read", p.display()));
                continue;
            }
        };
        if let Some(other) = map.keys().find(|v| version_cmp(v, &version).is_eq()) {
            return Err(Error::input(format!(
                "{}: version {version} is also the version of {}; Flyway refuses two migrations of one version",
                p.display(),
                map[other].display()
            )));
        }
        map.insert(version, p);
    }
    let mut order: Vec<(String, PathBuf)> = versioned.into_iter().collect();
    order.sort_by(|a, b| version_cmp(&a.0, &b.0));
    repeatable.sort();
    let mut parts = Vec::new();
    for (version, path) in &order {
        let text = super::read_text(path)?;
        let name = super::file_name(path);
        let unit = Unit { path, name: &name, version: Some(version) };
        let mut groups = super::groups(ctx, unit, &text, &[], sending(ctx, path, &text)?, &hint())?;
        if let Some((_, u)) = undo.iter().find(|(v, _)| version_cmp(v, version).is_eq()) {
            let utext = super::read_text(u)?;
            let down = super::script(ctx, &utext, &[], u, sending(ctx, u, &utext)?, &hint())?;
            groups.iter_mut().for_each(|(g, _)| g.down = down.clone());
        }
        parts.extend(groups);
    }
    if let Some((v, u)) = undo.iter().find(|(v, _)| !order.iter().any(|(o, _)| version_cmp(o, v).is_eq())) {
        return Err(Error::input(format!("{}: an undo of version {v}, but no V{v}__….sql is here", u.display())));
    }
    for (_, path) in &repeatable {
        let text = super::read_text(path)?;
        let name = super::file_name(path);
        let unit = Unit { path, name: &name, version: None };
        let mut groups = super::groups(ctx, unit, &text, &[], sending(ctx, path, &text)?, &hint())?;
        groups.iter_mut().for_each(|(g, _)| g.checksum = Some(checksum(&text)));
        parts.extend(groups);
    }
    let mut read = Read::parts(parts);
    read.notes = notes;
    Ok(read)
}

/// Rows (version, description, checksum, type) of successful migrations.
pub fn applied(groups: &[Group], rows: &[Vec<String>]) -> super::Applied {
    let applied = groups
        .iter()
        .map(|g| match (&g.version, g.checksum) {
            (Some(v), _) => rows.iter().any(|r| !r[0].is_empty() && version_cmp(&r[0], v).is_eq()),
            (None, Some(sum)) => {
                let description = match parse_name(&super::file_name(&g.path)) {
                    Some(Name::Repeatable { description }) => description,
                    _ => return false,
                };
                rows.iter().any(|r| r[0].is_empty() && r[1] == description && r[2] == sum.to_string())
            }
            (None, None) => false,
        })
        .collect();
    super::Applied::of(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            parse_name("V1_2__add_country.sql"),
            Some(Name::Versioned { version: "1.2".into(), description: "add country".into() })
        );
        assert_eq!(parse_name("U3__x.sql"), Some(Name::Undo { version: "3".into() }));
        assert_eq!(parse_name("R__views.sql"), Some(Name::Repeatable { description: "views".into() }));
        assert_eq!(parse_name("V__x.sql"), None);
        assert_eq!(parse_name("afterMigrate.sql"), None);
        assert_eq!(parse_name("Vx__y.sql"), None);
    }

    #[test]
    fn checksum_is_javas_crc32_of_the_lines() {
        // The CRC-32/IEEE check value, as java.util.zip.CRC32 gives it.
        let mut c = Crc32::default();
        c.update(b"123456789");
        assert_eq!(c.finish(), 0xCBF4_3926);
        assert_eq!(checksum("a\r\nb\n"), checksum("ab"));
    }
}
