//! Latency per query class and phase, and the distribution of all classes
//! together at fixed percentiles.

use std::collections::BTreeMap;

use super::{latency, merged, slot_errors, us_to_ms};
use crate::report::model::{Latency, Percentile, Phase};
use crate::run_record::{Hist, WorkloadRecord};
use crate::timeline::Slot;

/// The percentiles of `latency_percentiles` (100 is the maximum).
const PERCENTILES: &[f64] = &[50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0];

/// Whether a slot belongs to a measured phase.
fn in_phase(phase: Phase, s: Slot) -> bool {
    match phase {
        Phase::Warmup => s == Slot::Warmup,
        Phase::Baseline => s == Slot::Baseline,
        Phase::During => s.is_during(),
        Phase::After => s == Slot::After,
    }
}

/// The measured phase a slot belongs to; `None` for warmup.
pub fn phase_of(s: Slot) -> Option<Phase> {
    Phase::MEASURED.into_iter().find(|&p| in_phase(p, s))
}

/// Per measured phase: `slots` (indexed by slot) merged over the phase's slots.
pub fn per_phase(slots: &[Option<Hist>]) -> [(Phase, Option<Hist>); 3] {
    Phase::MEASURED.map(|phase| {
        let hists = slots.iter().enumerate().filter(|(i, _)| in_phase(phase, Slot::from_index(*i))).map(|(_, h)| h);
        (phase, merged(hists))
    })
}

/// class → phase → latency, with the errors of that class in that phase.
pub fn by_class(w: &WorkloadRecord) -> BTreeMap<String, BTreeMap<Phase, Latency>> {
    let mut lat: BTreeMap<String, BTreeMap<Phase, Latency>> = BTreeMap::new();
    for (c, name) in w.classes.iter().enumerate() {
        let entry = lat.entry(name.clone()).or_default();
        for (phase, h) in per_phase(&w.latency[c]) {
            let errors = slot_errors(w, c, |s| phase_of(s) == Some(phase));
            entry.insert(phase, Latency { errors, ..h.as_ref().map(latency).unwrap_or_default() });
        }
    }
    lat
}

/// phase → the distribution of all classes together, at `PERCENTILES`.
pub fn percentiles(w: &WorkloadRecord) -> BTreeMap<Phase, Vec<Percentile>> {
    Phase::MEASURED
        .into_iter()
        .filter_map(|phase| {
            let h = merged(w.latency.iter().flat_map(|slots| {
                slots.iter().enumerate().filter(|(i, _)| in_phase(phase, Slot::from_index(*i))).map(|(_, h)| h)
            }))?;
            let points = PERCENTILES
                .iter()
                .map(|&p| Percentile { percentile: p, ms: us_to_ms(h.value_at_quantile(p / 100.0)) })
                .collect();
            Some((phase, points))
        })
        .collect()
}
