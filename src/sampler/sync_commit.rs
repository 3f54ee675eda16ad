//! The commit latency a synchronous standby adds on the primary
//! (`[replica] synchronous = true`): a task of the replica sampler, on a
//! connection of its own to the primary's `postgres` database, that times
//! one tiny commit per interval. Each transaction writes a little WAL (a
//! transactional `pg_logical_emit_message`: a transaction that only took an
//! xid writes no WAL before its commit record and does not wait for a
//! standby) and the `COMMIT` alone is timed. Probes alternate: one waits
//! for the standby as the application's commits do (the server's
//! `synchronous_commit` level), the next does not (`SET LOCAL
//! synchronous_commit = local`); the difference is what the standby adds.
//! A probe stuck behind a standby that does not answer holds this task
//! only: the lag sampler goes on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result, describe_pg};
use crate::pg::Target;
use crate::run_record::replica::{CommitProbe, SyncCommitRecord};
use crate::timeline::Clock;

/// The probe's `application_name`; the sampler's count of sessions waiting
/// on the standby leaves it out.
pub const PROBE_NAME: &str = "lockimpact-sync-probe";

/// The transaction before the timed `COMMIT`: a transactional WAL message.
const WRITE_SQL: &str = "SELECT pg_logical_emit_message(true, 'lockimpact', '')";

/// The probe's session, open, with the level its waiting commits use.
pub struct Connected {
    client: tokio_postgres::Client,
    level: String,
}

pub struct Probe {
    stop: CancellationToken,
    handle: JoinHandle<SyncCommitRecord>,
}

/// Opens the probe's session on the primary and reads its `synchronous_commit`.
pub async fn connect(mut primary: Target) -> Result<Connected> {
    primary.config.application_name(PROBE_NAME);
    let client = primary.connect().await.map_err(|e| {
        Error::db(format!("cannot open the synchronous commit probe's connection to the primary: {}", describe_pg(&e)))
    })?;
    let level: String = client
        .query_one("SHOW synchronous_commit", &[])
        .await
        .map_err(|e| Error::db(format!("the primary's synchronous_commit: {}", describe_pg(&e))))?
        .get(0);
    Ok(Connected { client, level })
}

impl Connected {
    /// Starts probing every `interval`, on `clock`.
    pub fn start(self, clock: Arc<Clock>, interval: Duration) -> Probe {
        let stop = CancellationToken::new();
        let rec = SyncCommitRecord { level: self.level, ..Default::default() };
        let task = Prober { client: self.client, clock, interval, stop: stop.clone(), rec };
        Probe { stop, handle: tokio::spawn(task.run()) }
    }
}

impl Probe {
    /// Stops probing (a commit still waiting is abandoned) and returns the record.
    pub async fn finish(self) -> SyncCommitRecord {
        self.stop.cancel();
        self.handle.await.unwrap_or_default()
    }
}

struct Prober {
    client: tokio_postgres::Client,
    clock: Arc<Clock>,
    interval: Duration,
    stop: CancellationToken,
    rec: SyncCommitRecord,
}

impl Prober {
    async fn run(mut self) -> SyncCommitRecord {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut waits = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.stop.cancelled() => break,
            }
            waits = !waits;
            let probe = tokio::select! {
                p = probe(&self.client, &self.clock, waits) => p,
                _ = self.stop.cancelled() => break,
            };
            match probe {
                Ok(p) => self.rec.probes.push(p),
                Err(e) => {
                    self.rec.failed += 1;
                    self.rec.last_error = Some(describe_pg(&e));
                    let _ = self.client.batch_execute("ROLLBACK").await;
                }
            }
        }
        self.rec
    }
}

/// One transaction that writes a little WAL; its `COMMIT` timed.
async fn probe(
    client: &tokio_postgres::Client,
    clock: &Clock,
    waits: bool,
) -> Result<CommitProbe, tokio_postgres::Error> {
    let local = if waits { "" } else { "SET LOCAL synchronous_commit = local; " };
    client.batch_execute(&format!("BEGIN; {local}{WRITE_SQL}")).await?;
    let sent = Instant::now();
    client.batch_execute("COMMIT").await?;
    Ok(CommitProbe { at: clock.since_start(sent), waits, took: sent.elapsed() })
}
