//! What the replica sampler measured on each streaming standby, raw: one
//! sample per interval (replay lag in bytes, the primary's write, flush and
//! replay lag in time, the standby sessions waiting on a lock the startup
//! process holds), and the standby's recovery-conflict counters before and
//! after the run. The report builder derives maxima, per-step windows and
//! counts from it.

use std::time::Duration;

/// Every standby's measurements, in the order the standbys were made.
#[derive(Debug, Clone, Default)]
pub struct ReplicasRecord {
    /// The sampling interval (the lock sampler's).
    pub interval: Duration,
    pub standbys: Vec<StandbyRecord>,
}

#[derive(Debug, Clone, Default)]
pub struct StandbyRecord {
    /// Its `application_name` on the primary.
    pub name: String,
    pub samples: Vec<LagSample>,
    /// `pg_stat_database_conflicts` of the run database on the standby,
    /// when sampling began and when it ended.
    pub conflicts_before: Conflicts,
    pub conflicts_after: Conflicts,
    /// Polls that failed (the standby or the primary did not answer), with the last error.
    pub failed_polls: u64,
    pub last_error: Option<String>,
    /// The synchronous standby's probe of the commit latency it adds on the
    /// primary (`[replica] synchronous = true`); `None` for the others.
    pub sync_commit: Option<SyncCommitRecord>,
    /// A logical subscriber (`[replica] logical = true`) instead of a
    /// standby: its samples' `lag_bytes` are its slot's lag, and this its errors.
    pub logical: Option<LogicalRecord>,
}

/// What a logical subscriber's errors were at each poll.
#[derive(Debug, Clone, Default)]
pub struct LogicalRecord {
    /// The slot on the primary and the subscriber's database.
    pub slot: String,
    pub database: String,
    /// (clock offset of the poll, `apply_error_count`, `sync_error_count` of
    /// `pg_stat_subscription_stats`); empty before PostgreSQL 15, which has no such view.
    pub errors: Vec<(Duration, u64, u64)>,
    /// The tables its publication covers; empty: all tables, `publication_note` says why.
    pub published: Vec<String>,
    pub publication_note: Option<String>,
    /// The first error its workers logged in the server's log (the local backend's, which lockimpact reads).
    pub first_error: Option<String>,
}

/// Commits the replica sampler timed on the primary, alternately waiting for
/// the synchronous standby (the server's `synchronous_commit` level) and not
/// (`synchronous_commit = local`), and the primary's sessions seen waiting on
/// it (`wait_event = 'SyncRep'`) at each poll.
#[derive(Debug, Clone, Default)]
pub struct SyncCommitRecord {
    /// The `synchronous_commit` level of the waiting probes (the primary's setting).
    pub level: String,
    pub probes: Vec<CommitProbe>,
    /// (clock offset of the poll, primary sessions waiting on `SyncRep`; the probe's own left out).
    pub waiting: Vec<(Duration, u32)>,
    /// Probes that failed, with the last error.
    pub failed: u64,
    pub last_error: Option<String>,
}

/// One timed `COMMIT` of a transaction that wrote a little WAL.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CommitProbe {
    /// Clock offset when the `COMMIT` was sent.
    pub at: Duration,
    /// It waited for the standby (the server's level), or not (`local`).
    pub waits: bool,
    /// From sending `COMMIT` to its answer.
    pub took: Duration,
}

/// One poll of one standby.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LagSample {
    /// Clock offset when the poll began (the primary's LSN was read first).
    pub at: Duration,
    /// `pg_wal_lsn_diff(primary's pg_current_wal_lsn(), standby's pg_last_wal_replay_lsn())`, at least 0.
    pub lag_bytes: u64,
    /// The position the standby had replayed (a subscriber: confirmed) up
    /// to, as a WAL byte position: the primary's LSN − `lag_bytes`.
    pub replay_lsn: Option<u64>,
    /// `write_lag`, `flush_lag`, `replay_lag` of the standby in the primary's
    /// `pg_stat_replication` (NULL there: `None`).
    pub write_lag: Option<Duration>,
    pub flush_lag: Option<Duration>,
    pub replay_lag: Option<Duration>,
    /// Standby sessions waiting on a lock held by the startup process (a replayed lock).
    pub blocked_pids: Vec<i32>,
}

/// Recovery conflicts by cause (`pg_stat_database_conflicts` columns):
/// each is a standby query cancelled (SQLSTATE 40001) or a session ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conflicts {
    pub tablespace: i64,
    pub lock: i64,
    pub snapshot: i64,
    pub bufferpin: i64,
    pub deadlock: i64,
}

impl Conflicts {
    pub fn total(&self) -> i64 {
        self.tablespace + self.lock + self.snapshot + self.bufferpin + self.deadlock
    }

    /// The counts since `before` (a counter reset counts from zero).
    pub fn since(&self, before: &Conflicts) -> Conflicts {
        let d = |a: i64, b: i64| if a >= b { a - b } else { a };
        Conflicts {
            tablespace: d(self.tablespace, before.tablespace),
            lock: d(self.lock, before.lock),
            snapshot: d(self.snapshot, before.snapshot),
            bufferpin: d(self.bufferpin, before.bufferpin),
            deadlock: d(self.deadlock, before.deadlock),
        }
    }
}
