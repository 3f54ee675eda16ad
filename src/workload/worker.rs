//! A workload worker: one thread, one connection (`wire`), its prepared
//! statements, and the histogram of the step it is recording now (merged into
//! the workload's one histogram per step and class when the step changes). It
//! takes operations from the pacer's queue, runs them, and records latency
//! from the intended start, whether the operation succeeded or failed. Errors
//! are also counted with their SQLSTATE and never stop the run; a worker whose
//! connection is killed (`Workload::finish` after its grace) counts its
//! operation as cut short, with the time it had waited, and ends.
//!
//! Operations come from the pacer's queue, or, in a closed loop, from the
//! worker itself: the next operation number of a shared counter, its class
//! drawn by the same `Mix`, started as soon as the previous one finished.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Seconds;
use super::file::Class;
use super::pacer::{Mix, Op};
use super::params::{Rng, Value};
use super::script::{Command, Num, Script, sleep_for};
use super::wire::{Conn, DbError};
use crate::run_record::{Hist, new_hist};
use crate::timeline::{Clock, Slot};

/// Salt so parameter draws are independent of the pacer's class choice.
const PARAM_SALT: u64 = 0x005E_ED0F_9A9A;

/// Latency per class and slot, merged over every worker: one histogram per
/// step and class, whatever the number of connections.
pub type Latencies = Arc<Mutex<Vec<Vec<Option<Hist>>>>>;

/// A new, empty `Latencies` for `classes` × `slots`.
pub fn latencies(classes: usize, slots: usize) -> Latencies {
    Arc::new(Mutex::new(vec![vec![None; slots]; classes]))
}

/// What one worker measured; read after the worker ends (or is aborted).
/// Latency is kept locally for the slot being recorded only, and merged into
/// the shared `Latencies` when the slot changes (and by `flush`), so memory
/// grows with steps × classes, not steps × classes × connections.
#[derive(Debug)]
pub struct WorkerStats {
    /// The slot recorded now and its per-class latency (µs), not merged yet.
    local: Option<(Slot, Vec<Option<Hist>>)>,
    shared: Latencies,
    classes: usize,
    /// (slot index, class, SQLSTATE) → (count, first message).
    pub errors: BTreeMap<(usize, usize, String), (u64, String)>,
    /// Per slot: operations that finished, ok or error.
    pub finished: Vec<u64>,
}

impl WorkerStats {
    pub fn new(shared: Latencies) -> WorkerStats {
        let (classes, slots) = {
            let shared = shared.lock().expect("latencies");
            (shared.len(), shared.first().map_or(0, Vec::len))
        };
        WorkerStats { local: None, shared, classes, errors: BTreeMap::new(), finished: vec![0; slots] }
    }

    /// Counts a failure of `class` in `slot` under its SQLSTATE, keeping the first message.
    pub fn error(&mut self, slot: Slot, class: usize, code: String, message: impl FnOnce() -> String) {
        self.errors.entry((slot.index(), class, code)).or_insert_with(|| (0, message())).0 += 1;
    }

    /// Records one latency (µs) of `class` in `slot`, ok or not.
    pub fn latency(&mut self, class: usize, slot: Slot, us: u64) {
        if self.local.as_ref().is_some_and(|(s, _)| *s != slot) {
            self.flush();
        }
        let (_, hists) = self.local.get_or_insert_with(|| (slot, vec![None; self.classes]));
        if let Some(h) = hists.get_mut(class) {
            let _ = h.get_or_insert_with(new_hist).record(us.max(1));
        }
    }

    /// Merges the local slot's latency into the shared histograms.
    pub fn flush(&mut self) {
        let Some((slot, hists)) = self.local.take() else { return };
        let mut shared = self.shared.lock().expect("latencies");
        for (c, h) in hists.into_iter().enumerate() {
            let (Some(h), Some(slots)) = (h, shared.get_mut(c)) else { continue };
            match slots.get_mut(slot.index()) {
                Some(Some(into)) => {
                    let _ = into.add(&h);
                }
                Some(empty) => *empty = Some(h),
                None => {}
            }
        }
    }

    /// One finished operation of `class` in `slot`: its latency (µs) from
    /// the intended start, ok or not, and on failure its SQLSTATE and message.
    pub fn finished(
        &mut self,
        class: usize,
        slot: Slot,
        latency: u64,
        outcome: Result<(), (String, impl FnOnce() -> String)>,
    ) {
        self.latency(class, slot, latency);
        if let Err((code, message)) = outcome {
            self.error(slot, class, code, message);
        }
        if let Some(n) = self.finished.get_mut(slot.index()) {
            *n += 1;
        }
    }
}

/// Why an operation failed: the server said no, or a script's expression could not be evaluated.
#[derive(Debug)]
enum ScriptError {
    Db(DbError),
    Eval(String),
}

impl ScriptError {
    /// The SQLSTATE, or `XXSCR` for a script expression error.
    fn code(&self) -> String {
        match self {
            ScriptError::Db(e) => e.code.clone(),
            ScriptError::Eval(_) => "XXSCR".into(),
        }
    }
    fn message(&self) -> String {
        match self {
            ScriptError::Db(e) => e.message.clone(),
            ScriptError::Eval(m) => format!("pgbench script: {m}"),
        }
    }
    fn closed(&self) -> bool {
        matches!(self, ScriptError::Db(e) if e.closed)
    }
}

/// Where a worker's operations come from.
#[derive(Clone)]
pub enum Source {
    /// The pacer's queue (open loop); ends when the queue closes.
    Paced(async_channel::Receiver<Op>),
    /// Closed loop: the next operation number, its class from `mix`, started
    /// now; ends when the worker's `stop` fires.
    Closed { next: Arc<AtomicU64>, mix: Mix, clock: Arc<Clock> },
}

