//! Migration tools' directories (`migration.dir`), one reader per format:
//! Flyway, golang-migrate, goose, dbmate, sqitch, Liquibase formatted SQL,
//! Prisma, Drizzle, sqlx and Diesel. A reader turns its tool's files into
//! groups (one per migration file, in the tool's order) whose transaction
//! mode is the one the tool runs the file in (`Sending`), with the down part
//! kept as a `Script`. Each reader also says how its tool's history table
//! records an applied migration (`HISTORY_SQL`, `applied`), which `history`
//! uses to choose the pending ones. `detect` names the format of a directory
//! (`format = "auto"`). Reference: docs/migration-directories.md.

pub mod dbmate;
pub mod diesel;
pub mod drizzle;
pub mod flyway;
pub mod golang_migrate;
pub mod goose;
pub mod liquibase;
pub mod prisma;
pub mod sqitch;
pub mod sqlx;

use std::cmp::Ordering;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::split::{self, Statement};
use super::{Defaults, Group, Migration, Script, Source, Step, TxHint, TxMode};
use crate::error::{Error, Result};

/// A migration tool whose directory lockimpact reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Flyway,
    GolangMigrate,
    Goose,
    Dbmate,
    Sqitch,
    Liquibase,
    Prisma,
    Drizzle,
    Sqlx,
    Diesel,
}

impl Format {
    pub const ALL: [Format; 10] = [
        Format::Flyway,
        Format::GolangMigrate,
        Format::Goose,
        Format::Dbmate,
        Format::Sqitch,
        Format::Liquibase,
        Format::Prisma,
        Format::Drizzle,
        Format::Sqlx,
        Format::Diesel,
    ];

    /// `migration.format` names it so.
    pub fn name(self) -> &'static str {
        match self {
            Format::Flyway => "flyway",
            Format::GolangMigrate => "golang-migrate",
            Format::Goose => "goose",
            Format::Dbmate => "dbmate",
            Format::Sqitch => "sqitch",
            Format::Liquibase => "liquibase",
            Format::Prisma => "prisma",
            Format::Drizzle => "drizzle",
            Format::Sqlx => "sqlx",
            Format::Diesel => "diesel",
        }
    }

    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Where the tool records what it applied, by default.
    pub fn history_table(self) -> &'static str {
        match self {
            Format::Flyway => "flyway_schema_history",
            Format::GolangMigrate | Format::Dbmate => "schema_migrations",
            Format::Goose => "goose_db_version",
            Format::Sqitch => "sqitch.changes",
            Format::Liquibase => "databasechangelog",
            Format::Prisma => "_prisma_migrations",
            Format::Drizzle => "drizzle.__drizzle_migrations",
            Format::Sqlx => "_sqlx_migrations",
            Format::Diesel => "__diesel_schema_migrations",
        }
    }

    /// The query (on the table `{table}`) whose rows, as text, `applied` reads.
    pub fn history_sql(self) -> &'static str {
        match self {
            Format::Flyway => flyway::HISTORY_SQL,
            Format::GolangMigrate => golang_migrate::HISTORY_SQL,
            Format::Goose => goose::HISTORY_SQL,
            Format::Dbmate => dbmate::HISTORY_SQL,
            Format::Sqitch => sqitch::HISTORY_SQL,
            Format::Liquibase => liquibase::HISTORY_SQL,
            Format::Prisma => prisma::HISTORY_SQL,
            Format::Drizzle => drizzle::HISTORY_SQL,
            Format::Sqlx => sqlx::HISTORY_SQL,
            Format::Diesel => diesel::HISTORY_SQL,
        }
    }

    /// Which groups the history rows record as applied (`project`: sqitch's).
    pub fn applied(self, groups: &[Group], rows: &[Vec<String>], project: Option<&str>) -> Applied {
        match self {
            Format::Flyway => flyway::applied(groups, rows).out_of_order(groups, "Flyway", "outOfOrder=true"),
            Format::GolangMigrate => golang_migrate::applied(groups, rows),
            Format::Goose => goose::applied(groups, rows).out_of_order(groups, "goose", "run with -allow-missing"),
            Format::Sqitch => sqitch::applied(groups, rows, project.unwrap_or_default()),
            Format::Drizzle => drizzle::applied(groups, rows),
            // One row per applied migration, keyed by its version (or name).
            Format::Dbmate | Format::Liquibase | Format::Prisma | Format::Sqlx | Format::Diesel => {
                let keys: Vec<&str> = rows.iter().filter_map(|r| r.first().map(String::as_str)).collect();
                Applied::of(groups.iter().map(|g| g.version.as_deref().is_some_and(|v| keys.contains(&v))).collect())
            }
        }
    }
}

