//! A workload worker: one pooled connection, its prepared statements, and its
//! own histograms (merged at the end). It takes operations from the pacer's
//! queue, runs them, and records latency from the intended start. Errors are
//! counted with their SQLSTATE and never stop the run.
//!
//! Operations come from the pacer's queue, or, in a closed loop, from the
//! worker itself: the next operation number of a shared counter, its class
//! drawn by the same `Mix`, started as soon as the previous one finished.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio_postgres::Statement;
use tokio_util::sync::CancellationToken;

use super::Seconds;
use super::file::Class;
use super::pacer::{Mix, Op};
use super::params::{Rng, Value};
use super::script::{Command, Num, Script, sleep_for};
use crate::error::sqlstate;
use crate::record::{Hist, new_hist};
use crate::timeline::{Clock, Slot};

/// Salt so parameter draws are independent of the pacer's class choice.
const PARAM_SALT: u64 = 0x005E_ED0F_9A9A;

/// What one worker measured; read after the worker ends (or is aborted).
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// [class][slot] → latency (µs) of successful operations.
    pub latency: Vec<Vec<Option<Hist>>>,
    pub errors: BTreeMap<(usize, String), (u64, String)>,
    pub finished_measured: u64,
}

/// Why an operation failed: the server said no, or a script's expression could not be evaluated.
#[derive(Debug)]
enum ScriptError {
    Db(tokio_postgres::Error),
    Eval(String),
}

impl ScriptError {
    /// The SQLSTATE, or `XXSCR` for a script expression error.
    fn code(&self) -> String {
        match self {
            ScriptError::Db(e) => sqlstate(e),
            ScriptError::Eval(_) => "XXSCR".into(),
        }
    }
    fn message(&self) -> String {
        match self {
            ScriptError::Db(e) => crate::error::describe_pg(e),
            ScriptError::Eval(m) => format!("pgbench script: {m}"),
        }
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
    pub client: deadpool_postgres::Object,
    /// Per class: its statement, or its script's statements in order.
    pub statements: Vec<Vec<Statement>>,
    pub classes: Arc<Vec<Class>>,
    pub seed: u64,
    pub stats: Arc<Mutex<WorkerStats>>,
    pub seconds: Arc<Mutex<Seconds>>,
    pub stop: CancellationToken,
}

impl Worker {
    pub async fn run(self, source: Source) {
        let mut params: Vec<Value> = Vec::new();
        loop {
            let op = match &source {
                Source::Paced(rx) => match rx.recv().await {
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
            let class = &self.classes[op.class];
            let mut rng = Rng::for_op(self.seed ^ PARAM_SALT, op.seq);
            params.clear();
            params.extend(class.params.iter().map(|p| p.draw(&mut rng)));
            let result = match (&class.script, class.hold) {
                (Some(script), _) => self.script(op.class, script, &mut rng).await,
                (None, None) => self
                    .client
                    .execute_raw(&self.statements[op.class][0], params.iter())
                    .await
                    .map(|_| Instant::now())
                    .map_err(ScriptError::Db),
                (None, Some(_)) => self.long_transaction(op.class, &params).await.map_err(ScriptError::Db),
            };
            let done = *result.as_ref().unwrap_or(&Instant::now());
            let latency = done.saturating_duration_since(op.intended).as_micros() as u64;
            let ok = result.is_ok();
            {
                let mut s = self.stats.lock().expect("worker stats");
                match result {
                    Ok(_) => {
                        let slots = &mut s.latency[op.class];
                        let _ = slots[op.slot.index()].get_or_insert_with(new_hist).record(latency.max(1));
                    }
                    Err(e) => {
                        let entry = s.errors.entry((op.class, e.code())).or_insert_with(|| (0, e.message()));
                        entry.0 += 1;
                    }
                }
                if op.slot != Slot::Warmup {
                    s.finished_measured += 1;
                }
            }
            self.seconds.lock().expect("seconds").record(done, op.class, ok.then_some(latency));
        }
    }

    /// One run of a pgbench script: `\\set`, `\\sleep` and its statements in
    /// order. A failed statement (or expression) ends the run and rolls back
    /// an open transaction.
    async fn script(&self, class: usize, script: &Script, rng: &mut Rng) -> Result<Instant, ScriptError> {
        let mut vars: HashMap<String, Num> = script.vars.iter().map(|(k, v)| (k.clone(), *v)).collect();
        let mut values: Vec<Value> = Vec::new();
        let mut next = 0;
        for cmd in &script.commands {
            match cmd {
                Command::Set { var, expr } => {
                    let v = expr.eval(&vars, rng).map_err(ScriptError::Eval)?;
                    vars.insert(var.clone(), v);
                }
                Command::Sleep { amount, unit_us } => {
                    let d = sleep_for(amount, *unit_us, &vars, rng).map_err(ScriptError::Eval)?;
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = self.stop.cancelled() => {}
                    }
                }
                Command::Sql { params, .. } => {
                    values.clear();
                    for p in params {
                        values.push(vars.get(p).ok_or_else(|| ScriptError::Eval(format!(":{p} is not set")))?.value());
                    }
                    let stmt = &self.statements[class][next];
                    next += 1;
                    if let Err(e) = self.client.execute_raw(stmt, values.iter()).await {
                        if !self.client.is_closed() {
                            let _ = self.client.batch_execute("ROLLBACK").await;
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
    async fn long_transaction(&self, class: usize, params: &[Value]) -> Result<Instant, tokio_postgres::Error> {
        let hold = self.classes[class].hold.unwrap_or_default();
        self.client.batch_execute("BEGIN").await?;
        if let Err(e) = self.client.execute_raw(&self.statements[class][0], params.iter()).await {
            let _ = self.client.batch_execute("ROLLBACK").await;
            return Err(e);
        }
        let read_done = Instant::now();
        tokio::select! {
            _ = tokio::time::sleep_until((read_done + hold).into()) => {}
            _ = self.stop.cancelled() => {}
        }
        self.client.batch_execute("COMMIT").await?;
        Ok(read_done)
    }
}
