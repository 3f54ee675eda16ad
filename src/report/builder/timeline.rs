//! One entry per second since warmup started: operations, errors, latency,
//! sessions blocked, the phase, and each class's share; by the second
//! operations finished and by the second they were intended to start, with
//! the operations waiting.

use std::time::Duration;

use std::collections::BTreeMap;

use super::{Bounds, us_to_ms};
use crate::report::model::{ClassSecond, Second, Started};
use crate::run_record::{RunRecord, SecondRecord};

pub fn timeline(rec: &RunRecord, bounds: &Bounds) -> Vec<Second> {
    let w = &rec.workload;
    let n = w.seconds.len().max(rec.sampler.blocked_per_second.len()).max(rec.end.as_secs() as usize);
    let n = n.max(w.started.len()).max(w.waiting.len());
    (0..n)
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
                phase: bounds.phase_at(Duration::from_secs(t as u64)),
                classes: classes(&w.classes, &s),
                started: Some(started(&w.classes, w.started.get(t))),
                waiting: Some(w.waiting.get(t).copied().unwrap_or(0)),
            }
        })
        .collect()
}

/// Each class with operations in `s`, by name.
fn classes(names: &[String], s: &SecondRecord) -> BTreeMap<String, ClassSecond> {
    names
        .iter()
        .zip(&s.classes)
        .filter(|(_, c)| c.ops > 0)
        .map(|(name, c)| {
            (name.clone(), ClassSecond { ops: c.ops, p50_ms: us_to_ms(c.p50_us), p99_ms: us_to_ms(c.p99_us) })
        })
        .collect()
}

fn started(names: &[String], s: Option<&SecondRecord>) -> Started {
    let Some(s) = s else { return Started::default() };
    Started { ops: s.ops, p50_ms: us_to_ms(s.p50_us), p99_ms: us_to_ms(s.p99_us), classes: classes(names, s) }
}
