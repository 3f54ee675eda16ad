//! A logical subscriber of the run database (`[replica] logical = true`), on
//! the primary's own server: a publication of the tables the migration
//! changes (`Publication`; all the run database's tables when it names none
//! that exists),
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

/// What the publication covers.
#[derive(Debug, Clone, PartialEq)]
pub enum Publication {
    /// These tables (as `regclass` prints them on the run database).
    Tables(Vec<String>),
    /// `FOR ALL TABLES`, and why no table list.
    AllTables(String),
}

/// Publishes the tables of `run_db` (just copied from the template, nothing
/// written to it yet) that `changed` names (the migration's, see
/// `migration::tables`) and that exist, or all its tables when none does,
/// and subscribes a second copy of the template to it; returns once the
/// subscription streams. The caller ran `unsubscribe` before it copied the
/// template (a slot of an earlier run would keep the copy from being made).
pub async fn subscribe(server: &Server, run_db: &str, changed: &[String]) -> Result<Publication> {
    let run = connect(server, run_db, "admin").await?;
    let publication = publication(&run, changed).await?;
    let what = match &publication {
        Publication::Tables(t) => format!("FOR TABLE {}", t.join(", ")),
        Publication::AllTables(_) => "FOR ALL TABLES".to_string(),
    };
    run.batch_execute(&format!("CREATE PUBLICATION {PUBLICATION} {what}"))
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
    wait_streaming(&admin).await?;
    Ok(publication)
}

/// The tables of `changed` that exist on the run database as permanent
/// tables (a table the migration creates does not yet); all tables when none.
async fn publication(run: &tokio_postgres::Client, changed: &[String]) -> Result<Publication> {
    // `schema.table` as pg_query joins a RangeVar's names: each part quoted as it was written.
    let quoted: Vec<String> = changed
        .iter()
        .map(|n| n.split('.').map(|p| format!("\"{}\"", p.replace('"', "\"\""))).collect::<Vec<_>>().join("."))
        .collect();
    let rows = run
        .query(
            "SELECT DISTINCT ON (c.oid) c.oid::regclass::text, o FROM unnest($1::text[]) WITH ORDINALITY AS n(name, o) \
             JOIN pg_class c ON c.oid = to_regclass(n.name) WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p' \
             ORDER BY c.oid, o",
            &[&quoted],
        )
        .await
        .map_err(db_err("finding the migration's tables"))?;
    let mut found: Vec<(i64, String)> = rows.iter().map(|r| (r.get(1), r.get(0))).collect();
    found.sort();
    if !found.is_empty() {
        return Ok(Publication::Tables(found.into_iter().map(|(_, t)| t).collect()));
    }
    Ok(Publication::AllTables(if changed.is_empty() {
        "the migration names no table it writes to or alters before it runs".to_string()
    } else {
        format!("none of the tables the migration changes exists before it runs ({})", changed.join(", "))
    }))
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

/// The first error of the subscription's workers in `log` (the server's
/// stderr log since the subscription was made), e.g. `logical replication
/// target relation "public.orders" is missing replicated column: "note"`:
/// an `ERROR` of a process that logged starting as its apply or table
/// synchronization worker (the default `log_line_prefix`, `%m [%p] `), or,
/// under another prefix, one followed by the `CONTEXT` of applying
/// replicated changes.
pub fn first_error(log: &str) -> Option<String> {
    let lines: Vec<&str> = log.lines().collect();
    let tag = format!("worker for subscription \"{SUBSCRIPTION}\"");
    let workers: Vec<&str> = lines.iter().filter(|l| l.contains(&tag)).filter_map(|l| pid(l)).collect();
    let ours = |i: usize| {
        pid(lines[i]).is_some_and(|p| workers.contains(&p))
            || lines.get(i + 1).is_some_and(|n| n.contains("CONTEXT:") && n.contains("for replication origin"))
    };
    let i = (0..lines.len()).find(|&i| lines[i].contains(" ERROR:  ") && ours(i))?;
    Some(lines[i].split_once(" ERROR:  ")?.1.trim().to_string())
}

/// The `[pid]` of a log line under the default prefix (`%m [%p] `).
fn pid(line: &str) -> Option<&str> {
    let head = line.split_once(":  ")?.0;
    let head = head.rsplit_once(' ')?.0; // drop the level (LOG, ERROR, …)
    let inner = head.rsplit_once('[')?.1.strip_suffix(']')?;
    (!inner.is_empty() && inner.chars().all(|c| c.is_ascii_digit())).then_some(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_error_of_the_subscriptions_workers() {
        let log = "\
2026-12-02 10:01:00.100 UTC [900] ERROR:  relation \"nope\" does not exist
2026-12-02 10:01:00.200 UTC [901] LOG:  logical replication apply worker for subscription \"lockimpact_sub\" has started
2026-12-02 10:01:02.300 UTC [901] ERROR:  logical replication target relation \"public.orders\" is missing replicated column: \"note\"
2026-12-02 10:01:02.300 UTC [901] CONTEXT:  processing remote data for replication origin \"pg_16390\" during message type \"UPDATE\"
2026-12-02 10:01:07.400 UTC [950] ERROR:  something later
";
        let first = first_error(log).unwrap();
        assert_eq!(
            first,
            "logical replication target relation \"public.orders\" is missing replicated column: \"note\""
        );
        // Another prefix: the CONTEXT line names it.
        let other = log.replace("[901]", "[s:1]");
        assert_eq!(first_error(&other).unwrap(), first);
        assert_eq!(first_error("2026 [1] ERROR:  relation \"nope\" does not exist\n"), None);
    }
}
