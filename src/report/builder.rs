//! Builds the `Report` from a `RunRecord`: the one place where numbers are
//! derived (percentiles, blocked time per step, rates, the verdict).

use std::collections::BTreeMap;
use std::time::Duration;

use super::model::*;
use crate::fmt::{fmt_count, fmt_ms};
use crate::pg::lockmode::stronger;
use crate::run_record::{
    CheckRecord, Episode, Hist, MigrationRecord, Outcome, PreflightRecord, RunRecord, Selection, WorkloadRecord,
};
use crate::scenario::file::BudgetSection;
use crate::timeline::{Mark, Slot};

/// The percentiles of `latency_percentiles` (100 is the maximum).
const PERCENTILES: &[f64] = &[50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0];

fn ms(d: Duration) -> f64 {
    round3(d.as_secs_f64() * 1000.0)
}

fn us_to_ms(us: u64) -> f64 {
    round3(us as f64 / 1000.0)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn latency(h: &Hist) -> Latency {
    Latency {
        count: h.len(),
        errors: 0,
        p50_ms: us_to_ms(h.value_at_quantile(0.50)),
        p95_ms: us_to_ms(h.value_at_quantile(0.95)),
        p99_ms: us_to_ms(h.value_at_quantile(0.99)),
        max_ms: us_to_ms(h.max()),
    }
}

/// Per phase (`baseline`, `during`, `after`): `slots` merged over the phase's slots.
fn per_phase(slots: &[Option<Hist>]) -> [(&'static str, Option<Hist>); 3] {
    [
        ("baseline", merged(slots.get(Slot::Baseline.index()).into_iter())),
        ("during", merged(slots.iter().enumerate().filter(|(i, _)| Slot::from_index(*i).is_during()).map(|(_, h)| h))),
        ("after", merged(slots.get(Slot::After.index()).into_iter())),
    ]
}

fn merged<'a>(hists: impl Iterator<Item = &'a Option<Hist>>) -> Option<Hist> {
    let mut out: Option<Hist> = None;
    for h in hists.flatten() {
        match out.as_mut() {
            None => out = Some(h.clone()),
            Some(o) => {
                let _ = o.add(h);
            }
        }
    }
    out
}

/// Start of the first mark of `slot`, if it was entered.
fn mark_of(marks: &[Mark], pred: impl Fn(Slot) -> bool) -> Option<Duration> {
    marks.iter().find(|m| pred(m.slot)).map(|m| m.at)
}

/// Most intervals overlapping at once, each clipped to `[from, to)`.
fn max_overlap<'a>(eps: impl Iterator<Item = &'a Episode>, from: Duration, to: Duration) -> u32 {
    let mut events: Vec<(Duration, i32)> = Vec::new();
    for e in eps {
        let (s, t) = (e.start.max(from), e.end.min(to));
        if s < t {
            events.push((s, 1));
            events.push((t, -1));
        }
    }
    events.sort();
    let (mut cur, mut best) = (0i32, 0i32);
    for (_, d) in events {
        cur += d;
        best = best.max(cur);
    }
    best as u32
}

/// `eps` with the invariant that a session waits for one lock at a time: an
/// episode ends no later than the same session's next one begins (the
/// sampler dates an end between two polls and a start from `waitstart`, so
/// they can cross). Sorted by start.
fn one_episode_at_a_time(eps: &[Episode]) -> Vec<Episode> {
    let mut out = eps.to_vec();
    out.sort_by_key(|e| (e.pid, e.start));
    for i in 1..out.len() {
        if out[i - 1].pid == out[i].pid {
            let next = out[i].start;
            let prev = &mut out[i - 1];
            prev.end = prev.end.min(next).max(prev.start);
        }
    }
    out.sort_by_key(|e| (e.start, e.pid));
    out
}

/// Total time of `eps` inside `[from, to)`.
fn overlap_ms<'a>(eps: impl Iterator<Item = &'a Episode>, from: Duration, to: Duration) -> f64 {
    ms(eps.map(|e| e.end.min(to).saturating_sub(e.start.max(from))).sum())
}

