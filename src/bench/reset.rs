//! Row 4, clone reset: how long a fresh copy of the dataset takes, by
//! template (`CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY`, what every
//! rehearsal does) against a fresh restore of a `pg_dump -Fc` of the same data
//! (`clone::restore`, pg_restore with 2 jobs, what a dump-based dataset costs
//! without the template), on the orders dataset grown to about 1 GB.
//!
//! Then the copy-on-write reset (`clone::reflink`: the template's server
//! stopped, a reflink copy of its data directory, a server of its own started
//! on it, up to accepting connections) against the template copy, on one
//! server of their own in `--data-dir` (both sides on the same file system and
//! dataset): about 1 GB, and about 10 GB with `--reset-10gb`. Where that
//! directory has no reflinks, a note says so instead.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::report::{Row, Side};
use super::{Ctx, drop_db};
use crate::clone::local::LocalServer;
use crate::clone::reflink;
use crate::clone::restore::{DumpFormat, DumpPlan, Tools};
use crate::clone::template::{self, TEMPLATE_DB};
use crate::clone::{ClonePlan, Server};
use crate::error::{Error, Result, describe_pg};

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
    let plan = DumpPlan { path: dump.clone(), format: DumpFormat::Custom, jobs: 2, sample: None };
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
    copy_on_write(ctx, rep).await
}

/// The copy-on-write rows: about 1 GB, and 10 GB with `--reset-10gb`.
async fn copy_on_write(ctx: &Ctx, rep: &mut super::report::Report) -> Result<()> {
    let dir = &ctx.cfg.data_dir;
    let support = reflink::probe(dir);
    ctx.say(&format!("clone reset: {} ({})", support.describe(), dir.display()));
    if !support.is_supported() {
        rep.notes.push(format!(
            "Row 4, copy-on-write reset: not measured in {}: {}. Give --data-dir (or LOCKIMPACT_BENCH_DATA_DIR) a \
             directory on XFS made with reflink=1 or on btrfs.",
            dir.display(),
            support.describe()
        ));
        return Ok(());
    }
    cow_row(ctx, rep, 1).await?;
    if ctx.cfg.reset_10gb {
        ctx.check()?;
        cow_row(ctx, rep, 10).await?;
    }
    Ok(())
}

/// One copy-on-write row: a server in `--data-dir` with the orders dataset
/// of `reset_rows` orders, grown `scale` times by copies of its table; the
/// template copy `copies` times, then the reflink reset as many times.
async fn cow_row(ctx: &Ctx, rep: &mut super::report::Report, scale: u32) -> Result<()> {
    let plan = ClonePlan {
        pg_bin: ctx.server.tools().and_then(|t| match t {
            Tools::Local { bin_dir, .. } => Some(bin_dir),
            _ => None,
        }),
        settings: super::SETTINGS.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..ClonePlan::local()
    };
    let mut server: Server = Box::new(LocalServer::start_in(&plan, &ctx.cfg.data_dir)?);
    let (bytes, build_s) = build_scaled(ctx, &server, scale).await?;
    let gb = bytes as f64 / 1e9;
    let mut copies = Vec::new();
    for _ in 0..ctx.cfg.copies {
        ctx.check()?;
        let t = template::fresh_copy(&server, COPY_DB).await?;
        ctx.say(&format!("clone reset: template copy of {gb:.2} GB in {:.2} s", t.as_secs_f64()));
        copies.push(t.as_secs_f64());
        drop_on(&server, COPY_DB).await?;
    }
    let r = reflink_resets(ctx, &mut server, gb).await?;
    let name = if scale == 1 { "clone_reset_reflink".to_string() } else { format!("clone_reset_reflink_x{scale}") };
    let row = Row::new(
        4,
        &name,
        &format!("fresh copy of {gb:.2} GB by copy-on-write ({})", reflink::filesystem_name(&ctx.cfg.data_dir)),
        Side::samples("reflink + own server", r.took.clone(), "s"),
        Side::samples("template copy", copies, "s"),
        "reflink / template copy",
    );
    let met = row.a.value < 1.0;
    let row = row.target("reflink < 1 s", met).detail(format!(
        "reflink: {} files copied by FICLONE (median {:.2} s), a server started on them on its own port up to \
         accepting connections (median {:.2} s), the template database renamed for the run (median {:.2} s); \
         space used on the file system by one running copy {:.1} MB; the template's server was stopped once, \
         cleanly, in {:.2} s (not counted). Building the dataset took {build_s:.0} s{}.",
        r.files,
        super::median(&r.copy),
        super::median(&r.start),
        super::median(&r.rename),
        r.grown as f64 / 1e6,
        r.stop,
        if scale > 1 {
            format!(" (the orders dataset, then copies of its table up to {scale}× its size)")
        } else {
            String::new()
        }
    ));
    rep.rows.push(row);
    Ok(())
}

