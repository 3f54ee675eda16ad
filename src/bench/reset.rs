//! Row 4, clone reset: how long a fresh copy of the dataset takes, by
//! template (`CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY`, what every
//! rehearsal does) against a fresh restore of a `pg_dump -Fc` of the same data
//! (`clone::restore`, pg_restore with 2 jobs, what a dump-based dataset costs
//! without the template), on the orders dataset grown to about 1 GB.

use std::process::{Command, Stdio};
use std::time::Instant;

use super::report::{Row, Side};
use super::{Ctx, drop_db};
use crate::clone::restore::{DumpFormat, DumpPlan, Tools};
use crate::clone::template::{self, TEMPLATE_DB};
use crate::error::{Error, Result};

const COPY_DB: &str = "lockimpact_copy";

pub async fn run(ctx: &Ctx, rep: &mut super::report::Report) -> Result<()> {
    drop_db(ctx, super::BENCH_DB).await?;
    let rows = ctx.cfg.reset_rows;
    let customers = (rows / 20).max(1000);
    ctx.say(&format!("clone reset: seeding {rows} orders"));
    let seeded = Instant::now();
    let dataset = super::seed(ctx, rows, customers).await?;
    let seed_s = seeded.elapsed().as_secs_f64();
    let bytes = dataset.bytes.unwrap_or(0).max(0) as f64;
    let gb = bytes / 1e9;

    let mut copies = Vec::new();
    for _ in 0..ctx.cfg.copies {
        ctx.check()?;
        drop_db(ctx, COPY_DB).await?;
        let t = template::fresh_copy(&ctx.server, COPY_DB).await?;
        ctx.say(&format!("clone reset: template copy of {gb:.2} GB in {:.2} s", t.as_secs_f64()));
        copies.push(t.as_secs_f64());
    }
    drop_db(ctx, COPY_DB).await?;

    let Some(Tools::Local { bin_dir, socket_dir, port, .. }) = ctx.server.tools() else {
        return Err(Error::env("the bench runs on the local backend only"));
    };
    let dir = tempfile::tempdir().map_err(|e| Error::env(format!("cannot create a temp dir: {e}")))?;
    let dump = dir.path().join("bench.dump");
    let dumped = Instant::now();
    let mut cmd = Command::new(bin_dir.join("pg_dump"));
    cmd.arg("-h").arg(&socket_dir).args(["-p", &port.to_string(), "-U", "postgres", "-d", TEMPLATE_DB, "-Fc", "-f"]);
    cmd.arg(&dump).stdin(Stdio::null());
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .map_err(|e| Error::env(e.to_string()))?
        .map_err(|e| Error::env(format!("cannot run pg_dump: {e}")))?;
    if !out.status.success() {
        return Err(Error::env(format!("pg_dump failed: {}", String::from_utf8_lossy(&out.stderr))));
    }
    let dump_s = dumped.elapsed().as_secs_f64();
    let dump_bytes = std::fs::metadata(&dump).map(|m| m.len()).unwrap_or(0);
    ctx.check()?;

    drop_db(ctx, TEMPLATE_DB).await?;
    let plan = DumpPlan { path: dump.clone(), format: DumpFormat::Custom, jobs: 2 };
    let say = |m: &str| ctx.say(m);
    let restored = Instant::now();
    let ds = crate::clone::restore::restore(&ctx.server, &plan, &say).await?;
    let with_analyze = restored.elapsed().as_secs_f64();
    let restore_s = ds.restore_time.map(|d| d.as_secs_f64()).unwrap_or(with_analyze);
    ctx.say(&format!("clone reset: pg_restore in {restore_s:.1} s"));

    let row = Row::new(
        4,
        "clone_reset",
        &format!("fresh copy of {gb:.2} GB ({rows} orders)"),
        Side::samples("template copy", copies, "s"),
        Side::new("pg_restore -j 2", restore_s, "s"),
        "copy / restore",
    );
    let speedup = if row.ratio > 0.0 { 1.0 / row.ratio } else { 0.0 };
    let row = row.detail(format!(
        "the template copy is {speedup:.1}× faster. Database size {:.0} MB; seeding it took {seed_s:.1} s; \
         pg_dump -Fc took {dump_s:.1} s ({:.0} MB dump); the restore time excludes the ANALYZE after it ({with_analyze:.1} s \
         with it){}",
        bytes / 1e6,
        dump_bytes as f64 / 1e6,
        if gb < 0.9 { "; scaled down from 1 GB with --reset-rows or --quick" } else { "" }
    ));
    rep.rows.push(row);
    Ok(())
}
