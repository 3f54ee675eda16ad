//! The state of a server that one rehearsal can change for the next: its
//! settings as a new session sees them (and `ALTER SYSTEM` changes not yet
//! reloaded), per-database and per-role settings, roles, databases,
//! tablespaces, and the template database's schema. `compare` captures it once
//! the template is built and checks it after each candidate that would leave
//! the server to the next one: a migration that ran `ALTER SYSTEM` and a
//! reload, dropped the template or created a role would change the next
//! candidate's run, so that one gets a fresh server. The run database is left
//! out (each candidate gets a fresh copy). Rows written into the template from
//! another database (dblink) are not seen: only its schema is compared.

use std::collections::BTreeMap;

use super::Server;
use super::template::{TEMPLATE_DB, connect};
use crate::error::{Error, Result, describe_pg};

/// Server-wide parts: (name in messages, query of key → value rows).
const SERVER_PARTS: &[(&str, &str)] = &[
    ("setting", "SELECT name, coalesce(setting, '') FROM pg_settings"),
    (
        "setting in a configuration file",
        "SELECT coalesce(sourcefile, '') || ':' || name, coalesce(setting, '') || coalesce(' ' || error, '') \
         FROM pg_file_settings",
    ),
    (
        "database/role setting",
        "SELECT coalesce(d.datname, '(all)') || '/' || coalesce(r.rolname, '(all)'), \
         array_to_string(s.setconfig, ', ') FROM pg_db_role_setting s \
         LEFT JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole \
         WHERE d.datname IS DISTINCT FROM 'lockimpact_run'",
    ),
    (
        "role",
        "SELECT rolname, concat_ws(',', rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, \
         rolreplication, rolbypassrls, rolconnlimit) FROM pg_roles",
    ),
    (
        "database",
        "SELECT datname, concat_ws(',', oid, datistemplate, datallowconn, datconnlimit, datacl::text) \
         FROM pg_database WHERE datname <> 'lockimpact_run'",
    ),
    ("tablespace", "SELECT spcname, pg_tablespace_location(oid) FROM pg_tablespace"),
];

/// The template's schema: relations with their columns, constraints, extensions.
const TEMPLATE_PARTS: &[(&str, &str)] = &[
    (
        "template relation",
        "SELECT c.oid::regclass::text, concat_ws(',', c.relkind, c.relfilenode, (SELECT string_agg(a.attname \
         || ':' || format_type(a.atttypid, a.atttypmod) || ':' || a.attnotnull, ',' ORDER BY a.attnum) \
         FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'",
    ),
    (
        "template constraint",
        "SELECT conrelid::regclass::text || '.' || conname, concat_ws(',', contype, convalidated) FROM pg_constraint \
         WHERE connamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)",
    ),
    ("template extension", "SELECT extname, extversion FROM pg_extension"),
];

/// What `capture` saw: per part, key → value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerState {
    parts: BTreeMap<&'static str, BTreeMap<String, String>>,
}

impl ServerState {
    /// Reads the state of `server` (two short connections: to `postgres`
    /// and to the template).
    pub async fn capture(server: &Server) -> Result<ServerState> {
        let mut parts = BTreeMap::new();
        let admin = connect(server, "postgres", "state").await?;
        for (name, sql) in SERVER_PARTS {
            parts.insert(*name, read(&admin, name, sql).await?);
        }
        drop(admin);
        let template = parts.get("database").is_some_and(|d| d.contains_key(TEMPLATE_DB));
        if template {
            let db = connect(server, TEMPLATE_DB, "state").await?;
            for (name, sql) in TEMPLATE_PARTS {
                parts.insert(*name, read(&db, name, sql).await?);
            }
        }
        Ok(ServerState { parts })
    }

    /// How `server` differs from this state now, for people; empty when it
    /// does not. A state that cannot be read counts as changed.
    pub async fn changes_since(&self, server: &Server) -> Vec<String> {
        match ServerState::capture(server).await {
            Ok(now) => self.diff(&now),
            Err(e) => vec![format!("its state cannot be read: {}", e.message)],
        }
    }

    fn diff(&self, now: &ServerState) -> Vec<String> {
        let empty = BTreeMap::new();
        let mut out = Vec::new();
        let names: std::collections::BTreeSet<&&str> = self.parts.keys().chain(now.parts.keys()).collect();
        for name in names {
            let (a, b) = (self.parts.get(*name).unwrap_or(&empty), now.parts.get(*name).unwrap_or(&empty));
            for (k, v) in a {
                match b.get(k) {
                    None if *name == "database" && k == TEMPLATE_DB => {
                        out.push(format!("the template database {TEMPLATE_DB} was dropped"))
                    }
                    None => out.push(format!("{name} {k} was removed")),
                    Some(w) if w != v => out.push(format!("{name} {k} changed from {v:?} to {w:?}")),
                    Some(_) => {}
                }
            }
            out.extend(b.keys().filter(|k| !a.contains_key(*k)).map(|k| format!("{name} {k} was added")));
        }
        if out.len() > 5 {
            let more = out.len() - 4;
            out.truncate(4);
            out.push(format!("{more} more changes"));
        }
        out
    }
}

async fn read(db: &tokio_postgres::Client, name: &str, sql: &str) -> Result<BTreeMap<String, String>> {
    let rows = db
        .query(sql, &[])
        .await
        .map_err(|e| Error::db(format!("cannot read the server's {name}s: {}", describe_pg(&e))))?;
    Ok(rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, Option<String>>(1).unwrap_or_default())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(parts: &[(&'static str, &[(&str, &str)])]) -> ServerState {
        ServerState {
            parts: parts
                .iter()
                .map(|(n, kv)| (*n, kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
                .collect(),
        }
    }

    #[test]
    fn differences_are_named() {
        let a = state(&[("setting", &[("work_mem", "4096")]), ("database", &[(TEMPLATE_DB, "1"), ("postgres", "5")])]);
        let b = state(&[("setting", &[("work_mem", "79872")]), ("database", &[("postgres", "5"), ("x", "9")])]);
        assert_eq!(
            a.diff(&b),
            vec![
                format!("the template database {TEMPLATE_DB} was dropped"),
                "database x was added".to_string(),
                "setting work_mem changed from \"4096\" to \"79872\"".to_string(),
            ]
        );
        assert!(a.diff(&a).is_empty());
    }
}
