//! The workload: what to replay (`plan`), query classes from the workload
//! file (`file`), parameter
//! generators (`params`), pgbench script classes (`script`), the open-loop
//! pacer (`pacer`) and workers (`worker`), each on its own thread with its own
//! connection (`wire`); or, instead of pacer and workers, a session replay
//! (`replay`) on a bounded deadpool-postgres pool. `start` launches it;
//! `finish` stops it and merges what was measured into a `WorkloadRecord`.
//!
//! The paced workers keep their own connections instead of a pool: each
//! worker sends every operation on one connection for the whole run anyway,
//! so a pool would only add a checkout per operation and the async runtime
//! between the socket and the measurement; a blocking socket per thread
//! measured 1.10× pgbench's closed-loop throughput where tokio-postgres on
//! the runtime reached 0.95 (README, Performance). A replay needs the pool:
//! its sessions come and go, and one connection each would exhaust
//! `max_connections`.

pub mod file;
pub mod pacer;
pub mod params;
pub mod plan;
pub mod replay;
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
use crate::run_record::{ClassSecond, Hist, PoolRecord, SecondRecord, WorkloadRecord};
use crate::timeline::{Clock, Slot};
use file::Class;
use params::{Param, Value};
pub use plan::WorkloadPlan;
pub use roles::Roles;
use worker::{Latencies, Worker, WorkerStats};

/// Most operations the pacer's queue holds (about 50 bytes each, allocated
/// up front). Operations waiting behind a lock queue here: at 1,000 ops/s
/// this is over four minutes of backlog. Beyond it the client is overloaded
/// and further operations of the schedule are dropped (counted, never
/// started), so memory stays bounded at any rate.
pub const QUEUE_CAPACITY: usize = 262_144;

/// `WorkloadPlan::rate` that makes the workload closed-loop: there is no
/// schedule and no pacer; every worker starts its next operation (class drawn
/// by weight, as the pacer does) as soon as the previous one finished, and
/// latency counts from that start. Used by `lockimpact bench` to measure peak
/// throughput; classes with their own `rate` do not run in a closed loop.
pub const CLOSED_LOOP: f64 = f64::INFINITY;

/// Per-second operations, errors and latency, by completion time, for all
/// classes together and per class. Only the current second keeps histograms;
/// finished seconds keep a few numbers.
#[derive(Debug)]
pub struct Seconds {
    start: Instant,
    current: u64,
    /// Per class: this second's latency and operations. The all-classes
    /// figures are merged from them when the second closes, off the hot path.
    hists: Vec<Hist>,
    ops: Vec<u64>,
    /// Scratch for the merge.
    all: Hist,
    errors: u64,
    done: Vec<SecondRecord>,
}

impl Seconds {
    pub fn new(start: Instant, classes: usize) -> Seconds {
        let hist = Hist::new_with_bounds(1, 3_600_000_000, 2).expect("valid bounds");
        Seconds {
            start,
            current: 0,
            hists: vec![hist.clone(); classes],
            ops: vec![0; classes],
            all: hist,
            errors: 0,
            done: Vec::new(),
        }
    }

    /// Closes every second before `now`.
    pub fn advance(&mut self, now: Instant) {
        let sec = now.saturating_duration_since(self.start).as_secs();
        let quantiles =
            |h: &Hist| if h.is_empty() { (0, 0) } else { (h.value_at_quantile(0.5), h.value_at_quantile(0.99)) };
        while self.current < sec {
            self.all.reset();
            let mut classes = Vec::with_capacity(self.hists.len());
            for (h, ops) in self.hists.iter_mut().zip(self.ops.iter_mut()) {
                let _ = self.all.add(&*h);
                let (p50_us, p99_us) = quantiles(h);
                classes.push(ClassSecond { ops: *ops, p50_us, p99_us });
                h.reset();
                *ops = 0;
            }
            let (p50_us, p99_us) = quantiles(&self.all);
            let ops = classes.iter().map(|c| c.ops).sum();
            self.done.push(SecondRecord { ops, errors: self.errors, p50_us, p99_us, classes });
            self.errors = 0;
            self.current += 1;
        }
    }

    /// One finished operation of `class` and its latency (µs) from the
    /// intended start, whether it succeeded (`ok`) or failed.
    pub fn record(&mut self, now: Instant, class: usize, latency: u64, ok: bool) {
        self.advance(now);
        self.ops[class] += 1;
        let _ = self.hists[class].record(latency.max(1));
        if !ok {
            self.errors += 1;
        }
    }

