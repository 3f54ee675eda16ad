//! Classes with `target = "replica"`: each worker opens a second connection,
//! to the run database on the clone's standby (`[replica] standby`, the
//! first by default), and prepares those classes' statements there (a
//! one-statement class's, a script's, a `hold` class's, under the names the
//! worker runs them by); the rest run on the primary. A class that writes
//! cannot run on a read-only standby: `write_in` names the write, and the
//! workload file refuses the class. The standby's sessions are not registered with the run's
//! sessions (their cancel keys belong to another server): the standby is
//! disposable and stops with the clone, and a worker's kill closes them.

use pg_query::NodeEnum;

use super::file::Class;
use super::wire;
use crate::error::{Error, Result};

/// The prepared statement names of replica class `ci`, one per statement
/// (`li_<class>_<statement>`, as on the primary's connection).
pub fn statement_names(ci: usize, class: &Class) -> Vec<String> {
    (0..class.statements().len()).map(|si| format!("li_{ci}_{si}")).collect()
}

/// What in `sql` a hot standby refuses (it is read-only), or `None` when
/// each of its statements only reads: a query (not `SELECT … INTO`, not
/// `FOR UPDATE`/`FOR SHARE`), transaction control, `SET`/`SHOW`, `EXPLAIN`,
/// cursors, `LOCK` up to `ROW EXCLUSIVE`. SQL that does not parse yields
/// `None` (the file's own check names its syntax error).
pub fn write_in(sql: &str) -> Option<String> {
    let parsed = pg_query::parse(sql, 0).ok()?;
    let kinds = parsed.statement_types();
    for (i, raw) in parsed.protobuf.stmts.iter().enumerate() {
        let Some(node) = raw.stmt.as_ref().and_then(|s| s.node.as_ref()) else { continue };
        match node {
            NodeEnum::SelectStmt(s) if s.into_clause.is_some() => {
                return Some("SELECT … INTO creates a table".into());
            }
            NodeEnum::SelectStmt(s) if !s.locking_clause.is_empty() => {
                return Some("FOR UPDATE/FOR SHARE locks rows, which a standby cannot".into());
            }
            // ROW EXCLUSIVE is lock mode 3; stronger ones are refused during recovery.
            NodeEnum::LockStmt(l) if l.mode > 3 => return Some("LOCK stronger than ROW EXCLUSIVE".into()),
            NodeEnum::SelectStmt(_)
            | NodeEnum::LockStmt(_)
            | NodeEnum::TransactionStmt(_)
            | NodeEnum::VariableSetStmt(_)
            | NodeEnum::VariableShowStmt(_)
            | NodeEnum::ExplainStmt(_)
            | NodeEnum::DeclareCursorStmt(_)
            | NodeEnum::FetchStmt(_)
            | NodeEnum::ClosePortalStmt(_) => {}
            _ => {
                let kind = kinds.get(i).copied().unwrap_or("the statement");
                return Some(changed_table(&parsed).unwrap_or_else(|| format!("{kind} is not a read")));
            }
        }
    }
    // A write inside a read (a CTE, EXPLAIN ANALYZE); LOCK's table counts as DDL to the parser.
    if kinds.iter().all(|k| *k == "LockStmt") {
        return None;
    }
    changed_table(&parsed)
}

/// "it writes to t" or "it changes the definition of t", for the first table `parsed` changes.
fn changed_table(parsed: &pg_query::ParseResult) -> Option<String> {
    if let Some(t) = parsed.dml_tables().first() {
        return Some(format!("it writes to {t}"));
    }
    parsed.ddl_tables().first().map(|t| format!("it changes the definition of {t}"))
}

/// Worker `n` of `of`'s connection to the standby, with the replica classes
/// prepared; `None` when no class targets the replica.
pub fn open(
    target: Option<&crate::pg::Target>,
    (n, of): (usize, u32),
    path: &str,
    classes: &[Class],
) -> Result<Option<(wire::Conn, wire::Killer)>> {
    let Some(first) = classes.iter().find(|c| c.on_replica) else { return Ok(None) };
    let Some(target) = target else {
        return Err(Error::input(format!(
            "{path}: class {:?} has target = \"replica\", but the clone has no standby; set [replica] count \
             (or --replicas N)",
            first.name
        )));
    };
    let fail = |e: wire::DbError| Error::db(format!("cannot open workload connection {n} of {of} to the standby: {e}"));
    let mut conn = wire::Conn::open(target).map_err(fail)?;
    let killer = conn.killer().map_err(fail)?;
    for (ci, c) in classes.iter().enumerate().filter(|(_, c)| c.on_replica) {
        for (name, sql) in statement_names(ci, c).iter().zip(c.statements()) {
            conn.prepare(name, sql).map_err(|e| {
                Error::input(format!("{path}: class {:?}: the standby rejects its SQL {sql:?}: {e}", c.name))
            })?;
        }
    }
    Ok(Some((conn, killer)))
}

#[cfg(test)]
mod tests {
    use super::write_in;

    #[test]
    fn reads_pass_and_writes_are_named() {
        for read in [
            "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "BEGIN",
            "COMMIT",
            "SET LOCAL work_mem = '64MB'",
            "SHOW work_mem",
            "EXPLAIN SELECT 1",
            "LOCK TABLE orders IN ACCESS SHARE MODE",
        ] {
            assert_eq!(write_in(read), None, "{read}");
        }
        for (write, why) in [
            ("INSERT INTO t VALUES (1)", "it writes to t"),
            ("WITH d AS (DELETE FROM t RETURNING *) SELECT count(*) FROM d", "it writes to t"),
            ("CREATE TABLE t2 (a int)", "it changes the definition of t2"),
            ("SELECT * INTO t3 FROM t", "SELECT … INTO creates a table"),
            ("SELECT * FROM t WHERE id = 1 FOR UPDATE", "FOR UPDATE/FOR SHARE"),
            ("LOCK TABLE t IN ACCESS EXCLUSIVE MODE", "LOCK stronger than ROW EXCLUSIVE"),
            ("NOTIFY ch", "NotifyStmt is not a read"),
            ("VACUUM t", "t"),
        ] {
            let got = write_in(write).unwrap_or_else(|| panic!("{write} passed"));
            assert!(got.contains(why), "{write}: {got}");
        }
    }
}
