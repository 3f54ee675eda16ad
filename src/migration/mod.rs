//! The candidate migration: where it comes from (`Source`: a file, stdin, a
//! migration tool's directory read by `dirs`, or a framework `command`
//! whose statements `capture` reads from the clone's log), split into steps
//! (`split`), grouped into the units its tool applies whole (`Group`: a
//! migration file, with its down part kept as a `Script`), resolved against
//! the scenario's defaults, and applied step by step (`runner`). `history`
//! chooses which groups of a directory are pending on the fresh copy;
//! `preflight` counts the rows a step will fail on before it runs.

pub mod capture;
pub mod dirs;
pub mod failpoint;
pub mod history;
pub mod preflight;
pub mod reversible;
pub mod runner;
pub mod schema_state;
pub mod split;
pub mod tables;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use split::{OnError, StepKind, TxMode};

use crate::error::{Error, Result};
use split::{Statement, TxControl};

/// A migration step ready to run: directive options resolved against the
/// scenario's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub line: usize,
    pub kind: StepKind,
    pub lock_timeout: Duration,
    pub statement_timeout: Duration,
    pub retries: u32,
    pub retry_backoff: Duration,
    pub on_error: OnError,
    /// Its reverse, from a `-- lockimpact: down` section (run by `--rollback` only).
    pub down: Vec<Statement>,
    /// Its check, from a `-- lockimpact: verify` section (or sqitch's
    /// `verify/` script, on a change's last step): run after the step, and
    /// after a rollback that leaves the step in place; an error fails it.
    pub verify: Vec<Statement>,
}

impl Step {
    /// The SQL statements of the step (none for a pause).
    pub fn statements(&self) -> Vec<&Statement> {
        match &self.kind {
            StepKind::Sql(s) => s.iter().collect(),
            StepKind::Backfill { statement, .. } => vec![statement],
            StepKind::Pause(_) => vec![],
        }
    }

    /// A step of one statement that cannot run inside a transaction block
    /// (VACUUM, CREATE INDEX CONCURRENTLY, …): in `step` mode it runs on its
    /// own outside one, as `none` mode runs it.
    pub fn outside_transaction(&self) -> bool {
        matches!(&self.kind, StepKind::Sql(s) if s.len() == 1 && s[0].needs_autocommit.is_some())
    }

    /// The mode the step runs in within a group of `group`'s mode: `none`
    /// for a step `outside_transaction` in `step` mode, else the group's.
    pub fn mode_in(&self, group: TxMode) -> TxMode {
        if group == TxMode::Step && self.outside_transaction() { TxMode::None } else { group }
    }
}

/// A migration: its steps in order, grouped into the units a migration tool
/// applies as a whole.
#[derive(Debug, Clone)]
pub struct Migration {
    pub steps: Vec<Step>,
    /// In order; each covers a range of `steps`, together all of them. A
    /// plain file is one group (or one per `BEGIN … COMMIT` block it writes).
    pub groups: Vec<Group>,
    /// Every group inside one transaction (Drizzle's `migrate()` runs all
    /// pending migrations in one); otherwise each group as its `transaction`
    /// says.
    pub one_transaction: bool,
    pub source: Source,
    /// What the user should know about how it was read (for the report's warnings).
    pub notes: Vec<String>,
    /// With `--rollback`: index into `steps` of the first step that undoes
    /// the forward ones (they follow them, in reverse order of what they undo).
    pub rollback_from: Option<usize>,
}

