//! `lockimpact record log FILES…`: reads PostgreSQL logs written with
//! `log_min_duration_statement = 0` or `log_statement = 'all'` — csvlog, or
//! stderr logs with `log_line_prefix = '%m [%c:%l:%v] %u@%d '` — including
//! extended-protocol `execute` entries with their `parameters:` detail, and
//! writes a session replay (`--replay FILE.jsonl`: each session's statements
//! in order, with offsets and transaction numbers) and/or a rate-based
//! workload file (`--out FILE.toml`: statements grouped by fingerprint).

use std::collections::BTreeMap;

use crate::cli::RecordLogArgs;
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

pub async fn record(args: &RecordLogArgs) -> Result<()> {
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
    let progress = crate::status::Progress::new(args.quiet);
    let say = |m: &str| progress.say(m);
    let mut entries = Vec::new();
    for f in &args.files {
        let text = crate::files::read_input(f, "log file", crate::files::RECORDING_LIMIT)?;
        let text = String::from_utf8_lossy(&text);
        let csv = match args.format.as_str() {
            "csv" | "csvlog" => true,
            "stderr" => false,
            "auto" => f.extension().is_some_and(|e| e == "csv") || looks_like_csv(&text),
            other => return Err(Error::input(format!("--format {other:?}: use auto, csvlog or stderr"))),
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
    let filter = Filter::new(args)?;
    let mut logged = statements(&entries);
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
    let t0 = logged.iter().map(|l| l.start_ms).fold(f64::INFINITY, f64::min);
    let t1 = logged.iter().map(|l| l.start_ms).fold(f64::NEG_INFINITY, f64::max);
    let duration_ms = (t1 - t0).max(1.0);

    // Classes by fingerprint, in order of first appearance.
    let mut class_of: BTreeMap<String, usize> = BTreeMap::new();
    let mut classes: Vec<(String, String, Vec<&Logged>)> = Vec::new(); // (fingerprint, template sql, statements)
    let mut index = Vec::with_capacity(logged.len());
    for l in &logged {
        let fp = fingerprint(&l.sql);
        let i = *class_of.entry(fp.clone()).or_insert_with(|| {
            classes.push((fp.clone(), l.sql.clone(), Vec::new()));
            classes.len() - 1
        });
        classes[i].2.push(l);
        index.push(i);
    }
    let names: Vec<String> = {
        let mut names: Vec<String> = Vec::new();
        for (fp, sql, _) in &classes {
            let mut n = class_name(sql, fp);
            if names.contains(&n) {
                n = format!("{n}_{}", names.len());
            }
            names.push(n);
        }
        names
    };

    if let Some(path) = &args.replay {
        let header = Header {
            lockimpact_replay: 1,
            duration_ms,
            classes: classes
                .iter()
                .zip(&names)
                .map(|((_, sql, ls), name)| ReplayClass {
                    name: name.clone(),
                    sql: sql.clone(),
                    count: ls.len() as u64,
                })
                .collect(),
            source: files.clone(),
        };
        let mut text = serde_json::to_string(&header).expect("serialisable") + "\n";
        let mut sessions: Vec<Session> = Vec::new();
        // Transactions: a statement outside a BEGIN … COMMIT block is its own;
        // inside one, it shares the block's number (the log's virtual
        // transaction id is gone by the time a COMMIT's duration is logged).
        let mut in_block = false;
        let mut tx = 0u64;
        for (l, class) in logged.iter().zip(&index) {
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
                at_ms: ((l.start_ms - t0) * 1000.0).round() / 1000.0,
                sql: inline(&l.sql, &l.params),
                class: *class,
                tx,
            });
        }
        for s in &sessions {
            text.push_str(&serde_json::to_string(s).expect("serialisable"));
            text.push('\n');
        }
        write_file(path, &text)?;
        say(&format!(
            "wrote {}: {} sessions, {} statements, {} classes over {:.1} s",
            path.display(),
            sessions.len(),
            logged.len(),
            classes.len(),
            duration_ms / 1000.0
        ));
    }

    if let Some(path) = &args.out {
        let window = 1000.0;
        let windows = ((duration_ms / window).ceil() as usize).max(1);
        let mut per_window = vec![0u64; windows];
        let mut kept = Vec::new();
        let mut skipped = 0;
        for ((fp, sql, ls), name) in classes.iter().zip(&names) {
            let template = if ls[0].params.is_empty() {
                normalize_with_literals(sql).map_or(sql.clone(), |n| n.0)
            } else {
                sql.clone()
            };
            if !replayable(&template) {
                skipped += ls.len();
                continue;
            }
            let mut counts = vec![0u64; windows];
            for l in ls {
                let w = (((l.start_ms - t0) / window) as usize).min(windows - 1);
                counts[w] += 1;
                per_window[w] += 1;
            }
            let mut observed: Vec<Vec<String>> = Vec::new();
            for l in ls {
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
            kept.push(RecordedClass {
                name: name.clone(),
                sql: template,
                rate: ls.len() as f64 / (duration_ms / 1000.0),
                peak: counts.iter().copied().max().unwrap_or(0) as f64 / (window / 1000.0),
                comment: format!("fingerprint {fp}: {} statements logged", ls.len()),
                observed,
            });
        }
        if kept.is_empty() {
            return Err(Error::input(format!(
                "no SELECT, INSERT, UPDATE or DELETE in {}; nothing to write to {}",
                files.join(", "),
                path.display()
            )));
        }
        let recorded: f64 = kept.iter().map(|c| c.rate).sum();
        let peak = per_window.iter().copied().max().unwrap_or(0) as f64 / (window / 1000.0);
        let header = vec![
            format!("Recorded by lockimpact record log from {}", files.join(", ")),
            format!(
                "{} statements over {:.1} s, grouped by fingerprint; peak over 1 s windows",
                logged.len(),
                duration_ms / 1000.0
            ),
            format!("{skipped} utility statements (BEGIN, COMMIT, SET, …) left out; use --replay to keep transactions"),
        ];
        write_file(
            path,
            &workload_toml(&header, &kept, recorded, peak.max(recorded), &per_window, &Default::default()),
        )?;
        say(&format!(
            "wrote {}: {} classes, {:.1} ops/s recorded, peak {:.1} ops/s",
            path.display(),
            kept.len(),
            recorded,
            peak
        ));
    }
    Ok(())
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