pub fn build(rec: &RunRecord) -> Report {
    let marks = &rec.marks;
    let baseline_at = mark_of(marks, |s| s == Slot::Baseline).unwrap_or(rec.end);
    let migration_at = mark_of(marks, Slot::is_during).unwrap_or(rec.end);
    let after_at = mark_of(marks, |s| s == Slot::After).unwrap_or(rec.end);
    let w = &rec.workload;

    // Latency per class and phase.
    let mut lat: BTreeMap<String, BTreeMap<String, Latency>> = BTreeMap::new();
    for (c, name) in w.classes.iter().enumerate() {
        let entry = lat.entry(name.clone()).or_default();
        for (phase, h) in per_phase(&w.latency[c]) {
            let errors = slot_errors(w, c, |s| phase_name(s) == Some(phase));
            entry.insert(phase.to_string(), Latency { errors, ..h.as_ref().map(latency).unwrap_or_default() });
        }
    }

    // The distribution of all classes together, per phase.
    let all = |pred: &dyn Fn(Slot) -> bool| {
        merged(
            w.latency
                .iter()
                .flat_map(|slots| slots.iter().enumerate().filter(|(i, _)| pred(Slot::from_index(*i))).map(|(_, h)| h)),
        )
    };
    let phase_hists = [
        ("baseline", all(&|s| s == Slot::Baseline)),
        ("during", all(&|s: Slot| s.is_during())),
        ("after", all(&|s| s == Slot::After)),
    ];
    let latency_percentiles = phase_hists
        .iter()
        .filter_map(|(phase, h)| {
            let h = h.as_ref()?;
            let points = PERCENTILES
                .iter()
                .map(|&p| Percentile { percentile: p, ms: us_to_ms(h.value_at_quantile(p / 100.0)) })
                .collect();
            Some((phase.to_string(), points))
        })
        .collect();

    // Blocked episodes.
    let all_eps = one_episode_at_a_time(&rec.sampler.episodes);
    let workload_eps: Vec<&Episode> = all_eps.iter().filter(|e| e.who != "migration").collect();
    let mig_eps: Vec<&Episode> = all_eps.iter().filter(|e| e.who == "migration").collect();
    let by_mig: Vec<&Episode> = workload_eps.iter().copied().filter(|e| e.by_migration).collect();
    let mut sessions: Vec<i32> = by_mig.iter().map(|e| e.pid).collect();
    sessions.sort_unstable();
    sessions.dedup();

    // Steps.
    let step_of = |t: Duration| {
        rec.migration
            .steps
            .iter()
            .position(|s| s.outcome != Outcome::Skipped && t >= s.start && t < s.start + s.duration)
    };
    let steps: Vec<StepReport> = rec
        .migration
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (from, to) = (s.start, s.start + s.duration);
            let ran = s.outcome != Outcome::Skipped;
            let mut locks: BTreeMap<String, String> = s.locks.iter().cloned().collect();
            let captured = rec.migration.groups.iter().any(|g| g.captured && g.steps.contains(&i));
            let sampled: Vec<(String, String)> = if captured {
                // No slot of its own: the locks the sampler saw during its time.
                let spans = rec.sampler.migration_lock_spans.iter();
                spans.filter(|l| l.from <= to && l.to >= from).map(|l| (l.relation.clone(), l.mode.clone())).collect()
            } else {
                rec.sampler
                    .migration_locks
                    .get(&Slot::Step(i).index())
                    .into_iter()
                    .flatten()
                    .map(|(r, m)| (r.clone(), m.clone()))
                    .collect()
            };
            for (rel, mode) in &sampled {
                let m = locks.get(rel).map(|old| stronger(old, mode)).unwrap_or_else(|| mode.clone());
                locks.insert(rel.clone(), m);
            }
            let step_latency = w
                .classes
                .iter()
                .enumerate()
                .filter_map(|(c, name)| {
                    let l = latency(w.latency[c].get(Slot::Step(i).index())?.as_ref()?);
                    Some((name.clone(), Latency { errors: slot_errors(w, c, |s| s == Slot::Step(i)), ..l }))
                })
                .collect();
            StepReport {
                name: s.name.clone(),
                kind: s.kind.to_string(),
                line: s.line,
                start_ms: ms(s.start),
                duration_ms: ms(s.duration),
                outcome: s.outcome,
                sqlstate: s.sqlstate.clone(),
                error: s.error.clone(),
                failed_statement: s.failed_statement,
                retries: s.retries,
                batches: s.batches,
                rows: s.rows,
                locks: locks
                    .into_iter()
                    .map(|(relation, mode)| LockHeld {
                        sampled: !s.locks.iter().any(|(r, _)| *r == relation),
                        relation,
                        mode,
                    })
                    .collect(),
                rewrote: !s.rewritten.is_empty(),
                rewritten: s.rewritten.clone(),
                wal_bytes: s.wal_bytes,
                blocked_ms: if ran { overlap_ms(by_mig.iter().copied(), from, to) } else { 0.0 },
                blocked_sessions: if ran { max_overlap(by_mig.iter().copied(), from, to) } else { 0 },
                lock_wait_ms: if ran { overlap_ms(mig_eps.iter().copied(), from, to) } else { 0.0 },
                latency: step_latency,
                group: rec.migration.groups.iter().position(|g| g.steps.contains(&i)),
            }
        })
        .collect();
    let longest_step = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind != "pause" && s.outcome != Outcome::Skipped)
        .max_by(|a, b| a.1.duration_ms.total_cmp(&b.1.duration_ms))
        .map(|(i, _)| i);

    let episode = |e: &&Episode| EpisodeReport {
        pid: e.pid,
        class: e.who.clone(),
        start_ms: ms(e.start),
        duration_ms: ms(e.end.saturating_sub(e.start)),
        mode: e.mode.clone(),
        locktype: e.locktype.clone(),
        relation: e.relation.clone(),
        blockers: e.blockers.clone(),
        blocker_classes: e.blocker_classes.clone(),
        by_migration: e.by_migration,
        step: step_of(e.start),
    };
    let mut episodes: Vec<EpisodeReport> = workload_eps.iter().map(episode).collect();
    episodes.sort_by(|a, b| b.duration_ms.total_cmp(&a.duration_ms).then(a.start_ms.total_cmp(&b.start_ms)));
    episodes.truncate(50);
    let blocked = BlockedSummary {
        by_migration_sessions: sessions.len() as u32,
        by_migration_episodes: by_mig.len() as u32,
        max_concurrent: max_overlap(by_mig.iter().copied(), Duration::ZERO, rec.end + Duration::from_secs(1)),
        total_ms: overlap_ms(by_mig.iter().copied(), Duration::ZERO, rec.end + Duration::from_secs(1)),
        longest_ms: by_mig.iter().map(|e| ms(e.end.saturating_sub(e.start))).fold(0.0, f64::max),
        other_episodes: (workload_eps.len() - by_mig.len()) as u32,
        episodes,
        migration_waits: mig_eps.iter().map(episode).collect(),
    };

    // Workload rates and errors.
    let window = rec.end.saturating_sub(baseline_at).as_secs_f64().max(1e-9);
    let by_code = w.errors();
    let errors: u64 = by_code.values().map(|(n, _)| n).sum();
    let error_detail = by_code
        .iter()
        .map(|((c, code), (n, msg))| ErrorCount {
            class: w.classes[*c].clone(),
            sqlstate: code.clone(),
            count: *n,
            message: msg.clone(),
        })
        .collect();
    let lag_p99 = us_to_ms(w.schedule_lag.value_at_quantile(0.99));
    let issued_rate = w.issued_measured as f64 / window;
    let mut warnings = rec.dataset_notes.clone();
    let kept_schedule = lag_p99 <= 10.0 && issued_rate >= 0.98 * w.target_rate && w.dropped == 0;
    if !kept_schedule {
        warnings.push(format!(
            "the client could not keep the schedule (issued {:.0} of {:.0} ops/s, schedule lag p99 {lag_p99} ms): \
             latency includes client overload; lower {} or run on a bigger machine",
            issued_rate,
            w.target_rate,
            if w.replay { "workload.speed" } else { "workload.rate" }
        ));
    }
    if w.unfinished > 0 {
        warnings.push(format!(
            "{} operations were still queued or running when the run ended (they count in latency with the time \
             they had waited)",
            w.unfinished
        ));
    }
    if w.dropped > 0 {
        warnings.push(format!(
            "the client was overloaded: {} operations of the schedule were never started (its queue of {} was \
             full); lower workload.rate or run on a bigger machine",
            fmt_count(w.dropped),
            fmt_count(crate::workload::QUEUE_CAPACITY as u64)
        ));
    }
    warnings.extend(short_migration_warning(w, after_at.saturating_sub(migration_at)));
    warnings.extend(migration_warnings(&rec.migration));
    if let Some(stop) = rec.stop {
        warnings
            .push(format!("the run is incomplete: {}; the numbers cover what was measured until then", stop.reason()));
    } else if !rec.migration.committed {
        warnings.push("the migration did not complete; see the failed step".into());
    }

    // Timeline.
    let n = w.seconds.len().max(rec.sampler.blocked_per_second.len()).max(rec.end.as_secs() as usize);
    let phase_at = |t: Duration| {
        if t < baseline_at {
            "warmup"
        } else if t < migration_at {
            "baseline"
        } else if t < after_at {
            "during"
        } else {
            "after"
        }
    };
    let timeline = (0..n)
        .map(|t| {
            let s = w.seconds.get(t).cloned().unwrap_or_default();
            let (b, bm) = rec.sampler.blocked_per_second.get(t).copied().unwrap_or_default();
            Second {
                t: t as u64,
                ops: s.ops,
                errors: s.errors,
                p50_ms: us_to_ms(s.p50_us),
                p99_ms: us_to_ms(s.p99_us),
                blocked: b,
                blocked_by_migration: bm,
                phase: phase_at(Duration::from_secs(t as u64)).to_string(),
                classes: w
                    .classes
                    .iter()
                    .zip(&s.classes)
                    .filter(|(_, c)| c.ops > 0)
                    .map(|(name, c)| {
                        (
                            name.clone(),
                            ClassSecond { ops: c.ops, p50_ms: us_to_ms(c.p50_us), p99_ms: us_to_ms(c.p99_us) },
                        )
                    })
                    .collect(),
            }
        })
        .collect();

    let q = rec.sampler.query_time.as_ref();
    let gaps = sampler_gaps(rec);
    warnings.extend(gaps.iter().map(gap_warning));
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        tool: format!("lockimpact {}", env!("CARGO_PKG_VERSION")),
        scenario: ScenarioInfo {
            name: rec.scenario_name.clone(),
            file: rec.scenario_path.clone(),
            migration_file: rec.migration.file.clone(),
        },
        clone: CloneInfo { backend: rec.clone_description.clone(), server_version: rec.server_version.clone() },
        dataset: DatasetInfo {
            tables: rec.tables.clone(),
            seed_ms: ms(rec.seed_time),
            copy_ms: ms(rec.copy_time),
            restore_ms: rec.restore_time.map(ms),
            bytes: rec.dataset_bytes,
            dump: rec.dump.as_ref().map(|(file, format)| DumpInfo { file: file.clone(), format: format.clone() }),
        },
        phases: PhaseTimes {
            warmup_ms: ms(baseline_at),
            baseline_ms: ms(migration_at.saturating_sub(baseline_at)),
            migration_ms: ms(after_at.saturating_sub(migration_at)),
            after_ms: ms(rec.end.saturating_sub(after_at)),
        },
        workload: WorkloadSummary {
            target_rate: w.target_rate,
            achieved_rate: round3(w.finished_measured() as f64 / window),
            issued_rate: round3(issued_rate),
            connections: w.connections,
            errors,
            error_detail,
            unfinished: w.unfinished,
            dropped: w.dropped,
            schedule_lag_p50_ms: us_to_ms(w.schedule_lag.value_at_quantile(0.5)),
            schedule_lag_p99_ms: lag_p99,
            kept_schedule,
            pool: w.pool.as_ref().map(|p| PoolSummary {
                size: p.size,
                wait: per_phase(&p.wait)
                    .into_iter()
                    .map(|(phase, h)| (phase.to_string(), h.as_ref().map(latency).unwrap_or_default()))
                    .collect(),
            }),
            during: Some(during_workload(w, after_at.saturating_sub(migration_at))),
        },
        migration: MigrationSummary {
            transaction: transaction_name(&rec.migration),
            committed: rec.migration.committed,
            duration_ms: ms(after_at.saturating_sub(migration_at)),
            source: rec.migration.source.clone(),
            groups: groups(&rec.migration, &steps),
            selection: rec.migration.selection.as_ref().map(|s| selection(s, rec.migration.groups.len())),
            command: rec.migration.command.as_ref().map(|c| CommandReport {
                command: c.command.clone(),
                exit_code: c.exit_code,
                duration_ms: ms(c.duration),
                wal_bytes: c.wal_bytes,
                rewritten: c.rewritten.clone(),
                sessions: c.sessions,
                output_tail: c.output_tail.clone(),
            }),
        },
        steps,
        longest_step,
        blocked,
        latency: lat,
        latency_percentiles,
        timeline,
        sampler: SamplerInfo {
            interval_ms: ms(rec.sampler.interval),
            polls: rec.sampler.polls,
            query_p50_ms: q.map_or(0.0, |h| us_to_ms(h.value_at_quantile(0.5))),
            query_p99_ms: q.map_or(0.0, |h| us_to_ms(h.value_at_quantile(0.99))),
            blind_during_migration: gaps.iter().any(|g| !g.steps.is_empty()),
            gaps,
        },
        verdict: Verdict { pass: true, violations: Vec::new(), status: None, inconclusive: Vec::new() },
        warnings,
        complete: rec.stop.is_none(),
        incomplete_reason: rec.stop.map(|s| s.reason().to_string()),
        preflight: rec.migration.preflight.as_ref().map(preflight),
        new_errors: new_errors(rec),
        budget: None,
    };
    let (budget, source) = match rec.budget.is_unset() {
        true => (BudgetSection::default_budget(), BudgetSource::Default),
        false => (rec.budget.clone(), BudgetSource::Scenario),
    };
    report.budget = Some(BudgetReport { source, limits: limits(&budget) });
    report.verdict = verdict(&report, &budget);
    report
}

