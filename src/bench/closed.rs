//! Row 1, closed-loop throughput: the replayer (`workload::CLOSED_LOOP`, every
//! connection busy all the time) against `pgbench -M prepared` on the same
//! statements, connection count and database, alternated `rounds` times
//! (which side goes first alternates too). Also each side's client CPU time
//! per operation, a row of its own beside the throughput: on a 2-core machine
//! every µs the client spends is taken from the server.

use super::report::{Row, Side};
use super::{Ctx, Sampling, drive, median, pgbench};
use crate::error::{Error, Result};
use crate::workload::CLOSED_LOOP;

/// Runs the row; returns the replayer's saturation throughput (ops/s).
pub async fn run(ctx: &Ctx, rep: &mut super::report::Report) -> Result<f64> {
    let dir = tempfile::tempdir().map_err(|e| Error::env(format!("cannot create a temp dir: {e}")))?;
    let scripts = pgbench::write_scripts(&ctx.classes, dir.path())?;
    let secs = ctx.cfg.measure.as_secs().max(1);
    let (mut li, mut pg) = (Vec::new(), Vec::new());
    let (mut li_cpu, mut pg_cpu) = (Vec::new(), Vec::new());
    let mut errors = 0;
    let mut pg_failed = 0;
    for round in 0..ctx.cfg.rounds {
        for side in [round % 2, 1 - round % 2] {
            ctx.check()?;
            if side == 0 {
                let d = drive(ctx, CLOSED_LOOP, Sampling::Off, ctx.cfg.measure).await?;
                ctx.say(&format!("closed loop, round {}: replayer {:.0} ops/s", round + 1, d.ops_per_s));
                li_cpu.push(d.cpu_per_op_us());
                li.push(d.ops_per_s);
                errors += d.errors;
            } else {
                let r = pgbench::run(ctx, &scripts, dir.path(), secs).await?;
                ctx.say(&format!("closed loop, round {}: pgbench {:.0} tps", round + 1, r.tps));
                pg_cpu.push(r.cpu.as_secs_f64() * 1e6 / r.transactions.max(1) as f64);
                pg.push(r.tps);
                pg_failed += r.failed;
            }
        }
    }
    let row = Row::new(
        1,
        "closed_loop_throughput",
        &format!("closed-loop throughput, {} connections", ctx.cfg.connections),
        Side::samples("replayer", li.clone(), "ops/s"),
        Side::samples("pgbench", pg.clone(), "tps"),
        "replayer / pgbench",
    )
    .paired();
    let met = row.ratio >= 1.0;
    let row = row.target("≥ 1.0", met).detail(format!(
        "errors: replayer {errors}, pgbench {pg_failed}. pgbench: `pgbench -n -M prepared -c {n} -j {n} -T {secs}` \
         with one script per class (`-f class.sql@weight`).",
        n = ctx.cfg.connections,
    ));
    rep.rows.push(row);
    let cpu = Row::new(
        1,
        "closed_loop_cpu_per_op",
        &format!("client CPU per operation, {} connections", ctx.cfg.connections),
        Side::samples("replayer", li_cpu, "µs"),
        Side::samples("pgbench", pg_cpu, "µs"),
        "replayer / pgbench",
    )
    .paired();
    let met = cpu.ratio <= 1.0;
    rep.rows.push(
        cpu.target("≤ 1.0", met).detail(
            "user + system CPU time of the client process over the measured window / the operations in it, in the \
         same rounds as the throughput above; the replayer's process includes its async runtime, pgbench's its \
         start-up and connections"
                .into(),
        ),
    );
    Ok(median(&li))
}
