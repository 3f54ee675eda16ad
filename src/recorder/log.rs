//! `lockimpact record log FILES…`: reads PostgreSQL logs written with
//! `log_min_duration_statement = 0` or `log_statement = 'all'` — csvlog, or
//! stderr logs with `log_line_prefix = '%m [%c:%l:%v] %u@%d '` — including
//! extended-protocol `execute` entries with their `parameters:` detail, and
//! writes a session replay (`--replay FILE.jsonl`: each session's statements
//! in order, with offsets and transaction numbers) and/or a rate-based
//! workload file (`--out FILE.toml`: statements grouped by fingerprint).

use std::collections::BTreeMap;

use crate::cli::{LogFormat, RecordLogArgs};
use crate::error::{Error, Result};
use crate::pg::lex::scan_tokens;
use crate::pg::log::{Logged, STDERR_PREFIX, csv_entries, inline, parse_time, statements, stderr_entries};
use crate::workload::replay::{Header, ReplayClass, Session, Statement};

use super::write::{RecordedClass, replayable, workload_toml, write_file};

const SETTINGS: &str = "the server must log every statement with its session:\n  \
    log_min_duration_statement = 0   (or log_statement = 'all')\n  \
    log_destination = 'csvlog' and logging_collector = on   (recommended), or\n  \
    log_destination = 'stderr' with log_line_prefix = '%m [%c:%l:%v] %u@%d '";

/// A simple-protocol statement normalised to `$n` (pg_query, as
/// pg_stat_statements does) and the literal each `$n` replaced, found by
/// walking both token streams (`-5` is one literal).
pub fn normalize_with_literals(sql: &str) -> Option<(String, Vec<String>)> {
    let norm = pg_query::normalize(sql).ok()?;
    if norm == sql || norm.trim().is_empty() || sql.trim().is_empty() {
        return Some((norm, Vec::new()));
    }
    let (nt, st) = (scan_tokens(&norm).ok()?, scan_tokens(sql).ok()?);
    let text = |s: &str, t: &pg_query::protobuf::ScanToken| s.get(t.start as usize..t.end as usize).map(str::to_string);
    let param = pg_query::protobuf::Token::Param as i32;
    let mut literals = Vec::new();
    let mut j = 0;
    for (i, t) in nt.iter().enumerate() {
        if t.token == param {
            let next = nt.get(i + 1).and_then(|n| text(&norm, n));
            let start = st.get(j)?.start as usize;
            let mut end = start;
            while j < st.len() && (next.is_none() || text(sql, &st[j]) != next) {
                end = st[j].end as usize;
                j += 1;
            }
            literals.push(sql.get(start..end)?.trim().to_string());
        } else {
            if text(sql, st.get(j)?) != text(&norm, t) {
                return Some((norm, Vec::new())); // not aligned: give up on the values
            }
            j += 1;
        }
    }
    Some((norm, literals))
}

/// A readable class name: verb, first table, a short fingerprint.
fn class_name(sql: &str, hex: &str) -> String {
    let verb = sql.split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("sql").to_ascii_lowercase();
    let table = super::infer::tables_of(sql).into_iter().next();
    let mut name = match table {
        Some(t) => format!("{verb}_{}", t.replace('.', "_")),
        None => verb,
    };
    name.push('_');
    name.push_str(&hex[..hex.len().min(6)]);
    name
}

/// The fingerprint of `sql` (constants and `$n` fingerprint alike), or of its text.
fn fingerprint(sql: &str) -> String {
    match pg_query::fingerprint(sql, 0, 0) {
        Ok(f) => f.hex,
        Err(_) => format!(
            "{:016x}",
            sql.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
        ),
    }
}

/// `record log`: reads the logs, keeps the statements the filters pass,
/// classifies them by fingerprint, and writes the replay and/or the workload file.
pub async fn record(args: &RecordLogArgs) -> Result<()> {
    check_outputs(args)?;
    let progress = crate::status::Progress::new(args.quiet);
    let say = |m: &str| progress.say(m);
    let entries = read_logs(args, &say)?;
    let logged = select(args, &entries, &say)?;
    let t0 = logged.iter().map(|l| l.start_ms).fold(f64::INFINITY, f64::min);
    let t1 = logged.iter().map(|l| l.start_ms).fold(f64::NEG_INFINITY, f64::max);
    let rec = Recording {
        logged: &logged,
        classes: classify(&logged),
        t0,
        duration_ms: (t1 - t0).max(1.0),
        files: args.files.iter().map(|f| f.display().to_string()).collect(),
    };
    if let Some(path) = &args.replay {
        write_replay(&rec, path, &say)?;
    }
    if let Some(path) = &args.out {
        write_workload(&rec, path, &say)?;
    }
    Ok(())
}