/// The sampler's gaps, each with the steps (that ran) it overlaps.
fn sampler_gaps(rec: &RunRecord) -> Vec<SamplerGap> {
    rec.sampler
        .gaps
        .iter()
        .map(|g| SamplerGap {
            from_ms: ms(g.from),
            to_ms: ms(g.to),
            steps: (rec.migration.steps.iter().enumerate())
                .filter(|(_, s)| s.outcome != Outcome::Skipped && g.from < s.start + s.duration && s.start < g.to)
                .map(|(i, _)| i)
                .collect(),
        })
        .collect()
}

fn gap_warning(g: &SamplerGap) -> String {
    let during = match g.steps.as_slice() {
        [] => String::new(),
        steps => format!(
            " during step {}: what the migration blocked then is missing, so this run is no evidence of its impact",
            steps.iter().map(|i| (i + 1).to_string()).collect::<Vec<_>>().join(", ")
        ),
    };
    format!(
        "the lock sampler's session ended and it saw nothing from {} to {} (it reconnected){during}; \
         blocked sessions and sampled locks of that time are not in this report",
        fmt_ms(g.from_ms),
        fmt_ms(g.to_ms)
    )
}

/// The operations that started while the migration ran: the schedule's
/// target over `duration` (a replay's own count; none for a closed loop),
/// what the mean rate expects, and how many finished, ok or error.
fn during_workload(w: &crate::run_record::WorkloadRecord, duration: Duration) -> DuringWorkload {
    let secs = duration.as_secs_f64();
    let (target, expected) = match (w.replay_schedule, w.target_rate.is_finite()) {
        (Some(s), _) => (Some(s.during as f64), Some(round3(s.mean_rate * secs))),
        (None, true) => (Some(round3(w.target_rate * secs)), Some(round3(w.target_rate * secs))),
        (None, false) => (None, None),
    };
    let completed =
        w.finished.iter().enumerate().filter(|(i, _)| Slot::from_index(*i).is_during()).map(|(_, n)| n).sum();
    DuringWorkload { target, expected, completed }
}

