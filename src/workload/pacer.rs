//! The open-loop schedule: operations at fixed intended start times (target
//! rate for the weighted classes, own rate for the others), whatever the
//! server does. Latency is measured from the intended start, so a stall
//! shows up in full (no coordinated omission).
//!
//! There is no pacer thread handing operations to the workers: the schedule
//! is arithmetic (operation n of a stream is due at start + n × interval),
//! and each free worker takes the next operation due (one atomic add on the
//! stream's counter), sleeps until its intended start if it is early
//! (`nanosleep`, timer slack 10 µs) and runs it. That is the queue a pacer
//! fills and free workers drain, without its cost per operation: the pacer
//! thread's wake-up, and a futex wake and a context switch to hand each
//! operation over, which made the open loop reach 0.774 of a target at 80 %
//! of the closed loop's saturation (issue 22). An operation no worker was
//! free for when it became due waits "in the queue": it is taken, late, by
//! the next worker to finish, its latency counted from its intended start.
//! Operations due but not taken when the run ends count as unfinished.
//!
//! The queue holds at most `workload::QUEUE_CAPACITY` operations: when more
//! than that are due and not taken, the newest are dropped (counted, never
//! started), as a bounded queue refuses what arrives while it is full.
//!
//! `Mix` is the weighted draw of a class for an operation number; the
//! closed-loop mode (`workload::CLOSED_LOOP`) has no schedule and uses it
//! directly in the workers.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::file::{Class, Pace};
use super::params::Rng;
use crate::run_record::Hist;
use crate::timeline::{Clock, Mark, Slot};

/// One operation to run.
#[derive(Debug, Clone, Copy)]
pub struct Op {
    /// Position in the schedule (in a stream of its own: interleaved with
    /// the other streams' numbers); seeds the operation's parameters.
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

/// A fixed-interval stream of operations, and which of them were taken.
#[derive(Debug)]
struct Stream {
    /// Nanoseconds between two operations.
    interval: f64,
    /// `None`: the weighted classes; `Some(i)`: class i at its own rate.
    class: Option<usize>,
    /// The next operation number not taken yet.
    next: AtomicU64,
    /// Set once more operations were due than the queue holds: from then on
    /// operations are taken under `dropped`'s lock, skipping the dropped ones.
    overloaded: AtomicBool,
    dropped: Mutex<Dropped>,
}

/// Operations of a stream dropped because the queue was full.
#[derive(Debug, Default)]
struct Dropped {
    /// Ranges [from, to) of operation numbers, in order, not yet passed by `next`.
    ranges: VecDeque<(u64, u64)>,
    /// Every operation number below this was either taken or dropped.
    through: u64,
    /// Dropped operations intended in a measured slot.
    measured: u64,
}

impl Stream {
    /// When operation `n` is due, in nanoseconds after the schedule's start.
    fn due(&self, n: u64) -> u64 {
        (n as f64 * self.interval) as u64
    }

    /// How many operations are due at `t` (ns after the start): those with `due(n) <= t`.
    fn due_by(&self, t: u64) -> u64 {
        let mut n = (t as f64 / self.interval) as u64;
        while n > 0 && self.due(n) > t {
            n -= 1;
        }
        while self.due(n) <= t {
            n += 1;
        }
        n
    }

    /// How many operations are due before `t` (ns after the start).
    fn before(&self, t: u64) -> u64 {
        if t == 0 { 0 } else { self.due_by(t - 1) }
    }
}

/// An operation a worker took from the schedule.
#[derive(Debug, Clone, Copy)]
pub struct Taken {
    pub seq: u64,
    pub class: usize,
    pub intended: Instant,
}

/// The open-loop schedule the workers share.
#[derive(Debug)]
pub struct Schedule {
    start: Instant,
    streams: Vec<Stream>,
    mix: Mix,
    /// Nanoseconds after `start` past which nothing more is due (the run
    /// ended); `u64::MAX` while it runs.
    end: AtomicU64,
}

impl Schedule {
    /// The schedule of `classes` at `rate` (weighted classes) and their own
    /// rates, starting now.
    pub fn new(classes: &[Class], rate: f64, seed: u64) -> Schedule {
        let mix = Mix::new(classes, seed);
        let stream = |per_s: f64, class| Stream {
            interval: 1e9 / per_s,
            class,
            next: AtomicU64::new(0),
            overloaded: AtomicBool::new(false),
            dropped: Mutex::new(Dropped::default()),
        };
        let mut streams = Vec::new();
        if !mix.is_empty() {
            streams.push(stream(rate, None));
        }
        for (i, c) in classes.iter().enumerate() {
            if let Pace::Rate(r) = c.pace {
                streams.push(stream(r, Some(i)));
            }
        }
        Schedule { start: Instant::now(), streams, mix, end: AtomicU64::new(u64::MAX) }
    }

