//! Row 3, the lock sampler's cost and resolution: closed-loop throughput with
//! the sampler polling every 10 ms against none, in one run where the sampler
//! polls in one second and pauses in the next (pairs of adjacent seconds, so
//! the machine's own drift, tens of per cent here over a minute, cancels
//! out), the sampler's own query time under that load, and the length of a measured blocked
//! episode against a controlled hold of known length (one session holds an
//! ACCESS EXCLUSIVE lock while another waits for it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::report::{Row, Side};
use super::{BENCH_DB, Ctx, Sampling, drive, median, sides};
use crate::clone::template::connect;
use crate::error::{Error, Result, describe_pg};
use crate::run_record::new_hist;
use crate::sampler::Sampler;
use crate::timeline::Clock;
use crate::workload::CLOSED_LOOP;
use crate::workload::Roles;

pub async fn run(ctx: &Ctx, rep: &mut super::report::Report) -> Result<()> {
    let interval = ctx.cfg.sampler_interval;
    ctx.check()?;
    cost(ctx, rep, interval).await?;
    resolution(ctx, rep, interval).await
}

/// Throughput with and without sampling in one alternating run, and the
/// sampler's own query time under that load.
async fn cost(ctx: &Ctx, rep: &mut super::report::Report, interval: Duration) -> Result<()> {
    // As long as the side-by-side rows run both sides: rounds × 2 × measure.
    let measure = ctx.cfg.measure * 2 * ctx.cfg.rounds;
    let d = drive(ctx, CLOSED_LOOP, Sampling::Alternate(interval), measure).await?;
    let (with, without) = sides(&d.per_second);
    let rec = d.sampler.unwrap_or_default();
    let query = rec.query_time.unwrap_or_else(new_hist);
    let polls = rec.polls;
    // The sampler polled in the "with" seconds only (paused before and between).
    let window = Duration::from_secs(with.len() as u64);
    ctx.say(&format!(
        "sampler: {} one-second pairs, median {:.0} ops/s with sampling, {:.0} without",
        with.len(),
        median(&with),
        median(&without)
    ));
    let ms = interval.as_millis();
    let what = format!("closed-loop throughput, sampling every {ms} ms vs none");
    rep.rows.push(loss_row((3, "sampler_throughput", &what), (&with, &without), 3.0, measure));

    let (q50, q99) = (query.value_at_quantile(0.5) as f64 / 1000.0, query.value_at_quantile(0.99) as f64 / 1000.0);
    let per_s = polls as f64 / window.as_secs_f64().max(1e-9);
    rep.rows.push(
        Row::new(
            3,
            "sampler_query_time",
            "sampler query time under full load (p99)",
            Side::new("query p99", q99, "ms"),
            Side::new("interval", ms as f64, "ms"),
            "query p99 / interval",
        )
        .detail(format!(
            "query p50 {q50:.3} ms, p99 {q99:.3} ms, max {:.3} ms over {polls} polls ({per_s:.1} polls/s; \
             {:.1} expected)",
            query.max() as f64 / 1000.0,
            1000.0 / ms as f64
        )),
    );
    Ok(())
}

/// Row `n`'s throughput with a sampler polling (`with`) against paused
/// (`without`), pair by pair, with its target: a loss under `limit` per cent.
pub fn loss_row(
    (n, id, what): (u8, &str, &str),
    (with, without): (&[f64], &[f64]),
    limit: f64,
    measure: Duration,
) -> Row {
    let row = Row::new(
        n,
        id,
        what,
        Side::samples("sampling", with.to_vec(), "ops/s"),
        Side::samples("no sampling", without.to_vec(), "ops/s"),
        "sampling / none",
    )
    .paired();
    let loss = (1.0 - row.ratio) * 100.0;
    let total = |v: &[f64]| v.iter().sum::<f64>();
    row.target(&format!("loss < {limit} %"), loss < limit).detail(format!(
        "throughput loss {loss:.2} % (median of the per-pair ratios); {:.2} % in total operations; one closed-loop \
         run of {} s in which the sampler polled in one second of each adjacent pair and paused in the other \
         (on-off, then off-on)",
        (1.0 - total(with) / total(without).max(1.0)) * 100.0,
        measure.as_secs()
    ))
}

