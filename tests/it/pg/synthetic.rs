//! `[snapshot] synthetic`: a dataset generated from a seeded database's
//! planner statistics reproduces each column's null fraction and distinct
//! count within 10 %, keeps its foreign keys (created after the load, so
//! they validate every row), gives the workload's queries the same plan
//! shapes, reports a CHECK constraint the statistics break by name, a run
//! on it says where its data came from, and `run --scales` sizes it by its
//! largest table. A table of a million rows loads over two connections and
//! keeps its row order. Keys made only of foreign keys stay unique. A
//! partitioned table is generated once, through its partitions' parent.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::common::*;
use lockimpact::clone::stats::Stats;
use lockimpact::clone::synthetic::{self, SyntheticPlan};

/// Beside the shipped orders seed: nullable columns, a CHECK, a foreign
/// key to a text key (the generator records the parent's values), and a
/// numeric column (its table goes to COPY as text, the others in binary).
const EXTRAS: &str = "
CREATE TABLE coupons (code text PRIMARY KEY, percent int NOT NULL CHECK (percent BETWEEN 1 AND 90));
INSERT INTO coupons SELECT 'SAVE' || g, 1 + g % 90 FROM generate_series(1, 400) g;
CREATE TABLE refunds (
    id int PRIMARY KEY,
    order_id bigint NOT NULL REFERENCES orders (id),
    coupon text REFERENCES coupons (code),
    reason text,
    amount_cents int NOT NULL CHECK (amount_cents > 0),
    rate numeric(4,2)
);
INSERT INTO refunds SELECT g, 1 + (g * 13) % 20000, CASE WHEN g % 3 = 0 THEN 'SAVE' || (1 + g % 400) END,
  CASE WHEN g % 5 < 2 THEN NULL ELSE (ARRAY['damaged','late','wrong size','changed mind'])[1 + g % 4] END, 1 + g % 5000,
  (g % 50) / 10.0
FROM generate_series(1, 6000) g;
ANALYZE;
";

/// The statistics of `db` through `lockimpact snapshot --stats-only`.
fn take_stats(server: &lockimpact::clone::Server, db: &str, out: &Path) -> Stats {
    let o = bin().args(["snapshot", "--stats-only", "--from", &source_url(server, db, "x"), "--out"]).arg(out).output();
    let o = o.unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

/// The plan of generating `stats` (written to `dir`/stats.json) at `scale` with `seed`.
fn plan_of(dir: &Path, stats: Stats, scale: f64, seed: u64) -> SyntheticPlan {
    SyntheticPlan { path: dir.join("stats.json"), stats: Arc::new(stats), scale, seed }
}

/// The runtime of a test that talks to its servers itself.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// (table.column) → (null_frac, distinct values as a count) from pg_stats.
async fn column_stats(db: &tokio_postgres::Client) -> BTreeMap<String, (f64, f64)> {
    let rows = db
        .query(
            "SELECT s.tablename || '.' || s.attname, s.null_frac::float8, s.n_distinct::float8, c.reltuples::float8 \
             FROM pg_stats s JOIN pg_class c ON c.relname = s.tablename WHERE s.schemaname = 'public'",
            &[],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let (nd, rows): (f64, f64) = (r.get(2), r.get(3));
            (r.get(0), (r.get(1), if nd < 0.0 { -nd * rows } else { nd }))
        })
        .collect()
}

/// The node types of a plan, depth first.
fn shape(plan: &serde_json::Value, out: &mut Vec<String>) {
    out.push(plan["Node Type"].as_str().unwrap_or("?").to_string());
    for p in plan["Plans"].as_array().into_iter().flatten() {
        shape(p, out);
    }
}

/// The workload's queries with concrete parameters.
fn workload_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join("workloads/orders/workload.toml")).unwrap();
    let text = text.replace("{{rows}}", "20000").replace("{{customers}}", "1000");
    let w: toml::Value = toml::from_str(&text).unwrap();
    let params: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("order_by_id", &["4242"][..]),
        ("customer_orders", &["77"][..]),
        ("new_order", &["77", "'DE'", "500"][..]),
        ("update_status", &["4242", "'paid'"][..]),
        ("rename_customer", &["77", "'someone'"][..]),
    ]);
    w["class"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let name = c["name"].as_str().unwrap();
            let mut sql = c["sql"].as_str().unwrap().to_string();
            for (i, v) in params[name].iter().enumerate().rev() {
                sql = sql.replace(&format!("${}", i + 1), v);
            }
            (name.to_string(), sql)
        })
        .collect()
}

