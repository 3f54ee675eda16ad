//! The dataset: the seed script builds it once in a template database (or
//! `restore` restores a pg_dump snapshot into it), then ANALYZE; every
//! rehearsal runs on a fresh copy made with `CREATE DATABASE … TEMPLATE`, so
//! runs start from identical data.

use std::path::Path;
use std::time::{Duration, Instant};

use super::Server;
use crate::error::{Error, Result, describe_pg};
use crate::pg::Target;
pub use crate::run_record::TableInfo;

pub const TEMPLATE_DB: &str = "lockimpact_template";

#[derive(Debug, Clone)]
pub struct Dataset {
    pub tables: Vec<TableInfo>,
    pub seed_time: Duration,
    /// Time to restore the dump (pg_restore or psql, extensions included), when restored.
    pub restore_time: Option<Duration>,
    /// Size of the template database, bytes.
    pub bytes: Option<i64>,
    /// Things the user should know about how the dataset was built.
    pub notes: Vec<String>,
}

/// Where the template database's data comes from.
pub enum Source<'a> {
    /// `snapshot.dump`: a pg_dump snapshot to restore.
    Dump(&'a super::restore::DumpPlan),
    /// `snapshot.seed`: a seed script (its path, and its text with `{{vars}}` rendered).
    Seed { path: &'a std::path::Path, sql: &'a str },
    /// `snapshot.synthetic`: rows generated from planner statistics.
    Synthetic(&'a crate::clone::synthetic::SyntheticPlan),
}

/// Builds the template database from `source`: restores the dump, or runs the seed script.
pub async fn prepare(server: &Server, source: Source<'_>, say: &(dyn Fn(&str) + Sync)) -> Result<Dataset> {
    match source {
        Source::Dump(dump) => super::restore::restore(server, dump, say).await,
        Source::Seed { path, sql } => {
            say(&format!("seeding the template from {}", path.display()));
            build(server, sql, path).await
        }
        Source::Synthetic(plan) => synthetic(server, plan, say).await,
    }
}

/// Builds the template database from planner statistics, then ANALYZE.
async fn synthetic(
    server: &Server,
    plan: &crate::clone::synthetic::SyntheticPlan,
    say: &(dyn Fn(&str) + Sync),
) -> Result<Dataset> {
    let started = Instant::now();
    say(&format!("generating the template from the statistics in {} at scale {}", plan.path.display(), plan.scale));
    create_template(server).await?;
    let generated = crate::clone::synthetic::build(&server.target(TEMPLATE_DB), plan, say).await?;
    let db = connect(server, TEMPLATE_DB, "seed").await?;
    db.batch_execute("ANALYZE").await.map_err(|e| Error::db(format!("ANALYZE failed: {}", describe_pg(&e))))?;
    let (tables, bytes) = describe_dataset(&db, true).await?;
    say(&format!(
        "generated {} rows from the statistics ({:.0} rows/s generated and loaded), analyzed",
        generated.rows,
        generated.rows as f64 / generated.load_time.as_secs_f64().max(1e-6)
    ));
    Ok(Dataset { tables, seed_time: started.elapsed(), restore_time: None, bytes: Some(bytes), notes: Vec::new() })
}

/// Connects to one database of the server for `purpose` (shown as
/// `application_name` lockimpact-<purpose>); the connection task is spawned.
pub async fn connect(server: &Server, dbname: &str, purpose: &str) -> Result<tokio_postgres::Client> {
    if server.backend() != crate::clone::plan::Backend::Url {
        return connect_with(server.target(dbname), purpose).await;
    }
    // The user's own server: name it, keep libpq's cause, say what to check.
    connect_to(server.target(dbname), purpose, &server.describe()).await.map_err(|e| {
        e.detail(
            "check the URL's host, port, database and credentials, and that the server accepts connections \
             from this machine"
                .to_string(),
        )
    })
}

/// `connect` with the connection settings (and TLS) themselves.
pub async fn connect_with(target: Target, purpose: &str) -> Result<tokio_postgres::Client> {
    connect_to(target, purpose, "the clone").await
}

/// Opens a connection to `whose` server; the error keeps libpq's cause.
async fn connect_to(mut target: Target, purpose: &str, whose: &str) -> Result<tokio_postgres::Client> {
    target.config.application_name(format!("lockimpact-{purpose}"));
    let dbname = target.config.get_dbname().unwrap_or("postgres").to_string();
    target.connect().await.map_err(|e| {
        Error::db(format!("cannot open the {purpose} connection to database {dbname} of {whose}: {}", describe_pg(&e)))
    })
}

/// Creates the (empty) template database.
pub async fn create_template(server: &Server) -> Result<()> {
    let admin = connect(server, "postgres", "admin").await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {TEMPLATE_DB}"))
        .await
        .map_err(|e| Error::db(format!("cannot create the template database: {}", describe_pg(&e))))
}

/// Builds the template database from the seed script, then ANALYZE.
pub async fn build(server: &Server, seed_sql: &str, seed_path: &Path) -> Result<Dataset> {
    let started = Instant::now();
    create_template(server).await?;
    let db = connect(server, TEMPLATE_DB, "seed").await?;
    db.batch_execute(seed_sql).await.map_err(|e| {
        let line = e
            .as_db_error()
            .and_then(|d| match d.position() {
                Some(tokio_postgres::error::ErrorPosition::Original(p)) => Some(*p as usize),
                _ => None,
            })
            .map(|p| seed_sql.chars().take(p).filter(|&c| c == '\n').count() + 1);
        let at = line.map(|l| format!(":{l}")).unwrap_or_default();
        Error::input(format!("{}{at}: the seed script failed: {}", seed_path.display(), describe_pg(&e)))
    })?;
    db.batch_execute("ANALYZE").await.map_err(|e| Error::db(format!("ANALYZE failed: {}", describe_pg(&e))))?;
    let (tables, bytes) = describe_dataset(&db, true).await?;
    if tables.is_empty() {
        return Err(Error::input(format!(
            "{}: the seed script created no tables; it must build the dataset the workload and migration use",
            seed_path.display()
        )));
    }
    Ok(Dataset { tables, seed_time: started.elapsed(), restore_time: None, bytes: Some(bytes), notes: Vec::new() })
}

/// Each user table's rows and size, largest first, and the database's size.
/// Rows are counted when `exact`, else read from the planner's estimate
/// (`pg_class.reltuples`, no scan: for a database that is not ours).
pub async fn describe_dataset(db: &tokio_postgres::Client, exact: bool) -> Result<(Vec<TableInfo>, i64)> {
    let rows = db
        .query(
            "SELECT c.oid::regclass::text, pg_total_relation_size(c.oid), greatest(c.reltuples, 0)::int8 FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r','p','m') AND n.nspname NOT IN ('pg_catalog','information_schema') \
             AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 2 DESC, 1",
            &[],
        )
        .await
        .map_err(|e| Error::db(describe_pg(&e)))?;
    let mut tables = Vec::new();
    for r in rows {
        let name: String = r.get(0);
        let count: i64 = if exact {
            db.query_one(&format!("SELECT count(*) FROM {name}"), &[])
                .await
                .map_err(|e| Error::db(describe_pg(&e)))?
                .get(0)
        } else {
            r.get(2)
        };
        tables.push(TableInfo { name, rows: count, bytes: r.get(1) });
    }
    let bytes: i64 = db
        .query_one("SELECT pg_database_size(current_database())", &[])
        .await
        .map_err(|e| Error::db(describe_pg(&e)))?
        .get(0);
    Ok((tables, bytes))
}

/// Makes a fresh copy of the template; returns how long the copy took.
pub async fn fresh_copy(server: &Server, name: &str) -> Result<Duration> {
    let started = Instant::now();
    let admin = connect(server, "postgres", "admin").await?;
    let v: i32 = admin
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(|e| Error::db(describe_pg(&e)))?
        .get(0);
    // FILE_COPY (15+) copies files instead of WAL-logging every block: much faster for a big dataset.
    let strategy = if v >= 150000 { " STRATEGY = FILE_COPY" } else { "" };
    for sql in
        [format!("DROP DATABASE IF EXISTS {name}"), format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}{strategy}")]
    {
        admin
            .batch_execute(&sql)
            .await
            .map_err(|e| Error::db(format!("cannot copy the template database: {}", describe_pg(&e))))?;
    }
    Ok(started.elapsed())
}