/// What a history table says: per group, applied or not; and what the user
/// should know (a dirty version, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub applied: Vec<bool>,
    pub notes: Vec<String>,
}

impl Applied {
    pub fn of(applied: Vec<bool>) -> Applied {
        Applied { applied, notes: Vec::new() }
    }

    /// Notes each pending group older than the newest applied one: `tool`
    /// refuses or skips such a migration unless told to (`how`).
    pub fn out_of_order(mut self, groups: &[Group], tool: &str, how: &str) -> Applied {
        let newest = groups
            .iter()
            .zip(&self.applied)
            .filter(|(_, a)| **a)
            .filter_map(|(g, _)| g.version.as_deref())
            .max_by(|a, b| version_cmp(a, b));
        let Some(newest) = newest else { return self };
        for (g, _) in groups.iter().zip(&self.applied).filter(|(_, a)| !**a) {
            if g.version.as_deref().is_some_and(|v| version_cmp(v, newest).is_lt()) {
                self.notes.push(format!(
                    "{} is pending but older than the newest applied migration ({newest}): {tool} refuses or skips \
                     it unless {how}; it is rehearsed as pending",
                    g.name
                ));
            }
        }
        self
    }
}

/// What a reader returns: the groups with their steps, in the tool's order.
pub struct Read {
    pub parts: Vec<(Group, Vec<Step>)>,
    /// All groups in one transaction (Drizzle).
    pub one_transaction: bool,
    pub project: Option<String>,
    /// What the user should know about how the directory was read.
    pub notes: Vec<String>,
}

impl Read {
    fn parts(parts: Vec<(Group, Vec<Step>)>) -> Read {
        Read { parts, one_transaction: false, project: None, notes: Vec::new() }
    }
}

/// Reads a migration directory in `format` (`None`: detect it).
pub fn load(
    dir: &Path,
    format: Option<Format>,
    from: Option<String>,
    history_table: Option<String>,
    defaults: &Defaults,
) -> Result<Migration> {
    if !dir.is_dir() {
        return Err(Error::input(format!(
            "{}: migration.dir is not a directory{}",
            dir.display(),
            if dir.exists() { "" } else { " (it does not exist)" }
        )));
    }
    let format = match format {
        Some(f) => f,
        None => detect(dir)?,
    };
    let ctx = Ctx { defaults, format };
    let read = match format {
        Format::Flyway => flyway::read(dir, &ctx)?,
        Format::GolangMigrate => golang_migrate::read(dir, &ctx)?,
        Format::Goose => goose::read(dir, &ctx)?,
        Format::Dbmate => dbmate::read(dir, &ctx)?,
        Format::Sqitch => sqitch::read(dir, &ctx)?,
        Format::Liquibase => liquibase::read(dir, &ctx)?,
        Format::Prisma => prisma::read(dir, &ctx)?,
        Format::Drizzle => drizzle::read(dir, &ctx)?,
        Format::Sqlx => sqlx::read(dir, &ctx)?,
        Format::Diesel => diesel::read(dir, &ctx)?,
    };
    if read.parts.is_empty() {
        return Err(Error::input(format!(
            "{}: no {} migration found in this directory (see docs/migration-directories.md for the file names \
             each format reads)",
            dir.display(),
            format.name()
        )));
    }
    if let Some(v) = &from
        && !read.parts.iter().any(|(g, _)| g.version.as_deref() == Some(v) || &g.name == v)
    {
        let known: Vec<&str> = read.parts.iter().filter_map(|(g, _)| g.version.as_deref()).collect();
        return Err(Error::input(format!(
            "--from / migration.from = {v:?}: no migration of {} has that version or name (versions: {})",
            dir.display(),
            known.join(", ")
        )));
    }
    let source = Source::Dir {
        path: dir.to_path_buf(),
        format,
        from,
        history_table: history_table.unwrap_or_else(|| format.history_table().to_string()),
        project: read.project,
    };
    let mut m = Migration::from_parts(read.parts, read.one_transaction, source);
    m.notes = read.notes;
    Ok(m)
}

