//! `lockimpact bench`: measures the harness itself on this machine, side by
//! side with the standard tools, in one run, and writes `BENCHMARKS.md` and
//! `bench.json`. It starts one local server (`clone::start`, as the
//! `postgres` user when root), seeds the orders dataset, and runs one row per
//! file:
//!
//! 1. `closed`: closed-loop throughput, the replayer against `pgbench` on the
//!    same statements (`pgbench` writes the scripts), alternated;
//! 2. `open`: open-loop accuracy at 25/50/80 % of saturation (measured again
//!    just before each level);
//! 3. `sampler`: throughput with and without the 10 ms lock sampler, its own
//!    query time, and a blocked episode against a controlled hold;
//! 4. `reset`: a fresh copy by template against a fresh `pg_restore`, and a
//!    copy-on-write reset (`clone::reflink`) against the template copy on
//!    the same dataset, on a file system with reflinks (`--data-dir`);
//! 5. `e2e`: wall time and peak memory of the flagship scenario, and memory
//!    over run length;
//! 6. `replica`: throughput with and without the replica sampler polling a
//!    standby (a server of its own, with one standby);
//! 7. `synthetic`: the synthetic data generator's rate on the orders table
//!    (from the seeded dataset's statistics) against the server's own
//!    `INSERT … SELECT generate_series` and COPY of pre-generated rows;
//! 8. `predict`: `run --scales` predictions of each step of the shipped
//!    backfill and index scenarios at 5M rows against a measured 5M run
//!    (opt-in, `--predict-5m`).
//!
//! `report` holds the model and writes both files. Targets live in the
//! report only; nothing here fails on a figure.

pub mod closed;
pub mod e2e;
pub mod open;
pub mod pgbench;
pub mod predict;
pub mod replica;
pub mod report;
pub mod reset;
pub mod sampler;
pub mod synthetic;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::cli::BenchArgs;
use crate::clone::ClonePlan;
use crate::clone::sessions::Sessions;
use crate::clone::template::{self, connect};
use crate::clone::{self, Server};
use crate::error::{Error, Result, describe_pg};
use crate::rehearsal::harness::{self, Measured, Wiring};
use crate::run_record::{Hist, SamplerRecord, WorkloadRecord, new_hist};
use crate::sys;
use crate::timeline::Slot;
use crate::workload::Roles;
use crate::workload::WorkloadPlan;
use crate::workload::{self, file::Class};
use report::Report;

/// The database the throughput rows run on (a copy of the template).
pub const BENCH_DB: &str = "lockimpact_bench";

/// The workload both sides run: the flagship's orders statements, with
/// parameters pgbench can draw the same way (`\set … random(lo, hi)`).
const WORKLOAD: &str = r#"
[[class]]
name = "order_by_id"
weight = 50
sql = "SELECT id, status, total_cents FROM orders WHERE id = $1"
params = [{ type = "int", min = 1, max = {{rows}} }]

[[class]]
name = "customer_orders"
weight = 20
sql = "SELECT id, status, created_at FROM orders WHERE customer_id = $1 ORDER BY id DESC LIMIT 10"
params = [{ type = "int", min = 1, max = {{customers}} }]

[[class]]
name = "new_order"
weight = 15
sql = "INSERT INTO orders (customer_id, status, shipping_country, total_cents) VALUES ($1, 'new', 'US', $2)"
params = [{ type = "int", min = 1, max = {{customers}} }, { type = "int", min = 100, max = 100000 }]

[[class]]
name = "update_status"
weight = 15
sql = "UPDATE orders SET total_cents = $2 WHERE id = $1"
params = [{ type = "int", min = 1, max = {{rows}} }, { type = "int", min = 100, max = 100000 }]
"#;

/// Server settings: the flagship scenario's, plus `synchronous_commit = off`
/// so that WAL flushes do not hide the client's own cost.
pub const SETTINGS: &[(&str, &str)] =
    &[("shared_buffers", "256MB"), ("max_connections", "100"), ("max_wal_size", "4GB"), ("synchronous_commit", "off")];