/// A migration shorter than the time between two operations, that no
/// operation met: the run says little of what traffic meets.
fn short_migration_warning(w: &crate::run_record::WorkloadRecord, duration: Duration) -> Option<String> {
    let d = during_workload(w, duration);
    let expected = d.expected.filter(|e| *e < 1.0 && d.completed == 0)?;
    Some(format!(
        "no workload operation started while the migration ran ({}; {expected:.2} were due at the workload's mean \
         rate): raise workload.rate (or workload.speed) to see how traffic meets it",
        fmt_ms(ms(duration)),
    ))
}

/// Each threshold of `b` by its budget key (durations in ms).
fn limits(b: &BudgetSection) -> Vec<BudgetLimit> {
    let dur = |key: &str, d: Option<crate::files::dur::Dur>| d.map(|d| (key.to_string(), ms(d.0)));
    let count = |key: &str, n: Option<u64>| n.map(|n| (key.to_string(), n as f64));
    let mut out: Vec<(String, f64)> = [
        dur("max_blocked", b.max_blocked),
        dur("max_blocked_wait", b.max_blocked_wait),
        count("max_blocked_sessions", b.max_blocked_sessions.map(u64::from)),
        dur("max_p99_during", b.max_p99_during),
        dur("max_step", b.max_step),
        count("max_errors", b.max_errors),
    ]
    .into_iter()
    .flatten()
    .collect();
    out.extend(b.max_p99_during_class.iter().map(|(c, d)| (format!("max_p99_during_class.{c}"), ms(d.0))));
    out.into_iter().map(|(budget, limit)| BudgetLimit { budget, limit }).collect()
}

