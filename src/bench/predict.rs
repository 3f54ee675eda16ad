//! Row 8, prediction accuracy (opt-in, `--predict-5m`: it takes tens of
//! minutes): for the shipped backfill and index scenarios, this binary runs
//! `run --scales 100k,300k,1M --predict-rows 5M` (the extrapolation users
//! get), then `run --set vars.rows=5000000` (a measured run at that size),
//! each as a child process on servers of their own; each step's predicted
//! duration is put against the measured one. Both runs use the scenario's
//! own settings (workload, phases, `[clone.settings]`); only `vars.rows`
//! changes. The scenario files are compiled in, so the row runs anywhere.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::Config;
use super::e2e::{child, read_report};
use super::report::{Report, Row, Side};
use crate::error::{Error, Result};

/// The band predicted / measured must fall in.
const BAND: (f64, f64) = (0.75, 1.33);

/// The scenarios measured, with the files each needs (path in the repository, text).
const SCENARIOS: &[(&str, &[(&str, &str)])] = &[
    (
        "scenarios/orders-billing-country-phased.toml",
        &[
            (
                "scenarios/orders-billing-country-phased.toml",
                include_str!("../../scenarios/orders-billing-country-phased.toml"),
            ),
            (
                "scenarios/migrations/billing-country-phased.sql",
                include_str!("../../scenarios/migrations/billing-country-phased.sql"),
            ),
        ],
    ),
    (
        "scenarios/orders-billing-country-oneshot.toml",
        &[
            (
                "scenarios/orders-billing-country-oneshot.toml",
                include_str!("../../scenarios/orders-billing-country-oneshot.toml"),
            ),
            (
                "scenarios/migrations/billing-country-oneshot.sql",
                include_str!("../../scenarios/migrations/billing-country-oneshot.sql"),
            ),
        ],
    ),
    (
        "scenarios/orders-index-plain.toml",
        &[
            ("scenarios/orders-index-plain.toml", include_str!("../../scenarios/orders-index-plain.toml")),
            ("scenarios/migrations/index-plain.sql", include_str!("../../scenarios/migrations/index-plain.sql")),
        ],
    ),
    (
        "scenarios/orders-index-concurrently.toml",
        &[
            (
                "scenarios/orders-index-concurrently.toml",
                include_str!("../../scenarios/orders-index-concurrently.toml"),
            ),
            (
                "scenarios/migrations/index-concurrently.sql",
                include_str!("../../scenarios/migrations/index-concurrently.sql"),
            ),
        ],
    ),
];

/// The orders dataset the scenarios seed and replay.
const SHARED: &[(&str, &str)] = &[
    ("workloads/orders/seed.sql", include_str!("../../workloads/orders/seed.sql")),
    ("workloads/orders/workload.toml", include_str!("../../workloads/orders/workload.toml")),
];

/// The sizes: (scales, predicted and measured rows, extra `--set`s).
fn sizes(quick: bool) -> (&'static str, u64, Vec<&'static str>) {
    if quick {
        let sets = vec!["vars.customers=500", "phases.warmup=200ms", "phases.baseline=1s", "phases.cooldown=300ms"];
        ("2k,4k,8k", 20_000, sets)
    } else {
        ("100k,300k,1M", 5_000_000, Vec::new())
    }
}

pub async fn run(cfg: &Config, rep: &mut Report, quiet: bool, cancel: &CancellationToken) -> Result<()> {
    if !cfg.predict_5m {
        rep.notes.push(
            "Row 8, prediction accuracy: not measured (it runs each shipped backfill and index scenario at 100k, \
             300k and 1M rows and again at 5M, tens of minutes); pass --predict-5m."
                .into(),
        );
        return Ok(());
    }
    let say = |m: &str| {
        if !quiet {
            eprintln!("bench: {m}");
        }
    };
    let chosen = chosen(&cfg.predict_only)?;
    let dir = tempfile::tempdir().map_err(|e| Error::env(format!("cannot create a temp dir: {e}")))?;
    write_bundle(dir.path())?;
    for scenario in chosen {
        if cancel.is_cancelled() {
            return Err(Error::interrupted());
        }
        one_scenario(cfg, rep, &dir.path().join(scenario), cancel, &say).await?;
    }
    Ok(())
}

/// The scenarios `--predict-only` names (every one without it); a name
/// that matches none is refused, listing them.
fn chosen(only: &[String]) -> Result<Vec<&'static str>> {
    let all: Vec<&'static str> = SCENARIOS.iter().map(|(s, _)| *s).collect();
    if let Some(bad) = only.iter().find(|n| !all.iter().any(|s| s.contains(n.as_str()))) {
        return Err(Error::input(format!(
            "--predict-only {bad}: no row 8 scenario is named so; they are {}",
            all.join(", ")
        )));
    }
    Ok(all.into_iter().filter(|s| only.is_empty() || only.iter().any(|n| s.contains(n.as_str()))).collect())
}