/// One unit a migration tool applies as a whole: a migration file (a
/// Liquibase changeset; a `BEGIN … COMMIT` block of a plain file), with the
/// transaction mode its tool runs it in and its down part.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The file it comes from, as the report names it (`V2__add_country.sql`,
    /// `20240101_x/up.sql`; `… [lines 3-9]` when a file has several groups).
    pub name: String,
    pub path: PathBuf,
    /// The version (or name, for Prisma, sqitch and Liquibase `author:id`)
    /// its tool records in its history table; `None` for a plain file and a
    /// Flyway repeatable migration.
    pub version: Option<String>,
    pub transaction: TxMode,
    /// Indexes into `Migration::steps`.
    pub steps: Range<usize>,
    /// The down part (golang-migrate `.down.sql`, goose `Down`, Flyway
    /// `U…` undo, sqitch `revert/`, Liquibase `--rollback`, …), parsed like
    /// the forward steps and not run by a forward rehearsal.
    pub down: Option<Script>,
    /// sqitch's `verify/` script (a deploy runs it only with `--verify`; kept, not run).
    pub verify: Option<Script>,
    /// Flyway's checksum of a repeatable migration (CRC32 of its lines), to
    /// tell whether `flyway_schema_history` holds this text of it.
    pub checksum: Option<i32>,
}

impl Group {
    /// Its entry in the run record, once its steps ran (`committed`: every
    /// step succeeded and its transaction, if it had one, committed).
    pub fn record(&self, committed: bool) -> crate::run_record::GroupRecord {
        crate::run_record::GroupRecord {
            name: self.name.clone(),
            file: self.path.display().to_string(),
            version: self.version.clone(),
            transaction: self.transaction,
            steps: self.steps.clone(),
            committed,
            has_down: self.down.is_some(),
            captured: false,
        }
    }
}

/// SQL kept with a group but not run forward (a down, undo, revert or
/// verify part): parsed and resolved like forward steps, in the transaction
/// mode its tool would run it in, so that a rollback can run and measure it.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub path: PathBuf,
    pub transaction: TxMode,
    pub steps: Vec<Step>,
}

/// Where the migration comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A plain `.sql` file (`migration.file`).
    File(PathBuf),
    /// SQL read from standard input (`--migration -`, `migration.file = "-"`):
    /// Django `sqlmigrate`, Alembic `upgrade --sql`, …
    Stdin,
    /// A migration tool's directory (`migration.dir`).
    Dir {
        path: PathBuf,
        format: dirs::Format,
        /// `migration.from` / `--from`: rehearse from this version on.
        from: Option<String>,
        /// The tool's history table, `schema.table` or `table`.
        history_table: String,
        /// sqitch's `%project` (its history rows are per project).
        project: Option<String>,
    },
    /// A framework command run against the clone (`migration.command`); its
    /// statements are captured from the clone's log while it runs.
    Command { command: String, cwd: PathBuf },
}

impl Source {
    /// How the report names it: the file, `stdin`, `DIR (flyway)`, `command: …`.
    pub fn describe(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Stdin => "stdin".into(),
            Source::Dir { path, format, .. } => format!("{} ({})", path.display(), format.name()),
            Source::Command { command, .. } => format!("command: {command}"),
        }
    }
}

impl Migration {
    /// The transaction mode of every group, or `None` when they differ (or there is none).
    pub fn transaction(&self) -> Option<TxMode> {
        let first = self.groups.first()?.transaction;
        self.groups.iter().all(|g| g.transaction == first).then_some(first)
    }

