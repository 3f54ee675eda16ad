//! One rehearsal, following the data flow: template (`prepare`, once per
//! dataset) → fresh copy → workload, sampler and migration running together
//! under the phase clock → RunRecord (`rehearse`, once per candidate).
//! Every session a rehearsal opens is registered and closed on the way out
//! (`clone::sessions`); a watchdog (`clone::watchdog`) ends a run whose
//! server froze, with what was measured until then. The clock, workload and
//! sampler are wired by `harness`, as `lockimpact bench` wires them;
//! `scales` repeats a rehearsal at several sizes (`run --scales`).

pub mod compare;
pub mod failure;
pub mod harness;
pub mod scales;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::clone::Server;
use crate::clone::reflink::CopyMethod;
use crate::clone::sessions::{CONTROL_TIMEOUT, Sessions};
use crate::clone::template::{self, Dataset};
use crate::clone::watchdog::Watchdog;
use crate::error::{Error, Result, describe_pg};
use crate::migration::capture::{self, Capture};
use crate::migration::failpoint::StopPoint;
use crate::migration::runner::Runner;
use crate::migration::{Migration, Source, history, preflight};
use crate::pg::Target;
use crate::run_record::{MigrationRecord, RunRecord, SamplerRecord, Stop, WorkloadRecord};
use crate::scenario::Plan;
use crate::status::Progress;
use crate::timeline::{Clock, Slot};
use crate::workload;
use crate::workload::Roles;
use failure::Failing;
use harness::{Measured, Sampling, Wiring};

/// The database each rehearsal runs on, copied fresh from the template.
pub const RUN_DB: &str = "lockimpact_run";