    /// The last finished second, for the live status line.
    pub fn last(&self) -> Option<&SecondRecord> {
        self.done.last()
    }
}

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
    /// The pacer's queue; `None` in a closed loop and in a session replay.
    rx: Option<async_channel::Receiver<pacer::Op>>,
    /// No schedule: workers start the next operation as the last one ends.
    closed: bool,
    /// A session replay drives its own sessions (no pacer queue, no workers).
    replay: bool,
    pacer: Option<tokio::sync::oneshot::Receiver<pacer::PacerResult>>,
    workers: Vec<WorkerThread>,
    /// Operations of killed workers, cut short.
    cut: Arc<AtomicU64>,
    stats: Vec<Arc<Mutex<WorkerStats>>>,
    /// Latency per class and slot, merged over the workers.
    latencies: Latencies,
    seconds: Arc<Mutex<Seconds>>,
    /// A session replay's pool: its size and the waits for a connection.
    pool: Option<Arc<Mutex<PoolRecord>>>,
}

/// A worker's thread, seen from the workload: when it ended, and how to end
/// its connection if it does not end in time.
struct WorkerThread {
    done: tokio::sync::oneshot::Receiver<()>,
    killed: Arc<AtomicBool>,
    killer: wire::Killer,
}

impl WorkerThread {
    /// Marks the worker killed (it records nothing more) and closes its connection.
    fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.killer.kill();
    }
}

