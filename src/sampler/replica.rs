//! The replica sampler: a task of its own (the lock sampler is not slowed)
//! that polls every standby once per interval. Each poll reads the
//! primary's `pg_current_wal_lsn()` and `pg_stat_replication` (write, flush
//! and replay lag in time) first, then on each standby its replay lag in
//! bytes against that LSN (`pg_wal_lsn_diff`) and the sessions waiting on a
//! lock the startup process holds (a lock replayed from the primary). The
//! standby's `pg_stat_database_conflicts` for the run database are read when
//! sampling starts and when it ends. Connections: one to the primary, one
//! per standby, to their `postgres` database; each poll's statement is
//! prepared once on its connection, so a poll is one round trip a server. With a synchronous standby,
//! each poll also counts the primary's sessions waiting on it (`SyncRep`),
//! and the commit probe (`sync_commit`) times commits on a connection of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_postgres::Statement;
use tokio_util::sync::CancellationToken;

use crate::clone::standby::Endpoint;
use crate::error::{Error, Result, describe_pg};
use crate::pg::Target;
use crate::run_record::replica::{Conflicts, LagSample, ReplicasRecord, StandbyRecord};
use crate::sampler::sync_commit;
use crate::timeline::Clock;

/// The primary's side of a poll: its WAL position, each standby's lag in
/// time, and `$waiting`: the sessions waiting for a synchronous standby.
macro_rules! primary_sql {
    ($waiting:literal) => {
        concat!(
            "SELECT pg_current_wal_lsn()::text, r.application_name, \
             (extract(epoch FROM r.write_lag) * 1e6)::int8, (extract(epoch FROM r.flush_lag) * 1e6)::int8, \
             (extract(epoch FROM r.replay_lag) * 1e6)::int8, ",
            $waiting,
            " FROM (SELECT 1) one LEFT JOIN pg_stat_replication r ON true"
        )
    };
}

/// Without a synchronous standby: none wait.
const PRIMARY_SQL: &str = primary_sql!("0::int8");

/// With one: the sessions waiting for it (`SyncRep`), the commit probe's
/// own (`sync_commit::PROBE_NAME`) left out.
const PRIMARY_SYNC_SQL: &str = primary_sql!(
    "(SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep' \
     AND application_name IS DISTINCT FROM 'lockimpact-sync-probe')::int8"
);

/// A standby's side: its replay lag behind the primary's LSN ($1), and the
/// sessions waiting on a lock the startup process holds.
const STANDBY_SQL: &str = "SELECT greatest(pg_wal_lsn_diff($1::text::pg_lsn, pg_last_wal_replay_lsn()), 0)::int8, \
    ARRAY(SELECT l.pid FROM pg_locks l WHERE NOT l.granted AND l.pid IS NOT NULL \
      AND (SELECT s.pid FROM pg_stat_activity s WHERE s.backend_type = 'startup') = ANY(pg_blocking_pids(l.pid)))";

/// A logical subscriber's side (on the primary's server): its slot's lag
/// behind the primary's LSN ($1), and its errors (PostgreSQL 15 and later;
/// `LOGICAL_SQL_14` reads none).
const LOGICAL_SQL: &str = "SELECT greatest(pg_wal_lsn_diff($1::text::pg_lsn, s.confirmed_flush_lsn), 0)::int8, \
    e.apply_error_count, e.sync_error_count FROM pg_replication_slots s \
    LEFT JOIN pg_stat_subscription_stats e ON e.subname = s.slot_name WHERE s.slot_name = $2";
const LOGICAL_SQL_14: &str = "SELECT greatest(pg_wal_lsn_diff($1::text::pg_lsn, s.confirmed_flush_lsn), 0)::int8, \
    NULL::int8, NULL::int8 FROM pg_replication_slots s WHERE s.slot_name = $2";

/// Recovery conflicts of one database on a standby.
const CONFLICTS_SQL: &str = "SELECT confl_tablespace, confl_lock, confl_snapshot, confl_bufferpin, confl_deadlock \
    FROM pg_stat_database_conflicts WHERE datname = $1";

/// How long a standby may take to replay what the primary wrote before sampling starts.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(120);

