//! `lockimpact record`: turns what production runs into a workload. Not to be
//! confused with `crate::run_record` (the raw measurements of one rehearsal).
//!
//! - `stat_statements`: rates per statement from two or more reads of
//!   `pg_stat_statements` → a rate-based workload file.
//! - `log`: PostgreSQL csvlog / stderr logs → a session replay file
//!   (`replay`) or a rate-based workload file grouped by fingerprint.
//! - `infer`: parameter generators inferred from the parse tree.
//! - `write`: writes the workload file both produce.
//!
//! Recording never writes to the source: every connection is read-only
//! (`default_transaction_read_only`, `BEGIN READ ONLY`) and passwords in URLs
//! are never printed (`crate::pg::ConnInfo`).

pub mod infer;
pub mod log;
pub mod stat_statements;
pub mod write;

use crate::cli::{RecordArgs, RecordCommand};
use crate::error::Result;

/// `lockimpact record …`.
pub async fn record(args: &RecordArgs) -> Result<()> {
    match &args.command {
        RecordCommand::StatStatements(a) => stat_statements::record(a).await,
        RecordCommand::Log(a) => log::record(a).await,
    }
}
