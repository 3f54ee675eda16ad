//! Row 7, synthetic generation rate: the orders dataset's planner
//! statistics (read as `snapshot --stats-only` reads them: `STATS_SQL` and
//! `pg_dump --schema-only` of the seeded template), then, round after round,
//! `clone::synthetic::build` of `synthetic_rows` orders (and the customers
//! the statistics scale with them) into an empty database, against the
//! server's own `INSERT … SELECT … generate_series` of the seed's orders
//! statement into the same table shape (the synthetic schema's tables,
//! before their keys and indexes, as the generator loads into them).
//!
//! The rate counts the orders table only: from its COPY's start to the
//! server's acknowledgement of its end, over the two connections a table of
//! a million rows or more is loaded over (generation, sending and the
//! server's parsing and inserting; not the schema, the customers table, the
//! indexes and foreign keys built after the load, nor ANALYZE). The second row puts
//! the generator's own time (inside those runs) against the server's COPY
//! of the same rows pre-generated in a file: what the load alone costs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use super::report::{Report, Row, Side};
use super::{Ctx, drop_db};
use crate::clone::restore::Tools;
use crate::clone::stats::{self, Stats};
use crate::clone::synthetic::{self, SyntheticPlan};
use crate::clone::template::{TEMPLATE_DB, connect};
use crate::error::{Error, Result, describe_pg};

const SYNTH_DB: &str = "lockimpact_synth";
const BASE_DB: &str = "lockimpact_synth_base";
/// What the issue asks of the generator on this machine.
const TARGET_ROWS_PER_S: f64 = 1_000_000.0;

/// One round's figures (rows/s, orders table).
struct Round {
    loaded: f64,
    generated: f64,
    insert_select: f64,
    copy_file: f64,
    /// The generator's share of its load's time.
    gen_share: f64,
    mb: f64,
    /// COPY connections the orders table was loaded over.
    streams: usize,
}

pub async fn run(ctx: &Ctx, rep: &mut Report) -> Result<()> {
    let st = Arc::new(take_stats(ctx).await?);
    let orders =
        st.tables.iter().find(|t| t.name == "orders").ok_or_else(|| {
            Error::env("the orders dataset's statistics have no orders table; the seed script changed?")
        })?;
    let n = ctx.cfg.synthetic_rows;
    let scale = n as f64 / orders.reltuples.max(1) as f64;
    let plan = SyntheticPlan { path: "bench stats".into(), stats: st.clone(), scale, seed: synthetic::DEFAULT_SEED };
    let mut rounds = Vec::new();
    for r in 0..ctx.cfg.rounds {
        ctx.check()?;
        let round = one_round(ctx, &plan, n).await?;
        ctx.say(&format!(
            "synthetic: round {}: generated and loaded {:.0} orders/s (generation alone {:.0}/s); server INSERT … \
             SELECT {:.0} rows/s, COPY from a file {:.0} rows/s",
            r + 1,
            round.loaded,
            round.generated,
            round.insert_select,
            round.copy_file
        ));
        rounds.push(round);
    }
    drop_db(ctx, SYNTH_DB).await?;
    drop_db(ctx, BASE_DB).await?;
    push_rows(rep, &rounds, n, scale);
    Ok(())
}

/// Side A then side B, each into a fresh database.
async fn one_round(ctx: &Ctx, plan: &SyntheticPlan, n: u64) -> Result<Round> {
    fresh_db(ctx, SYNTH_DB).await?;
    let generated = synthetic::build(&ctx.server.target(SYNTH_DB), plan, &|_| {}).await?;
    let load = generated
        .loads
        .iter()
        .find(|l| l.table.ends_with("orders"))
        .ok_or_else(|| Error::env("the synthetic build loaded no orders table"))?;
    let secs = load.took.as_secs_f64().max(1e-9);
    let (insert_select, copy_file) = baseline(ctx, plan, n).await?;
    Ok(Round {
        loaded: load.rows as f64 / secs,
        generated: load.rows as f64 / load.generating.as_secs_f64().max(1e-9),
        insert_select,
        copy_file,
        gen_share: load.generating.as_secs_f64() / secs,
        mb: load.bytes as f64 / 1e6,
        streams: load.streams,
    })
}

/// The server's own rates into the synthetic schema's orders table (no keys
/// or indexes yet): the seed's `INSERT … SELECT generate_series` of `n`
/// rows, then those rows written to a file and loaded again by `COPY FROM`
/// (rows/s each).
async fn baseline(ctx: &Ctx, plan: &SyntheticPlan, n: u64) -> Result<(f64, f64)> {
    fresh_db(ctx, BASE_DB).await?;
    let db = connect(&ctx.server, BASE_DB, "bench").await?;
    let fail =
        |what: &str, e: tokio_postgres::Error| Error::db(format!("synthetic baseline: {what}: {}", describe_pg(&e)));
    let (pre, _) = synthetic::split_schema(&plan.stats.schema_sql);
    db.batch_execute(&pre).await.map_err(|e| fail("the schema", e))?;
    db.batch_execute("RESET search_path").await.map_err(|e| fail("RESET search_path", e))?;
    let seed = super::seed_sql(n, (n / 20).max(1000));
    let insert = seed
        .split(';')
        .find(|s| s.contains("INSERT INTO orders"))
        .ok_or_else(|| Error::env("workloads/orders/seed.sql has no INSERT INTO orders"))?;
    let t = Instant::now();
    db.batch_execute(insert).await.map_err(|e| fail("INSERT … SELECT generate_series", e))?;
    let insert_select = n as f64 / t.elapsed().as_secs_f64().max(1e-9);
    // A file in the data directory (the server's user can write there).
    let file: String = db
        .query_one("SELECT current_setting('data_directory') || '/lockimpact_bench_orders.copy'", &[])
        .await
        .map_err(|e| fail("data_directory", e))?
        .get(0);
    let lit = file.replace('\'', "''");
    db.batch_execute(&format!("COPY orders TO '{lit}'; TRUNCATE orders"))
        .await
        .map_err(|e| fail("COPY TO a file", e))?;
    let t = Instant::now();
    db.batch_execute(&format!("COPY orders FROM '{lit}'")).await.map_err(|e| fail("COPY FROM a file", e))?;
    let copy_file = n as f64 / t.elapsed().as_secs_f64().max(1e-9);
    let _ = std::fs::remove_file(&file); // readable when the bench runs as the server's user
    Ok((insert_select, copy_file))
}

