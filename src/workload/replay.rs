//! Session replay: the file format `lockimpact record log --replay` writes
//! (JSON lines: a header, then one line per session) and the replay driver.
//! Each session issues its statements in their recorded order at their
//! recorded offsets divided by `speed`; a statement's latency counts from
//! that intended start (as the pacer's operations do), so a session held up
//! by a lock shows the whole delay. A session takes a connection from a
//! bounded deadpool-postgres pool at its first statement and gives it back
//! after its last (recycled with `DISCARD ALL`), as an application behind a
//! connection pool (or pgbouncer) does: a log of thousands of short sessions
//! cannot exhaust `max_connections`, and the wait for a free connection
//! counts in the first statement's latency and is reported per phase. The
//! replay starts at the recording's first statement (offsets shifted), and
//! when it is shorter than the rehearsal it starts over. Sessions send what
//! they measure (`Event`) to the driver, which alone records it in its
//! `Measurement`: no session takes a lock to record.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use deadpool_postgres::{Hook, HookError, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};

use super::measurement::Measurement;
use super::pacer::PacerResult;
use crate::error::{Error, Result, describe_pg, sqlstate};
use crate::run_record::{Hist, PoolRecord, ReplaySchedule, new_hist};
use crate::timeline::{Clock, Slot};
use crate::workload::Roles;

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
    /// How long the recording ran before its first statement (ms); the
    /// replay starts at that statement, every offset shifted by it.
    pub lead_in_ms: f64,
}

impl Replay {
    pub fn load(path: &Path) -> Result<Replay> {
        let file = path.display();
        let text = crate::files::text::read_text_within(path, "session replay file", crate::files::RECORDING_LIMIT)?;
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
        let mut replay = Replay { header, sessions, lead_in_ms: 0.0 };
        replay.start_at_first_statement();
        Ok(replay)
    }