/// At least one output, and neither of them one of the logs.
fn check_outputs(args: &RecordLogArgs) -> Result<()> {
    if args.replay.is_none() && args.out.is_none() {
        return Err(Error::input(
            "say what to write: --replay FILE.jsonl (a session replay) and/or --out FILE.toml (a rate-based workload)",
        ));
    }
    for (flag, out) in [("--replay", &args.replay), ("--out", &args.out)] {
        if let Some(out) = out
            && let Some(log) = args.files.iter().find(|f| crate::files::same_file(out, f))
        {
            return Err(Error::input(format!(
                "{flag} {}: is the log file {}, an input; writing there would overwrite it. Choose another file",
                out.display(),
                log.display()
            )));
        }
    }
    Ok(())
}

/// Every log file's entries, each file read as csvlog or stderr (`--format`,
/// or told by its extension and content).
fn read_logs(args: &RecordLogArgs, say: &dyn Fn(&str)) -> Result<Vec<crate::pg::log::Entry>> {
    let mut entries = Vec::new();
    for f in &args.files {
        let text = crate::files::read_input(f, "log file", crate::files::RECORDING_LIMIT)?;
        let text = String::from_utf8_lossy(&text);
        let csv = match args.format {
            LogFormat::Csvlog => true,
            LogFormat::Stderr => false,
            LogFormat::Auto => f.extension().is_some_and(|e| e == "csv") || looks_like_csv(&text),
        };
        let found = if csv {
            csv_entries(&text)
        } else {
            let (found, unparsed) = stderr_entries(&text);
            if found.is_empty() && unparsed > 0 {
                return Err(Error::input(format!(
                    "{}: no line has the log_line_prefix this reader needs ({STDERR_PREFIX:?}); \
                     set log_line_prefix = '{STDERR_PREFIX}' or use csvlog",
                    f.display()
                )));
            }
            found
        };
        say(&format!("{}: {} {} entries", f.display(), found.len(), if csv { "csvlog" } else { "stderr" }));
        entries.extend(found);
    }
    Ok(entries)
}

/// The logged statements the filters (and the tools rule) keep; none is an error.
fn select(args: &RecordLogArgs, entries: &[crate::pg::log::Entry], say: &dyn Fn(&str)) -> Result<Vec<Logged>> {
    let filter = Filter::new(args)?;
    let mut logged = statements(entries);
    let found = logged.len();
    if !args.application_name.is_empty() && logged.iter().all(|l| l.application_name.is_empty()) {
        return Err(Error::input(
            "--application-name: this log does not record application names; record it as csvlog \
             (log_destination = 'csvlog'), or filter with --user",
        ));
    }
    let tools = filter.retain(&mut logged);
    if tools > 0 {
        say(&format!(
            "left out {tools} statements of psql, pg_dump, pg_restore and lockimpact sessions (--include-tools keeps them)"
        ));
    }
    let files: Vec<String> = args.files.iter().map(|f| f.display().to_string()).collect();
    if logged.is_empty() && found > 0 {
        return Err(Error::input(format!(
            "none of the {found} statements in {} passes the filters ({}); loosen them",
            files.join(", "),
            filter.describe()
        )));
    }
    if logged.is_empty() {
        return Err(Error::input(format!("no statements found in {}: {SETTINGS}", files.join(", "))));
    }
    Ok(logged)
}

/// One class of logged statements: those with the same fingerprint.
struct LogClass<'a> {
    fingerprint: String,
    /// The first statement's text: the class's template.
    sql: String,
    statements: Vec<&'a Logged>,
    /// A readable name, unique among the classes.
    name: String,
}

/// The classes, in order of first appearance, and each statement's class.
struct Classes<'a> {
    list: Vec<LogClass<'a>>,
    /// The class of each logged statement, in log order.
    of: Vec<usize>,
}