/// How long queued operations may take to finish after the cooldown.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// How long queued operations may take to finish when the run stops early.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// What ends a run early: Ctrl-C, SIGTERM or SIGHUP (`cancel`), the
/// sampler losing the server (`lost`), the watchdog finding it frozen
/// (`frozen`); `any` fires on the first of them.
struct Halt {
    cancel: CancellationToken,
    lost: CancellationToken,
    frozen: CancellationToken,
    any: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Halt {
    fn new(cancel: CancellationToken, lost: CancellationToken, frozen: CancellationToken) -> Halt {
        let any = CancellationToken::new();
        let (a, c, l, f) = (any.clone(), cancel.clone(), lost.clone(), frozen.clone());
        let task = tokio::spawn(async move {
            tokio::select! {
                _ = c.cancelled() => {}
                _ = l.cancelled() => {}
                _ = f.cancelled() => {}
            }
            a.cancel();
        });
        Halt { cancel, lost, frozen, any, task }
    }

    /// Why the run must stop now, if it must.
    fn stop(&self) -> Option<Stop> {
        if self.cancel.is_cancelled() {
            Some(Stop::Interrupted)
        } else if self.frozen.is_cancelled() {
            Some(Stop::Unresponsive)
        } else if self.lost.is_cancelled() {
            Some(Stop::ServerLost)
        } else {
            None
        }
    }

    /// Sleeps through a phase unless the run must stop.
    async fn phase(&self, d: Duration) -> Option<Stop> {
        tokio::select! {
            _ = tokio::time::sleep(d) => None,
            _ = self.any.cancelled() => self.stop(),
        }
    }
}

impl Drop for Halt {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether the migration's session is gone: its connection closed, or a step
/// failed with the server ending the session (57P01 terminated, 57P02 crash,
/// 57P03 shutting down, 57P05 idle timeout; 08006 the connection lost).
fn session_gone(client: &tokio_postgres::Client, rec: &MigrationRecord) -> bool {
    client.is_closed()
        || rec.steps.iter().filter_map(|s| s.sqlstate.as_deref()).any(|c| c.starts_with("57P") || c == "08006")
}

/// Builds the template database the rehearsals copy.
pub async fn prepare(plan: &Plan, server: &Server, progress: &Progress) -> Result<Dataset> {
    let say = |msg: &str| progress.say(msg);
    let what = if server.existing_database().is_some() { "server" } else { "clone" };
    say(&format!("{what}: {}", server.describe()));
    let dataset = match server.existing_database() {
        Some(db) => crate::clone::url::inspect(server, &db, &say).await?,
        None => template::prepare(server, plan.dataset_source(), &say).await?,
    };
    if let Some(t) = dataset.restore_time {
        say(&format!(
            "restored in {:.1} s, {}",
            t.as_secs_f64(),
            crate::fmt::fmt_bytes(dataset.bytes.unwrap_or(0).max(0) as u64)
        ));
    }
    for t in &dataset.tables {
        say(&format!("  {}: {} rows, {}", t.name, t.rows, crate::fmt::fmt_bytes(t.bytes.max(0) as u64)));
    }
    Ok(dataset)
}

/// Runs one rehearsal of `plan` on a fresh copy of the template. On every
/// way out (its end, an error, Ctrl-C, SIGTERM, SIGHUP) the sessions it
/// opened are closed and that is said; a watchdog ends a run whose server
/// froze, with the record of what was measured.
pub async fn rehearse(
    plan: &Plan,
    server: &Server,
    dataset: &Dataset,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<RunRecord> {
    rehearse_with(Ask { plan, point: None, made: None }, (server, dataset), progress, cancel).await
}

/// `rehearse` on the run database `made` already copied (`clone::reflink::reset`:
/// `server` is the copy's own server, or the template's); failing the
/// migration on purpose at `point` (`--fail-at`), when given: its session
/// is terminated there, what it left is read, and the down steps of what
/// completed run in reverse under the workload.
pub async fn rehearse_on(
    plan: &Plan,
    (server, dataset, made): (&Server, &Dataset, &Made),
    progress: &Progress,
    cancel: &CancellationToken,
    point: Option<&StopPoint>,
) -> Result<RunRecord> {
    rehearse_with(Ask { plan, point, made: Some(made) }, (server, dataset), progress, cancel).await
}

/// A run database made before the rehearsal, how, and how long it took.
#[derive(Debug, Clone)]
pub struct Made {
    pub took: Duration,
    pub method: CopyMethod,
    /// Why this method (the file system, or why not a reflink).
    pub why: String,
}

/// What one rehearsal is asked: the plan, a stop point (`--fail-at`), a run
/// database already made.
#[derive(Clone, Copy)]
struct Ask<'a> {
    plan: &'a Plan,
    point: Option<&'a StopPoint>,
    made: Option<&'a Made>,
}

async fn rehearse_with(
    ask: Ask<'_>,
    (server, dataset): (&Server, &Dataset),
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<RunRecord> {
    let plan = ask.plan;
    let control = server.target(&crate::clone::control_db(server));
    let sessions = Arc::new(Sessions::new(control.clone()));
    let watchdog = Watchdog::start(control.clone());
    let record = measure(ask, server, dataset, progress, cancel, (&sessions, &watchdog, &control)).await;
    let gone = matches!(&record, Ok(r) if matches!(r.stop, Some(Stop::ServerLost | Stop::Unresponsive)));
    let closed = sessions.close(!gone && !watchdog.fired().is_cancelled()).await;
    // A disposable server is removed next (unless kept): its sessions end with it.
    let disposable = server.existing_database().is_none() && !plan.clone.keep;
    if closed.clean() || disposable {
        progress.say(&closed.message(disposable));
    } else {
        progress.warn(&closed.message(false));
    }
    record
}

/// Everything a rehearsal runs with once it is set up.
struct Running {
    copy_time: Duration,
    server_version: String,
    run_db: String,
    /// The migration's connection.
    client: tokio_postgres::Client,
    /// The migration to rehearse (a directory's pending migrations), and a
    /// framework command's preparation.
    migration: Migration,
    prepared: Option<capture::Prepared>,
    /// Filled before the workload starts (selection, preflight), then by the run.
    record: MigrationRecord,
    roles: Arc<Roles>,
    /// The clock, the workload and the sampler (always started here).
    measured: Measured,
    /// The replica sampler, when the clone has standbys (`[replica]`).
    replicas: Option<crate::sampler::replica::ReplicaSampler>,
    /// What the logical subscriber's publication covers (`[replica] logical`),
    /// and the length of the server's log when it was made (its errors are after).
    publication: Option<(crate::clone::logical::Publication, Option<usize>)>,
    /// `--fail-at`: the injector and the schema before the migration.
    failing: Option<Failing>,
}

impl Running {
    fn clock(&self) -> &Arc<Clock> {
        &self.measured.clock
    }

    fn sampler(&self) -> &crate::sampler::Sampler {
        self.measured.sampler.as_ref().expect("a rehearsal starts its sampler")
    }
}

/// Makes the fresh copy, opens the sessions (each registered in `sessions`),
/// starts the workload and the sampler.
async fn start(
    ask: Ask<'_>,
    server: &Server,
    sessions: &Arc<Sessions>,
    say: &(dyn Fn(&str) + Sync),
) -> Result<Running> {
    let (plan, point) = (ask.plan, ask.point);
    // A disposable server: a fresh copy of the template (unless made); an existing one: its database.
    let logical = plan.clone.replicas.logical;
    let (run_db, copy_time) = match (server.existing_database(), ask.made) {
        (Some(db), _) => (db, Duration::ZERO),
        // `crate::fresh_copy` removed an earlier run's subscriber before its copy.
        (None, Some(made)) => (RUN_DB.to_string(), made.took),
        (None, None) => {
            if logical {
                crate::clone::logical::unsubscribe(server).await?; // its slot keeps the run database
            }
            (RUN_DB.to_string(), template::fresh_copy(server, RUN_DB).await?)
        }
    };
    let publication = match logical {
        true => {
            let changed = crate::migration::tables::changed(&plan.migration);
            let p = crate::clone::logical::subscribe(server, &run_db, &changed).await?;
            say(&match &p {
                crate::clone::logical::Publication::Tables(t) => {
                    format!("logical subscriber: publishing {}", t.join(", "))
                }
                crate::clone::logical::Publication::AllTables(why) => {
                    format!("logical subscriber: publishing all tables: {why}")
                }
            });
            Some((p, server.read_log().and_then(|r| r.ok()).map(|t| t.len())))
        }
        false => None,
    };
    let (server_version, classes) = bind(plan, server, sessions, &run_db).await?;
    let roles = Arc::new(Roles::new(&classes));
    let (client, mig_pid) = sessions.connect(server, &run_db, "migration").await?;
    roles.set_migration(mig_pid);
    let (sampler_client, _) = sessions.connect(server, &run_db, "sampler").await?;
    let mut record = MigrationRecord {
        file: plan.migration_path.display().to_string(),
        pid: mig_pid,
        deadlock_timeout: deadlock_timeout(&client).await,
        source: Some(plan.migration.source.describe()),
        ..Default::default()
    };
    let applier = Applier { plan, server, run_db: &run_db, client: &client, say };
    let (migration, prepared) = applier.prepare(&mut record).await?;
    let failing = match point {
        Some(p) => Some(Failing::arm(p, server, sessions, &run_db, (&client, mig_pid)).await?),
        None => None,
    };
    // A failing run may undo every step it ran: a slot for each.
    let steps = if point.is_some() { migration.with_rollback().steps.len() } else { migration.steps.len() };

    let target = server.target(&run_db);
    let standbys = server.standbys();
    let replicas = crate::sampler::replica::connect(server.target("postgres"), &standbys, &run_db, logical).await?;
    let measured = harness::start(Wiring {
        plan: &plan.workload,
        classes,
        target: target.clone(),
        roles: roles.clone(),
        sessions: sessions.clone(),
        slots: Slot::count(steps),
        sampling: Some(Sampling {
            client: sampler_client,
            interval: plan.sampler_interval,
            reconnect: Some(reconnect(sessions, target)),
        }),
        replica: standbys.get(plan.clone.replicas.reader.saturating_sub(1) as usize).map(|s| s.target(&run_db)),
    })
    .await?;
    let replicas = replicas.map(|r| r.start(measured.clock.clone(), plan.clone.replicas.interval));
    Ok(Running {
        copy_time,
        server_version,
        run_db,
        client,
        migration,
        prepared,
        record,
        roles,
        measured,
        failing,
        replicas,
        publication,
    })
}

/// On the run database, before anything is measured: the server's version,
/// and the workload's classes with their samples and pgbench scale read.
async fn bind(
    plan: &Plan,
    server: &Server,
    sessions: &Sessions,
    run_db: &str,
) -> Result<(String, Vec<workload::file::Class>)> {
    let (admin, _) = sessions.connect(server, run_db, "admin").await?;
    let server_version: String =
        admin.query_one("SHOW server_version", &[]).await.map_err(|e| Error::db(describe_pg(&e)))?.get(0);
    let mut classes = plan.workload.classes.clone();
    workload::bind_samples(&mut classes, &admin, &plan.workload.path.display().to_string()).await?;
    workload::bind_scale(&mut classes, &admin, &plan.workload.path.display().to_string()).await?;
    Ok((server_version, classes))
}

/// The session's `deadlock_timeout` (`None` if it cannot be read: the hint
/// that needs it is then not given).
async fn deadlock_timeout(client: &tokio_postgres::Client) -> Option<Duration> {
    let sql = "SELECT setting::bigint FROM pg_settings WHERE name = 'deadlock_timeout'";
    let ms: i64 = client.query_one(sql, &[]).await.ok()?.get(0);
    Some(Duration::from_millis(ms.max(0) as u64))
}

/// How the sampler opens a new session when its own ends (registered like
/// the first, so the run's cleanup closes it too).
fn reconnect(sessions: &Arc<Sessions>, target: Target) -> crate::sampler::Reconnect {
    let sessions = sessions.clone();
    Arc::new(move || {
        let (sessions, target) = (sessions.clone(), target.clone());
        Box::pin(async move {
            let client = template::connect_with(target, "sampler").await.ok()?;
            let pid: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await.ok()?.get(0);
            sessions.add_client(pid, "sampler", &client);
            Some(client)
        })
    })
}

/// Applies the migration of one rehearsal on its connection: chooses and
/// checks it before the workload starts, then runs it step by step (or runs
/// the framework command and captures its statements).
struct Applier<'a> {
    plan: &'a Plan,
    server: &'a Server,
    run_db: &'a str,
    client: &'a tokio_postgres::Client,
    say: &'a (dyn Fn(&str) + Sync),
}

impl<'a> Applier<'a> {
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
            record.preflight = preflight::run(self.server, self.run_db, &chosen.run, &chosen.before, say).await?;
        }
        let prepared = match &self.plan.migration.source {
            Source::Command { .. } => Some(capture::prepare(self.server, self.client).await?),
            _ => None,
        };
        Ok((chosen.run, prepared))
    }

