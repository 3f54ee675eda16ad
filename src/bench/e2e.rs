//! Row 5, end to end: the flagship scenario (the built-in default,
//! `orders-lock-queue`) run by this binary as a child process, its wall time
//! and peak RSS (`wait4`); then memory over run length: the same scenario
//! with a long baseline at the highest rate this machine sustains (capped at
//! 5 000 ops/s), its RSS read from /proc at two points of the baseline, and
//! the growth extrapolated to a 10-minute run.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Config;
use super::pgbench::{Reaped, wait4};
use super::report::{Report, Row, Side};
use crate::error::{Error, Result};

/// RSS budget of a 10-minute run at 5 000 ops/s.
const RSS_BUDGET_MB: f64 = 150.0;

pub async fn run(
    cfg: &Config,
    rep: &mut Report,
    saturation: f64,
    quiet: bool,
    cancel: &CancellationToken,
) -> Result<()> {
    let say = |m: &str| {
        if !quiet {
            eprintln!("bench: {m}");
        }
    };
    let dir = tempfile::tempdir().map_err(|e| Error::env(format!("cannot create a temp dir: {e}")))?;
    flagship(cfg, rep, dir.path(), cancel, &say).await?;
    if cancel.is_cancelled() {
        return Err(Error::interrupted());
    }
    memory(cfg, rep, saturation, dir.path(), cancel, &say).await
}

/// The flagship scenario once: its wall time against its phases, and its peak RSS.
async fn flagship(
    cfg: &Config,
    rep: &mut Report,
    dir: &Path,
    cancel: &CancellationToken,
    say: &dyn Fn(&str),
) -> Result<()> {
    let quick: &[&str] = &[
        "--set",
        "vars.rows=10000",
        "--set",
        "vars.customers=1000",
        "--set",
        "phases.warmup=200ms",
        "--set",
        "phases.baseline=1s",
        "--set",
        "phases.cooldown=500ms",
    ];
    let mut args: Vec<String> = vec!["run".into(), "--backend".into(), "local".into()];
    if cfg.quick {
        args.extend(quick.iter().map(|s| s.to_string()));
    }
    say("end to end: the flagship scenario (orders-lock-queue)");
    let flagship = child(&args, dir, cancel, &[]).await?;
    let report = read_report(dir)?;
    let phases = ["warmup_ms", "baseline_ms", "migration_ms", "after_ms"]
        .iter()
        .map(|k| report["phases"][k].as_f64().unwrap_or(0.0))
        .sum::<f64>()
        / 1000.0;
    let dataset_s = (report["dataset"]["seed_ms"].as_f64().unwrap_or(0.0)
        + report["dataset"]["copy_ms"].as_f64().unwrap_or(0.0))
        / 1000.0;
    let rows = report["dataset"]["tables"].as_array().map(|t| {
        t.iter().map(|t| format!("{} {} rows", t["name"].as_str().unwrap_or("?"), t["rows"])).collect::<Vec<_>>()
    });
    let wall = flagship.wall.as_secs_f64();
    rep.rows.push(
        Row::new(
            5,
            "e2e_wall_time",
            "flagship scenario wall time",
            Side::new("wall time", wall, "s"),
            Side::new("rehearsal phases", phases, "s"),
            "wall / phases",
        )
        .detail(format!(
            "exit code {} (1 = budget exceeded, as this scenario is meant to show); dataset seed + copy {dataset_s:.1} s; \
             the rest is server start-up and stop; dataset: {}",
            flagship.code,
            rows.unwrap_or_default().join(", ")
        )),
    );
    let peak_mb = flagship.maxrss_kb as f64 / 1024.0;
    rep.rows.push(
        Row::new(
            5,
            "e2e_peak_rss",
            "flagship scenario peak RSS",
            Side::new("peak RSS", peak_mb, "MB"),
            Side::new("budget", RSS_BUDGET_MB, "MB"),
            "peak / budget",
        )
        .target("< 150 MB", peak_mb < RSS_BUDGET_MB)
        .detail(format!(
            "at {} ops/s over {} connections (the scenario's own rate)",
            report["workload"]["target_rate"], report["workload"]["connections"]
        )),
    );
    Ok(())
}

/// Memory over run length: the scenario with a long baseline at 80 % of
/// `saturation` (capped), its RSS read at `cfg.memory_points`, and the
/// growth extrapolated to ten minutes.
async fn memory(
    cfg: &Config,
    rep: &mut Report,
    saturation: f64,
    dir: &Path,
    cancel: &CancellationToken,
    say: &dyn Fn(&str),
) -> Result<()> {
    let rate = (saturation * 0.8).min(cfg.memory_rate_cap).max(10.0).round();
    let last = *cfg.memory_points.last().expect("memory points");
    let baseline = last + Duration::from_secs(2);
    let mut args: Vec<String> = vec!["run".into(), "--backend".into(), "local".into()];
    for s in [
        "vars.rows=100000".to_string(),
        "vars.customers=5000".into(),
        format!("workload.rate={rate}"),
        "phases.warmup=1s".into(),
        format!("phases.baseline={}ms", baseline.as_millis()),
        "phases.cooldown=1s".into(),
    ] {
        args.push("--set".into());
        args.push(s);
    }
    say(&format!(
        "end to end: memory over a {} s baseline at {rate} ops/s (RSS read at {:?})",
        baseline.as_secs(),
        cfg.memory_points
    ));
    let long = child(&args, dir, cancel, &cfg.memory_points).await?;
    let report = read_report(dir)?;
    let achieved = report["workload"]["achieved_rate"].as_f64().unwrap_or(0.0);
    if long.rss_at.len() < 2 {
        return Err(Error::env("the long run ended before its RSS could be read at both points"));
    }
    memory_rows(rep, rate, achieved, &long);
    Ok(())
}