/// The scenarios and the files they refer to, at their repository paths under `dir`.
fn write_bundle(dir: &Path) -> Result<()> {
    for (rel, text) in SCENARIOS.iter().flat_map(|(_, files)| files.iter()).chain(SHARED) {
        let path = dir.join(rel);
        let write = std::fs::create_dir_all(path.parent().unwrap_or(dir)).and_then(|_| std::fs::write(&path, text));
        write.map_err(|e| Error::env(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(())
}

/// One scenario: the scales' prediction, the measured run, a row per step.
async fn one_scenario(
    cfg: &Config,
    rep: &mut Report,
    scenario: &Path,
    cancel: &CancellationToken,
    say: &dyn Fn(&str),
) -> Result<()> {
    let (scales, rows, sets) = sizes(cfg.quick);
    let name = scenario.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let args = |extra: &[String]| -> Vec<String> {
        let mut a: Vec<String> = vec!["run".into(), scenario.display().to_string(), "--backend".into(), "local".into()];
        for s in &sets {
            a.push("--set".into());
            a.push(s.to_string());
        }
        a.extend(extra.iter().cloned());
        a
    };
    let (pdir, mdir) = (subdir(scenario, "scales")?, subdir(scenario, "measured")?);
    say(&format!("prediction: {name}: run --scales {scales} --predict-rows {rows}"));
    let t = Instant::now();
    let fit = ["--scales".to_string(), scales.into(), "--predict-rows".into(), rows.to_string()];
    child(&args(&fit), &pdir, cancel, &[]).await?;
    let fit_s = t.elapsed().as_secs_f64();
    say(&format!("prediction: {name}: measured run at vars.rows={rows}"));
    let t = Instant::now();
    child(&args(&["--set".into(), format!("vars.rows={rows}")]), &mdir, cancel, &[]).await?;
    let measured_s = t.elapsed().as_secs_f64();
    let (predicted, measured) = (read_report(&pdir)?, read_report(&mdir)?);
    let steps = predicted["extrapolation"]["steps"].as_array().cloned().unwrap_or_default();
    if steps.is_empty() {
        return Err(Error::env(format!(
            "run --scales of {name} extrapolated no step: {}",
            predicted["extrapolation"]["notes"]
        )));
    }
    for e in steps {
        push_step(rep, (&name, scales, rows), &e, &measured, (fit_s, measured_s));
    }
    Ok(())
}

/// A directory of its own for one child's report.
fn subdir(scenario: &Path, what: &str) -> Result<PathBuf> {
    let stem = scenario.file_stem().unwrap_or_default().to_string_lossy();
    let d = scenario.parent().unwrap_or(scenario).join(format!("{stem}-{what}"));
    std::fs::create_dir_all(&d).map_err(|e| Error::env(format!("cannot create {}: {e}", d.display())))?;
    Ok(d)
}

/// The row of one extrapolated step against the measured run's same step.
fn push_step(
    rep: &mut Report,
    (scenario, scales, rows): (&str, &str, u64),
    e: &serde_json::Value,
    measured: &serde_json::Value,
    (fit_s, measured_s): (f64, f64),
) {
    let i = e["step"].as_u64().unwrap_or(0) as usize;
    let step_name = e["name"].as_str().unwrap_or("?");
    let fit = &e["figures"]["duration_ms"];
    let m = &measured["steps"][i];
    let (pred, meas) = (fit["predicted"].as_f64().unwrap_or(0.0), m["duration_ms"].as_f64().unwrap_or(0.0));
    let same = m["name"].as_str() == Some(step_name) && m["outcome"].as_str() == Some("ok");
    let row = Row::new(
        8,
        &format!("predict_{}_step{}", scenario.replace('-', "_"), i + 1),
        &format!("{scenario} step {} ({step_name}) at {rows} rows", i + 1),
        Side::new(&format!("predicted from {scales}"), pred / 1000.0, "s"),
        Side::new("measured", meas / 1000.0, "s"),
        "predicted / measured",
    );
    let met = same && row.ratio >= BAND.0 && row.ratio <= BAND.1;
    let measured_at = series(fit);
    // Duration less lock hold at each scale: the step's own wait for its locks.
    let hold = series(&e["figures"]["lock_hold_ms"]);
    let waits: Vec<String> = measured_at.iter().zip(&hold).map(|(d, h)| format!("{:.0}", d - h)).collect();
    let wal = &e["figures"]["wal_bytes"];
    let (wal_p, wal_m) = (wal["predicted"].as_f64().unwrap_or(0.0), m["wal_bytes"].as_f64().unwrap_or(0.0));
    let measured_at: Vec<String> = measured_at.iter().map(|v| format!("{v:.0}")).collect();
    let detail = format!(
        "{} fit ({}), R² {:.3}; measured at the scales {} ms; interval {:.1}–{:.1} s (90 %); {}; runs took {fit_s:.0} s \
         (scales) and {measured_s:.0} s (measured){}",
        fit["model"].as_str().unwrap_or("?"),
        if fit["model"] == "constant" {
            "neither slope positive".to_string()
        } else {
            format!("a {:.1}, b {:.3e}", fit["a"].as_f64().unwrap_or(0.0), fit["b"].as_f64().unwrap_or(0.0))
        },
        fit["r2"].as_f64().unwrap_or(0.0),
        measured_at.join(" / "),
        fit["low"].as_f64().unwrap_or(0.0) / 1000.0,
        fit["high"].as_f64().unwrap_or(0.0) / 1000.0,
        if same {
            format!(
                "the measured step ended ok, {} locks held, blocked sessions {:.0} ms",
                m["locks"].as_array().map_or(0, Vec::len),
                m["blocked_ms"].as_f64().unwrap_or(0.0)
            )
        } else {
            format!("the measured run's step {} is {} ({}), not comparable", i + 1, m["name"], m["outcome"])
        },
        if meas < 100.0 { "; under 100 ms measured: timing noise dominates such a step" } else { "" }
    );
    let detail = format!(
        "{detail}; its own lock wait {} ms at the scales and {:.0} ms measured; WAL predicted {:.1} MB, measured {:.1} MB",
        waits.join(" / "),
        m["lock_wait_ms"].as_f64().unwrap_or(0.0),
        wal_p / 1e6,
        wal_m / 1e6
    );
    rep.rows.push(row.target("0.75–1.33", met).detail(detail));
}

/// A fit's `measured` values, one per scale.
fn series(fit: &serde_json::Value) -> Vec<f64> {
    fit["measured"].as_array().into_iter().flatten().map(|v| v.as_f64().unwrap_or(0.0)).collect()
}