    /// Runs the migration while the workload runs, until it ends or `halt`
    /// says the run must stop.
    async fn run(&self, run: &Running, halt: &Halt, control: &Target, record: &mut MigrationRecord) {
        let say = self.say;
        match (&self.plan.migration.source, run.prepared.as_ref()) {
            (Source::Command { command, cwd }, Some(prepared)) => {
                let capture = Capture {
                    server: self.server,
                    db: self.run_db,
                    client: self.client,
                    clock: run.clock().clone(),
                    roles: run.roles.clone(),
                    cancel: halt.any.clone(),
                    poll: self.plan.sampler_interval,
                    say,
                };
                capture.run(prepared, command, cwd, record).await;
            }
            _ => {
                let m = &run.migration;
                say(&format!(
                    "migration: {} steps in {} groups, transaction {}",
                    m.steps.len(),
                    m.groups.len(),
                    m.transaction_name()
                ));
                let why = || halt.stop().map_or_else(|| "interrupted".to_string(), Stop::reason);
                self.runner(run, halt, control, &why).run(m, record).await;
            }
        }
    }

    /// The step runner on the migration's session (with the failure
    /// injector of a `--fail-at` run).
    fn runner(
        &self,
        run: &'a Running,
        halt: &Halt,
        control: &'a Target,
        why: &'a (dyn Fn() -> String + Sync),
    ) -> Runner<'a> {
        Runner {
            client: self.client,
            tls: &control.tls,
            clock: run.clock().clone(),
            stop: halt.any.clone(),
            why,
            say: self.say,
            names_before: Default::default(),
            fail: run.failing.as_ref().map(|f| &f.injector),
        }
    }
}

