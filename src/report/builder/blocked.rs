//! Blocked sessions: the sampler's episodes made consistent (one wait at a
//! time per session), split into the workload's and the migration's own,
//! and summed: total blocked time is summed over sessions, so it can exceed
//! the migration's duration.

use std::time::Duration;

use super::ms;
use crate::report::model::{BlockedSummary, EpisodeReport};
use crate::run_record::{Episode, Outcome, RunRecord};

/// The run's episodes, once made consistent, by whose they are.
pub struct Episodes {
    /// Waits of workload sessions.
    pub workload: Vec<Episode>,
    /// The migration's own lock waits.
    pub migration: Vec<Episode>,
}

impl Episodes {
    pub fn of(rec: &RunRecord) -> Episodes {
        let (migration, workload) =
            one_episode_at_a_time(&rec.sampler.episodes).into_iter().partition(|e| e.who.is_migration());
        Episodes { workload, migration }
    }

    /// Workload waits the migration is in the blocking chain of.
    pub fn by_migration(&self) -> impl Iterator<Item = &Episode> + Clone {
        self.workload.iter().filter(|e| e.by_migration)
    }
}

/// The blocked summary of the whole run.
pub fn summary(rec: &RunRecord, eps: &Episodes) -> BlockedSummary {
    let by_mig = eps.by_migration();
    let mut sessions: Vec<i32> = by_mig.clone().map(|e| e.pid).collect();
    sessions.sort_unstable();
    sessions.dedup();
    let whole_run = (Duration::ZERO, rec.end + Duration::from_secs(1));
    let mut episodes: Vec<EpisodeReport> = eps.workload.iter().map(|e| report(rec, e)).collect();
    episodes.sort_by(|a, b| b.duration_ms.total_cmp(&a.duration_ms).then(a.start_ms.total_cmp(&b.start_ms)));
    episodes.truncate(50);
    BlockedSummary {
        by_migration_sessions: sessions.len() as u32,
        by_migration_episodes: by_mig.clone().count() as u32,
        max_concurrent: max_overlap(by_mig.clone(), whole_run.0, whole_run.1),
        total_ms: overlap_ms(by_mig.clone(), whole_run.0, whole_run.1),
        longest_ms: by_mig.clone().map(|e| ms(e.end.saturating_sub(e.start))).fold(0.0, f64::max),
        other_episodes: (eps.workload.len() - by_mig.count()) as u32,
        episodes,
        migration_waits: eps.migration.iter().map(|e| report(rec, e)).collect(),
    }
}

/// One episode as the report shows it, with the step it started in.
fn report(rec: &RunRecord, e: &Episode) -> EpisodeReport {
    let step = rec
        .migration
        .steps
        .iter()
        .position(|s| s.outcome != Outcome::Skipped && e.start >= s.start && e.start < s.start + s.duration);
    EpisodeReport {
        pid: e.pid,
        class: e.who.to_string(),
        start_ms: ms(e.start),
        duration_ms: ms(e.end.saturating_sub(e.start)),
        mode: e.mode,
        locktype: e.locktype.clone(),
        relation: e.relation.clone(),
        blockers: e.blockers.clone(),
        blocker_classes: e.blocker_classes.iter().map(|b| b.to_string()).collect(),
        by_migration: e.by_migration,
        step,
    }
}

/// Most intervals overlapping at once, each clipped to `[from, to)`.
pub fn max_overlap<'a>(eps: impl Iterator<Item = &'a Episode>, from: Duration, to: Duration) -> u32 {
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
pub fn overlap_ms<'a>(eps: impl Iterator<Item = &'a Episode>, from: Duration, to: Duration) -> f64 {
    ms(eps.map(|e| e.end.min(to).saturating_sub(e.start.max(from))).sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::lockmode::LockMode;
    use crate::run_record::Who;

    fn ep(pid: i32, start_ms: u64, end_ms: u64) -> Episode {
        Episode {
            pid,
            who: Who::Class("order_by_id".into()),
            start: Duration::from_millis(start_ms),
            end: Duration::from_millis(end_ms),
            mode: LockMode::RowExclusive,
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
