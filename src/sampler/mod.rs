//! The lock sampler: a dedicated connection polls `pg_locks`,
//! `pg_stat_activity` and `pg_blocking_pids()` at a fixed interval. It turns
//! what it sees into blocked episodes (who waited, for what, how long, behind
//! whom) and attributes an episode to the migration when the migration backend
//! is in the waiter's blocking chain, directly or through the lock queue. It
//! also samples the relation locks the migration holds, per step.

pub mod replica;
pub mod sync_commit;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::pg::lockmode::LockMode;
use crate::run_record::{Blocker, BlockerKind, Episode, SamplerRecord, Who, new_hist};
use crate::timeline::Clock;
use crate::workload::Roles;

/// One poll: every waiting lock with its blockers, and the relation locks the
/// migration holds. When the migration waits, also what its blockers run
/// (`pid:query`), to name their class. Relations the migration created in a transaction it has not
/// committed yet are invisible here (they would print as bare OIDs); the runner
/// reports those itself.
///
/// Gated: `pg_locks` takes every lock-manager partition lock, and while it
/// reads them every backend that takes a lock (each writing transaction does,
/// on its transaction id) waits. The gate, a one-time filter the planner
/// evaluates first, reads only the backends' status array (no lock-manager
/// locks): unless a session waits on a lock or the migration is in the middle
/// of something, the poll returns no rows without reading `pg_locks` (the
/// bench measured an 11 % throughput loss at saturation with a 10 ms interval
/// before the gate). Without the rights to see every session's wait (see
/// `GATE_WORKS`) the poll is not gated.
const POLL_SQL: &str = "\
SELECT l.pid, l.granted, l.mode, l.locktype, CASE WHEN l.relation IS NOT NULL THEN RELNAME END, \
       l.waitstart, clock_timestamp(), a.query, \
       CASE WHEN l.granted THEN NULL ELSE pg_blocking_pids(l.pid) END, \
       CASE WHEN l.pid = ANY($1) AND NOT l.granted THEN ARRAY( \
         SELECT b.pid || ':' || coalesce(b.query, '') FROM pg_stat_activity b \
         WHERE b.pid = ANY(pg_blocking_pids(l.pid))) END \
FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
WHERE GATE ((NOT l.granted AND l.pid IS NOT NULL) \
   OR (l.pid = ANY($1) AND l.locktype = 'relation' AND l.relation >= 16384 \
       AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = l.relation)))";

/// What a blocker is: the rehearsal's own role, an autovacuum worker by what
/// it does (`autovacuum: VACUUM public.orders` in pg_stat_activity), or
/// another session.
fn blocker_kind(who: Option<Who>, query: &str) -> BlockerKind {
    match (who, query.strip_prefix("autovacuum: ")) {
        (Some(w), _) => BlockerKind::Rehearsal(w),
        (None, Some(what)) => BlockerKind::Autovacuum(what.to_string()),
        (None, None) => BlockerKind::Other,
    }
}

/// `RELATION_NAME_SQL` as another session sees it: a relation it cannot see
/// may be one created by a transaction not committed yet, so it keeps its oid.
fn sampled_name() -> String {
    crate::pg::catalog::RELATION_NAME_SQL.replace("'dropped relation ' || l.relation", "l.relation::regclass::text")
}

/// The gate of `POLL_SQL`.
const GATE: &str = "EXISTS (SELECT 1 FROM pg_stat_get_activity(NULL) w \
    WHERE w.wait_event_type = 'Lock' OR (w.pid = ANY($1) AND w.state <> 'idle')) AND";

/// Whether the gate can see every session's wait: it needs `track_activities`
/// and, for other roles' sessions, `pg_read_all_stats` (superusers have it).
const GATE_WORKS: &str =
    "SELECT current_setting('track_activities')::bool AND pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')";

struct Open {
    ep: Episode,
    waitstart: Option<SystemTime>,
    last_seen: Duration,
}