/// Blocked episodes measured against controlled holds of known length.
async fn resolution(ctx: &Ctx, rep: &mut super::report::Report, interval: Duration) -> Result<()> {
    let ms = interval.as_millis();
    let mut errors = Vec::new();
    let mut measured = Vec::new();
    let mut references = Vec::new();
    for _ in 0..ctx.cfg.holds {
        ctx.check()?;
        let (m, r) = episode(ctx, interval).await?;
        measured.push(m.as_secs_f64() * 1000.0);
        references.push(r.as_secs_f64() * 1000.0);
        errors.push((m.as_secs_f64() - r.as_secs_f64()).abs() * 1000.0);
    }
    let worst = errors.iter().copied().fold(0.0, f64::max);
    ctx.say(&format!("sampler episode: worst error {worst:.2} ms"));
    rep.rows.push(
        Row::new(
            3,
            "sampler_episode",
            &format!("blocked episode vs a controlled {} ms hold", ctx.cfg.hold.as_millis()),
            Side::samples("measured episode", measured, "ms"),
            Side::samples("hold (client-side)", references, "ms"),
            "measured / hold",
        )
        .target(&format!("error ≤ {ms} ms (one interval)"), worst <= ms as f64)
        .detail(format!(
            "absolute error per hold: {} ms (worst {worst:.2} ms); the hold is measured from the waiter's query \
             being sent to the holder's COMMIT returning",
            errors.iter().map(|e| format!("{e:.2}")).collect::<Vec<_>>().join(", ")
        )),
    );
    Ok(())
}

/// One hold: returns (measured episode, the waiter's wait as the client saw it).
async fn episode(ctx: &Ctx, interval: Duration) -> Result<(Duration, Duration)> {
    let db = |e: tokio_postgres::Error| Error::db(describe_pg(&e));
    let holder = connect(&ctx.server, BENCH_DB, "holder").await?;
    let reader = connect(&ctx.server, BENCH_DB, "reader").await?;
    let sampler_client = connect(&ctx.server, BENCH_DB, "sampler").await?;
    holder.batch_execute("CREATE TABLE IF NOT EXISTS bench_hold (id int)").await.map_err(db)?;
    let holder_pid: i32 = holder.query_one("SELECT pg_backend_pid()", &[]).await.map_err(db)?.get(0);
    let reader_pid: i32 = reader.query_one("SELECT pg_backend_pid()", &[]).await.map_err(db)?.get(0);
    let roles = Arc::new(Roles::new(&[]));
    roles.set_migration(holder_pid);
    roles.add_workload(reader_pid);
    let sampler = Sampler::start(sampler_client, interval, Arc::new(Clock::new()), roles, None);
    ctx.sleep(interval * 3).await?;
    holder.batch_execute("BEGIN; LOCK TABLE bench_hold IN ACCESS EXCLUSIVE MODE").await.map_err(db)?;
    let sent = Instant::now();
    let read = tokio::spawn(async move { reader.query_one("SELECT count(*) FROM bench_hold", &[]).await.map(|_| ()) });
    ctx.sleep(ctx.cfg.hold).await?;
    holder.batch_execute("COMMIT").await.map_err(db)?;
    let released = Instant::now();
    read.await.map_err(|e| Error::env(e.to_string()))?.map_err(db)?;
    ctx.sleep(interval * 5).await?;
    let rec = sampler.finish().await;
    let ep = rec
        .episodes
        .iter()
        .find(|e| e.pid == reader_pid)
        .ok_or_else(|| Error::env("the sampler saw no blocked episode for the controlled hold"))?;
    Ok((ep.end - ep.start, released - sent))
}
