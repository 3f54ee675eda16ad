//! Fuzz target: a recorded PostgreSQL log (csvlog and stderr formats),
//! statements extracted, parameters inlined and fingerprinted, through the
//! harness shared with `tests/it/pure/fuzz_regressions.rs`.

#![no_main]

#[path = "../../tests/fuzz_harness/mod.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    harness::log(data);
});
