//! The workload: what to replay (`plan`), query classes from the workload
//! file (`file`), parameter
//! generators (`params`), pgbench script classes (`script`), the open-loop
//! schedule (`pacer`) and the workers that take their operations from it
//! (`worker`), each on its own thread with its own connection (`wire`); or,
//! instead of schedule and workers, a session replay
//! (`replay`) on a bounded deadpool-postgres pool. `start` launches it;
//! `finish` stops it and merges what was measured into a `WorkloadRecord`.
//!
//! The paced workers keep their own connections instead of a pool: each
//! worker sends every operation on one connection for the whole run anyway,
//! so a pool would only add a checkout per operation and the async runtime
//! between the socket and the measurement; a blocking socket per thread
//! measured 1.10× pgbench's closed-loop throughput where tokio-postgres on
//! the runtime reached 0.95 (docs/performance.md). A replay needs the pool:
//! its sessions come and go, and one connection each would exhaust
//! `max_connections`.

mod by_start;
pub mod file;
pub mod measurement;
pub mod pacer;
pub mod params;
pub mod plan;
pub mod replay;
mod replica;
pub mod roles;
pub mod script;
pub mod wire;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::clone::sessions::Sessions;
use crate::error::{Error, Result, describe_pg};
use crate::run_record::{PoolRecord, WorkloadRecord};
use crate::timeline::{Clock, Slot};
use file::Class;
pub use measurement::Seconds;
use measurement::{Measurement, Sink};
use params::{Param, Value};
pub use plan::WorkloadPlan;
pub use roles::Roles;
use worker::Worker;

/// Most operations the open-loop schedule lets queue: due, and not taken by
/// a worker yet (operations waiting behind a lock queue here; at 1,000 ops/s
/// this is over four minutes of backlog). Beyond it the client is overloaded
/// and further operations of the schedule are dropped (counted, never
/// started), as a bounded queue would refuse them.
pub const QUEUE_CAPACITY: usize = 262_144;

/// `WorkloadPlan::rate` that makes the workload closed-loop: there is no
/// schedule and no pacer; every worker starts its next operation (class drawn
/// by weight, as the pacer does) as soon as the previous one finished, and
/// latency counts from that start. Used by `lockimpact bench` to measure peak
/// throughput; classes with their own `rate` do not run in a closed loop.
pub const CLOSED_LOOP: f64 = f64::INFINITY;

/// Reads the values of every `sample` parameter from the run database.
pub async fn bind_samples(classes: &mut [Class], client: &tokio_postgres::Client, path: &str) -> Result<()> {
    for class in classes.iter_mut() {
        for (i, p) in class.params.iter_mut().enumerate() {
            if let Param::Sample { table, column, limit, values } = p {
                let q = format!(
                    "SELECT DISTINCT ({col})::text AS v FROM {table} WHERE ({col}) IS NOT NULL ORDER BY 1 LIMIT {limit}",
                    col = quote_ident(column),
                    table = quote_qualified(table)
                );
                let rows = client.query(&q, &[]).await.map_err(|e| {
                    Error::input(format!(
                        "{path}: class {:?}: params[{i}] samples {table}.{column}: {}",
                        class.name,
                        describe_pg(&e)
                    ))
                })?;
                if rows.is_empty() {
                    return Err(Error::input(format!(
                        "{path}: class {:?}: params[{i}] samples {table}.{column}, which has no values in the dataset",
                        class.name
                    )));
                }
                *values = rows.iter().map(|r| Value::Text(r.get::<_, String>(0).into())).collect();
            }
        }
    }
    Ok(())
}