/// Sizes and durations of one bench run.
#[derive(Debug, Clone)]
pub struct Config {
    pub quick: bool,
    pub connections: u32,
    pub rows: u64,
    pub customers: u64,
    pub rounds: u32,
    pub warmup: Duration,
    pub measure: Duration,
    pub sampler_interval: Duration,
    pub hold: Duration,
    pub holds: u32,
    pub reset_rows: u64,
    pub copies: u32,
    /// Where the copy-on-write rows' server lives (`--data-dir`; TMPDIR by default).
    pub data_dir: std::path::PathBuf,
    /// The copy-on-write rows also measure a dataset of about 10 GB.
    pub reset_10gb: bool,
    /// Orders row 7 generates from the statistics, each round.
    pub synthetic_rows: u64,
    /// Row 8 runs (`--predict-5m`), on these scenarios only when any (`--predict-only`).
    pub predict_5m: bool,
    pub predict_only: Vec<String>,
    /// Memory over run length: RSS is read at these offsets into the baseline.
    pub memory_points: Vec<Duration>,
    pub memory_rate_cap: f64,
}

impl Config {
    pub fn new(args: &BenchArgs) -> Config {
        let mut c = if args.quick {
            Config {
                quick: true,
                connections: 4,
                rows: 10_000,
                customers: 1_000,
                rounds: 1,
                warmup: Duration::from_millis(500),
                measure: Duration::from_secs(2),
                sampler_interval: Duration::from_millis(10),
                hold: Duration::from_millis(300),
                holds: 1,
                reset_rows: 20_000,
                copies: 1,
                data_dir: std::env::temp_dir(),
                reset_10gb: false,
                synthetic_rows: 20_000,
                predict_5m: false,
                predict_only: Vec::new(),
                memory_points: vec![Duration::from_secs(2), Duration::from_secs(5)],
                memory_rate_cap: 5_000.0,
            }
        } else {
            Config {
                quick: false,
                connections: 16,
                rows: 1_000_000,
                customers: 50_000,
                rounds: 5,
                warmup: Duration::from_secs(2),
                measure: Duration::from_secs(6),
                sampler_interval: Duration::from_millis(10),
                hold: Duration::from_secs(1),
                holds: 3,
                reset_rows: 9_500_000,
                copies: 3,
                data_dir: std::env::temp_dir(),
                reset_10gb: false,
                synthetic_rows: 3_000_000,
                predict_5m: false,
                predict_only: Vec::new(),
                memory_points: vec![Duration::from_secs(60), Duration::from_secs(180)],
                memory_rate_cap: 5_000.0,
            }
        };
        if let Some(n) = args.rounds {
            c.rounds = n.max(1);
        }
        if let Some(n) = args.reset_rows {
            c.reset_rows = n.max(1000);
        }
        if let Some(dir) = &args.data_dir {
            c.data_dir = dir.clone();
        }
        c.reset_10gb = args.reset_10gb;
        c.predict_5m = args.predict_5m;
        c.predict_only = args.predict_only.clone();
        c
    }
}

/// What every row needs: the server, the bench workload, the sizes, progress.
pub struct Ctx {
    pub server: Server,
    pub classes: Vec<Class>,
    pub cfg: Config,
    pub quiet: bool,
    pub cancel: CancellationToken,
}

impl Ctx {
    pub fn say(&self, msg: &str) {
        if !self.quiet {
            eprintln!("bench: {msg}");
        }
    }

    /// Fails with "interrupted" once Ctrl-C or SIGTERM arrived.
    pub fn check(&self) -> Result<()> {
        if self.cancel.is_cancelled() { Err(Error::interrupted()) } else { Ok(()) }
    }

    pub async fn sleep(&self, d: Duration) -> Result<()> {
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = self.cancel.cancelled() => Err(Error::interrupted()),
        }
    }
}

