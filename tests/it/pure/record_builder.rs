//! A builder of run records for the pure tests of the report builder: by
//! default a complete, quiet run (warmup 0–1 s, baseline 1–3 s, the migration
//! from 3 s, one query class `read` at 100 ops/s that kept its schedule, the
//! migration committed, no budget), so that each test states only what
//! matters to it: its steps, blocked episodes, latencies, errors, budget or
//! early stop. Times are milliseconds since the run's clock started.

use std::time::Duration;

use lockimpact::pg::lockmode::LockMode;
use lockimpact::run_record::{
    BudgetSection, Episode, Hist, Outcome, RunRecord, StepRecord, StepType, Stop, Who, new_hist,
};
use lockimpact::timeline::{Mark, Slot};

/// When the baseline begins (the warmup ends).
pub const BASELINE_MS: u64 = 1000;
/// When the migration begins.
pub const MIGRATION_MS: u64 = 3000;
/// The workload's rate (ops/s).
pub const RATE: f64 = 100.0;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub struct RunBuilder {
    rec: RunRecord,
    /// When the migration ended; by default when its last step did.
    after_ms: Option<u64>,
    /// Operations that finished while the migration ran; by default what the schedule asked for.
    completed_during: Option<u64>,
    /// (class index, slot, latency µs) of finished operations.
    latencies: Vec<(usize, Slot, u64)>,
}

impl RunBuilder {
    pub fn new() -> RunBuilder {
        let mut rec = RunRecord {
            scenario_name: "built".into(),
            scenario_path: "scenarios/built.toml".into(),
            clone_description: "local (built record)".into(),
            clone_kind: "local".into(),
            server_version: "PostgreSQL 17.0".into(),
            tables: Vec::new(),
            seed_time: ms(500),
            copy_time: ms(100),
            copy_method: None,
            restore_time: None,
            dataset_bytes: Some(8_192_000),
            dump: None,
            dataset_notes: Vec::new(),
            synthetic: None,
            marks: Vec::new(),
            end: Duration::ZERO,
            workload: Default::default(),
            migration: Default::default(),
            sampler: Default::default(),
            budget: BudgetSection::default(),
            stop: None,
            replicas: None,
        };
        rec.migration.file = "migration.sql".into();
        rec.migration.committed = true;
        rec.workload.classes = vec!["read".into()];
        rec.workload.target_rate = RATE;
        rec.workload.connections = 4;
        rec.sampler.interval = ms(10);
        RunBuilder { rec, after_ms: None, completed_during: None, latencies: Vec::new() }
    }

    /// A step that ran from `start_ms` for `duration_ms` and succeeded.
    pub fn step(self, name: &str, start_ms: u64, duration_ms: u64) -> RunBuilder {
        self.step_ending(name, start_ms, duration_ms, Outcome::Ok, None)
    }

    /// A step that ran from `start_ms` for `duration_ms` and ended with
    /// `outcome` (SQLSTATE `sqlstate`); a failed step leaves the migration uncommitted.
    pub fn step_ending(
        mut self,
        name: &str,
        start_ms: u64,
        duration_ms: u64,
        outcome: Outcome,
        sqlstate: Option<&str>,
    ) -> RunBuilder {
        let line = 1 + self.rec.migration.steps.len();
        let mut s = StepRecord::new(name.into(), StepType::Sql, line, 1, ms(start_ms));
        s.duration = ms(duration_ms);
        s.outcome = outcome;
        s.sqlstate = sqlstate.map(str::to_string);
        if outcome != Outcome::Ok {
            s.error = Some(format!("the step ended with {}", outcome.as_str()));
            self.rec.migration.committed = false;
        }
        self.rec.migration.steps.push(s);
        self
    }

    /// A step that never ran (an earlier one failed).
    pub fn skipped_step(mut self, name: &str) -> RunBuilder {
        let line = 1 + self.rec.migration.steps.len();
        self.rec.migration.steps.push(StepRecord::new(name.into(), StepType::Sql, line, 1, Duration::ZERO));
        self
    }

    /// Workload session `pid` waited on a lock of the migration from `start_ms` to `end_ms`.
    pub fn blocked(self, pid: i32, start_ms: u64, end_ms: u64) -> RunBuilder {
        self.episode(pid, "read", start_ms, end_ms, true)
    }

    /// Workload session `pid` waited on another workload session (not the migration).
    pub fn blocked_by_other(self, pid: i32, start_ms: u64, end_ms: u64) -> RunBuilder {
        self.episode(pid, "read", start_ms, end_ms, false)
    }