    /// `transaction()` as the report and progress lines name it: `file`,
    /// `step`, `none`, `mixed` (groups differ), `one for all` (Drizzle).
    pub fn transaction_name(&self) -> &'static str {
        if self.one_transaction {
            return "one for all";
        }
        self.transaction().map_or("mixed", TxMode::as_str)
    }

    /// The same migration with only the groups `keep` (indexes, in order).
    pub fn subset(&self, keep: &[usize]) -> Migration {
        let mut out = Migration { steps: Vec::new(), groups: Vec::new(), ..self.clone() };
        for &i in keep {
            let g = &self.groups[i];
            let start = out.steps.len();
            out.steps.extend_from_slice(&self.steps[g.steps.clone()]);
            out.groups.push(Group { steps: start..out.steps.len(), ..g.clone() });
        }
        out
    }

    /// The same migration followed by its rollback (see `then_undo`), as if
    /// every forward step completed.
    pub fn with_rollback(&self) -> Migration {
        self.then_undo(&vec![true; self.steps.len()])
    }

    /// The same migration followed by the rollback of the steps `completed`
    /// says completed: for each group, the last first, its down part as a
    /// group of its own (a down part runs after its forward steps, measured
    /// like them). Of `-- lockimpact: down` sections, only those of completed
    /// steps, in reverse order; a down file, whole, when any step of its
    /// group completed. A completed group without a down part ends the
    /// rollback there: what came before it stays, and a note says so.
    pub fn then_undo(&self, completed: &[bool]) -> Migration {
        let mut out = self.clone();
        let first = out.steps.len();
        for g in self.groups.iter().rev() {
            if !g.steps.clone().any(|i| completed[i]) {
                continue;
            }
            let Some(down) = &g.down else {
                out.notes.push(format!(
                    "{} has no down part: the rollback stops before it (add `-- lockimpact: down` sections, or the \
                     tool's down file)",
                    g.name
                ));
                break;
            };
            let sections: Vec<usize> = g.steps.clone().rev().filter(|&i| !self.steps[i].down.is_empty()).collect();
            let steps: Vec<Step> = if sections.is_empty() {
                down.steps.clone()
            } else {
                // The script holds one undo step per section, in this order.
                sections.iter().zip(&down.steps).filter(|(i, _)| completed[**i]).map(|(_, s)| s.clone()).collect()
            };
            let start = out.steps.len();
            out.steps.extend(steps);
            out.groups.push(Group {
                name: format!("rollback of {}", g.name),
                path: down.path.clone(),
                transaction: down.transaction,
                steps: start..out.steps.len(),
                down: None,
                verify: None,
                ..g.clone()
            });
        }
        out.rollback_from = (out.steps.len() > first).then_some(first);
        out
    }

    /// The forward part of the migration (without its rollback, if it has one).
    pub fn forward(&self) -> Migration {
        let Some(first) = self.rollback_from else { return self.clone() };
        let mut out = self.clone();
        out.steps.truncate(first);
        out.groups.retain(|g| g.steps.end <= first);
        out.rollback_from = None;
        out
    }

    /// A migration of the groups `parts`, in order.
    pub fn from_parts(parts: Vec<(Group, Vec<Step>)>, one_transaction: bool, source: Source) -> Migration {
        let mut m = Migration {
            steps: Vec::new(),
            groups: Vec::new(),
            one_transaction,
            source,
            notes: Vec::new(),
            rollback_from: None,
        };
        for (g, steps) in parts {
            let start = m.steps.len();
            m.steps.extend(steps);
            m.groups.push(Group { steps: start..m.steps.len(), ..g });
        }
        m
    }
}

/// Scenario-level defaults for every step.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub transaction: Option<TxMode>,
    pub lock_timeout: Duration,
    pub statement_timeout: Duration,
    pub retries: u32,
    pub retry_backoff: Duration,
    pub on_error: OnError,
}

/// Reads, splits and validates a migration file.
pub fn load(path: &Path, defaults: &Defaults) -> Result<Migration> {
    let file = path.display();
    let bytes = crate::files::read_input(path, "migration file", crate::files::TEXT_LIMIT)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::input(format!("{file}: not valid UTF-8 ({}); save it as UTF-8", crate::files::text::utf8_place(&e)))
    })?;
    // A byte-order mark (editors on Windows write one) is not SQL.
    let mut m = parse(text.strip_prefix('\u{feff}').unwrap_or(&text), path, defaults)?;
    m.source = Source::File(path.to_path_buf());
    Ok(m)
}

/// Reads a migration from standard input (`--migration -`).
pub fn load_stdin(defaults: &Defaults) -> Result<Migration> {
    let text = std::io::read_to_string(std::io::stdin())
        .map_err(|e| Error::input(format!("stdin: cannot read the migration: {e} (it must be UTF-8 text)")))?;
    let mut m = parse(text.strip_prefix('\u{feff}').unwrap_or(&text), Path::new("stdin"), defaults)?;
    m.source = Source::Stdin;
    Ok(m)
}

