//! Builds the `Report` from a `RunRecord`: the one place where numbers are
//! derived. Each part of the report has its builder: `latency` (per class
//! and phase), `steps`, `blocked` (episodes and their sums), `timeline` (per
//! second), `workload` (rates, errors, warnings), `migration` (groups,
//! selection, preflight), `errors` (new error classes), `hints` (safer forms
//! of what a step did) and `verdict`.

mod blocked;
mod errors;
mod extrapolate;
mod hints;
mod latency;
mod migration;
mod remedy;
mod replica;
mod steps;
mod stop_points;
mod sync_commit;
mod timeline;
mod verdict;
mod workload;

use std::time::Duration;

pub use errors::{error_meaning, new_error_line, new_errors};
pub use extrapolate::extrapolate;
pub use stop_points::{attach_stop_points, stop_point};
pub use verdict::{inconclusive, verdict};

use super::model::*;
use crate::run_record::budget::BudgetSection;
use crate::run_record::{Hist, RunRecord, WorkloadRecord};
use crate::timeline::{Mark, Slot};

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

/// Errors of class `c` in the slots that match `pred`.
fn slot_errors(w: &WorkloadRecord, c: usize, pred: impl Fn(Slot) -> bool) -> u64 {
    w.slot_errors
        .iter()
        .filter(|((s, class, _), _)| *class == c && pred(Slot::from_index(*s)))
        .map(|(_, (n, _))| n)
        .sum()
}

/// When the baseline, the migration and the after phase began (the run's
/// end for a phase never entered).
pub struct Bounds {
    pub baseline_at: Duration,
    pub migration_at: Duration,
    pub after_at: Duration,
}

impl Bounds {
    fn of(rec: &RunRecord) -> Bounds {
        let mark_of = |pred: &dyn Fn(Slot) -> bool| rec.marks.iter().find(|m: &&Mark| pred(m.slot)).map(|m| m.at);
        Bounds {
            baseline_at: mark_of(&|s| s == Slot::Baseline).unwrap_or(rec.end),
            migration_at: mark_of(&Slot::is_during).unwrap_or(rec.end),
            after_at: mark_of(&|s| s == Slot::After).unwrap_or(rec.end),
        }
    }

    /// How long the migration ran.
    fn migration(&self) -> Duration {
        self.after_at.saturating_sub(self.migration_at)
    }

    fn phase_at(&self, t: Duration) -> Phase {
        if t < self.baseline_at {
            Phase::Warmup
        } else if t < self.migration_at {
            Phase::Baseline
        } else if t < self.after_at {
            Phase::During
        } else {
            Phase::After
        }
    }
}

pub fn build(rec: &RunRecord) -> Report {
    let bounds = Bounds::of(rec);
    let eps = blocked::Episodes::of(rec);
    let steps = steps::steps(rec, &eps);
    let gaps = workload::sampler_gaps(rec);
    let workload = workload::summary(rec, &bounds);
    let warnings = warnings(rec, &bounds, &workload, &gaps);
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        tool: format!("lockimpact {}", env!("CARGO_PKG_VERSION")),
        scenario: ScenarioInfo {
            name: rec.scenario_name.clone(),
            file: rec.scenario_path.clone(),
            migration_file: rec.migration.file.clone(),
        },
        clone: CloneInfo {
            backend: rec.clone_description.clone(),
            server_version: rec.server_version.clone(),
            kind: Some(rec.clone_kind.clone()),
        },
        dataset: dataset(rec),
        phases: phases(rec, &bounds),
        workload,
        migration: migration::summary(rec, &steps, bounds.migration()),
        longest_step: steps::longest(&steps),
        steps,
        blocked: blocked::summary(rec, &eps),
        latency: latency::by_class(&rec.workload),
        latency_percentiles: latency::percentiles(&rec.workload),
        timeline: timeline::timeline(rec, &bounds),
        sampler: sampler(rec, &gaps),
        verdict: Verdict { pass: true, violations: Vec::new(), status: None, inconclusive: Vec::new() },
        warnings,
        complete: rec.stop.is_none(),
        incomplete_reason: rec.stop.map(|s| s.reason().to_string()),
        preflight: rec.migration.preflight.as_ref().map(migration::preflight),
        new_errors: new_errors(rec),
        budget: None,
        replicas: replica::replicas(rec, &bounds),
        stop_points: Vec::new(),
        extrapolation: None,
    };
    let (budget, source) = match rec.budget.is_unset() {
        true => (BudgetSection::default_budget(), BudgetSource::Default),
        false => (rec.budget.clone(), BudgetSource::Scenario),
    };
    hints::annotate(&mut report, &eps, rec.migration.deadlock_timeout);
    report.budget = Some(BudgetReport { source, limits: verdict::limits(&budget) });
    report.verdict = verdict(&report, &budget);
    report
}

fn verify_report(v: &crate::run_record::VerifyRecord) -> VerifyReport {
    VerifyReport { ok: v.error.is_none(), error: v.error.clone(), duration_ms: ms(v.duration) }
}

fn dataset(rec: &RunRecord) -> DatasetInfo {
    DatasetInfo {
        tables: rec.tables.clone(),
        seed_ms: ms(rec.seed_time),
        copy_method: rec.copy_method.as_ref().map(|(m, _)| m.as_str().to_string()),
        copy_why: rec.copy_method.as_ref().map(|(_, why)| why.clone()),
        copy_ms: ms(rec.copy_time),
        restore_ms: rec.restore_time.map(ms),
        bytes: rec.dataset_bytes,
        dump: rec.dump.as_ref().map(|d| DumpInfo { file: d.file.clone(), format: d.format.clone(), sample: d.sample }),
        synthetic: (rec.synthetic.as_ref()).map(|s| SyntheticInfo {
            stats_file: s.file.clone(),
            scale: s.scale,
            seed: s.seed,
        }),
    }
}

fn phases(rec: &RunRecord, b: &Bounds) -> PhaseTimes {
    PhaseTimes {
        warmup_ms: ms(b.baseline_at),
        baseline_ms: ms(b.migration_at.saturating_sub(b.baseline_at)),
        migration_ms: ms(b.migration()),
        after_ms: ms(rec.end.saturating_sub(b.after_at)),
    }
}

fn sampler(rec: &RunRecord, gaps: &[SamplerGap]) -> SamplerInfo {
    let q = rec.sampler.query_time.as_ref();
    SamplerInfo {
        interval_ms: ms(rec.sampler.interval),
        polls: rec.sampler.polls,
        query_p50_ms: q.map_or(0.0, |h| us_to_ms(h.value_at_quantile(0.5))),
        query_p99_ms: q.map_or(0.0, |h| us_to_ms(h.value_at_quantile(0.99))),
        blind_during_migration: gaps.iter().any(|g| !g.steps.is_empty()),
        gaps: gaps.to_vec(),
    }
}

/// Every warning, in the order a reader meets their causes: the dataset,
/// the client, the migration, an incomplete run, the sampler.
fn warnings(rec: &RunRecord, bounds: &Bounds, summary: &WorkloadSummary, gaps: &[SamplerGap]) -> Vec<String> {
    let mut warnings = rec.dataset_notes.clone();
    warnings.extend(workload::warnings(rec, bounds, summary));
    warnings.extend(migration::migration_warnings(&rec.migration));
    if let Some(stop) = rec.stop {
        warnings
            .push(format!("the run is incomplete: {}; the numbers cover what was measured until then", stop.reason()));
    } else if !rec.migration.committed {
        warnings.push("the migration did not complete; see the failed step".into());
    }
    warnings.extend(gaps.iter().map(workload::gap_warning));
    warnings
}