/// Groups the statements by fingerprint and names each group.
fn classify(logged: &[Logged]) -> Classes<'_> {
    let mut class_of: BTreeMap<String, usize> = BTreeMap::new();
    let mut list: Vec<LogClass> = Vec::new();
    let mut of = Vec::with_capacity(logged.len());
    for l in logged {
        let fp = fingerprint(&l.sql);
        let i = *class_of.entry(fp.clone()).or_insert_with(|| {
            list.push(LogClass {
                fingerprint: fp.clone(),
                sql: l.sql.clone(),
                statements: Vec::new(),
                name: String::new(),
            });
            list.len() - 1
        });
        list[i].statements.push(l);
        of.push(i);
    }
    let mut names: Vec<String> = Vec::new();
    for c in &mut list {
        let mut n = class_name(&c.sql, &c.fingerprint);
        if names.contains(&n) {
            n = format!("{n}_{}", names.len());
        }
        names.push(n.clone());
        c.name = n;
    }
    Classes { list, of }
}

/// What the outputs are written from.
struct Recording<'a> {
    logged: &'a [Logged],
    classes: Classes<'a>,
    /// When the first statement started (ms).
    t0: f64,
    /// From the first statement's start to the last's (at least 1 ms).
    duration_ms: f64,
    /// The log files, as shown.
    files: Vec<String>,
}

/// `--replay`: the header (classes), then each session's statements in order.
fn write_replay(rec: &Recording, path: &std::path::Path, say: &dyn Fn(&str)) -> Result<()> {
    let header = Header {
        lockimpact_replay: 1,
        duration_ms: rec.duration_ms,
        classes: rec
            .classes
            .list
            .iter()
            .map(|c| ReplayClass { name: c.name.clone(), sql: c.sql.clone(), count: c.statements.len() as u64 })
            .collect(),
        source: rec.files.clone(),
    };
    let mut text = serde_json::to_string(&header).expect("serialisable") + "\n";
    let sessions = sessions(rec);
    for s in &sessions {
        text.push_str(&serde_json::to_string(s).expect("serialisable"));
        text.push('\n');
    }
    write_file(path, &text)?;
    say(&format!(
        "wrote {}: {} sessions, {} statements, {} classes over {:.1} s",
        path.display(),
        sessions.len(),
        rec.logged.len(),
        rec.classes.list.len(),
        rec.duration_ms / 1000.0
    ));
    Ok(())
}

/// The statements by session, each with its offset, class and transaction.
fn sessions(rec: &Recording) -> Vec<Session> {
    let mut sessions: Vec<Session> = Vec::new();
    // Transactions: a statement outside a BEGIN … COMMIT block is its own;
    // inside one, it shares the block's number (the log's virtual
    // transaction id is gone by the time a COMMIT's duration is logged).
    let mut in_block = false;
    let mut tx = 0u64;
    for (l, class) in rec.logged.iter().zip(&rec.classes.of) {
        if sessions.last().is_none_or(|s| s.session != l.session) {
            sessions.push(Session {
                session: l.session.clone(),
                user: l.user.clone(),
                database: l.database.clone(),
                statements: Vec::new(),
            });
            tx = 0;
            in_block = false;
        } else if !in_block {
            tx += 1;
        }
        match crate::workload::replay::tx_effect(&l.sql) {
            Some(true) => in_block = true,
            Some(false) => in_block = false,
            None => {}
        }
        sessions.last_mut().expect("a session").statements.push(Statement {
            at_ms: ((l.start_ms - rec.t0) * 1000.0).round() / 1000.0,
            sql: inline(&l.sql, &l.params),
            class: *class,
            tx,
        });
    }
    sessions
}

/// The window the peak rate is measured over (ms).
const WINDOW_MS: f64 = 1000.0;

/// `--out`: the replayable classes as a rate-based workload file.
fn write_workload(rec: &Recording, path: &std::path::Path, say: &dyn Fn(&str)) -> Result<()> {
    let windows = ((rec.duration_ms / WINDOW_MS).ceil() as usize).max(1);
    let mut per_window = vec![0u64; windows];
    let mut kept = Vec::new();
    let mut skipped = 0;
    for c in &rec.classes.list {
        match recorded_class(c, rec, &mut per_window) {
            Some(class) => kept.push(class),
            None => skipped += c.statements.len(),
        }
    }
    let files = rec.files.join(", ");
    if kept.is_empty() {
        return Err(Error::input(format!(
            "no SELECT, INSERT, UPDATE or DELETE in {files}; nothing to write to {}",
            path.display()
        )));
    }
    let recorded: f64 = kept.iter().map(|c| c.rate).sum();
    let peak = per_window.iter().copied().max().unwrap_or(0) as f64 / (WINDOW_MS / 1000.0);
    let header = vec![
        format!("Recorded by lockimpact record log from {files}"),
        format!(
            "{} statements over {:.1} s, grouped by fingerprint; peak over 1 s windows",
            rec.logged.len(),
            rec.duration_ms / 1000.0
        ),
        format!("{skipped} utility statements (BEGIN, COMMIT, SET, …) left out; use --replay to keep transactions"),
    ];
    write_file(path, &workload_toml(&header, &kept, recorded, peak.max(recorded), &per_window, &Default::default()))?;
    say(&format!(
        "wrote {}: {} classes, {:.1} ops/s recorded, peak {:.1} ops/s",
        path.display(),
        kept.len(),
        recorded,
        peak
    ));
    Ok(())
}