/// Splits and validates the text of a migration file; `path` only names the
/// file in messages. (What `load` does once the file is read.) Without a
/// transaction mode chosen (directive or scenario), a file that writes its
/// own `BEGIN … COMMIT` (Django `sqlmigrate`, Alembic `--sql`, psql scripts)
/// runs each block as one `file` transaction and statements outside blocks
/// in autocommit.
pub fn parse(text: &str, path: &Path, defaults: &Defaults) -> Result<Migration> {
    let file = path.display().to_string();
    if text.trim().is_empty() {
        return Err(Error::input(format!("{file}: the migration file is empty")));
    }
    let parsed = split::split(text).map_err(|e| Error::input(format!("{file}:{}: {}", e.line, e.message)))?;
    let chosen = parsed.transaction.or(defaults.transaction);
    let steps = resolve(parsed.steps, defaults);
    let name = path.file_name().map_or_else(|| file.clone(), |n| n.to_string_lossy().into_owned());
    let own_control = steps.iter().flat_map(Step::statements).any(|s| s.is_transaction_control);
    let (chunks, hint) = match chosen {
        None if own_control => (transaction_blocks(steps, &file)?, TxHint::own_blocks()),
        _ => (vec![(chosen.unwrap_or(TxMode::File), steps)], TxHint::directive()),
    };
    for (tx, steps) in &chunks {
        check(steps, *tx, &file, &hint)?;
    }
    let mut parts = named_groups(&name, path, None, chunks);
    let mut without = Vec::new();
    for (group, steps) in &mut parts {
        group.down = down_script(steps, path, &file)?;
        if group.down.is_some() {
            let undoable = |s: &&Step| !s.statements().iter().all(|st| split::is_maintenance(&st.sql));
            let lacking = steps.iter().filter(|s| s.down.is_empty()).filter(undoable);
            without.extend(lacking.map(|s| format!("{:?} (line {})", s.name, s.line)));
        }
    }
    let mut m = Migration::from_parts(parts, false, Source::File(path.to_path_buf()));
    if !without.is_empty() {
        m.notes.push(format!(
            "steps without a down section (a rollback leaves their change in place): {}",
            without.join(", ")
        ));
    }
    Ok(m)
}

/// The `-- lockimpact: down` sections of `steps` as a script: each a step
/// named after the one it undoes, the last step's first; in their own
/// transaction each, or none when a statement cannot run in one. `None`
/// when no step has a down section.
fn down_script(steps: &[Step], path: &Path, file: &str) -> Result<Option<Script>> {
    let undo: Vec<Step> = steps
        .iter()
        .rev()
        .filter(|s| !s.down.is_empty())
        .map(|s| Step {
            name: format!("undo: {}", s.name),
            line: s.down[0].line,
            kind: StepKind::Sql(s.down.clone()),
            down: Vec::new(),
            verify: Vec::new(),
            ..s.clone()
        })
        .collect();
    if undo.is_empty() {
        return Ok(None);
    }
    let autocommit = undo.iter().flat_map(Step::statements).any(|s| s.needs_autocommit.is_some());
    let transaction = if autocommit { TxMode::None } else { TxMode::Step };
    check(&undo, transaction, file, &TxHint::directive())?;
    Ok(Some(Script { path: path.to_path_buf(), transaction, steps: undo }))
}

/// Groups for the chunks of one file: named by the file, with the lines of
/// each chunk when there are several.
pub fn named_groups(
    name: &str,
    path: &Path,
    version: Option<&str>,
    chunks: Vec<(TxMode, Vec<Step>)>,
) -> Vec<(Group, Vec<Step>)> {
    let several = chunks.len() > 1;
    chunks
        .into_iter()
        .map(|(transaction, steps)| {
            let lines = |s: Option<&Step>| s.map_or(0, |s| s.line);
            let name = if several {
                format!("{name} [lines {}-{}]", lines(steps.first()), lines(steps.last()))
            } else {
                name.to_string()
            };
            let group = Group {
                name,
                path: path.to_path_buf(),
                version: version.map(str::to_string),
                transaction,
                steps: 0..0,
                down: None,
                verify: None,
                checksum: None,
            };
            (group, steps)
        })
        .collect()
}

