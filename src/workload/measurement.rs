//! What the workload measures, and where it goes. Each driver (a worker
//! thread, the session replay's driver, the queue left at the end) owns one
//! `Measurement` and records into it without a lock: latency per class for
//! the slot it is in now, errors by (slot, class, SQLSTATE), finished
//! operations per slot, operations cut short. `Workload::finish` merges them
//! into the `WorkloadRecord` through the `Sink`.
//!
//! Two things are shared while the run goes on, each behind a mutex taken
//! far less than once per operation: a driver's latency for a slot is merged
//! into the sink's one histogram per slot and class when its slot changes (so
//! memory grows with steps × classes, not steps × classes × connections), and
//! the per-second figures (`Seconds`), which the live status line reads.
//!
//! A driver does not record into `Seconds` itself: it appends each finished
//! operation (its completion time, class, latency, outcome) to its own
//! `Pending` list, behind a mutex only it takes per operation (uncontended).
//! When its next operation finishes in a later second, or the list is full,
//! it takes the `Seconds` lock once and hands over every driver's list,
//! earliest second first, each operation recorded exactly as it would have
//! been one at a time: a driver blocked behind a lock does not hold back the
//! operations it finished before, and the second they finished in closes
//! with them. One shared lock per second and driver instead of one per
//! operation (the profile of issue 22 found 16 workers taking it ~30 000
//! times a second).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::by_start::ByStart;
use crate::run_record::{ClassSecond, Hist, SecondRecord, WorkloadRecord, new_hist};
use crate::timeline::Slot;

/// Per-second operations, errors and latency, by completion time, for all
/// classes together and per class. Only the current second keeps histograms;
/// finished seconds keep a few numbers. Beside them, the same by intended
/// start and the operations waiting (`ByStart`).
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
    by_start: ByStart,
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
            by_start: ByStart::new(classes),
        }
    }

    /// Closes every second before `now`.
    pub fn advance(&mut self, now: Instant) {
        let since = now.saturating_duration_since(self.start);
        self.by_start.close(Some(since));
        let sec = since.as_secs();
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
        self.started(now, class, latency, ok);
        self.ops[class] += 1;
        let _ = self.hists[class].record(latency.max(1));
        if !ok {
            self.errors += 1;
        }
    }

    /// An operation by its intended start (`latency` µs before `now`).
    fn started(&mut self, now: Instant, class: usize, latency: u64, ok: bool) {
        let end = now.saturating_duration_since(self.start);
        self.by_start.record(class, end.saturating_sub(Duration::from_micros(latency)), end, ok);
    }

    /// The last finished second, for the live status line.
    pub fn last(&self) -> Option<&SecondRecord> {
        self.done.last()
    }
}

/// Latency per class and slot, merged over every driver.
type Latencies = Vec<Vec<Option<Hist>>>;

/// Operations a driver keeps before it hands them over (32 bytes each).
const PENDING: usize = 512;

/// One finished operation, not yet recorded in `Seconds`.
#[derive(Debug, Clone, Copy)]
struct Done {
    at: Instant,
    class: u32,
    ok: bool,
    latency: u64,
}

/// A driver's finished operations not yet in `Seconds`, all finished in
/// `second` (since the clock's start) when there are any.
#[derive(Debug, Default)]
struct Pending {
    second: u64,
    done: Vec<Done>,
}

/// Every driver's pending list.
type Drivers = Vec<Arc<Mutex<Pending>>>;

/// Where every driver's measurements go: one latency histogram per class
/// and slot, and the per-second figures. Cloned into each `Measurement`.
#[derive(Debug, Clone)]
pub struct Sink {
    start: Instant,
    latencies: Arc<Mutex<Latencies>>,
    seconds: Arc<Mutex<Seconds>>,
    drivers: Arc<Mutex<Drivers>>,
    classes: usize,
    /// Slots the records keep (none when there are no classes, as the
    /// latency table then has no row to say how many).
    slots: usize,
}

impl Sink {
    /// A sink for `classes` × `slots`, its seconds counted from `start`.
    pub fn new(start: Instant, classes: usize, slots: usize) -> Sink {
        Sink {
            start,
            latencies: Arc::new(Mutex::new(vec![vec![None; slots]; classes])),
            seconds: Arc::new(Mutex::new(Seconds::new(start, classes))),
            drivers: Arc::new(Mutex::new(Vec::new())),
            classes,
            slots: if classes == 0 { 0 } else { slots },
        }
    }