/// A class as the workload file writes it, its statements counted into
/// `per_window`; `None` when it cannot be replayed (a utility statement).
fn recorded_class(c: &LogClass, rec: &Recording, per_window: &mut [u64]) -> Option<RecordedClass> {
    let template = if c.statements[0].params.is_empty() {
        normalize_with_literals(&c.sql).map_or(c.sql.clone(), |n| n.0)
    } else {
        c.sql.clone()
    };
    if !replayable(&template) {
        return None;
    }
    let windows = per_window.len();
    let mut counts = vec![0u64; windows];
    for l in &c.statements {
        let w = (((l.start_ms - rec.t0) / WINDOW_MS) as usize).min(windows - 1);
        counts[w] += 1;
        per_window[w] += 1;
    }
    Some(RecordedClass {
        name: c.name.clone(),
        sql: template,
        rate: c.statements.len() as f64 / (rec.duration_ms / 1000.0),
        peak: counts.iter().copied().max().unwrap_or(0) as f64 / (WINDOW_MS / 1000.0),
        comment: format!("fingerprint {}: {} statements logged", c.fingerprint, c.statements.len()),
        observed: observed_values(&c.statements),
    })
}

/// The distinct values seen at each `$n` (at most 200 each, no NULL): the
/// parameters of extended-protocol statements, the literals of simple ones.
fn observed_values(statements: &[&Logged]) -> Vec<Vec<String>> {
    let mut observed: Vec<Vec<String>> = Vec::new();
    for l in statements {
        let literals = if l.params.is_empty() {
            normalize_with_literals(&l.sql).map(|n| n.1).unwrap_or_default()
        } else {
            l.params.clone()
        };
        for (i, p) in literals.iter().enumerate() {
            if observed.len() <= i {
                observed.push(Vec::new());
            }
            if observed[i].len() < 200 && p != "NULL" && !observed[i].contains(p) {
                observed[i].push(p.clone());
            }
        }
    }
    observed
}

/// Client programs whose sessions are not the application's traffic.
const TOOLS: &[&str] = &["psql", "pg_dump", "pg_dumpall", "pg_restore"];

/// Whether `application_name` is one of `TOOLS` or lockimpact's own.
fn is_tool(application_name: &str) -> bool {
    TOOLS.contains(&application_name) || application_name.starts_with("lockimpact")
}

/// Which logged statements a recording keeps (`record log`'s filters).
struct Filter {
    database: Option<String>,
    since_ms: Option<f64>,
    until_ms: Option<f64>,
    users: Vec<String>,
    applications: Vec<String>,
    include_tools: bool,
}

impl Filter {
    fn new(args: &RecordLogArgs) -> Result<Filter> {
        let time = |flag: &str, t: &Option<String>| -> Result<Option<f64>> {
            t.as_ref()
                .map(|t| {
                    parse_time(t).ok_or_else(|| {
                        Error::input(format!(
                            "{flag} {t:?}: not a time as the log writes it; use YYYY-MM-DD HH:MM:SS[.mmm], \
                             e.g. \"2026-11-24 21:53:05\" (in the log's time zone)"
                        ))
                    })
                })
                .transpose()
        };
        let (since_ms, until_ms) = (time("--since", &args.since)?, time("--until", &args.until)?);
        if let (Some(a), Some(b)) = (since_ms, until_ms)
            && a >= b
        {
            return Err(Error::input("--since must be before --until"));
        }
        Ok(Filter {
            database: args.database.clone(),
            since_ms,
            until_ms,
            users: args.user.clone(),
            applications: args.application_name.clone(),
            include_tools: args.include_tools,
        })
    }