    fn ns(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.start).as_nanos() as u64
    }

    fn at(&self, ns: u64) -> Instant {
        self.start + Duration::from_nanos(ns)
    }

    /// Nothing due after `t` is issued; operations due before it may still be taken.
    pub fn end(&self, t: Instant) {
        self.end.store(self.ns(t), Ordering::Release);
    }

    /// Whether an operation intended at `t` is issued (the schedule did not end before it).
    pub fn issues(&self, t: Instant) -> bool {
        self.ns(t) <= self.end.load(Ordering::Acquire)
    }

    /// Takes the next operation due (the earliest of every stream's next;
    /// it may be due later than `now`), or `None` when the schedule ended
    /// before it. `marks` says which operations count as measured, for the
    /// dropped count.
    pub fn take(&self, now: Instant, marks: &Marks) -> Option<Taken> {
        let end = self.end.load(Ordering::Acquire);
        let (idx, n) = match self.streams.len() {
            1 => (0, self.take_from(0, now, marks)),
            _ => self.take_earliest(now, marks),
        };
        let s = &self.streams[idx];
        let due = s.due(n);
        if due > end {
            return None;
        }
        let k = self.streams.len() as u64;
        let class = s.class.unwrap_or_else(|| self.mix.class(n));
        Some(Taken { seq: n * k + idx as u64, class, intended: self.at(due) })
    }

