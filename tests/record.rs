//! `lockimpact record`: recordings of a real server running a known mix are
//! replayed on a rehearsal clone, and the replay's per-class mix matches the
//! recording within 2 % (share of operations); nothing is written to the
//! source, and passwords are never printed.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;

const ITEMS: &str = "CREATE TABLE items (id int PRIMARY KEY, cat text NOT NULL); \
    INSERT INTO items SELECT g, 'c' || (g % 7) FROM generate_series(1, 1000) g; ANALYZE items;";

/// A scenario replaying `workload` on the items table, with `rate` as TOML.
fn replay_scenario(dir: &Path, workload: &Path, rate: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("seed.sql"), ITEMS).unwrap();
    std::fs::write(dir.join("migration.sql"), "CREATE INDEX ON items (cat);\n").unwrap();
    let toml = format!(
        "name = \"replay\"\n[snapshot]\nseed = \"seed.sql\"\n[workload]\nfile = \"{}\"\nrate = {rate}\nconnections = 4\n\
         [phases]\nwarmup = \"300ms\"\nbaseline = \"2s\"\ncooldown = \"1s\"\n[migration]\nfile = \"migration.sql\"\n",
        workload.display()
    );
    let path = dir.join("scenario.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// Asserts every class's share of `replayed` is within 2 points of `recorded`.
fn assert_mix(recorded: &BTreeMap<String, f64>, replayed: &BTreeMap<String, f64>) {
    let (a, b) = (shares(recorded), shares(replayed));
    for (class, want) in &a {
        let got = b.get(class).copied().unwrap_or(0.0);
        assert!((got - want).abs() <= 0.02, "class {class}: recorded share {want:.4}, replayed {got:.4}\n{a:?}\n{b:?}");
    }
}

#[test]
fn stat_statements_recording_reproduces_the_mix() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = source_server(&[("shared_preload_libraries", "pg_stat_statements")]);
    let url = source_url(&server, "postgres", "Sup3rSecret");
    let out = dir.path().join("w/workload.toml");
    let output = rt.block_on(async {
        let db = client(&server, "postgres").await;
        db.batch_execute(ITEMS).await.unwrap();
        db.batch_execute("CREATE EXTENSION pg_stat_statements").await.unwrap();
        // The known mix: 3 point reads, 1 update, 2 reads by category (a constant, normalised to $1).
        let running = Arc::new(AtomicBool::new(true));
        let r = running.clone();
        let load = tokio::spawn(async move {
            let read = db.prepare("SELECT cat FROM items WHERE id = $1").await.unwrap();
            let update = db.prepare("UPDATE items SET cat = $1 WHERE id = $2").await.unwrap();
            let mut i = 0i32;
            while r.load(Ordering::Relaxed) {
                i = i % 1000 + 1;
                for k in 0..3 {
                    db.query(&read, &[&((i + k) % 1000 + 1)]).await.unwrap();
                }
                db.execute(&update, &[&format!("c{}", i % 7), &i]).await.unwrap();
                db.query("SELECT count(*) FROM items WHERE cat = 'c3'", &[]).await.unwrap();
                db.query("SELECT count(*) FROM items WHERE cat = 'c4'", &[]).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
        });
        let out = out.clone();
        let url = url.clone();
        let o = tokio::task::spawn_blocking(move || {
            bin()
                .args(["record", "stat-statements", "--url", &url, "--interval", "1s", "--samples", "3", "--out"])
                .arg(&out)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        running.store(false, Ordering::Relaxed);
        load.await.unwrap();
        o
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("Sup3rSecret") && stderr.contains("postgres:****@"), "{stderr}");
    let text = std::fs::read_to_string(&out).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let classes = doc["class"].as_array().unwrap();
    assert_eq!(classes.len(), 3, "{text}");
    let recorded: BTreeMap<String, f64> = classes
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["recorded_rate"].as_float().unwrap()))
        .collect();
    let sql_of = |needle: &str| {
        classes
            .iter()
            .find(|c| c["sql"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("{needle}\n{text}"))
    };
    // 3 : 1 : 2 as run, and generators inferred from the parse tree.
    let (read, update, by_cat) = (sql_of("WHERE id = $1"), sql_of("UPDATE"), sql_of("count(*)"));
    let rate = |c: &toml::Value| c["recorded_rate"].as_float().unwrap();
    assert!((rate(read) / rate(update) - 3.0).abs() < 0.1, "{text}");
    assert!((rate(by_cat) / rate(update) - 2.0).abs() < 0.1, "{text}");
    assert!(text.contains(r#"{ type = "sample", table = "items", column = "id" }"#), "{text}");
    assert!(text.contains(r#"{ type = "sample", table = "items", column = "cat" }"#), "{text}");
    let peak = doc["peak_rate"].as_float().unwrap();
    assert!(peak >= doc["recorded_rate"].as_float().unwrap() && peak < 400.0, "{text}");

    // Replayed at the recorded peak on a clone.
    let scenario = replay_scenario(dir.path(), &out, "\"peak\"");
    let o = run(&[scenario.to_str().unwrap()]);
    let r = o.report();
    assert!((r["workload"]["target_rate"].as_f64().unwrap() - peak).abs() < 0.01, "{}", o.stdout);
    assert_eq!(r["workload"]["errors"], 0, "{}", o.stdout);
    let replayed: BTreeMap<String, f64> = class_counts(r).into_iter().map(|(k, v)| (k, v as f64)).collect();
    assert_mix(&recorded, &replayed);
    drop(server);
}

#[test]
fn missing_pg_stat_statements_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let server = source_server(&[]);
    let url = source_url(&server, "postgres", "Sup3rSecret");
    let o = bin()
        .args(["record", "stat-statements", "--url", &url, "--interval", "100ms", "--out"])
        .arg(dir.path().join("w.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("shared_preload_libraries = 'pg_stat_statements'"), "{stderr}");
    assert!(stderr.contains("CREATE EXTENSION pg_stat_statements"), "{stderr}");
    assert!(!stderr.contains("Sup3rSecret"), "{stderr}");
    assert!(!dir.path().join("w.toml").exists());
}