/// Workload sessions waiting on a lock at the last poll, for the live status line.
#[derive(Debug, Default)]
pub struct LiveBlocked {
    pub any: AtomicU32,
    pub by_migration: AtomicU32,
}

struct State {
    clock: Arc<Clock>,
    roles: Arc<Roles>,
    live: Arc<LiveBlocked>,
    open: HashMap<i32, Open>,
    rec: SamplerRecord,
    /// When the previous poll was taken (lock spans continue across polls).
    last_poll: Duration,
}

pub struct Sampler {
    /// While set, the sampler skips its polls (`lockimpact bench` measures its cost by toggling it).
    paused: Arc<AtomicBool>,
    stop: CancellationToken,
    handle: JoinHandle<SamplerRecord>,
    live: Arc<LiveBlocked>,
    lost: CancellationToken,
}

/// Opens a new connection for the sampler (registered with the run's
/// sessions), or `None` when the server does not accept one.
pub type Reconnect =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Option<tokio_postgres::Client>> + Send>> + Send + Sync>;

/// How long a reconnection may take before the server counts as gone.
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepares the poll on `client` (gated when the gate can see every wait).
async fn prepare_poll(client: &tokio_postgres::Client) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
    let gated = client.query_one(GATE_WORKS, &[]).await.map(|r| r.get::<_, bool>(0)).unwrap_or(false);
    client.prepare(&POLL_SQL.replace("GATE", if gated { GATE } else { "" }).replace("RELNAME", &sampled_name())).await
}

impl Sampler {
    /// Starts polling on `client`. When its session ends while the server
    /// still answers (`pg_terminate_backend`, an idle timeout), `reconnect`
    /// opens another and the time unseen is recorded as a gap; without
    /// `reconnect`, or when the server does not answer, `lost` fires.
    pub fn start(
        client: tokio_postgres::Client,
        interval: Duration,
        clock: Arc<Clock>,
        roles: Arc<Roles>,
        reconnect: Option<Reconnect>,
    ) -> Sampler {
        let live = Arc::new(LiveBlocked::default());
        let st = State {
            clock,
            roles,
            live: live.clone(),
            open: HashMap::new(),
            last_poll: Duration::ZERO,
            rec: SamplerRecord { interval, query_time: Some(new_hist()), ..Default::default() },
        };
        let task = Task {
            stop: CancellationToken::new(),
            paused: Arc::new(AtomicBool::new(false)),
            lost: CancellationToken::new(),
            reconnect,
            interval,
        };
        let (paused, stop, lost) = (task.paused.clone(), task.stop.clone(), task.lost.clone());
        let handle = tokio::spawn(task.run(st, client));
        Sampler { paused, stop, handle, live, lost }
    }

    /// Skips polls while `paused` (open episodes stay open).
    pub fn pause(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }

    /// Cancelled when the sampler's connection fails: the server is gone.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// Sessions blocked at the last poll.
    pub fn live(&self) -> Arc<LiveBlocked> {
        self.live.clone()
    }

    pub async fn finish(self) -> SamplerRecord {
        self.stop.cancel();
        self.handle.await.unwrap_or_default()
    }
}

/// The polling task: what it needs besides the state it fills.
struct Task {
    stop: CancellationToken,
    paused: Arc<AtomicBool>,
    lost: CancellationToken,
    reconnect: Option<Reconnect>,
    interval: Duration,
}

/// What a reconnection after the sampler's session ended came to.
enum Reconnected {
    Yes(tokio_postgres::Client, tokio_postgres::Statement),
    /// The run ended meanwhile.
    Stopped,
    /// The server does not answer (or no reconnection was offered).
    Gone,
}

