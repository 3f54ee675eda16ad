//! The candidate migration: split into steps (`split`), resolved against the
//! scenario's defaults (`load`), and applied step by step (`runner`).

pub mod runner;
pub mod split;

use std::path::Path;
use std::time::Duration;

pub use split::{OnError, StepKind, TxMode};

use crate::error::{Error, Result};

/// A migration step ready to run: directive options resolved against the
/// scenario's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub line: usize,
    pub kind: StepKind,
    pub lock_timeout: Duration,
    pub statement_timeout: Duration,
    pub retries: u32,
    pub retry_backoff: Duration,
    pub on_error: OnError,
}

#[derive(Debug, Clone)]
pub struct Migration {
    pub transaction: TxMode,
    pub steps: Vec<Step>,
}

/// Scenario-level defaults for every step.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub transaction: Option<TxMode>,
    pub lock_timeout: Duration,
    pub statement_timeout: Duration,
    pub retries: u32,
    pub retry_backoff: Duration,
    pub on_error: OnError,
}

/// Reads, splits and validates a migration file.
pub fn load(path: &Path, defaults: &Defaults) -> Result<Migration> {
    let file = path.display();
    let bytes =
        std::fs::read(path).map_err(|e| Error::input(format!("{file}: cannot read the migration file: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::input(format!("{file}: not valid UTF-8 ({}); save it as UTF-8", crate::scenario::utf8_place(&e)))
    })?;
    // A byte-order mark (editors on Windows write one) is not SQL.
    parse(text.strip_prefix('\u{feff}').unwrap_or(&text), path, defaults)
}

/// Splits and validates the text of a migration file; `path` only names the
/// file in messages. (What `load` does once the file is read.)
pub fn parse(text: &str, path: &Path, defaults: &Defaults) -> Result<Migration> {
    let file = path.display();
    if text.trim().is_empty() {
        return Err(Error::input(format!("{file}: the migration file is empty")));
    }
    let parsed = split::split(text).map_err(|e| Error::input(format!("{file}:{}: {}", e.line, e.message)))?;
    let transaction = parsed.transaction.or(defaults.transaction).unwrap_or(TxMode::File);
    let steps: Vec<Step> = parsed
        .steps
        .into_iter()
        .map(|s| Step {
            name: s.name,
            line: s.line,
            kind: s.kind,
            lock_timeout: s.options.lock_timeout.unwrap_or(defaults.lock_timeout),
            statement_timeout: s.options.statement_timeout.unwrap_or(defaults.statement_timeout),
            retries: s.options.retries.unwrap_or(defaults.retries),
            retry_backoff: s.options.retry_backoff.unwrap_or(defaults.retry_backoff),
            on_error: s.options.on_error.unwrap_or(defaults.on_error),
        })
        .collect();
    for step in &steps {
        let statements: Vec<&split::Statement> = match &step.kind {
            StepKind::Sql(s) => s.iter().collect(),
            StepKind::Backfill { statement, .. } => vec![statement],
            StepKind::Pause(_) => vec![],
        };
        for s in statements {
            if transaction == TxMode::None {
                continue;
            }
            if let Some(what) = s.needs_autocommit {
                return Err(Error::input(format!(
                    "{file}:{}: statement {} uses {what}, which cannot run inside a transaction block; \
                     add `-- lockimpact: transaction none` at the top of the file or set migration.transaction = \"none\"",
                    s.line, s.number
                )));
            }
            if s.is_transaction_control {
                return Err(Error::input(format!(
                    "{file}:{}: statement {} controls transactions itself; remove it and choose the mode with \
                     migration.transaction = \"file\" | \"step\" | \"none\" (or use \"none\" to keep your own BEGIN/COMMIT)",
                    s.line, s.number
                )));
            }
        }
    }
    Ok(Migration { transaction, steps })
}