    /// The migration itself waited on a lock from `start_ms` to `end_ms`.
    pub fn migration_waited(self, start_ms: u64, end_ms: u64) -> RunBuilder {
        self.episode(100, "migration", start_ms, end_ms, false)
    }

    fn episode(mut self, pid: i32, who: &str, start_ms: u64, end_ms: u64, by_migration: bool) -> RunBuilder {
        self.rec.sampler.episodes.push(Episode {
            pid,
            who: if who == "migration" { Who::Migration } else { Who::Class(who.into()) },
            start: ms(start_ms),
            end: ms(end_ms),
            mode: if who == "migration" { LockMode::AccessExclusive } else { LockMode::AccessShare },
            locktype: "relation".into(),
            relation: Some("orders".into()),
            blockers: vec![if by_migration { 100 } else { 200 }],
            blocker_classes: Vec::new(),
            by_migration,
        });
        self
    }

    /// Operations of class `read` in `slot` that took these times (ms).
    pub fn latencies(mut self, slot: Slot, ms: &[u64]) -> RunBuilder {
        self.latencies.extend(ms.iter().map(|&t| (0, slot, t * 1000)));
        self
    }

    /// `count` operations of class `read` in `slot` failed with `sqlstate`.
    pub fn errors(mut self, slot: Slot, sqlstate: &str, count: u64, message: &str) -> RunBuilder {
        self.rec.workload.slot_errors.insert((slot.index(), 0, sqlstate.into()), (count, message.into()));
        self
    }

    /// Only `n` operations finished while the migration ran.
    pub fn completed_during(mut self, n: u64) -> RunBuilder {
        self.completed_during = Some(n);
        self
    }

    /// The migration phase ended at `after_ms` (not when its last step did).
    pub fn migration_ended_at(mut self, after_ms: u64) -> RunBuilder {
        self.after_ms = Some(after_ms);
        self
    }

    pub fn budget(mut self, budget: BudgetSection) -> RunBuilder {
        self.rec.budget = budget;
        self
    }

    pub fn stopped(mut self, stop: Stop) -> RunBuilder {
        self.rec.stop = Some(stop);
        self
    }

    /// The record: marks for the phases and steps, the run ending 1 s after
    /// the migration, and the workload's counts on its schedule.
    pub fn build(mut self) -> RunRecord {
        let steps = &self.rec.migration.steps;
        let last_end = steps.iter().map(|s| (s.start + s.duration).as_millis() as u64).max();
        let after_ms = self.after_ms.or(last_end).unwrap_or(MIGRATION_MS).max(MIGRATION_MS);
        let mut marks = vec![
            Mark { slot: Slot::Warmup, at: Duration::ZERO },
            Mark { slot: Slot::Baseline, at: ms(BASELINE_MS) },
            Mark { slot: Slot::Between, at: ms(MIGRATION_MS) },
        ];
        let ran = steps.iter().enumerate().filter(|(_, s)| s.outcome != Outcome::Skipped);
        marks.extend(ran.map(|(i, s)| Mark { slot: Slot::Step(i), at: s.start }));
        marks.push(Mark { slot: Slot::After, at: ms(after_ms) });
        self.rec.marks = marks;
        self.rec.end = ms(after_ms + 1000);
        self.workload_counts(after_ms);
        self.rec
    }

    /// Per slot: finished operations on the schedule (`RATE`), and the latency histograms.
    fn workload_counts(&mut self, after_ms: u64) {
        let slots = Slot::count(self.rec.migration.steps.len());
        let per_ms = |n: u64| (RATE * n as f64 / 1000.0).round() as u64;
        let w = &mut self.rec.workload;
        w.finished = vec![0; slots];
        w.finished[Slot::Warmup.index()] = per_ms(BASELINE_MS);
        w.finished[Slot::Baseline.index()] = per_ms(MIGRATION_MS - BASELINE_MS);
        w.finished[Slot::Between.index()] = self.completed_during.unwrap_or(per_ms(after_ms - MIGRATION_MS));
        w.finished[Slot::After.index()] = per_ms(1000);
        w.issued_measured = per_ms(after_ms + 1000 - BASELINE_MS);
        let mut hists: Vec<Vec<Option<Hist>>> = vec![vec![None; slots]; w.classes.len()];
        for &(c, slot, us) in &self.latencies {
            let h = hists[c][slot.index()].get_or_insert_with(new_hist);
            h.record(us).expect("a latency the histogram holds");
        }
        w.latency = hists;
    }
}
