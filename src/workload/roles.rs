//! Who is who among a rehearsal's backends: the migration's pids, the
//! workload's pids, and which class a workload session's query belongs to.
//! Filled by the workload and the migration as their sessions connect; read
//! by the lock sampler to name who waits.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use super::file::Class;
use crate::run_record::Who;

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
    named: Mutex<HashMap<i32, (String, Who)>>,
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
    /// What `pid` is: the migration, the class its `query` belongs to, a
    /// workload session running something else, or `None` (not ours).
    pub fn who(&self, pid: i32, query: Option<&str>) -> Option<Who> {
        if self.migration().contains(&pid) {
            return Some(Who::Migration);
        }
        if !self.workload.lock().expect("roles").contains(&pid) {
            return None;
        }
        let q = query.unwrap_or("").trim();
        if let Some(class) = self.class_by_sql.get(q) {
            return Some(Who::Class(class.clone()));
        }
        let mut named = self.named.lock().expect("roles");
        if let Some((text, who)) = named.get(&pid)
            && text == q
        {
            return Some(who.clone());
        }
        let class = fingerprint(q).and_then(|f| self.class_by_fingerprint.get(&f).cloned());
        let who = class.map_or(Who::Workload, Who::Class);
        named.insert(pid, (q.to_string(), who.clone()));
        Some(who)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replayed_statement_is_named_by_its_recorded_class() {
        // A replay's class holds one example of its statements; each replayed
        // statement carries its own values.
        let class = Class {
            name: "orders_by_id".into(),
            sql: "SELECT * FROM orders WHERE id = 1".into(),
            pace: crate::workload::file::Pace::Weight(1.0),
            params: Vec::new(),
            hold: None,
            recorded_rate: None,
            peak_rate: None,
            script: None,
            on_replica: false,
        };
        let roles = Roles::new(&[class]);
        roles.add_workload(42);
        assert_eq!(
            roles.who(42, Some("SELECT * FROM orders WHERE id = 912")).map(|w| w.to_string()).as_deref(),
            Some("orders_by_id")
        );
    }
}