fn push_rows(rep: &mut Report, rounds: &[Round], n: u64, scale: f64) {
    let col = |f: fn(&Round) -> f64| rounds.iter().map(f).collect::<Vec<f64>>();
    let loaded = Row::new(
        7,
        "synthetic_orders_load",
        &format!("synthetic orders generated and loaded ({n} rows)"),
        Side::samples("generator + COPY", col(|r| r.loaded), "rows/s"),
        Side::samples("server INSERT … SELECT generate_series", col(|r| r.insert_select), "rows/s"),
        "generator / INSERT … SELECT",
    )
    .paired();
    let met = loaded.a.value >= TARGET_ROWS_PER_S;
    rep.rows.push(loaded.target("≥ 1 M rows/s", met).detail(format!(
        "the orders table of `clone::synthetic::build` from the seeded dataset's statistics at scale {scale:.2}: from \
         its COPY's start to the server's end of it, over {} COPY connections fed by one generator: generating, \
         sending and the server inserting into the table without keys or indexes (not the schema, the customers \
         table, the keys, indexes and foreign keys built after it, nor ANALYZE); {:.0} MB of COPY text; the \
         generator's own time was {:.0} % of it (median). The other side: the seed script's statement into the same \
         table shape, in a database of its own, in the same round.",
        rounds.first().map_or(0, |r| r.streams),
        super::median(&col(|r| r.mb)),
        super::median(&col(|r| r.gen_share)) * 100.0
    )));
    let generated = Row::new(
        7,
        "synthetic_orders_generation",
        "synthetic orders generation alone",
        Side::samples("generator", col(|r| r.generated), "rows/s"),
        Side::samples("server COPY FROM a file", col(|r| r.copy_file), "rows/s"),
        "generation / COPY of pre-generated rows",
    )
    .paired();
    let met = generated.a.value >= TARGET_ROWS_PER_S;
    rep.rows.push(
        generated.target("≥ 1 M rows/s", met).detail(
            "the generator's time inside the runs above (making the COPY data of each 20 000-row chunk on a blocking \
         thread, in the binary format the table goes in, the same rows), against the server loading the same rows, \
         written to a file in its data directory first in text, with COPY FROM that file into the empty table on \
         one backend: the load alone, with no client. A ratio above 1 means the generator outpaces one backend's \
         text load."
                .to_string(),
        ),
    );
}

/// An empty database `name` (dropped first).
async fn fresh_db(ctx: &Ctx, name: &str) -> Result<()> {
    drop_db(ctx, name).await?;
    let admin = connect(&ctx.server, "postgres", "admin").await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .map_err(|e| Error::db(format!("cannot create database {name}: {}", describe_pg(&e))))
}

/// The template's statistics, as `snapshot --stats-only` takes them.
async fn take_stats(ctx: &Ctx) -> Result<Stats> {
    let db = connect(&ctx.server, TEMPLATE_DB, "bench").await?;
    db.batch_execute("ANALYZE").await.map_err(|e| Error::db(format!("ANALYZE failed: {}", describe_pg(&e))))?;
    let sql = format!("SELECT ({})::text", stats::STATS_SQL);
    let json: String = db
        .query_one(&sql, &[])
        .await
        .map_err(|e| Error::db(format!("reading the statistics: {}", describe_pg(&e))))?
        .get(0);
    let schema = schema_sql(ctx)?;
    stats::from_query(&json, schema).map_err(Error::env)
}

/// `pg_dump --schema-only` of the template, as the snapshot runs it.
fn schema_sql(ctx: &Ctx) -> Result<String> {
    let Some(Tools::Local { bin_dir, socket_dir, port, .. }) = ctx.server.tools() else {
        return Err(Error::env("the bench runs on the local backend only"));
    };
    let mut cmd = Command::new(bin_dir.join("pg_dump"));
    cmd.arg("-h").arg(Path::new(&socket_dir)).args(["-p", &port.to_string(), "-U", "postgres", "-d", TEMPLATE_DB]);
    cmd.args(["--schema-only", "--no-owner", "--no-privileges", "--format=plain"]).stdin(Stdio::null());
    let out = cmd.output().map_err(|e| Error::env(format!("cannot run pg_dump: {e}")))?;
    if !out.status.success() {
        return Err(Error::env(format!("pg_dump --schema-only failed: {}", String::from_utf8_lossy(&out.stderr))));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
