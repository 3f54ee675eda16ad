//! The phase clock shared by the workload, the sampler and the migration
//! runner: which phase (warmup, baseline, migration step i, after) is current,
//! and when each began. Operations and samples are tagged with the phase
//! current at their intended start.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A phase of the run, encoded as a small integer so it can live in an atomic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    Warmup,
    Baseline,
    /// Migration running, outside any step (BEGIN, COMMIT, between steps).
    Between,
    Step(usize),
    After,
}

impl Slot {
    pub fn index(self) -> usize {
        match self {
            Slot::Warmup => 0,
            Slot::Baseline => 1,
            Slot::Between => 2,
            Slot::After => 3,
            Slot::Step(i) => 4 + i,
        }
    }
    pub fn from_index(i: usize) -> Slot {
        match i {
            0 => Slot::Warmup,
            1 => Slot::Baseline,
            2 => Slot::Between,
            3 => Slot::After,
            n => Slot::Step(n - 4),
        }
    }
    /// Number of slots for a migration of `steps` steps.
    pub fn count(steps: usize) -> usize {
        4 + steps
    }
    /// True while the migration runs (a step, or between steps).
    pub fn is_during(self) -> bool {
        matches!(self, Slot::Between | Slot::Step(_))
    }
}

/// When a slot began, relative to the clock's start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mark {
    pub slot: Slot,
    pub at: Duration,
}

#[derive(Debug)]
pub struct Clock {
    pub start: Instant,
    current: AtomicUsize,
    marks: Mutex<Vec<Mark>>,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            start: Instant::now(),
            current: AtomicUsize::new(0),
            marks: Mutex::new(vec![Mark { slot: Slot::Warmup, at: Duration::ZERO }]),
        }
    }

    pub fn current(&self) -> Slot {
        Slot::from_index(self.current.load(Ordering::Acquire))
    }

    pub fn enter(&self, slot: Slot) {
        let at = self.start.elapsed();
        self.current.store(slot.index(), Ordering::Release);
        self.marks.lock().expect("clock marks").push(Mark { slot, at });
    }

    pub fn since_start(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.start)
    }

    /// The slot that was current at `t` (not later than now): the last mark
    /// at or before it.
    pub fn slot_at(&self, t: Instant) -> Slot {
        let at = self.since_start(t);
        let marks = self.marks.lock().expect("clock marks");
        marks.iter().rev().find(|m| m.at <= at).map_or(Slot::Warmup, |m| m.slot)
    }

    pub fn marks(&self) -> Vec<Mark> {
        self.marks.lock().expect("clock marks").clone()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}
