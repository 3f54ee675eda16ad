//! Comparing candidates: two rehearsal `Report`s (same data, same workload,
//! same schedule) → a `Comparison`, the JSON contract of `lockimpact compare`
//! (`schema_version` 1, additive changes only). The totals, the ranking and
//! the one-line verdict are derived here; renderers only format them.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fmt::{fmt_bytes, fmt_ms};
use crate::report::Report;
use crate::report::model::VerdictStatus;
use crate::run_record::Outcome;
use crate::run_record::budget::REPLICA_BUDGETS;
use crate::scenario::Plan;

pub const COMPARISON_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Comparison {
    pub schema_version: u32,
    /// Always `comparison`, to tell it from a run report.
    pub kind: String,
    /// In the order given on the command line (A, B).
    pub candidates: Vec<Candidate>,
    /// Indexes into `candidates`, safest first: a candidate that completed
    /// before one that did not; when both have standbys, one within its
    /// replica budgets before one that exceeded one; then less time blocked
    /// by the migration, fewer sessions blocked at once, the shorter longest
    /// wait; then, when both have standbys, fewer standby queries cancelled,
    /// the shorter standby wait on a replayed lock, the smaller peak lag.
    pub ranking: Vec<usize>,
    /// One line a reviewer can quote.
    pub summary: String,
    /// Index into `candidates` of the safer one: ranked first, and it
    /// completed or blocked less than the next, or (both with standbys) it
    /// kept within its replica budgets or did less to the standbys where
    /// they blocked alike (absent when they did alike or not every candidate ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommended: Option<usize>,
    /// How the scenarios differ (allowed with `--allow-different`, or not
    /// affecting the data and load: phases, budget, migration).
    pub differences: Vec<String>,
    /// Every candidate passed its budget.
    pub pass: bool,
    /// `fail` when a candidate failed, else `inconclusive` when a candidate's
    /// run is no evidence, else `pass` (absent in comparisons written before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<VerdictStatus>,
    /// The candidates ran at the same time (`--parallel`), each on its own
    /// copy-on-write clone and server: their loads shared the machine
    /// (absent when they ran one after the other).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub concurrent: bool,
    /// Why the candidates ran one after the other although `--parallel` was
    /// asked (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential_why: Option<String>,
}

impl Comparison {
    /// The status; for a comparison written before `status` existed, from `pass`.
    pub fn status(&self) -> VerdictStatus {
        self.status.unwrap_or(if self.pass { VerdictStatus::Pass } else { VerdictStatus::Fail })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Candidate {
    /// `A`, `B`, …
    pub label: String,
    pub totals: Totals,
    pub report: Report,
}

/// One candidate in numbers, for the side-by-side table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Totals {
    /// Every step succeeded.
    pub completed: bool,
    /// `ok`, or the first failed step and its outcome.
    pub outcome: String,
    pub migration_ms: f64,
    pub blocked_ms: f64,
    pub blocked_sessions: u32,
    pub max_concurrent: u32,
    pub longest_blocked_ms: f64,
    pub errors: u64,
    /// Name and duration of the longest step.
    pub longest_step: Option<String>,
    pub longest_step_ms: f64,
    /// Steps that rewrote a table.
    pub rewrites: u32,
    pub wal_bytes: u64,
    /// class → p99 and max latency during the migration.
    pub during: BTreeMap<String, DuringLatency>,
    /// The candidate's standbys, when it had some (`[replica]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<ReplicaTotals>,
    pub pass: bool,
    /// The candidate's verdict (absent in comparisons written before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<VerdictStatus>,
}

impl Totals {
    /// The status; for a comparison written before `status` existed, from `pass`.
    pub fn status(&self) -> VerdictStatus {
        self.status.unwrap_or(if self.pass { VerdictStatus::Pass } else { VerdictStatus::Fail })
    }
}

/// What a candidate did to the clone's standbys, over all of them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReplicaTotals {
    /// The largest replay lag of any standby, in bytes.
    pub max_lag_bytes: u64,
    /// The largest `replay_lag` the primary reported for any standby.
    pub max_replay_lag_ms: Option<f64>,
    /// Standby queries cancelled by recovery conflicts.
    pub cancels: u64,
    /// Standby sessions that waited on a lock replayed from the primary, and the longest wait.
    pub blocked_sessions: u64,
    pub longest_blocked_ms: f64,
    /// The replica budgets the candidate exceeded (`max_replica_lag`, …).
    pub exceeded: Vec<String>,
}

