//! The workload a rehearsal replays, resolved by `scenario` from the
//! workload files: classes, rate, connections, seed, or a session replay.

use std::path::PathBuf;
use std::time::Duration;

use super::file::Class;

#[derive(Debug, Clone)]
pub struct WorkloadPlan {
    pub path: PathBuf,
    /// The rendered workload files, in order: two plans with the same text,
    /// rate, connections, seed and timeout replay the same schedule.
    pub source: String,
    pub classes: Vec<Class>,
    /// Target rate of the weighted classes (ops/s).
    pub rate: f64,
    pub connections: u32,
    pub seed: u64,
    pub statement_timeout: Duration,
    /// `workload.replay`: a session replay instead of paced classes, and its speed.
    pub replay: Option<std::sync::Arc<super::replay::Replay>>,
    pub speed: f64,
    /// `workload.pool`: the replay's connection pool size (default from max_connections).
    pub pool: Option<u32>,
}
