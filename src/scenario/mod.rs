//! Scenario loading: the TOML file (`file`), `--set` overrides and templates
//! (`values`), resolved into a validated `Plan`; `guard` refuses the SQL of a
//! plan that its backend must not run. Nothing downstream reads the raw file
//! or the command line.

pub mod embedded;
pub mod file;
pub mod guard;
pub mod replica;
pub mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::{BudgetArgs, RunOptions};
use crate::clone::plan::{Backend, ClonePlan};
use crate::clone::restore::{DumpFormat, DumpPlan};
use crate::clone::synthetic::SyntheticPlan;
use crate::error::{Error, Result};
use crate::files::dur::Dur;
use crate::files::text::{read_text, toml_message};
use crate::migration::{self, Migration};
use crate::workload::file::Class;
use crate::workload::plan::WorkloadPlan;
use file::{BudgetSection, ScenarioFile};
use values::{apply_set, render_template, scalar_text};

/// Server settings the backends set themselves; a scenario may not override them.
const MANAGED_SETTINGS: &[&str] = &["port", "listen_addresses", "unix_socket_directories"];

#[derive(Debug, Clone)]
pub struct Phases {
    pub warmup: Duration,
    pub baseline: Duration,
    pub cooldown: Duration,
}

/// A validated rehearsal: everything the run needs, checked before anything starts.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub scenario_path: PathBuf,
    pub vars: BTreeMap<String, String>,
    pub clone: ClonePlan,
    /// The seed script, or the dump when `dump` is set.
    pub seed_path: PathBuf,
    /// The seed script with its `{{vars}}` rendered (empty when `dump` is set).
    pub seed_sql: String,
    /// `snapshot.dump`: a pg_dump snapshot restored instead of running a seed script.
    pub dump: Option<DumpPlan>,
    /// `snapshot.synthetic`: a dataset generated from planner statistics.
    pub synthetic: Option<SyntheticPlan>,
    pub workload: WorkloadPlan,
    pub phases: Phases,
    pub migration_path: PathBuf,
    pub migration: Migration,
    /// `migration.preflight`: count the rows a step will fail on, before the run.
    pub preflight: bool,
    pub sampler_interval: Duration,
    pub budget: BudgetSection,
    /// Every file the plan was read from (scenario, seed or dump, workload
    /// files and scripts or replay, migration): no output may overwrite one.
    pub inputs: Vec<PathBuf>,
}

impl Plan {
    /// Where the template database's data comes from: the dump, or the seed script.
    pub fn dataset_source(&self) -> crate::clone::template::Source<'_> {
        match (&self.dump, &self.synthetic) {
            (Some(dump), _) => crate::clone::template::Source::Dump(dump),
            (None, Some(synthetic)) => crate::clone::template::Source::Synthetic(synthetic),
            (None, None) => crate::clone::template::Source::Seed { path: &self.seed_path, sql: &self.seed_sql },
        }
    }
}

/// Removes `.` and `dir/..` pairs so messages show `workloads/x.sql`, not
/// `scenarios/../workloads/x.sql` (lexical only; symlinks are not resolved).
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() { PathBuf::from(".") } else { out }
}

/// Loads a scenario (the embedded default when `scenario` is `None`) with its
/// workload and migration files, applies `--set` and the budget flags, and
/// validates it all.
pub fn load(scenario: Option<&Path>, opts: &RunOptions) -> Result<Plan> {
    if let Some(path) = scenario {
        return load_file(path, opts);
    }
    let (dir, path) = embedded::materialize()?;
    let relabel = |p: &Path| embedded::relabel(p, dir.path());
    let mut plan = load_file(&path, opts).map_err(|mut e| {
        e.message = e.message.replace(&dir.path().display().to_string(), embedded::LABEL);
        e
    })?;
    plan.scenario_path = relabel(&plan.scenario_path);
    plan.seed_path = relabel(&plan.seed_path);
    plan.migration_path = relabel(&plan.migration_path);
    plan.workload.path = relabel(&plan.workload.path);
    Ok(plan)
}

