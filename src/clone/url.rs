//! The `url` backend: an existing server the user points at (a cloud or thin
//! clone), instead of a disposable one. The migration runs on the database in
//! the URL itself, so it is guarded three ways: the backend needs the
//! explicit `--allow-existing-server` flag, the database must carry an opt-in
//! marker its owner set (`ALTER DATABASE … SET lockimpact.rehearsal = on`),
//! and a server that looks like production — a primary with streaming
//! replicas attached, or a standby — is refused. Nothing is stopped or
//! removed afterwards: the server is not ours. Passwords are never shown.

use std::str::FromStr;

use super::ServerHandle;
use super::template::{Dataset, connect, describe_dataset};
use crate::error::{Error, Result, describe_pg};
use crate::snapshot::redact;

/// The setting a database's owner sets to let lockimpact rehearse on it.
pub const MARKER: &str = "lockimpact.rehearsal";

pub struct UrlServer {
    config: tokio_postgres::Config,
    dbname: String,
    /// The URL with its password masked, for messages and the report.
    shown: String,
}

impl UrlServer {
    pub fn new(url: &str) -> Result<UrlServer> {
        let shown = redact(url);
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| Error::input(format!("clone.url {shown}: not a PostgreSQL connection URL: {e}")))?;
        let dbname = config.get_dbname().map(str::to_string).ok_or_else(|| {
            Error::input(format!("clone.url {shown}: name the database to rehearse on, e.g. postgresql://host/dbname"))
        })?;
        Ok(UrlServer { config, dbname, shown })
    }

    pub fn location(&self) -> String {
        format!("existing database {}", self.shown)
    }
}

impl ServerHandle for UrlServer {
    fn config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut c = self.config.clone();
        c.dbname(dbname);
        c
    }

    fn describe(&self) -> String {
        format!("existing server {}", self.shown)
    }

    fn keep(&mut self, _dbname: &str) -> String {
        format!("{} is not lockimpact's: it keeps running as it was", self.shown)
    }

    fn log_tail(&self) -> String {
        "(the server's log is not available on the url backend)".into()
    }

    fn tools(&self) -> Option<super::restore::Tools> {
        None
    }

    fn existing_database(&self) -> Option<String> {
        Some(self.dbname.clone())
    }
}

/// Checks that the database may be rehearsed on, and lists its tables.
pub async fn inspect(server: &super::Server, dbname: &str) -> Result<Dataset> {
    let db = connect(server, dbname, "admin").await?;
    let row = db
        .query_one(
            "SELECT pg_is_in_recovery(), (SELECT count(*) FROM pg_stat_replication), \
             coalesce(current_setting($1, true), '')",
            &[&MARKER],
        )
        .await
        .map_err(|e| Error::db(describe_pg(&e)))?;
    let (standby, replicas, marker): (bool, i64, String) = (row.get(0), row.get(1), row.get(2));
    let shown = server.describe();
    if standby {
        return Err(Error::env(format!(
            "{shown}: this server is a standby (in recovery); a migration cannot run there. Point clone.url at a \
             writable clone of production, never at production itself."
        )));
    }
    if replicas > 0 {
        return Err(Error::env(format!(
            "{shown}: this server is a primary with {replicas} streaming replica(s) attached, which is what \
             production looks like; lockimpact refuses to run a migration on it. Rehearse on a clone (a snapshot \
             restore, a thin clone) with no replicas attached, or use the local or docker backend."
        )));
    }
    if !matches!(marker.as_str(), "on" | "true" | "1" | "yes") {
        return Err(Error::env(format!(
            "{shown}: database {dbname} has not opted in to rehearsals, and the migration would change it. If it \
             is a disposable clone, mark it as one (as its owner or a superuser), then run again:\n  \
             ALTER DATABASE {dbname} SET {MARKER} = on;"
        )));
    }
    let (tables, bytes) = describe_dataset(&db, false).await?;
    Ok(Dataset {
        tables,
        seed_time: std::time::Duration::ZERO,
        restore_time: None,
        bytes: Some(bytes),
        notes: vec![format!("rehearsed on the existing database {dbname}; the migration changed it")],
    })
}
