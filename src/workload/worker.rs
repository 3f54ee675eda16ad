//! A workload worker: one thread, one connection (`wire`), its prepared
//! statements, and its own `Measurement` (handed back when it ends). It
//! takes operations from the pacer's queue, runs them, and records latency
//! from the intended start, whether the operation succeeded or failed. Errors
//! are also counted with their SQLSTATE and never stop the run; a worker whose
//! connection is killed (`Workload::finish` after its grace) counts its
//! operation as cut short, with the time it had waited, and ends.
//!
//! Operations come from the open-loop `Schedule` (the worker takes the next
//! one due and waits for its intended start if it is early), or, in a closed
//! loop, from the worker itself: the next operation number of a shared
//! counter (taken `BLOCK` at a time), its class drawn by the same `Mix`,
//! started as soon as the previous one finished.
//!
//! Per operation the worker reads the clock once when it ends (that reading
//! is also the next closed-loop operation's start), and once more in the
//! open loop after waiting for an intended start; it takes no lock another
//! thread takes per operation (the stop flag is an atomic, the measurement
//! its own).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::file::Class;
use super::measurement::Measurement;
use super::pacer::{Marks, Mix, Op, Schedule};
use super::params::{Rng, Value};
use super::script::{Command, Num, Script, sleep_for};
use super::wire::{Conn, DbError};
use crate::timeline::Clock;

/// Salt so parameter draws are independent of the pacer's class choice.
const PARAM_SALT: u64 = 0x005E_ED0F_9A9A;

/// Closed loop: operation numbers a worker takes from the shared counter at
/// once (one atomic add per `BLOCK` operations instead of one per operation).
const BLOCK: u64 = 64;

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
    /// The open-loop schedule; ends when the schedule ended (nothing more due).
    Paced { schedule: Arc<Schedule>, clock: Arc<Clock> },
    /// Closed loop: the next operation number, its class from `mix`, started
    /// now; ends when the worker's `stop` is set.
    Closed { next: Arc<AtomicU64>, mix: Mix, clock: Arc<Clock> },
}

/// A worker's own state of its source.
enum Feed {
    Paced { schedule: Arc<Schedule>, clock: Arc<Clock>, marks: Marks },
    Closed { next: Arc<AtomicU64>, mix: Mix, clock: Arc<Clock>, block: Range<u64> },
}

impl Feed {
    fn new(source: Source) -> Feed {
        match source {
            Source::Paced { schedule, clock } => {
                // Wake within ~10 µs of an intended start instead of the default 50 µs slack.
                crate::sys::set_timer_slack(Duration::from_micros(10));
                let marks = Marks::new(&clock);
                Feed::Paced { schedule, clock, marks }
            }
            Source::Closed { next, mix, clock } => Feed::Closed { next, mix, clock, block: 0..0 },
        }
    }

    fn closed(&self) -> bool {
        matches!(self, Feed::Closed { .. })
    }
}

