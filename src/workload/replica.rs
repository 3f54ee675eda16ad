//! Classes with `target = "replica"`: each worker opens a second connection,
//! to the run database on the clone's standby (`[replica] standby`, the
//! first by default), and prepares those
//! classes there (under the names the worker runs them by); the rest run on
//! the primary. The standby's sessions are not registered with the run's
//! sessions (their cancel keys belong to another server): the standby is
//! disposable and stops with the clone, and a worker's kill closes them.

use super::file::Class;
use super::wire;
use crate::error::{Error, Result};

/// The prepared statement name of replica class `ci` (its only statement).
pub fn statement_name(ci: usize) -> String {
    format!("li_{ci}_0")
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
        conn.prepare(&statement_name(ci), &c.sql).map_err(|e| {
            Error::input(format!("{path}: class {:?}: the standby rejects its SQL {:?}: {e}", c.name, c.sql))
        })?;
    }
    Ok(Some((conn, killer)))
}
