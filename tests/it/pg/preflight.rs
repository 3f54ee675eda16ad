//! Preflight data checks (issue 21): on a snapshot seeded with known
//! violations, every statement kind that can fail on the data gets the exact
//! count of its violating rows and examples before it runs, and the steps it
//! says will fail do fail in the rehearsal. Real PostgreSQL, started by the
//! binary.

use crate::common;

use serde_json::Value;

/// The orders dataset (10 000 orders, 1 000 customers) plus known violations.
const SEEDED: &str = "
-- 100 orders without billing_country (id % 100 = 0)
ALTER TABLE orders ADD COLUMN billing_country text;
UPDATE orders SET billing_country = shipping_country WHERE id % 100 <> 0;
-- 10 orders with a negative total (id % 1000 = 0)
UPDATE orders SET total_cents = -1 WHERE id % 1000 = 0;
-- 4 codes that are not numbers (id % 2500 = 0)
ALTER TABLE orders ADD COLUMN code text;
UPDATE orders SET code = id::text;
UPDATE orders SET code = 'x' || id WHERE id % 2500 = 0;
-- 5 customers share an email: 3 share one, 2 another
ALTER TABLE customers ADD COLUMN email text;
UPDATE customers SET email = 'c' || id || '@example.com';
UPDATE customers SET email = 'shared@example.com' WHERE id <= 3;
UPDATE customers SET email = 'twice@example.com' WHERE id IN (10, 11);
-- tags: one NULL code, one code twice; one label twice
CREATE TABLE tags (code text, label text);
INSERT INTO tags VALUES ('a', 'one'), ('b', 'two'), ('b', 'three'), (NULL, 'four'), ('c', 'one');
-- 7 payments of orders that do not exist
CREATE TABLE payments (id int PRIMARY KEY, order_id bigint);
INSERT INTO payments SELECT g, g FROM generate_series(1, 50) g;
UPDATE payments SET order_id = order_id + 1000000 WHERE id <= 7;
";

const MIGRATION: &str = "-- lockimpact: transaction none
ALTER TABLE orders ADD CONSTRAINT positive_total CHECK (total_cents >= 0) NOT VALID;
ALTER TABLE orders ALTER COLUMN billing_country SET NOT NULL;
ALTER TABLE orders ADD CONSTRAINT total_nonneg CHECK (total_cents >= 0);
ALTER TABLE customers ADD CONSTRAINT customers_email_key UNIQUE (email);
ALTER TABLE tags ADD PRIMARY KEY (code);
ALTER TABLE payments ADD FOREIGN KEY (order_id) REFERENCES orders (id);
ALTER TABLE orders VALIDATE CONSTRAINT positive_total;
ALTER TABLE orders ALTER COLUMN code TYPE integer USING code::integer;
CREATE UNIQUE INDEX CONCURRENTLY tags_label_idx ON tags (label);
";

/// A scenario whose snapshot is the orders dataset plus `extra_seed`.
fn scenario(dir: &std::path::Path, migration: &str, extra_seed: &str, extra: &str) -> std::path::PathBuf {
    let seed = std::fs::read_to_string(common::repo().join("workloads/orders/seed.sql")).unwrap();
    std::fs::write(dir.join("seed.sql"), format!("{seed}\n{extra_seed}")).unwrap();
    let path = common::tiny_scenario(dir, migration, extra);
    let text = std::fs::read_to_string(&path).unwrap();
    let seed_line = text.lines().find(|l| l.starts_with("seed = ")).unwrap().to_string();
    std::fs::write(&path, text.replace(&seed_line, "seed = \"seed.sql\"")).unwrap();
    path
}

/// (step, kind, violations) of each check.
fn checks(r: &Value) -> Vec<(u64, String, Option<u64>)> {
    r["preflight"]["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no preflight in {r}"))
        .iter()
        .map(|c| (c["step"].as_u64().unwrap() + 1, c["kind"].as_str().unwrap().to_string(), c["violations"].as_u64()))
        .collect()
}

fn c(step: u64, kind: &str, n: u64) -> (u64, String, Option<u64>) {
    (step, kind.to_string(), Some(n))
}

