//! A workload worker: one thread, one connection (`wire`), its prepared
//! statements, and its own `Measurement` (handed back when it ends). It
//! takes operations from the pacer's queue, runs them, and records latency
//! from the intended start, whether the operation succeeded or failed. Errors
//! are also counted with their SQLSTATE and never stop the run; a worker whose
//! connection is killed (`Workload::finish` after its grace) counts its
//! operation as cut short, with the time it had waited, and ends.
//!
//! Operations come from the pacer's queue, or, in a closed loop, from the
//! worker itself: the next operation number of a shared counter, its class
//! drawn by the same `Mix`, started as soon as the previous one finished.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::file::Class;
use super::measurement::Measurement;
use super::pacer::{Mix, Op};
use super::params::{Rng, Value};
use super::script::{Command, Num, Script, sleep_for};
use super::wire::{Conn, DbError};
use crate::timeline::Clock;

/// Salt so parameter draws are independent of the pacer's class choice.
const PARAM_SALT: u64 = 0x005E_ED0F_9A9A;

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
    /// What this worker measured; handed back by `run`.
    pub measurement: Measurement,
    pub stop: CancellationToken,
    /// Set before the connection is killed: the operation it was running is
    /// counted as cut short, not as finished, and the worker ends.
    pub killed: Arc<AtomicBool>,
    /// The connection to the standby, for `target = "replica"` classes.
    pub replica: Option<Conn>,
}

impl Worker {
    /// Runs operations until the source ends (blocking; on the worker's own
    /// thread); returns what it measured.
    pub fn run(mut self, source: Source) -> Measurement {
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
                (None, None) => match (class.on_replica, self.replica.as_mut()) {
                    (true, Some(replica)) => replica,
                    _ => &mut self.conn,
                }
                .execute(&self.statements[op.class][0], &params)
                .map(|_| Instant::now())
                .map_err(ScriptError::Db),
                (None, Some(_)) => self.long_transaction(op.class, &params).map_err(ScriptError::Db),
            };
            let now = Instant::now();
            if self.killed.load(Ordering::Acquire) {
                // Cut short: it counts with the time it has waited so far.
                let waited = now.saturating_duration_since(op.intended).as_micros() as u64;
                self.measurement.cut(op.class, op.slot, waited);
                break;
            }
            let lost = result.as_ref().is_err_and(ScriptError::closed);
            let done = *result.as_ref().unwrap_or(&now);
            let latency = done.saturating_duration_since(op.intended).as_micros() as u64;
            let outcome = match &result {
                Ok(_) => Ok(()),
                Err(e) => Err((e.code(), || e.message())),
            };
            self.measurement.finished((op.class, op.slot), done, latency, outcome);
            if lost && matches!(source, Source::Closed { .. }) {
                break; // nothing more can run on this connection; a closed loop would spin
            }
        }
        self.measurement
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
