//! Splits a migration `.sql` file into steps with PostgreSQL's own parser
//! (pg_query), keeping dollar-quoted bodies, `DO` blocks and comments intact,
//! and reads the `-- lockimpact:` directives written between statements.
//!
//! Directives (one per comment line, between statements):
//! - `-- lockimpact: transaction file|step|none` (before the first statement)
//! - `-- lockimpact: step "name" [lock_timeout=2s] [statement_timeout=1m] [retries=3] [retry_backoff=500ms] [on_error=abort|continue]`
//!   groups the following statements into one named step, up to the next directive
//! - `-- lockimpact: end` closes a `step` group
//! - `-- lockimpact: backfill "name" [pause=100ms] [max_batches=N] [timeouts, retries]`
//!   repeats the next statement until it affects 0 rows, pausing between batches
//! - `-- lockimpact: pause 5s ["name"]` waits (an application deploy between phases)

use std::ops::Range;
use std::time::Duration;

use pg_query::NodeEnum;
use pg_query::protobuf::{ReindexObjectType, Token};

use crate::files::dur::Dur;
use crate::pg::lex::{pg_message, scan_tokens};

pub use crate::run_record::TxMode;

/// One SQL statement of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// 1-based position in the file.
    pub number: usize,
    /// 1-based line of its first token.
    pub line: usize,
    pub sql: String,
    /// Set when the statement cannot run inside a transaction block (names it).
    pub needs_autocommit: Option<&'static str>,
    /// Set for BEGIN/COMMIT/ROLLBACK/SAVEPOINT written in the file.
    pub is_transaction_control: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    Sql(Vec<Statement>),
    Backfill { statement: Statement, pause: Duration, max_batches: Option<u64> },
    Pause(Duration),
}

/// Per-step settings written in a directive; `None` means the scenario default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepOptions {
    pub lock_timeout: Option<Duration>,
    pub statement_timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub retry_backoff: Option<Duration>,
    pub on_error: Option<OnError>,
}

/// What happens after a step fails (once its retries are used up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Skip the remaining steps (and roll back a `file` transaction).
    Abort,
    /// Go on with the next step (in a `file` transaction, the failed step is
    /// rolled back to its savepoint).
    Continue,
}