impl ReplicaTotals {
    fn of(r: &Report) -> Option<ReplicaTotals> {
        let s = &r.replicas.as_ref()?.standbys;
        Some(ReplicaTotals {
            max_lag_bytes: s.iter().map(|x| x.max_lag_bytes).max().unwrap_or(0),
            max_replay_lag_ms: s.iter().filter_map(|x| x.max_replay_lag_ms).reduce(f64::max),
            cancels: s.iter().map(|x| x.cancels).sum(),
            blocked_sessions: s.iter().map(|x| x.blocked_sessions).sum(),
            longest_blocked_ms: s.iter().map(|x| x.longest_blocked_ms).fold(0.0, f64::max),
            exceeded: r
                .verdict
                .violations
                .iter()
                .filter(|v| REPLICA_BUDGETS.contains(&v.budget.as_str()))
                .map(|v| v.budget.clone())
                .collect(),
        })
    }

    /// Less done to the standbys first: fewer cancelled queries (errors),
    /// then the shorter wait on a replayed lock, then the smaller peak lag.
    fn cmp(&self, other: &ReplicaTotals) -> Ordering {
        self.cancels
            .cmp(&other.cancels)
            .then(self.longest_blocked_ms.total_cmp(&other.longest_blocked_ms))
            .then(self.max_lag_bytes.cmp(&other.max_lag_bytes))
    }
}

