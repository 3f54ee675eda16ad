//! The `replicas` part of the report: from each standby's raw samples, the
//! largest replay lag (bytes, and the primary's write/flush/replay lag in
//! time) and where it happened, the largest lag per migration step (the
//! step's time window in the run record), the standby sessions blocked by a
//! lock the startup process replayed, and the recovery conflicts (cancels)
//! during the run. Only samples from the baseline on count.

use std::collections::HashMap;
use std::time::Duration;

use super::{Bounds, ms};
use crate::fmt::{fmt_bytes, fmt_ms};
use crate::report::model::{
    ConflictCounts, LAG_SERIES_POINTS, LogicalReport, ReplicasReport, Report, StandbyReport, StandbyStep, Violation,
};
use crate::run_record::RunRecord;
use crate::run_record::budget::BudgetSection;
use crate::run_record::replica::{LagSample, LogicalRecord, StandbyRecord};

pub fn replicas(rec: &RunRecord, bounds: &Bounds) -> Option<ReplicasReport> {
    let r = rec.replicas.as_ref()?;
    Some(ReplicasReport {
        interval_ms: ms(r.interval),
        standbys: r.standbys.iter().map(|s| standby(rec, bounds, s)).collect(),
    })
}

/// A step's time window: from its start for its duration (a step still
/// running at the run's end: until the end).
fn windows(rec: &RunRecord) -> Vec<(Duration, Duration)> {
    rec.migration.steps.iter().map(|s| (s.start, s.start + s.duration)).collect()
}

fn standby(rec: &RunRecord, bounds: &Bounds, s: &StandbyRecord) -> StandbyReport {
    let measured: Vec<&LagSample> = s.samples.iter().filter(|x| x.at >= bounds.baseline_at).collect();
    let windows = windows(rec);
    let step_at = |t: Duration| windows.iter().position(|(a, b)| *a <= t && t <= *b);
    let max = measured.iter().copied().max_by_key(|x| (x.lag_bytes, std::cmp::Reverse(x.at)));
    let max_ms =
        |f: &dyn Fn(&LagSample) -> Option<Duration>, xs: &[&LagSample]| xs.iter().filter_map(|x| f(x)).max().map(ms);
    let baseline: Vec<&LagSample> = measured.iter().copied().filter(|x| x.at < bounds.migration_at).collect();
    let blocked = Blocked::of(&measured);
    let steps = rec
        .migration
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let (from, to) = windows[i];
            let inside: Vec<&LagSample> = measured.iter().copied().filter(|x| from <= x.at && x.at <= to).collect();
            StandbyStep {
                step: i,
                name: step.name.clone(),
                max_lag_bytes: inside.iter().map(|x| x.lag_bytes).max().unwrap_or(0),
                max_replay_lag_ms: max_ms(&|x| x.replay_lag, &inside),
                blocked_sessions: Blocked::of(&inside).sessions,
            }
        })
        .collect();
    let c = s.conflicts_after.since(&s.conflicts_before);
    let n = |v: i64| v.max(0) as u64;
    let conflicts = ConflictCounts {
        lock: n(c.lock),
        snapshot: n(c.snapshot),
        bufferpin: n(c.bufferpin),
        deadlock: n(c.deadlock),
        tablespace: n(c.tablespace),
    };
    StandbyReport {
        name: s.name.clone(),
        samples: measured.len() as u64,
        failed_polls: s.failed_polls,
        max_lag_bytes: max.map_or(0, |x| x.lag_bytes),
        max_lag_at_ms: max.map(|x| ms(x.at)),
        max_lag_step: max.and_then(|x| step_at(x.at)),
        max_lag_phase: max.filter(|x| step_at(x.at).is_none()).map(|x| bounds.phase_at(x.at)),
        max_lag_wal_step: max.and_then(|x| wal_step(rec, x)),
        baseline_max_lag_bytes: baseline.iter().map(|x| x.lag_bytes).max().unwrap_or(0),
        max_write_lag_ms: max_ms(&|x| x.write_lag, &measured),
        max_flush_lag_ms: max_ms(&|x| x.flush_lag, &measured),
        max_replay_lag_ms: max_ms(&|x| x.replay_lag, &measured),
        steps,
        blocked_sessions: blocked.sessions,
        max_blocked_at_once: blocked.at_once,
        longest_blocked_ms: ms(blocked.longest),
        conflicts,
        cancels: n(c.total()),
        lag_series: lag_series(&measured),
        sync_commit: s.sync_commit.as_ref().map(|x| super::sync_commit::sync_commit(rec, bounds, x)),
        logical: s.logical.as_ref().map(|l| logical(bounds, l, &step_at)),
    }
}

