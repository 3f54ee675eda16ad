//! Fuzz target: a scenario file plus `--set` overrides (after a `#--set`
//! line), loaded with `scenario::load`, through the harness shared with
//! `tests/it/pure/fuzz_regressions.rs`.

#![no_main]

#[path = "../../tests/fuzz_harness/mod.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    harness::scenario(data);
});