/// Both candidates' standby totals, when both had standbys.
fn both_replicas<'a>(x: &'a Totals, y: &'a Totals) -> Option<(&'a ReplicaTotals, &'a ReplicaTotals)> {
    Some((x.replicas.as_ref()?, y.replicas.as_ref()?))
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DuringLatency {
    pub count: u64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// A label for candidate `i`: A, B, C, …
pub fn label(i: usize) -> String {
    char::from(b'A' + (i % 26) as u8).to_string()
}

/// The differences between two plans. Errors when the snapshot or the
/// workload differ, unless `allow_different`.
pub fn differences(a: &Plan, b: &Plan, allow_different: bool) -> Result<Vec<String>> {
    let mut refuse = Vec::new();
    if !same_snapshot(a, b) {
        refuse.push(format!(
            "the snapshot differs: {} and {} build different datasets",
            a.seed_path.display(),
            b.seed_path.display()
        ));
    }
    let (wa, wb) = (&a.workload, &b.workload);
    if wa.source != wb.source {
        refuse.push(format!(
            "the workload differs: {} and {} define different query classes",
            wa.path.display(),
            wb.path.display()
        ));
    }
    for (what, x, y) in [
        ("workload.rate", wa.rate.to_string(), wb.rate.to_string()),
        ("workload.connections", wa.connections.to_string(), wb.connections.to_string()),
        ("workload.seed", wa.seed.to_string(), wb.seed.to_string()),
        ("workload.statement_timeout", format!("{:?}", wa.statement_timeout), format!("{:?}", wb.statement_timeout)),
    ] {
        if x != y {
            refuse.push(format!("{what} differs: {x} in A, {y} in B"));
        }
    }
    let mut notes = Vec::new();
    for (what, x, y) in [
        ("clone settings", format!("{:?}", a.clone.settings), format!("{:?}", b.clone.settings)),
        ("phases", format!("{:?}", a.phases), format!("{:?}", b.phases)),
        ("sampler.interval", format!("{:?}", a.sampler_interval), format!("{:?}", b.sampler_interval)),
        ("replica settings", format!("{:?}", a.clone.replicas), format!("{:?}", b.clone.replicas)),
    ] {
        if x != y {
            notes.push(format!("{what} differ: {x} in A, {y} in B"));
        }
    }
    if !refuse.is_empty() && !allow_different {
        return Err(Error::input(format!(
            "the candidates do not run on the same data and load, so their numbers are not comparable:\n  - {}\n\
             Make the two scenarios share [snapshot] and [workload], or pass --allow-different to compare anyway.",
            refuse.join("\n  - ")
        )));
    }
    refuse.extend(notes);
    Ok(refuse)
}

/// The same dataset: the same rendered seed script, the same dump file, or
/// the same statistics at the same scale.
fn same_snapshot(a: &Plan, b: &Plan) -> bool {
    let dump = |p: &Plan| p.dump.as_ref().map(|d| std::path::absolute(&d.path).unwrap_or_else(|_| d.path.clone()));
    let synthetic = |p: &Plan| p.synthetic.as_ref().map(|s| (s.stats.clone(), s.scale.to_bits(), s.seed));
    a.seed_sql == b.seed_sql && dump(a) == dump(b) && synthetic(a) == synthetic(b)
}

/// Same data on the same kind of server: B can run on A's server and template.
pub fn same_clone(a: &Plan, b: &Plan) -> bool {
    let (x, y) = (&a.clone, &b.clone);
    same_snapshot(a, b)
        && x.settings == y.settings
        && x.pg_version == y.pg_version
        && x.backend == y.backend
        && x.image == y.image
        && x.replicas == y.replicas
}

fn totals(r: &Report) -> Totals {
    let failed = r.steps.iter().enumerate().find(|(_, s)| !matches!(s.outcome, Outcome::Ok | Outcome::Skipped));
    let longest = r.longest_step.map(|i| &r.steps[i]);
    Totals {
        completed: r.migration.committed,
        outcome: match failed {
            Some((i, s)) => format!("step {} {}", i + 1, s.outcome.as_str()),
            None if r.migration.committed => "ok".into(),
            None => "did not complete".into(),
        },
        migration_ms: r.migration.duration_ms,
        blocked_ms: r.blocked.total_ms,
        blocked_sessions: r.blocked.by_migration_sessions,
        max_concurrent: r.blocked.max_concurrent,
        longest_blocked_ms: r.blocked.longest_ms,
        errors: r.workload.errors,
        longest_step: longest.map(|s| s.name.clone()),
        longest_step_ms: longest.map_or(0.0, |s| s.duration_ms),
        rewrites: r.steps.iter().filter(|s| s.rewrote).count() as u32,
        wal_bytes: r.steps.iter().filter_map(|s| s.wal_bytes).sum(),
        during: r
            .latency
            .iter()
            .filter_map(|(class, phases)| {
                let l = phases.get(&crate::report::model::Phase::During)?;
                Some((class.clone(), DuringLatency { count: l.count, p99_ms: l.p99_ms, max_ms: l.max_ms }))
            })
            .collect(),
        replicas: ReplicaTotals::of(r),
        pass: r.verdict.pass,
        status: Some(r.verdict.status()),
    }
}

/// Builds the comparison of `reports` (in command-line order).
pub fn build(reports: Vec<Report>, differences: Vec<String>) -> Comparison {
    let candidates: Vec<Candidate> = reports
        .into_iter()
        .enumerate()
        .map(|(i, report)| Candidate { label: label(i), totals: totals(&report), report })
        .collect();
    let mut ranking: Vec<usize> = (0..candidates.len()).collect();
    ranking.sort_by(|&a, &b| {
        let (x, y) = (&candidates[a].totals, &candidates[b].totals);
        let replicas = both_replicas(x, y);
        y.completed
            .cmp(&x.completed)
            .then(
                replicas.map_or(Ordering::Equal, |(p, q)| p.exceeded.is_empty().cmp(&q.exceeded.is_empty()).reverse()),
            )
            .then(x.blocked_ms.total_cmp(&y.blocked_ms))
            .then(x.max_concurrent.cmp(&y.max_concurrent))
            .then(x.longest_blocked_ms.total_cmp(&y.longest_blocked_ms))
            .then(replicas.map_or(Ordering::Equal, |(p, q)| p.cmp(q)))
            .then(a.cmp(&b))
    });
    let (summary, recommended) = summary(&candidates, &ranking);
    let pass = candidates.iter().all(|c| c.totals.pass);
    let statuses: Vec<VerdictStatus> = candidates.iter().map(|c| c.totals.status()).collect();
    let status = if statuses.contains(&VerdictStatus::Fail) {
        VerdictStatus::Fail
    } else if statuses.contains(&VerdictStatus::Inconclusive) {
        VerdictStatus::Inconclusive
    } else {
        VerdictStatus::Pass
    };
    Comparison {
        schema_version: COMPARISON_SCHEMA_VERSION,
        kind: "comparison".into(),
        candidates,
        ranking,
        summary,
        recommended,
        differences,
        pass,
        status: Some(status),
        concurrent: false,
        sequential_why: None,
    }
}

fn blocked_phrase(t: &Totals) -> String {
    if t.blocked_sessions == 0 {
        "blocked no session".into()
    } else {
        format!(
            "blocked {} session{} for {} summed over sessions (longest wait {}, {} at once)",
            t.blocked_sessions,
            if t.blocked_sessions == 1 { "" } else { "s" },
            fmt_ms(t.blocked_ms),
            fmt_ms(t.longest_blocked_ms),
            t.max_concurrent
        )
    }
}

/// The line a reviewer quotes, and the safer candidate when there is one.
fn summary(c: &[Candidate], ranking: &[usize]) -> (String, Option<usize>) {
    let (Some(&first), Some(&second)) = (ranking.first(), ranking.get(1)) else {
        return ("Incomplete: not every candidate ran, so there is nothing to compare yet.".into(), None);
    };
    let (a, b) = (&c[first], &c[second]);
    let name = |x: &Candidate| format!("{} ({})", x.label, x.report.scenario.name);
    let (line, recommended) = primary_summary(a, b, &name);
    let Some((p, q)) = both_replicas(&a.totals, &b.totals) else {
        return (line, recommended.then_some(first));
    };
    let on_standbys =
        format!(" On the standbys, {} {}; {} {}.", a.label, replica_phrase(p), b.label, replica_phrase(q));
    if a.totals.completed == b.totals.completed && p.exceeded.is_empty() && !q.exceeded.is_empty() {
        let (x, y) = (&a.label, &b.label);
        let line = format!(
            "{} is safer: {} exceeded its replica budget ({}) where {x} kept within it; {x} {}, {y} {}.",
            name(a),
            name(b),
            q.exceeded.join(", "),
            blocked_phrase(&a.totals),
            blocked_phrase(&b.totals)
        );
        return (format!("{line}{on_standbys}"), Some(first));
    }
    if !recommended && a.totals.completed == b.totals.completed && p.cmp(q) == Ordering::Less {
        let (x, y) = (&a.label, &b.label);
        let line = format!(
            "{} is safer: {x} and {y} blocked the workload alike ({}), and {x} did less to the standbys.",
            name(a),
            blocked_phrase(&a.totals)
        );
        return (format!("{line}{on_standbys}"), Some(first));
    }
    (format!("{line}{on_standbys}"), recommended.then_some(first))
}

/// What a candidate did to the standbys, for the summary.
fn replica_phrase(t: &ReplicaTotals) -> String {
    let mut parts = vec![format!("lagged at most {} behind", fmt_bytes(t.max_lag_bytes))];
    if t.cancels > 0 {
        parts.push(format!("{} standby quer{} cancelled", t.cancels, if t.cancels == 1 { "y" } else { "ies" }));
    }
    if t.blocked_sessions > 0 {
        parts.push(format!("a standby read waited {} on a replayed lock", fmt_ms(t.longest_blocked_ms)));
    }
    parts.join(", ")
}

/// The line about the primary's workload for `a` (ranked first) and `b`,
/// and whether `a` is the safer one by it.
fn primary_summary(a: &Candidate, b: &Candidate, name: &dyn Fn(&Candidate) -> String) -> (String, bool) {
    if !b.totals.completed && a.totals.completed {
        let line = format!(
            "{} is safer: it completed and {}, where {} did not complete ({}) and {}.",
            name(a),
            blocked_phrase(&a.totals),
            name(b),
            b.totals.outcome,
            blocked_phrase(&b.totals)
        );
        return (line, true);
    }
    if a.totals.blocked_ms == b.totals.blocked_ms && a.totals.blocked_sessions == b.totals.blocked_sessions {
        let line = format!(
            "{} and {} blocked the workload alike ({}); migration took {} and {}.",
            name(a),
            name(b),
            blocked_phrase(&a.totals),
            fmt_ms(a.totals.migration_ms),
            fmt_ms(b.totals.migration_ms)
        );
        return (line, false);
    }
    let line = format!(
        "{} is safer: it {} where {} {}.",
        name(a),
        blocked_phrase(&a.totals),
        name(b),
        blocked_phrase(&b.totals)
    );
    (line, true)
}