    /// Per-second figures, for the live status line.
    pub fn seconds(&self) -> Arc<Mutex<Seconds>> {
        self.seconds.clone()
    }

    /// A new, empty measurement for one driver.
    pub fn measurement(&self) -> Measurement {
        let pending = Arc::new(Mutex::new(Pending { second: 0, done: Vec::with_capacity(PENDING) }));
        self.drivers.lock().expect("drivers").push(pending.clone());
        Measurement {
            local: None,
            sink: self.clone(),
            pending,
            errors: BTreeMap::new(),
            finished: vec![0; self.slots],
            cut: 0,
            lag: None,
        }
    }

    /// Records every driver's pending operations in `secs`, the earliest
    /// second first (each driver's in the order they finished).
    fn hand_over(&self, secs: &mut Seconds) {
        let drivers = self.drivers.lock().expect("drivers");
        let mut order: Vec<(u64, usize)> = Vec::new();
        for (i, d) in drivers.iter().enumerate() {
            let p = d.lock().expect("pending");
            if !p.done.is_empty() {
                order.push((p.second, i));
            }
        }
        order.sort_unstable();
        for (_, i) in order {
            let mut p = drivers[i].lock().expect("pending");
            for d in p.done.drain(..) {
                secs.record(d.at, d.class as usize, d.latency, d.ok);
            }
        }
    }

    /// Merges every driver's measurement into `rec` (latency, errors,
    /// finished counts, the seconds closed up to now); returns the
    /// operations they cut short.
    pub fn merge(&self, measurements: Vec<Measurement>, rec: &mut WorkloadRecord) -> u64 {
        rec.finished = vec![0; self.slots];
        let mut cut = 0;
        for mut m in measurements {
            m.flush();
            for ((slot, c, code), (n, msg)) in m.errors {
                rec.slot_errors.entry((slot, c, code)).or_insert((0, msg)).0 += n;
            }
            for (total, n) in rec.finished.iter_mut().zip(&m.finished) {
                *total += n;
            }
            cut += m.cut;
        }
        rec.latency = std::mem::take(&mut *self.latencies.lock().expect("latencies"));
        let mut secs = self.seconds.lock().expect("seconds");
        self.hand_over(&mut secs);
        secs.advance(Instant::now());
        rec.seconds = std::mem::take(&mut secs.done);
        let by_start = std::mem::replace(&mut secs.by_start, ByStart::new(0));
        (rec.started, rec.waiting) = by_start.finish();
        cut
    }
}

/// What one driver measured. Latency is kept locally for the slot being
/// recorded only, and merged into the sink when the slot changes (and at
/// the end).
#[derive(Debug)]
pub struct Measurement {
    /// The slot recorded now and its per-class latency (µs), not merged yet.
    local: Option<(Slot, Vec<Option<Hist>>)>,
    sink: Sink,
    /// Finished operations not yet in the sink's `Seconds`.
    pending: Arc<Mutex<Pending>>,
    /// (slot index, class, SQLSTATE) → (count, first message).
    errors: BTreeMap<(usize, usize, String), (u64, String)>,
    /// Per slot: operations that finished, ok or error.
    finished: Vec<u64>,
    /// Operations cut short when the run ended.
    cut: u64,
    /// Open loop: how late this worker began the operations it waited for
    /// (µs after their intended start).
    pub lag: Option<Hist>,
}

impl Measurement {
    /// Counts a failure of `class` in `slot` under its SQLSTATE, keeping the first message.
    pub fn error(&mut self, slot: Slot, class: usize, code: String, message: impl FnOnce() -> String) {
        self.errors.entry((slot.index(), class, code)).or_insert_with(|| (0, message())).0 += 1;
    }

    /// Records one latency (µs) of `class` in `slot`, ok or not.
    pub fn latency(&mut self, class: usize, slot: Slot, us: u64) {
        if self.local.as_ref().is_some_and(|(s, _)| *s != slot) {
            self.flush();
        }
        let classes = self.sink.classes;
        let (_, hists) = self.local.get_or_insert_with(|| (slot, vec![None; classes]));
        if let Some(h) = hists.get_mut(class) {
            let _ = h.get_or_insert_with(new_hist).record(us.max(1));
        }
    }