impl Task {
    /// Polls every `interval` until stopped (or the server is gone) and
    /// returns what it saw.
    async fn run(self, mut st: State, mut client: tokio_postgres::Client) -> SamplerRecord {
        let prepared = tokio::select! {
            p = prepare_poll(&client) => p,
            _ = self.stop.cancelled() => return st.rec,
        };
        let Ok(mut stmt) = prepared else {
            self.lost.cancel();
            return st.rec;
        };
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Since when the sampler has seen nothing (its session ended), if it has not.
        let mut blind_since: Option<Duration> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.stop.cancelled() => break,
            }
            if self.paused.load(Ordering::Relaxed) {
                continue;
            }
            let sent = Instant::now();
            // A frozen server never answers: `finish` must not wait for it.
            let migration = st.roles.migration();
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&migration];
            let poll = tokio::select! {
                r = client.query(&stmt, &params) => r,
                _ = self.stop.cancelled() => break,
            };
            let Ok(rows) = poll else {
                blind_since.get_or_insert(st.last_seen());
                match self.reconnect().await {
                    Reconnected::Yes(c, s) => (client, stmt) = (c, s),
                    Reconnected::Stopped => break,
                    Reconnected::Gone => {
                        // The server is gone; keep what was seen and say so.
                        self.lost.cancel();
                        break;
                    }
                }
                continue;
            };
            st.poll(sent, Instant::now(), &rows);
            if let Some(from) = blind_since.take() {
                st.rec.gaps.push(crate::run_record::Gap { from, to: st.last_poll });
            }
        }
        st.finish(blind_since)
    }

    /// Its session ended: another one, if the server answers.
    async fn reconnect(&self) -> Reconnected {
        let again = async {
            let c = (self.reconnect.as_ref()?)().await?;
            let s = prepare_poll(&c).await.ok()?;
            Some((c, s))
        };
        tokio::select! {
            r = tokio::time::timeout(RECONNECT_TIMEOUT, again) => match r.ok().flatten() {
                Some((c, s)) => Reconnected::Yes(c, s),
                None => Reconnected::Gone,
            },
            _ = self.stop.cancelled() => Reconnected::Stopped,
        }
    }
}

impl State {
    /// When the sampler last saw the server (its last poll, or the start).
    fn last_seen(&self) -> Duration {
        if self.rec.polls == 0 { self.clock.since_start(Instant::now()) } else { self.last_poll }
    }

    /// Ends the run's record: a gap still open, episodes still open (ended now).
    fn finish(mut self, blind_since: Option<Duration>) -> SamplerRecord {
        let now = self.clock.since_start(Instant::now());
        if let Some(from) = blind_since {
            self.rec.gaps.push(crate::run_record::Gap { from, to: now });
        }
        let open: Vec<i32> = self.open.keys().copied().collect();
        for pid in open {
            self.close(pid, now);
        }
        self.rec.episodes.sort_by_key(|e| (e.start, e.pid));
        self.rec
    }

    fn poll(&mut self, sent: Instant, got: Instant, rows: &[tokio_postgres::Row]) {
        let _ = self.rec.query_time.as_mut().map(|h| h.record(got.duration_since(sent).as_micros().max(1) as u64));
        self.rec.polls += 1;
        // The server read its clock somewhere between send and receive.
        let poll_at = self.clock.since_start(sent + got.duration_since(sent) / 2);
        let slot = self.clock.current().index();
        let migration = self.roles.migration();
        let mut waiting: HashMap<i32, (Episode, Option<SystemTime>)> = HashMap::new();
        let mut blockers: HashMap<i32, Vec<i32>> = HashMap::new();
        for r in rows {
            let pid: i32 = r.get(0);
            // A predicate lock (`SIReadLock`) is no table-level mode and blocks no one.
            let Some(mode) = LockMode::parse(r.get(2)) else { continue };
            if r.get::<_, bool>(1) {
                if migration.contains(&pid)
                    && let Some(rel) = r.get::<_, Option<String>>(4)
                {
                    self.held(poll_at, slot, &rel, mode);
                }
            } else if let Some((ep, waitstart)) = self.waiting(r, pid, mode, poll_at) {
                blockers.insert(pid, ep.blockers.clone());
                waiting.insert(pid, (ep, waitstart));
            }
        }
        self.close_ended(&waiting, poll_at);
        self.last_poll = poll_at;
        let (mut any, mut by_mig) = (0u32, 0u32);
        for (pid, (ep, ws)) in waiting {
            let chained = !migration.contains(&pid) && migration.iter().any(|&m| reaches(pid, m, &blockers));
            if !ep.who.is_migration() {
                any += 1;
                by_mig += u32::from(chained);
            }
            self.extend(pid, ep, ws, chained, poll_at);
        }
        self.count_blocked(poll_at, any, by_mig);
    }