    /// The stream whose next operation is due first (ties: the lower index),
    /// and that operation, taken.
    fn take_earliest(&self, now: Instant, marks: &Marks) -> (usize, u64) {
        loop {
            let (idx, n) = (self.streams.iter().enumerate())
                .map(|(i, s)| (i, s.next.load(Ordering::Acquire)))
                .min_by_key(|&(i, n)| (self.streams[i].due(n), i))
                .expect("at least one stream");
            let s = &self.streams[idx];
            if s.overloaded.load(Ordering::Acquire) {
                return (idx, self.take_from(idx, now, marks));
            }
            if s.next.compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                self.check_backlog(idx, n, now, marks);
                return (idx, n);
            }
        }
    }

    /// Takes the next operation of stream `idx`.
    fn take_from(&self, idx: usize, now: Instant, marks: &Marks) -> u64 {
        let s = &self.streams[idx];
        if !s.overloaded.load(Ordering::Acquire) {
            let n = s.next.fetch_add(1, Ordering::AcqRel);
            self.check_backlog(idx, n, now, marks);
            return n;
        }
        let mut d = s.dropped.lock().expect("dropped");
        let mut n = s.next.load(Ordering::Acquire);
        while let Some(&(from, to)) = d.ranges.front() {
            if n < from {
                break;
            }
            n = n.max(to);
            d.ranges.pop_front();
        }
        s.next.store(n + 1, Ordering::Release);
        drop(d);
        self.check_backlog(idx, n, now, marks);
        n
    }

    /// After operation `n` of stream `idx` was taken at `now`: when more
    /// operations are due and not taken than the queue holds, the newest of
    /// them (those beyond the queue) are dropped.
    fn check_backlog(&self, idx: usize, n: u64, now: Instant, marks: &Marks) {
        let s = &self.streams[idx];
        let due = s.due_by(self.ns(now).min(self.end.load(Ordering::Acquire)));
        let cap = super::QUEUE_CAPACITY as u64;
        if due <= n + 1 + cap {
            return;
        }
        let mut d = s.dropped.lock().expect("dropped");
        s.overloaded.store(true, Ordering::Release);
        // Operations from n + 1 up to `through` are queued or were dropped;
        // those since arrived at a queue holding `kept`: it takes what fits
        // and drops the rest, the newest.
        let classified = d.through.max(n + 1);
        let dropped: u64 = d.ranges.iter().map(|&(a, b)| b.min(classified).saturating_sub(a.max(n + 1))).sum();
        let kept = classified - (n + 1) - dropped;
        let from = classified + cap.saturating_sub(kept);
        if from < due {
            let measured_from = marks.measured_from().map_or(due, |t| s.before(self.ns(t)).max(from));
            d.measured += due.saturating_sub(measured_from);
            d.ranges.push_back((from, due));
        }
        d.through = due;
    }

    /// Operations due at `now` and not taken (nor dropped).
    pub fn queued(&self, now: Instant) -> usize {
        let t = self.ns(now).min(self.end.load(Ordering::Acquire));
        let mut n = 0u64;
        for s in &self.streams {
            let d = s.dropped.lock().expect("dropped");
            let next = s.next.load(Ordering::Acquire);
            let due = s.due_by(t);
            let dropped: u64 = d.ranges.iter().map(|&(a, b)| b.min(due).saturating_sub(a.max(next))).sum();
            n += due.saturating_sub(next).saturating_sub(dropped);
        }
        n as usize
    }

    /// When the run is over (the end set, the workers gone): the operations
    /// due and never taken nor dropped (class, intended start), what the
    /// schedule issued, and the lag the workers measured.
    pub fn finish(&self, marks: &Marks, lag: Hist) -> (Vec<(usize, Instant)>, PacerResult) {
        let end = match self.end.load(Ordering::Acquire) {
            u64::MAX => self.ns(Instant::now()),
            end => end,
        };
        let mut left = Vec::new();
        let mut result = PacerResult { issued_measured: 0, dropped: 0, schedule_lag: lag, replay_schedule: None };
        let measured_from = marks.measured_from().map(|t| self.ns(t));
        for s in &self.streams {
            let d = s.dropped.lock().expect("dropped");
            let due = s.due_by(end);
            if let Some(from) = measured_from {
                result.issued_measured += due.saturating_sub(s.before(from));
            }
            result.dropped += d.measured;
            let mut n = s.next.load(Ordering::Acquire);
            let mut ranges = d.ranges.iter().peekable();
            while n < due {
                if let Some(&&(a, b)) = ranges.peek()
                    && n >= a
                {
                    n = n.max(b);
                    ranges.next();
                    continue;
                }
                let class = s.class.unwrap_or_else(|| self.mix.class(n));
                left.push((class, self.at(s.due(n))));
                n += 1;
            }
        }
        (left, result)
    }
}

/// The clock's slot marks as a worker last saw them: which slot an
/// operation's intended start fell in, without taking the clock's lock per
/// operation (it is read again only when the current slot changed).
#[derive(Debug, Clone)]
pub struct Marks {
    marks: Vec<Mark>,
    start: Instant,
}

impl Marks {
    pub fn new(clock: &Clock) -> Marks {
        Marks { marks: clock.marks(), start: clock.start }
    }

    /// Reads the marks again when the clock entered another slot since.
    pub fn refresh(&mut self, clock: &Clock) {
        if self.marks.last().map(|m| m.slot) != Some(clock.current()) {
            self.marks = clock.marks();
        }
    }

    /// The slot that was current at `t` (as far as these marks know).
    pub fn slot_at(&self, t: Instant) -> Slot {
        let at = t.saturating_duration_since(self.start);
        self.marks.iter().rev().find(|m| m.at <= at).map_or(Slot::Warmup, |m| m.slot)
    }

