//! `snapshot.dump` on the local backend: pg_dump snapshots of a generated
//! dataset (several tables, foreign keys, indexes, sequences, a view, an
//! extension, a partitioned table, objects owned by a role the clone lacks)
//! restore in custom (`-j 2`), directory (`-j 2`), tar and plain format, and
//! a rehearsal runs on each. A dump that needs an extension the server lacks
//! is refused by name. `run --scales` samples a dump consistently across
//! foreign keys, and counts a partitioned table's rows once.

use crate::common::*;
use serde_json::Value;

fn table_rows(r: &Value, name: &str) -> i64 {
    r["dataset"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no table {name} in {}", r["dataset"]))["rows"]
        .as_i64()
        .unwrap()
}

fn rehearse_on(dump: &std::path::Path, format: &str) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dump_scenario(dir.path(), dump, DUMP_MIGRATION, "");
    let o = run(&[scenario.to_str().unwrap(), "--backend", "local"]);
    assert_eq!(o.code, 0, "{format} dump: {}", o.stderr);
    let r = o.report();
    assert_eq!(r["dataset"]["dump"]["format"], format, "{}", r["dataset"]);
    assert!(r["dataset"]["restore_ms"].as_f64().unwrap() > 0.0);
    assert!(r["dataset"]["bytes"].as_i64().unwrap() > 1_000_000);
    assert_eq!(table_rows(r, "orders"), 10000);
    assert_eq!(table_rows(r, "customers"), 1000);
    assert_eq!(table_rows(r, "invoices"), 1000);
    assert_eq!(table_rows(r, "audit_log"), 2000);
    for s in r["steps"].as_array().unwrap() {
        assert_eq!(s["outcome"], "ok", "{format} dump: step {}", s);
    }
    o
}

#[test]
fn every_dump_format_restores_and_a_rehearsal_runs_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let dumps = make_dumps(dir.path(), &["c", "d", "t", "p"]);
    let custom = rehearse_on(&dumps[0], "custom");
    assert!(custom.stderr.contains("with 2 jobs"), "{}", custom.stderr);
    assert!(custom.stderr.contains("extensions created for the dump: pg_trgm"), "{}", custom.stderr);
    let directory = rehearse_on(&dumps[1], "directory");
    assert!(directory.stderr.contains("with 2 jobs"), "{}", directory.stderr);
    rehearse_on(&dumps[2], "tar");
    // A plain dump keeps owners and grants: the missing role becomes a note.
    let plain = rehearse_on(&dumps[3], "plain SQL");
    assert!(plain.stderr.contains("roles that do not exist in the clone: lockimpact_dump_owner"), "{}", plain.stderr);
    let warnings = plain.report()["warnings"].to_string();
    assert!(warnings.contains("lockimpact_dump_owner"), "{warnings}");
}

#[test]
fn a_missing_extension_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("needs-postgis.sql");
    std::fs::write(
        &dump,
        "--\n-- PostgreSQL database dump\n--\nCREATE EXTENSION IF NOT EXISTS postgis WITH SCHEMA public;\n\
         CREATE TABLE orders (id bigint PRIMARY KEY);\n",
    )
    .unwrap();
    let scenario = dump_scenario(dir.path(), &dump, DUMP_MIGRATION, "");
    let o = run(&[scenario.to_str().unwrap(), "--backend", "local"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("extension(s) postgis"), "{}", o.stderr);
    assert!(o.stderr.contains("needs-postgis.sql"), "{}", o.stderr);
}

#[test]
fn bad_snapshot_sections_are_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dump = dir.path().join("empty-dir");
    std::fs::create_dir(&not_a_dump).unwrap();
    let scenario = dump_scenario(dir.path(), &not_a_dump, DUMP_MIGRATION, "");
    let o = run(&[scenario.to_str().unwrap()]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("snapshot.dump") && o.stderr.contains("toc.dat"), "{}", o.stderr);

    let both = tiny_scenario(dir.path(), "SELECT 1;\n", "");
    edit(&both, "[snapshot]\n", "[snapshot]\ndump = \"x.dump\"\n");
    assert_refused(&both, "snapshot.seed and snapshot.dump are both set");

    // snapshot.sample: a fraction of a dump only.
    edit(&both, "dump = \"x.dump\"\n", "sample = 0.5\n");
    assert_refused(&both, "snapshot.sample applies to snapshot.dump only");
    let sampled = dump_scenario(dir.path(), &not_a_dump, DUMP_MIGRATION, "");
    edit(&sampled, "jobs = 2", "jobs = 2\nsample = 1.5");
    assert_refused(&sampled, "snapshot.sample must be the fraction of the dump's rows to keep");
}

/// `run --scales` over a dump: each size keeps that percentage of the
/// dump's rows (`snapshot.sample`), sampled consistently across foreign
/// keys; the fit is over the largest table's rows in each sample and
/// predicts at the dump's own size. The migration re-adds both foreign
/// keys, which validates every kept row against its kept parent. A row
/// count instead of a percentage is refused.
#[test]
fn scales_over_a_dump_sample_it_consistently_across_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let dumps = make_dumps(dir.path(), &["c"]);
    let migration = "UPDATE orders SET total_cents = total_cents + 1;\n\
        ALTER TABLE invoices DROP CONSTRAINT invoices_order_id_fkey, ADD CONSTRAINT invoices_order_id_fkey \
        FOREIGN KEY (order_id) REFERENCES orders (id);\n\
        ALTER TABLE orders DROP CONSTRAINT orders_customer_fk, ADD CONSTRAINT orders_customer_fk \
        FOREIGN KEY (customer_id) REFERENCES customers (id);\n";
    let scenario = dump_scenario(dir.path(), &dumps[0], migration, "");
    let sc = scenario.to_str().unwrap();
    let out = run(&[sc, "--backend", "local", "--scales", "20%,40%,80%"]);
    assert!(out.code == 0 || out.code == 1, "{}", out.stderr);
    // Of the dump's 14 000 rows (orders, customers, invoices and the
    // partitioned audit_log, its partitions counted once).
    let line = out.stderr.lines().find(|l| l.contains("sampled 0.2 of the dump: kept ")).expect(&out.stderr);
    assert!(line.ends_with("of its 14000 rows, foreign keys consistent"), "{line}");
    let r = out.report();
    let e = &r["extrapolation"];
    assert_eq!(e["predict_source"], "dump", "{e}");
    // Orders are sampled, plus those the kept invoices (one order in ten) need.
    let scales: Vec<f64> = e["scales"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    for (rows, f) in scales.iter().zip([0.2, 0.4, 0.8]) {
        let want = 10_000.0 * (f + (1.0 - f) * f * 0.1);
        assert!((rows / want - 1.0).abs() < 0.1, "{rows} orders kept at {f}, about {want} expected: {e}");
    }
    let predicted = e["predict_rows"].as_f64().unwrap();
    assert!((predicted / 10_000.0 - 1.0).abs() < 0.1, "the dump's size estimated at {predicted}: {e}");
    let steps = r["steps"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["outcome"] == "ok"), "every kept row has its parent: {steps:?}");
    assert_eq!(e["steps"].as_array().unwrap().len(), 3, "{e}");
    assert_eq!(e["steps"][0]["figures"]["wal_bytes"]["model"], "linear", "{e}");

    let out = run(&[sc, "--backend", "local", "--scales", "1k,2k,4k"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--scales over a dump takes percentages of it"), "{}", out.stderr);
}