async fn plan_shape(db: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    let rows = db.simple_query(&format!("EXPLAIN (FORMAT JSON) {sql}")).await.unwrap();
    let text = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    });
    let v: serde_json::Value = serde_json::from_str(&text.unwrap()).unwrap();
    let mut out = Vec::new();
    shape(&v[0]["Plan"], &mut out);
    out
}

/// A server with database `source` built by `sql` and an empty `synth`.
async fn seeded(sql: &str) -> (lockimpact::clone::Server, tokio_postgres::Client) {
    let server = source_server(&[]);
    let admin = client(&server, "postgres").await;
    for db in ["source", "synth"] {
        admin.batch_execute(&format!("CREATE DATABASE {db}")).await.unwrap();
    }
    let source = client(&server, "source").await;
    source.batch_execute(sql).await.unwrap();
    (server, source)
}

#[test]
fn synthetic_data_matches_the_statistics_keys_and_plans_of_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    rt.block_on(async {
        let (server, source) = seeded(&(orders_seed(20000, 1000) + EXTRAS)).await;
        let stats = take_stats(&server, "source", &dir.path().join("stats.json"));

        let plan = plan_of(dir.path(), stats, 1.0, synthetic::DEFAULT_SEED);
        let generated = synthetic::build(&server.target("synth"), &plan, &|_| {}).await.unwrap();
        assert_eq!(generated.tables.iter().find(|t| t.0 == "orders").map(|t| t.1), Some(20000));
        let binary = |t: &str| generated.loads.iter().find(|l| l.table == t).map(|l| l.binary);
        assert_eq!((binary("orders"), binary("refunds")), (Some(true), Some(false)), "numeric goes as text");
        let synth = client(&server, "synth").await;
        synth.batch_execute("ANALYZE").await.unwrap();

        let (want, got) = (column_stats(&source).await, column_stats(&synth).await);
        assert_eq!(want.keys().collect::<Vec<_>>(), got.keys().collect::<Vec<_>>());
        for (col, &(null_frac, distinct)) in &want {
            let (g_null, g_distinct) = got[col];
            assert!((g_null - null_frac).abs() <= 0.1 * null_frac + 0.005, "{col}: null_frac {g_null} vs {null_frac}");
            assert!(
                (g_distinct - distinct).abs() <= 0.1 * distinct,
                "{col}: n_distinct {g_distinct} vs {distinct} (source)"
            );
        }

        // Binary timestamps land where the statistics put them (their epoch is 2000-01-01).
        let range = "SELECT extract(epoch FROM min(created_at))::float8, extract(epoch FROM max(created_at))::float8 \
                     FROM orders";
        let (want, got) = (source.query_one(range, &[]).await.unwrap(), synth.query_one(range, &[]).await.unwrap());
        let (lo, hi): (f64, f64) = (want.get(0), want.get(1));
        let (g_lo, g_hi): (f64, f64) = (got.get(0), got.get(1));
        assert!(g_lo >= lo - 86_400.0 && g_hi <= hi + 86_400.0 && g_hi - g_lo > 0.9 * (hi - lo), "{g_lo}..{g_hi} vs {lo}..{hi}");

        // Every foreign key was created after the load and validated it.
        let fks: i64 = synth
            .query_one("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(fks, 3);
        let orphans: i64 = synth
            .query_one(
                "SELECT (SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT FROM customers c WHERE c.id = o.customer_id)) \
                 + (SELECT count(*) FROM refunds r WHERE r.coupon IS NOT NULL AND NOT EXISTS \
                   (SELECT FROM coupons c WHERE c.code = r.coupon))",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(orphans, 0);

        for (class, sql) in workload_queries() {
            let (a, b) = (plan_shape(&source, &sql).await, plan_shape(&synth, &sql).await);
            assert_eq!(a, b, "{class}: plan shapes differ for {sql}");
        }
        // The sequences were moved past the generated keys: a new order inserts.
        synth
            .batch_execute("INSERT INTO orders (customer_id, status, shipping_country, total_cents) VALUES (1, 'new', 'DE', 5)")
            .await
            .unwrap();
    });
}

/// Statistics that break a CHECK constraint (an edited file) fail the load
/// with the table, the constraint and the cause.
#[test]
fn synthetic_load_names_the_check_constraint_it_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    rt.block_on(async {
        let (server, _source) = seeded(
            "CREATE TABLE items (id int PRIMARY KEY, qty int NOT NULL CHECK (qty > 0)); \
             INSERT INTO items SELECT g, 1 + g % 50 FROM generate_series(1, 2000) g; ANALYZE",
        )
        .await;
        let mut stats = take_stats(&server, "source", &dir.path().join("stats.json"));
        let qty = stats.tables[0].columns.iter_mut().find(|c| c.name == "qty").unwrap();
        qty.most_common_vals = Some(vec![Some("-3".into())]);
        qty.most_common_freqs = Some(vec![0.5]);
        let plan = SyntheticPlan { path: "edited.json".into(), stats: Arc::new(stats), scale: 1.0, seed: 1 };
        let err = synthetic::build(&server.target("synth"), &plan, &|_| {}).await.unwrap_err().to_string();
        assert!(err.contains("items") && err.contains("items_qty_check"), "{err}");
        assert!(err.contains("violates check constraint"), "{err}");
    });
}