/// Share of its target the during phase must complete to be evidence; one
/// operation is spared for the phase's edges (an operation due at the last
/// instant of the baseline may start in it, and one due at its end after).
const DURING_MIN_SHARE: f64 = 0.9;

/// Why the run is no evidence, one entry per reason (empty when it is).
pub fn inconclusive(r: &Report) -> Vec<Inconclusive> {
    let mut out = Vec::new();
    out.extend(r.workload.during.as_ref().and_then(|d| workload_during(r, d)));
    out.extend(sampler_blind(r));
    out
}

/// The lock sampler could not see part of a step (its session ended until it
/// reconnected): who the migration blocked then is unknown.
fn sampler_blind(r: &Report) -> Option<Inconclusive> {
    let steps: Vec<usize> = r.sampler.gaps.iter().flat_map(|g| g.steps.iter().copied()).collect();
    let (first, last) = (steps.iter().min()?, steps.iter().max()?);
    let which =
        if first == last { format!("step {}", first + 1) } else { format!("steps {}–{}", first + 1, last + 1) };
    Some(Inconclusive {
        reason: "sampler_blind".into(),
        expected: None,
        actual: None,
        message: format!(
            "the lock sampler's session ended during {which} and saw nothing until it reconnected: \
             who the migration blocked then is unknown (see sampler.gaps)"
        ),
    })
}

/// The workload during the migration: nothing finished, or less than
/// `DURING_MIN_SHARE` of what the schedule asked for. A schedule that
/// expects less than one operation (a migration shorter than the
/// time between two at the workload's mean rate) is left to a warning:
/// whether one ran is chance.
fn workload_during(r: &Report, d: &DuringWorkload) -> Option<Inconclusive> {
    let short = d.target.is_some_and(|t| (d.completed as f64) < DURING_MIN_SHARE * t - 1.0);
    let by_chance = d.expected.is_some_and(|e| e < 1.0);
    if (d.completed > 0 || by_chance) && !short {
        return None;
    }
    let took = fmt_ms(r.migration.duration_ms);
    let asked = match d.target {
        Some(t) => format!("{} of the {} operations its schedule asked for", fmt_count(d.completed), fmt_target(t)),
        None => format!("{} operations", fmt_count(d.completed)),
    };
    let why = if d.target == Some(0.0) {
        "the replay's recording has no statement in that time: record a busier window, or lower workload.speed"
            .to_string()
    } else if r.workload.unfinished > 0 {
        format!(
            "{} operations were still queued or running when the run ended: the workload's statements did not finish, or the client could not keep up (lower workload.rate, check its SQL)",
            fmt_count(r.workload.unfinished)
        )
    } else if !r.workload.kept_schedule {
        "the client could not keep the schedule: lower workload.rate or run on a bigger machine".to_string()
    } else {
        "the workload fell behind its schedule while the migration ran".to_string()
    };
    Some(Inconclusive {
        reason: "workload_during".into(),
        expected: d.target,
        actual: Some(d.completed as f64),
        message: format!(
            "the workload completed {asked} while the migration ran ({took}), so the run shows little of what \
             the migration does to traffic; {why}"
        ),
    })
}