/// Loads and validates one scenario file with the `--set` overrides and the
/// flags of `args`: one resolver per section, in the file's order, so the
/// first error reported is the first section's.
fn load_file(path: &Path, args: &RunOptions) -> Result<Plan> {
    let file = path.display().to_string();
    let sf = read_scenario(path, &file, &args.set)?;
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let resolve = |p: &str| normalize(&dir.join(p));
    let at = Ctx { file: &file, resolve: &resolve };

    let vars = resolve_vars(&sf.vars, &file)?;
    let mut clone = resolve_clone(&sf.clone, args, &file)?;
    clone.replicas = replica::resolve(&sf.replica, args, clone.backend, &file)?;
    replica::logical_settings(&clone.replicas, &mut clone.settings, &file)?;
    let dataset = resolve_snapshot(&sf.snapshot, clone.backend == Backend::Url, &vars, &at)?;
    let workload = resolve_workload(&sf.workload, &sf.phases, &vars, &at)?;
    let phases = resolve_phases(&sf.phases, &file)?;
    let (migration, migration_path) = resolve_migration(&sf.migration, args, &at)?;
    let sampler_interval = resolve_sampler(&sf.sampler, &file)?;
    let budget = resolve_budget(sf.budget, &args.budget, &workload.plan.classes, &file)?;
    replica::check_budget(&budget, &clone.replicas, &file)?;
    replica::check_classes(&workload.plan.classes, &clone.replicas, &workload.plan.path)?;

    let mut inputs =
        vec![path.to_path_buf(), dataset.seed_path.clone(), workload.plan.path.clone(), migration_path.clone()];
    inputs.extend(workload.files.into_iter().chain(workload.scripts));
    let name = sf.name.clone().unwrap_or_else(|| {
        path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "scenario".into())
    });
    Ok(Plan {
        name,
        scenario_path: path.to_path_buf(),
        vars,
        clone,
        seed_path: dataset.seed_path,
        seed_sql: dataset.seed_sql,
        dump: dataset.dump,
        synthetic: dataset.synthetic,
        workload: workload.plan,
        phases,
        migration_path,
        migration,
        preflight: sf.migration.preflight.unwrap_or(true),
        sampler_interval,
        budget,
        inputs,
    })
}

/// Where a section's resolver reports errors and resolves relative paths.
struct Ctx<'a> {
    /// The scenario file as shown in messages.
    file: &'a str,
    /// A path of the scenario, relative to its directory, made usable.
    resolve: &'a dyn Fn(&str) -> PathBuf,
}

/// Reads and parses the scenario file, with the `--set` overrides `sets`
/// applied to its TOML before it is deserialized.
fn read_scenario(path: &Path, file: &str, sets: &[String]) -> Result<ScenarioFile> {
    let text = read_text(path, "scenario file")?;
    let sf: ScenarioFile =
        toml::from_str(&text).map_err(|e| Error::input(format!("{file}: {}", toml_message(&e, &text))))?;
    if sets.is_empty() {
        return Ok(sf);
    }
    let mut doc: toml::Table = toml::from_str(&text).map_err(|e| Error::input(format!("{file}: {e}")))?;
    for s in sets {
        apply_set(&mut doc, s)?;
    }
    ScenarioFile::deserialize(doc)
        .map_err(|e| Error::input(format!("{file} with --set {}: {}", sets.join(" --set "), e.message())))
}

/// `[vars]`: each value as the text templates insert.
fn resolve_vars(raw: &BTreeMap<String, toml::Value>, file: &str) -> Result<BTreeMap<String, String>> {
    let mut vars = BTreeMap::new();
    for (k, v) in raw {
        let text = scalar_text(v)
            .ok_or_else(|| Error::input(format!("{file}: vars.{k} must be a string, number or boolean")))?;
        vars.insert(k.clone(), text);
    }
    Ok(vars)
}

/// `[clone]` with `--backend`, `--url`, `--image` and the other server flags.
fn resolve_clone(c: &file::CloneSection, args: &RunOptions, file: &str) -> Result<ClonePlan> {
    let url = args.url.clone().or_else(|| c.url.clone());
    let backend = resolve_backend(c, args, file)?;
    check_url(backend, url.is_some(), args.allow_existing_server, file)?;
    let image = args.image.clone().or_else(|| c.image.clone());
    if let Some(image) = &image {
        let key = if args.image.is_some() { "--image" } else { "clone.image" };
        if backend == Backend::Local {
            return Err(Error::input(format!(
                "{file}: {key} = {image:?} needs the docker backend, but the backend is \"local\"; \
                 use --backend docker (or auto), or drop {key}"
            )));
        }
        if image.trim().is_empty() || image.chars().any(|c| c.is_whitespace()) {
            return Err(Error::input(format!("{file}: {key} = {image:?} is not an image name; use NAME:TAG")));
        }
    }
    Ok(ClonePlan {
        backend,
        url,
        pg_version: c.pg_version,
        pg_bin: args.pg_bin.clone(),
        image,
        settings: server_settings(&c.settings, file)?,
        keep: args.keep,
        allow_host_access: args.allow_host_access,
        allow_server_wide: args.allow_server_wide,
        replicas: Default::default(),
    })
}

/// `--backend` (checked by the command line), else `url` when `--url` is
/// given, else `clone.backend`, else `auto`.
fn resolve_backend(c: &file::CloneSection, args: &RunOptions, file: &str) -> Result<Backend> {
    if let Some(backend) = args.backend {
        return Ok(backend);
    }
    if args.url.is_some() {
        return Ok(Backend::Url);
    }
    match c.backend.as_deref() {
        None => Ok(Backend::Auto),
        Some(name) => Backend::parse(name).ok_or_else(|| {
            Error::input(format!("{file}: clone.backend = {name:?} is not known; use {}", Backend::CHOICES))
        }),
    }
}

