//! `lockimpact record`: recordings of a real server running a known mix are
//! replayed on a rehearsal clone, and the replay's per-class mix matches the
//! recording within 2 % (share of operations); nothing is written to the
//! source, and passwords are never printed.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common::*;

const ITEMS: &str = "CREATE TABLE items (id int PRIMARY KEY, cat text NOT NULL); \
    INSERT INTO items SELECT g, 'c' || (g % 7) FROM generate_series(1, 1000) g; ANALYZE items; \
    CREATE TABLE tags (item_id int NOT NULL, label text NOT NULL); \
    INSERT INTO tags SELECT g, 'l' || (g % 5) FROM generate_series(1, 1000) g; ANALYZE tags;";

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
    let worst = a.iter().map(|(c, w)| (b.get(c).copied().unwrap_or(0.0) - w).abs()).fold(0.0, f64::max);
    eprintln!("mix: {} classes, largest share difference {:.2} points", a.len(), worst * 100.0);
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
                db.query("SELECT count(*) FROM items JOIN tags ON item_id = id WHERE label = 'l1'", &[]).await.unwrap();
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
    assert_eq!(classes.len(), 4, "{text}");
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
    // 3 : 1 : 2 : 1 as run, and generators inferred from the parse tree (the join's
    // unqualified column through the source's catalog).
    let (read, update, by_cat) = (sql_of("WHERE id = $1"), sql_of("UPDATE"), sql_of("count(*)"));
    let rate = |c: &toml::Value| c["recorded_rate"].as_float().unwrap();
    assert!((rate(read) / rate(update) - 3.0).abs() < 0.1, "{text}");
    assert!((rate(by_cat) / rate(update) - 2.0).abs() < 0.1, "{text}");
    assert!(text.contains(r#"{ type = "sample", table = "items", column = "id" }"#), "{text}");
    assert!(text.contains(r#"{ type = "sample", table = "items", column = "cat" }"#), "{text}");
    assert!(text.contains(r#"{ type = "sample", table = "tags", column = "label" }"#), "{text}");
    assert!((rate(sql_of("JOIN tags")) / rate(update) - 1.0).abs() < 0.1, "{text}");
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

/// The replay file: header, then sessions.
fn read_replay(path: &Path) -> (serde_json::Value, Vec<serde_json::Value>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap());
    let header = lines.next().unwrap();
    (header, lines.collect())
}

/// Copies the server's log to `to` once it stops growing: the collector
/// writes asynchronously (up to 7.5 s).
fn copy_settled(log: &Path, to: &Path) {
    let size = || std::fs::metadata(log).map(|m| m.len()).unwrap_or(0);
    for _ in 0..25 {
        let before = size();
        std::thread::sleep(std::time::Duration::from_millis(300));
        if size() == before {
            break;
        }
    }
    std::fs::copy(log, to).unwrap();
}

#[test]
fn csvlog_of_pgbench_is_replayed_with_its_mix_and_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let server = source_server(&[("logging_collector", "on"), ("log_destination", "csvlog"), ("log_filename", "pg")]);
    server_tool(&server, "pgbench", "postgres", &["-i", "-s", "1", "-q"]);
    let dump = dir.path().join("pgbench.dump");
    server_tool(&server, "pg_dump", "postgres", &["-Fc", "-f", dump.to_str().unwrap()]);
    server_tool(
        &server,
        "psql",
        "postgres",
        &["-qc", "ALTER SYSTEM SET log_min_duration_statement = 0", "-c", "SELECT pg_reload_conf()"],
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Two pgbench runs at once: tpcb-like in simple protocol, select-only in extended (parameters: detail).
    let a = std::thread::scope(|s| {
        let a = s.spawn(|| {
            server_tool(&server, "pgbench", "postgres", &["-n", "-c", "2", "-T", "3", "-R", "40", "-M", "simple"])
        });
        server_tool(
            &server,
            "pgbench",
            "postgres",
            &["-n", "-b", "select-only", "-c", "1", "-T", "3", "-R", "40", "-M", "extended"],
        );
        a.join().unwrap()
    });
    assert!(a.contains("TPC-B"), "{a}");
    let Some(lockimpact::clone::restore::Tools::Local { socket_dir, .. }) = server.tools() else { panic!("local") };
    let csv = dir.path().join("pg.csv");
    copy_settled(&socket_dir.join("data/log/pg.csv"), &csv);
    drop(server);

    let replay = dir.path().join("sessions.jsonl");
    let summary = dir.path().join("w/workload.toml");
    let o = bin()
        .args(["record", "log"])
        .arg(&csv)
        .arg("--replay")
        .arg(&replay)
        .arg("--out")
        .arg(&summary)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Transaction boundaries: every tpcb-like transaction is BEGIN … END, whole, in one session.
    let (header, sessions) = read_replay(&replay);
    let classes = header["classes"].as_array().unwrap();
    let class_sql = |i: &serde_json::Value| classes[i.as_u64().unwrap() as usize]["sql"].as_str().unwrap().to_string();
    let mut transactions = 0;
    for s in &sessions {
        let st = s["statements"].as_array().unwrap();
        let mut groups: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        let mut last_tx = 0;
        for x in st {
            let tx = x["tx"].as_u64().unwrap();
            assert!(tx >= last_tx, "transactions stay contiguous");
            last_tx = tx;
            groups.entry(tx).or_default().push(x["sql"].as_str().unwrap().to_string());
        }
        let last = groups.keys().max().copied();
        for (_, g) in groups.iter().filter(|(k, g)| g[0].starts_with("BEGIN") && Some(**k) != last) {
            transactions += 1;
            assert_eq!(g.len(), 7, "{g:?}\n{groups:?}");
            assert!(g[6].starts_with("END"), "{g:?}");
            assert!(g[1].starts_with("UPDATE pgbench_accounts"), "{g:?}");
        }
    }
    // Every transaction pgbench finished, but each session's last (which the loop leaves out).
    let processed: usize = a
        .lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
        .and_then(|n| n.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .unwrap_or_else(|| panic!("pgbench's count of transactions in:\n{a}"));
    assert!(processed > 20, "pgbench processed only {processed}:\n{a}");
    assert!(transactions + 2 >= processed, "{transactions} whole tpcb transactions of {processed} processed");
    // The extended-protocol select-only: `execute` entries with their parameters inlined (same
    // fingerprint, so the same class, as tpcb-like's simple-protocol SELECT).
    let inlined = sessions
        .iter()
        .flat_map(|s| s["statements"].as_array().unwrap())
        .find(|x| x["sql"].as_str().unwrap().contains("WHERE aid = '"))
        .unwrap_or_else(|| panic!("no inlined parameter"));
    assert!(class_sql(&inlined["class"]).starts_with("SELECT abalance"), "{header}");

    // The rate-based summary groups by fingerprint.
    let doc: toml::Table = toml::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let wc = doc["class"].as_array().unwrap();
    assert!(wc.iter().any(|c| c["sql"].as_str().unwrap().starts_with("UPDATE pgbench_tellers")), "{doc:?}");
    assert!(wc.iter().any(|c| c.get("params").is_some_and(|p| p.to_string().contains("choice"))), "{doc:?}");
    let summary_rates: BTreeMap<String, f64> =
        wc.iter().map(|c| (c["name"].as_str().unwrap().to_string(), c["recorded_rate"].as_float().unwrap())).collect();

    // Replayed on a clone of the dataset: the per-class mix matches the recording.
    std::fs::write(dir.path().join("migration.sql"), "ALTER TABLE pgbench_accounts ADD COLUMN note text;\n").unwrap();
    let scenario = dir.path().join("scenario.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"log-replay\"\n[snapshot]\ndump = \"{}\"\n[workload]\nreplay = \"sessions.jsonl\"\nspeed = 2.0\n\
             [phases]\nwarmup = \"200ms\"\nbaseline = \"2s\"\ncooldown = \"1s\"\n[migration]\nfile = \"migration.sql\"\n",
            dump.display()
        ),
    )
    .unwrap();
    let o = run(&[scenario.to_str().unwrap()]);
    let r = o.report();
    assert_eq!(r["workload"]["errors"], 0, "{}\n{}", o.stdout, o.stderr);
    let recorded: BTreeMap<String, f64> =
        classes.iter().map(|c| (c["name"].as_str().unwrap().to_string(), c["count"].as_f64().unwrap())).collect();
    // speed = 2.0: twice the recording's mean rate.
    let mean = recorded.values().sum::<f64>() / (header["duration_ms"].as_f64().unwrap() / 1000.0);
    let target = r["workload"]["target_rate"].as_f64().unwrap();
    assert!((target / (2.0 * mean) - 1.0).abs() < 0.01, "target {target}, recorded mean {mean}");
    let replayed: BTreeMap<String, f64> = class_counts(r).into_iter().map(|(k, v)| (k, v as f64)).collect();
    assert!(replayed.values().sum::<f64>() > 300.0, "{replayed:?}");
    assert_mix(&recorded, &replayed);
    // The rate-based summary replays the same statement mix, at the recorded rate.
    let summary_scenario = dir.path().join("summary.toml");
    std::fs::write(
        &summary_scenario,
        std::fs::read_to_string(&scenario).unwrap().replace(
            "replay = \"sessions.jsonl\"\nspeed = 2.0",
            "file = \"w/workload.toml\"\nrate = \"recorded\"\nconnections = 4",
        ),
    )
    .unwrap();
    let o2 = run(&[summary_scenario.to_str().unwrap()]);
    let r2 = o2.report();
    assert_eq!(r2["workload"]["errors"], 0, "{}\n{}", o2.stdout, o2.stderr);
    let recorded_rate = doc["recorded_rate"].as_float().unwrap();
    assert!((r2["workload"]["target_rate"].as_f64().unwrap() - recorded_rate).abs() < 0.01, "{recorded_rate}");
    let replayed2: BTreeMap<String, f64> = class_counts(r2).into_iter().map(|(k, v)| (k, v as f64)).collect();
    assert!(!replayed2.keys().any(|k| k.starts_with("begin")), "{replayed2:?}");
    assert_mix(&summary_rates, &replayed2);

    let begins: f64 = replayed.iter().filter(|(k, _)| k.starts_with("begin")).map(|(_, v)| v).sum();
    let ends: f64 = replayed.iter().filter(|(k, _)| k.starts_with("end")).map(|(_, v)| v).sum();
    assert!((begins - ends).abs() <= 2.0, "BEGIN {begins} vs END {ends}");
}

#[test]
fn a_log_without_statements_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("pg.csv");
    std::fs::write(
        &csv,
        "2026-11-24 21:53:05.123 UTC,,,12,,65f1.c,1,,2026-11-24 21:53:00 UTC,,0,LOG,00000,\"database system is ready to accept connections\",,,,,,,,,\"\",\"postmaster\",,0\n",
    )
    .unwrap();
    let o = bin().args(["record", "log"]).arg(&csv).arg("--replay").arg(dir.path().join("r.jsonl")).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("log_min_duration_statement = 0") && stderr.contains("csvlog"), "{stderr}");
}

#[test]
fn stderr_log_with_log_statement_all_keeps_sessions_and_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let server = source_server(&[("log_statement", "all"), ("log_line_prefix", "%m [%c:%l:%v] %u@%d ")]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let db = client(&server, "postgres").await;
        db.batch_execute("CREATE TABLE t (id int PRIMARY KEY, note text)").await.unwrap();
        db.batch_execute("BEGIN").await.unwrap();
        db.execute("INSERT INTO t VALUES ($1, $2)", &[&1i32, &"it's"]).await.unwrap();
        db.batch_execute("COMMIT").await.unwrap();
        db.query("SELECT note FROM t WHERE id = $1", &[&1i32]).await.unwrap();
    });
    let Some(lockimpact::clone::restore::Tools::Local { socket_dir, .. }) = server.tools() else { panic!("local") };
    let log = std::fs::read_dir(&socket_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "log"))
        .expect("the server's stderr log");
    let copy = dir.path().join("server.log");
    std::fs::copy(&log, &copy).unwrap();
    drop(server);
    let replay = dir.path().join("r.jsonl");
    let o =
        bin().args(["record", "log", "--format", "stderr"]).arg(&copy).arg("--replay").arg(&replay).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (_, sessions) = read_replay(&replay);
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let st = sessions[0]["statements"].as_array().unwrap();
    let sql: Vec<&str> = st.iter().map(|s| s["sql"].as_str().unwrap()).collect();
    let log_text = std::fs::read_to_string(&copy).unwrap();
    assert_eq!(
        sql,
        vec![
            "CREATE TABLE t (id int PRIMARY KEY, note text)",
            "BEGIN",
            "INSERT INTO t VALUES ('1', 'it''s')",
            "COMMIT",
            "SELECT note FROM t WHERE id = '1'"
        ],
        "{log_text}"
    );
    let tx: Vec<u64> = st.iter().map(|s| s["tx"].as_u64().unwrap()).collect();
    assert_eq!(tx, vec![0, 1, 1, 1, 2]);
}

