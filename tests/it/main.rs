//! The integration tests, one binary (one link of the library instead of one
//! per file): `pure` needs no server (parsers, renderers, the report builder,
//! bad input refused before anything starts), `pg` starts disposable
//! PostgreSQL servers. Run a tier with `cargo nextest run -E 'test(/^pure::/)'`
//! (or `cargo test --test it pure::`). Tests that need Docker or root are in
//! `tests/env` (their own harness, so that the runner reports them skipped).

#![allow(unsafe_code, clippy::undocumented_unsafe_blocks)] // signals, rlimits and users for the processes under test

#[path = "../common/mod.rs"]
mod common;
#[path = "../fuzz_harness/mod.rs"]
mod fuzz_harness;

mod pg;
mod pure;
