//! What a migration leaves in the schema: the user objects of the run
//! database (relations, columns, constraints, triggers, functions, types)
//! with what matters about each (a column's type and nullability, a
//! constraint not validated, an index left invalid), read before the
//! migration and after a failure or a rollback, and compared (`changes`).

use std::collections::BTreeMap;

use tokio_postgres::Client;

use crate::error::{Error, Result, describe_pg};
pub use crate::run_record::SchemaChange as Change;

/// Object → its detail (`text NOT NULL`, `CHECK (…) NOT VALID`, `INVALID …`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaState(BTreeMap<String, String>);

/// Schemas that hold no user object.
const USER: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' \
     AND n.nspname NOT LIKE 'pg_temp%'";

/// One query: (object, detail) for every user object.
fn objects_sql() -> String {
    format!(
        "SELECT CASE c.relkind WHEN 'r' THEN 'table ' WHEN 'p' THEN 'table ' WHEN 'i' THEN 'index ' \
           WHEN 'I' THEN 'index ' WHEN 'S' THEN 'sequence ' WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view ' \
           ELSE 'relation ' END || c.oid::regclass::text, \
         CASE WHEN i.indisvalid IS FALSE THEN 'INVALID (an interrupted CREATE INDEX CONCURRENTLY leaves it)' \
           ELSE '' END \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_index i ON i.indexrelid = c.oid \
         WHERE {USER} AND c.relkind IN ('r','p','i','I','S','v','m') \
       UNION ALL \
       SELECT 'column ' || c.oid::regclass::text || '.' || quote_ident(a.attname), \
         format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE {USER} AND c.relkind IN ('r','p') AND a.attnum > 0 AND NOT a.attisdropped \
       UNION ALL \
       SELECT 'constraint ' || quote_ident(co.conname) || coalesce(' on ' || co.conrelid::regclass::text, ''), \
         pg_get_constraintdef(co.oid) \
         FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace WHERE {USER} \
       UNION ALL \
       SELECT 'trigger ' || quote_ident(t.tgname) || ' on ' || t.tgrelid::regclass::text, '' \
         FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE {USER} AND NOT t.tgisinternal \
       UNION ALL \
       SELECT 'function ' || p.oid::regprocedure::text, '' \
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {USER} \
       UNION ALL \
       SELECT 'type ' || t.oid::regtype::text, '' \
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
         WHERE {USER} AND t.typtype IN ('e','d','c') AND (t.typrelid = 0 OR \
           (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')"
    )
}

impl SchemaState {
    /// The user objects of the database `client` is connected to.
    pub async fn read(client: &Client) -> Result<SchemaState> {
        let rows = client
            .query(&objects_sql(), &[])
            .await
            .map_err(|e| Error::db(format!("cannot read the schema's objects: {}", describe_pg(&e))))?;
        Ok(SchemaState(rows.iter().map(|r| (r.get(0), r.get(1))).collect()))
    }

    /// What differs in `self` from `before`, in object order.
    pub fn changes(&self, before: &SchemaState) -> Vec<Change> {
        let mut out = Vec::new();
        for (object, detail) in &self.0 {
            match before.0.get(object) {
                None => out.push(Change::Added { object: object.clone(), detail: detail.clone() }),
                Some(b) if b != detail => {
                    out.push(Change::Changed { object: object.clone(), before: b.clone(), after: detail.clone() })
                }
                Some(_) => {}
            }
        }
        for (object, detail) in &before.0 {
            if !self.0.contains_key(object) {
                out.push(Change::Removed { object: object.clone(), detail: detail.clone() });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(items: &[(&str, &str)]) -> SchemaState {
        SchemaState(items.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect())
    }

    #[test]
    fn changes_name_what_was_added_removed_and_changed() {
        let before = state(&[("table orders", ""), ("column orders.note", "text"), ("index i", "")]);
        let after =
            state(&[("table orders", ""), ("column orders.note", "text NOT NULL"), ("trigger t on orders", "")]);
        let d: Vec<String> = after.changes(&before).iter().map(Change::describe).collect();
        assert_eq!(
            d,
            ["changed column orders.note: text → text NOT NULL", "added trigger t on orders", "removed index i"]
        );
        assert!(before.changes(&before).is_empty());
    }
}