/// Directive options resolved against the scenario's defaults.
pub fn resolve(parsed: Vec<split::ParsedStep>, defaults: &Defaults) -> Vec<Step> {
    parsed
        .into_iter()
        .map(|s| Step {
            name: s.name,
            line: s.line,
            kind: s.kind,
            lock_timeout: s.options.lock_timeout.unwrap_or(defaults.lock_timeout),
            statement_timeout: s.options.statement_timeout.unwrap_or(defaults.statement_timeout),
            retries: s.options.retries.unwrap_or(defaults.retries),
            retry_backoff: s.options.retry_backoff.unwrap_or(defaults.retry_backoff),
            on_error: s.options.on_error.unwrap_or(defaults.on_error),
            down: s.down,
            verify: s.verify,
        })
        .collect()
}

/// What to tell the user when a statement does not fit the transaction its
/// group runs in: why there is a transaction, and how to change that.
pub struct TxHint {
    /// Said after "cannot run inside a transaction block", e.g. ", and goose
    /// runs this file in one".
    pub why: String,
    /// How to run it outside one.
    pub fix: String,
    /// What to do about a BEGIN/COMMIT in the file.
    pub control: String,
}

impl TxHint {
    /// For a `BEGIN … COMMIT` block the file writes itself.
    pub fn own_blocks() -> TxHint {
        TxHint {
            why: ", and the file's own BEGIN … COMMIT block around it is one".into(),
            fix: "move it out of the block".into(),
            control: "BEGIN … COMMIT blocks cannot nest".into(),
        }
    }

    /// For a plain file, whose transaction mode lockimpact's directive or the scenario chooses.
    fn directive() -> TxHint {
        TxHint {
            why: String::new(),
            fix: "add `-- lockimpact: transaction none` at the top of the file or set migration.transaction = \"none\""
                .into(),
            control: "remove it and choose the mode with migration.transaction = \"file\" | \"step\" | \"none\" (or \
                      use \"none\" to keep your own BEGIN/COMMIT; without a mode chosen, a file of BEGIN … COMMIT \
                      blocks runs each block as one transaction)"
                .into(),
        }
    }
}

/// Refuses statements that cannot run in the group's transaction mode (in
/// `step` mode, such a statement runs as a step of its own).
pub fn check(steps: &[Step], transaction: TxMode, file: &str, hint: &TxHint) -> Result<()> {
    if transaction == TxMode::None {
        return Ok(());
    }
    for s in steps.iter().filter(|s| s.mode_in(transaction) != TxMode::None).flat_map(Step::statements) {
        if let Some(what) = s.needs_autocommit {
            let own_step = match transaction {
                TxMode::Step => " (in `step` mode it may be a step of its own: end the step group before it)",
                _ => "",
            };
            return Err(Error::input(format!(
                "{file}:{}: statement {} uses {what}, which cannot run inside a transaction block{}; {}{own_step}",
                s.line, s.number, hint.why, hint.fix
            )));
        }
        if s.is_transaction_control {
            return Err(Error::input(format!(
                "{file}:{}: statement {} controls transactions itself; {}",
                s.line, s.number, hint.control
            )));
        }
    }
    Ok(())
}