pub struct Worker {
    pub conn: Conn,
    /// Per class: the name of its prepared statement, or of its script's statements in order.
    pub statements: Vec<Vec<String>>,
    pub classes: Arc<Vec<Class>>,
    pub seed: u64,
    /// What this worker measured; handed back by `run`.
    pub measurement: Measurement,
    /// Set when the workload stops (read per operation: an atomic, where a
    /// `CancellationToken` takes a lock shared by every worker).
    pub stop: Arc<AtomicBool>,
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
        let mut feed = Feed::new(source);
        // The clock's one reading per operation: when the last one ended.
        let mut now = Instant::now();
        while let Some(op) = self.next_op(&mut feed, &mut now) {
            let class = &classes[op.class];
            let mut rng = Rng::for_op(self.seed ^ PARAM_SALT, op.seq);
            params.clear();
            params.extend(class.params.iter().map(|p| p.draw(&mut rng)));
            let result = match (&class.script, class.hold) {
                (Some(script), _) => self.script(op.class, script, &mut rng).map(|()| None),
                (None, None) => conn_for(&mut self.conn, &mut self.replica, class.on_replica)
                    .execute(&self.statements[op.class][0], &params)
                    .map(|()| None)
                    .map_err(ScriptError::Db),
                (None, Some(_)) => self.long_transaction(op.class, &params).map(Some),
            };
            now = Instant::now();
            if self.killed.load(Ordering::Acquire) {
                // Cut short: it counts with the time it has waited so far.
                let waited = now.saturating_duration_since(op.intended).as_micros() as u64;
                self.measurement.cut(op.class, op.slot, waited);
                break;
            }
            let lost = result.as_ref().is_err_and(ScriptError::closed);
            // A held transaction's latency ends when its statement did, not its hold.
            let done = result.as_ref().ok().copied().flatten().unwrap_or(now);
            let latency = done.saturating_duration_since(op.intended).as_micros() as u64;
            let outcome = match &result {
                Ok(_) => Ok(()),
                Err(e) => Err((e.code(), || e.message())),
            };
            self.measurement.finished((op.class, op.slot), done, latency, outcome);
            if lost && feed.closed() {
                break; // nothing more can run on this connection; a closed loop would spin
            }
        }
        self.measurement
    }

    /// The next operation: in a closed loop the next number, started at
    /// `now`; in the open loop the next one due, once its intended start has
    /// come (`now` then read again). `None`: the source ended.
    fn next_op(&mut self, feed: &mut Feed, now: &mut Instant) -> Option<Op> {
        match feed {
            Feed::Closed { next, mix, clock, block } => {
                if self.stop.load(Ordering::Acquire) {
                    return None;
                }
                let seq = block.next().unwrap_or_else(|| {
                    let first = next.fetch_add(BLOCK, Ordering::Relaxed);
                    *block = first + 1..first + BLOCK;
                    first
                });
                Some(Op { seq, class: mix.class(seq), intended: *now, slot: clock.current() })
            }
            Feed::Paced { schedule, clock, marks } => {
                let taken = schedule.take(*now, marks)?;
                if taken.intended > *now {
                    if !self.wait_for(schedule, taken.intended, now) {
                        return None;
                    }
                    let lag = now.saturating_duration_since(taken.intended).as_micros() as u64;
                    let _ = self.measurement.lag.get_or_insert_with(crate::run_record::new_hist).record(lag);
                }
                marks.refresh(clock);
                let slot = marks.slot_at(taken.intended);
                Some(Op { seq: taken.seq, class: taken.class, intended: taken.intended, slot })
            }
        }
    }

    /// Sleeps until `due`, in slices so that the end of the run is seen
    /// within 20 ms; false when the run ended and the schedule does not
    /// issue an operation due then. `now` is the last clock reading.
    fn wait_for(&self, schedule: &Schedule, due: Instant, now: &mut Instant) -> bool {
        while *now < due {
            if self.stop.load(Ordering::Acquire) && !schedule.issues(due) {
                return false;
            }
            std::thread::sleep((due - *now).min(Duration::from_millis(20)));
            *now = Instant::now();
        }
        true
    }

    /// Sleeps until `deadline` or until the workload stops.
    fn sleep_until(&self, deadline: Instant) {
        loop {
            let now = Instant::now();
            if now >= deadline || self.stop.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(5)));
        }
    }

    /// One run of a pgbench script: `\\set`, `\\sleep` and its statements in
    /// order. A failed statement (or expression) ends the run and rolls back
    /// an open transaction.
    fn script(&mut self, class: usize, script: &Script, rng: &mut Rng) -> Result<(), ScriptError> {
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
                    let conn = conn_for(&mut self.conn, &mut self.replica, self.classes[class].on_replica);
                    if let Err(e) = conn.execute(stmt, &values) {
                        if !conn.is_closed() {
                            let _ = conn.simple("ROLLBACK");
                        }
                        return Err(ScriptError::Db(e));
                    }
                }
            }
        }
        Ok(())
    }

    /// BEGIN, run the statement, hold the transaction open, COMMIT. Returns
    /// when the statement finished: its latency is recorded, not the hold.
    fn long_transaction(&mut self, class: usize, params: &[Value]) -> Result<Instant, ScriptError> {
        let (hold, on_replica) = (self.classes[class].hold.unwrap_or_default(), self.classes[class].on_replica);
        let conn = conn_for(&mut self.conn, &mut self.replica, on_replica);
        conn.simple("BEGIN").map_err(ScriptError::Db)?;
        if let Err(e) = conn.execute(&self.statements[class][0], params) {
            if !conn.is_closed() {
                let _ = conn.simple("ROLLBACK");
            }
            return Err(ScriptError::Db(e));
        }
        let read_done = Instant::now();
        self.sleep_until(read_done + hold);
        conn_for(&mut self.conn, &mut self.replica, on_replica).simple("COMMIT").map_err(ScriptError::Db)?;
        Ok(read_done)
    }
}

/// The connection a class runs on: the standby's for a `target = "replica"`
/// class (`replica` is opened whenever one exists), else the primary's.
fn conn_for<'a>(primary: &'a mut Conn, replica: &'a mut Option<Conn>, on_replica: bool) -> &'a mut Conn {
    match (on_replica, replica.as_mut()) {
        (true, Some(r)) => r,
        _ => primary,
    }
}
