//! `lockimpact snapshot`: a custom-format dump without owners and privileges
//! that `snapshot.dump` restores, a schema-only variant, row counts from the
//! statistics, and a password in the URL never printed.

use crate::common::*;
use lockimpact::clone::ClonePlan;
use lockimpact::clone::{self, restore::DumpFormat, restore::Tools};

#[test]
fn snapshot_writes_a_restorable_dump_and_never_prints_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let plan = ClonePlan::local();
        let server = clone::start(&plan, &|_| {}).unwrap();
        let (db, conn) = server.config("postgres").connect(tokio_postgres::NoTls).await.unwrap();
        let task = tokio::spawn(conn);
        db.batch_execute(
            "CREATE TABLE orders (id bigserial PRIMARY KEY, note text); \
             INSERT INTO orders (note) SELECT 'n' || g FROM generate_series(1, 500) g; ANALYZE orders",
        )
        .await
        .unwrap();
        drop(db);
        let _ = task.await;
        let Some(Tools::Local { socket_dir, port, .. }) = server.tools() else { panic!("local") };
        let url = format!("postgresql://postgres:Sup3rSecret@/postgres?host={}&port={port}", socket_dir.display());

        let out = dir.path().join("prod.dump");
        let counts = dir.path().join("rows.json");
        let o = bin()
            .args(["snapshot", "--from", &url, "--out"])
            .arg(&out)
            .arg("--row-counts")
            .arg(&counts)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{stderr}");
        assert!(!stderr.contains("Sup3rSecret"), "{stderr}");
        assert!(stderr.contains("postgres:****@"), "{stderr}");
        assert_eq!(DumpFormat::detect(&out).unwrap(), DumpFormat::Custom);
        let rows: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&counts).unwrap()).unwrap();
        assert_eq!(rows[0]["table"], "public.orders");
        assert_eq!(rows[0]["estimated_rows"], 500);

        let schema = dir.path().join("schema.dump");
        let o = bin().args(["snapshot", "--schema-only", "--from", &url, "--out"]).arg(&schema).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(std::fs::metadata(&schema).unwrap().len() < std::fs::metadata(&out).unwrap().len());

        // A failure names the source without its password.
        let bad = format!("postgresql://postgres:Sup3rSecret@/no_such_db?host={}&port={port}", socket_dir.display());
        let o = bin().args(["snapshot", "--from", &bad, "--out"]).arg(dir.path().join("x.dump")).output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("no_such_db") && !stderr.contains("Sup3rSecret"), "{stderr}");
        assert!(!dir.path().join("x.dump").exists());
    });
}

/// `--stats-only` writes the schema and the planner's statistics without
/// reading a row of the source (its scan counters do not move), and
/// `--redact-values` replaces the values they quote, keeping their width.
#[test]
fn stats_only_reads_no_row_and_redacts_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let server = clone::start(&ClonePlan::local(), &|_| {}).unwrap();
        let connect = || async {
            let (db, conn) = server.config("postgres").connect(tokio_postgres::NoTls).await.unwrap();
            (db, tokio::spawn(conn))
        };
        let (db, task) = connect().await;
        db.batch_execute(
            "CREATE TABLE customers (id int PRIMARY KEY, country text NOT NULL); \
             CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, \
               status text, note text CHECK (length(note) < 100)); \
             INSERT INTO customers SELECT g, (ARRAY['DE','FR','US'])[1 + g % 3] FROM generate_series(1, 300) g; \
             INSERT INTO orders SELECT g, 1 + g % 300, CASE WHEN g % 4 = 0 THEN NULL ELSE 'shipped' END, 'n' || g \
               FROM generate_series(1, 20000) g; \
             ANALYZE",
        )
        .await
        .unwrap();
        drop(db);
        let _ = task.await;
        let scans = || async {
            let (db, task) = connect().await;
            let rows = db
                .query("SELECT relname, seq_scan, coalesce(idx_scan, 0) FROM pg_stat_user_tables ORDER BY 1", &[])
                .await
                .unwrap();
            drop(db);
            let _ = task.await;
            rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1), r.get::<_, i64>(2))).collect::<Vec<_>>()
        };
        let before = scans().await;
        let Some(Tools::Local { socket_dir, port, .. }) = server.tools() else { panic!("local") };
        let url = format!("postgresql://postgres@/postgres?host={}&port={port}", socket_dir.display());
        let out = dir.path().join("stats.json");
        let o = bin().args(["snapshot", "--stats-only", "--from", &url, "--out"]).arg(&out).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        // Counters flush when a backend exits: pg_dump's and psql's have.
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        assert_eq!(scans().await, before, "the snapshot read rows of the source");

        let st: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert!(st["schema_sql"].as_str().unwrap().contains("CREATE TABLE public.orders"));
        let orders = st["tables"].as_array().unwrap().iter().find(|t| t["name"] == "orders").unwrap();
        assert_eq!(orders["reltuples"], 20000);
        let col =
            |name: &str| orders["columns"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone();
        let status = col("status");
        assert!((status["null_frac"].as_f64().unwrap() - 0.25).abs() < 0.02, "{status}");
        assert_eq!(status["most_common_vals"], serde_json::json!(["shipped"]));
        assert_eq!(col("customer_id")["n_distinct"], 300.0);
        assert!(col("id")["histogram_bounds"].as_array().unwrap().len() > 10);
        let fk = st["constraints"].as_array().unwrap().iter().find(|c| c["kind"] == "f").unwrap();
        assert_eq!((fk["table"].as_str(), fk["references"].as_str()), (Some("orders"), Some("customers")), "{fk}");
        assert_eq!(fk["columns"], serde_json::json!(["customer_id"]));

        let redacted = dir.path().join("redacted.json");
        let o = bin()
            .args(["snapshot", "--stats-only", "--redact-values", "--from", &url, "--out"])
            .arg(&redacted)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = std::fs::read_to_string(&redacted).unwrap();
        let r: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(r["redacted"], true);
        let customers = r["tables"].as_array().unwrap().iter().find(|t| t["name"] == "customers").unwrap();
        let country = customers["columns"].as_array().unwrap().iter().find(|c| c["name"] == "country").unwrap();
        let mcv: Vec<&str> =
            country["most_common_vals"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(mcv.len(), 3);
        assert!(mcv.iter().all(|v| v.len() == 2 && !["DE", "FR", "US"].contains(v)), "{mcv:?}");
        assert_eq!(country["most_common_freqs"], st["tables"][0]["columns"][1]["most_common_freqs"]);
    });
}