/// The step that wrote most of the WAL a lagging standby was behind on:
/// of the WAL between its replay position and the primary's, the largest
/// share written while one step ran. A lag that outlasts its step is put on
/// the step that caused it, not the one that happened to be running.
fn wal_step(rec: &RunRecord, x: &LagSample) -> Option<usize> {
    let behind = x.replay_lsn.map(|from| (from, from + x.lag_bytes))?;
    let share = |s: &crate::run_record::StepRecord| match (s.wal_start, s.wal_bytes) {
        (Some(from), Some(n)) => behind.1.min(from + n).saturating_sub(behind.0.max(from)),
        _ => 0,
    };
    let (i, most) =
        rec.migration.steps.iter().map(share).enumerate().max_by_key(|(i, n)| (*n, std::cmp::Reverse(*i)))?;
    (most > 0).then_some(i)
}

/// A logical subscriber's error counts at the last poll, and the first poll that saw one.
fn logical(bounds: &Bounds, l: &LogicalRecord, step_at: &dyn Fn(Duration) -> Option<usize>) -> LogicalReport {
    let last = l.errors.last();
    let first = l.errors.iter().find(|(_, apply, sync)| apply + sync > 0).map(|(at, _, _)| *at);
    LogicalReport {
        slot: l.slot.clone(),
        database: l.database.clone(),
        apply_errors: last.map(|x| x.1),
        sync_errors: last.map(|x| x.2),
        first_error_at_ms: first.map(ms),
        first_error_step: first.and_then(step_at),
        first_error_phase: first.filter(|t| step_at(*t).is_none()).map(|t| bounds.phase_at(t)),
        published_tables: l.published.clone(),
        publication_note: l.publication_note.clone(),
        first_error_message: l.first_error.clone(),
    }
}

/// The lag over time for the chart: at most `LAG_SERIES_POINTS` points,
/// each the largest of a run of consecutive samples (the peak is kept).
fn lag_series(samples: &[&LagSample]) -> Vec<(f64, u64)> {
    let per_point = samples.len().div_ceil(LAG_SERIES_POINTS).max(1);
    samples
        .chunks(per_point)
        .filter_map(|run| run.iter().max_by_key(|x| (x.lag_bytes, std::cmp::Reverse(x.at))))
        .map(|x| (ms(x.at), x.lag_bytes))
        .collect()
}

/// Standby sessions seen waiting on the startup process's lock: a session
/// blocked in consecutive polls is one wait, from its first poll to its last.
struct Blocked {
    sessions: u64,
    at_once: u64,
    longest: Duration,
}

impl Blocked {
    fn of(samples: &[&LagSample]) -> Blocked {
        let mut open: HashMap<i32, (Duration, Duration)> = HashMap::new();
        let mut out = Blocked { sessions: 0, at_once: 0, longest: Duration::ZERO };
        let close = |span: (Duration, Duration), out: &mut Blocked| {
            out.longest = out.longest.max(span.1.saturating_sub(span.0));
        };
        for x in samples {
            out.at_once = out.at_once.max(x.blocked_pids.len() as u64);
            // A wait not seen at this poll ended.
            let ended: Vec<i32> = open.keys().filter(|pid| !x.blocked_pids.contains(pid)).copied().collect();
            for pid in ended {
                if let Some(span) = open.remove(&pid) {
                    close(span, &mut out);
                }
            }
            for pid in &x.blocked_pids {
                let span = open.entry(*pid).or_insert_with(|| {
                    out.sessions += 1;
                    (x.at, x.at)
                });
                span.1 = x.at;
            }
        }
        for span in open.into_values() {
            close(span, &mut out);
        }
        out
    }
}