/// The url backend needs a URL, and the explicit opt-in; no other backend takes one.
fn check_url(backend: Backend, has_url: bool, allowed: bool, file: &str) -> Result<()> {
    match (backend, has_url) {
        (Backend::Url, false) => {
            Err(Error::input(format!("{file}: the url backend needs the existing database's URL: --url or clone.url")))
        }
        (Backend::Url, true) if !allowed => Err(Error::input(format!(
            "{file}: the url backend runs the migration on an existing server's database, not on a \
             disposable clone lockimpact made. If that database is a disposable clone of production, say so \
             with --allow-existing-server (it must also carry the marker: ALTER DATABASE … SET {} = on).",
            crate::clone::url::MARKER
        ))),
        (Backend::Url, true) | (_, false) => Ok(()),
        (_, true) => Err(Error::input(format!(
            "{file}: clone.url (or --url) is only for the url backend, but the backend is not \"url\""
        ))),
    }
}

/// `clone.settings`: `-c name=value` server settings, in file order.
fn server_settings(raw: &BTreeMap<String, toml::Value>, file: &str) -> Result<Vec<(String, String)>> {
    let mut settings = Vec::new();
    for (k, v) in raw {
        let text = scalar_text(v)
            .ok_or_else(|| Error::input(format!("{file}: clone.settings.{k} must be a string, number or boolean")))?;
        if !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            return Err(Error::input(format!("{file}: clone.settings.{k}: not a PostgreSQL setting name")));
        }
        if MANAGED_SETTINGS.contains(&k.as_str()) {
            return Err(Error::input(format!(
                "{file}: clone.settings.{k}: lockimpact sets this itself (the clone listens on a free port of \
                 127.0.0.1 and a private socket directory); remove it"
            )));
        }
        settings.push((k.clone(), text));
    }
    Ok(settings)
}

/// Where the dataset comes from (`[snapshot]`).
struct Dataset {
    seed_path: PathBuf,
    seed_sql: String,
    dump: Option<DumpPlan>,
    synthetic: Option<SyntheticPlan>,
}

/// `[snapshot]`: a seed script (rendered) or a dump; nothing on the url backend.
fn resolve_snapshot(
    s: &file::SnapshotSection,
    on_url: bool,
    vars: &BTreeMap<String, String>,
    at: &Ctx,
) -> Result<Dataset> {
    let file = at.file;
    if s.synthetic.is_some() || s.scale.is_some() || s.synthetic_seed.is_some() {
        return resolve_synthetic(s, on_url, at);
    }
    match (&s.seed, &s.dump) {
        (None, None) if on_url && s.jobs.is_none() && s.sample.is_none() => Ok(Dataset {
            seed_path: PathBuf::from("(the existing database)"),
            seed_sql: String::new(),
            dump: None,
            synthetic: None,
        }),
        _ if on_url => Err(Error::input(format!(
            "{file}: [snapshot] is not used with the url backend: the database at the URL is the dataset; remove it"
        ))),
        (Some(seed), None) => {
            if let Some(key) = [("jobs", s.jobs.is_some()), ("sample", s.sample.is_some())].iter().find(|k| k.1) {
                return Err(Error::input(format!(
                    "{file}: snapshot.{} applies to snapshot.dump only; remove it or restore a dump",
                    key.0
                )));
            }
            let seed_path = (at.resolve)(seed);
            let seed_text = read_text(&seed_path, "seed script")?;
            let seed_sql = render_template(&seed_text, vars, &seed_path.display().to_string())?;
            Ok(Dataset { seed_path, seed_sql, dump: None, synthetic: None })
        }
        (None, Some(dump)) => {
            if let Some(f) = s.sample.filter(|f| !(f.is_finite() && *f > 0.0 && *f <= 1.0)) {
                return Err(Error::input(format!(
                    "{file}: snapshot.sample must be the fraction of the dump's rows to keep, above 0 and at most 1 \
                     (0.1 for 10 %), not {f}"
                )));
            }
            let path = (at.resolve)(dump);
            let format = DumpFormat::detect(&path).map_err(|e| e.context(format!("{file}: snapshot.dump")))?;
            let jobs = s.jobs.unwrap_or(2);
            if !(1..=64).contains(&jobs) {
                return Err(Error::input(format!("{file}: snapshot.jobs must be between 1 and 64, not {jobs}")));
            }
            Ok(Dataset {
                seed_path: path.clone(),
                seed_sql: String::new(),
                dump: Some(DumpPlan { path, format, jobs, sample: s.sample }),
                synthetic: None,
            })
        }
        (Some(_), Some(_)) => Err(Error::input(format!(
            "{file}: snapshot.seed and snapshot.dump are both set; keep one (a seed script or a pg_dump file)"
        ))),
        (None, None) => Err(Error::input(format!(
            "{file}: [snapshot] needs seed = \"script.sql\" or dump = \"file.dump\" to build the dataset"
        ))),
    }
}