/// `lockimpact bench`: runs every row and writes the report.
pub async fn bench(args: &BenchArgs, cancel: &CancellationToken) -> Result<()> {
    let cfg = Config::new(args);
    std::fs::create_dir_all(&args.out)
        .map_err(|e| Error::input(format!("--out {}: cannot create the directory: {e}", args.out.display())))?;
    let started = Instant::now();
    let mut rep = Report::new(&cfg);
    let quiet = args.quiet;
    let say = |m: &str| {
        if !quiet {
            eprintln!("bench: {m}");
        }
    };
    let plan = ClonePlan {
        pg_bin: args.pg_bin.clone(),
        settings: SETTINGS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..ClonePlan::local()
    };
    let server = clone::start(&plan, &say)?;
    let classes = bench_classes(&cfg)?;
    let ctx = Ctx { server, classes, cfg: cfg.clone(), quiet, cancel: cancel.clone() };
    rep.machine.server = server_version(&ctx).await?;
    rep.machine.pgbench = pgbench::version(&ctx);

    let wanted = |row: u8| args.only.is_empty() || args.only.contains(&row);
    let main_server = (1..=5).any(wanted) || wanted(7);
    let rows = async {
        if !main_server {
            return Ok(0.0); // rows 6 and 8 alone: they start servers of their own
        }
        ctx.say(&format!("seeding the orders dataset ({} rows)", ctx.cfg.rows));
        seed(&ctx, ctx.cfg.rows, ctx.cfg.customers).await?;
        template::fresh_copy(&ctx.server, BENCH_DB).await?;
        let saturation = if wanted(1) {
            rep.load("closed loop");
            closed::run(&ctx, &mut rep).await?
        } else if wanted(5) {
            ctx.say("measuring the saturation rate (row 1 is not run)");
            drive(&ctx, workload::CLOSED_LOOP, Sampling::Off, ctx.cfg.measure).await?.ops_per_s
        } else {
            0.0
        };
        ctx.check()?;
        if wanted(2) {
            rep.load("open loop");
            open::run(&ctx, &mut rep).await?;
            ctx.check()?;
        }
        if wanted(3) {
            rep.load("sampler");
            sampler::run(&ctx, &mut rep).await?;
            ctx.check()?;
        }
        if wanted(4) {
            rep.load("clone reset");
            reset::run(&ctx, &mut rep).await?;
            ctx.check()?;
        }
        if wanted(7) {
            if wanted(4) {
                // Row 4 left a larger dataset in the template.
                seed(&ctx, ctx.cfg.rows, ctx.cfg.customers).await?;
            }
            rep.load("synthetic generation");
            synthetic::run(&ctx, &mut rep).await?;
            ctx.check()?;
        }
        Ok::<f64, Error>(saturation)
    };
    let saturation = tokio::select! {
        r = rows => r?,
        _ = cancel.cancelled() => return Err(Error::interrupted()),
    };
    let Ctx { server, .. } = ctx;
    drop(server); // the end-to-end rows start their own servers
    if wanted(5) {
        rep.load("end to end");
        e2e::run(&cfg, &mut rep, saturation, quiet, cancel).await?;
    }
    if wanted(6) {
        rep.load("replica sampler");
        replica::run(&cfg, args.pg_bin.clone(), &mut rep, quiet, cancel).await?;
    }
    if wanted(8) {
        rep.load("prediction accuracy");
        predict::run(&cfg, &mut rep, quiet, cancel).await?;
    }

    rep.finish(started.elapsed());
    let md = args.out.join("BENCHMARKS.md");
    let json = args.out.join("bench.json");
    std::fs::write(&md, rep.markdown()).map_err(|e| Error::env(format!("{}: {e}", md.display())))?;
    std::fs::write(&json, rep.json()).map_err(|e| Error::env(format!("{}: {e}", json.display())))?;
    say(&format!("wrote {} and {}", md.display(), json.display()));
    Ok(())
}

