//! The budget a run is judged against: the `[budget]` section of a scenario
//! (and the budget flags), kept in the run record for the verdict.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::files::dur::Dur;

/// Thresholds for the pass/fail verdict; any violation gives exit code 1.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct BudgetSection {
    /// Total time workload sessions spent blocked by the migration.
    pub max_blocked: Option<Dur>,
    /// Longest single wait of a workload session blocked by the migration.
    pub max_blocked_wait: Option<Dur>,
    /// Most workload sessions blocked by the migration at once.
    pub max_blocked_sessions: Option<u32>,
    /// p99 latency of any query class while the migration runs.
    pub max_p99_during: Option<Dur>,
    /// p99 latency of one query class while the migration runs (class → limit).
    #[serde(default)]
    pub max_p99_during_class: BTreeMap<String, Dur>,
    /// Duration of the longest migration step.
    pub max_step: Option<Dur>,
    /// Workload errors over the whole run.
    pub max_errors: Option<u64>,
    /// A step that makes a query class fail with a SQLSTATE it did not fail
    /// with in the baseline: a violation unless `"allowed"` (default `"not_allowed"`).
    #[serde(default)]
    pub new_errors: NewErrors,
    /// Largest `replay_lag` of any standby (`[replica]`), as the primary reports it.
    pub max_replica_lag: Option<Dur>,
    /// Largest replay lag of any standby in bytes.
    pub max_replica_lag_bytes: Option<u64>,
    /// Standby queries cancelled by recovery conflicts (all standbys).
    pub max_standby_cancels: Option<u64>,
    /// Longest wait of a standby session blocked by a lock replayed from the primary.
    pub max_standby_blocked: Option<Dur>,
    /// Largest commit latency the synchronous standby adds on the primary
    /// (`sync_commit.max_added_ms`; needs `[replica] synchronous = true`).
    pub max_sync_commit_added: Option<Dur>,
    /// Errors of the logical subscriber (apply and sync errors; needs `[replica] logical = true`).
    pub max_subscriber_errors: Option<u64>,
}

/// The budget keys that judge the clone's standbys (`[replica]`).
pub const REPLICA_BUDGETS: [&str; 6] = [
    "max_replica_lag",
    "max_replica_lag_bytes",
    "max_standby_cancels",
    "max_standby_blocked",
    "max_sync_commit_added",
    "max_subscriber_errors",
];

/// Whether new error classes caused by the migration are allowed by the budget.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NewErrors {
    /// A new error class is a violation (the default).
    #[default]
    NotAllowed,
    /// New error classes are reported, not judged.
    Allowed,
}

/// The longest a workload session may wait on the migration under the
/// default budget (see `BudgetSection::default_budget`).
pub const DEFAULT_MAX_BLOCKED_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

impl BudgetSection {
    /// True when no threshold is set: the scenario has no `[budget]` (or an
    /// empty one) and no budget flag was given.
    pub fn is_unset(&self) -> bool {
        let BudgetSection {
            max_blocked,
            max_blocked_wait,
            max_blocked_sessions,
            max_p99_during,
            max_p99_during_class,
            max_step,
            max_errors,
            new_errors,
            max_replica_lag,
            max_replica_lag_bytes,
            max_standby_cancels,
            max_standby_blocked,
            max_sync_commit_added,
            max_subscriber_errors,
        } = self;
        max_blocked.is_none()
            && max_blocked_wait.is_none()
            && max_blocked_sessions.is_none()
            && max_p99_during.is_none()
            && max_p99_during_class.is_empty()
            && max_step.is_none()
            && max_errors.is_none()
            && *new_errors == NewErrors::default()
            && max_replica_lag.is_none()
            && max_replica_lag_bytes.is_none()
            && max_standby_cancels.is_none()
            && max_standby_blocked.is_none()
            && max_sync_commit_added.is_none()
            && max_subscriber_errors.is_none()
    }

    /// The budget of a scenario that sets none: no workload session waits on
    /// the migration longer than `DEFAULT_MAX_BLOCKED_WAIT`, no new error
    /// class (`new_errors`' default), and, as under every budget, the
    /// migration completes.
    pub fn default_budget() -> BudgetSection {
        BudgetSection { max_blocked_wait: Some(Dur(DEFAULT_MAX_BLOCKED_WAIT)), ..BudgetSection::default() }
    }
}