/// `snapshot.synthetic` with `snapshot.scale`: the statistics file read and
/// checked; its schema is what the guard scans.
fn resolve_synthetic(s: &file::SnapshotSection, on_url: bool, at: &Ctx) -> Result<Dataset> {
    let file = at.file;
    let Some(stats_file) = &s.synthetic else {
        let key = if s.scale.is_some() { "scale" } else { "synthetic_seed" };
        return Err(Error::input(format!(
            "{file}: snapshot.{key} applies to snapshot.synthetic only; remove it or name a statistics file"
        )));
    };
    let other = [
        ("seed", s.seed.is_some()),
        ("dump", s.dump.is_some()),
        ("jobs", s.jobs.is_some()),
        ("sample", s.sample.is_some()),
    ];
    if let Some((key, _)) = other.iter().find(|(_, set)| *set) {
        return Err(Error::input(format!(
            "{file}: snapshot.synthetic and snapshot.{key} are both set; keep one way to build the dataset"
        )));
    }
    if on_url {
        return Err(Error::input(format!(
            "{file}: [snapshot] is not used with the url backend: the database at the URL is the dataset; remove it"
        )));
    }
    let scale = s.scale.unwrap_or(1.0);
    if !(scale.is_finite() && scale > 0.0 && scale <= 100.0) {
        return Err(Error::input(format!(
            "{file}: snapshot.scale must be a fraction of the statistics' row counts above 0 (0.05 for 5 %, at most \
             100), not {scale}"
        )));
    }
    let path = (at.resolve)(stats_file);
    let text = read_text(&path, "statistics file (snapshot.synthetic)")?;
    let stats: crate::clone::stats::Stats = serde_json::from_str(&text).map_err(|e| {
        Error::input(format!(
            "{}: not a statistics file ({e}); write one with lockimpact snapshot --stats-only (snapshot.synthetic \
             in {file})",
            path.display()
        ))
    })?;
    if stats.stats_version > crate::clone::stats::STATS_VERSION {
        return Err(Error::input(format!(
            "{}: stats_version {} is newer than this lockimpact reads ({}); use the lockimpact that wrote it, or \
             write the file again with this one (snapshot.synthetic in {file})",
            path.display(),
            stats.stats_version,
            crate::clone::stats::STATS_VERSION
        )));
    }
    if stats.schema_sql.trim().is_empty() || stats.tables.is_empty() {
        return Err(Error::input(format!(
            "{}: the statistics file has no schema_sql or no tables; nothing to generate (snapshot.synthetic in {file})",
            path.display()
        )));
    }
    if let Some(t) = stats.unanalyzed_partitioned() {
        let name = t.regclass.clone().unwrap_or_else(|| t.name.clone());
        return Err(Error::input(format!(
            "{}: the partitioned table {name} has no statistics of its own, so its rows cannot be generated \
             (autovacuum never analyzes a partitioned table); run ANALYZE {name} on the source (it reads a sample \
             of its partitions' rows) and write the statistics file again (snapshot.synthetic in {file})",
            path.display()
        )));
    }
    let seed_sql = stats.schema_sql.clone();
    let stats = std::sync::Arc::new(stats);
    let seed = s.synthetic_seed.unwrap_or(crate::clone::synthetic::DEFAULT_SEED);
    Ok(Dataset {
        seed_path: path.clone(),
        seed_sql,
        dump: None,
        synthetic: Some(SyntheticPlan { path, stats, scale, seed }),
    })
}

/// The resolved workload and the files it was read from.
struct Workload {
    plan: WorkloadPlan,
    /// The workload files (the main one and `workload.extra`); none for a replay.
    files: Vec<PathBuf>,
    /// The scripts the workload files name.
    scripts: Vec<PathBuf>,
}

/// What the workload files (or the replay) hold, before the rate is chosen.
#[derive(Default)]
struct Read {
    classes: Vec<Class>,
    source: String,
    recorded: RecordedRates,
    files: Vec<PathBuf>,
    scripts: Vec<PathBuf>,
}