/// The bench workload's classes for this configuration's dataset.
pub fn bench_classes(cfg: &Config) -> Result<Vec<Class>> {
    let text = WORKLOAD.replace("{{rows}}", &cfg.rows.to_string()).replace("{{customers}}", &cfg.customers.to_string());
    workload::file::parse(&text, std::path::Path::new("bench workload"))
}

/// The orders seed script for `rows` orders and `customers` customers.
pub fn seed_sql(rows: u64, customers: u64) -> String {
    include_str!("../../workloads/orders/seed.sql")
        .replace("{{rows}}", &rows.to_string())
        .replace("{{customers}}", &customers.to_string())
}

/// (Re)builds the template database with the orders dataset.
pub async fn seed(ctx: &Ctx, rows: u64, customers: u64) -> Result<template::Dataset> {
    drop_db(ctx, template::TEMPLATE_DB).await?;
    template::build(&ctx.server, &seed_sql(rows, customers), std::path::Path::new("workloads/orders/seed.sql")).await
}

pub async fn drop_db(ctx: &Ctx, name: &str) -> Result<()> {
    let admin = connect(&ctx.server, "postgres", "admin").await?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .await
        .map_err(|e| Error::db(format!("cannot drop database {name}: {}", describe_pg(&e))))
}

async fn server_version(ctx: &Ctx) -> Result<String> {
    let admin = connect(&ctx.server, "postgres", "admin").await?;
    Ok(admin.query_one("SELECT version()", &[]).await.map_err(|e| Error::db(describe_pg(&e)))?.get(0))
}

/// What one run of the replayer measured.
#[derive(Debug)]
pub struct Drive {
    /// Successful operations per second, counted by completion time over the
    /// whole seconds of the measured window.
    pub ops_per_s: f64,
    /// Successful operations in those seconds.
    pub ops: u64,
    pub errors: u64,
    /// This process's CPU time (user + system) during the measured window.
    pub cpu: Duration,
    /// The whole seconds `ops` and `ops_per_s` count.
    pub window: Duration,
    /// How long the measured window was (what `cpu` was read over): a little
    /// longer than `window`, whose seconds are the whole ones inside it.
    pub elapsed: Duration,
    /// Pacer emission lag against the intended start (µs), measured window only.
    pub lag: Hist,
    /// Latency of the measured operations, all classes (µs).
    pub latency: Hist,
    pub unfinished: u64,
    pub sampler: Option<SamplerRecord>,
    /// The replica sampler's record (`Sampling::AlternateReplica`).
    pub replicas: Option<crate::run_record::replica::ReplicasRecord>,
    /// The CPU time the replica sampler's server processes (its sessions on
    /// the primary and the standbys) used over the measured window.
    pub replica_backend_cpu: Option<Duration>,
    /// Successful operations of each whole second of the measured window.
    pub per_second: Vec<f64>,
}

/// The lock sampler during a `drive`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    Off,
    /// Polling at this interval throughout.
    On(Duration),
    /// Polling at this interval in the measured seconds `alternate(i)` says,
    /// paused in the others: i counts the whole seconds of the measured window.
    Alternate(Duration),
    /// The lock sampler off, and the replica sampler (the server's standbys)
    /// polling at this interval in the seconds `alternate(i)` says.
    AlternateReplica(Duration),
}

/// Whether the sampler polls in measured second `i` of `Sampling::Alternate`:
/// pairs of seconds, on-off then off-on (ABBA), so a drift within a pair
/// favours neither side.
pub fn alternate(i: usize) -> bool {
    i.is_multiple_of(2) == (i / 2).is_multiple_of(2)
}

/// The seconds of an alternating run split by side: (the sampler polled,
/// it paused), pair by pair.
pub fn sides(per_second: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for (n, pair) in per_second.chunks_exact(2).enumerate() {
        let (a, b) = if alternate(n * 2) { (pair[0], pair[1]) } else { (pair[1], pair[0]) };
        with.push(a);
        without.push(b);
    }
    (with, without)
}

