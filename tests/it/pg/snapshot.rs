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
