//! Row 2, open-loop accuracy: the replayer on its fixed schedule at 25 %,
//! 50 % and 80 % of saturation, measured by a closed-loop run just before
//! each level (this machine's capacity drifts by tens of per cent within a
//! minute, so row 1's median can be above what it has now). Achieved rate is
//! counted by completion time over the whole seconds of the measured window;
//! schedule lag is how late a worker waiting for an operation's intended
//! start began it. Beside them, the client CPU per operation of the open loop
//! against the closed loop's just before.

use super::report::{Row, Side};
use super::{Ctx, Sampling, drive};
use crate::error::Result;
use crate::workload::CLOSED_LOOP;

pub const LEVELS: &[f64] = &[0.25, 0.50, 0.80];

pub async fn run(ctx: &Ctx, rep: &mut super::report::Report) -> Result<()> {
    for &f in LEVELS {
        ctx.check()?;
        let closed = drive(ctx, CLOSED_LOOP, Sampling::Off, ctx.cfg.measure).await?;
        let saturation = closed.ops_per_s;
        ctx.check()?;
        let target = (saturation * f).max(1.0).round();
        let d = drive(ctx, target, Sampling::Off, ctx.cfg.measure).await?;
        let pct = (f * 100.0).round();
        let (p50, p99, max) = (
            d.lag.value_at_quantile(0.5) as f64 / 1000.0,
            d.lag.value_at_quantile(0.99) as f64 / 1000.0,
            d.lag.max() as f64 / 1000.0,
        );
        ctx.say(&format!(
            "open loop at {pct}%: {target} ops/s asked, {:.0} achieved, lag p99 {p99:.3} ms",
            d.ops_per_s
        ));
        let achieved = d.ops_per_s / target;
        rep.rows.push(
            Row::new(
                2,
                &format!("open_loop_rate_{pct}"),
                &format!("rate at {pct} % of saturation"),
                Side::new("achieved", d.ops_per_s, "ops/s"),
                Side::new("target", target, "ops/s"),
                "achieved / target",
            )
            .target("≥ 0.995", achieved >= 0.995)
            .detail(format!(
                "saturation just before: {saturation:.0} ops/s; latency from intended start p50 {:.2} ms, p99 \
                 {:.2} ms; errors {}, unfinished at the end {}",
                d.latency.value_at_quantile(0.5) as f64 / 1000.0,
                d.latency.value_at_quantile(0.99) as f64 / 1000.0,
                d.errors,
                d.unfinished
            )),
        );
        rep.rows.push(
            Row::new(
                2,
                &format!("open_loop_lag_{pct}"),
                &format!("schedule lag p99 at {pct} %"),
                Side::new("lag p99", p99, "ms"),
                Side::new("budget", 1.0, "ms"),
                "p99 / budget",
            )
            .target("< 1 ms", p99 < 1.0)
            .detail(format!(
                "lag p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms over {} operations a worker waited for (the \
                 others were taken when already due, waiting in the queue: their wait is in latency)",
                d.lag.len()
            )),
        );
        rep.rows.push(
            Row::new(
                2,
                &format!("open_loop_cpu_{pct}"),
                &format!("client CPU per operation at {pct} %"),
                Side::new("open loop", d.cpu_per_op_us(), "µs"),
                Side::new("closed loop", closed.cpu_per_op_us(), "µs"),
                "open / closed",
            )
            .detail(format!(
                "user + system CPU time of the client process over the measured window / the operations in it; the closed \
                 loop is the saturation run just before ({:.0} ops/s), the open loop ran at {target} ops/s",
                closed.ops_per_s
            )),
        );
    }
    Ok(())
}