/// The sampler's sessions, open and caught up, before the clock starts.
pub struct Connected {
    primary: tokio_postgres::Client,
    /// `PRIMARY_SQL`, or with a synchronous standby `PRIMARY_SYNC_SQL`, prepared.
    primary_poll: Statement,
    conns: Vec<Conn>,
    run_db: String,
    /// The commit probe, with a synchronous standby.
    probe: Option<sync_commit::Connected>,
    backend_pids: Vec<u32>,
}

pub struct ReplicaSampler {
    /// The server processes of the sampler's polls (primary, then each standby).
    pub backend_pids: Vec<u32>,
    stop: CancellationToken,
    /// While set, polls are skipped (`lockimpact bench` measures the sampler's cost so).
    paused: Arc<AtomicBool>,
    handle: JoinHandle<ReplicasRecord>,
    probe: Option<sync_commit::Probe>,
}

struct Conn {
    name: String,
    client: tokio_postgres::Client,
    rec: StandbyRecord,
    /// `STANDBY_SQL`, or a logical subscriber's (`rec.logical` set), prepared.
    poll: Statement,
}

/// Connects to the primary (`postgres` database, `primary`) and each of
/// `standbys`, waits until each has replayed everything the primary wrote so
/// far (the fresh run database among it: a standby session may open on it
/// then), and reads the conflict counters of `run_db`; with a synchronous
/// standby, opens the commit probe's session too. With `logical`, the
/// subscriber (`clone::logical`) is polled on a connection to the primary.
/// `None` without standbys or subscriber.
pub async fn connect(primary: Target, standbys: &[Endpoint], run_db: &str, logical: bool) -> Result<Option<Connected>> {
    if standbys.is_empty() && !logical {
        return Ok(None);
    }
    let probe = match standbys.iter().any(|s| s.synchronous) {
        true => Some(sync_commit::connect(primary.clone()).await?),
        false => None,
    };
    let primary_target = primary.clone();
    let primary = connect_to(primary, "the primary").await?;
    let primary_sql = if probe.is_some() { PRIMARY_SYNC_SQL } else { PRIMARY_SQL };
    let primary_poll = primary.prepare(primary_sql).await.map_err(db_err("preparing the primary's poll"))?;
    let mut conns = Vec::new();
    for s in standbys {
        let client = connect_to(s.target("postgres"), &format!("standby {}", s.name)).await?;
        catch_up(&primary, &client, &s.name).await?;
        let before = conflicts(&client, run_db).await.unwrap_or_default();
        let sync_commit = s.synchronous.then(Default::default);
        let rec = StandbyRecord { name: s.name.clone(), conflicts_before: before, sync_commit, ..Default::default() };
        let poll = client.prepare(STANDBY_SQL).await.map_err(db_err("preparing the standby's poll"))?;
        conns.push(Conn { name: s.name.clone(), client, rec, poll });
    }
    if logical {
        conns.push(subscriber(primary_target.clone()).await?);
    }
    let mut backend_pids = vec![backend_pid(&primary).await?];
    for c in &conns {
        backend_pids.push(backend_pid(&c.client).await?);
    }
    Ok(Some(Connected { primary, primary_poll, conns, run_db: run_db.to_string(), probe, backend_pids }))
}

impl Connected {
    /// Starts polling every `interval`, on `clock`.
    pub fn start(self, clock: Arc<Clock>, interval: Duration) -> ReplicaSampler {
        let stop = CancellationToken::new();
        let Connected { primary, primary_poll, conns, run_db, probe, backend_pids } = self;
        let probe = probe.map(|p| p.start(clock.clone(), interval));
        let paused = Arc::new(AtomicBool::new(false));
        let task = Poller {
            primary,
            primary_poll,
            conns,
            clock,
            interval,
            run_db,
            stop: stop.clone(),
            paused: paused.clone(),
        };
        ReplicaSampler { backend_pids, stop, paused, handle: tokio::spawn(task.run()), probe }
    }
}

impl ReplicaSampler {
    /// Skips the polls while `paused` (the commit probe, if any, goes on).
    pub fn pause(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }

    /// Stops polling, reads the conflict counters once more, and returns the record.
    /// With a synchronous standby, its record gets the commit probe's.
    pub async fn finish(self) -> ReplicasRecord {
        self.stop.cancel();
        let probed = match self.probe {
            Some(p) => Some(p.finish().await),
            None => None,
        };
        let mut rec = self.handle.await.unwrap_or_default();
        if let Some(probed) = probed {
            for sync in rec.standbys.iter_mut().filter_map(|s| s.sync_commit.as_mut()) {
                let waiting = std::mem::take(&mut sync.waiting);
                *sync = crate::run_record::replica::SyncCommitRecord { waiting, ..probed.clone() };
            }
        }
        rec
    }
}

/// The logical subscriber's poll connection, to the primary's `postgres` database.
async fn subscriber(primary: Target) -> Result<Conn> {
    use crate::clone::logical::{SUBSCRIBER_DB, SUBSCRIPTION};
    let client = connect_to(primary, "the primary (logical subscriber)").await?;
    let version: i32 = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(db_err("the primary's version"))?
        .get(0);
    let logical = crate::run_record::replica::LogicalRecord {
        slot: SUBSCRIPTION.into(),
        database: SUBSCRIBER_DB.into(),
        ..Default::default()
    };
    let rec = StandbyRecord { name: SUBSCRIPTION.into(), logical: Some(logical), ..Default::default() };
    let sql = if version >= 150000 { LOGICAL_SQL } else { LOGICAL_SQL_14 };
    let poll = client.prepare(sql).await.map_err(db_err("preparing the logical subscriber's poll"))?;
    Ok(Conn { name: SUBSCRIPTION.into(), client, rec, poll })
}

async fn connect_to(mut target: Target, whose: &str) -> Result<tokio_postgres::Client> {
    target.config.application_name("lockimpact-replica-sampler");
    target
        .connect()
        .await
        .map_err(|e| Error::db(format!("cannot open the replica sampler's connection to {whose}: {}", describe_pg(&e))))
}

fn db_err(what: &str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
    move |e| Error::db(format!("{what}: {}", describe_pg(&e)))
}

async fn backend_pid(client: &tokio_postgres::Client) -> Result<u32> {
    let row = client.query_one("SELECT pg_backend_pid()", &[]).await.map_err(db_err("the sampler's backend pid"))?;
    Ok(row.get::<_, i32>(0) as u32)
}