/// The rows of the long run: RSS at its two points, and ten minutes extrapolated.
fn memory_rows(rep: &mut Report, rate: f64, achieved: f64, long: &Child) {
    let (t1, r1) = long.rss_at[0];
    let (t2, r2) = long.rss_at[long.rss_at.len() - 1];
    let per_min = (r2 - r1) / ((t2 - t1).as_secs_f64() / 60.0);
    let ten = r2 + per_min.max(0.0) * (10.0 - t2.as_secs_f64() / 60.0);
    let label = |t: Duration| format!("RSS at {} s", t.as_secs());
    rep.rows.push(
        Row::new(
            5,
            "e2e_rss_growth",
            &format!("RSS over run length at {rate} ops/s"),
            Side::new(&label(t2), r2, "MB"),
            Side::new(&label(t1), r1, "MB"),
            "later / earlier",
        )
        .detail(format!(
            "growth {per_min:+.2} MB/min between {} s and {} s of the baseline; achieved {achieved:.0} ops/s of \
             {rate} asked; peak RSS {:.1} MB; dataset 100 000 orders (the workload's client memory does not depend on \
             the dataset size)",
            t1.as_secs(),
            t2.as_secs(),
            long.maxrss_kb as f64 / 1024.0
        )),
    );
    rep.rows.push(
        Row::new(
            5,
            "e2e_rss_10min",
            "RSS of a 10-minute run, extrapolated",
            Side::new("extrapolated", ten, "MB"),
            Side::new("budget", RSS_BUDGET_MB, "MB"),
            "extrapolated / budget",
        )
        .target("< 150 MB", ten < RSS_BUDGET_MB)
        .detail(format!(
            "extrapolated linearly from the two measured points ({:.1} MB at {} s + growth × the remaining minutes), \
             not measured over 10 minutes; rate {rate} ops/s{}",
            r2,
            t2.as_secs(),
            if rate < 5000.0 {
                " (below 5 000 ops/s: 80 % of the saturation this machine reached in row 1)"
            } else {
                ""
            }
        )),
    );
}

pub(super) struct Child {
    code: i32,
    wall: Duration,
    maxrss_kb: u64,
    /// (offset into the baseline, RSS MB) at each requested point.
    rss_at: Vec<(Duration, f64)>,
}

/// Runs this binary with `args` (+ `--json dir/report.json`), reading its RSS
/// at `points` after its baseline began; the child is stopped by pid on
/// Ctrl-C.
pub(super) async fn child(
    args: &[String],
    dir: &Path,
    cancel: &CancellationToken,
    points: &[Duration],
) -> Result<Child> {
    let exe = std::env::current_exe().map_err(|e| Error::env(format!("cannot find this binary: {e}")))?;
    let mut cmd = Command::new(exe);
    cmd.args(args).arg("--json").arg(dir.join("report.json"));
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut proc = cmd.spawn().map_err(|e| Error::env(format!("cannot run lockimpact: {e}")))?;
    let pid = proc.id() as i32;
    let stderr = proc.stderr.take().expect("piped stderr");
    let points = points.to_vec();
    // stderr lines: note when the baseline begins, and keep the tail for errors.
    let (base_tx, base_rx) = std::sync::mpsc::channel::<Instant>();
    let reader = std::thread::spawn(move || {
        let mut tail = Vec::new();
        for line in std::io::BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            if line.starts_with("lockimpact: baseline") {
                let _ = base_tx.send(Instant::now());
            }
            tail.push(line);
            if tail.len() > 30 {
                tail.remove(0);
            }
        }
        tail.join("\n")
    });
    let watch = cancel.clone();
    let sampler = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        let Ok(base) = base_rx.recv() else { return out };
        for p in points {
            let at = base + p;
            while Instant::now() < at {
                if watch.is_cancelled() {
                    return out;
                }
                std::thread::sleep(Duration::from_millis(100).min(at.saturating_duration_since(Instant::now())));
            }
            match rss_mb(pid) {
                Some(mb) => out.push((p, mb)),
                None => return out,
            }
        }
        out
    });
    let stop = cancel.clone();
    let killer = tokio::spawn(async move {
        stop.cancelled().await;
        crate::sys::signal(pid, crate::sys::Signal::Term);
    });
    let Reaped { code, maxrss_kb, .. } =
        tokio::task::spawn_blocking(move || wait4(pid)).await.map_err(|e| Error::env(e.to_string()))??;
    killer.abort();
    drop(proc); // reaped by wait4
    let wall = started.elapsed();
    let tail = reader.join().unwrap_or_default();
    let rss_at = sampler.await.unwrap_or_default();
    if cancel.is_cancelled() {
        return Err(Error::interrupted());
    }
    if code != 0 && code != crate::error::ExitCode::BudgetExceeded.code() {
        return Err(Error::env(format!("lockimpact {} failed (exit {code}):\n{tail}", args.join(" "))));
    }
    Ok(Child { code, wall, maxrss_kb, rss_at })
}

pub(super) fn read_report(dir: &Path) -> Result<serde_json::Value> {
    let path = dir.join("report.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::env(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Error::env(format!("{}: {e}", path.display())))
}

/// VmRSS of `pid` in MB (MiB), from /proc.
fn rss_mb(pid: i32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = text.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()?;
    Some(kb / 1024.0)
}