/// The statistics of the shipped orders seed at `rows` orders (1,000
/// customers), taken on a server of their own, in `dir/stats.json`.
fn orders_stats(dir: &Path, rows: u32) -> std::path::PathBuf {
    let stats = dir.join("stats.json");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let server = source_server(&[]);
    rt.block_on(async {
        let db = client(&server, "postgres").await;
        db.batch_execute(&orders_seed(rows, 1000)).await.unwrap();
        db.batch_execute("ANALYZE").await.unwrap();
    });
    take_stats(&server, "postgres", &stats);
    stats
}

/// `lockimpact run` on a scenario with `[snapshot] synthetic` and `scale`
/// completes, and the report says the dataset came from the statistics.
#[test]
fn run_on_a_synthetic_dataset_reports_its_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let stats = orders_stats(dir.path(), 20000);
    let scenario = synthetic_scenario(
        dir.path(),
        &stats,
        0.5,
        "ALTER TABLE orders ADD COLUMN note text;\nCREATE INDEX orders_status_idx ON orders (status);\n",
    );
    let out = run(&[scenario.to_str().unwrap(), "--set", "snapshot.synthetic_seed=7"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = out.report();
    assert_eq!(r["dataset"]["synthetic"]["scale"], 0.5, "{}", r["dataset"]);
    assert_eq!(r["dataset"]["synthetic"]["seed"], 7, "{}", r["dataset"]);
    assert!(r["dataset"]["synthetic"]["stats_file"].as_str().unwrap().ends_with("stats.json"));
    let orders = r["dataset"]["tables"].as_array().unwrap().iter().find(|t| t["name"] == "orders").unwrap();
    assert_eq!(orders["rows"], 10000, "{orders}");
    assert!(out.stderr.contains("generating the template from the statistics"), "{}", out.stderr);
    assert!(
        out.stdout.contains("generated from the statistics in ") && out.stdout.contains("at scale 0.5, seed 7"),
        "{}",
        out.stdout
    );

    // A scale that is not a fraction is refused, naming the key.
    let bad = synthetic_scenario(dir.path(), &stats, -1.0, "SELECT 1;\n");
    assert_refused(&bad, "snapshot.scale");
    // So is a second way to build the dataset.
    edit(&bad, "scale = -1", "seed = \"seed.sql\"");
    assert_refused(&bad, "snapshot.synthetic and snapshot.seed are both set");
    // A seed without statistics to generate from is refused, naming the key.
    edit(&bad, &format!("synthetic = \"{}\"", stats.display()), "synthetic_seed = 7");
    assert_refused(&bad, "snapshot.synthetic_seed applies to snapshot.synthetic only");
}

/// Another seed generates other rows from the same statistics; the same
/// seed the same rows.
#[test]
fn another_seed_generates_other_rows_and_the_same_seed_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    rt.block_on(async {
        let (server, _source) = seeded(&format!("{}\nANALYZE;", orders_seed(2000, 100))).await;
        let stats = take_stats(&server, "source", &dir.path().join("stats.json"));
        let admin = client(&server, "postgres").await;
        let mut digests = Vec::new();
        for (db, seed) in [("synth", 1), ("other", 2), ("again", 1)] {
            if db != "synth" {
                admin.batch_execute(&format!("CREATE DATABASE {db}")).await.unwrap();
            }
            let plan = plan_of(dir.path(), stats.clone(), 1.0, seed);
            synthetic::build(&server.target(db), &plan, &|_| {}).await.unwrap();
            let sql = "SELECT md5(string_agg(o::text, ',' ORDER BY o.id)) FROM orders o";
            digests.push(client(&server, db).await.query_one(sql, &[]).await.unwrap().get::<_, String>(0));
        }
        assert_ne!(digests[0], digests[1], "seeds 1 and 2 gave the same orders");
        assert_eq!(digests[0], digests[2], "seed 1 twice gave other orders");
    });
}