/// A target count: whole, or with one decimal below 10.
fn fmt_target(t: f64) -> String {
    if t < 10.0 && t.fract() != 0.0 { format!("{t:.1}") } else { fmt_count(t.round() as u64) }
}

/// Checks the report against the scenario's budget.
pub fn verdict(r: &Report, b: &BudgetSection) -> Verdict {
    let mut v = Vec::new();
    let mut check = |budget: &str, limit: f64, actual: f64, what: String| {
        if actual > limit {
            v.push(Violation { budget: budget.to_string(), limit, actual, message: what });
        }
    };
    if let Some(d) = b.max_blocked {
        check(
            "max_blocked",
            ms(d.0),
            r.blocked.total_ms,
            format!(
                "sessions were blocked by the migration for {} in total (budget {})",
                fmt_ms(r.blocked.total_ms),
                fmt_ms(ms(d.0))
            ),
        );
    }
    if let Some(d) = b.max_blocked_wait {
        check(
            "max_blocked_wait",
            ms(d.0),
            r.blocked.longest_ms,
            format!("a session waited {} on the migration (budget {})", fmt_ms(r.blocked.longest_ms), fmt_ms(ms(d.0))),
        );
    }
    if let Some(n) = b.max_blocked_sessions {
        check(
            "max_blocked_sessions",
            n as f64,
            r.blocked.max_concurrent as f64,
            format!("{} sessions were blocked by the migration at once (budget {n})", r.blocked.max_concurrent),
        );
    }
    for (class, phases) in &r.latency {
        let limits = [
            ("max_p99_during", b.max_p99_during),
            ("max_p99_during_class", b.max_p99_during_class.get(class).copied()),
        ];
        for (key, limit) in limits {
            let (Some(d), Some(l)) = (limit, phases.get("during")) else { continue };
            check(
                key,
                ms(d.0),
                l.p99_ms,
                format!("p99 of {class} during the migration was {} (budget {})", fmt_ms(l.p99_ms), fmt_ms(ms(d.0))),
            );
        }
    }
    if let (Some(d), Some(i)) = (b.max_step, r.longest_step) {
        let s = &r.steps[i];
        check(
            "max_step",
            ms(d.0),
            s.duration_ms,
            format!("step {} ({}) took {} (budget {})", i + 1, s.name, fmt_ms(s.duration_ms), fmt_ms(ms(d.0))),
        );
    }
    if let Some(n) = b.max_errors {
        check(
            "max_errors",
            n as f64,
            r.workload.errors as f64,
            format!("the workload saw {} errors (budget {n})", r.workload.errors),
        );
    }
    if b.new_errors == crate::scenario::file::NewErrors::NotAllowed && !r.new_errors.is_empty() {
        v.push(Violation {
            budget: "new_errors".into(),
            limit: 0.0,
            actual: r.new_errors.len() as f64,
            message: r.new_errors.iter().map(|e| new_error_line(r, e)).collect::<Vec<_>>().join("; "),
        });
    }
    if let Some(reason) = &r.incomplete_reason {
        v.push(Violation {
            budget: "run_completes".into(),
            limit: 1.0,
            actual: 0.0,
            message: format!("the run is incomplete: {reason}"),
        });
    }
    if !r.migration.committed {
        let failed = r.steps.iter().enumerate().find(|(_, s)| !matches!(s.outcome, Outcome::Ok | Outcome::Skipped));
        let what = match failed {
            Some((i, s)) => {
                format!("the migration did not complete: step {} ({}) ended with {}", i + 1, s.name, s.outcome.as_str())
            }
            None => match r.migration.command.as_ref().and_then(|c| c.exit_code.filter(|&c| c != 0)) {
                Some(code) => format!("the migration did not complete: the migration command exited with code {code}"),
                None => "the migration did not complete".to_string(),
            },
        };
        v.push(Violation { budget: "migration_completes".into(), limit: 1.0, actual: 0.0, message: what });
    }
    let inconclusive = inconclusive(r);
    let status = match (v.is_empty(), inconclusive.is_empty()) {
        (false, _) => VerdictStatus::Fail,
        (true, false) => VerdictStatus::Inconclusive,
        (true, true) => VerdictStatus::Pass,
    };
    Verdict { pass: status == VerdictStatus::Pass, violations: v, status: Some(status), inconclusive }
}

/// The phase (`baseline`, `during`, `after`) a slot belongs to; `None` for warmup.
fn phase_name(s: Slot) -> Option<&'static str> {
    match s {
        Slot::Warmup => None,
        Slot::Baseline => Some("baseline"),
        Slot::After => Some("after"),
        Slot::Between | Slot::Step(_) => Some("during"),
    }
}

/// Errors of class `c` in the slots that match `pred`.
fn slot_errors(w: &WorkloadRecord, c: usize, pred: impl Fn(Slot) -> bool) -> u64 {
    w.slot_errors
        .iter()
        .filter(|((s, class, _), _)| *class == c && pred(Slot::from_index(*s)))
        .map(|(_, (n, _))| n)
        .sum()
}