    /// A relation lock the migration holds at this poll.
    fn held(&mut self, poll_at: Duration, slot: usize, rel: &str, mode: LockMode) {
        self.span(poll_at, rel, mode);
        self.rec.migration_locks.entry(slot).or_default().hold(rel, mode);
    }

    /// A waiting lock of one of the run's sessions, as an episode seen now.
    fn waiting(
        &self,
        r: &tokio_postgres::Row,
        pid: i32,
        mode: LockMode,
        poll_at: Duration,
    ) -> Option<(Episode, Option<SystemTime>)> {
        let query: Option<String> = r.get(7);
        let who = self.roles.who(pid, query.as_deref())?;
        let waitstart: Option<SystemTime> = r.get(5);
        let server_now: SystemTime = r.get(6);
        // pg_blocking_pids() lists a pid once per conflicting lock; keep each once.
        let mut blockers: Vec<i32> = r.get::<_, Option<Vec<i32>>>(8).unwrap_or_default();
        blockers.sort_unstable();
        blockers.dedup();
        let waited = waitstart.and_then(|w| server_now.duration_since(w).ok()).unwrap_or_default();
        let blocker_classes = r
            .get::<_, Option<Vec<String>>>(9)
            .unwrap_or_default()
            .iter()
            .filter_map(|pq| {
                let (pid, query) = pq.split_once(':')?;
                let pid: i32 = pid.parse().ok()?;
                Some(Blocker { pid, kind: blocker_kind(self.roles.who(pid, Some(query)), query) })
            })
            .collect();
        let ep = Episode {
            pid,
            who,
            start: poll_at.saturating_sub(waited),
            end: poll_at,
            mode,
            locktype: r.get(3),
            relation: r.get(4),
            blockers,
            blocker_classes,
            by_migration: false,
        };
        Some((ep, waitstart))
    }

    /// Closes the episodes of sessions that no longer wait (or wait for something else).
    fn close_ended(&mut self, waiting: &HashMap<i32, (Episode, Option<SystemTime>)>, poll_at: Duration) {
        let ended: Vec<i32> = self
            .open
            .iter()
            .filter(|(pid, o)| match waiting.get(pid) {
                None => true,
                Some((ep, ws)) => *ws != o.waitstart || ep.relation != o.ep.relation || ep.mode != o.ep.mode,
            })
            .map(|(pid, _)| *pid)
            .collect();
        for pid in ended {
            let last = self.open[&pid].last_seen;
            // It ended between two polls; no later than its next wait began.
            let next = waiting.get(&pid).map_or(poll_at, |(ep, _)| ep.start);
            self.close(pid, (last + (poll_at.saturating_sub(last)) / 2).min(next));
        }
    }

