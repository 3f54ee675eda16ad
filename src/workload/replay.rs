//! Session replay: the file format `lockimpact record log --replay` writes
//! (JSON lines: a header, then one line per session) and the replay driver.
//! Each session runs on its own connection and issues its statements in their
//! recorded order at their recorded offsets divided by `speed`; a statement's
//! latency counts from that intended start (as the pacer's operations do), so
//! a session held up by a lock shows the whole delay. A session connects at
//! its first statement and disconnects after its last. When the replay is
//! shorter than the rehearsal it starts over.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::Seconds;
use super::pacer::PacerResult;
use super::worker::WorkerStats;
use crate::error::{Error, Result, describe_pg, sqlstate};
use crate::record::new_hist;
use crate::timeline::{Clock, Slot};

/// The first line of a replay file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Format version: 1.
    pub lockimpact_replay: u32,
    /// Length of the recording, ms.
    pub duration_ms: f64,
    /// Query classes (statement fingerprints): name, and one example of its SQL.
    pub classes: Vec<ReplayClass>,
    /// Where it was recorded from (log files).
    #[serde(default)]
    pub source: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayClass {
    pub name: String,
    pub sql: String,
    /// How many statements of the recording are of this class.
    pub count: u64,
}

/// One recorded session (one line of the file after the header).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    pub session: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub database: String,
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// Start offset from the start of the recording, ms.
    pub at_ms: f64,
    /// The SQL as run, parameters inlined as literals.
    pub sql: String,
    /// Index into the header's classes.
    pub class: usize,
    /// Transaction number within the session: statements of one transaction
    /// (`BEGIN` … `COMMIT`) share it.
    pub tx: u64,
}

/// A loaded replay file.
#[derive(Debug, Clone)]
pub struct Replay {
    pub header: Header,
    pub sessions: Vec<Session>,
}

impl Replay {
    pub fn load(path: &Path) -> Result<Replay> {
        let file = path.display();
        let text = crate::scenario::read_text(path, "session replay file")?;
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let (_, first) = lines.next().ok_or_else(|| Error::input(format!("{file}: empty replay file")))?;
        let header: Header = serde_json::from_str(first)
            .map_err(|e| Error::input(format!("{file}: line 1: not a lockimpact replay header: {e}")))?;
        if header.lockimpact_replay != 1 {
            return Err(Error::input(format!(
                "{file}: line 1: replay format {} is not known (1 is)",
                header.lockimpact_replay
            )));
        }
        let mut sessions = Vec::new();
        for (i, line) in lines {
            let s: Session =
                serde_json::from_str(line).map_err(|e| Error::input(format!("{file}: line {}: {e}", i + 1)))?;
            if let Some(st) = s.statements.iter().find(|st| st.class >= header.classes.len()) {
                return Err(Error::input(format!("{file}: line {}: class {} is not in the header", i + 1, st.class)));
            }
            sessions.push(s);
        }
        if sessions.iter().all(|s| s.statements.is_empty()) {
            return Err(Error::input(format!("{file}: no statements to replay")));
        }
        Ok(Replay { header, sessions })
    }

    /// The query classes a replay reports on (one per fingerprint).
    pub fn classes(&self) -> Vec<super::file::Class> {
        self.header
            .classes
            .iter()
            .map(|c| super::file::Class {
                name: c.name.clone(),
                sql: c.sql.clone(),
                pace: super::file::Pace::Weight(c.count.max(1) as f64),
                params: Vec::new(),
                hold: None,
                recorded_rate: None,
                peak_rate: None,
                script: None,
            })
            .collect()
    }

    pub fn statements(&self) -> usize {
        self.sessions.iter().map(|s| s.statements.len()).sum()
    }

    /// The recording's length: its header, or the last statement's offset.
    pub fn duration(&self) -> Duration {
        let last = self.sessions.iter().flat_map(|s| s.statements.last()).map(|s| s.at_ms).fold(0.0, f64::max);
        Duration::from_secs_f64(self.header.duration_ms.max(last).max(1.0) / 1000.0)
    }
}

/// Whether `sql` leaves a transaction open or closes one (by its first word).
pub fn tx_effect(sql: &str) -> Option<bool> {
    let w = sql.trim_start().split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("");
    let is = |k: &str| w.eq_ignore_ascii_case(k);
    if is("BEGIN") || is("START") {
        Some(true)
    } else if is("COMMIT") || is("END") || is("ROLLBACK") || is("ABORT") {
        Some(false)
    } else {
        None
    }
}