    /// Shifts every offset so that the first statement comes at 0: a log
    /// whose first statement came long after its start would otherwise
    /// replay nothing for that long (a rehearsal shorter than the gap, none at all).
    fn start_at_first_statement(&mut self) {
        let first = self.sessions.iter().flat_map(|s| s.statements.iter().map(|st| st.at_ms)).fold(f64::MAX, f64::min);
        if !(first > 0.0 && first.is_finite()) {
            return;
        }
        for st in self.sessions.iter_mut().flat_map(|s| s.statements.iter_mut()) {
            st.at_ms -= first;
        }
        self.header.duration_ms = (self.header.duration_ms - first).max(0.0);
        self.lead_in_ms = first;
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
                on_replica: false,
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

/// Connections the tool keeps free for itself besides the replay's pool (a
/// control connection, e.g. the sampler reconnecting).
const SPARE_CONNECTIONS: i64 = 1;

/// The replay's connection pool: `size` connections, or by default as many
/// as the server's `max_connections` allows beside every connection open now
/// (the sampler's and the migration's), the superuser-reserved slots (unless
/// the role is a superuser) and `SPARE_CONNECTIONS`; never more than there
/// are sessions. Each new connection's backend is registered as a workload
/// session (and in `registry`, so it is closed at the run's end); a
/// connection given back is recycled with `DISCARD ALL`.
pub async fn pool(
    target: crate::pg::Target,
    size: Option<u32>,
    sessions: usize,
    roles: Arc<Roles>,
    registry: Arc<crate::clone::sessions::Sessions>,
) -> Result<Pool> {
    let recycling = ManagerConfig { recycling_method: RecyclingMethod::Custom("DISCARD ALL".into()) };
    let manager = match target.tls.client_config() {
        None => Manager::from_config(target.config, tokio_postgres::NoTls, recycling),
        Some(tls) => {
            let connector = tokio_postgres_rustls::MakeRustlsConnect::new(rustls::ClientConfig::clone(tls));
            Manager::from_config(target.config, connector, recycling)
        }
    };
    let register = Hook::async_fn(move |client: &mut deadpool_postgres::ClientWrapper, _| {
        let (roles, registry) = (roles.clone(), registry.clone());
        Box::pin(async move {
            let row = client.query_one("SELECT pg_backend_pid()", &[]).await.map_err(HookError::Backend)?;
            let pid: i32 = row.get(0);
            roles.add_workload(pid);
            // Registered for the run's end: none of them may outlive it.
            registry.add_client(pid, "replay pool connection", client);
            Ok(())
        })
    });
    let pool = Pool::builder(manager)
        .max_size(size.unwrap_or(1) as usize)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .post_create(register)
        .build()
        .map_err(|e| Error::env(format!("cannot build the replay's connection pool: {e}")))?;
    if size.is_some() {
        return Ok(pool);
    }
    let first =
        pool.get().await.map_err(|e| Error::db(format!("cannot open a replay connection: {}", pool_error(&e))))?;
    let row = first
        .query_one(
            "SELECT current_setting('max_connections')::int8, current_setting('superuser_reserved_connections')::int8, \
             (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), \
             (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')",
            &[],
        )
        .await
        .map_err(|e| Error::db(describe_pg(&e)))?;
    let (max, reserved, superuser, open): (i64, i64, bool, i64) = (row.get(0), row.get(1), row.get(2), row.get(3));
    // `open` counts this pool's first connection, which the pool keeps.
    let free = max - if superuser { 0 } else { reserved } - (open - 1) - SPARE_CONNECTIONS;
    if free < 1 {
        return Err(Error::env(format!(
            "max_connections = {max} leaves no connection for the session replay ({} open already); raise it in \
             [clone.settings] or set workload.pool",
            open - 1
        )));
    }
    pool.resize((free as usize).min(sessions.max(1)));
    Ok(pool)
}

/// A pool error with the server's own message when there is one.
fn pool_error(e: &PoolError) -> String {
    match e {
        PoolError::Backend(e) | PoolError::PostCreateHook(HookError::Backend(e)) => describe_pg(e),
        other => other.to_string(),
    }
}

/// The SQLSTATE of a pool error (`08006`-like client codes as `sqlstate` gives).
fn pool_sqlstate(e: &PoolError) -> String {
    match e {
        PoolError::Backend(e) | PoolError::PostCreateHook(HookError::Backend(e)) => sqlstate(e),
        _ => "XXCLI".to_string(),
    }
}

/// What a replay runs with and where it records.
pub struct Driver {
    pub replay: Arc<Replay>,
    pub speed: f64,
    pub pool: Pool,
    pub clock: Arc<Clock>,
    pub measurement: Measurement,
    /// The pool's size, and per slot how long sessions waited for a pooled connection (µs).
    pub pool_wait: PoolRecord,
    pub stop: CancellationToken,
}

/// What a replay measured, once every session ended.
pub struct Replayed {
    /// What the pacer would have returned.
    pub pacer: PacerResult,
    pub measurement: Measurement,
    pub pool: PoolRecord,
}

/// What a session sends the driver to record.
enum Event {
    /// A statement ended: its latency (µs) from its intended start, and on
    /// failure its SQLSTATE and message.
    Finished { class: usize, slot: Slot, done: Instant, latency: u64, error: Option<(String, String)> },
    /// A statement cut short when the run ended, with the time it had waited (µs).
    Cut { class: usize, slot: Slot, waited: u64 },
    /// No pooled connection could be had for a statement.
    Failed { class: usize, slot: Slot, code: String, message: String },
    /// How late a statement was sent (µs; see `Replayer::run`).
    Lag(u64),
    /// How long a session waited for a pooled connection.
    PoolWait(Slot, Duration),
}

/// The driver's records, filled from the sessions' events.
struct Records {
    measurement: Measurement,
    lag: Hist,
    pool_wait: PoolRecord,
}

impl Records {
    fn apply(&mut self, e: Event) {
        match e {
            Event::Finished { class, slot, done, latency, error } => {
                let outcome = match error {
                    None => Ok(()),
                    Some((code, message)) => Err((code, move || message)),
                };
                self.measurement.finished((class, slot), done, latency, outcome);
            }
            Event::Cut { class, slot, waited } => self.measurement.cut(class, slot, waited),
            Event::Failed { class, slot, code, message } => self.measurement.error(slot, class, code, || message),
            Event::Lag(us) => {
                let _ = self.lag.record(us);
            }
            Event::PoolWait(slot, wait) => self.pool_wait.record(slot, wait),
        }
    }
}

/// Runs every session until `stop`, recording what they send; returns what
/// they measured, with what the pacer would return.
pub async fn run(d: Driver) -> Replayed {
    let Driver { replay, speed, pool, clock, measurement, pool_wait, stop } = d;
    let start = Instant::now();
    let round = replay.duration().div_f64(speed);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for (i, _) in replay.sessions.iter().enumerate().filter(|(_, s)| !s.statements.is_empty()) {
        let session = Replayer {
            replay: replay.clone(),
            index: i,
            speed,
            pool: pool.clone(),
            clock: clock.clone(),
            events: tx.clone(),
            stop: stop.clone(),
        };
        tasks.push(tokio::spawn(session.run(start, round)));
    }
    drop(tx); // the channel closes when the last session ends
    let mut records = Records { measurement, lag: new_hist(), pool_wait };
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(e) = rx.recv() => records.apply(e),
        }
    }
    let stop_at = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    for mut t in tasks {
        if tokio::time::timeout_at(deadline, &mut t).await.is_err() {
            t.abort();
            let _ = t.await; // dropped: its statement in flight is counted (`InFlight`)
        }
    }
    while let Some(e) = rx.recv().await {
        records.apply(e);
    }
    let pacer = issued(&replay, &clock, (start, round, speed, stop_at), records.lag);
    Replayed { pacer, measurement: records.measurement, pool: records.pool_wait }
}