#[test]
fn bad_recording_flags_exit_2_without_the_password() {
    let url = "postgresql://app:Sup3rSecret@127.0.0.1:1/app";
    for (flags, want) in [
        (vec!["--samples", "1"], "--samples must be at least 2"),
        (vec!["--coverage", "1.5"], "--coverage must be in (0, 1]"),
        (vec!["--interval", "10ms"], "--interval must be at least 100ms"),
        (vec![], "cannot connect to postgresql://app:****@127.0.0.1:1/app"),
    ] {
        let o = bin()
            .args(["record", "stat-statements", "--url", url, "--out", "/nonexistent/w.toml"])
            .args(&flags)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(want) && !stderr.contains("Sup3rSecret"), "{flags:?}: {stderr}");
    }
    let o = bin().args(["record", "log", "/no/such.csv", "--replay", "/tmp/x.jsonl"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/no/such.csv: cannot read"));
}

/// All SQL of a replay file, statement by statement.
fn replay_sql(path: &Path) -> Vec<String> {
    let (_, sessions) = read_replay(path);
    sessions
        .iter()
        .flat_map(|s| s["statements"].as_array().unwrap().iter().map(|x| x["sql"].as_str().unwrap().to_string()))
        .collect()
}

/// `record log` keeps the application's sessions only: psql's catalog
/// queries and LOCK TABLE and pg_dump's COPY are left out by default (kept
/// with --include-tools), and --since/--until, --user and
/// --application-name select a window and sessions; the peak rate is that of
/// what was kept.
#[test]
fn record_log_filters_sessions_and_leaves_out_tools() {
    let dir = tempfile::tempdir().unwrap();
    let server = source_server(&[
        ("logging_collector", "on"),
        ("log_destination", "csvlog"),
        ("log_filename", "pg"),
        ("log_min_duration_statement", "0"),
        ("log_timezone", "UTC"),
    ]);
    server_tool(&server, "psql", "postgres", &["-qc", ITEMS]);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mid = rt.block_on(async {
        let app = |name: &'static str| {
            let mut config = server.config("postgres");
            config.application_name(name);
            async move {
                let (c, conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(conn);
                c
            }
        };
        let shop = app("shop").await;
        for i in 1..=30 {
            shop.query("SELECT cat FROM items WHERE id = $1", &[&i]).await.unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let row = shop
            .query_one("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS')", &[])
            .await
            .unwrap();
        let mid: String = row.get(0);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let billing = app("billing").await;
        for i in 1..=20 {
            billing.execute("UPDATE items SET cat = 'x' WHERE id = $1", &[&i]).await.unwrap();
        }
        mid
    });
    server_tool(&server, "psql", "postgres", &["-qc", "\\d items", "-c", "BEGIN; LOCK TABLE items; COMMIT;"]);
    let dump = dir.path().join("items.sql");
    server_tool(&server, "pg_dump", "postgres", &["-t", "items", "-f", dump.to_str().unwrap()]);
    let Some(lockimpact::clone::restore::Tools::Local { socket_dir, .. }) = server.tools() else { panic!("local") };
    let csv = dir.path().join("pg.csv");
    copy_settled(&socket_dir.join("data/log/pg.csv"), &csv);
    drop(server);

    let record = |name: &str, args: &[&str]| {
        let replay = dir.path().join(format!("{name}.jsonl"));
        let out = dir.path().join(format!("{name}.toml"));
        let o = bin()
            .args(["record", "log"])
            .arg(&csv)
            .arg("--replay")
            .arg(&replay)
            .arg("--out")
            .arg(&out)
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{name}: {stderr}");
        let doc: toml::Table = toml::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        (replay_sql(&replay), doc, stderr)
    };
    let tool_sql =
        |sql: &String| sql.contains("pg_catalog") || sql.starts_with("LOCK TABLE") || sql.starts_with("COPY");
    let reads = |sql: &[String]| sql.iter().filter(|s| s.starts_with("SELECT cat FROM items")).count();
    let updates = |sql: &[String]| sql.iter().filter(|s| s.starts_with("UPDATE items")).count();

    let (sql, _, stderr) = record("default", &[]);
    assert!(!sql.iter().any(tool_sql), "tool statements kept: {sql:#?}");
    assert_eq!((reads(&sql), updates(&sql)), (30, 20), "{sql:#?}");
    assert!(stderr.contains("left out") && stderr.contains("--include-tools"), "{stderr}");

    let (sql, _, _) = record("tools", &["--include-tools"]);
    assert!(sql.iter().any(|s| s.starts_with("LOCK TABLE")), "{sql:#?}");
    assert!(sql.iter().any(|s| s.contains("pg_catalog")), "{sql:#?}");

    let (sql, doc, _) = record("billing", &["--application-name", "billing"]);
    assert_eq!((reads(&sql), updates(&sql)), (0, 20), "{sql:#?}");
    // The rates are those of the 20 kept statements: no 1 s window has more
    // (a recording shorter than a window has its mean rate as its peak).
    let classes = doc["class"].as_array().unwrap();
    assert!(classes.iter().all(|c| c["sql"].as_str().unwrap().starts_with("UPDATE items")), "{doc:?}");
    let (peak, recorded) = (doc["peak_rate"].as_float().unwrap(), doc["recorded_rate"].as_float().unwrap());
    assert!(peak > 0.0 && peak <= recorded.max(20.0) + 0.1, "peak_rate {peak}, recorded_rate {recorded}: {doc:?}");
    // Its statements per second, for `rate = "peak"`'s busiest window: the
    // 20 kept, and their busiest second is the peak.
    let by_second: Vec<i64> =
        doc["ops_by_second"].as_array().unwrap().iter().map(|n| n.as_integer().unwrap()).collect();
    assert_eq!(by_second.iter().sum::<i64>(), 20, "{doc:?}");

    let (sql, _, _) = record("since", &["--since", &mid]);
    assert_eq!((reads(&sql), updates(&sql)), (0, 20), "--since {mid}: {sql:#?}");
    let (sql, _, _) = record("until", &["--until", &mid, "--user", "postgres"]);
    assert_eq!((reads(&sql), updates(&sql)), (30, 0), "--until {mid}: {sql:#?}");

    let o = bin()
        .args(["record", "log"])
        .arg(&csv)
        .arg("--replay")
        .arg(dir.path().join("none.jsonl"))
        .args(["--user", "nobody"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("passes the filters"), "{stderr}");
}

/// 13.5: `rate = "peak"` runs a recording at its busiest window of the
/// rehearsal's length (warmup + baseline + cooldown: 3.3 s here, so 4 whole
/// seconds), not at its busiest second.
#[test]
fn peak_rate_is_the_busiest_window_of_the_rehearsals_length() {
    let dir = tempfile::tempdir().unwrap();
    let workload = dir.path().join("w.toml");
    std::fs::write(
        &workload,
        "recorded_rate = 116.0\npeak_rate = 500.0\nops_by_second = [10, 500, 10, 10, 200, 200, 200, 10, 10, 10]\n\
         [[class]]\nname = \"read\"\nweight = 1\nsql = \"SELECT cat FROM items WHERE id = 1\"\n",
    )
    .unwrap();
    let scenario = replay_scenario(dir.path(), &workload, "\"peak\"");
    let o = run(&[scenario.to_str().unwrap()]);
    let target = o.report()["workload"]["target_rate"].as_f64().unwrap();
    // Seconds 1-4: 500 + 10 + 10 + 200 over 4 s.
    assert_eq!(target, 180.0, "{}", o.stdout);
}