/// Sets `:scale` of pgbench script classes that use it without setting it,
/// as pgbench does: the number of rows in `pgbench_branches`.
pub async fn bind_scale(classes: &mut [Class], client: &tokio_postgres::Client, path: &str) -> Result<()> {
    for class in classes.iter_mut() {
        let Some(script) = class.script.as_mut() else { continue };
        if !script.unset_vars().iter().any(|v| v == "scale") {
            continue;
        }
        let n: i64 = client
            .query_one("SELECT count(*) FROM pgbench_branches", &[])
            .await
            .map_err(|e| {
                Error::input(format!(
                    "{path}: class {:?}: the script uses :scale, which is read from pgbench_branches as pgbench \
                     does, but: {}; load the dataset with pgbench -i or set vars = {{ scale = N }}",
                    class.name,
                    describe_pg(&e)
                ))
            })?
            .get(0);
        Arc::make_mut(script).vars.insert("scale".into(), script::Num::Int(n.max(1)));
    }
    Ok(())
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn quote_qualified(s: &str) -> String {
    s.split('.').map(quote_ident).collect::<Vec<_>>().join(".")
}

/// A running workload.
pub struct Workload {
    classes: Arc<Vec<Class>>,
    target_rate: f64,
    connections: u32,
    stop: CancellationToken,
    /// The workers' stop flag (set with `stop`).
    halt: Arc<AtomicBool>,
    clock: Arc<Clock>,
    /// The open-loop schedule; `None` in a closed loop and in a session replay.
    schedule: Option<Arc<pacer::Schedule>>,
    /// No schedule: workers start the next operation as the last one ends.
    closed: bool,
    /// A session replay, which drives its own sessions (no pacer, no workers).
    replay: Option<tokio::sync::oneshot::Receiver<replay::Replayed>>,
    workers: Vec<WorkerThread>,
    sink: Sink,
}

/// A worker's thread, seen from the workload: what it measured when it
/// ended, and how to end its connection if it does not end in time.
struct WorkerThread {
    done: tokio::sync::oneshot::Receiver<Measurement>,
    killed: Arc<AtomicBool>,
    killer: wire::Killer,
    /// Its connection to the standby, for `target = "replica"` classes.
    replica_killer: Option<wire::Killer>,
}

impl WorkerThread {
    /// Marks the worker killed (it records nothing more) and closes its connections.
    fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.killer.kill();
        if let Some(k) = &self.replica_killer {
            k.kill();
        }
    }
}

/// What every way of running the workload starts from.
struct Common {
    classes: Arc<Vec<Class>>,
    stop: CancellationToken,
    sink: Sink,
    /// The run database, as the workload's sessions connect to it.
    target: crate::pg::Target,
    /// The run database on the clone's first standby, for `target = "replica"` classes.
    replica: Option<crate::pg::Target>,
    clock: Arc<Clock>,
    roles: Arc<Roles>,
    sessions: Arc<Sessions>,
    slots: usize,
}

/// Opens the connections, prepares every class on every connection (a query on a
/// missing table fails here, naming the class), then starts the pacer (or,
/// with `CLOSED_LOOP`, lets the workers start their own operations); or
/// starts a session replay. Every session is registered in `sessions`, so
/// none outlives the run. `target` is the run database; `replica` the same
/// on the clone's first standby, for `target = "replica"` classes.
pub async fn start(
    plan: &WorkloadPlan,
    classes: Vec<Class>,
    (target, replica): (crate::pg::Target, Option<crate::pg::Target>),
    clock: Arc<Clock>,
    roles: Arc<Roles>,
    sessions: Arc<Sessions>,
    slots: usize,
) -> Result<Workload> {
    let common = Common {
        sink: Sink::new(clock.start, classes.len(), slots),
        classes: Arc::new(classes),
        stop: CancellationToken::new(),
        replica: replica.map(|r| workload_target(r, plan)),
        target: workload_target(target, plan),
        clock,
        roles,
        sessions,
        slots,
    };
    match &plan.replay {
        Some(r) => start_replay(plan, r.clone(), common).await,
        None => start_paced(plan, common).await,
    }
}