/// `run --scales` over a generated dataset: each size is the largest
/// table's rows (orders), made by snapshot.scale; percentages are of its
/// rows at the scenario's scale, and the prediction is at its rows in the
/// statistics. A percentage that leaves it no row is refused, naming it.
#[test]
fn scales_over_a_synthetic_dataset_size_its_largest_table_and_predict_at_its_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let stats = orders_stats(dir.path(), 40000);
    let scenario = synthetic_scenario(dir.path(), &stats, 0.2, "UPDATE orders SET total_cents = total_cents + 1;\n");
    let sc = scenario.to_str().unwrap();
    let out = run(&[sc, "--scales", "25%,50%,100%"]);
    assert!(out.code == 0 || out.code == 1, "{}", out.stderr);
    let e = &out.report()["extrapolation"];
    assert_eq!(e["scales"], serde_json::json!([2000, 4000, 8000]), "{e}");
    assert_eq!(e["predict_source"], "statistics", "{e}");
    assert_eq!(e["predict_rows"], 40000, "{e}");
    assert!(out.stderr.contains("scale 1/3: snapshot.scale = 0.05 (2000 rows in "), "{}", out.stderr);
    let orders = out.report()["dataset"]["tables"].as_array().unwrap().iter().find(|t| t["name"] == "orders").cloned();
    assert_eq!(orders.unwrap()["rows"], 8000, "the largest size's report");
    let wal = &e["steps"][0]["figures"]["wal_bytes"];
    assert_eq!(wal["model"], "linear", "the UPDATE's WAL grows with the rows: {wal}");

    let out = run(&[sc, "--scales", "0.001%,50%,100%"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("rows at snapshot.scale = 8000 rounds to no row"), "{}", out.stderr);
}

/// A table whose name is a reserved word (the constraints name it `"order"`)
/// and a composite key listed in another order than the table's columns
/// (`(b, a)` of `a, b`), referenced by a child: the child's foreign key
/// takes the parent's generated pairs, in the key's order, and validates.
#[test]
fn a_reserved_table_name_and_a_reordered_composite_key_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    rt.block_on(async {
        let sql = "CREATE TABLE \"order\" (a int NOT NULL, b int NOT NULL, note text, PRIMARY KEY (b, a));
            INSERT INTO \"order\" SELECT g % 7, g, 'n' || g FROM generate_series(1, 500) g;
            CREATE TABLE \"group\" (id int PRIMARY KEY, b int NOT NULL, a int NOT NULL,
                FOREIGN KEY (b, a) REFERENCES \"order\" (b, a));
            INSERT INTO \"group\" SELECT g, 1 + g % 500, (1 + g % 500) % 7 FROM generate_series(1, 1500) g;
            ANALYZE;";
        let (server, _source) = seeded(sql).await;
        let stats = take_stats(&server, "source", &dir.path().join("stats.json"));
        let order = stats.tables.iter().find(|t| t.name == "order").expect("the order table");
        assert_eq!(order.regclass.as_deref(), Some("\"order\""));
        let plan = plan_of(dir.path(), stats, 1.0, synthetic::DEFAULT_SEED);
        synthetic::build(&server.target("synth"), &plan, &|_| {}).await.unwrap();
        let synth = client(&server, "synth").await;
        let row = synth
            .query_one(
                "SELECT (SELECT count(*) FROM \"group\"), (SELECT count(*) FROM pg_constraint \
                 WHERE contype = 'f' AND convalidated), (SELECT count(*) FROM \"group\" g WHERE NOT EXISTS \
                 (SELECT FROM \"order\" o WHERE (o.b, o.a) = (g.b, g.a)))",
                &[],
            )
            .await
            .unwrap();
        let (rows, fks, orphans): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        assert_eq!((rows, fks, orphans), (1500, 1, 0));
    });
}