/// Runs the migration; returns why the run must stop, if it must: the
/// migration's session is gone either with the server or on its own
/// (terminated while the server still answers a new connection).
async fn migrate(
    applier: &Applier<'_>,
    (run, sessions): (&Running, &Arc<Sessions>),
    halt: &Halt,
    control: &Target,
    rec: &mut MigrationRecord,
) -> Option<Stop> {
    applier.run(run, halt, control, rec).await;
    let stop = halt.stop();
    if let (Some(f), None) = (&run.failing, &stop) {
        let why = || halt.stop().map_or_else(|| "interrupted".to_string(), Stop::reason);
        let after = failure::After {
            server: applier.server,
            sessions,
            run_db: &run.run_db,
            roles: &run.roles,
            runner: applier.runner(run, halt, control, &why),
        };
        rec.failure = Some(failure::after(f, &run.migration, after, rec).await);
        return halt.stop();
    }
    if stop.is_some() || !session_gone(applier.client, rec) {
        return stop;
    }
    let answers = crate::clone::watchdog::answers(control, CONTROL_TIMEOUT).await;
    Some(if answers { Stop::MigrationTerminated } else { Stop::ServerLost })
}

/// Sets the run up, runs its phases and the migration, and records them.
async fn measure(
    ask: Ask<'_>,
    server: &Server,
    dataset: &Dataset,
    progress: &Progress,
    cancel: &CancellationToken,
    (sessions, watchdog, control): (&Arc<Sessions>, &Watchdog, &Target),
) -> Result<RunRecord> {
    let plan = ask.plan;
    let say = |msg: &str| progress.say(msg);
    let say = &say;
    // Nothing is measured yet: Ctrl-C or a frozen server ends it with an error.
    let mut run = tokio::select! {
        r = watchdog.guard(start(ask, server, sessions, say)) => r?,
        _ = cancel.cancelled() => return Err(Error::interrupted()),
    };
    let live = progress.live_line(
        run.clock().clone(),
        run.migration.steps.iter().map(|s| s.name.clone()).collect(),
        run.measured.workload.seconds(),
        run.sampler().live(),
    );

    // From here on, whatever happens, what was measured is kept: an
    // interruption, a lost or frozen server, or the migration's session
    // terminated ends the phases early and the record is marked incomplete.
    let halt = Halt::new(cancel.clone(), run.sampler().lost(), watchdog.fired());
    let mut migration = std::mem::take(&mut run.record);
    let stop = phases(plan, (server, sessions), &run, (&halt, control), say, &mut migration).await;
    if let Some(why) = &stop {
        say(&format!("stopping early: {}", why.reason()));
    }
    let Running { copy_time, server_version, client, measured, replicas, publication, .. } = run;
    drop(client);

    let finishing = Instant::now();
    let clock = measured.clock.clone();
    let end = clock.since_start(finishing);
    let (workload, sampler) = measured.finish(if stop.is_some() { STOP_GRACE } else { DRAIN_GRACE }).await;
    let replicas = match replicas {
        Some(r) => Some(subscriber_details(r.finish().await, publication, server)),
        None => None,
    };
    if plan.clone.replicas.logical
        && let Err(e) = crate::clone::logical::unsubscribe(server).await
    {
        say(&format!("could not remove the logical subscriber (the server goes anyway): {e}"));
    }
    live.finish().await;
    let measured =
        Measurements { clock, end, workload, migration, stop, sampler: sampler.unwrap_or_default(), replicas };
    let mut rec = record(plan, server, dataset, (copy_time, server_version), measured);
    rec.copy_method = ask.made.map(|m| (m.method, m.why.clone()));
    Ok(rec)
}