/// The order in time of the slots after the baseline: steps, then between
/// steps (a commit), then after.
fn time_order(s: Slot) -> (u8, usize) {
    match s {
        Slot::Step(i) => (0, i),
        Slot::Between => (1, 0),
        _ => (2, 0),
    }
}

/// Each (class, SQLSTATE) that failed while the migration ran or after it
/// and never in the baseline, at the slot where it first appeared.
pub fn new_errors(rec: &RunRecord) -> Vec<NewError> {
    let w = &rec.workload;
    let in_baseline = |c: usize, code: &str| w.slot_errors.contains_key(&(Slot::Baseline.index(), c, code.to_string()));
    let mut found: BTreeMap<(usize, String), (Slot, u64, String)> = BTreeMap::new();
    for ((s, c, code), (n, msg)) in &w.slot_errors {
        let slot = Slot::from_index(*s);
        if !(slot.is_during() || slot == Slot::After) || in_baseline(*c, code) {
            continue;
        }
        let e = found.entry((*c, code.clone())).or_insert((slot, 0, msg.clone()));
        e.1 += n;
        if time_order(slot) < time_order(e.0) {
            (e.0, e.2) = (slot, msg.clone());
        }
    }
    let mut out: Vec<NewError> = found
        .into_iter()
        .map(|((c, code), (slot, count, message))| NewError {
            step: if let Slot::Step(i) = slot { Some(i) } else { None },
            phase: match slot {
                Slot::Step(_) => "step",
                Slot::Between => "between",
                _ => "after",
            }
            .into(),
            class: w.classes.get(c).cloned().unwrap_or_default(),
            meaning: error_meaning(&code),
            sqlstate: code,
            count,
            message,
        })
        .collect();
    out.sort_by_key(|e| (e.step.is_none(), e.step, e.phase.clone(), e.class.clone()));
    out
}

/// What a SQLSTATE that a migration causes means for the running application.
pub fn error_meaning(code: &str) -> String {
    match code {
        "0A000" => "the migration changed a result type under server-side prepared statements: drivers that \
             prepare (JDBC, pgx, asyncpg, Rails) fail with \"cached plan must not change result type\" until \
             they prepare the statement again (a reconnect, or a deploy); keep the old column and type until the \
             application no longer reads it, or have the driver re-prepare"
            .into(),
        "42703" => "a column the running application uses was renamed or dropped: its queries fail until the new \
             code is deployed; add the new column first, deploy, and drop the old one later (expand and contract)"
            .into(),
        "42P01" => "a table the running application uses was renamed or dropped: its queries fail until the new \
             code is deployed; keep the old name (a view) until no code uses it"
            .into(),
        "23502" => "NOT NULL was set while the running application still inserts NULL: its writes fail; deploy \
             code that always sets the column (or add a default) before SET NOT NULL"
            .into(),
        "57014" => "the application's statements hit their statement_timeout waiting behind the migration: in \
             production these requests fail; shorten the migration's lock (lock_timeout and retries, a phased form)"
            .into(),
        "40P01" => "the application's transactions deadlocked with the migration: in production one of them is \
             rolled back; take the migration's locks in the order the application does, or one table at a time"
            .into(),
        _ => format!(
            "the migration makes this query fail with SQLSTATE {code}: the running application would see these \
             errors until it is changed"
        ),
    }
}

/// One new error class in a sentence, for the verdict and the renderers.
pub fn new_error_line(r: &Report, e: &NewError) -> String {
    let at = match e.step.and_then(|i| r.steps.get(i).map(|s| (i, s))) {
        Some((i, s)) => format!("step {} ({})", i + 1, s.name),
        None if e.phase == "between" => "the migration outside a step (BEGIN, COMMIT)".to_string(),
        None => "after the migration".to_string(),
    };
    format!(
        "{at} made {} fail with {} ({} times, first: {})",
        e.class,
        e.sqlstate,
        fmt_count(e.count),
        e.message.lines().next().unwrap_or_default()
    )
}

/// `file`, `step`, `none`; `mixed` when the groups differ; `one for all` (Drizzle).
fn transaction_name(m: &MigrationRecord) -> String {
    let name = if m.one_transaction {
        "one for all"
    } else {
        match (m.transaction, m.groups.is_empty()) {
            (Some(t), _) => t.as_str(),
            (None, true) => "",
            (None, false) => "mixed",
        }
    };
    name.to_string()
}

fn groups(m: &MigrationRecord, steps: &[StepReport]) -> Vec<GroupReport> {
    m.groups
        .iter()
        .map(|g| GroupReport {
            name: g.name.clone(),
            file: g.file.clone(),
            version: g.version.clone(),
            transaction: g.transaction.as_str().to_string(),
            first_step: g.steps.start,
            steps: g.steps.len(),
            committed: g.committed,
            has_down: g.has_down,
            captured: g.captured,
            duration_ms: round3(steps.get(g.steps.clone()).map_or(0.0, |s| s.iter().map(|s| s.duration_ms).sum())),
        })
        .collect()
}

