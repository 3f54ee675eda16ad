//! One rehearsal, following the data flow: template (`prepare`, once per
//! dataset) → fresh copy → workload, sampler and migration running together
//! under the phase clock → RunRecord (`rehearse`, once per candidate).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::clone::Server;
use crate::clone::template::{self, Dataset, connect};
use crate::error::{Error, Result, describe_pg};
use crate::migration::runner::Runner;
use crate::record::{MigrationRecord, RunRecord};
use crate::sampler::{Roles, Sampler};
use crate::scenario::Plan;
use crate::status::Progress;
use crate::timeline::{Clock, Slot};
use crate::workload;

/// The database each rehearsal runs on, copied fresh from the template.
pub const RUN_DB: &str = "lockimpact_run";

/// How long queued operations may take to finish after the cooldown.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

async fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) -> Result<()> {
    tokio::select! {
        _ = tokio::time::sleep(d) => Ok(()),
        _ = cancel.cancelled() => Err(Error::interrupted()),
    }
}

/// Builds the template database the rehearsals copy.
pub async fn prepare(plan: &Plan, server: &Server, progress: &Progress) -> Result<Dataset> {
    let say = |msg: &str| progress.say(msg);
    say(&format!("clone: {}", server.describe()));
    let dataset = template::prepare(server, plan, &say).await?;
    if let Some(t) = dataset.restore_time {
        say(&format!(
            "restored in {:.1} s, {}",
            t.as_secs_f64(),
            crate::report::render::fmt_bytes(dataset.bytes.unwrap_or(0).max(0) as u64)
        ));
    }
    for t in &dataset.tables {
        say(&format!("  {}: {} rows, {}", t.name, t.rows, crate::report::render::fmt_bytes(t.bytes.max(0) as u64)));
    }
    Ok(dataset)
}

/// Runs one rehearsal of `plan` on a fresh copy of the template.
pub async fn rehearse(
    plan: &Plan,
    server: &Server,
    dataset: &Dataset,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<RunRecord> {
    let say = |msg: &str| progress.say(msg);
    let say = &say;
    let copy_time = template::fresh_copy(server, RUN_DB).await?;

    let admin = connect(server, RUN_DB, "admin").await?;
    let server_version: String =
        admin.query_one("SHOW server_version", &[]).await.map_err(|e| Error::db(describe_pg(&e)))?.get(0);
    let mut classes = plan.workload.classes.clone();
    workload::bind_samples(&mut classes, &admin, &plan.workload.path.display().to_string()).await?;
    workload::bind_scale(&mut classes, &admin, &plan.workload.path.display().to_string()).await?;
    drop(admin);

    let roles = Arc::new(Roles::new(&classes));
    let migration_client = connect(server, RUN_DB, "migration").await?;
    let mig_pid: i32 = migration_client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .map_err(|e| Error::db(describe_pg(&e)))?
        .get(0);
    roles.set_migration(mig_pid);

    let sampler_client = connect(server, RUN_DB, "sampler").await?;

    let clock = Arc::new(Clock::new());
    let slots = Slot::count(plan.migration.steps.len());
    let workload =
        workload::start(&plan.workload, classes, server.config(RUN_DB), clock.clone(), roles.clone(), slots).await?;
    let sampler = Sampler::start(sampler_client, plan.sampler_interval, clock.clone(), roles.clone());
    let live = progress.live_line(
        clock.clone(),
        plan.migration.steps.iter().map(|s| s.name.clone()).collect(),
        workload.seconds(),
        sampler.live(),
    );

    say(&format!("warmup {} ms at {} ops/s", plan.phases.warmup.as_millis(), plan.workload.rate));
    sleep_or_cancel(plan.phases.warmup, cancel).await?;
    clock.enter(Slot::Baseline);
    say(&format!("baseline {} ms", plan.phases.baseline.as_millis()));
    sleep_or_cancel(plan.phases.baseline, cancel).await?;

    say(&format!(
        "migration: {} steps, transaction {}",
        plan.migration.steps.len(),
        plan.migration.transaction.as_str()
    ));
    let mut migration =
        MigrationRecord { file: plan.migration_path.display().to_string(), pid: mig_pid, ..Default::default() };
    let runner = Runner { client: &migration_client, clock: clock.clone(), cancel: cancel.clone(), say };
    runner.run(&plan.migration, &mut migration).await;
    if cancel.is_cancelled() {
        return Err(Error::interrupted());
    }
    clock.enter(Slot::After);
    say(&format!(
        "after the migration {} ms (queued operations: {})",
        plan.phases.cooldown.as_millis(),
        workload.queued()
    ));
    sleep_or_cancel(plan.phases.cooldown, cancel).await?;

    let finishing = Instant::now();
    let end = clock.since_start(finishing);
    let workload = workload.finish(DRAIN_GRACE).await;
    let sampler = sampler.finish().await;
    live.finish().await;
    Ok(RunRecord {
        scenario_name: plan.name.clone(),
        scenario_path: plan.scenario_path.display().to_string(),
        clone_description: server.describe(),
        server_version,
        tables: dataset.tables.clone(),
        seed_time: dataset.seed_time,
        copy_time,
        restore_time: dataset.restore_time,
        dataset_bytes: dataset.bytes,
        dump: plan.dump.as_ref().map(|d| (d.path.display().to_string(), d.format.as_str().to_string())),
        dataset_notes: dataset.notes.clone(),
        marks: clock.marks(),
        end,
        workload,
        migration,
        sampler,
        budget: plan.budget.clone(),
    })
}
