//! `replicas.standbys[].sync_commit`: the commit latency a synchronous
//! standby adds on the primary, from the commit probe's timed commits (from
//! the baseline on). Per phase and per step (the step's time window): the
//! median commit that waited for the standby against the median that did
//! not (`synchronous_commit = local`), their difference, and the most
//! primary sessions seen waiting for the standby at once.

use std::time::Duration;

use super::{Bounds, ms};
use crate::report::model::{CommitLatency, Phase, SyncCommitPhase, SyncCommitReport, SyncCommitStep};
use crate::run_record::RunRecord;
use crate::run_record::replica::{CommitProbe, SyncCommitRecord};

pub fn sync_commit(rec: &RunRecord, bounds: &Bounds, s: &SyncCommitRecord) -> SyncCommitReport {
    let window = |from: Duration, to: Duration| latency(s, |t| from <= t && t <= to);
    let phases: Vec<SyncCommitPhase> = Phase::MEASURED
        .into_iter()
        .map(|phase| SyncCommitPhase {
            phase,
            latency: latency(s, |t| t >= bounds.baseline_at && bounds.phase_at(t) == phase),
        })
        .filter(|p| p.latency.waiting_probes + p.latency.local_probes > 0)
        .collect();
    let steps: Vec<SyncCommitStep> = rec
        .migration
        .steps
        .iter()
        .enumerate()
        .map(|(step, x)| SyncCommitStep { step, name: x.name.clone(), latency: window(x.start, x.start + x.duration) })
        .collect();
    let worst_step =
        steps.iter().filter(|x| x.latency.added_ms.is_some()).max_by(|a, b| by_added(&a.latency, &b.latency));
    let worst_phase =
        phases.iter().filter(|x| x.latency.added_ms.is_some()).max_by(|a, b| by_added(&a.latency, &b.latency));
    let (max_added_ms, max_added_step, max_added_phase) = match (worst_step, worst_phase) {
        (Some(st), Some(ph)) if by_added(&ph.latency, &st.latency).is_gt() => {
            (ph.latency.added_ms, None, Some(ph.phase))
        }
        (Some(st), _) => (st.latency.added_ms, Some(st.step), None),
        (None, Some(ph)) => (ph.latency.added_ms, None, Some(ph.phase)),
        (None, None) => (None, None, None),
    };
    SyncCommitReport {
        level: s.level.clone(),
        failed_probes: s.failed,
        max_added_ms,
        max_added_step,
        max_added_phase,
        phases,
        steps,
    }
}

fn by_added(a: &CommitLatency, b: &CommitLatency) -> std::cmp::Ordering {
    a.added_ms.unwrap_or(0.0).total_cmp(&b.added_ms.unwrap_or(0.0))
}

/// The probes and waiting-session counts taken at a time `inside` accepts.
fn latency(s: &SyncCommitRecord, inside: impl Fn(Duration) -> bool) -> CommitLatency {
    let took = |waits: bool| -> Vec<Duration> {
        let mut v: Vec<Duration> =
            s.probes.iter().filter(|p: &&CommitProbe| p.waits == waits && inside(p.at)).map(|p| p.took).collect();
        v.sort();
        v
    };
    let (waiting, local) = (took(true), took(false));
    let median = |v: &[Duration]| (!v.is_empty()).then(|| ms(v[v.len() / 2]));
    let (waiting_p50_ms, local_p50_ms) = (median(&waiting), median(&local));
    CommitLatency {
        waiting_probes: waiting.len() as u64,
        local_probes: local.len() as u64,
        waiting_p50_ms,
        local_p50_ms,
        waiting_max_ms: waiting.last().map(|d| ms(*d)),
        added_ms: waiting_p50_ms.zip(local_p50_ms).map(|(w, l)| (w - l).max(0.0)),
        max_waiting_sessions: s
            .waiting
            .iter()
            .filter(|(t, _)| inside(*t))
            .map(|(_, n)| u64::from(*n))
            .max()
            .unwrap_or(0),
    }
}