/// The format of a directory, from the files its tool writes; an error
/// names what was looked for when nothing (or more than one) fits.
pub fn detect(dir: &Path) -> Result<Format> {
    let entries = list(dir)?;
    let name = |p: &PathBuf| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let subdir_has = |file: &str| entries.iter().any(|p| p.is_dir() && p.join(file).is_file());
    if dir.join("sqitch.plan").is_file() {
        return Ok(Format::Sqitch);
    }
    if dir.join("meta/_journal.json").is_file() {
        return Ok(Format::Drizzle);
    }
    if dir.join("migration_lock.toml").is_file() || subdir_has("migration.sql") {
        return Ok(Format::Prisma);
    }
    if subdir_has("up.sql") {
        return Ok(Format::Diesel);
    }
    let sql: Vec<&PathBuf> = entries.iter().filter(|p| p.is_file() && name(p).ends_with(".sql")).collect();
    let texts: Vec<String> = sql.iter().map(|p| std::fs::read_to_string(p).unwrap_or_default()).collect();
    let any = |f: &dyn Fn(&str, &str) -> bool| sql.iter().zip(&texts).any(|(p, t)| f(&name(p), t));
    let mut found = Vec::new();
    if any(&|n, _| flyway::parse_name(n).is_some()) {
        found.push(Format::Flyway);
    }
    if any(&|_, t| liquibase::is_formatted(t)) {
        found.push(Format::Liquibase);
    }
    if any(&|_, t| t.lines().any(|l| goose::annotation(l).is_some())) {
        found.push(Format::Goose);
    }
    if any(&|_, t| t.lines().any(|l| l.trim_start().starts_with("-- migrate:"))) {
        found.push(Format::Dbmate);
    }
    if found.is_empty() && any(&|n, _| n.ends_with(".up.sql")) {
        if any(&|_, t| sqlx::no_transaction(t)) {
            found.push(Format::Sqlx);
        } else {
            return Err(Error::input(format!(
                "{}: golang-migrate and sqlx both name their files <version>_<title>.up.sql; say which with \
                 migration.format = \"golang-migrate\" or \"sqlx\"",
                dir.display()
            )));
        }
    }
    if found.is_empty() && any(&|n, _| leading_version(n).is_some()) {
        found.push(Format::Sqlx); // <version>_<description>.sql without markers: sqlx's simple migrations
    }
    match found.as_slice() {
        [f] => Ok(*f),
        [] => Err(Error::input(format!(
            "{}: cannot tell which migration tool wrote this directory (looked for sqitch.plan, \
             meta/_journal.json, migration_lock.toml, <dir>/migration.sql, <dir>/up.sql, V<version>__<name>.sql, \
             --liquibase formatted sql, -- +goose Up, -- migrate:up, <version>_<name>[.up].sql); set \
             migration.format (one of {})",
            dir.display(),
            Format::ALL.map(Format::name).join(", ")
        ))),
        many => Err(Error::input(format!(
            "{}: files of several migration tools are here ({}); set migration.format to the one to rehearse",
            dir.display(),
            many.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// The entries of a directory, sorted by name.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| Error::input(format!("{}: cannot read the directory: {e}", dir.display())))?;
    let mut out: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    out.sort();
    Ok(out)
}

/// Every `.sql` file below `dir`, recursively, in path order (as Flyway and
/// Liquibase's `includeAll` scan a location).
pub fn sql_files_below(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for p in list(dir)? {
        if p.is_dir() {
            sql_files_below(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "sql") {
            out.push(p);
        }
    }
    Ok(())
}

/// A file's text (UTF-8, byte-order mark dropped), naming the file in the error.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::input(format!("{}: cannot read it: {e}", path.display())))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::input(format!(
            "{}: not valid UTF-8 ({}); save it as UTF-8",
            path.display(),
            crate::files::text::utf8_place(&e)
        ))
    })?;
    Ok(text.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(text))
}

/// A file name's file part, for group names.
pub fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

/// The leading digits of `1700000000_add_x.sql` (`None` without a `_` after them).
pub fn leading_version(name: &str) -> Option<&str> {
    let end = name.find(|c: char| !c.is_ascii_digit())?;
    (end > 0 && name[end..].starts_with('_')).then(|| &name[..end])
}