    /// An operation cut short when the run ended: it counts in latency with
    /// the time it had waited (`us`), and as unfinished.
    pub fn cut(&mut self, class: usize, slot: Slot, us: u64) {
        self.latency(class, slot, us);
        self.cut += 1;
        self.sink.seconds.lock().expect("seconds").started(Instant::now(), class, us, true);
    }

    /// One finished operation of `class` in `slot`, done at `done`: its
    /// latency (µs) from the intended start, ok or not, and on failure its
    /// SQLSTATE and message.
    pub fn finished(
        &mut self,
        (class, slot): (usize, Slot),
        done: Instant,
        latency: u64,
        outcome: Result<(), (String, impl FnOnce() -> String)>,
    ) {
        self.latency(class, slot, latency);
        let ok = outcome.is_ok();
        if let Err((code, message)) = outcome {
            self.error(slot, class, code, message);
        }
        if let Some(n) = self.finished.get_mut(slot.index()) {
            *n += 1;
        }
        self.pend(Done { at: done, class: class as u32, ok, latency });
    }

    /// Keeps `d` for `Seconds`; first hands every driver's pending
    /// operations over when `d` finished in another second than those kept,
    /// or when the list is full, and closes the seconds before `d`'s.
    fn pend(&mut self, d: Done) {
        let second = d.at.saturating_duration_since(self.sink.start).as_secs();
        let mut p = self.pending.lock().expect("pending");
        if !p.done.is_empty() && (p.second != second || p.done.len() >= PENDING) {
            drop(p);
            let mut secs = self.sink.seconds.lock().expect("seconds");
            self.sink.hand_over(&mut secs);
            // The seconds before this operation's are complete: close them
            // now (for the live status line), as recording it would.
            secs.advance(d.at);
            drop(secs);
            p = self.pending.lock().expect("pending");
        }
        if p.done.is_empty() {
            p.second = second;
        }
        p.done.push(d);
    }

    /// Merges the local slot's latency into the sink's histograms.
    fn flush(&mut self) {
        let Some((slot, hists)) = self.local.take() else { return };
        let mut shared = self.sink.latencies.lock().expect("latencies");
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An operation's outcome as `Measurement::finished` takes it.
    type Outcome = Result<(), (String, fn() -> String)>;

    fn ok() -> Outcome {
        Ok(())
    }

    #[test]
    fn handed_over_operations_land_in_the_second_they_finished() {
        let start = Instant::now() - Duration::from_secs(5);
        let at = |ms| start + Duration::from_millis(ms);
        let sink = Sink::new(start, 2, Slot::count(0));
        let (mut a, mut b) = (sink.measurement(), sink.measurement());
        a.finished((0, Slot::Baseline), at(100), 100, ok());
        b.finished((1, Slot::Baseline), at(900), 200, ok());
        // Nothing is in the per-second figures yet: each driver keeps its own.
        assert!(sink.seconds().lock().unwrap().last().is_none());
        // `a` finishes in second 1: both lists are handed over (b, blocked, records
        // nothing more) and second 0 closes with both of its operations.
        let failed: Outcome = Err(("57014".into(), || "cancelled".to_string()));
        a.finished((0, Slot::Baseline), at(1_100), 300, failed);
        assert_eq!(sink.seconds().lock().unwrap().last().map(|s| s.ops), Some(2));
        let mut rec = WorkloadRecord::default();
        sink.merge(vec![a, b], &mut rec);
        let ops: Vec<u64> = rec.seconds.iter().take(2).map(|s| s.ops).collect();
        assert_eq!(ops, [2, 1]);
        assert_eq!((rec.seconds[0].classes[1].ops, rec.seconds[1].errors), (1, 1));
        assert!((200..=203).contains(&rec.seconds[0].p99_us), "{}", rec.seconds[0].p99_us);
        assert_eq!(rec.started.iter().take(2).map(|s| s.ops).collect::<Vec<_>>(), [2, 1]);
    }
}