/// `[workload]`: the workload files or the replay, and the rate they run at.
fn resolve_workload(
    w: &file::WorkloadSection,
    phases: &file::PhasesSection,
    vars: &BTreeMap<String, String>,
    at: &Ctx,
) -> Result<Workload> {
    let file = at.file;
    if w.connections == 0 || w.connections > 1000 {
        return Err(Error::input(format!(
            "{file}: workload.connections must be between 1 and 1000, not {}",
            w.connections
        )));
    }
    let (path, replay) = workload_source(w, at)?;
    let speed = w.speed.unwrap_or(1.0);
    if !(speed > 0.0 && speed.is_finite()) || (replay.is_none() && w.speed.is_some()) {
        return Err(Error::input(format!(
            "{file}: workload.speed must be greater than 0 and applies to workload.replay only, not {speed}"
        )));
    }
    if let Some(n) = w.pool
        && (replay.is_none() || n == 0 || n > 10_000)
    {
        return Err(Error::input(format!(
            "{file}: workload.pool = {n}: the size of a session replay's connection pool must be between 1 and \
             10000, and applies to workload.replay only"
        )));
    }
    let read = match &replay {
        Some(r) => read_replay(r, &path, speed),
        None => read_workload_files(&path, &w.extra, vars, at)?,
    };
    // The rehearsal's length as planned: its fixed phases (the migration's
    // own time is known only once it has run).
    let window = phases.warmup.0 + phases.baseline.0 + phases.cooldown.0;
    let rate = workload_rate(w, replay.is_some(), &read.recorded, window, &path, file)?;
    let plan = WorkloadPlan {
        path,
        source: read.source,
        classes: read.classes,
        rate,
        connections: w.connections,
        seed: w.seed,
        statement_timeout: w.statement_timeout.0,
        replay,
        speed,
        pool: w.pool,
    };
    Ok(Workload { plan, files: read.files, scripts: read.scripts })
}

type Replay = std::sync::Arc<crate::workload::replay::Replay>;

/// `workload.file` or `workload.replay` (one of them), the replay loaded.
fn workload_source(w: &file::WorkloadSection, at: &Ctx) -> Result<(PathBuf, Option<Replay>)> {
    let file = at.file;
    match (&w.file, &w.replay) {
        (Some(f), None) => Ok(((at.resolve)(f), None)),
        (None, Some(r)) => {
            let p = (at.resolve)(r);
            if !w.extra.is_empty() {
                return Err(Error::input(format!("{file}: workload.extra cannot be added to a workload.replay")));
            }
            let replay = crate::workload::replay::Replay::load(&p)?;
            Ok((p, Some(std::sync::Arc::new(replay))))
        }
        _ => Err(Error::input(format!(
            "{file}: [workload] needs file = \"workload.toml\" (query classes) or replay = \"sessions.jsonl\" \
             (a session replay), one of them"
        ))),
    }
}

/// A replay's classes, and its mean rate at `speed` as both its recorded and peak rate.
fn read_replay(r: &Replay, path: &Path, speed: f64) -> Read {
    let mean = r.statements() as f64 / r.duration().as_secs_f64() * speed;
    Read {
        classes: r.classes(),
        source: format!("replay {} at speed {speed}", path.display()),
        recorded: RecordedRates { recorded: Some(mean), peak: Some(mean), by_second: Vec::new() },
        ..Read::default()
    }
}

/// The workload file and `workload.extra`, rendered and parsed; a class name
/// may be defined once across them.
fn read_workload_files(main: &Path, extra: &[String], vars: &BTreeMap<String, String>, at: &Ctx) -> Result<Read> {
    let files = std::iter::once(main.to_path_buf()).chain(extra.iter().map(|e| (at.resolve)(e))).collect();
    let mut read = Read { files, ..Read::default() };
    for p in &read.files {
        let text = read_text(p, "workload file")?;
        let rendered = render_template(&text, vars, &p.display().to_string())?;
        read.source.push_str(&rendered);
        let parsed = crate::workload::file::parse_file(&rendered, p)?;
        read.recorded.add(&parsed);
        read.scripts.extend(parsed.scripts.iter().cloned());
        for c in parsed.classes {
            if read.classes.iter().any(|o: &Class| o.name == c.name) {
                return Err(Error::input(format!(
                    "{}: class {:?} is already defined in another workload file",
                    p.display(),
                    c.name
                )));
            }
            read.classes.push(c);
        }
    }
    Ok(read)
}

/// The workload's rate in ops/s: a replay's recorded pace, or `workload.rate`
/// over the rehearsal's planned `window`; within what one client can drive.
fn workload_rate(
    w: &file::WorkloadSection,
    is_replay: bool,
    recorded: &RecordedRates,
    window: Duration,
    workload: &Path,
    file: &str,
) -> Result<f64> {
    let rate = match (is_replay, &w.rate) {
        (true, Some(_)) => {
            return Err(Error::input(format!(
                "{file}: workload.rate does not apply to a replay; its pace is the recording's, set workload.speed"
            )));
        }
        (true, None) => recorded.recorded.unwrap_or(1.0),
        (false, _) => resolve_rate(w.rate.as_ref(), w.rate_multiplier, recorded, window, file, workload)?,
    };
    if !(rate > 0.0 && rate.is_finite()) {
        return Err(Error::input(format!("{file}: workload.rate must be greater than 0 ops/s, not {rate}")));
    }
    if rate > 1_000_000.0 {
        return Err(Error::input(format!(
            "{file}: workload.rate = {rate} is beyond what one client can drive; use at most 1000000"
        )));
    }
    Ok(rate)
}