/// Keys made only of foreign-key columns: a join table's primary key of two
/// foreign keys (a customer's favorite products) and a 1:1 child whose
/// foreign key is its unique key. Their unique indexes, built after the
/// load, validate that no pair and no parent repeats. A 1:1 child with more
/// rows than its parent has keys is refused, naming the key.
#[test]
fn keys_made_only_of_foreign_keys_stay_unique() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    rt.block_on(async {
        let sql = "CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
            INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 300) g;
            CREATE TABLE products (id int PRIMARY KEY);
            INSERT INTO products SELECT g FROM generate_series(1, 50) g;
            CREATE TABLE favorites (customer_id int REFERENCES customers, product_id int REFERENCES products,
                PRIMARY KEY (customer_id, product_id));
            INSERT INTO favorites SELECT c, p FROM generate_series(1, 300) c, generate_series(1, 50) p
                WHERE (c * 7 + p) % 5 = 0;
            CREATE TABLE profiles (customer_id int NOT NULL UNIQUE REFERENCES customers, bio text);
            INSERT INTO profiles SELECT g, 'b' || g FROM generate_series(1, 250) g;
            ANALYZE;";
        let (server, _source) = seeded(sql).await;
        let stats = take_stats(&server, "source", &dir.path().join("stats.json"));
        let plan = |stats: Stats| plan_of(dir.path(), stats, 1.0, synthetic::DEFAULT_SEED);
        synthetic::build(&server.target("synth"), &plan(stats.clone()), &|_| {}).await.unwrap();
        let synth = client(&server, "synth").await;
        let row = synth
            .query_one(
                "SELECT (SELECT count(*) FROM favorites), (SELECT count(*) FROM profiles), \
                 (SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
                  WHERE i.indisunique AND c.relname IN ('favorites', 'profiles')), \
                 (SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated)",
                &[],
            )
            .await
            .unwrap();
        let counts: (i64, i64, i64, i64) = (row.get(0), row.get(1), row.get(2), row.get(3));
        assert_eq!(counts, (3000, 250, 2, 3), "rows, unique indexes, validated foreign keys");

        // More profiles than customers: no generation can keep the key unique.
        let mut crowded = stats;
        crowded.tables.iter_mut().find(|t| t.name == "profiles").unwrap().reltuples = 400;
        client(&server, "postgres").await.batch_execute("CREATE DATABASE crowded").await.unwrap();
        let e = synthetic::build(&server.target("crowded"), &plan(crowded), &|_| {}).await.unwrap_err();
        assert!(
            e.message.contains("cannot generate profiles: its key profiles_customer_id_key is a foreign key alone"),
            "{}",
            e.message
        );
        assert!(e.message.contains("400 rows") && e.message.contains("the parent has 300"), "{}", e.message);
    });
}

/// A table of a million rows or more is loaded over two COPY connections
/// fed by one generator: every row arrives once (the primary key, created
/// after the load, validates that), and a column laid out in row order in
/// the source stays so (its correlation), though the two streams' chunks
/// interleave in the table's pages. A smaller table takes one connection.
#[test]
fn a_million_row_table_loads_over_two_connections_and_keeps_its_row_order() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    rt.block_on(async {
        let (server, _source) = seeded(&(orders_seed(20000, 1000) + ";\nANALYZE;")).await;
        let stats = take_stats(&server, "source", &dir.path().join("stats.json"));
        let plan = plan_of(dir.path(), stats, synthetic::STREAM_MIN_ROWS as f64 / 20000.0, synthetic::DEFAULT_SEED);
        let generated = synthetic::build(&server.target("synth"), &plan, &|_| {}).await.unwrap();
        let load = |t: &str| generated.loads.iter().find(|l| l.table == t).map(|l| (l.rows, l.streams));
        assert_eq!(load("orders"), Some((synthetic::STREAM_MIN_ROWS, 2)));
        assert_eq!(load("customers"), Some((50_000, 1)));

        let synth = client(&server, "synth").await;
        synth.batch_execute("ANALYZE orders").await.unwrap();
        let row = synth
            .query_one(
                "SELECT (SELECT count(*) FROM orders), (SELECT max(id) FROM orders), \
                 (SELECT correlation::float8 FROM pg_stats WHERE tablename = 'orders' AND attname = 'id')",
                &[],
            )
            .await
            .unwrap();
        let (rows, max_id, correlation): (i64, i64, f64) = (row.get(0), row.get(1), row.get(2));
        assert_eq!((rows as u64, max_id as u64), (synthetic::STREAM_MIN_ROWS, synthetic::STREAM_MIN_ROWS));
        assert!(correlation > 0.99, "orders.id correlation {correlation}: the streams' chunks are out of row order");
    });
}