pub struct Worker {
    pub conn: Conn,
    /// Per class: the name of its prepared statement, or of its script's statements in order.
    pub statements: Vec<Vec<String>>,
    pub classes: Arc<Vec<Class>>,
    pub seed: u64,
    pub stats: Arc<Mutex<WorkerStats>>,
    pub seconds: Arc<Mutex<Seconds>>,
    pub stop: CancellationToken,
    /// Set before the connection is killed: the operation it was running is
    /// not recorded but counted in `cut`, and the worker ends.
    pub killed: Arc<AtomicBool>,
    /// Operations cut short by a kill, over all workers.
    pub cut: Arc<AtomicU64>,
}

impl Worker {
    /// Runs operations until the source ends (blocking; on the worker's own thread).
    pub fn run(mut self, source: Source) {
        let mut params: Vec<Value> = Vec::new();
        let classes = self.classes.clone();
        loop {
            let op = match &source {
                Source::Paced(rx) => match rx.recv_blocking() {
                    Ok(op) => op,
                    Err(_) => break,
                },
                Source::Closed { next, mix, clock } => {
                    if self.stop.is_cancelled() {
                        break;
                    }
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    Op { seq, class: mix.class(seq), intended: Instant::now(), slot: clock.current() }
                }
            };
            let class = &classes[op.class];
            let mut rng = Rng::for_op(self.seed ^ PARAM_SALT, op.seq);
            params.clear();
            params.extend(class.params.iter().map(|p| p.draw(&mut rng)));
            let result = match (&class.script, class.hold) {
                (Some(script), _) => self.script(op.class, script, &mut rng),
                (None, None) => self
                    .conn
                    .execute(&self.statements[op.class][0], &params)
                    .map(|_| Instant::now())
                    .map_err(ScriptError::Db),
                (None, Some(_)) => self.long_transaction(op.class, &params).map_err(ScriptError::Db),
            };
            let now = Instant::now();
            if self.killed.load(Ordering::Acquire) {
                // Cut short: it counts with the time it has waited so far.
                let waited = now.saturating_duration_since(op.intended).as_micros() as u64;
                self.stats.lock().expect("worker stats").latency(op.class, op.slot, waited);
                self.cut.fetch_add(1, Ordering::Relaxed);
                break;
            }
            let lost = result.as_ref().is_err_and(ScriptError::closed);
            let done = *result.as_ref().unwrap_or(&now);
            let latency = done.saturating_duration_since(op.intended).as_micros() as u64;
            let ok = result.is_ok();
            let outcome = match &result {
                Ok(_) => Ok(()),
                Err(e) => Err((e.code(), || e.message())),
            };
            self.stats.lock().expect("worker stats").finished(op.class, op.slot, latency, outcome);
            self.seconds.lock().expect("seconds").record(done, op.class, latency, ok);
            if lost && matches!(source, Source::Closed { .. }) {
                break; // nothing more can run on this connection; a closed loop would spin
            }
        }
    }

    /// Sleeps until `deadline` or until the workload stops.
    fn sleep_until(&self, deadline: Instant) {
        loop {
            let now = Instant::now();
            if now >= deadline || self.stop.is_cancelled() {
                return;
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(5)));
        }
    }

    /// One run of a pgbench script: `\\set`, `\\sleep` and its statements in
    /// order. A failed statement (or expression) ends the run and rolls back
    /// an open transaction.
    fn script(&mut self, class: usize, script: &Script, rng: &mut Rng) -> Result<Instant, ScriptError> {
        let mut vars: HashMap<String, Num> = script.vars.iter().map(|(k, v)| (k.clone(), *v)).collect();
        let mut values: Vec<Value> = Vec::new();
        let mut next = 0;
        for cmd in &script.commands {
            match cmd {
                Command::Set { var, expr } => {
                    let v = expr.eval(&vars, rng).map_err(|e| ScriptError::Eval(e.message))?;
                    vars.insert(var.clone(), v);
                }
                Command::Sleep { amount, unit_us } => {
                    let d = sleep_for(amount, *unit_us, &vars, rng).map_err(|e| ScriptError::Eval(e.message))?;
                    self.sleep_until(Instant::now() + d);
                }
                Command::Sql { params, .. } => {
                    values.clear();
                    for p in params {
                        values.push(vars.get(p).ok_or_else(|| ScriptError::Eval(format!(":{p} is not set")))?.value());
                    }
                    let stmt = &self.statements[class][next];
                    next += 1;
                    if let Err(e) = self.conn.execute(stmt, &values) {
                        if !self.conn.is_closed() {
                            let _ = self.conn.simple("ROLLBACK");
                        }
                        return Err(ScriptError::Db(e));
                    }
                }
            }
        }
        Ok(Instant::now())
    }

    /// BEGIN, run the statement, hold the transaction open, COMMIT. Returns
    /// when the statement finished: its latency is recorded, not the hold.
    fn long_transaction(&mut self, class: usize, params: &[Value]) -> Result<Instant, DbError> {
        let hold = self.classes[class].hold.unwrap_or_default();
        self.conn.simple("BEGIN")?;
        if let Err(e) = self.conn.execute(&self.statements[class][0], params) {
            if !self.conn.is_closed() {
                let _ = self.conn.simple("ROLLBACK");
            }
            return Err(e);
        }
        let read_done = Instant::now();
        self.sleep_until(read_done + hold);
        self.conn.simple("COMMIT")?;
        Ok(read_done)
    }
}