/// `[phases]`: the baseline is what the migration is compared with, so not empty.
fn resolve_phases(p: &file::PhasesSection, file: &str) -> Result<Phases> {
    let phases = Phases { warmup: p.warmup.0, baseline: p.baseline.0, cooldown: p.cooldown.0 };
    if phases.baseline.is_zero() {
        return Err(Error::input(format!(
            "{file}: phases.baseline must be longer than 0: the baseline is what the migration is compared with"
        )));
    }
    Ok(phases)
}

/// `[migration]` (or `--migration`): the migration and the path it is shown as.
fn resolve_migration(m: &file::MigrationSection, args: &RunOptions, at: &Ctx) -> Result<(Migration, PathBuf)> {
    let defaults = step_defaults(m, at.file)?;
    let mut migration = load_migration(m, args, at.resolve, at.file, &defaults)?;
    if args.rollback {
        if migration.groups.iter().all(|g| g.down.is_none()) {
            return Err(Error::input(format!(
                "{}: --rollback, but the migration has no down steps: write a `-- lockimpact: down` section after \
                 each step's statements (its reverse), or use a migration directory with down files",
                migration.source.describe()
            )));
        }
        migration = migration.with_rollback();
    }
    let path = match &migration.source {
        migration::Source::File(p) => p.clone(),
        other => PathBuf::from(other.describe()),
    };
    Ok((migration, path))
}

/// The defaults every step of the migration starts from (`migration.*`).
fn step_defaults(m: &file::MigrationSection, file: &str) -> Result<migration::Defaults> {
    let transaction = match m.transaction.as_deref() {
        None => None,
        Some(t) => Some(migration::TxMode::parse(t).ok_or_else(|| {
            Error::input(format!(
                "{file}: migration.transaction = {t:?} is not known; use \"file\", \"step\" or \"none\""
            ))
        })?),
    };
    let on_error = match m.on_error.as_deref() {
        None => migration::OnError::Abort,
        Some(v) => migration::OnError::parse(v).ok_or_else(|| {
            Error::input(format!("{file}: migration.on_error = {v:?} is not known; use \"abort\" or \"continue\""))
        })?,
    };
    Ok(migration::Defaults {
        transaction,
        lock_timeout: m.lock_timeout.map_or(Duration::ZERO, |d| d.0),
        statement_timeout: m.statement_timeout.map_or(Duration::ZERO, |d| d.0),
        retries: m.retries.unwrap_or(0),
        retry_backoff: m.retry_backoff.map_or(Duration::from_millis(500), |d| d.0),
        on_error,
    })
}

/// `[sampler]`: the poll interval, 1ms to 1s.
fn resolve_sampler(s: &file::SamplerSection, file: &str) -> Result<Duration> {
    let interval = s.interval.map_or(Duration::from_millis(10), |d| d.0);
    if interval < Duration::from_millis(1) || interval > Duration::from_secs(1) {
        return Err(Error::input(format!("{file}: sampler.interval must be between 1ms and 1s")));
    }
    Ok(interval)
}

/// `[budget]` with the budget flags over it (they win over the scenario and
/// `--set`); every class a limit names must be one of the workload's.
fn resolve_budget(
    mut budget: BudgetSection,
    flags: &BudgetArgs,
    classes: &[Class],
    file: &str,
) -> Result<BudgetSection> {
    apply_budget_flags(&mut budget, flags);
    for class in budget.max_p99_during_class.keys() {
        if !classes.iter().any(|c| &c.name == class) {
            let known: Vec<&str> = classes.iter().map(|c| c.name.as_str()).collect();
            return Err(Error::input(format!(
                "{file}: budget.max_p99_during_class.{class}: no query class {class:?} in the workload (classes: {})",
                known.join(", ")
            )));
        }
    }
    Ok(budget)
}

/// Sets each threshold a budget flag gives; a later `--max-p99-during` for
/// the same class (or for every class) wins over an earlier one.
fn apply_budget_flags(budget: &mut BudgetSection, flags: &BudgetArgs) {
    let BudgetArgs { max_blocked, max_blocked_wait, max_blocked_sessions, max_p99_during, max_step, max_errors } =
        flags;
    let put = |slot: &mut Option<Dur>, flag: &Option<Dur>| {
        if flag.is_some() {
            *slot = *flag;
        }
    };
    put(&mut budget.max_blocked, max_blocked);
    put(&mut budget.max_blocked_wait, max_blocked_wait);
    put(&mut budget.max_step, max_step);
    for limit in max_p99_during {
        match &limit.class {
            Some(class) => {
                budget.max_p99_during_class.insert(class.clone(), limit.limit);
            }
            None => budget.max_p99_during = Some(limit.limit),
        }
    }
    budget.max_blocked_sessions = max_blocked_sessions.or(budget.max_blocked_sessions);
    budget.max_errors = max_errors.or(budget.max_errors);
}