/// Partitioned tables: a range-partitioned table and a hash-partitioned
/// one, analyzed as a whole (`ANALYZE;` does). The synthetic dataset has
/// each table's rows once and each partition about its own share: the
/// table is generated from its statistics over all partitions, and COPY
/// routes each row. A partitioned table without statistics of its own
/// (only its partitions analyzed, as autovacuum leaves it) is refused,
/// naming the table and the ANALYZE that gives it some.
#[test]
fn partitioned_tables_are_generated_once_into_their_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    rt.block_on(async {
        let schema = "CREATE TABLE events (id bigint NOT NULL, at date NOT NULL, kind text, PRIMARY KEY (id, at))
                PARTITION BY RANGE (at);
            CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
            CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
            INSERT INTO events SELECT g, date '2025-01-01' + (g % 700), (ARRAY['a','b','c'])[1 + g % 3]
                FROM generate_series(1, 7000) g;
            CREATE TABLE sessions (id int PRIMARY KEY, token text NOT NULL) PARTITION BY HASH (id);
            CREATE TABLE sessions_0 PARTITION OF sessions FOR VALUES WITH (MODULUS 2, REMAINDER 0);
            CREATE TABLE sessions_1 PARTITION OF sessions FOR VALUES WITH (MODULUS 2, REMAINDER 1);
            INSERT INTO sessions SELECT g, md5(g::text) FROM generate_series(1, 3000) g;";
        let (server, source) = seeded(&format!("{schema}\nANALYZE;")).await;
        let count = |db: tokio_postgres::Client| async move {
            let rows = db
                .query(
                    "SELECT c.relname, (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %s', \
                     c.oid::regclass), false, true, '')))[1]::text::int8 FROM pg_class c \
                     WHERE c.relname ~ '^(events|sessions)' AND c.relkind IN ('r', 'p') ORDER BY 1",
                    &[],
                )
                .await
                .unwrap();
            rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1))).collect::<Vec<_>>()
        };
        let want = count(source).await;
        let stats = take_stats(&server, "source", &dir.path().join("stats.json"));
        synthetic::build(&server.target("synth"), &plan_of(dir.path(), stats, 1.0, synthetic::DEFAULT_SEED), &|_| {})
            .await
            .unwrap();
        let got = count(client(&server, "synth").await).await;
        eprintln!("source {want:?}\nsynthetic {got:?}");
        assert_eq!(got.len(), want.len(), "{got:?}");
        for ((name, n), (_, m)) in want.iter().zip(&got) {
            let ratio = *m as f64 / *n as f64;
            assert!((0.9..=1.1).contains(&ratio), "{name}: {m} rows generated, the source has {n}");
        }

        client(&server, "postgres").await.batch_execute("CREATE DATABASE bare").await.unwrap();
        let analyze = "ANALYZE events_2025, events_2026, sessions_0, sessions_1;";
        client(&server, "bare").await.batch_execute(&format!("{schema}\n{analyze}")).await.unwrap();
        let stats = dir.path().join("bare.json");
        take_stats(&server, "bare", &stats);
        let scenario = synthetic_scenario(dir.path(), &stats, 1.0, "SELECT 1;\n");
        assert_refused(&scenario, "the partitioned table events has no statistics of its own");
        assert_refused(&scenario, "run ANALYZE events on the source");
    });
}