/// The run database as the workload connects to it: its application name,
/// and the statement timeout after the URL's own options (a search_path,
/// say), which it keeps.
fn workload_target(mut target: crate::pg::Target, plan: &WorkloadPlan) -> crate::pg::Target {
    target.config.application_name("lockimpact-workload");
    let options = format!(
        "{} -c statement_timeout={}",
        target.config.get_options().unwrap_or_default(),
        plan.statement_timeout.as_millis()
    );
    target.config.options(options.trim());
    target
}

/// Starts a session replay on its pool, in place of the pacer and workers.
async fn start_replay(plan: &WorkloadPlan, replay: Arc<replay::Replay>, c: Common) -> Result<Workload> {
    let replayed = replay.sessions.iter().filter(|s| !s.statements.is_empty()).count();
    let pool = replay::pool(c.target, plan.pool, replayed, c.roles, c.sessions).await?;
    let size = pool.status().max_size as u32;
    let driver = replay::Driver {
        replay,
        speed: plan.speed,
        pool,
        clock: c.clock.clone(),
        measurement: c.sink.measurement(),
        pool_wait: PoolRecord::new(size, c.slots),
        stop: c.stop.clone(),
    };
    let (done, result) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = done.send(replay::run(driver).await);
    });
    Ok(Workload {
        classes: c.classes,
        target_rate: plan.rate,
        connections: size,
        stop: c.stop,
        halt: Arc::new(AtomicBool::new(false)),
        clock: c.clock,
        schedule: None,
        closed: false,
        replay: Some(result),
        workers: Vec::new(),
        sink: c.sink,
    })
}

/// Starts one thread per connection (each connects, prepares, then waits
/// until every connection is ready before its first operation); then starts
/// the schedule, unless the loop is closed, and lets them go.
async fn start_paced(plan: &WorkloadPlan, c: Common) -> Result<Workload> {
    let closed = plan.rate == CLOSED_LOOP;
    let halt = Arc::new(AtomicBool::new(false));
    let mut starting = Vec::new();
    let mut go = Vec::new();
    for i in 0..plan.connections as usize {
        let (ready, go_tx) = spawn_worker(i, plan, &c, halt.clone())?;
        starting.push(ready);
        go.push(go_tx);
    }
    let mut workers = Vec::new();
    let mut failed = None;
    for r in starting {
        match r.await {
            Ok(Ok(w)) => workers.push(w),
            Ok(Err(e)) => failed = failed.or(Some(e)),
            Err(_) => failed = failed.or(Some(Error::env("a workload thread ended while connecting"))),
        }
    }
    if let Some(e) = failed {
        // Dropping `go` lets every opened worker end (and close its connection).
        return Err(e);
    }
    // The schedule starts now, every connection ready.
    let schedule = (!closed).then(|| Arc::new(pacer::Schedule::new(&c.classes, plan.rate, plan.seed)));
    let source = match &schedule {
        None => worker::Source::Closed {
            next: Arc::new(AtomicU64::new(0)),
            mix: pacer::Mix::new(&c.classes, plan.seed),
            clock: c.clock.clone(),
        },
        Some(s) => worker::Source::Paced { schedule: s.clone(), clock: c.clock.clone() },
    };
    for g in go {
        let _ = g.send(source.clone());
    }
    Ok(Workload {
        classes: c.classes,
        target_rate: plan.rate,
        connections: plan.connections,
        stop: c.stop,
        halt,
        clock: c.clock,
        schedule,
        closed,
        replay: None,
        workers,
        sink: c.sink,
    })
}

