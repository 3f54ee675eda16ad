//! One measured run, wired the same way for a rehearsal and for
//! `lockimpact bench`: the phase clock starts, the workload opens and
//! prepares its connections and starts, and the lock sampler (when there is
//! one) polls on its own session; `finish` stops both and returns what they
//! measured. Who is who (`Roles`) is filled by the caller before (the
//! migration's session) and by the workload's sessions as they open.

use std::sync::Arc;
use std::time::Duration;

use crate::clone::sessions::Sessions;
use crate::error::Result;
use crate::pg::Target;
use crate::run_record::{SamplerRecord, WorkloadRecord};
use crate::sampler::{Reconnect, Sampler};
use crate::timeline::Clock;
use crate::workload::{self, Roles, WorkloadPlan, file::Class};

/// The lock sampler of a measured run: its own session, how often it polls,
/// and how it opens another when its session ends (`None`: it does not).
pub struct Sampling {
    pub client: tokio_postgres::Client,
    pub interval: Duration,
    pub reconnect: Option<Reconnect>,
}

/// What a measured run is wired from.
pub struct Wiring<'a> {
    pub plan: &'a WorkloadPlan,
    /// The workload's classes, bound to the run database (samples, scale).
    pub classes: Vec<Class>,
    /// The run database.
    pub target: Target,
    pub roles: Arc<Roles>,
    /// Where every session the run opens is registered, so none outlives it.
    pub sessions: Arc<Sessions>,
    /// How many slots the clock has (`Slot::count` of the migration's steps).
    pub slots: usize,
    pub sampling: Option<Sampling>,
    /// The run database on the clone's first standby, for `target = "replica"` classes.
    pub replica: Option<Target>,
}

/// A measured run in progress: its clock, workload and sampler.
pub struct Measured {
    pub clock: Arc<Clock>,
    pub workload: workload::Workload,
    pub sampler: Option<Sampler>,
}

/// Starts the clock (warmup), then the workload (every connection open and
/// prepared before its first operation), then the sampler.
pub async fn start(w: Wiring<'_>) -> Result<Measured> {
    let clock = Arc::new(Clock::new());
    let workload =
        workload::start(w.plan, w.classes, (w.target, w.replica), clock.clone(), w.roles.clone(), w.sessions, w.slots)
            .await?;
    let sampler = w.sampling.map(|s| Sampler::start(s.client, s.interval, clock.clone(), w.roles.clone(), s.reconnect));
    Ok(Measured { clock, workload, sampler })
}

impl Measured {
    /// Stops the workload (queued operations may finish for up to `grace`),
    /// then the sampler; returns what each measured.
    pub async fn finish(self, grace: Duration) -> (WorkloadRecord, Option<SamplerRecord>) {
        let workload = self.workload.finish(grace).await;
        let sampler = match self.sampler {
            Some(s) => Some(s.finish().await),
            None => None,
        };
        (workload, sampler)
    }
}
