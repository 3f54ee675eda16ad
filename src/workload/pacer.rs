//! The one open-loop pacer: it emits operations at their intended start times
//! (target rate for the weighted classes, own rate for the others), whatever
//! the server does. Latency is measured from the intended start, so a stall
//! shows up in full (no coordinated omission).
//!
//! It runs on its own OS thread and sleeps with `nanosleep` (timer slack
//! 10 µs) rather than on the async runtime, whose timer has a 1 ms
//! granularity and whose threads are busy with the workers: on a loaded
//! machine that put the emission lag p99 at several milliseconds. When it
//! may (root, or CAP_SYS_NICE), the thread runs at nice -10.
//!
//! `Mix` is the weighted draw of a class for an operation number; the
//! closed-loop mode (`workload::CLOSED_LOOP`) has no schedule and uses it
//! directly in the workers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::file::{Class, Pace};
use super::params::Rng;
use crate::error::{Error, Result};
use crate::run_record::{Hist, new_hist};
use crate::timeline::{Clock, Slot};

/// One operation to run.
#[derive(Debug, Clone, Copy)]
pub struct Op {
    /// Position in the schedule; seeds the operation's parameters.
    pub seq: u64,
    pub class: usize,
    pub intended: Instant,
    pub slot: Slot,
}

/// The weighted classes and the seed: which class operation `seq` runs.
#[derive(Debug, Clone)]
pub struct Mix {
    cumulative: Vec<(f64, usize)>,
    total: f64,
    /// Where the seeded low-discrepancy sequence starts.
    offset: f64,
}

impl Mix {
    pub fn new(classes: &[Class], seed: u64) -> Mix {
        let mut cumulative = Vec::new();
        let mut total = 0.0;
        for (i, c) in classes.iter().enumerate() {
            if let Pace::Weight(w) = c.pace {
                total += w;
                cumulative.push((total, i));
            }
        }
        Mix { cumulative, total, offset: Rng::new(seed).next_f64() }
    }

    /// No weighted class: only classes at their own rate.
    pub fn is_empty(&self) -> bool {
        self.cumulative.is_empty()
    }

    /// The class of the `n`th weighted operation. A low-discrepancy (Weyl)
    /// sequence started at a seeded point: after a few dozen operations each
    /// class's share matches its weight to within a fraction of a percent, in
    /// a seeded order.
    pub fn class(&self, n: u64) -> usize {
        let r = (self.offset + n as f64 * 0.618_033_988_749_895).fract() * self.total;
        self.cumulative.iter().find(|(c, _)| r < *c).unwrap_or(self.cumulative.last().expect("weighted")).1
    }
}

/// A fixed-interval stream of operations.
struct Stream {
    start: Instant,
    interval: f64,
    n: u64,
    /// `None`: the weighted classes; `Some(i)`: class i at its own rate.
    class: Option<usize>,
}

impl Stream {
    fn next(&self) -> Instant {
        self.start + Duration::from_secs_f64(self.interval * self.n as f64)
    }
}

#[derive(Debug)]
pub struct PacerResult {
    /// Measured operations of the schedule, started or not.
    pub issued_measured: u64,
    /// Of those, the ones dropped because the queue was full (overload).
    pub dropped: u64,
    pub schedule_lag: Hist,
    /// A replay's schedule while the migration ran (`None` for a rate-based
    /// schedule: its rate says it).
    pub replay_schedule: Option<crate::run_record::ReplaySchedule>,
}

/// Starts the pacer on its own thread; it runs until `stop` is cancelled (or
/// every receiver is gone) and sends every operation into `tx`, a bounded
/// queue: what does not fit is dropped and counted. Fails when the thread
/// cannot be started (the machine is out of threads or memory).
pub fn spawn(
    classes: Arc<Vec<Class>>,
    rate: f64,
    seed: u64,
    clock: Arc<Clock>,
    tx: async_channel::Sender<Op>,
    stop: CancellationToken,
) -> Result<tokio::sync::oneshot::Receiver<PacerResult>> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("lockimpact-pacer".into())
        .spawn(move || {
            let _ = done.send(run(&classes, rate, seed, &clock, &tx, &stop));
        })
        .map_err(|e| Error::env(format!("cannot start the workload's pacer thread: {e}")))?;
    Ok(result)
}

/// Sleeps until `due`, in slices so that `stop` is seen within 20 ms;
/// returns false when stopped.
fn sleep_until(due: Instant, stop: &CancellationToken) -> bool {
    loop {
        if stop.is_cancelled() {
            return false;
        }
        let now = Instant::now();
        if now >= due {
            return true;
        }
        std::thread::sleep((due - now).min(Duration::from_millis(20)));
    }
}

fn run(
    classes: &[Class],
    rate: f64,
    seed: u64,
    clock: &Clock,
    tx: &async_channel::Sender<Op>,
    stop: &CancellationToken,
) -> PacerResult {
    // Wake within ~10 µs of the deadline instead of the default 50 µs slack.
    crate::sys::set_timer_slack(Duration::from_micros(10));
    // The schedule's clock must not queue for a CPU behind the server it
    // loads: with the server's backends busy on a small machine, the pacer
    // thread waited tens of ms for a CPU at p99. A higher priority (nice -10)
    // needs CAP_SYS_NICE (root); without it the call fails and nothing changes.
    crate::sys::set_thread_nice(-10);
    let start = Instant::now();
    let mix = Mix::new(classes, seed);
    let mut streams: Vec<Stream> = Vec::new();
    if !mix.is_empty() {
        streams.push(Stream { start, interval: 1.0 / rate, n: 0, class: None });
    }
    for (i, c) in classes.iter().enumerate() {
        if let Pace::Rate(r) = c.pace {
            streams.push(Stream { start, interval: 1.0 / r, n: 0, class: Some(i) });
        }
    }
    let mut result = PacerResult { issued_measured: 0, dropped: 0, schedule_lag: new_hist(), replay_schedule: None };
    let mut seq = 0u64;
    loop {
        let (idx, due) = streams
            .iter()
            .enumerate()
            .map(|(i, s)| (i, s.next()))
            .min_by_key(|&(i, t)| (t, i))
            .expect("at least one stream");
        if !sleep_until(due, stop) {
            break;
        }
        let stream = &mut streams[idx];
        let class = stream.class.unwrap_or_else(|| mix.class(stream.n));
        stream.n += 1;
        let slot = clock.current();
        let now = Instant::now();
        let _ = result.schedule_lag.record(now.saturating_duration_since(due).as_micros() as u64);
        if slot != Slot::Warmup {
            result.issued_measured += 1;
        }
        match tx.try_send(Op { seq, class, intended: due, slot }) {
            Ok(()) => {}
            // The queue is full: the client cannot start what the schedule
            // asks; the operation is counted, never started.
            Err(async_channel::TrySendError::Full(_)) => result.dropped += u64::from(slot != Slot::Warmup),
            Err(async_channel::TrySendError::Closed(_)) => break, // every worker is gone
        }
        seq += 1;
    }
    result
}