/// Worker `i`'s thread: it connects and prepares, says so on the returned
/// receiver, and runs once sent its source (dropping the sender ends it unrun).
#[allow(clippy::type_complexity)]
fn spawn_worker(
    i: usize,
    plan: &WorkloadPlan,
    c: &Common,
    stop: Arc<AtomicBool>,
) -> Result<(tokio::sync::oneshot::Receiver<Result<WorkerThread>>, std::sync::mpsc::Sender<worker::Source>)> {
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<worker::Source>();
    let (target, classes, roles, sessions) = (c.target.clone(), c.classes.clone(), c.roles.clone(), c.sessions.clone());
    let replica_target = c.replica.clone();
    let (path, seed, of, measurement) =
        (plan.path.display().to_string(), plan.seed, plan.connections, c.sink.measurement());
    std::thread::Builder::new()
        .name(format!("lockimpact-w{i}"))
        .spawn(move || {
            let (conn, killer, statements) =
                match open_connection(&target, (i + 1, of), &path, &classes, (&roles, &sessions)) {
                    Ok(o) => o,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
            let (replica, replica_killer) = match replica::open(replica_target.as_ref(), (i + 1, of), &path, &classes) {
                Ok(Some((conn, killer))) => (Some(conn), Some(killer)),
                Ok(None) => (None, None),
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let killed = Arc::new(AtomicBool::new(false));
            let _ = ready_tx.send(Ok(WorkerThread { done: done_rx, killed: killed.clone(), killer, replica_killer }));
            let worker = Worker { conn, statements, classes, seed, measurement, stop, killed, replica };
            if let Ok(source) = go_rx.recv() {
                let _ = done_tx.send(worker.run(source));
            }
        })
        .map_err(|e| Error::env(format!("cannot start a workload thread: {e}")))?;
    Ok((ready_rx, go_tx))
}

/// Runs on a worker's thread: opens its connection (registered in `roles`
/// and `sessions`) and prepares every class's statements; returns the
/// connection, its killer and the statement names.
fn open_connection(
    target: &crate::pg::Target,
    (n, of): (usize, u32),
    path: &str,
    classes: &[Class],
    (roles, sessions): (&Roles, &Sessions),
) -> Result<(wire::Conn, wire::Killer, Vec<Vec<String>>)> {
    let fail = |e: wire::DbError| Error::db(format!("cannot open workload connection {n} of {of}: {e}"));
    let mut conn = wire::Conn::open(target).map_err(fail)?;
    sessions.add_key(conn.pid(), conn.secret_key(), &format!("workload connection {n}"));
    let killer = conn.killer().map_err(fail)?;
    let mut statements = Vec::with_capacity(classes.len());
    for (ci, c) in classes.iter().enumerate() {
        let mut prepared = Vec::new();
        if c.on_replica {
            // Prepared on the standby's connection (`replica::open`), under the same name.
            statements.push(replica::statement_names(ci, c));
            continue;
        }
        for (si, sql) in c.statements().into_iter().enumerate() {
            let name = format!("li_{ci}_{si}");
            conn.prepare(&name, sql).map_err(|e| {
                Error::input(format!("{path}: class {:?}: the clone rejects its SQL {sql:?}: {e}", c.name))
            })?;
            prepared.push(name);
        }
        statements.push(prepared);
    }
    roles.add_workload(conn.pid());
    Ok((conn, killer, statements))
}

impl Workload {
    /// Operations waiting for a free connection right now.
    pub fn queued(&self) -> usize {
        self.schedule.as_ref().map_or(0, |s| s.queued(Instant::now()))
    }

    /// Per-second counters, for the live status line.
    pub fn seconds(&self) -> Arc<Mutex<Seconds>> {
        self.sink.seconds()
    }

    /// Ends the schedule, lets the workers finish what is queued for up to
    /// `grace`, then stops them and merges their measurements.
    pub async fn finish(mut self, grace: Duration) -> WorkloadRecord {
        self.halt_all();
        let replay = self.replay.is_some();
        let mut measurements = Vec::new();
        let (mut pacer, mut pool) = (None, None);
        if let Some(r) = self.replay.take()
            && let Ok(r) = r.await
        {
            measurements.push(r.measurement);
            (pacer, pool) = (Some(r.pacer), Some(r.pool));
        }
        let (mut ended, mut unfinished) = self.end_workers(grace).await;
        if let Some(schedule) = &self.schedule {
            let mut lag = crate::run_record::new_hist();
            for h in ended.iter_mut().filter_map(|m| m.lag.take()) {
                let _ = lag.add(&h);
            }
            let marks = pacer::Marks::new(&self.clock);
            let (left, result) = schedule.finish(&marks, lag);
            let (m, n) = self.waited_in_queue(&left, &marks);
            ended.push(m);
            unfinished += n;
            pacer = Some(result);
        }
        measurements.extend(ended);
        let pacer = pacer.unwrap_or_else(|| pacer::PacerResult {
            issued_measured: 0,
            dropped: 0,
            schedule_lag: crate::run_record::new_hist(),
            replay_schedule: None,
        });
        let mut rec = WorkloadRecord {
            classes: self.classes.iter().map(|c| c.name.clone()).collect(),
            target_rate: self.target_rate
                + self
                    .classes
                    .iter()
                    .filter_map(|c| if let file::Pace::Rate(r) = c.pace { Some(r) } else { None })
                    .sum::<f64>(),
            connections: self.connections,
            replay,
            pool,
            issued_measured: pacer.issued_measured,
            dropped: pacer.dropped,
            replay_schedule: pacer.replay_schedule,
            schedule_lag: pacer.schedule_lag,
            ..Default::default()
        };
        unfinished += self.sink.merge(measurements, &mut rec);
        rec.unfinished = unfinished;
        if self.closed {
            // No schedule: what was issued is what finished, or was cut short.
            rec.issued_measured = rec.finished_measured() + unfinished;
        }
        rec
    }

    /// Waits for the workers until `grace` has passed, kills those still
    /// running; returns what they measured (in the workers' order) and how
    /// many did not end even when killed.
    async fn end_workers(&mut self, grace: Duration) -> (Vec<Measurement>, u64) {
        let deadline = tokio::time::Instant::now() + grace;
        let mut ended = Vec::new();
        for mut w in std::mem::take(&mut self.workers) {
            match tokio::time::timeout_at(deadline, &mut w.done).await {
                Ok(m) => ended.push((m.ok(), None)),
                Err(_) => {
                    w.kill();
                    ended.push((None, Some(w)));
                }
            }
        }
        // A killed worker ends at once (its socket is shut down), counting the
        // operation it was running as cut short; wait for it, so that nothing
        // is recorded or taken from the queue after the counts are made.
        let mut unfinished = 0;
        for (m, killed) in &mut ended {
            let Some(w) = killed else { continue };
            match tokio::time::timeout(Duration::from_secs(2), &mut w.done).await {
                Ok(got) => *m = got.ok(),
                Err(_) => unfinished += 1,
            }
        }
        (ended.into_iter().filter_map(|(m, _)| m).collect(), unfinished)
    }

    /// Counts the operations left in the queue (due, never taken), each
    /// recorded in latency with the time it has waited since its intended
    /// start, in the slot it was intended in.
    fn waited_in_queue(&self, left: &[(usize, Instant)], marks: &pacer::Marks) -> (Measurement, u64) {
        let now = Instant::now();
        let mut m = self.sink.measurement();
        for &(class, intended) in left {
            m.latency(class, marks.slot_at(intended), now.saturating_duration_since(intended).as_micros() as u64);
        }
        (m, left.len() as u64)
    }

    /// Ends the schedule (nothing due from now on is issued) and tells the
    /// pacer-less workers and a replay to stop.
    fn halt_all(&self) {
        if let Some(s) = &self.schedule {
            s.end(Instant::now());
        }
        self.halt.store(true, Ordering::Release);
        self.stop.cancel();
    }
}

impl Drop for Workload {
    /// A workload dropped without `finish` (an error, Ctrl-C) stops its pacer
    /// thread too, and ends its workers' connections.
    fn drop(&mut self) {
        self.halt_all();
        for w in &self.workers {
            w.kill();
        }
    }
}

/// Whether a slot's operations count as measured (everything but warmup).
pub fn measured(slot: Slot) -> bool {
    slot != Slot::Warmup
}