/// The migration a scenario names (`[migration]` file, dir or command), or
/// the one `--migration` puts in its place.
fn load_migration(
    m: &file::MigrationSection,
    args: &RunOptions,
    resolve: &dyn Fn(&str) -> PathBuf,
    file: &str,
    defaults: &migration::Defaults,
) -> Result<Migration> {
    let format = match m.format.as_deref() {
        None | Some("auto") => None,
        Some(f) => Some(migration::dirs::Format::parse(f).ok_or_else(|| {
            Error::input(format!(
                "{file}: migration.format = {f:?} is not known; use \"auto\" or one of {}",
                migration::dirs::Format::ALL.map(|f| f.name()).join(", ")
            ))
        })?),
    };
    let from = args.from.clone().or_else(|| m.from.clone());
    let dir = |path: PathBuf, from_scenario: bool| {
        if from_scenario && m.transaction.is_some() {
            return Err(Error::input(format!(
                "{file}: migration.transaction does not apply to a migration directory: its tool decides the \
                 transaction of each file (see docs/migration-directories.md); remove it"
            )));
        }
        migration::dirs::load(&path, format, from.clone(), m.history_table.clone(), defaults)
    };
    let chosen = match (&args.migration, &m.file, &m.dir, &m.command) {
        (Some(p), ..) if p.as_os_str() == "-" => None,
        (Some(p), ..) if p.is_dir() => return dir(p.clone(), false),
        (Some(p), ..) => Some(p.clone()),
        (None, Some(f), None, None) if f == "-" => None,
        (None, Some(f), None, None) => Some(resolve(f)),
        (None, None, Some(d), None) => return dir(resolve(d), true),
        (None, None, None, Some(c)) => return command(c, m, from.is_some(), file, resolve),
        (None, None, None, None) => {
            return Err(Error::input(format!(
                "{file}: [migration] needs file = \"migration.sql\", dir = \"db/migrations\" (a migration tool's \
                 directory) or command = \"…\" (a framework run against the clone)"
            )));
        }
        _ => {
            return Err(Error::input(format!("{file}: [migration] takes one of file, dir and command, not several")));
        }
    };
    let dir_keys = if args.migration.is_some() {
        args.from.is_some() // the scenario's own dir keys give way to --migration
    } else {
        format.is_some() || from.is_some() || m.history_table.is_some()
    };
    if dir_keys {
        return Err(Error::input(format!(
            "{file}: migration.format, migration.from (--from) and migration.history_table apply to a migration \
             directory (migration.dir) only"
        )));
    }
    match chosen {
        Some(path) => migration::load(&path, defaults),
        None => migration::load_stdin(defaults),
    }
}