impl OnError {
    pub fn parse(s: &str) -> Option<OnError> {
        match s {
            "abort" => Some(OnError::Abort),
            "continue" => Some(OnError::Continue),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParsedStep {
    pub name: String,
    pub line: usize,
    pub kind: StepKind,
    pub options: StepOptions,
    /// Its reverse, from a `-- lockimpact: down` section (not run forward).
    pub down: Vec<Statement>,
    /// Its check, from a `-- lockimpact: verify` section: run after it (and
    /// after a rollback that leaves it in place); an error fails it.
    pub verify: Vec<Statement>,
}

/// A section that follows a step's statements: its reverse or its check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Down,
    Verify,
}

impl Section {
    fn name(self) -> &'static str {
        match self {
            Section::Down => "down",
            Section::Verify => "verify",
        }
    }

    fn is_empty_in(self, s: &ParsedStep) -> bool {
        match self {
            Section::Down => s.down.is_empty(),
            Section::Verify => s.verify.is_empty(),
        }
    }

    fn of(self, s: &mut ParsedStep) -> &mut Vec<Statement> {
        match self {
            Section::Down => &mut s.down,
            Section::Verify => &mut s.verify,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParsedMigration {
    pub transaction: Option<TxMode>,
    pub steps: Vec<ParsedStep>,
}

/// An error with the 1-based line it points at.
#[derive(Debug, PartialEq)]
pub struct SplitError {
    pub line: usize,
    pub message: String,
}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, SplitError> {
    Err(SplitError { line, message: message.into() })
}

fn line_of(text: &str, pos: usize) -> usize {
    text[..pos.min(text.len())].matches('\n').count() + 1
}

enum Event {
    Directive { line: usize, text: String },
    Statement(Statement),
}

/// Splits `text` into steps. Errors name the line.
pub fn split(text: &str) -> Result<ParsedMigration, SplitError> {
    split_with(text, &[])
}

/// Splits `text` into steps; each byte range in `fixed` is one statement
/// whatever it holds (a migration tool's own boundaries: goose's
/// `StatementBegin`/`StatementEnd`, Drizzle's `--> statement-breakpoint`),
/// the rest is split by pg_query. Errors name the line.
pub fn split_with(text: &str, fixed: &[Range<usize>]) -> Result<ParsedMigration, SplitError> {
    let tokens = scan_tokens(text).map_err(|e| SplitError { line: scan_error_line(text), message: pg_message(&e) })?;
    let is_comment =
        |t: &pg_query::protobuf::ScanToken| t.token == Token::SqlComment as i32 || t.token == Token::CComment as i32;
    let blanked = blank(text, fixed);
    let mut spans: Vec<Range<usize>> = match pg_query::split_with_parser(&blanked) {
        Ok(s) => s
            .iter()
            .map(|p| p.as_ptr() as usize - blanked.as_ptr() as usize)
            .zip(s.iter().map(|p| p.len()))
            .map(|(b, n)| b..b + n)
            .collect(),
        Err(e) => return Err(locate_syntax_error(&blanked, &e)),
    };
    if let Some((s, r)) =
        spans.iter().find_map(|s| Some((s, fixed.iter().find(|r| s.start < r.end && r.start < s.end)?)))
    {
        return err(
            line_of(text, s.start),
            format!("this statement runs into the block on line {}; end it with `;`", line_of(text, r.start)),
        );
    }
    for r in fixed {
        if let Err(e) = pg_query::parse(&text[r.clone()], 0) {
            let mut err = locate_syntax_error(&text[r.clone()], &e);
            err.line += line_of(text, r.start) - 1;
            return Err(err);
        }
        spans.push(r.clone());
    }
    spans.sort_by_key(|r| r.start);

    let mut events: Vec<(usize, Event)> = Vec::new();
    for t in tokens.iter().filter(|t| t.token == Token::SqlComment as i32) {
        let raw = &text[t.start as usize..t.end as usize];
        let body = raw.trim_start_matches('-').trim();
        if let Some(rest) = body.strip_prefix("lockimpact:") {
            events.push((
                t.start as usize,
                Event::Directive { line: line_of(text, t.start as usize), text: rest.trim().to_string() },
            ));
        } else if body.starts_with("lockimpact") {
            return err(
                line_of(text, t.start as usize),
                format!("malformed directive {raw:?}: write `-- lockimpact: VERB …`"),
            );
        }
    }
    let mut number = 0;
    for span in spans {
        let (base, end) = (span.start, span.end);
        let Some(first) =
            tokens.iter().find(|t| t.start as usize >= base && (t.start as usize) < end && !is_comment(t))
        else {
            continue;
        };
        let start = first.start as usize;
        let line = line_of(text, start);
        if let Some((_, Event::Directive { line: dl, .. })) =
            events.iter().find(|(p, e)| matches!(e, Event::Directive { .. }) && *p > start && *p < end)
        {
            return err(*dl, "a directive inside a statement; put it on its own line between statements");
        }
        let sql = text[start..end].trim_end().to_string();
        let (needs_autocommit, is_transaction_control) = classify_sql(&sql);
        number += 1;
        events
            .push((start, Event::Statement(Statement { number, line, sql, needs_autocommit, is_transaction_control })));
    }
    events.sort_by_key(|(p, _)| *p);
    build_steps(events)
}

/// `text` with the `fixed` ranges replaced by spaces (newlines kept), so
/// pg_query splits the rest and every offset stays where it was.
fn blank(text: &str, fixed: &[Range<usize>]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for r in fixed {
        for b in &mut bytes[r.clone()] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
    }
    String::from_utf8(bytes).expect("only whole ranges of UTF-8 text are blanked with ASCII")
}

/// The line of the token the scanner rejects (an unterminated quote, dollar
/// quote or comment, a NUL byte, junk after a number): the line after the
/// longest run of whole lines that scans. Only called on a scan error.
fn scan_error_line(text: &str) -> usize {
    let ends: Vec<usize> = text.match_indices('\n').map(|(i, _)| i + 1).collect();
    for (n, &end) in ends.iter().enumerate().rev() {
        if scan_tokens(&text[..end]).is_ok() {
            return n + 2;
        }
    }
    1
}

/// Finds which statement holds a syntax error and on which line: the text
/// cut at each `;` the scanner sees (quotes, dollar quotes and comments
/// respected), pieces joined until they parse (a `BEGIN ATOMIC` body holds
/// `;`), the first piece that never parses named by its number and the line
/// of its first token. (pg_query's scanner split drops a statement that does
/// not start with a keyword, so it cannot tell.)
fn locate_syntax_error(text: &str, e: &pg_query::Error) -> SplitError {
    let Ok(tokens) = scan_tokens(text) else {
        return SplitError { line: 1, message: format!("SQL syntax error: {}", pg_message(e)) };
    };
    let code =
        |t: &&pg_query::protobuf::ScanToken| t.token != Token::SqlComment as i32 && t.token != Token::CComment as i32;
    let mut number = 0;
    let mut start: Option<usize> = None; // first token of the statement being read
    let mut first_error: Option<(usize, usize, pg_query::Error)> = None;
    for t in tokens.iter().filter(code) {
        let at = t.start as usize;
        if start.is_none() && t.token != Token::Ascii59 as i32 {
            start = Some(at);
            number += 1;
        }
        if t.token != Token::Ascii59 as i32 {
            continue;
        }
        let Some(from) = start else { continue };
        match pg_query::parse(&text[from..at], 0) {
            Ok(_) => {
                start = None;
                first_error = None;
            }
            // Maybe a `;` inside a body: read on, but remember where it began.
            Err(pe) => {
                first_error.get_or_insert((from, number, pe));
            }
        }
    }
    if let Some(from) = start
        && let Err(pe) = pg_query::parse(&text[from..], 0)
    {
        first_error.get_or_insert((from, number, pe));
    }
    match first_error {
        Some((from, n, pe)) => SplitError {
            line: line_of(text, from),
            message: format!("statement {n}: SQL syntax error: {}", pg_message(&pe)),
        },
        None => SplitError { line: 1, message: format!("SQL syntax error: {}", pg_message(e)) },
    }
}

/// (what keeps `sql` out of a transaction block, whether it is BEGIN/COMMIT/…).
pub fn classify_sql(sql: &str) -> (Option<&'static str>, bool) {
    let Ok(parsed) = pg_query::parse(sql, 0) else { return (None, false) };
    let Some(node) = parsed.protobuf.stmts.first().and_then(|s| s.stmt.as_ref()).and_then(|n| n.node.as_ref()) else {
        return (None, false);
    };
    let concurrently = |params: &[pg_query::protobuf::Node]| {
        params.iter().any(|p| matches!(&p.node, Some(NodeEnum::DefElem(d)) if d.defname == "concurrently"))
    };
    match node {
        NodeEnum::IndexStmt(s) if s.concurrent => (Some("CREATE INDEX CONCURRENTLY"), false),
        NodeEnum::DropStmt(s) if s.concurrent => (Some("DROP INDEX CONCURRENTLY"), false),
        NodeEnum::ReindexStmt(s) if concurrently(&s.params) => (Some("REINDEX CONCURRENTLY"), false),
        NodeEnum::ReindexStmt(s) if s.kind == ReindexObjectType::ReindexObjectSystem as i32 => {
            (Some("REINDEX SYSTEM"), false)
        }
        NodeEnum::ReindexStmt(s) if s.kind == ReindexObjectType::ReindexObjectDatabase as i32 => {
            (Some("REINDEX DATABASE"), false)
        }
        NodeEnum::VacuumStmt(s) if s.is_vacuumcmd => (Some("VACUUM"), false),
        NodeEnum::ClusterStmt(s) if s.relation.is_none() => (Some("CLUSTER of every table"), false),
        NodeEnum::CreatedbStmt(_) => (Some("CREATE DATABASE"), false),
        NodeEnum::DropdbStmt(_) => (Some("DROP DATABASE"), false),
        NodeEnum::AlterSystemStmt(_) => (Some("ALTER SYSTEM"), false),
        NodeEnum::CreateTableSpaceStmt(_) => (Some("CREATE TABLESPACE"), false),
        NodeEnum::DropTableSpaceStmt(_) => (Some("DROP TABLESPACE"), false),
        NodeEnum::AlterTableStmt(s) if s.cmds.iter().any(detaches_concurrently) => {
            (Some("DETACH PARTITION CONCURRENTLY"), false)
        }
        NodeEnum::TransactionStmt(_) => (None, true),
        _ => (None, false),
    }
}

/// Whether `sql` is VACUUM or ANALYZE: it changes neither the schema nor
/// the rows, so there is nothing for a down section to undo.
pub fn is_maintenance(sql: &str) -> bool {
    let Ok(parsed) = pg_query::parse(sql, 0) else { return false };
    let mut nodes = parsed.protobuf.stmts.iter().filter_map(|s| s.stmt.as_ref()?.node.as_ref());
    nodes.all(|n| matches!(n, NodeEnum::VacuumStmt(_)))
}

/// Whether `cmd` (of an ALTER TABLE) is `DETACH PARTITION … CONCURRENTLY`.
fn detaches_concurrently(cmd: &pg_query::protobuf::Node) -> bool {
    let Some(NodeEnum::AlterTableCmd(c)) = &cmd.node else { return false };
    matches!(c.def.as_deref().and_then(|d| d.node.as_ref()), Some(NodeEnum::PartitionCmd(p)) if p.concurrent)
}

/// Whether `sql` only works inside a transaction block (LOCK, SET LOCAL,
/// DECLARE without HOLD): outside one it fails or does nothing, so `none`
/// mode sends it as written rather than inside a transaction of its own.
pub fn requires_block(sql: &str) -> bool {
    let Ok(parsed) = pg_query::parse(sql, 0) else { return false };
    let Some(node) = parsed.protobuf.stmts.first().and_then(|s| s.stmt.as_ref()).and_then(|n| n.node.as_ref()) else {
        return false;
    };
    match node {
        NodeEnum::LockStmt(_) => true,
        NodeEnum::VariableSetStmt(s) => s.is_local,
        NodeEnum::DeclareCursorStmt(d) => d.options & 0x0020 == 0, // CURSOR_OPT_HOLD
        _ => false,
    }
}

/// What a transaction-control statement written in a file does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxControl {
    /// BEGIN, START TRANSACTION.
    Begin,
    /// COMMIT, END.
    Commit,
    Rollback,
    /// SAVEPOINT, RELEASE, ROLLBACK TO, PREPARE TRANSACTION, …
    Other,
}

impl TxControl {
    /// Why it cannot be rehearsed where it stands (`in_block`: inside a BEGIN … COMMIT).
    pub fn describe(self, in_block: bool) -> String {
        match (self, in_block) {
            (TxControl::Begin, true) => "a BEGIN inside a BEGIN … COMMIT block".into(),
            (TxControl::Commit, false) => "a COMMIT without a BEGIN".into(),
            (TxControl::Rollback, _) => "a ROLLBACK (its block would be undone)".into(),
            _ => "a SAVEPOINT, RELEASE, ROLLBACK TO or two-phase commit statement".into(),
        }
    }
}

/// What `sql` does to transactions, when it is a transaction-control statement.
pub fn tx_control(sql: &str) -> Option<TxControl> {
    use pg_query::protobuf::TransactionStmtKind as K;
    let parsed = pg_query::parse(sql, 0).ok();
    let kind =
        parsed.as_ref().and_then(|p| p.protobuf.stmts.first()?.stmt.as_ref()?.node.as_ref()).and_then(|n| match n {
            NodeEnum::TransactionStmt(t) => Some(t.kind),
            _ => None,
        });
    Some(match kind? {
        k if k == K::TransStmtBegin as i32 || k == K::TransStmtStart as i32 => TxControl::Begin,
        k if k == K::TransStmtCommit as i32 => TxControl::Commit,
        k if k == K::TransStmtRollback as i32 => TxControl::Rollback,
        _ => TxControl::Other,
    })
}

#[derive(Default)]
struct Group {
    name: String,
    line: usize,
    options: StepOptions,
    statements: Vec<Statement>,
    /// Its `down` and `verify` sections, once a directive opened them, and
    /// the one statements go to now.
    down: Option<Vec<Statement>>,
    verify: Option<Vec<Statement>>,
    open: Option<Section>,
}

impl Group {
    fn section(&mut self, s: Section) -> &mut Option<Vec<Statement>> {
        match s {
            Section::Down => &mut self.down,
            Section::Verify => &mut self.verify,
        }
    }
}

/// Turns the events (statements and directives, in text order) into steps.
fn build_steps(events: Vec<(usize, Event)>) -> Result<ParsedMigration, SplitError> {
    let mut b = Builder {
        out: ParsedMigration { transaction: None, steps: Vec::new() },
        group: None,
        backfill: None,
        seen_statement: false,
        open_last: None,
    };
    for (_, event) in events {
        match event {
            Event::Statement(s) => b.statement(s),
            Event::Directive { line, text } => b.directive(line, &text)?,
        }
    }
    if let Some(Backfill { line, .. }) = b.backfill {
        return err(line, "backfill directive must be followed by the statement to repeat");
    }
    b.close()?;
    b.close_last()?;
    if !b.out.steps.iter().any(|s| !matches!(s.kind, StepKind::Pause(_))) {
        return err(1, "the migration has no SQL statements");
    }
    Ok(b.out)
}

/// A `backfill` directive waiting for the statement it repeats.
struct Backfill {
    line: usize,
    group: Group,
    pause: Duration,
    max_batches: Option<u64>,
}

/// The steps built so far from the events, in order, and what is still open:
/// a `step` group, or a `backfill` waiting for its statement.
struct Builder {
    out: ParsedMigration,
    group: Option<Group>,
    backfill: Option<Backfill>,
    /// A `transaction` directive must come before the first statement.
    seen_statement: bool,
    /// A `down` or `verify` section open for the last step outside a `step`
    /// group (and its line): statements go to it until the next directive.
    open_last: Option<(Section, usize)>,
}

impl Builder {
    /// A statement: the one a backfill repeats, one more of the open group,
    /// or a step of its own.
    fn statement(&mut self, s: Statement) {
        self.seen_statement = true;
        if let Some(g) = self.group.as_mut()
            && let Some(open) = g.open
        {
            g.section(open).get_or_insert_default().push(s);
            return;
        }
        if let Some((open, _)) = self.open_last {
            if let Some(last) = self.out.steps.last_mut() {
                open.of(last).push(s);
            }
            return;
        }
        if let Some(Backfill { line, group: g, pause, max_batches }) = self.backfill.take() {
            let name = if g.name.is_empty() { default_name(&s.sql) } else { g.name };
            self.out.steps.push(ParsedStep {
                name,
                line,
                kind: StepKind::Backfill { statement: s, pause, max_batches },
                options: g.options,
                down: Vec::new(),
                verify: Vec::new(),
            });
        } else if let Some(g) = self.group.as_mut() {
            g.statements.push(s);
        } else {
            self.out.steps.push(ParsedStep {
                name: default_name(&s.sql),
                line: s.line,
                kind: StepKind::Sql(vec![s]),
                options: StepOptions::default(),
                down: Vec::new(),
                verify: Vec::new(),
            });
        }
    }

    /// A `-- lockimpact: …` directive.
    fn directive(&mut self, line: usize, text: &str) -> Result<(), SplitError> {
        if let Some(b) = &self.backfill {
            return err(b.line, "backfill directive must be followed by the statement to repeat");
        }
        let words = tokenize(text).map_err(|m| SplitError { line, message: m })?;
        let Some((verb, args)) = words.split_first() else {
            return err(line, "empty directive; expected step, end, down, verify, backfill, pause or transaction");
        };
        if self.open_last.is_some() {
            self.close_last()?;
            if verb == "end" {
                return Ok(());
            }
        }
        match verb.as_str() {
            "down" => self.section(Section::Down, line, args),
            "verify" => self.section(Section::Verify, line, args),
            "transaction" => self.transaction(line, args),
            "step" => {
                self.close()?;
                let (name, options, _) = step_args(args, line, &[])?;
                let Some(name) = name else {
                    return err(line, "a step needs a name: -- lockimpact: step \"add column\"");
                };
                self.group = Some(Group { name, line, options, ..Group::default() });
                Ok(())
            }
            "end" => {
                if self.group.is_none() {
                    return err(line, "`end` without an open `step`");
                }
                self.close()
            }
            "backfill" => {
                self.close()?;
                self.backfill = Some(backfill(line, args)?);
                Ok(())
            }
            "pause" => {
                self.close()?;
                self.out.steps.push(pause(line, args)?);
                Ok(())
            }
            other => err(
                line,
                format!(
                    "unknown directive {other:?}; expected step, end, down, verify, backfill, pause or transaction"
                ),
            ),
        }
    }

    /// `transaction file|step|none`, before the first statement.
    fn transaction(&mut self, line: usize, args: &[String]) -> Result<(), SplitError> {
        if self.seen_statement {
            return err(line, "the transaction directive must come before the first statement");
        }
        let [mode] = args else {
            return err(line, "write `-- lockimpact: transaction file|step|none`");
        };
        self.out.transaction = Some(TxMode::parse(mode).ok_or_else(|| SplitError {
            line,
            message: format!("unknown transaction mode {mode:?}; use file, step or none"),
        })?);
        Ok(())
    }

    /// `down` or `verify`: what follows, up to the next directive (or the
    /// end of the open `step`), reverses (checks) the step just written.
    fn section(&mut self, sec: Section, line: usize, args: &[String]) -> Result<(), SplitError> {
        let name = sec.name();
        if !args.is_empty() {
            return err(
                line,
                format!("`{name}` takes no arguments: write `-- lockimpact: {name}` before its statements"),
            );
        }
        if let Some(g) = self.group.as_mut() {
            if g.statements.is_empty() || g.section(sec).is_some() {
                return err(line, format!("`{name}` must follow the statements of step {:?}, once", g.name));
            }
            if let Some(open) = g.open
                && g.section(open).as_ref().is_none_or(Vec::is_empty)
            {
                return err(line, format!("the {} section of step {:?} has no statements", open.name(), g.name));
            }
            *g.section(sec) = Some(Vec::new());
            g.open = Some(sec);
            return Ok(());
        }
        match self.out.steps.last_mut() {
            Some(s) if !matches!(s.kind, StepKind::Pause(_)) && sec.is_empty_in(s) => {
                self.open_last = Some((sec, line));
                Ok(())
            }
            _ => err(line, format!("`{name}` must follow the statements of the step it belongs to, once")),
        }
    }

    /// Closes the section open for the last step; an empty one is an error.
    fn close_last(&mut self) -> Result<(), SplitError> {
        if let Some((sec, opened)) = self.open_last.take()
            && self.out.steps.last().is_some_and(|s| sec.is_empty_in(s))
        {
            return err(opened, format!("the {} section has no statements", sec.name()));
        }
        Ok(())
    }

    /// Closes the open `step` group into a step; an empty one is an error.
    fn close(&mut self) -> Result<(), SplitError> {
        if let Some(mut g) = self.group.take() {
            if g.statements.is_empty() {
                return err(g.line, format!("step {:?} has no statements", g.name));
            }
            for sec in [Section::Down, Section::Verify] {
                if g.section(sec).as_ref().is_some_and(Vec::is_empty) {
                    return err(g.line, format!("the {} section of step {:?} has no statements", sec.name(), g.name));
                }
            }
            self.out.steps.push(ParsedStep {
                name: g.name,
                line: g.line,
                kind: StepKind::Sql(g.statements),
                options: g.options,
                down: g.down.unwrap_or_default(),
                verify: g.verify.unwrap_or_default(),
            });
        }
        Ok(())
    }
}

/// `backfill ["name"] [pause=DUR] [max_batches=N] [options…]`.
fn backfill(line: usize, args: &[String]) -> Result<Backfill, SplitError> {
    let (name, options, extra) = step_args(args, line, &["pause", "max_batches"])?;
    let mut pause = Duration::ZERO;
    let mut max_batches = None;
    for (k, v) in extra {
        match k.as_str() {
            "pause" => pause = parse_dur(&k, &v, line)?,
            _ => {
                let n: u64 = v.parse().map_err(|_| SplitError {
                    line,
                    message: format!("max_batches must be a positive integer, not {v:?}"),
                })?;
                if n == 0 {
                    return err(line, "max_batches must be at least 1");
                }
                max_batches = Some(n);
            }
        }
    }
    let group = Group { name: name.unwrap_or_default(), line, options, ..Group::default() };
    Ok(Backfill { line, group, pause, max_batches })
}

/// `pause DUR ["name"]`: a step that only waits.
fn pause(line: usize, args: &[String]) -> Result<ParsedStep, SplitError> {
    let Some((dur, rest)) = args.split_first() else {
        return err(line, "write `-- lockimpact: pause 5s \"deploy the app\"`");
    };
    let d = Dur::parse(dur).map_err(|e| SplitError { line, message: e.message })?.0;
    let name = match rest {
        [] => format!("pause {dur}"),
        [n] if !n.contains('=') => n.clone(),
        _ => return err(line, "pause takes a duration and an optional name"),
    };
    Ok(ParsedStep {
        name,
        line,
        kind: StepKind::Pause(d),
        options: StepOptions::default(),
        down: Vec::new(),
        verify: Vec::new(),
    })
}

/// A directive's arguments: its optional name, the step options, and the
/// `key=value` pairs the caller asked to handle itself.
type StepArgs = (Option<String>, StepOptions, Vec<(String, String)>);

/// Reads `["name"] key=value…`; keys in `extra` are returned to the caller.
fn step_args(args: &[String], line: usize, extra: &[&str]) -> Result<StepArgs, SplitError> {
    let mut name = None;
    let mut options = StepOptions::default();
    let mut rest = Vec::new();
    for a in args {
        let Some((k, v)) = a.split_once('=') else {
            if name.is_some() {
                return err(line, format!("unexpected {a:?}; quote a name with spaces: \"my step\""));
            }
            name = Some(a.clone());
            continue;
        };
        match k {
            "lock_timeout" => options.lock_timeout = Some(parse_dur(k, v, line)?),
            "statement_timeout" => options.statement_timeout = Some(parse_dur(k, v, line)?),
            "retry_backoff" => options.retry_backoff = Some(parse_dur(k, v, line)?),
            "on_error" => {
                options.on_error = Some(OnError::parse(v).ok_or_else(|| SplitError {
                    line,
                    message: format!("on_error must be \"abort\" or \"continue\", not {v:?}"),
                })?)
            }
            "retries" => {
                options.retries =
                    Some(v.parse().map_err(|_| SplitError {
                        line,
                        message: format!("retries must be a whole number, not {v:?}"),
                    })?)
            }
            k if extra.contains(&k) => rest.push((k.to_string(), v.to_string())),
            _ => {
                let mut known = vec!["lock_timeout", "statement_timeout", "retries", "retry_backoff", "on_error"];
                known.extend_from_slice(extra);
                return err(line, format!("unknown option {k:?}; known: {}", known.join(", ")));
            }
        }
    }
    Ok((name, options, rest))
}

fn parse_dur(key: &str, v: &str, line: usize) -> Result<Duration, SplitError> {
    Dur::parse(v).map(|d| d.0).map_err(|m| SplitError { line, message: format!("{key}: {m}") })
}

/// Splits on whitespace, keeping "double quoted" words together.
fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut has = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                has = true;
            }
            c if c.is_whitespace() && !quoted => {
                if has {
                    words.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            c => {
                cur.push(c);
                has = true;
            }
        }
    }
    if quoted {
        return Err("unclosed double quote in directive".into());
    }
    if has {
        words.push(cur);
    }
    Ok(words)
}

/// A step name made from its statement: whitespace collapsed, at most 60 chars.
pub fn default_name(sql: &str) -> String {
    let flat = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 60 {
        let cut: String = flat.chars().take(59).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql_of(step: &ParsedStep) -> Vec<&str> {
        match &step.kind {
            StepKind::Sql(s) => s.iter().map(|s| s.sql.as_str()).collect(),
            StepKind::Backfill { statement, .. } => vec![statement.sql.as_str()],
            StepKind::Pause(_) => vec![],
        }
    }

    fn down_of(step: &ParsedStep) -> Vec<&str> {
        step.down.iter().map(|s| s.sql.as_str()).collect()
    }

    #[test]
    fn down_sections_belong_to_the_step_before_them() {
        let m = split(
            "ALTER TABLE orders ADD COLUMN note text;\n\
             -- lockimpact: down\n\
             ALTER TABLE orders DROP COLUMN note;\n\
             -- lockimpact: step \"index\"\n\
             CREATE INDEX orders_note_idx ON orders (note);\n\
             -- lockimpact: down\n\
             DROP INDEX orders_note_idx;\n\
             -- lockimpact: end\n\
             UPDATE orders SET note = 'x';\n",
        )
        .unwrap();
        assert_eq!(m.steps.len(), 3);
        assert_eq!(sql_of(&m.steps[0]), ["ALTER TABLE orders ADD COLUMN note text"]);
        assert_eq!(down_of(&m.steps[0]), ["ALTER TABLE orders DROP COLUMN note"]);
        assert_eq!(sql_of(&m.steps[1]), ["CREATE INDEX orders_note_idx ON orders (note)"]);
        assert_eq!(down_of(&m.steps[1]), ["DROP INDEX orders_note_idx"]);
        assert!(m.steps[2].down.is_empty());
    }

    #[test]
    fn a_misplaced_or_empty_down_section_names_its_line() {
        for (sql, line, words) in [
            ("-- lockimpact: down\nSELECT 1;\n", 1, "must follow"),
            ("SELECT 1;\n-- lockimpact: down\n", 2, "no statements"),
            ("SELECT 1;\n-- lockimpact: down\n-- lockimpact: step \"x\"\nSELECT 2;\n", 2, "no statements"),
            ("-- lockimpact: step \"x\"\n-- lockimpact: down\nSELECT 1;\n", 2, "must follow"),
            ("SELECT 1;\n-- lockimpact: down now\nSELECT 2;\n", 2, "no arguments"),
            ("-- lockimpact: pause 1s\n-- lockimpact: down\nSELECT 1;\n", 2, "must follow"),
        ] {
            let e = split(sql).unwrap_err();
            assert_eq!(e.line, line, "{sql:?}: {}", e.message);
            assert!(e.message.contains(words), "{sql:?}: {}", e.message);
        }
    }

    #[test]
    fn verify_sections_belong_to_their_step_beside_its_down() {
        let m = split(
            "-- lockimpact: step \"a\"\nALTER TABLE t ADD COLUMN c int;\n-- lockimpact: verify\nSELECT c FROM t WHERE false;\n\
             -- lockimpact: down\nALTER TABLE t DROP COLUMN c;\n-- lockimpact: end\n\
             CREATE INDEX i ON t (c);\n-- lockimpact: verify\nSELECT 1/count(*) FROM pg_indexes WHERE indexname = 'i';\n\
             SELECT 2;\n",
        )
        .unwrap();
        let sql = |v: &[Statement]| v.iter().map(|s| s.sql.clone()).collect::<Vec<_>>();
        assert_eq!(sql(&m.steps[0].verify), ["SELECT c FROM t WHERE false"]);
        assert_eq!(sql(&m.steps[0].down), ["ALTER TABLE t DROP COLUMN c"]);
        assert_eq!(sql(&m.steps[1].verify).len(), 2, "a bare step's section runs to the next directive");
        assert!(m.steps[1].down.is_empty());
        for (sql, line, words) in [
            ("-- lockimpact: verify\nSELECT 1;\n", 1, "must follow"),
            (
                "-- lockimpact: step \"x\"\nSELECT 1;\n-- lockimpact: verify\n-- lockimpact: down\nSELECT 2;\n",
                4,
                "verify section",
            ),
            ("SELECT 1;\n-- lockimpact: verify\n", 2, "the verify section has no statements"),
        ] {
            let e = split(sql).unwrap_err();
            assert_eq!(e.line, line, "{sql:?}: {}", e.message);
            assert!(e.message.contains(words), "{sql:?}: {}", e.message);
        }
    }

    #[test]
    fn keeps_dollar_quotes_do_blocks_and_comments() {
        let text = r#"-- add the column
ALTER TABLE t ADD COLUMN c int; -- trailing
CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$
BEGIN
  -- a comment; with a semicolon
  RETURN 1;
END
$body$;
DO $$ BEGIN RAISE NOTICE 'x;y'; END $$;
/* block; comment */ SELECT 'a;b' /* inner; */;
"#;
        let m = split(text).unwrap();
        assert_eq!(m.steps.len(), 4);
        assert_eq!(sql_of(&m.steps[0]), ["ALTER TABLE t ADD COLUMN c int"]);
        assert!(sql_of(&m.steps[1])[0].contains("-- a comment; with a semicolon\n  RETURN 1;\nEND\n$body$"));
        assert_eq!(sql_of(&m.steps[2]), ["DO $$ BEGIN RAISE NOTICE 'x;y'; END $$"]);
        assert_eq!(sql_of(&m.steps[3]), ["SELECT 'a;b' /* inner; */"]);
        assert_eq!(m.steps[1].line, 3);
        assert_eq!(m.steps[3].line, 10);
    }

    #[test]
    fn directives_group_backfill_and_pause() {
        let text = r#"-- lockimpact: transaction step
-- lockimpact: step "add column" lock_timeout=2s retries=3 retry_backoff=100ms
SET x = 1;
ALTER TABLE t ADD COLUMN c int;
-- lockimpact: backfill "fill c" pause=50ms max_batches=10
UPDATE t SET c = 1 WHERE id IN (SELECT id FROM t WHERE c IS NULL LIMIT 100);
-- lockimpact: pause 2s "deploy app"
ALTER TABLE t ALTER COLUMN c SET NOT NULL;
"#;
        let m = split(text).unwrap();
        assert_eq!(m.transaction, Some(TxMode::Step));
        assert_eq!(m.steps.len(), 4);
        assert_eq!(m.steps[0].name, "add column");
        assert_eq!(sql_of(&m.steps[0]).len(), 2);
        assert_eq!(m.steps[0].options.lock_timeout, Some(Duration::from_secs(2)));
        assert_eq!(m.steps[0].options.retries, Some(3));
        assert!(
            matches!(m.steps[1].kind, StepKind::Backfill { pause, max_batches: Some(10), .. } if pause == Duration::from_millis(50))
        );
        assert_eq!(m.steps[2].kind, StepKind::Pause(Duration::from_secs(2)));
        assert_eq!(m.steps[2].name, "deploy app");
        assert_eq!(m.steps[3].name, "ALTER TABLE t ALTER COLUMN c SET NOT NULL");
    }

    #[test]
    fn flags_concurrently_and_transaction_control() {
        let m = split("CREATE INDEX CONCURRENTLY i ON t (a);\nBEGIN;").unwrap();
        let StepKind::Sql(s) = &m.steps[0].kind else { panic!() };
        assert_eq!(s[0].needs_autocommit, Some("CREATE INDEX CONCURRENTLY"));
        let StepKind::Sql(s) = &m.steps[1].kind else { panic!() };
        assert!(s[0].is_transaction_control);
    }

    #[test]
    fn errors_name_the_line() {
        let e = split("SELECT 1;\n\nALTER TABLEX t;\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("statement 2: SQL syntax error"), "{}", e.message);
        let e = split("SELECT 1;\n-- lockimpact: stpe \"x\"\nSELECT 2;").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("unknown directive"));
        let e = split("SELECT 1;\n-- lockimpact: step \"x\" lock_timeout=soon\nSELECT 2;").unwrap_err();
        assert!(e.message.contains("lock_timeout"), "{}", e.message);
        let e = split("SELECT 1;\n-- lockimpact: transaction none\n").unwrap_err();
        assert!(e.message.contains("before the first statement"));
        let e = split("-- lockimpact: backfill\n").unwrap_err();
        assert!(e.message.contains("followed by the statement"));
        assert!(split("-- nothing\n").is_err());
        let e = split("SELECT 1;\nSELECT 'it''s\nfine';\nUPDATE t SET a = 'x;\nSELECT 2;\n").unwrap_err();
        assert_eq!(e.line, 4, "{}", e.message);
        assert!(e.message.contains("unterminated quoted string"), "{}", e.message);
        let e = split("SELECT 1;\n\nDO $$ BEGIN\n").unwrap_err();
        assert_eq!(e.line, 3, "{}", e.message);
        assert_eq!(split("").unwrap_err().line, 1);
        assert_eq!(split(" \n\t\n").unwrap_err().line, 1);
    }

    #[test]
    fn fixed_ranges_are_one_statement_each() {
        let text = "ALTER TABLE t ADD c int;\nCREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';\nSELECT 1; SELECT 2;\nSELECT 3;\n";
        let block_start = text.find("CREATE").unwrap();
        let block_end = text.find("SELECT 3").unwrap();
        let m = split_with(text, std::slice::from_ref(&(block_start..block_end))).unwrap();
        assert_eq!(m.steps.len(), 3);
        assert_eq!(
            sql_of(&m.steps[1]),
            ["CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';\nSELECT 1; SELECT 2;"]
        );
        assert_eq!(m.steps[1].line, 2);
        let StepKind::Sql(s) = &m.steps[2].kind else { panic!() };
        assert_eq!((s[0].number, s[0].line), (3, 4));
        let e = split_with("SELECT 1\nSELECT 2;", std::slice::from_ref(&(9..18))).unwrap_err();
        assert!(e.message.contains("runs into the block on line 2"), "{}", e.message);
        let e = split_with("SELECT 1;\nSELEC 2;", std::slice::from_ref(&(10..18))).unwrap_err();
        assert_eq!(e.line, 2, "{}", e.message);
    }
}

#[cfg(test)]
mod syntax_error_tests {
    #[test]
    fn a_syntax_error_names_its_statement_and_line() {
        let text =
            "CREATE TABLE t (id int);\nCREATE TABLE u (id int);\nCREATE TABLE v (id int);\nSELECT 1;\nSELEC 2;\n";
        let e = super::split(text).unwrap_err();
        assert_eq!((e.line, e.message.starts_with("statement 5:")), (5, true), "{}", e.message);
        let text = "-- a\nCREATE TABLE t (id int);\nSELECT (2;\n";
        let e = super::split(text).unwrap_err();
        assert_eq!((e.line, e.message.starts_with("statement 2:")), (3, true), "{}", e.message);
    }
}