    /// When the first measured slot began.
    fn measured_from(&self) -> Option<Instant> {
        self.marks.iter().find(|m| m.slot != Slot::Warmup).map(|m| self.start + m.at)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(text: &str) -> Vec<Class> {
        super::super::file::parse(text, std::path::Path::new("test")).unwrap()
    }

    const TWO_STREAMS: &str = "[[class]]\nname = \"a\"\nsql = \"SELECT 1\"\nweight = 1\n\n\
                               [[class]]\nname = \"b\"\nsql = \"SELECT 2\"\nrate = 250\n";

    #[test]
    fn operations_are_taken_in_the_order_they_are_due() {
        let clock = Clock::new();
        let marks = Marks::new(&clock);
        let s = Schedule::new(&classes(TWO_STREAMS), 1000.0, 7);
        let at = |ms: u64| s.start + Duration::from_millis(ms);
        let taken: Vec<Taken> = (0..10).map(|_| s.take(at(0), &marks).unwrap()).collect();
        // 1000/s weighted (every 1 ms) and 250/s of class b (every 4 ms); ties go to the weighted stream.
        let due: Vec<u128> = taken.iter().map(|t| (t.intended - s.start).as_micros()).collect();
        assert_eq!(due, [0, 0, 1000, 2000, 3000, 4000, 4000, 5000, 6000, 7000]);
        assert_eq!(taken[1].class, 1);
        assert_eq!(taken[6].class, 1);
        let mut seqs: Vec<u64> = taken.iter().map(|t| t.seq).collect();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), 10, "every operation has its own number");
        // At 7.5 ms nothing is queued: everything due was taken.
        assert_eq!(s.queued(at(7) + Duration::from_micros(500)), 0);
        // At 12 ms: the weighted 8 … 12 ms and b's 8 and 12 ms.
        assert_eq!(s.queued(at(12)), 7);
    }

    #[test]
    fn the_end_stops_the_schedule_and_leaves_the_due_ones_queued() {
        let clock = Clock::new();
        clock.enter(Slot::Baseline);
        let marks = Marks::new(&clock);
        let s = Schedule::new(&classes(TWO_STREAMS), 1000.0, 7);
        let at = |ms: u64| s.start + Duration::from_millis(ms);
        for _ in 0..3 {
            s.take(at(0), &marks).unwrap();
        }
        s.end(at(10));
        assert!(s.issues(at(10)) && !s.issues(at(11)));
        // Due by 10 ms: weighted 0..=10 (11), b at 0, 4, 8 (3); 3 taken.
        let (left, result) = s.finish(&marks, crate::run_record::new_hist());
        assert_eq!(left.len(), 11);
        assert_eq!(result.issued_measured, 14);
        assert_eq!(result.dropped, 0);
        while s.take(at(20), &marks).is_some() {}
        assert!(s.take(at(20), &marks).is_none());
    }

    #[test]
    fn beyond_the_queue_the_newest_are_dropped() {
        let clock = Clock::new();
        clock.enter(Slot::Baseline);
        let marks = Marks::new(&clock);
        let one = "[[class]]\nname = \"a\"\nsql = \"SELECT 1\"\nweight = 1\n";
        // One operation a microsecond: after 1 s, 1 000 001 are due.
        let s = Schedule::new(&classes(one), 1e6, 1);
        let cap = crate::workload::QUEUE_CAPACITY as u64;
        let t = s.start + Duration::from_secs(1);
        assert_eq!(s.take(t, &marks).unwrap().seq, 0);
        assert_eq!(s.queued(t) as u64, cap);
        // The queue keeps the oldest: 1 … cap are taken next, then what arrives later.
        assert_eq!(s.take(t, &marks).unwrap().seq, 1);
        for _ in 2..=cap {
            s.take(t, &marks).unwrap();
        }
        let t2 = t + Duration::from_micros(10);
        let next = s.take(t2, &marks).unwrap();
        assert!(next.seq > 1_000_000, "{}", next.seq);
        s.end(t2);
        let (_, result) = s.finish(&marks, crate::run_record::new_hist());
        assert_eq!(result.issued_measured, 1_000_011);
        assert!(result.dropped >= 1_000_001 - cap - 1, "{}", result.dropped);
    }
}
