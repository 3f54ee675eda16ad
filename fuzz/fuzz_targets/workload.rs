//! Fuzz target: a workload file (`{{var}}` templates rendered, then parsed and
//! validated, each generator drawing a value), through the harness shared with
//! `tests/it/pure/fuzz_regressions.rs`.

#![no_main]

#[path = "../../tests/fuzz_harness/mod.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    harness::workload(data);
});