/// What one rehearsal measured, from its clock to its sampler.
struct Measurements {
    clock: Arc<Clock>,
    end: Duration,
    workload: WorkloadRecord,
    migration: MigrationRecord,
    stop: Option<Stop>,
    sampler: SamplerRecord,
    replicas: Option<crate::run_record::replica::ReplicasRecord>,
}

/// The run record: the scenario, the server and the dataset, and what was measured.
fn record(
    plan: &Plan,
    server: &Server,
    dataset: &Dataset,
    (copy_time, server_version): (Duration, String),
    m: Measurements,
) -> RunRecord {
    RunRecord {
        scenario_name: plan.name.clone(),
        scenario_path: plan.scenario_path.display().to_string(),
        clone_description: server.describe(),
        clone_kind: server.kind(),
        server_version,
        tables: dataset.tables.clone(),
        seed_time: dataset.seed_time,
        copy_time,
        copy_method: None,
        restore_time: dataset.restore_time,
        dataset_bytes: dataset.bytes,
        dump: plan.dump.as_ref().map(|d| crate::run_record::DumpSource {
            file: d.path.display().to_string(),
            format: d.format.as_str().to_string(),
            sample: d.sample,
        }),
        synthetic: plan.synthetic.as_ref().map(|s| crate::run_record::SyntheticSource {
            file: s.path.display().to_string(),
            scale: s.scale,
            seed: (s.seed != crate::clone::synthetic::DEFAULT_SEED).then_some(s.seed),
        }),
        dataset_notes: dataset.notes.clone(),
        marks: m.clock.marks(),
        end: m.end,
        workload: m.workload,
        migration: m.migration,
        stop: m.stop,
        sampler: m.sampler,
        budget: plan.budget.clone(),
        replicas: m.replicas,
    }
}