/// Issued, as the pacer counts it: every statement the schedule asked for
/// in the measured phases, whether or not its session could send it.
fn issued(
    replay: &Replay,
    clock: &Clock,
    (start, round, speed, stop_at): (Instant, Duration, f64, Instant),
    schedule_lag: Hist,
) -> PacerResult {
    let marks = clock.marks();
    let at = |pred: &dyn Fn(Slot) -> bool| marks.iter().find(|m| pred(m.slot)).map_or(stop_at, |m| clock.start + m.at);
    let measured_from = at(&|s| s != Slot::Warmup);
    let (during_from, during_to) = (at(&Slot::is_during), at(&|s| s == Slot::After));
    let (mut issued, mut during) = (0u64, 0u64);
    schedule(replay, start, round, speed, stop_at, |t| {
        issued += u64::from(t >= measured_from);
        during += u64::from(t >= during_from && t < during_to.min(stop_at));
    });
    let mean_rate = replay.statements() as f64 / round.as_secs_f64().max(1e-9);
    PacerResult {
        issued_measured: issued,
        dropped: 0,
        schedule_lag,
        replay_schedule: Some(ReplaySchedule { during, mean_rate }),
    }
}

/// Calls `each` with every statement's intended start, round after round, up to `stop_at`.
fn schedule(
    replay: &Replay,
    start: Instant,
    round: Duration,
    speed: f64,
    stop_at: Instant,
    mut each: impl FnMut(Instant),
) {
    for r in 0u32.. {
        let base = start + round * r;
        if base > stop_at {
            break;
        }
        let times = replay.sessions.iter().flat_map(|s| &s.statements);
        let times = times.map(|st| base + Duration::from_secs_f64(st.at_ms / 1000.0 / speed));
        times.filter(|t| *t <= stop_at).for_each(&mut each);
    }
}

/// One recorded session, replayed round after round.
struct Replayer {
    replay: Arc<Replay>,
    index: usize,
    speed: f64,
    pool: Pool,
    clock: Arc<Clock>,
    events: tokio::sync::mpsc::UnboundedSender<Event>,
    stop: CancellationToken,
}