/// Runs the bench workload at `rate` (`workload::CLOSED_LOOP` for a closed
/// loop) on `BENCH_DB` for warmup + `measure`, with the lock sampler as
/// `sampling` says.
pub async fn drive(ctx: &Ctx, rate: f64, sampling: Sampling, measure: Duration) -> Result<Drive> {
    let plan = WorkloadPlan {
        path: "bench workload".into(),
        source: String::new(),
        classes: ctx.classes.clone(),
        rate,
        connections: ctx.cfg.connections,
        seed: 42,
        statement_timeout: Duration::from_secs(30),
        replay: None,
        speed: 1.0,
        pool: None,
    };
    let interval = match sampling {
        Sampling::Off | Sampling::AlternateReplica(_) => None,
        Sampling::On(i) | Sampling::Alternate(i) => Some(i),
    };
    let sampler = match interval {
        Some(interval) => Some(harness::Sampling {
            client: connect(&ctx.server, BENCH_DB, "sampler").await?,
            interval,
            reconnect: None,
        }),
        None => None,
    };
    let sessions = Arc::new(Sessions::new(ctx.server.target(BENCH_DB)));
    let run = harness::start(Wiring {
        plan: &plan,
        classes: ctx.classes.clone(),
        target: ctx.server.target(BENCH_DB),
        roles: Arc::new(Roles::new(&ctx.classes)),
        sessions: sessions.clone(),
        slots: Slot::count(0),
        sampling: sampler,
        replica: None,
    })
    .await?;
    let replicas = match sampling {
        Sampling::AlternateReplica(i) => Some(replica_sampler(ctx, &run, i).await?),
        _ => None,
    };
    // A sampler that alternates polls in the measured seconds `alternate` picks only.
    let pause: Option<Box<dyn Fn(bool) + Send + Sync + '_>> = match (sampling, &run.sampler, &replicas) {
        (Sampling::Alternate(_), Some(s), _) => Some(Box::new(|p| s.pause(p))),
        (Sampling::AlternateReplica(_), _, Some(r)) => Some(Box::new(|p| r.pause(p))),
        _ => None,
    };
    if let Some(pause) = &pause {
        pause(true);
    }
    ctx.sleep(ctx.cfg.warmup).await?;
    run.clock.enter(Slot::Baseline);
    let backends = || replicas.as_ref().map(|r| r.backend_pids.iter().filter_map(|&p| sys::process_cpu(p).ok()).sum());
    let (t0, cpu0, backends0): (_, _, Option<Duration>) = (Instant::now(), cpu_time(), backends());
    window(ctx, &run, pause.as_deref(), measure).await?;
    let (t1, cpu1, backends1) = (Instant::now(), cpu_time(), backends());
    drop(pause);
    run.clock.enter(Slot::After);
    let clock = run.clock.clone();
    let (rec, sampler) = run.finish(Duration::from_secs(5)).await;
    let replicas = match replicas {
        Some(r) => Some(r.finish().await),
        None => None,
    };
    sessions.close(true).await;
    let window = (clock.since_start(t0), clock.since_start(t1));
    let replica_backend_cpu = backends0.zip(backends1).map(|(a, b)| b.saturating_sub(a));
    Ok(Drive { replicas, replica_backend_cpu, ..Drive::of(&rec, window, cpu1.saturating_sub(cpu0), sampler) })
}

/// The replica sampler on the server's standbys, polling `BENCH_DB`'s copies.
async fn replica_sampler(
    ctx: &Ctx,
    run: &Measured,
    interval: Duration,
) -> Result<crate::sampler::replica::ReplicaSampler> {
    let standbys = ctx.server.standbys();
    let connected = crate::sampler::replica::connect(ctx.server.target("postgres"), &standbys, BENCH_DB, false)
        .await?
        .ok_or_else(|| Error::env("the replica sampler's row needs a server with a standby"))?;
    Ok(connected.start(run.clock.clone(), interval))
}