/// Splits steps that write their own `BEGIN … COMMIT` into chunks: each
/// block is one `file` transaction (BEGIN and COMMIT become its bounds),
/// the statements between blocks run in autocommit (`none`).
pub fn transaction_blocks(steps: Vec<Step>, file: &str) -> Result<Vec<(TxMode, Vec<Step>)>> {
    let mut chunks: Vec<(TxMode, Vec<Step>)> = Vec::new();
    let mut open: Option<(usize, Vec<Step>)> = None;
    let mut loose: Vec<Step> = Vec::new();
    for step in steps {
        let control = match step.statements().as_slice() {
            [s] if s.is_transaction_control => Some((split::tx_control(&s.sql).unwrap_or(TxControl::Other), s.line)),
            many => {
                if let Some(s) = many.iter().find(|s| s.is_transaction_control) {
                    return Err(Error::input(format!(
                        "{file}:{}: BEGIN/COMMIT inside a step group or backfill; keep them outside \
                         `-- lockimpact: step` groups",
                        s.line
                    )));
                }
                None
            }
        };
        match (control, open.as_mut()) {
            (Some((TxControl::Begin, line)), None) => {
                if !loose.is_empty() {
                    chunks.push((TxMode::None, std::mem::take(&mut loose)));
                }
                open = Some((line, Vec::new()));
            }
            (Some((TxControl::Commit, _)), Some(_)) => {
                let (line, body) = open.take().expect("an open block");
                if body.is_empty() {
                    return Err(Error::input(format!("{file}:{line}: this BEGIN … COMMIT block holds no statement")));
                }
                chunks.push((TxMode::File, body));
            }
            (Some((what, line)), _) => {
                return Err(Error::input(format!(
                    "{file}:{line}: {}; lockimpact rehearses a file's own transactions as BEGIN … COMMIT blocks only",
                    what.describe(open.is_some())
                )));
            }
            (None, Some((_, body))) => body.push(step),
            (None, None) => loose.push(step),
        }
    }
    if let Some((line, _)) = open {
        return Err(Error::input(format!("{file}:{line}: this BEGIN has no COMMIT")));
    }
    if !loose.is_empty() {
        chunks.push((TxMode::None, loose));
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults(transaction: Option<TxMode>) -> Defaults {
        Defaults {
            transaction,
            lock_timeout: Duration::ZERO,
            statement_timeout: Duration::ZERO,
            retries: 0,
            retry_backoff: Duration::ZERO,
            on_error: OnError::Abort,
        }
    }

    fn shape(m: &Migration) -> Vec<(String, TxMode, usize)> {
        m.groups.iter().map(|g| (g.name.clone(), g.transaction, g.steps.len())).collect()
    }

    #[test]
    fn own_begin_commit_blocks_are_groups() {
        let text = "BEGIN;\nALTER TABLE t ADD a int;\nCOMMIT;\nCREATE INDEX CONCURRENTLY i ON t (a);\nBEGIN;\nSELECT 1;\nSELECT 2;\nEND;\n";
        let m = parse(text, Path::new("x.sql"), &defaults(None)).unwrap();
        assert_eq!(
            shape(&m),
            [
                ("x.sql [lines 2-2]".to_string(), TxMode::File, 1),
                ("x.sql [lines 4-4]".to_string(), TxMode::None, 1),
                ("x.sql [lines 6-7]".to_string(), TxMode::File, 2)
            ]
        );
        assert_eq!(m.transaction(), None);
        assert_eq!(m.transaction_name(), "mixed");
        let one = parse("BEGIN;\nSELECT 1;\nCOMMIT;\n", Path::new("y.sql"), &defaults(None)).unwrap();
        assert_eq!(shape(&one), [("y.sql".to_string(), TxMode::File, 1)]);
    }

    #[test]
    fn own_transactions_that_cannot_be_rehearsed_are_refused() {
        let err = |text: &str, d: Defaults| parse(text, Path::new("x.sql"), &d).unwrap_err().message;
        assert!(err("BEGIN;\nSELECT 1;\n", defaults(None)).contains("x.sql:1: this BEGIN has no COMMIT"));
        assert!(err("SELECT 1;\nCOMMIT;\n", defaults(None)).contains("a COMMIT without a BEGIN"));
        assert!(err("BEGIN;\nSELECT 1;\nROLLBACK;\n", defaults(None)).contains("ROLLBACK"));
        assert!(err("BEGIN;\nBEGIN;\nCOMMIT;\n", defaults(None)).contains("BEGIN inside a BEGIN"));
        assert!(err("BEGIN;\nCOMMIT;\n", defaults(None)).contains("holds no statement"));
        let e = err("BEGIN;\nCREATE INDEX CONCURRENTLY i ON t (a);\nCOMMIT;\n", defaults(None));
        assert!(e.contains("move it out of the block"), "{e}");
        // A mode chosen explicitly keeps today's rule.
        assert!(
            err("BEGIN;\nSELECT 1;\nCOMMIT;\n", defaults(Some(TxMode::File))).contains("controls transactions itself")
        );
    }

    #[test]
    fn a_vacuum_or_analyze_step_needs_no_down_section() {
        let text = "-- lockimpact: transaction step\nALTER TABLE t ADD a int;\n-- lockimpact: down\nALTER TABLE t DROP a;\n\
                    -- lockimpact: end\nVACUUM (ANALYZE) t;\nANALYZE t;\nUPDATE t SET a = 1;\n";
        let m = parse(text, Path::new("x.sql"), &defaults(None)).unwrap();
        assert_eq!(
            m.notes,
            ["steps without a down section (a rollback leaves their change in place): \"UPDATE t SET a = 1\" (line 8)"]
        );
    }

    #[test]
    fn in_step_mode_a_statement_that_needs_autocommit_may_be_a_step_of_its_own() {
        let text = "-- lockimpact: transaction step\nUPDATE t SET a = 1;\nVACUUM (ANALYZE) t;\n";
        let m = parse(text, Path::new("x.sql"), &defaults(None)).unwrap();
        let alone: Vec<bool> = m.steps.iter().map(Step::outside_transaction).collect();
        assert_eq!(alone, [false, true]);
        // In a group with another statement it cannot run in the step's transaction.
        let grouped = "-- lockimpact: transaction step\n-- lockimpact: step \"s\"\nUPDATE t SET a = 1;\nVACUUM t;\n";
        let e = parse(grouped, Path::new("x.sql"), &defaults(None)).unwrap_err().message;
        assert!(e.contains("x.sql:4: statement 2 uses VACUUM") && e.contains("a step of its own"), "{e}");
        // `file` mode runs the file in one transaction: refused there.
        let e = parse("UPDATE t SET a = 1;\nVACUUM t;\n", Path::new("x.sql"), &defaults(Some(TxMode::File)));
        assert!(e.unwrap_err().message.contains("cannot run inside a transaction block"));
    }

    #[test]
    fn the_rollback_of_what_completed_undoes_only_those_steps_last_first() {
        let text = "-- lockimpact: transaction step\nALTER TABLE t ADD a int;\n-- lockimpact: down\nALTER TABLE t DROP a;\n\
                    -- lockimpact: end\nUPDATE t SET a = 1;\nALTER TABLE t ADD b int;\n-- lockimpact: down\nALTER TABLE t DROP b;\n";
        let m = parse(text, Path::new("x.sql"), &defaults(None)).unwrap();
        let names =
            |m: &Migration| m.steps[m.rollback_from.unwrap()..].iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        let all = m.with_rollback();
        assert_eq!(names(&all), ["undo: ALTER TABLE t ADD b int", "undo: ALTER TABLE t ADD a int"]);
        let partial = m.then_undo(&[true, true, false]);
        assert_eq!(names(&partial), ["undo: ALTER TABLE t ADD a int"]);
        assert_eq!(partial.groups.last().unwrap().name, "rollback of x.sql");
        assert!(m.then_undo(&[false, false, false]).rollback_from.is_none());
        assert_eq!(all.forward().steps, m.steps);
    }

    #[test]
    fn subset_keeps_groups_and_renumbers_steps() {
        let m = parse(
            "BEGIN;\nSELECT 1;\nCOMMIT;\nBEGIN;\nSELECT 2;\nSELECT 3;\nCOMMIT;\n",
            Path::new("x.sql"),
            &defaults(None),
        )
        .unwrap();
        let s = m.subset(&[1]);
        assert_eq!(s.steps.len(), 2);
        assert_eq!(s.groups[0].steps, 0..2);
        assert_eq!(s.groups[0].name, m.groups[1].name);
    }
}
