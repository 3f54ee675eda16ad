//! The migration annotated: its SQL step by step, each step preceded by SQL
//! comments saying what the run measured (duration, rows, locks, whom it
//! blocked and for how long, rewrite, WAL) and the safer form of what it was
//! seen to do. The text is itself valid SQL; every format shows it.

use crate::fmt::{fmt_bytes, fmt_count, fmt_ms};
use crate::report::model::{Report, StepReport};
use crate::run_record::{Outcome, StepType};

/// Most lines of SQL shown per step; the rest is named by its line count.
const SQL_LINES: usize = 12;
/// Most locks listed per step (the strongest first).
const LOCKS_SHOWN: usize = 3;

/// The annotated migration, one block per step.
pub fn annotated(r: &Report) -> Vec<String> {
    r.steps.iter().enumerate().map(|(i, s)| step(r, i, s)).collect()
}

fn step(r: &Report, i: usize, s: &StepReport) -> String {
    let longest = if r.longest_step == Some(i) { ", the longest" } else { "" };
    let rollback = if s.rollback { " (rollback)" } else { "" };
    let mut out = format!("-- step {}{rollback}{longest}: {} (line {})\n", i + 1, s.name, s.line);
    out.push_str(&format!("--   {}\n", facts(s).join(" · ")));
    if let Some(waited) = own_wait(s) {
        out.push_str(&format!("--   {waited}\n"));
    }
    if let Some(why) = &s.one_way {
        out.push_str(&format!("--   one-way: {why}; fallback: restore or forward fix\n"));
    }
    match s.verify.as_ref().map(|v| &v.error) {
        Some(None) => out.push_str("--   verify: passed\n"),
        Some(Some(e)) => out.push_str(&format!("--   verify FAILED: {e}\n")),
        None => {}
    }
    for h in &s.hints {
        out.push_str(&format!("--   observed: {}\n--   safer: {}\n", h.observed, h.advice));
    }
    match &s.sql {
        Some(sql) => out.push_str(&sql_excerpt(sql)),
        None if super::captured(r, s) => out.push_str("-- (a statement captured from the server's log)\n"),
        None => {}
    }
    out
}

/// What the step did, in measured terms.
fn facts(s: &StepReport) -> Vec<String> {
    let mut f = vec![fmt_ms(s.duration_ms)];
    if s.outcome != Outcome::Ok {
        let code = s.sqlstate.as_deref().map(|c| format!(" ({c})")).unwrap_or_default();
        f.push(format!("{}{code}", s.outcome.as_str().to_uppercase()));
    }
    if s.retries > 0 {
        f.push(format!("{} retries", s.retries));
    }
    if s.kind == StepType::Pause {
        return f;
    }
    f.push(match s.batches {
        Some(b) => format!("{} rows in {} batches", fmt_count(s.rows), fmt_count(b)),
        None => format!("{} rows", fmt_count(s.rows)),
    });
    f.push(locks(s));
    f.push(blocked(s));
    f.push(if s.rewrote { format!("rewrote {}", s.rewritten.join(", ")) } else { "no rewrite".into() });
    if let Some(wal) = s.wal_bytes {
        f.push(format!("WAL {}", fmt_bytes(wal)));
    }
    f
}

fn locks(s: &StepReport) -> String {
    if s.locks.is_empty() {
        return "no lock seen".into();
    }
    let mut held: Vec<_> = s.locks.iter().collect();
    held.sort_by(|a, b| b.mode.cmp(&a.mode).then(a.relation.cmp(&b.relation)));
    let mut shown: Vec<String> =
        held.iter().take(LOCKS_SHOWN).map(|l| format!("{} on {}", l.mode, l.relation)).collect();
    if held.len() > LOCKS_SHOWN {
        shown.push(format!("{} more", held.len() - LOCKS_SHOWN));
    }
    shown.join(", ")
}

fn blocked(s: &StepReport) -> String {
    if s.blocked_ms == 0.0 {
        return "blocked no session".into();
    }
    let longest = s.longest_blocked_ms.map(|l| format!(", longest wait {}", fmt_ms(l))).unwrap_or_default();
    format!("blocked sessions: at most {} at once{longest}, {} summed", s.blocked_sessions, fmt_ms(s.blocked_ms))
}

/// The migration's own wait for its locks, with its lock_timeout.
fn own_wait(s: &StepReport) -> Option<String> {
    if s.lock_wait_ms == 0.0 {
        return None;
    }
    let timeout = match s.lock_timeout_ms {
        Some(t) => format!(" (lock_timeout {})", fmt_ms(t)),
        None => " (no lock_timeout)".into(),
    };
    Some(format!("waited {} for its own locks{timeout}", fmt_ms(s.lock_wait_ms)))
}

/// The step's SQL, its first `SQL_LINES` lines.
fn sql_excerpt(sql: &str) -> String {
    let lines: Vec<&str> = sql.lines().collect();
    let mut out: String = lines.iter().take(SQL_LINES).map(|l| format!("{l}\n")).collect();
    if lines.len() > SQL_LINES {
        out.push_str(&format!("-- … {} more lines\n", lines.len() - SQL_LINES));
    }
    out
}
