//! One rehearsal, following the data flow: template (`prepare`, once per
//! dataset) → fresh copy → workload, sampler and migration running together
//! under the phase clock → RunRecord (`rehearse`, once per candidate).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::clone::Server;
use crate::clone::template::{self, Dataset, connect};
use crate::error::{Error, Result, describe_pg};
use crate::migration::capture::{self, Capture};
use crate::migration::runner::Runner;
use crate::migration::{Migration, Source, history, preflight};
use crate::record::{MigrationRecord, RunRecord, Stop};
use crate::sampler::{Roles, Sampler};
use crate::scenario::Plan;
use crate::status::Progress;
use crate::timeline::{Clock, Slot};
use crate::workload;

/// The database each rehearsal runs on, copied fresh from the template.
pub const RUN_DB: &str = "lockimpact_run";

/// How long queued operations may take to finish after the cooldown.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// How long queued operations may take to finish when the run stops early.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// Sleeps through a phase unless the run is interrupted or the server is lost.
async fn wait_phase(d: Duration, cancel: &CancellationToken, lost: &CancellationToken) -> Result<(), Stop> {
    tokio::select! {
        _ = tokio::time::sleep(d) => Ok(()),
        _ = cancel.cancelled() => Err(Stop::Interrupted),
        _ = lost.cancelled() => Err(Stop::ServerLost),
    }
}

impl Stop {
    /// Why the run must stop now, if it must.
    fn check(cancel: &CancellationToken, lost: &CancellationToken, migration: &tokio_postgres::Client) -> Option<Stop> {
        if cancel.is_cancelled() {
            Some(Stop::Interrupted)
        } else if lost.is_cancelled() || migration.is_closed() {
            Some(Stop::ServerLost)
        } else {
            None
        }
    }
}