/// Waits until `standby` has replayed up to the primary's current LSN.
async fn catch_up(primary: &tokio_postgres::Client, standby: &tokio_postgres::Client, name: &str) -> Result<()> {
    let lsn: String =
        primary.query_one("SELECT pg_current_wal_lsn()::text", &[]).await.map_err(db_err("the primary's LSN"))?.get(0);
    let deadline = Instant::now() + CATCH_UP_TIMEOUT;
    loop {
        let behind: f64 = standby
            .query_one("SELECT pg_wal_lsn_diff($1::text::pg_lsn, pg_last_wal_replay_lsn())::float8", &[&lsn])
            .await
            .map_err(db_err("the standby's replay LSN"))?
            .get(0);
        if behind <= 0.0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::env(format!(
                "standby {name} is still {behind} bytes behind the primary after {} s",
                CATCH_UP_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn conflicts(client: &tokio_postgres::Client, run_db: &str) -> Result<Conflicts> {
    let rows = client.query(CONFLICTS_SQL, &[&run_db]).await.map_err(db_err("pg_stat_database_conflicts"))?;
    Ok(rows
        .first()
        .map(|r| Conflicts {
            tablespace: r.get(0),
            lock: r.get(1),
            snapshot: r.get(2),
            bufferpin: r.get(3),
            deadlock: r.get(4),
        })
        .unwrap_or_default())
}

/// The primary's side of one poll: its LSN, (name → write, flush, replay
/// lag), and the sessions waiting for a synchronous standby.
type PrimaryPoll = (String, Vec<(String, [Option<Duration>; 3])>, u32);

struct Poller {
    primary: tokio_postgres::Client,
    primary_poll: Statement,
    conns: Vec<Conn>,
    clock: Arc<Clock>,
    interval: Duration,
    run_db: String,
    stop: CancellationToken,
    paused: Arc<AtomicBool>,
}

impl Poller {
    async fn run(mut self) -> ReplicasRecord {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.stop.cancelled() => break,
            }
            if !self.paused.load(Ordering::Relaxed) {
                self.poll().await;
            }
        }
        let mut rec = ReplicasRecord { interval: self.interval, standbys: Vec::new() };
        for mut c in self.conns {
            if c.rec.logical.is_some() {
                rec.standbys.push(c.rec);
                continue;
            }
            match conflicts(&c.client, &self.run_db).await {
                Ok(after) => c.rec.conflicts_after = after,
                Err(e) => {
                    c.rec.conflicts_after = c.rec.conflicts_before;
                    c.rec.last_error = Some(e.message);
                }
            }
            rec.standbys.push(c.rec);
        }
        rec
    }

    async fn poll(&mut self) {
        let at = self.clock.since_start(Instant::now());
        let primary = match self.primary.query(&self.primary_poll, &[]).await {
            Ok(rows) => read_primary(&rows),
            Err(e) => {
                for c in &mut self.conns {
                    c.rec.failed_polls += 1;
                    c.rec.last_error = Some(format!("the primary: {}", describe_pg(&e)));
                }
                return;
            }
        };
        let (lsn, lags, waiting) = primary;
        for c in &mut self.conns {
            if let Some(sync) = &mut c.rec.sync_commit {
                sync.waiting.push((at, waiting));
            }
            let time_lag = lags.iter().find(|(n, _)| *n == c.name).map(|(_, l)| *l).unwrap_or_default();
            let polled = match c.rec.logical {
                Some(_) => c.client.query_one(&c.poll, &[&lsn, &c.name]).await,
                None => c.client.query_one(&c.poll, &[&lsn]).await,
            };
            match polled {
                Ok(row) => {
                    let lag_bytes = row.get::<_, Option<i64>>(0).unwrap_or(0).max(0) as u64;
                    let sample = LagSample {
                        at,
                        lag_bytes,
                        replay_lsn: crate::pg::lsn::parse(&lsn).map(|p| p.saturating_sub(lag_bytes)),
                        write_lag: time_lag[0],
                        flush_lag: time_lag[1],
                        replay_lag: time_lag[2],
                        blocked_pids: Vec::new(),
                    };
                    let sample = read_side(sample, &row, &mut c.rec);
                    c.rec.samples.push(sample);
                }
                Err(e) => {
                    c.rec.failed_polls += 1;
                    c.rec.last_error = Some(describe_pg(&e));
                }
            }
        }
    }
}

/// The rest of a poll's row: a standby's blocked sessions, or a logical
/// subscriber's error counts.
fn read_side(mut sample: LagSample, row: &tokio_postgres::Row, rec: &mut StandbyRecord) -> LagSample {
    match &mut rec.logical {
        None => sample.blocked_pids = row.get(1),
        Some(l) => {
            let n = |i: usize| row.get::<_, Option<i64>>(i).map(|v| v.max(0) as u64);
            if let (Some(apply), Some(sync)) = (n(1), n(2)) {
                l.errors.push((sample.at, apply, sync));
            }
        }
    }
    sample
}

fn read_primary(rows: &[tokio_postgres::Row]) -> PrimaryPoll {
    let lsn = rows.first().map(|r| r.get::<_, String>(0)).unwrap_or_default();
    let us =
        |r: &tokio_postgres::Row, i: usize| r.get::<_, Option<i64>>(i).map(|v| Duration::from_micros(v.max(0) as u64));
    let lags =
        rows.iter().filter_map(|r| Some((r.get::<_, Option<String>>(1)?, [us(r, 2), us(r, 3), us(r, 4)]))).collect();
    let waiting = rows.first().map_or(0, |r| r.get::<_, i64>(5).max(0) as u32);
    (lsn, lags, waiting)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sync_poll_leaves_out_the_probe_by_its_name() {
        assert!(super::PRIMARY_SYNC_SQL.contains(&format!("'{}'", super::super::sync_commit::PROBE_NAME)));
        assert!(super::PRIMARY_SQL.ends_with("ON true") && super::PRIMARY_SQL.contains(", 0::int8 FROM"));
    }
}
