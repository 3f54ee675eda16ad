//! The one open-loop pacer: it emits operations at their intended start times
//! (target rate for the weighted classes, own rate for the others), whatever
//! the server does. Latency is measured from the intended start, so a stall
//! shows up in full (no coordinated omission).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::file::{Class, Pace};
use super::params::Rng;
use crate::record::{Hist, new_hist};
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
    pub issued_measured: u64,
    pub schedule_lag: Hist,
}

/// Runs until `stop` is cancelled; every operation goes into `tx`.
pub async fn run(
    classes: Arc<Vec<Class>>,
    rate: f64,
    seed: u64,
    clock: Arc<Clock>,
    tx: async_channel::Sender<Op>,
    stop: CancellationToken,
) -> PacerResult {
    let start = Instant::now();
    let mut cumulative = Vec::new();
    let mut total = 0.0;
    for (i, c) in classes.iter().enumerate() {
        if let Pace::Weight(w) = c.pace {
            total += w;
            cumulative.push((total, i));
        }
    }
    let mut streams: Vec<Stream> = Vec::new();
    if !cumulative.is_empty() {
        streams.push(Stream { start, interval: 1.0 / rate, n: 0, class: None });
    }
    for (i, c) in classes.iter().enumerate() {
        if let Pace::Rate(r) = c.pace {
            streams.push(Stream { start, interval: 1.0 / r, n: 0, class: Some(i) });
        }
    }
    let mut result = PacerResult { issued_measured: 0, schedule_lag: new_hist() };
    let mut seq = 0u64;
    loop {
        let (idx, due) = streams
            .iter()
            .enumerate()
            .map(|(i, s)| (i, s.next()))
            .min_by_key(|&(i, t)| (t, i))
            .expect("at least one stream");
        if due > Instant::now() {
            tokio::select! {
                _ = tokio::time::sleep_until(due.into()) => {}
                _ = stop.cancelled() => break,
            }
        } else if stop.is_cancelled() {
            break;
        }
        let stream = &mut streams[idx];
        let class = match stream.class {
            Some(c) => c,
            None => {
                // A low-discrepancy (Weyl) sequence started at a seeded point:
                // after a few dozen operations each class's share matches its
                // weight to within a fraction of a percent, in a seeded order.
                let r = (Rng::new(seed).next_f64() + stream.n as f64 * 0.618_033_988_749_895).fract() * total;
                cumulative.iter().find(|(c, _)| r < *c).unwrap_or(cumulative.last().expect("weighted")).1
            }
        };
        stream.n += 1;
        let slot = clock.current();
        let now = Instant::now();
        let _ = result.schedule_lag.record(now.saturating_duration_since(due).as_micros() as u64);
        if slot != Slot::Warmup {
            result.issued_measured += 1;
        }
        if tx.send(Op { seq, class, intended: due, slot }).await.is_err() {
            break;
        }
        seq += 1;
    }
    result
}