fn selection(s: &Selection, rehearsed: usize) -> SelectionReport {
    SelectionReport {
        format: s.format.clone(),
        history_table: s.history_table.clone(),
        from: s.from.clone(),
        found: s.found,
        rehearsed,
        applied: s.applied.clone(),
        applied_before_baseline: s.applied_before_baseline.clone(),
        setup_ms: ms(s.setup_time),
    }
}

/// What the report must say about how the migration was chosen and checked.
fn migration_warnings(m: &MigrationRecord) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(s) = &m.selection {
        out.extend(s.notes.iter().cloned());
        if !s.applied_before_baseline.is_empty() {
            out.push(format!(
                "{} pending migrations before {} were applied before the baseline, unmeasured: {}",
                s.applied_before_baseline.len(),
                s.from.as_deref().unwrap_or("--from"),
                s.applied_before_baseline.join(", ")
            ));
        }
    }
    if let Some(p) = &m.preflight {
        out.extend(p.checks.iter().filter(|c| c.violations.is_some_and(|n| n > 0)).map(check_message));
    }
    out
}

/// "step 4 will fail: 1,203 rows have billing_country NULL" (and what it says otherwise).
fn check_message(c: &CheckRecord) -> String {
    let step = c.step + 1;
    match (c.violations, &c.skipped) {
        (Some(0), _) => format!("step {step}: no row has {}", c.what),
        (Some(1), _) => format!("step {step} will fail: 1 row has {}", c.what),
        (Some(n), _) => format!("step {step} will fail: {} rows have {}", fmt_count(n), c.what),
        (None, Some(why)) => format!("step {step}: {} not checked: {why}", c.what),
        (None, None) => format!("step {step}: {} not checked", c.what),
    }
}

fn preflight(p: &PreflightRecord) -> Preflight {
    Preflight {
        duration_ms: ms(p.duration),
        place: p.place.clone(),
        checks: p
            .checks
            .iter()
            .map(|c| CheckReport {
                step: c.step,
                statement: c.statement,
                kind: c.kind,
                relation: c.relation.clone(),
                columns: c.columns.clone(),
                detail: c.detail.clone(),
                violations: c.violations,
                examples: c.examples.clone(),
                message: check_message(c),
                duration_ms: ms(c.duration),
                skipped: c.skipped.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(pid: i32, start_ms: u64, end_ms: u64) -> Episode {
        Episode {
            pid,
            who: "order_by_id".into(),
            start: Duration::from_millis(start_ms),
            end: Duration::from_millis(end_ms),
            mode: "RowExclusiveLock".into(),
            locktype: "relation".into(),
            relation: Some("orders".into()),
            blockers: vec![99],
            blocker_classes: Vec::new(),
            by_migration: true,
        }
    }

    /// No session in two episodes at once, and never more at once than sessions.
    fn check_invariants(eps: &[Episode]) {
        for a in eps {
            for b in eps {
                if !std::ptr::eq(a, b) && a.pid == b.pid {
                    assert!(a.end <= b.start || b.end <= a.start, "pid {} in two episodes at once: {a:?} {b:?}", a.pid);
                }
            }
        }
        let mut pids: Vec<i32> = eps.iter().map(|e| e.pid).collect();
        pids.sort_unstable();
        pids.dedup();
        let most = max_overlap(eps.iter(), Duration::ZERO, Duration::from_secs(3600));
        assert!(most as usize <= pids.len(), "{most} at once with {} sessions", pids.len());
    }

    #[test]
    fn an_episode_ends_before_the_same_sessions_next_one() {
        // 16 sessions blocked from 1.0 s; session 7's first wait was dated to
        // end at 1.55 s (midway between two polls) while its next wait began
        // at 1.50 s (its waitstart): 17 "at once" before.
        let mut eps: Vec<Episode> = (1..=16).map(|pid| ep(pid, 1000, 2000)).collect();
        eps[6].end = Duration::from_millis(1550);
        eps.push(ep(7, 1500, 2000));
        assert_eq!(max_overlap(eps.iter(), Duration::ZERO, Duration::from_secs(10)), 17, "the record overlaps");
        let fixed = one_episode_at_a_time(&eps);
        check_invariants(&fixed);
        assert_eq!(max_overlap(fixed.iter(), Duration::ZERO, Duration::from_secs(10)), 16);
        let seven: Vec<_> = fixed.iter().filter(|e| e.pid == 7).collect();
        assert_eq!(seven[0].end, Duration::from_millis(1500));
        assert_eq!(seven[1].start, Duration::from_millis(1500));
    }

    #[test]
    fn invariants_hold_for_any_crossing_of_one_sessions_episodes() {
        // Every way two episodes of one session can cross, among other sessions.
        for (a, b, c, d) in
            [(0, 100, 50, 150), (0, 300, 100, 200), (100, 200, 0, 300), (0, 100, 100, 200), (50, 50, 0, 80)]
        {
            let eps = vec![ep(1, a, b), ep(1, c, d), ep(2, 0, 300), ep(3, 60, 90)];
            let fixed = one_episode_at_a_time(&eps);
            check_invariants(&fixed);
            assert_eq!(fixed.len(), eps.len(), "no episode is dropped");
            assert!(fixed.iter().all(|e| e.start <= e.end));
        }
    }
}
