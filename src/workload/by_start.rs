//! Per-second figures by an operation's intended start, and how many
//! operations were waiting: what the latency chart plots, so that a stall
//! shows in the seconds it happened rather than when its operations finally
//! finished.
//!
//! A second stays open for `OPEN_FOR` after it passed, with a histogram per
//! class that had an operation intended then; an operation finishing later
//! than that counts in its second's operations but not in its percentiles.
//! Waiting operations are counted on 100 ms ticks with a difference array
//! (+1 at the first tick at or after the intended start, −1 at the first
//! tick at or after the end), so each operation costs two additions.

use std::collections::VecDeque;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::run_record::{ClassSecond, SecondRecord};

/// How long a second stays open for operations intended in it.
pub const OPEN_FOR: u64 = 60;
/// Ticks per second of the waiting count.
const TICKS: u64 = 10;

/// Microseconds, 2 significant digits, counts in u32: 13 kB per class and
/// open second.
type SecHist = Histogram<u32>;

fn sec_hist() -> SecHist {
    SecHist::new_with_bounds(1, 3_600_000_000, 2).expect("valid bounds")
}

#[derive(Debug, Default)]
struct Open {
    hists: Vec<Option<SecHist>>,
    ops: Vec<u64>,
    errors: u64,
}

#[derive(Debug)]
pub struct ByStart {
    classes: usize,
    /// The first second still open: `open[0]` is second `base`.
    base: u64,
    open: VecDeque<Open>,
    done: Vec<SecondRecord>,
    /// Per 100 ms tick: operations that began waiting minus those that ended.
    waiting: Vec<i64>,
    /// Histograms of closed seconds, reset, for reuse.
    spare: Vec<SecHist>,
}

impl ByStart {
    pub fn new(classes: usize) -> ByStart {
        ByStart { classes, base: 0, open: VecDeque::new(), done: Vec::new(), waiting: Vec::new(), spare: Vec::new() }
    }

    /// One operation of `class`, intended to start at `start` and finished
    /// (or cut short) at `end`, both since the clock started.
    pub fn record(&mut self, class: usize, start: Duration, end: Duration, ok: bool) {
        self.wait(start, end);
        let sec = start.as_secs();
        let latency = (end.saturating_sub(start).as_micros() as u64).max(1);
        if sec < self.base {
            // Its second closed: count it, without its latency.
            if let Some(d) = self.done.get_mut(sec as usize) {
                d.ops += 1;
                d.errors += u64::from(!ok);
                if let Some(c) = d.classes.get_mut(class) {
                    c.ops += 1;
                }
            }
            return;
        }
        let i = (sec - self.base) as usize;
        while self.open.len() <= i {
            self.open.push_back(Open { hists: vec![None; self.classes], ops: vec![0; self.classes], errors: 0 });
        }
        let o = &mut self.open[i];
        let Some(h) = o.hists.get_mut(class) else { return };
        let spare = &mut self.spare;
        let _ = h.get_or_insert_with(|| spare.pop().unwrap_or_else(sec_hist)).record(latency);
        o.ops[class] += 1;
        o.errors += u64::from(!ok);
    }

    fn wait(&mut self, start: Duration, end: Duration) {
        let tick = |d: Duration| (d.as_micros() as u64).div_ceil(1_000_000 / TICKS) as usize;
        let (from, to) = (tick(start), tick(end));
        if to <= from {
            return;
        }
        if self.waiting.len() <= to {
            self.waiting.resize(to + 1, 0);
        }
        self.waiting[from] += 1;
        self.waiting[to] -= 1;
    }

    /// Closes the seconds that ended more than `OPEN_FOR` before `now`
    /// (every second when `now` is `None`).
    pub fn close(&mut self, now: Option<Duration>) {
        let keep_from = now.map_or(u64::MAX, |n| n.as_secs().saturating_sub(OPEN_FOR));
        while self.base < keep_from {
            let Some(o) = self.open.pop_front() else { break };
            let second = self.summarize(o);
            self.done.push(second);
            self.base += 1;
        }
        if now.is_none() {
            self.base = self.done.len() as u64;
        }
    }

    fn summarize(&mut self, o: Open) -> SecondRecord {
        let mut all = sec_hist();
        let mut classes = Vec::with_capacity(o.hists.len());
        for (h, ops) in o.hists.into_iter().zip(o.ops) {
            let (mut p50_us, mut p99_us) = (0, 0);
            if let Some(mut h) = h {
                let _ = all.add(&h);
                (p50_us, p99_us) = (h.value_at_quantile(0.5), h.value_at_quantile(0.99));
                h.reset();
                self.spare.push(h);
            }
            classes.push(ClassSecond { ops, p50_us, p99_us });
        }
        let (p50_us, p99_us) =
            if all.is_empty() { (0, 0) } else { (all.value_at_quantile(0.5), all.value_at_quantile(0.99)) };
        let ops = classes.iter().map(|c| c.ops).sum();
        SecondRecord { ops, errors: o.errors, p50_us, p99_us, classes }
    }

    /// Every second (all closed) and, per second, the most operations
    /// waiting at one tick.
    pub fn finish(mut self) -> (Vec<SecondRecord>, Vec<u64>) {
        self.close(None);
        let mut level = 0i64;
        let mut waiting = Vec::with_capacity(self.waiting.len() / TICKS as usize + 1);
        for (t, d) in self.waiting.iter().enumerate() {
            level += d;
            let s = t / TICKS as usize;
            if waiting.len() <= s {
                waiting.push(0);
            }
            waiting[s] = waiting[s].max(level.max(0) as u64);
        }
        (self.done, waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_stall_shows_in_the_second_it_began() {
        let mut b = ByStart::new(2);
        // Second 0: two quick operations; second 1: one that waited 3 s.
        b.record(0, ms(150), ms(152), true);
        b.record(1, ms(550), ms(553), true);
        b.record(0, ms(1_250), ms(4_250), false);
        b.close(Some(ms(70_000)));
        let (secs, waiting) = b.finish();
        assert_eq!(secs.len(), 2);
        assert_eq!((secs[0].ops, secs[1].ops, secs[1].errors), (2, 1, 1));
        assert!(secs[1].p99_us >= 2_900_000, "{:?}", secs[1]);
        assert_eq!(secs[1].classes[0].ops, 1);
        // The quick ones end before a tick; the stalled one waits at ticks 13 … 42.
        assert_eq!(waiting, vec![0, 1, 1, 1, 1]);
    }

    #[test]
    fn an_operation_finishing_after_its_second_closed_still_counts() {
        let mut b = ByStart::new(1);
        b.record(0, ms(10), ms(20), true);
        b.close(Some(ms(OPEN_FOR * 1000 + 2_000)));
        b.record(0, ms(30), ms(OPEN_FOR * 1000 + 2_000), true);
        let (secs, _) = b.finish();
        assert_eq!(secs[0].ops, 2);
        assert_eq!(secs[0].classes[0].ops, 2);
    }
}