/// A statement in flight. Dropped armed (its task aborted when the run
/// ended), it counts as cut short, in latency with the time it had waited.
struct InFlight<'a> {
    events: &'a tokio::sync::mpsc::UnboundedSender<Event>,
    class: usize,
    slot: Slot,
    intended: Instant,
    armed: bool,
}

impl InFlight<'_> {
    /// The statement ended: nothing to count on drop.
    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let waited = self.intended.elapsed().as_micros() as u64;
        let _ = self.events.send(Event::Cut { class: self.class, slot: self.slot, waited });
    }
}

impl Replayer {
    async fn run(self, start: Instant, round: Duration) {
        let statements = &self.replay.sessions[self.index].statements;
        let mut client: Option<deadpool_postgres::Object> = None;
        for r in 0u32.. {
            let base = start + round * r;
            let mut open = false;
            let mut prev_done = base;
            for st in statements {
                let intended = base + Duration::from_secs_f64(st.at_ms / 1000.0 / self.speed);
                tokio::select! {
                    _ = tokio::time::sleep_until(intended.into()) => {}
                    _ = self.stop.cancelled() => return,
                }
                if client.is_none() {
                    match self.connection(st.class).await {
                        Some(Ok(c)) => client = Some(c),
                        Some(Err(())) => continue,
                        None => return,
                    }
                    prev_done = prev_done.max(Instant::now()); // the session is free from now on
                }
                let c = client.as_ref().expect("connected");
                // The phase of its intended start, as the pacer's operations:
                // a statement held up behind its session's previous one
                // still counts where it was due.
                let slot = self.clock.slot_at(intended);
                // Schedule lag is the client's own delay: from when the
                // statement was due and its session free, to its sending.
                // Waiting for the session's previous statement, or for a
                // pooled connection, counts in latency, not here.
                let ready = intended.max(prev_done);
                let _ =
                    self.events.send(Event::Lag(Instant::now().saturating_duration_since(ready).as_micros() as u64));
                let mut in_flight = InFlight { events: &self.events, class: st.class, slot, intended, armed: true };
                let result = c.simple_query(&st.sql).await;
                in_flight.disarm();
                let done = Instant::now();
                prev_done = done;
                let latency = done.saturating_duration_since(intended).as_micros() as u64;
                if let Some(o) = tx_effect(&st.sql) {
                    open = o;
                }
                let error = result.as_ref().err().map(|e| (sqlstate(e), describe_pg(e)));
                let _ = self.events.send(Event::Finished { class: st.class, slot, done, latency, error });
                if c.is_closed() {
                    client = None;
                }
            }
            if open && let Some(c) = &client {
                let _ = c.simple_query("ROLLBACK").await; // the recording ended inside a transaction
            }
            client = None; // the recorded session ended: its connection goes back to the pool
        }
    }

    /// A pooled connection for the session's next statement (of `class`);
    /// the wait is recorded for the current phase. `None` when the run stops
    /// meanwhile; `Err` when none could be had (counted as the statement's error).
    /// A unix-socket connect refused with EAGAIN (the server's accept queue
    /// was full for a moment) is tried again for up to a second, as libpq
    /// does; any other error is not.
    async fn connection(&self, class: usize) -> Option<std::result::Result<deadpool_postgres::Object, ()>> {
        let asked = Instant::now();
        let slot = self.clock.current();
        let mut tries = 0;
        let got = loop {
            let got = tokio::select! {
                r = self.pool.get() => r,
                _ = self.stop.cancelled() => return None,
            };
            match got {
                Err(e) if tries < 100 && would_block(&e) => tries += 1,
                other => break other,
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                _ = self.stop.cancelled() => return None,
            }
        };
        let _ = self.events.send(Event::PoolWait(slot, asked.elapsed()));
        Some(got.map_err(|e| {
            let (code, message) = (pool_sqlstate(&e), pool_error(&e));
            let _ = self.events.send(Event::Failed { class, slot, code, message });
        }))
    }
}

/// Whether a pool error is a connect that would have blocked (EAGAIN).
fn would_block(e: &PoolError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::WouldBlock;
        }
        source = s.source();
    }
    false
}
