//! The `url` backend: an existing server the user points at (a cloud or thin
//! clone), instead of a disposable one. The migration runs on the database in
//! the URL itself, so it is guarded three ways: the backend needs the
//! explicit `--allow-existing-server` flag, the database must carry an opt-in
//! marker its owner set (`ALTER DATABASE … SET lockimpact.rehearsal = on`),
//! and a server that looks like production — a primary with streaming
//! replicas attached, or a standby — is refused. Nothing is stopped or
//! removed afterwards: the server is not ours. Passwords are never shown.

use super::ServerHandle;
use super::template::{Dataset, connect, describe_dataset};
use crate::clone::plan::Backend;
use crate::error::{Error, Result, describe_pg};
use crate::pg::conninfo::Source;
use crate::pg::{ConnInfo, Target, Tls};

/// The setting a database's owner sets to let lockimpact rehearse on it.
pub const MARKER: &str = "lockimpact.rehearsal";

pub struct UrlServer {
    /// The resolved settings; shown with the password masked.
    conn: ConnInfo,
    target: Target,
}

impl UrlServer {
    /// Reads the URL as libpq would (environment, service file and password
    /// file included) and prepares its TLS.
    pub fn new(url: &str) -> Result<UrlServer> {
        let conn = ConnInfo::resolve(url).map_err(|e| Error::input(format!("--url/clone.url: {e}")))?;
        if conn.source("dbname") == Some(&Source::Default) {
            return Err(Error::input(format!(
                "--url/clone.url {conn}: name the database to rehearse on, e.g. postgresql://host/dbname \
                 (or set PGDATABASE)"
            )));
        }
        let target = conn.target().map_err(|e| Error::input(format!("--url/clone.url {conn}: {e}")))?;
        Ok(UrlServer { conn, target })
    }

    pub fn location(&self) -> String {
        format!("existing database {}", self.conn)
    }
}

impl ServerHandle for UrlServer {
    fn backend(&self) -> Backend {
        Backend::Url
    }

    fn config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut c = self.target.config.clone();
        c.dbname(dbname);
        c
    }

    fn tls(&self) -> Tls {
        self.target.tls.clone()
    }

    fn describe(&self) -> String {
        format!("existing server {}", self.conn)
    }

    fn kind(&self) -> String {
        "an existing server (url backend)".into()
    }

    fn keep(&mut self, _dbname: &str) -> String {
        format!("{} is not lockimpact's: --keep leaves it as it is", self.conn)
    }

    fn log_tail(&self) -> String {
        "(the server's log is not available on the url backend)".into()
    }

    fn tools(&self) -> Option<super::restore::Tools> {
        None
    }

    fn existing_database(&self) -> Option<String> {
        Some(self.conn.dbname().to_string())
    }
}

/// Whether the database's own settings (`ALTER DATABASE … SET`, for every
/// role: `pg_db_role_setting` with role 0) turn the marker on. A value set
/// by the client (`options=-c …`) or for a role (`ALTER ROLE … SET`) does not
/// count: neither is the database's owner opting in.
fn opted_in(setconfig: &[String]) -> bool {
    setconfig.iter().any(|entry| {
        entry.split_once('=').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case(MARKER)
                && ["on", "true", "yes", "1"].iter().any(|t| v.trim().eq_ignore_ascii_case(t))
        })
    })
}

/// Checks that the database may be rehearsed on, and lists its tables.
pub async fn inspect(server: &super::Server, dbname: &str, say: &dyn Fn(&str)) -> Result<Dataset> {
    let db = connect(server, dbname, "admin").await?;
    let row = db
        .query_one(
            "SELECT pg_is_in_recovery(), (SELECT count(*) FROM pg_stat_replication), \
             coalesce((SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase \
                       WHERE d.datname = current_database() AND s.setrole = 0), '{}'::text[]), \
             current_user::text, current_setting('is_superuser') = 'on'",
            &[],
        )
        .await
        .map_err(|e| Error::db(describe_pg(&e)))?;
    let (standby, replicas, setconfig): (bool, i64, Vec<String>) = (row.get(0), row.get(1), row.get(2));
    let (role, superuser): (String, bool) = (row.get(3), row.get(4));
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
    if !opted_in(&setconfig) {
        return Err(Error::env(format!(
            "{shown}: database {dbname} has not opted in to rehearsals, and the migration would change it. If it \
             is a disposable clone, mark it as one (as its owner or a superuser), then run again:\n  \
             ALTER DATABASE {dbname} SET {MARKER} = on;\n\
             (A value set for a role, ALTER ROLE … SET, or by the client, options=-c …, does not count.)"
        )));
    }
    let mut notes = vec![format!("rehearsed on the existing database {dbname}; the migration changed it")];
    if superuser {
        let note = format!(
            "the URL's role {role} is a superuser: it can change the whole server, so SQL that reaches beyond \
             database {dbname} (ALTER SYSTEM, other databases, roles, programs, files of the host) runs only with \
             --allow-server-wide or --allow-host-access"
        );
        say(&format!("note: {note}"));
        notes.push(note);
    }
    let (tables, bytes) = describe_dataset(&db, false).await?;
    Ok(Dataset { tables, seed_time: std::time::Duration::ZERO, restore_time: None, bytes: Some(bytes), notes })
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_database_setting_opts_in() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(super::opted_in(&s(&["work_mem=64MB", "lockimpact.rehearsal=on"])));
        assert!(super::opted_in(&s(&["lockimpact.rehearsal=TRUE"])));
        assert!(!super::opted_in(&s(&["lockimpact.rehearsal=off"])));
        assert!(!super::opted_in(&s(&[])));
    }
}
