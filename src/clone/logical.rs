//! A logical subscriber of the run database (`[replica] logical = true`), on
//! the primary's own server: a publication of all the run database's tables,
//! a logical slot made first (a subscription on the same cluster that made
//! its own slot would wait for its own transaction to end), and a second
//! database, a copy of the template like the run database, subscribed with
//! `copy_data = false`. The primary runs with `wal_level = logical`
//! (`scenario::replica` adds it). Logical replication carries rows, not DDL:
//! a migration's `ALTER TABLE … ADD COLUMN` followed by writes to the table
//! breaks the subscriber, which the replica sampler reports.
//!
//! `unsubscribe` removes all of it (the subscription before its database,
//! the slot with it) and is run before each rehearsal copies the template
//! (a slot of the old run database would keep it from being dropped) and
//! after it; the server is removed at the end anyway.

use std::time::{Duration, Instant};

use tokio_postgres::config::Host;

use super::Server;
use super::template::connect;
use crate::error::{Error, Result, describe_pg};

/// The subscription, its slot, and its `application_name` on the primary.
pub const SUBSCRIPTION: &str = "lockimpact_sub";
/// The subscriber's database.
pub const SUBSCRIBER_DB: &str = "lockimpact_sub";
const PUBLICATION: &str = "lockimpact_pub";

/// How long the subscription may take to start streaming.
const START_TIMEOUT: Duration = Duration::from_secs(60);

fn db_err(what: &'static str) -> impl Fn(tokio_postgres::Error) -> Error {
    move |e| Error::db(format!("logical subscriber ([replica] logical = true): {what}: {}", describe_pg(&e)))
}

/// Publishes `run_db` (just copied from the template, nothing written to it
/// yet) and subscribes a second copy of the template to it; returns once the
/// subscription streams. The caller ran `unsubscribe` before it copied the
/// template (a slot of an earlier run would keep the copy from being made).
pub async fn subscribe(server: &Server, run_db: &str) -> Result<()> {
    let run = connect(server, run_db, "admin").await?;
    run.batch_execute(&format!("CREATE PUBLICATION {PUBLICATION} FOR ALL TABLES"))
        .await
        .map_err(db_err("CREATE PUBLICATION"))?;
    run.execute("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", &[&SUBSCRIPTION])
        .await
        .map_err(db_err("creating the slot"))?;
    super::template::fresh_copy(server, SUBSCRIBER_DB).await?;
    let admin = connect(server, "postgres", "admin").await?;
    let sub = connect(server, SUBSCRIBER_DB, "admin").await?;
    let conninfo = conninfo(server, run_db).replace('\'', "''");
    sub.batch_execute(&format!(
        "CREATE SUBSCRIPTION {SUBSCRIPTION} CONNECTION '{conninfo}' PUBLICATION {PUBLICATION} \
         WITH (create_slot = false, slot_name = '{SUBSCRIPTION}', copy_data = false)"
    ))
    .await
    .map_err(db_err("CREATE SUBSCRIPTION"))?;
    wait_streaming(&admin).await
}

/// The publisher as the subscriber's apply worker reaches it: the server's
/// own socket (or host) and port, as `postgres`.
fn conninfo(server: &Server, run_db: &str) -> String {
    let target = server.target(run_db);
    let c = &target.config;
    let host = match c.get_hosts().first() {
        Some(Host::Unix(dir)) => dir.display().to_string(),
        Some(Host::Tcp(h)) => h.clone(),
        None => "localhost".into(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432);
    let mut s = format!("host={host} port={port} dbname={run_db} user={}", c.get_user().unwrap_or("postgres"));
    if let Some(p) = c.get_password() {
        s.push_str(&format!(" password={}", String::from_utf8_lossy(p)));
    }
    s
}

/// Waits until the slot is in use by the subscription's apply worker.
async fn wait_streaming(admin: &tokio_postgres::Client) -> Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let active: bool = admin
            .query_one(
                "SELECT coalesce(bool_or(active), false) FROM pg_replication_slots WHERE slot_name = $1",
                &[&SUBSCRIPTION],
            )
            .await
            .map_err(db_err("reading pg_replication_slots"))?
            .get(0);
        if active {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::env(format!(
                "logical subscriber ([replica] logical = true): the subscription does not stream after {} s; \
                 the server's log says why",
                START_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Removes the subscription, its slot and its database, if there: the
/// subscription is disabled and detached from its slot before it is
/// dropped, and the slot dropped once its walsender let go of it.
pub async fn unsubscribe(server: &Server) -> Result<()> {
    let admin = connect(server, "postgres", "admin").await?;
    let exists: bool = admin
        .query_one("SELECT count(*) > 0 FROM pg_database WHERE datname = $1", &[&SUBSCRIBER_DB])
        .await
        .map_err(db_err("reading pg_database"))?
        .get(0);
    if exists {
        let sub = connect(server, SUBSCRIBER_DB, "admin").await?;
        let found: bool = sub
            .query_one("SELECT count(*) > 0 FROM pg_subscription WHERE subname = $1", &[&SUBSCRIPTION])
            .await
            .map_err(db_err("reading pg_subscription"))?
            .get(0);
        if found {
            sub.batch_execute(&format!(
                "ALTER SUBSCRIPTION {SUBSCRIPTION} DISABLE; ALTER SUBSCRIPTION {SUBSCRIPTION} SET (slot_name = NONE); \
                 DROP SUBSCRIPTION {SUBSCRIPTION}"
            ))
            .await
            .map_err(db_err("DROP SUBSCRIPTION"))?;
        }
        drop(sub);
    }
    drop_slot(&admin).await?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {SUBSCRIBER_DB} WITH (FORCE)"))
        .await
        .map_err(db_err("dropping the subscriber's database"))
}

/// Drops the slot; a walsender may hold it a moment after its subscription was disabled.
async fn drop_slot(admin: &tokio_postgres::Client) -> Result<()> {
    let sql = "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match admin.execute(sql, &[&SUBSCRIPTION]).await {
            Ok(_) => return Ok(()),
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => return Err(db_err("dropping the slot")(e)),
        }
    }
}