    /// Keeps the statements that pass; returns how many tool statements it left out.
    fn retain(&self, logged: &mut Vec<Logged>) -> usize {
        let mut tools = 0;
        logged.retain(|l| {
            let tool = !self.include_tools && is_tool(&l.application_name);
            tools += usize::from(tool && self.passes(l));
            !tool && self.passes(l)
        });
        tools
    }

    fn passes(&self, l: &Logged) -> bool {
        self.database.as_ref().is_none_or(|d| &l.database == d)
            && self.since_ms.is_none_or(|t| l.start_ms >= t)
            && self.until_ms.is_none_or(|t| l.start_ms < t)
            && (self.users.is_empty() || self.users.contains(&l.user))
            && (self.applications.is_empty() || self.applications.contains(&l.application_name))
    }

    fn describe(&self) -> String {
        let mut out = Vec::new();
        if let Some(d) = &self.database {
            out.push(format!("database {d:?}"));
        }
        if self.since_ms.is_some() || self.until_ms.is_some() {
            out.push("--since/--until".to_string());
        }
        if !self.users.is_empty() {
            out.push(format!("user {}", self.users.join(", ")));
        }
        if !self.applications.is_empty() {
            out.push(format!("application_name {}", self.applications.join(", ")));
        }
        if !self.include_tools {
            out.push("sessions of psql, pg_dump, pg_restore and lockimpact left out".to_string());
        }
        out.join("; ")
    }
}

fn looks_like_csv(text: &str) -> bool {
    let first = text.lines().next().unwrap_or("");
    match (first.find(",\""), first.find(" [")) {
        (Some(c), Some(b)) => c < b,
        (Some(_), None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::log::parse_parameters;

    #[test]
    fn parameters_and_inlining() {
        let p = parse_parameters("parameters: $1 = '42', $2 = NULL, $3 = 'it''s, here'");
        assert_eq!(p, vec!["'42'", "NULL", "'it''s, here'"]);
        assert_eq!(inline("SELECT $1, $2 WHERE x = $3", &p), "SELECT '42', NULL WHERE x = 'it''s, here'");
    }

    #[test]
    fn literals_of_simple_statements() {
        let (n, l) = normalize_with_literals("UPDATE t SET b = b + -2647 WHERE aid = 8720 AND c = 'x''y';").unwrap();
        assert_eq!(n, "UPDATE t SET b = b + $1 WHERE aid = $2 AND c = $3;");
        assert_eq!(l, vec!["-2647", "8720", "'x''y'"]);
        let (_, l) = normalize_with_literals("INSERT INTO h VALUES (8, 1, -5, CURRENT_TIMESTAMP)").unwrap();
        assert_eq!(l, vec!["8", "1", "-5"]);
    }

    #[test]
    fn csv_and_stderr_lines() {
        let csv = "2026-11-24 21:53:05.123 UTC,\"u\",\"db\",12,\"[local]\",65f1.c,3,\"SELECT\",2026-11-24 21:53:00 UTC,3/45,0,LOG,00000,\"duration: 0.5 ms  execute P0_1: SELECT \"\"a\"\" FROM t WHERE id = $1\",\"parameters: $1 = '7'\",,,,,,,,\"pgbench\",\"client backend\",,0\n";
        let e = csv_entries(csv);
        let s = statements(&e);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].sql, "SELECT \"a\" FROM t WHERE id = $1");
        assert_eq!(s[0].params, vec!["'7'"]);
        assert!((s[0].start_ms - (parse_time("2026-11-24 21:53:05.123").unwrap() - 0.5)).abs() < 1e-6);
        let err = "2026-11-24 21:53:05.123 UTC [65f1.c:4:3/46] u@db LOG:  statement: SELECT 1\n\tFROM t\n\
                   2026-11-24 21:53:05.200 UTC [65f1.c:5:3/46] u@db LOG:  execute S_1: SELECT $1\n\
                   2026-11-24 21:53:05.200 UTC [65f1.c:6:3/46] u@db DETAIL:  parameters: $1 = 'x'\n";
        let (e, bad) = stderr_entries(err);
        assert_eq!(bad, 0);
        let s = statements(&e);
        assert_eq!(s[0].sql, "SELECT 1\nFROM t");
        assert_eq!(inline(&s[1].sql, &s[1].params), "SELECT 'x'");
        assert_eq!(s[1].vxid, "3/46");
    }
}
