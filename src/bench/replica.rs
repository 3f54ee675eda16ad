//! Row 6, the replica sampler's cost: closed-loop throughput with the
//! replica sampler polling one standby at the default `[replica] interval`
//! (100 ms) against paused, in one run where it polls in one second and
//! pauses in the next (pairs of
//! adjacent seconds, as row 3 does for the lock sampler). The row has a
//! server of its own: the primary of rows 1–4 has no standby, so that
//! streaming WAL to one costs them nothing. The lock sampler is off here.
//! The detail adds the CPU time the sampler's server processes used, read
//! from /proc, which shows its cost without the throughput's noise.

use tokio_util::sync::CancellationToken;

use super::report::Report;
use super::{BENCH_DB, Config, Ctx, Sampling, drive, median, seed, sides};
use crate::clone::standby::ReplicaPlan;
use crate::clone::{self, ClonePlan, template};
use crate::error::Result;
use crate::workload::CLOSED_LOOP;

pub async fn run(
    cfg: &Config,
    pg_bin: Option<std::path::PathBuf>,
    rep: &mut Report,
    quiet: bool,
    cancel: &CancellationToken,
) -> Result<()> {
    let plan = ClonePlan {
        pg_bin,
        settings: super::SETTINGS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        replicas: ReplicaPlan { count: 1, ..Default::default() },
        ..ClonePlan::local()
    };
    let say = |m: &str| {
        if !quiet {
            eprintln!("bench: {m}");
        }
    };
    let server = clone::start(&plan, &say)?;
    let ctx = Ctx { server, classes: super::bench_classes(cfg)?, cfg: cfg.clone(), quiet, cancel: cancel.clone() };
    ctx.say(&format!("replica sampler: seeding the orders dataset ({} rows) on a primary with one standby", cfg.rows));
    seed(&ctx, cfg.rows, cfg.customers).await?;
    template::fresh_copy(&ctx.server, BENCH_DB).await?;
    // What a rehearsal polls at unless `[replica] interval` says otherwise.
    let interval = crate::clone::standby::DEFAULT_INTERVAL;
    let measure = cfg.measure * 2 * cfg.rounds;
    let d = drive(&ctx, CLOSED_LOOP, Sampling::AlternateReplica(interval), measure).await?;
    let (with, without) = sides(&d.per_second);
    let polls: usize = d.replicas.iter().flat_map(|r| &r.standbys).map(|s| s.samples.len()).sum();
    ctx.say(&format!(
        "replica sampler: {} one-second pairs, median {:.0} ops/s with it polling, {:.0} without ({polls} polls)",
        with.len(),
        median(&with),
        median(&without)
    ));
    let what = format!(
        "closed-loop throughput, the replica sampler polling 1 standby every {} ms vs none",
        interval.as_millis()
    );
    let row = super::sampler::loss_row((6, "replica_sampler_throughput", &what), (&with, &without), 1.0, measure);
    let expected = with.len() as f64 * 1000.0 / interval.as_millis().max(1) as f64;
    let mut detail =
        format!("{}; {polls} polls of the standby in the polling seconds ({expected:.0} at most)", row.detail);
    if let Some(cpu) = d.replica_backend_cpu {
        detail.push_str(&backend_share(cpu, with.len()));
    }
    rep.rows.push(row.detail(detail));
    Ok(())
}

/// The CPU the sampler's server processes used in the `polling` seconds, as
/// a share of the machine's cores: a measure of its cost that does not
/// depend on how evenly the workload's throughput runs.
fn backend_share(cpu: std::time::Duration, polling: usize) -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = cpu.as_secs_f64() * 100.0 / (polling.max(1) * cores) as f64;
    format!(
        "; the sampler's server processes (its sessions on the primary and the standby) used {:.1} ms of CPU in \
         those {polling} s, {share:.2} % of the {cores} cores (its client side, in this process, is not counted)",
        cpu.as_secs_f64() * 1000.0
    )
}
