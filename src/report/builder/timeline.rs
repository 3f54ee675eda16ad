//! One entry per second since warmup started: operations, errors, latency,
//! sessions blocked, the phase, and each class's share.

use std::time::Duration;

use super::{Bounds, us_to_ms};
use crate::report::model::{ClassSecond, Second};
use crate::run_record::RunRecord;

pub fn timeline(rec: &RunRecord, bounds: &Bounds) -> Vec<Second> {
    let w = &rec.workload;
    let n = w.seconds.len().max(rec.sampler.blocked_per_second.len()).max(rec.end.as_secs() as usize);
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
                started: None,
                waiting: None,
            }
        })
        .collect()
}
