//! The report's `replicas` object from a built record (no server): the
//! largest lag and where, per-step maxima over the steps' time windows,
//! samples before the baseline left out, blocked standby sessions counted as
//! waits from their first poll to their last, conflicts as a difference, and
//! the replica budgets as violations.

use std::time::Duration;

use lockimpact::files::dur::Dur;
use lockimpact::run_record::BudgetSection;
use lockimpact::run_record::replica::{Conflicts, LagSample, ReplicasRecord, StandbyRecord};

use super::record_builder::RunBuilder;

fn sample(at_ms: u64, lag: u64, replay_ms: Option<u64>, blocked: &[i32]) -> LagSample {
    LagSample {
        at: Duration::from_millis(at_ms),
        lag_bytes: lag,
        write_lag: None,
        flush_lag: None,
        replay_lag: replay_ms.map(Duration::from_millis),
        blocked_pids: blocked.to_vec(),
    }
}

fn record(budget: BudgetSection) -> lockimpact::run_record::RunRecord {
    let mut rec = RunBuilder::new().step("add column", 3000, 1000).step("backfill", 4000, 2000).budget(budget).build();
    let samples = vec![
        sample(100, 9_000_000, Some(900), &[]), // warmup: left out
        sample(1500, 1_000, Some(1), &[]),
        sample(3100, 2_000, Some(2), &[7]),
        sample(3200, 3_000, Some(3), &[7, 8]),
        sample(3300, 2_500, Some(3), &[8]),
        sample(4500, 5_000_000, Some(400), &[]),
        sample(5900, 4_000_000, Some(600), &[]),
    ];
    let before = Conflicts { lock: 2, snapshot: 1, ..Default::default() };
    let after = Conflicts { lock: 5, snapshot: 1, ..Default::default() };
    rec.replicas = Some(ReplicasRecord {
        interval: Duration::from_millis(100),
        standbys: vec![StandbyRecord {
            name: "lockimpact_standby_1".into(),
            samples,
            conflicts_before: before,
            conflicts_after: after,
            ..Default::default()
        }],
    });
    rec
}

#[test]
fn replica_report_from_a_built_record() {
    let report = lockimpact::report::build(&record(BudgetSection::default()));
    let s = &report.replicas.as_ref().expect("replicas").standbys[0];
    assert_eq!(s.samples, 6, "the warmup's sample is left out");
    assert_eq!((s.max_lag_bytes, s.max_lag_at_ms, s.max_lag_step), (5_000_000, Some(4500.0), Some(1)));
    assert_eq!(s.baseline_max_lag_bytes, 1_000);
    assert_eq!(s.max_replay_lag_ms, Some(600.0));
    let steps: Vec<(u64, u64)> = s.steps.iter().map(|x| (x.max_lag_bytes, x.blocked_sessions)).collect();
    assert_eq!(steps, vec![(3_000, 2), (5_000_000, 0)]);
    assert_eq!((s.blocked_sessions, s.max_blocked_at_once, s.longest_blocked_ms), (2, 2, 100.0));
    assert_eq!((s.conflicts.lock, s.conflicts.snapshot, s.cancels), (3, 0, 3));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["replicas"]["standbys"][0]["max_lag_bytes"], 5_000_000);
}

#[test]
fn replica_budgets_are_violations() {
    let budget = BudgetSection {
        max_replica_lag: Some(Dur(Duration::from_millis(500))),
        max_replica_lag_bytes: Some(1_000_000),
        max_standby_cancels: Some(0),
        ..Default::default()
    };
    let report = lockimpact::report::build(&record(budget));
    let v: Vec<(&str, f64, Option<usize>)> =
        report.verdict.violations.iter().map(|v| (v.budget.as_str(), v.actual, v.step)).collect();
    assert!(v.contains(&("max_replica_lag", 600.0, Some(1))), "{v:?}");
    assert!(v.contains(&("max_replica_lag_bytes", 5_000_000.0, Some(1))), "{v:?}");
    assert!(v.contains(&("max_standby_cancels", 3.0, None)), "{v:?}");
    assert!(!report.verdict.pass);
    // Without standbys a record has no `replicas`, and the JSON no field.
    let plain = lockimpact::report::build(&RunBuilder::new().build());
    assert!(serde_json::to_value(&plain).unwrap().get("replicas").is_none());
}
