//! Who is who among a rehearsal's backends: the migration's pids, the
//! workload's pids, and which class a workload session's query belongs to.
//! Filled by the workload and the migration as their sessions connect; read
//! by the lock sampler to name who waits.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use super::file::Class;

/// Who is who among the backends: the migration's pid, the workload's pids,
/// and the query text of each class (to name the class of a waiting session).
#[derive(Debug, Default)]
pub struct Roles {
    /// The migration's backends: the runner's one, or every session of a
    /// captured framework command.
    migration: Mutex<Vec<i32>>,
    workload: Mutex<HashSet<i32>>,
    class_by_sql: HashMap<String, String>,
    /// The same by pg_query fingerprint (constants ignored): a replayed
    /// statement carries its own values, not its class's example ones.
    class_by_fingerprint: HashMap<u64, String>,
    /// Per workload pid, the last query text named by fingerprint and its
    /// class: a session waits through many polls with the same text, which is
    /// parsed once, not at every poll.
    named: Mutex<HashMap<i32, (String, String)>>,
}

/// pg_query's fingerprint of `sql`, if it parses.
fn fingerprint(sql: &str) -> Option<u64> {
    pg_query::fingerprint(sql, 0, pg_query::FingerprintOptions::FULL_RELNAME).ok().map(|f| f.value)
}

impl Roles {
    pub fn new(classes: &[Class]) -> Roles {
        Roles {
            class_by_sql: classes
                .iter()
                .flat_map(|c| c.statements().into_iter().map(|s| (s.trim().to_string(), c.name.clone())))
                .collect(),
            class_by_fingerprint: classes
                .iter()
                .flat_map(|c| c.statements().into_iter().filter_map(|s| Some((fingerprint(s)?, c.name.clone()))))
                .collect(),
            ..Default::default()
        }
    }
    pub fn set_migration(&self, pid: i32) {
        *self.migration.lock().expect("roles") = vec![pid];
    }
    /// One more backend of the migration (a session a captured command opened).
    pub fn add_migration(&self, pid: i32) {
        let mut m = self.migration.lock().expect("roles");
        if !m.contains(&pid) {
            m.push(pid);
        }
    }
    pub fn migration(&self) -> Vec<i32> {
        self.migration.lock().expect("roles").clone()
    }
    pub fn add_workload(&self, pid: i32) {
        self.workload.lock().expect("roles").insert(pid);
    }
    /// What `pid` is: "migration", the class its `query` belongs to, "workload"
    /// (a workload session running something else), or `None` (not ours).
    pub fn who(&self, pid: i32, query: Option<&str>) -> Option<String> {
        if self.migration().contains(&pid) {
            return Some("migration".into());
        }
        if !self.workload.lock().expect("roles").contains(&pid) {
            return None;
        }
        let q = query.unwrap_or("").trim();
        if let Some(class) = self.class_by_sql.get(q) {
            return Some(class.clone());
        }
        let mut named = self.named.lock().expect("roles");
        if let Some((text, class)) = named.get(&pid)
            && text == q
        {
            return Some(class.clone());
        }
        let class = fingerprint(q).and_then(|f| self.class_by_fingerprint.get(&f).cloned());
        let class = class.unwrap_or_else(|| "workload".into());
        named.insert(pid, (q.to_string(), class.clone()));
        Some(class)
    }
}