/// What the reflink resets of one row measured.
#[derive(Default)]
struct Resets {
    /// Each reset, to accepting connections under the run's name (s).
    took: Vec<f64>,
    /// Its parts (s): the FICLONE copy, the server start, the rename.
    copy: Vec<f64>,
    start: Vec<f64>,
    rename: Vec<f64>,
    /// The template's clean stop, once (s).
    stop: f64,
    /// Space one running copy used on the file system (bytes).
    grown: u64,
    files: u64,
}

/// The reflink resets, `copies` of them, each copy's server dropped before the next.
async fn reflink_resets(ctx: &Ctx, server: &mut Server, gb: f64) -> Result<Resets> {
    let mut r = Resets::default();
    for _ in 0..ctx.cfg.copies {
        ctx.check()?;
        let before = used_bytes(&ctx.cfg.data_dir);
        let reset = reflink::reset(server, COPY_DB, &ctx.cancel).await?;
        let (Some(copied), Some(started)) = (&reset.copied, reset.started) else {
            return Err(Error::env(format!("the copy-on-write reset fell back: {}", reset.why)));
        };
        r.grown = used_bytes(&ctx.cfg.data_dir).saturating_sub(before);
        r.stop = reset.template_stop.map_or(r.stop, |d| d.as_secs_f64());
        r.files = copied.files;
        let (took, copy, started) = (reset.took.as_secs_f64(), copied.took.as_secs_f64(), started.as_secs_f64());
        ctx.say(&format!(
            "clone reset: reflink copy of {gb:.2} GB accepting connections in {took:.2} s (copy {copy:.2} s, \
             server start {:.2} s, rename {:.2} s)",
            started - copy,
            took - started
        ));
        r.took.push(took);
        r.copy.push(copy);
        r.start.push(started - copy);
        r.rename.push(took - started);
    }
    Ok(r)
}

/// Builds the orders template of `reset_rows` orders, then adds copies of
/// its table until the database is `scale` times its size; returns its size
/// (bytes) and how long that took (s).
async fn build_scaled(ctx: &Ctx, server: &Server, scale: u32) -> Result<(u64, f64)> {
    let started = Instant::now();
    let rows = ctx.cfg.reset_rows;
    ctx.say(&format!("clone reset: building a {scale}× dataset of {rows} orders in {}", ctx.cfg.data_dir.display()));
    let sql = super::seed_sql(rows, (rows / 20).max(1000));
    let base = template::build(server, &sql, Path::new("workloads/orders/seed.sql")).await?.bytes.unwrap_or(0);
    let db = template::connect(server, TEMPLATE_DB, "seed").await?;
    let mut bytes = base;
    for k in 2.. {
        if bytes >= base * i64::from(scale) {
            break;
        }
        ctx.check()?;
        let sql = format!("CREATE TABLE orders_{k} AS TABLE orders");
        db.batch_execute(&sql).await.map_err(|e| Error::db(format!("{sql}: {}", describe_pg(&e))))?;
        bytes = db
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await
            .map_err(|e| Error::db(describe_pg(&e)))?
            .get(0);
        ctx.say(&format!("clone reset: the dataset is {:.2} GB", bytes as f64 / 1e9));
    }
    Ok((bytes.max(0) as u64, started.elapsed().as_secs_f64()))
}

async fn drop_on(server: &Server, name: &str) -> Result<()> {
    let admin = template::connect(server, "postgres", "admin").await?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .await
        .map_err(|e| Error::db(format!("cannot drop database {name}: {}", describe_pg(&e))))
}

/// Bytes in use on the file system holding `dir` (`df`), 0 when unknown.
fn used_bytes(dir: &Path) -> u64 {
    let out = Command::new("df").args(["-B1", "--output=used"]).arg(dir).output();
    out.ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().nth(1).and_then(|l| l.trim().parse().ok()))
        .unwrap_or(0)
}