/// Builds the template database the rehearsals copy.
pub async fn prepare(plan: &Plan, server: &Server, progress: &Progress) -> Result<Dataset> {
    let say = |msg: &str| progress.say(msg);
    say(&format!("clone: {}", server.describe()));
    let dataset = match server.existing_database() {
        Some(db) => crate::clone::url::inspect(server, &db).await?,
        None => template::prepare(server, plan, &say).await?,
    };
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

/// The migration to rehearse on this copy (a directory's pending
/// migrations), after applying, unmeasured, the pending ones before `--from`
/// (returned second).
async fn choose(
    plan: &Plan,
    client: &tokio_postgres::Client,
    say: &(dyn Fn(&str) + Sync),
) -> Result<(Migration, Migration, Option<crate::record::Selection>)> {
    let chosen = history::choose(&plan.migration, client).await?;
    let mut selection = chosen.selection;
    if let Some(sel) = selection.as_mut() {
        say(&format!(
            "{}: {} migrations, {} recorded as applied, {} to rehearse{}",
            sel.format,
            sel.found,
            sel.applied.len(),
            chosen.run.groups.len(),
            sel.history_table.as_ref().map(|t| format!(" (history: {t})")).unwrap_or_default()
        ));
        if !chosen.before.groups.is_empty() {
            say(&format!(
                "applying {} before the baseline, unmeasured: {}",
                chosen.before.groups.len(),
                sel.applied_before_baseline.join(", ")
            ));
            sel.setup_time = history::apply(client, &chosen.before).await?;
        }
    }
    Ok((chosen.run, chosen.before, selection))
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
    // A disposable server: a fresh copy of the template; an existing one: its database.
    let (run_db, copy_time) = match server.existing_database() {
        Some(db) => (db, Duration::ZERO),
        None => (RUN_DB.to_string(), template::fresh_copy(server, RUN_DB).await?),
    };
    let run_db = run_db.as_str();

    let admin = connect(server, run_db, "admin").await?;
    let server_version: String =
        admin.query_one("SHOW server_version", &[]).await.map_err(|e| Error::db(describe_pg(&e)))?.get(0);
    let mut classes = plan.workload.classes.clone();
    workload::bind_samples(&mut classes, &admin, &plan.workload.path.display().to_string()).await?;
    workload::bind_scale(&mut classes, &admin, &plan.workload.path.display().to_string()).await?;
    drop(admin);

    let roles = Arc::new(Roles::new(&classes));
    let migration_client = connect(server, run_db, "migration").await?;
    let mig_pid: i32 = migration_client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .map_err(|e| Error::db(describe_pg(&e)))?
        .get(0);
    roles.set_migration(mig_pid);

    let sampler_client = connect(server, run_db, "sampler").await?;
    let (migration, before, selection) = choose(plan, &migration_client, say).await?;
    let preflight = if plan.preflight {
        tokio::select! {
            r = preflight::run(server, run_db, &migration, &before, say) => r?,
            _ = cancel.cancelled() => return Err(Error::interrupted()),
        }
    } else {
        None
    };
    let command = match &plan.migration.source {
        Source::Command { command, cwd } => Some((capture::prepare(server, &migration_client).await?, command, cwd)),
        _ => None,
    };

    let clock = Arc::new(Clock::new());
    let slots = Slot::count(migration.steps.len());
    let workload =
        workload::start(&plan.workload, classes, server.config(run_db), clock.clone(), roles.clone(), slots).await?;
    let sampler = Sampler::start(sampler_client, plan.sampler_interval, clock.clone(), roles.clone());
    let live = progress.live_line(
        clock.clone(),
        migration.steps.iter().map(|s| s.name.clone()).collect(),
        workload.seconds(),
        sampler.live(),
    );

    // From here on, whatever happens, what was measured is kept: an
    // interruption or a lost server ends the phases early and the record is
    // marked incomplete.
    let lost = sampler.lost();
    let stopped = |why: &Stop| say(&format!("stopping early: {}", why.reason()));
    let mut record = MigrationRecord {
        file: plan.migration_path.display().to_string(),
        pid: mig_pid,
        source: Some(plan.migration.source.describe()),
        selection,
        preflight,
        ..Default::default()
    };
    let mut stop = None;
    say(&format!("warmup {} ms at {} ops/s", plan.phases.warmup.as_millis(), plan.workload.rate));
    if let Err(why) = wait_phase(plan.phases.warmup, cancel, &lost).await {
        stop = Some(why);
    }
    if stop.is_none() {
        clock.enter(Slot::Baseline);
        say(&format!("baseline {} ms", plan.phases.baseline.as_millis()));
        stop = wait_phase(plan.phases.baseline, cancel, &lost).await.err();
    }
    if stop.is_none() {
        if command.is_none() {
            say(&format!(
                "migration: {} steps in {} groups, transaction {}",
                migration.steps.len(),
                migration.groups.len(),
                migration.transaction_name()
            ));
        }
        match &command {
            Some((prepared, command, cwd)) => {
                let capture = Capture {
                    server,
                    db: run_db,
                    client: &migration_client,
                    clock: clock.clone(),
                    roles: roles.clone(),
                    cancel: cancel.clone(),
                    poll: plan.sampler_interval,
                    say,
                };
                capture.run(prepared, command, cwd, &mut record).await;
            }
            None => {
                let runner = Runner { client: &migration_client, clock: clock.clone(), cancel: cancel.clone(), say };
                runner.run(&migration, &mut record).await;
            }
        }
        stop = Stop::check(cancel, &lost, &migration_client);
    }
    if stop.is_none() {
        clock.enter(Slot::After);
        say(&format!(
            "after the migration {} ms (queued operations: {})",
            plan.phases.cooldown.as_millis(),
            workload.queued()
        ));
        stop = wait_phase(plan.phases.cooldown, cancel, &lost).await.err();
    }
    if let Some(why) = &stop {
        stopped(why);
    }

    let finishing = Instant::now();
    let end = clock.since_start(finishing);
    let workload = workload.finish(if stop.is_some() { STOP_GRACE } else { DRAIN_GRACE }).await;
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
        migration: record,
        stop,
        sampler,
        budget: plan.budget.clone(),
    })
}
