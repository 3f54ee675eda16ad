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
        Some(db) => crate::clone::url::inspect(server, &db, &say).await?,
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

/// Applies the migration of one rehearsal on its connection: chooses and
/// checks it before the workload starts, then runs it step by step (or runs
/// the framework command and captures its statements).
struct Applier<'a> {
    plan: &'a Plan,
    server: &'a Server,
    run_db: &'a str,
    client: &'a tokio_postgres::Client,
    cancel: &'a CancellationToken,
    say: &'a (dyn Fn(&str) + Sync),
}

impl Applier<'_> {
    /// On the fresh copy, before the workload: the migrations to rehearse (a
    /// directory's pending ones, after applying those before `--from`,
    /// unmeasured), their preflight checks, and a command's role.
    async fn prepare(&self, record: &mut MigrationRecord) -> Result<(Migration, Option<capture::Prepared>)> {
        let say = self.say;
        let chosen = history::choose(&self.plan.migration, self.client).await?;
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
                sel.setup_time = history::apply(self.client, &chosen.before).await?;
            }
        }
        record.selection = selection;
        if self.plan.preflight {
            record.preflight = tokio::select! {
                r = preflight::run(self.server, self.run_db, &chosen.run, &chosen.before, say) => r?,
                _ = self.cancel.cancelled() => return Err(Error::interrupted()),
            };
        }
        let prepared = match &self.plan.migration.source {
            Source::Command { .. } => Some(capture::prepare(self.server, self.client).await?),
            _ => None,
        };
        Ok((chosen.run, prepared))
    }

    /// Runs the migration while the workload runs.
    async fn run(
        &self,
        m: &Migration,
        prepared: Option<&capture::Prepared>,
        clock: &Arc<Clock>,
        roles: &Arc<Roles>,
        record: &mut MigrationRecord,
    ) {
        let (say, cancel) = (self.say, self.cancel.clone());
        match (&self.plan.migration.source, prepared) {
            (Source::Command { command, cwd }, Some(prepared)) => {
                let (clock, roles, poll) = (clock.clone(), roles.clone(), self.plan.sampler_interval);
                let capture = Capture {
                    server: self.server,
                    db: self.run_db,
                    client: self.client,
                    clock,
                    roles,
                    cancel,
                    poll,
                    say,
                };
                capture.run(prepared, command, cwd, record).await;
            }
            _ => {
                say(&format!(
                    "migration: {} steps in {} groups, transaction {}",
                    m.steps.len(),
                    m.groups.len(),
                    m.transaction_name()
                ));
                let runner = Runner { client: self.client, clock: clock.clone(), cancel, say };
                runner.run(m, record).await;
            }
        }
    }
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
    let mut record = MigrationRecord {
        file: plan.migration_path.display().to_string(),
        pid: mig_pid,
        source: Some(plan.migration.source.describe()),
        ..Default::default()
    };
    let applier = Applier { plan, server, run_db, client: &migration_client, cancel, say };
    let (migration, prepared) = applier.prepare(&mut record).await?;

    let clock = Arc::new(Clock::new());
    let slots = Slot::count(migration.steps.len());
    let workload =
        workload::start(&plan.workload, classes, server.target(run_db), clock.clone(), roles.clone(), slots).await?;
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
        applier.run(&migration, prepared.as_ref(), &clock, &roles, &mut record).await;
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