/// The measured window: `measure` long; with an alternating sampler
/// (`pause`), it polls in the seconds `alternate` picks and pauses in the others.
async fn window(
    ctx: &Ctx,
    run: &Measured,
    pause: Option<&(dyn Fn(bool) + Send + Sync)>,
    measure: Duration,
) -> Result<()> {
    let Some(pause) = pause else {
        return ctx.sleep(measure).await;
    };
    let clock = &run.clock;
    // Toggle at the clock's second boundaries, which `rec.seconds` counts by.
    let first = clock.since_start(Instant::now()).as_secs_f64().ceil() as u64;
    for (i, sec) in (first..).take(measure.as_secs() as usize).enumerate() {
        ctx.sleep((clock.start + Duration::from_secs(sec)).saturating_duration_since(Instant::now())).await?;
        pause(!alternate(i));
    }
    ctx.sleep((clock.start + Duration::from_secs(first) + measure).saturating_duration_since(Instant::now())).await?;
    pause(true);
    Ok(())
}

impl Drive {
    /// Client CPU time per successful operation (µs): the CPU time over the
    /// measured window divided by the operations in that same span (the rate
    /// of its whole seconds × its length). Dividing by the operations of the
    /// whole seconds alone, 5 of a 6 s window, put 6/5 of the CPU on them.
    pub fn cpu_per_op_us(&self) -> f64 {
        let ops = self.ops_per_s * self.elapsed.as_secs_f64();
        if ops > 0.0 { self.cpu.as_secs_f64() * 1e6 / ops } else { 0.0 }
    }

    /// The figures of the measured window (`from`, `to` since the clock's
    /// start): the whole seconds inside it, and the baseline's latency.
    fn of(
        rec: &WorkloadRecord,
        (from, to): (Duration, Duration),
        cpu: Duration,
        sampler: Option<SamplerRecord>,
    ) -> Drive {
        let a = from.as_secs_f64().ceil() as usize;
        let b = (to.as_secs_f64().floor() as usize).min(rec.seconds.len());
        let (mut ops, mut errors) = (0u64, 0u64);
        let mut per_second = Vec::new();
        for s in rec.seconds.get(a..b).unwrap_or(&[]) {
            ops += s.ops - s.errors;
            errors += s.errors;
            per_second.push((s.ops - s.errors) as f64);
        }
        let secs = b.saturating_sub(a).max(1);
        let mut latency = new_hist();
        for class in &rec.latency {
            if let Some(h) = &class[Slot::Baseline.index()] {
                let _ = latency.add(h);
            }
        }
        Drive {
            ops_per_s: ops as f64 / secs as f64,
            ops,
            errors,
            cpu,
            window: Duration::from_secs(secs as u64),
            elapsed: to.saturating_sub(from),
            lag: rec.schedule_lag.clone(),
            latency,
            unfinished: rec.unfinished,
            sampler,
            replicas: None,
            replica_backend_cpu: None,
            per_second,
        }
    }
}

/// CPU time (user + system) of this process so far.
pub fn cpu_time() -> Duration {
    crate::sys::own_usage().cpu
}

/// Median of a few samples (the mean of the middle two for an even count).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 }
}

/// The load average, as /proc/loadavg reports it (1, 5, 15 minutes).
pub fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text.split_whitespace().map(|x| x.parse().unwrap_or(0.0));
    [it.next().unwrap_or(0.0), it.next().unwrap_or(0.0), it.next().unwrap_or(0.0)]
}

#[cfg(test)]
mod tests {
    #[test]
    fn alternate_pairs_on_off_then_off_on() {
        let pattern: Vec<bool> = (0..8).map(super::alternate).collect();
        assert_eq!(pattern, [true, false, false, true, true, false, false, true]);
    }
}