/// Opens the connections, prepares every class on every connection (a query on a
/// missing table fails here, naming the class), then starts the pacer (or,
/// with `CLOSED_LOOP`, lets the workers start their own operations). Every
/// session is registered in `sessions`, so none outlives the run.
pub async fn start(
    plan: &WorkloadPlan,
    classes: Vec<Class>,
    target: crate::pg::Target,
    clock: Arc<Clock>,
    roles: Arc<Roles>,
    sessions: Arc<Sessions>,
    slots: usize,
) -> Result<Workload> {
    let classes = Arc::new(classes);
    let stop = CancellationToken::new();
    let seconds = Arc::new(Mutex::new(Seconds::new(clock.start, classes.len())));
    let closed = plan.rate == CLOSED_LOOP;
    let (tx, rx) = async_channel::bounded(QUEUE_CAPACITY);
    let latencies = worker::latencies(classes.len(), slots);
    let source = if closed {
        worker::Source::Closed {
            next: Arc::new(AtomicU64::new(0)),
            mix: pacer::Mix::new(&classes, plan.seed),
            clock: clock.clone(),
        }
    } else {
        worker::Source::Paced(rx.clone())
    };

    let mut target = target;
    target.config.application_name("lockimpact-workload");
    // After the URL's own options (a search_path, say), which it keeps.
    let options = format!(
        "{} -c statement_timeout={}",
        target.config.get_options().unwrap_or_default(),
        plan.statement_timeout.as_millis()
    );
    target.config.options(options.trim());
    let path = plan.path.display().to_string();
    if let Some(replay) = &plan.replay {
        let s = Arc::new(Mutex::new(WorkerStats::new(latencies.clone())));
        let replayed = replay.sessions.iter().filter(|s| !s.statements.is_empty()).count();
        let pool = replay::pool(target, plan.pool, replayed, roles, sessions).await?;
        let size = pool.status().max_size as u32;
        let pool_wait = Arc::new(Mutex::new(PoolRecord::new(size, slots)));
        let cut = Arc::new(AtomicU64::new(0));
        let driver = replay::Driver {
            replay: replay.clone(),
            speed: plan.speed,
            pool,
            clock,
            stats: s.clone(),
            seconds: seconds.clone(),
            pool_wait: pool_wait.clone(),
            stop: stop.clone(),
            cut: cut.clone(),
        };
        // The replay drives its own sessions in place of the pacer and workers.
        let (done, result) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let _ = done.send(replay::run(driver).await);
        });
        return Ok(Workload {
            classes,
            target_rate: plan.rate,
            connections: size,
            stop,
            rx: None,
            closed: false,
            replay: true,
            pacer: Some(result),
            workers: Vec::new(),
            cut,
            stats: vec![s],
            latencies,
            seconds,
            pool: Some(pool_wait),
        });
    }
    // One thread per connection: it connects, prepares, waits for `go` (every
    // connection is ready before the first operation starts), then runs.
    let mut starting = Vec::new();
    let mut stats = Vec::new();
    let mut go = Vec::new();
    let cut = Arc::new(AtomicU64::new(0));
    for i in 0..plan.connections as usize {
        let s = Arc::new(Mutex::new(WorkerStats::new(latencies.clone())));
        stats.push(s.clone());
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        go.push(go_tx);
        let (target, path, classes, roles, sessions, seconds, stop, source, cut) = (
            target.clone(),
            path.clone(),
            classes.clone(),
            roles.clone(),
            sessions.clone(),
            seconds.clone(),
            stop.clone(),
            source.clone(),
            cut.clone(),
        );
        let seed = plan.seed;
        let of = plan.connections;
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
                let killed = Arc::new(AtomicBool::new(false));
                let _ = ready_tx.send(Ok(WorkerThread { done: done_rx, killed: killed.clone(), killer }));
                let worker = Worker { conn, statements, classes, seed, stats: s, seconds, stop, killed, cut };
                if go_rx.recv().is_ok() {
                    worker.run(source);
                }
                let _ = done_tx.send(());
            })
            .map_err(|e| Error::env(format!("cannot start a workload thread: {e}")))?;
        starting.push(ready_rx);
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
    for g in go {
        let _ = g.send(());
    }
    // When the pacer cannot start, the workers (already told to go) are stopped.
    let pacer = (!closed)
        .then(|| pacer::spawn(classes.clone(), plan.rate, plan.seed, clock, tx, stop.clone()))
        .transpose()
        .inspect_err(|_| stop.cancel())?;
    Ok(Workload {
        classes,
        target_rate: plan.rate,
        connections: plan.connections,
        stop,
        rx: (!closed).then_some(rx),
        closed,
        replay: false,
        pacer,
        workers,
        cut,
        stats,
        latencies,
        seconds,
        pool: None,
    })
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
        self.rx.as_ref().map_or(0, |rx| rx.len())
    }

    /// Per-second counters, for the live status line.
    pub fn seconds(&self) -> Arc<Mutex<Seconds>> {
        self.seconds.clone()
    }

    /// Stops the pacer, lets the workers finish what is queued for up to
    /// `grace`, then stops them and merges their measurements.
    pub async fn finish(mut self, grace: Duration) -> WorkloadRecord {
        self.stop.cancel();
        let pacer = match self.pacer.take() {
            Some(p) => p.await.ok(),
            None => None,
        }
        .unwrap_or_else(|| pacer::PacerResult {
            issued_measured: 0,
            dropped: 0,
            schedule_lag: crate::run_record::new_hist(),
            replay_schedule: None,
        });
        let deadline = tokio::time::Instant::now() + grace;
        let mut unfinished = 0u64;
        let mut killed = Vec::new();
        for mut w in std::mem::take(&mut self.workers) {
            if tokio::time::timeout_at(deadline, &mut w.done).await.is_err() {
                w.kill();
                killed.push(w);
            }
        }
        // A killed worker ends at once (its socket is shut down), counting the
        // operation it was running in `cut`; wait for it, so that nothing is
        // recorded or taken from the queue after the counts below.
        for mut w in killed {
            if tokio::time::timeout(Duration::from_secs(2), &mut w.done).await.is_err() {
                unfinished += 1;
            }
        }
        unfinished += self.cut.load(Ordering::Relaxed);
        if let Some(rx) = &self.rx {
            rx.close();
            unfinished += self.waited_in_queue(rx);
        }

        let mut rec = WorkloadRecord {
            classes: self.classes.iter().map(|c| c.name.clone()).collect(),
            target_rate: self.target_rate
                + self
                    .classes
                    .iter()
                    .filter_map(|c| if let file::Pace::Rate(r) = c.pace { Some(r) } else { None })
                    .sum::<f64>(),
            connections: self.connections,
            replay: self.replay,
            pool: self.pool.as_ref().map(|p| p.lock().expect("pool wait").clone()),
            latency: Vec::new(),
            issued_measured: pacer.issued_measured,
            dropped: pacer.dropped,
            replay_schedule: pacer.replay_schedule,
            finished: vec![0; self.latencies.lock().expect("latencies").first().map_or(0, Vec::len)],
            unfinished,
            schedule_lag: pacer.schedule_lag,
            ..Default::default()
        };
        for s in &self.stats {
            let mut s = s.lock().expect("worker stats");
            s.flush();
            for ((slot, c, code), (n, msg)) in &s.errors {
                let e = rec.slot_errors.entry((*slot, *c, code.clone())).or_insert((0, msg.clone()));
                e.0 += n;
            }
            for (total, n) in rec.finished.iter_mut().zip(&s.finished) {
                *total += n;
            }
        }
        rec.latency = std::mem::take(&mut *self.latencies.lock().expect("latencies"));
        if self.closed {
            // No schedule: what was issued is what finished, or was cut short.
            rec.issued_measured = rec.finished_measured() + unfinished;
        }
        let mut secs = self.seconds.lock().expect("seconds");
        secs.advance(Instant::now());
        rec.seconds = std::mem::take(&mut secs.done);
        rec
    }
}

impl Workload {
    /// Counts the operations left in the (closed) queue, each recorded in
    /// latency with the time it has waited since its intended start.
    fn waited_in_queue(&self, rx: &async_channel::Receiver<pacer::Op>) -> u64 {
        let now = Instant::now();
        let mut stats = WorkerStats::new(self.latencies.clone());
        let mut n = 0;
        while let Ok(op) = rx.try_recv() {
            stats.latency(op.class, op.slot, now.saturating_duration_since(op.intended).as_micros() as u64);
            n += 1;
        }
        stats.flush();
        n
    }
}

impl Drop for Workload {
    /// A workload dropped without `finish` (an error, Ctrl-C) stops its pacer
    /// thread too, and ends its workers' connections.
    fn drop(&mut self) {
        self.stop.cancel();
        for w in &self.workers {
            w.kill();
        }
    }
}

/// Whether a slot's operations count as measured (everything but warmup).
pub fn measured(slot: Slot) -> bool {
    slot != Slot::Warmup
}