/// Orders versions made of numbers separated by `.` or `_` (`1.10` after
/// `1.9`, `001` equal to `1`); other text compares as text.
pub fn version_cmp(a: &str, b: &str) -> Ordering {
    let parts = |v: &str| -> Option<Vec<u128>> { v.split(['.', '_']).map(|p| p.parse().ok()).collect() };
    match (parts(a), parts(b)) {
        (Some(mut x), Some(mut y)) => {
            let n = x.len().max(y.len());
            x.resize(n, 0);
            y.resize(n, 0);
            x.cmp(&y)
        }
        _ => a.cmp(b),
    }
}

/// `text` with every line outside `keep` (0-based line indexes) blanked,
/// newlines kept: a section of a file parsed with its own line numbers and
/// byte offsets.
pub fn keep_lines(text: &str, keep: impl Fn(usize) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if keep(i) {
            out.push_str(line);
        } else {
            for c in line.chars() {
                if c == '\n' {
                    out.push('\n');
                } else {
                    out.extend(std::iter::repeat_n(' ', c.len_utf8()));
                }
            }
        }
    }
    out
}

/// Byte offset where each line of `text` starts.
pub fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect()
}

/// What readers share: the scenario's step defaults and the format (for messages).
pub struct Ctx<'a> {
    pub defaults: &'a Defaults,
    pub format: Format,
}

/// How a migration tool sends a file's SQL to the server, which decides the
/// transaction it runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sending {
    /// Inside a transaction the tool opens around the file (Flyway, goose,
    /// dbmate, sqlx, Diesel, a Liquibase changeset): `file`. A BEGIN/COMMIT
    /// in the file would end the tool's transaction early and is refused.
    InTransaction,
    /// As one query string without a transaction of its own (golang-migrate,
    /// Prisma, dbmate `transaction:false`, sqlx `-- no-transaction`, Diesel
    /// `run_in_transaction = false`): PostgreSQL runs the statements of one
    /// string as one implicit transaction (`file`), a lone statement on its
    /// own (`none`).
    OneString,
    /// Statement by statement in autocommit (psql for sqitch, goose `NO
    /// TRANSACTION`, Flyway `executeInTransaction=false`, Liquibase
    /// `runInTransaction:false`): `none`.
    Autocommit,
}

/// One migration file (or part of one) as a reader hands it over.
pub struct Unit<'a> {
    pub path: &'a Path,
    /// The group's name in the report (the file name, `dir/up.sql`, …).
    pub name: &'a str,
    /// What the tool's history table records for it.
    pub version: Option<&'a str>,
}

/// The steps of `text` (a whole file, or a section of one with the other
/// lines blanked); `fixed` ranges are one statement each (the tool's own
/// boundaries). `None` when it holds no statement.
pub fn steps(ctx: &Ctx, text: &str, fixed: &[Range<usize>], path: &Path) -> Result<Option<Vec<Step>>> {
    use pg_query::protobuf::Token;
    let has_sql = crate::pg::lex::scan_tokens(text)
        .map(|t| t.iter().any(|t| t.token != Token::SqlComment as i32 && t.token != Token::CComment as i32))
        .unwrap_or(true); // let the splitter name the scan error
    if !has_sql {
        return Ok(None);
    }
    let file = path.display();
    let parsed =
        split::split_with(text, fixed).map_err(|e| Error::input(format!("{file}:{}: {}", e.line, e.message)))?;
    if parsed.transaction.is_some() {
        return Err(Error::input(format!(
            "{file}: `-- lockimpact: transaction` does not apply to a {0} migration: {0} decides the transaction a \
             file runs in (see docs/migration-directories.md); remove the directive",
            ctx.format.name()
        )));
    }
    Ok(Some(super::resolve(parsed.steps, ctx.defaults)))
}