/// Warmup, baseline, the migration and the time after it, each cut short
/// when `halt` says the run must stop; returns why it stopped, if it did.
async fn phases(
    plan: &Plan,
    (server, sessions): (&Server, &Arc<Sessions>),
    run: &Running,
    (halt, control): (&Halt, &Target),
    say: &(dyn Fn(&str) + Sync),
    migration: &mut MigrationRecord,
) -> Option<Stop> {
    say(&format!("warmup {} ms at {}", plan.phases.warmup.as_millis(), crate::fmt::fmt_rate(plan.workload.rate)));
    let mut stop = halt.phase(plan.phases.warmup).await;
    if stop.is_none() {
        run.clock().enter(Slot::Baseline);
        say(&format!("baseline {} ms", plan.phases.baseline.as_millis()));
        stop = halt.phase(plan.phases.baseline).await;
    }
    if stop.is_none() {
        let applier = Applier { plan, server, run_db: &run.run_db, client: &run.client, say };
        stop = migrate(&applier, (run, sessions), halt, control, migration).await;
    }
    if stop.is_none() {
        run.clock().enter(Slot::After);
        say(&format!(
            "after the migration {} ms (queued operations: {})",
            plan.phases.cooldown.as_millis(),
            run.measured.workload.queued()
        ));
        stop = halt.phase(plan.phases.cooldown).await;
    }
    stop
}

/// The logical subscriber's record (if any) with what its publication
/// covered and, when the server's log can be read (the local backend), the
/// first error its workers logged after `from` (the log's length then).
fn subscriber_details(
    mut rec: crate::run_record::replica::ReplicasRecord,
    publication: Option<(crate::clone::logical::Publication, Option<usize>)>,
    server: &Server,
) -> crate::run_record::replica::ReplicasRecord {
    use crate::clone::logical::{Publication, first_error};
    let (Some(l), Some((publication, from))) = (rec.standbys.iter_mut().find_map(|s| s.logical.as_mut()), publication)
    else {
        return rec;
    };
    match publication {
        Publication::Tables(t) => l.published = t,
        Publication::AllTables(why) => l.publication_note = Some(why),
    }
    if let (Some(from), Some(Ok(log))) = (from, server.read_log()) {
        l.first_error = first_error(log.get(from..).unwrap_or(&log));
    }
    rec
}