#[test]
fn every_kind_is_counted_exactly_before_its_step_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let path = scenario(tmp.path(), MIGRATION, SEEDED, "on_error = \"continue\"");
    let out = common::run(&[path.to_str().unwrap()]);
    let r = out.report();
    assert_eq!(out.code, 1, "the failing steps fail the verdict\n{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        checks(r),
        [
            c(2, "not_null", 100),
            c(3, "check", 10),
            c(4, "unique", 5),
            c(5, "not_null", 1),
            c(5, "unique", 2),
            c(6, "foreign_key", 7),
            c(7, "check", 10),
            c(8, "cast", 4),
            c(9, "unique", 2),
        ]
    );
    let p = &r["preflight"];
    assert!(p["place"].as_str().unwrap().contains("separate copy"), "{p}");
    assert!(p["duration_ms"].as_f64().unwrap() > 0.0);
    let all = p["checks"].as_array().unwrap();
    // Examples: the row's primary key (or ctid), the offending value, duplicates with their count.
    assert_eq!(all[0]["examples"].as_array().unwrap().len(), 5);
    assert_eq!(all[0]["examples"][0], "id=100");
    assert_eq!(all[0]["message"], "step 2 will fail: 100 rows have billing_country NULL");
    assert_eq!(all[2]["examples"][0], "email=shared@example.com (3 rows)");
    assert!(all[3]["examples"][0].as_str().unwrap().starts_with("ctid="), "{}", all[3]);
    assert_eq!(all[5]["examples"][0], "id=1: order_id=1000001");
    assert_eq!(all[6]["detail"], "CHECK (total_cents >= 0)");
    assert_eq!(all[7]["examples"][0], "id=2500: code=x2500");
    assert!(all.iter().all(|c| c["duration_ms"].as_f64().unwrap() > 0.0));
    // What it said would fail did fail, with the data error PostgreSQL gives.
    let steps = r["steps"].as_array().unwrap();
    let sqlstates: Vec<&str> = steps.iter().map(|s| s["sqlstate"].as_str().unwrap_or("-")).collect();
    assert_eq!(
        sqlstates,
        ["-", "23502", "23514", "23505", "23505", "23503", "23514", "22P02", "23505"],
        "{}",
        out.stdout
    );
    // Read-only: the run's own copy still had every violation, or its steps would not have failed.
    assert!(out.stdout.contains("Preflight data checks"), "{}", out.stdout);
    assert!(
        out.stdout.contains("step 6 will fail: 7 rows have order_id without a parent in orders (id)"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_first_step_is_checked_on_the_fresh_copy_in_every_format() {
    let tmp = tempfile::tempdir().unwrap();
    let seed = "ALTER TABLE orders ADD COLUMN billing_country text;\n\
                UPDATE orders SET billing_country = shipping_country WHERE id > 1203;\n";
    let path = scenario(tmp.path(), "ALTER TABLE orders ALTER COLUMN billing_country SET NOT NULL;\n", seed, "");
    let md = tmp.path().join("report.md");
    let html = tmp.path().join("report.html");
    let out = common::run(&[path.to_str().unwrap(), "--out", md.to_str().unwrap(), "--out", html.to_str().unwrap()]);
    let r = out.report();
    let finding = "step 1 will fail: 1,203 rows have billing_country NULL";
    assert_eq!(checks(r), [c(1, "not_null", 1203)]);
    assert_eq!(r["preflight"]["checks"][0]["message"], finding);
    assert!(r["preflight"]["place"].as_str().unwrap().contains("fresh copy"));
    assert!(r["warnings"].to_string().contains(finding));
    assert!(out.stdout.contains(finding), "{}", out.stdout);
    assert!(std::fs::read_to_string(&md).unwrap().contains(finding));
    assert!(std::fs::read_to_string(&html).unwrap().contains(finding));
    assert!(out.stderr.contains("preflight: step 1 will fail: 1,203 rows violate it"), "{}", out.stderr);
    assert_eq!(r["steps"][0]["sqlstate"], "23502");
}

#[test]
fn preflight_can_be_turned_off() {
    let tmp = tempfile::tempdir().unwrap();
    let path = scenario(tmp.path(), "ALTER TABLE orders ALTER COLUMN status SET NOT NULL;\n", "", "preflight = false");
    let out = common::run(&[path.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.report().get("preflight").is_none());
}