/// The replica thresholds of `b`, by budget key (durations in ms).
pub(super) fn limits(b: &BudgetSection) -> Vec<(String, f64)> {
    [
        b.max_replica_lag.map(|d| ("max_replica_lag", ms(d.0))),
        b.max_replica_lag_bytes.map(|n| ("max_replica_lag_bytes", n as f64)),
        b.max_standby_cancels.map(|n| ("max_standby_cancels", n as f64)),
        b.max_standby_blocked.map(|d| ("max_standby_blocked", ms(d.0))),
        b.max_sync_commit_added.map(|d| ("max_sync_commit_added", ms(d.0))),
        b.max_subscriber_errors.map(|n| ("max_subscriber_errors", n as f64)),
    ]
    .into_iter()
    .flatten()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The replica thresholds of `b` the standbys exceeded, each with the step
/// where the worst standby lagged most.
pub(super) fn violations(r: &Report, b: &BudgetSection) -> Vec<Violation> {
    let Some(rep) = &r.replicas else { return Vec::new() };
    let mut v = Vec::new();
    let worst = |f: &dyn Fn(&StandbyReport) -> f64| rep.standbys.iter().max_by(|a, b| f(a).total_cmp(&f(b)));
    let step_of = |s: &StandbyReport, f: &dyn Fn(&StandbyStep) -> f64| {
        s.steps.iter().filter(|x| f(x) > 0.0).max_by(|a, b| f(a).total_cmp(&f(b))).map(|x| x.step)
    };
    if let (Some(d), Some(s)) = (b.max_replica_lag, worst(&|s| s.max_replay_lag_ms.unwrap_or(0.0))) {
        let actual = s.max_replay_lag_ms.unwrap_or(0.0);
        let what = format!("standby {} fell {} behind in replay (budget {})", s.name, fmt_ms(actual), fmt_ms(ms(d.0)));
        if actual > ms(d.0) {
            let step = step_of(s, &|x| x.max_replay_lag_ms.unwrap_or(0.0));
            v.push(Violation { step, ..Violation::new("max_replica_lag", ms(d.0), actual, what) });
        }
    }
    if let (Some(n), Some(s)) = (b.max_replica_lag_bytes, worst(&|s| s.max_lag_bytes as f64)) {
        let what = format!(
            "standby {} fell {} behind the primary (budget {})",
            s.name,
            fmt_bytes(s.max_lag_bytes),
            fmt_bytes(n)
        );
        if s.max_lag_bytes > n {
            let step = s.max_lag_wal_step.or(s.max_lag_step).or_else(|| step_of(s, &|x| x.max_lag_bytes as f64));
            v.push(Violation {
                step,
                ..Violation::new("max_replica_lag_bytes", n as f64, s.max_lag_bytes as f64, what)
            });
        }
    }
    if let Some(n) = b.max_standby_cancels {
        let cancels: u64 = rep.standbys.iter().map(|s| s.cancels).sum();
        if cancels > n {
            let what =
                format!("{cancels} standby queries were cancelled by recovery conflicts (SQLSTATE 40001; budget {n})");
            v.push(Violation::new("max_standby_cancels", n as f64, cancels as f64, what));
        }
    }
    v.extend(standby_blocked(rep, b));
    v.extend(sync_commit_added(rep, b));
    v.extend(subscriber_errors(rep, b));
    v
}

/// `max_sync_commit_added`: the most a synchronous standby added to a
/// commit's median (`sync_commit.max_added_ms`), with the step where it did.
fn sync_commit_added(rep: &ReplicasReport, b: &BudgetSection) -> Option<Violation> {
    let limit = ms(b.max_sync_commit_added?.0);
    let (s, sync) = rep.standbys.iter().find_map(|s| Some((s, s.sync_commit.as_ref()?)))?;
    let added = sync.max_added_ms.filter(|a| *a > limit)?;
    let place = match (sync.max_added_step, sync.max_added_phase) {
        (Some(i), _) => format!(" in step {}", i + 1),
        (None, Some(p)) => format!(" in the {} phase", p.name()),
        (None, None) => String::new(),
    };
    let what = format!(
        "the synchronous standby {} added {} to the median commit{place} (synchronous_commit = {}; budget {})",
        s.name,
        fmt_ms(added),
        sync.level,
        fmt_ms(limit)
    );
    Some(Violation { step: sync.max_added_step, ..Violation::new("max_sync_commit_added", limit, added, what) })
}

/// `max_subscriber_errors`: the logical subscriber's apply and sync errors
/// (counted from PostgreSQL 15 on; before, unknown and not judged).
fn subscriber_errors(rep: &ReplicasReport, b: &BudgetSection) -> Option<Violation> {
    let limit = b.max_subscriber_errors?;
    let (s, l) = rep.standbys.iter().find_map(|s| Some((s, s.logical.as_ref()?)))?;
    let errors = l.apply_errors.unwrap_or(0) + l.sync_errors.unwrap_or(0);
    if l.apply_errors.is_none() && l.sync_errors.is_none() || errors <= limit {
        return None;
    }
    let first = l.first_error_message.as_deref().map(|m| format!("; the first: {m}")).unwrap_or_default();
    let what = format!("the logical subscriber {} counted {errors} error(s) (budget {limit}){first}", s.name);
    Some(Violation {
        step: l.first_error_step,
        ..Violation::new("max_subscriber_errors", limit as f64, errors as f64, what)
    })
}

/// `max_standby_blocked`: the longest wait of a standby session on a
/// replayed lock, with the step that blocked most sessions on that standby.
fn standby_blocked(rep: &ReplicasReport, b: &BudgetSection) -> Option<Violation> {
    let limit = ms(b.max_standby_blocked?.0);
    let s = rep.standbys.iter().max_by(|x, y| x.longest_blocked_ms.total_cmp(&y.longest_blocked_ms))?;
    if s.longest_blocked_ms <= limit {
        return None;
    }
    let what = format!(
        "a session on standby {} waited {} on a lock replayed from the primary (budget {})",
        s.name,
        fmt_ms(s.longest_blocked_ms),
        fmt_ms(limit)
    );
    let step = s.steps.iter().filter(|x| x.blocked_sessions > 0).max_by_key(|x| x.blocked_sessions).map(|x| x.step);
    Some(Violation { step, ..Violation::new("max_standby_blocked", limit, s.longest_blocked_ms, what) })
}