    /// Extends the open episode of `pid` with what this poll saw, or opens one.
    fn extend(&mut self, pid: i32, ep: Episode, waitstart: Option<SystemTime>, chained: bool, poll_at: Duration) {
        let Some(o) = self.open.get_mut(&pid) else {
            let ep = Episode { by_migration: chained, ..ep };
            self.open.insert(pid, Open { ep, waitstart, last_seen: poll_at });
            return;
        };
        o.last_seen = poll_at;
        o.ep.end = poll_at;
        o.ep.by_migration |= chained;
        for b in ep.blockers {
            if !o.ep.blockers.contains(&b) {
                o.ep.blockers.push(b);
            }
        }
        for c in ep.blocker_classes {
            if !o.ep.blocker_classes.contains(&c) {
                o.ep.blocker_classes.push(c);
            }
        }
    }

    /// Workload sessions waiting at this poll: for the live status line and
    /// the most per second.
    fn count_blocked(&mut self, poll_at: Duration, any: u32, by_mig: u32) {
        self.live.any.store(any, Ordering::Relaxed);
        self.live.by_migration.store(by_mig, Ordering::Relaxed);
        let sec = poll_at.as_secs() as usize;
        if self.rec.blocked_per_second.len() <= sec {
            self.rec.blocked_per_second.resize(sec + 1, (0, 0));
        }
        let cell = &mut self.rec.blocked_per_second[sec];
        *cell = (cell.0.max(any), cell.1.max(by_mig));
    }

    /// Extends the span of `rel`/`mode` seen at the previous poll, or opens one.
    fn span(&mut self, at: Duration, rel: &str, mode: LockMode) {
        let last = self.last_poll;
        let open = self.rec.migration_lock_spans.iter_mut().rev().find(|s| s.relation == rel && s.mode == mode);
        match open {
            Some(s) if s.to == last || s.to == at => s.to = at,
            _ => self.rec.migration_lock_spans.push(crate::run_record::LockSpan {
                relation: rel.to_string(),
                mode,
                from: at,
                to: at,
            }),
        }
    }

    fn close(&mut self, pid: i32, end: Duration) {
        if let Some(mut o) = self.open.remove(&pid) {
            o.ep.end = end.max(o.ep.start);
            self.rec.episodes.push(o.ep);
        }
    }
}

/// Whether `target` is in `pid`'s blocking chain (hard blockers and the
/// waiters ahead of it in a lock queue, as `pg_blocking_pids` reports them).
fn reaches(pid: i32, target: i32, blockers: &HashMap<i32, Vec<i32>>) -> bool {
    let mut seen = HashSet::from([pid]);
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        for &b in blockers.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
            if b == target {
                return true;
            }
            if seen.insert(b) {
                stack.push(b);
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocker_outside_the_rehearsal_is_named_autovacuum_when_it_is() {
        let named = |who, query| Blocker { pid: 9, kind: blocker_kind(who, query) }.to_string();
        assert_eq!(named(Some(Who::Migration), "autovacuum: x"), "migration (pid 9)");
        assert_eq!(named(None, "autovacuum: VACUUM public.orders"), "autovacuum VACUUM public.orders (pid 9)");
        assert_eq!(named(None, "SELECT pg_sleep(10)"), "another session (pid 9)");
        let vacuum = |query| Blocker { pid: 9, kind: blocker_kind(None, query) };
        assert_eq!(
            vacuum("autovacuum: VACUUM ANALYZE public.orders").cancellable_autovacuum(),
            Some("VACUUM ANALYZE public.orders")
        );
        assert_eq!(vacuum("autovacuum: VACUUM public.orders (to prevent wraparound)").cancellable_autovacuum(), None);
        assert_eq!(vacuum("SELECT 1").cancellable_autovacuum(), None);
    }

    #[test]
    fn chains_through_the_queue() {
        // 30 waits behind 20 (queued ALTER), which waits behind 10 (old reader).
        let b = HashMap::from([(30, vec![20]), (20, vec![10])]);
        assert!(reaches(30, 20, &b));
        assert!(reaches(30, 10, &b));
        assert!(!reaches(20, 30, &b));
        let cyc = HashMap::from([(1, vec![2]), (2, vec![1])]);
        assert!(!reaches(1, 3, &cyc));
    }
}
