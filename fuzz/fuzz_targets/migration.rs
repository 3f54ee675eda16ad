//! Fuzz target: a migration file (split with pg_query, `-- lockimpact:`
//! directives, transaction-mode checks), through the harness shared with
//! `tests/it/pure/fuzz_regressions.rs`.

#![no_main]

#[path = "../../tests/fuzz_harness/mod.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    harness::migration(data);
});