/// What a replay runs with and where it records.
pub struct Driver {
    pub replay: Arc<Replay>,
    pub speed: f64,
    pub target: crate::pg::Target,
    pub clock: Arc<Clock>,
    pub stats: Arc<Mutex<WorkerStats>>,
    pub seconds: Arc<Mutex<Seconds>>,
    pub roles: Arc<crate::sampler::Roles>,
    pub stop: CancellationToken,
}

/// Runs every session until `stop`; returns what the pacer would.
pub async fn run(d: Driver) -> PacerResult {
    let Driver { replay, speed, target, clock, stats, seconds, roles, stop } = d;
    let start = Instant::now();
    let round = replay.duration().div_f64(speed);
    let lag = Arc::new(Mutex::new(new_hist()));
    let mut tasks = Vec::new();
    for (i, _) in replay.sessions.iter().enumerate().filter(|(_, s)| !s.statements.is_empty()) {
        let (replay, target, clock, stats, seconds, roles, stop, lag) = (
            replay.clone(),
            target.clone(),
            clock.clone(),
            stats.clone(),
            seconds.clone(),
            roles.clone(),
            stop.clone(),
            lag.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let session = &replay.sessions[i];
            let mut client = None;
            for r in 0u32.. {
                let base = start + round * r;
                let mut open = false;
                let mut prev_done = base;
                for st in &session.statements {
                    let intended = base + Duration::from_secs_f64(st.at_ms / 1000.0 / speed);
                    tokio::select! {
                        _ = tokio::time::sleep_until(intended.into()) => {}
                        _ = stop.cancelled() => return,
                    }
                    if client.is_none() {
                        match target.connect().await {
                            Ok(c) => {
                                if let Ok(row) = c.query_one("SELECT pg_backend_pid()", &[]).await {
                                    roles.add_workload(row.get(0));
                                }
                                client = Some(c);
                            }
                            Err(e) => {
                                stats.lock().expect("stats").error(st.class, sqlstate(&e), || describe_pg(&e));
                                continue;
                            }
                        }
                    }
                    let c = client.as_ref().expect("connected");
                    let slot = clock.current();
                    // Schedule lag is the client's own delay: from when the
                    // statement was due and its session free, to its sending.
                    // Waiting for the session's previous statement is the
                    // server's doing and counts in latency, not here.
                    let ready = intended.max(prev_done);
                    let _ = lag
                        .lock()
                        .expect("lag")
                        .record(Instant::now().saturating_duration_since(ready).as_micros() as u64);
                    let result = c.simple_query(&st.sql).await;
                    let done = Instant::now();
                    prev_done = done;
                    let latency = done.saturating_duration_since(intended).as_micros() as u64;
                    if let Some(o) = tx_effect(&st.sql) {
                        open = o;
                    }
                    let outcome = match &result {
                        Ok(_) => Ok(latency),
                        Err(e) => Err((sqlstate(e), || describe_pg(e))),
                    };
                    stats.lock().expect("stats").finished(st.class, slot, outcome);
                    seconds.lock().expect("seconds").record(done, st.class, result.is_ok().then_some(latency));
                    if c.is_closed() {
                        client = None;
                    }
                }
                if open && let Some(c) = &client {
                    let _ = c.simple_query("ROLLBACK").await; // the recording ended inside a transaction
                }
                client = None; // the recorded session ended: disconnect until the next round
            }
        }));
    }
    stop.cancelled().await;
    let stop_at = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    for t in tasks {
        let abort = t.abort_handle();
        if tokio::time::timeout_at(deadline, t).await.is_err() {
            abort.abort();
        }
    }
    // Issued, as the pacer counts it: every statement the schedule asked for
    // in the measured phases, whether or not its session could send it.
    let measured_from = clock.marks().iter().find(|m| m.slot != Slot::Warmup).map_or(stop_at, |m| clock.start + m.at);
    let mut issued = 0u64;
    for r in 0u32.. {
        let base = start + round * r;
        if base > stop_at {
            break;
        }
        for s in &replay.sessions {
            issued += s
                .statements
                .iter()
                .map(|st| base + Duration::from_secs_f64(st.at_ms / 1000.0 / speed))
                .filter(|t| *t >= measured_from && *t <= stop_at)
                .count() as u64;
        }
    }
    let schedule_lag = lag.lock().expect("lag").clone();
    PacerResult { issued_measured: issued, schedule_lag }
}