/// The groups of one migration file: one in the transaction mode its tool
/// sends it in (`sending`), or one per BEGIN … COMMIT block the file writes
/// when the tool leaves transactions to it. A file without statements is
/// one empty group (the tool still records it as applied).
pub fn groups(
    ctx: &Ctx,
    unit: Unit,
    text: &str,
    fixed: &[Range<usize>],
    sending: Sending,
    hint: &TxHint,
) -> Result<Vec<(Group, Vec<Step>)>> {
    let file = unit.path.display().to_string();
    let steps = steps(ctx, text, fixed, unit.path)?.unwrap_or_default();
    let statements = steps.iter().flat_map(Step::statements).count();
    let own_control = steps.iter().flat_map(Step::statements).any(|s| s.is_transaction_control);
    let (chunks, hint) = if own_control && sending != Sending::InTransaction {
        (super::transaction_blocks(steps, &file)?, &TxHint::own_blocks())
    } else {
        (vec![(transaction_of(sending, statements), steps)], hint)
    };
    for (tx, steps) in &chunks {
        super::check(steps, *tx, &file, hint)?;
    }
    Ok(super::named_groups(unit.name, unit.path, unit.version, chunks))
}

/// A down (undo, revert, verify) part: its steps in the transaction mode its
/// tool sends it in; `None` when it holds no statement. One that writes its
/// own BEGIN … COMMIT runs them as statements (`none`), as psql would.
pub fn script(
    ctx: &Ctx,
    text: &str,
    fixed: &[Range<usize>],
    path: &Path,
    sending: Sending,
    hint: &TxHint,
) -> Result<Option<Script>> {
    let Some(steps) = steps(ctx, text, fixed, path)? else { return Ok(None) };
    let statements: Vec<&Statement> = steps.iter().flat_map(Step::statements).collect();
    let transaction = if statements.iter().any(|s| s.is_transaction_control) && sending != Sending::InTransaction {
        TxMode::None
    } else {
        transaction_of(sending, statements.len())
    };
    super::check(&steps, transaction, &path.display().to_string(), hint)?;
    Ok(Some(Script { path: path.to_path_buf(), transaction, steps }))
}

/// The mode a tool runs `statements` statements in when sent `sending`.
fn transaction_of(sending: Sending, statements: usize) -> TxMode {
    match sending {
        Sending::InTransaction => TxMode::File,
        Sending::OneString if statements > 1 => TxMode::File,
        _ => TxMode::None,
    }
}

/// A message hint for a tool that runs each file in a transaction.
pub fn in_transaction_hint(tool: &str, fix: &str) -> TxHint {
    TxHint {
        why: format!(", and {tool} runs this file in one"),
        fix: fix.to_string(),
        control: format!(
            "{tool} already runs this file in a transaction: its BEGIN/COMMIT would end that transaction early; remove it"
        ),
    }
}

/// A message hint for a tool that sends a file as one query string.
pub fn one_string_hint(tool: &str) -> TxHint {
    TxHint {
        why: format!(
            ", and {tool} sends this file as one query string, which PostgreSQL runs as one transaction when it holds \
             several statements"
        ),
        fix: "put it in a migration of its own".into(),
        control: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_migrations_older_than_the_newest_applied_are_noted() {
        let g = |v: &str| Group {
            name: format!("V{v}__x.sql"),
            path: PathBuf::from("x"),
            version: Some(v.into()),
            transaction: TxMode::File,
            steps: 0..0,
            down: None,
            verify: None,
            checksum: None,
        };
        let groups = [g("1"), g("1.5"), g("2"), g("3")];
        let a = Applied::of(vec![true, false, true, false]).out_of_order(&groups, "Flyway", "outOfOrder=true");
        assert_eq!(a.notes.len(), 1);
        assert!(
            a.notes[0].starts_with("V1.5__x.sql is pending but older than the newest applied migration (2)"),
            "{:?}",
            a.notes
        );
    }

    #[test]
    fn versions_order_by_number() {
        assert_eq!(version_cmp("1.10", "1.9"), Ordering::Greater);
        assert_eq!(version_cmp("001", "1"), Ordering::Equal);
        assert_eq!(version_cmp("2_1", "2.0.5"), Ordering::Greater);
        assert_eq!(version_cmp("20240101", "9"), Ordering::Greater);
        assert_eq!(leading_version("0003_add_x.sql"), Some("0003"));
        assert_eq!(leading_version("add_x.sql"), None);
        assert_eq!(leading_version("0003.sql"), None);
    }

    #[test]
    fn kept_lines_keep_offsets() {
        let t = "a\nbé\nc\n";
        let k = keep_lines(t, |i| i == 1);
        assert_eq!(k.len(), t.len());
        assert_eq!(k.lines().nth(1), Some("bé"));
        assert_eq!(line_starts(t), vec![0, 2, 6, 8]);
    }
}