/// `migration.command`: run in the scenario's directory, captured from the clone's log.
fn command(
    c: &str,
    m: &file::MigrationSection,
    from: bool,
    file: &str,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Result<Migration> {
    if c.trim().is_empty() {
        return Err(Error::input(format!("{file}: migration.command is empty")));
    }
    if m.transaction.is_some() || m.format.is_some() || from || m.history_table.is_some() {
        return Err(Error::input(format!(
            "{file}: migration.transaction, format, from (--from) and history_table do not apply to \
             migration.command: the framework decides what it sends; remove them"
        )));
    }
    Ok(Migration::from_parts(
        Vec::new(),
        false,
        migration::Source::Command { command: c.to_string(), cwd: resolve(".") },
    ))
}

/// The recorded and peak rates the workload files declare (written by
/// `lockimpact record`), summed over the files that declare them.
#[derive(Debug, Default)]
struct RecordedRates {
    recorded: Option<f64>,
    peak: Option<f64>,
    /// Statements per second of the recordings (`record log`), summed
    /// second by second over the files that have them.
    by_second: Vec<u64>,
}

impl RecordedRates {
    fn add(&mut self, f: &crate::workload::file::ParsedFile) {
        if let Some(r) = f.recorded_rate {
            self.recorded = Some(self.recorded.unwrap_or(0.0) + r);
        }
        if let Some(p) = f.peak_rate {
            self.peak = Some(self.peak.unwrap_or(0.0) + p);
        }
        for (i, n) in f.ops_by_second.iter().flatten().enumerate() {
            match self.by_second.get_mut(i) {
                Some(total) => *total += n,
                None => self.by_second.push(*n),
            }
        }
    }

    /// `rate = "peak"`: the busiest window of `window` in the recording
    /// (mean ops/s over it) when the files have their rate per second, else
    /// their `peak_rate` (the busiest second).
    fn peak_over(&self, window: Duration) -> Option<f64> {
        if self.by_second.is_empty() {
            return self.peak;
        }
        let w = (window.as_secs_f64().ceil() as usize).clamp(1, self.by_second.len());
        let mut sum: u64 = self.by_second[..w].iter().sum();
        let mut best = sum;
        for i in w..self.by_second.len() {
            sum = sum + self.by_second[i] - self.by_second[i - w];
            best = best.max(sum);
        }
        Some(best as f64 / w as f64)
    }
}

/// `workload.rate` (a number, `"recorded"` or `"peak"`) times
/// `workload.rate_multiplier`.
fn resolve_rate(
    rate: Option<&toml::Value>,
    multiplier: Option<f64>,
    recorded: &RecordedRates,
    window: Duration,
    file: &str,
    workload: &Path,
) -> Result<f64> {
    let m = multiplier.unwrap_or(1.0);
    if !(m > 0.0 && m.is_finite()) {
        return Err(Error::input(format!("{file}: workload.rate_multiplier must be greater than 0, not {m}")));
    }
    let missing = |what: &str, key: &str| {
        Error::input(format!(
            "{file}: workload.rate = {what:?} needs {key} in the workload file {} (lockimpact record writes it); \
             set workload.rate to a number of ops/s instead",
            workload.display()
        ))
    };
    let base = match rate {
        Some(toml::Value::Integer(i)) => *i as f64,
        Some(toml::Value::Float(f)) => *f,
        Some(toml::Value::String(s)) if s == "peak" => {
            recorded.peak_over(window).ok_or_else(|| missing("peak", "peak_rate"))?
        }
        Some(toml::Value::String(s)) if s == "recorded" => {
            recorded.recorded.ok_or_else(|| missing("recorded", "recorded_rate"))?
        }
        None if multiplier.is_some() => recorded.recorded.ok_or_else(|| missing("recorded", "recorded_rate"))?,
        None => {
            return Err(Error::input(format!(
                "{file}: workload.rate is missing: set ops/s (e.g. rate = 200), \"recorded\" or \"peak\""
            )));
        }
        Some(other) => {
            return Err(Error::input(format!(
                "{file}: workload.rate = {other} is not a rate; use ops/s (e.g. 200), \"recorded\" or \"peak\""
            )));
        }
    };
    Ok(base * m)
}

#[cfg(test)]
mod rate_tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn peak_recorded_and_multiplier() {
        let rec = RecordedRates { recorded: Some(100.0), peak: Some(150.0), by_second: Vec::new() };
        let w = Path::new("w.toml");
        let v = |s: &str| toml::Value::String(s.into());
        assert_eq!(resolve_rate(Some(&v("peak")), None, &rec, MIN, "s", w).unwrap(), 150.0);
        assert_eq!(resolve_rate(Some(&v("recorded")), Some(2.0), &rec, MIN, "s", w).unwrap(), 200.0);
        assert_eq!(resolve_rate(None, Some(3.0), &rec, MIN, "s", w).unwrap(), 300.0);
        assert_eq!(resolve_rate(Some(&toml::Value::Integer(50)), Some(2.0), &rec, MIN, "s", w).unwrap(), 100.0);
        let e = resolve_rate(Some(&v("peak")), None, &RecordedRates::default(), MIN, "s", w).unwrap_err();
        assert!(e.message.contains("peak_rate"), "{}", e.message);
        assert!(resolve_rate(None, None, &rec, MIN, "s", w).is_err());
        assert!(resolve_rate(Some(&v("fast")), None, &rec, MIN, "s", w).is_err());
        assert!(resolve_rate(Some(&v("peak")), Some(0.0), &rec, MIN, "s", w).is_err());
    }

    /// `rate = "peak"` with the recording's rate per second: the busiest
    /// window of the rehearsal's length, not its busiest second.
    #[test]
    fn peak_is_the_busiest_window_of_the_rehearsals_length() {
        // A 1 s spike of 500, then 3 s at 200, in a 10 s recording.
        let by_second = vec![10, 500, 10, 10, 200, 200, 200, 10, 10, 10];
        let rec = RecordedRates { recorded: Some(116.0), peak: Some(500.0), by_second };
        let (v, w) = (toml::Value::String("peak".into()), Path::new("w.toml"));
        let peak = |secs| resolve_rate(Some(&v), None, &rec, Duration::from_secs(secs), "s", w).unwrap();
        assert_eq!(peak(1), 500.0);
        assert_eq!(peak(3), 200.0);
        assert_eq!(peak(4), (500.0 + 10.0 + 10.0 + 200.0) / 4.0);
        // A rehearsal longer than the recording: its mean.
        assert_eq!(peak(60), 1160.0 / 10.0);
        // Fractions of a second round up to whole seconds.
        assert_eq!(resolve_rate(Some(&v), None, &rec, Duration::from_millis(2500), "s", w).unwrap(), 200.0);
    }
}
