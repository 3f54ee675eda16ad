//! The pure tier: no PostgreSQL server. Parsers, renderers (golden files),
//! the report builder and verdict on built run records (insta snapshots),
//! and bad input, which the binary refuses before anything starts.

mod architecture;
mod bad_input;
mod docs;
mod fuzz_regressions;
mod golden;
mod hints;
mod html_browser;
pub mod migration_dirs;
mod record_builder;
mod renderers;
mod replica_report;
mod report_builder;
mod verdict;
