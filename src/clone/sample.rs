//! `[snapshot] sample`: a restored dump thinned to a fraction of its rows,
//! consistently across foreign keys, in the template before ANALYZE (what
//! `run --scales` sizes a dump with). Each table keeps the rows whose hash
//! of the whole row falls under the fraction, and every row that a row
//! kept in a referencing table points at, so no foreign key is left
//! dangling. Tables are thinned children first (a parent then keeps only
//! what its thinned children need); in any order, keeping what the
//! referencing rows present at the time point at stays consistent, so
//! cycles cost only thinness. Triggers do not fire (`session_replication_role
//! = replica`); the tables are then rewritten (`VACUUM FULL`), so a scan
//! reads the sample's pages, not the dump's. Deterministic: the same dump
//! and fraction keep the same rows.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result, describe_pg};

/// A foreign key: the referencing table and columns, the referenced ones.
struct ForeignKey {
    child: String,
    columns: Vec<String>,
    parent_columns: Vec<String>,
}

/// Thins the database `db` is connected to (superuser) to `fraction` of
/// each table's rows, plus the parents its kept rows need; returns the
/// rows removed (the DELETEs' counts: no table is scanned to count).
pub async fn thin(db: &tokio_postgres::Client, fraction: f64) -> Result<u64> {
    let fail = |what: &str, e: tokio_postgres::Error| {
        Error::db(format!("sampling the dump (snapshot.sample): {what}: {}", describe_pg(&e)))
    };
    let tables: Vec<String> = db
        .query(
            "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r','p') AND NOT c.relispartition \
             AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1",
            &[],
        )
        .await
        .map_err(|e| fail("listing the tables", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let fks = foreign_keys(db).await.map_err(|e| fail("reading the foreign keys", e))?;
    db.batch_execute("SET session_replication_role = replica").await.map_err(|e| fail("disabling triggers", e))?;
    // Under 2^31 · fraction of hashtext's non-negative range.
    let limit = (fraction * 2_147_483_648.0).ceil() as i64;
    let mut removed = 0;
    for table in children_first(&tables, &fks) {
        let mut keep = vec![format!("(hashtext(ROW(t.*)::text) & 2147483647) < {limit}")];
        for fk in fks.get(&table).into_iter().flatten() {
            let on: Vec<String> = fk
                .columns
                .iter()
                .zip(&fk.parent_columns)
                .map(|(c, p)| format!("k.{} = t.{}", quote(c), quote(p)))
                .collect();
            keep.push(format!("EXISTS (SELECT 1 FROM {} k WHERE {})", fk.child, on.join(" AND ")));
        }
        let sql = format!("DELETE FROM {table} t WHERE NOT ({})", keep.join(" OR "));
        removed += db.execute(&sql, &[]).await.map_err(|e| fail(&format!("thinning {table}"), e))?;
    }
    db.batch_execute("RESET session_replication_role").await.map_err(|e| fail("enabling triggers", e))?;
    db.batch_execute("VACUUM FULL").await.map_err(|e| fail("rewriting the thinned tables (VACUUM FULL)", e))?;
    Ok(removed)
}

/// Each table's incoming foreign keys (by the referenced table).
async fn foreign_keys(
    db: &tokio_postgres::Client,
) -> std::result::Result<BTreeMap<String, Vec<ForeignKey>>, tokio_postgres::Error> {
    let rows = db
        .query(
            "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text, \
             (SELECT array_agg(a.attname::text ORDER BY k.i) FROM unnest(c.conkey) WITH ORDINALITY k(n, i) \
              JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n), \
             (SELECT array_agg(a.attname::text ORDER BY k.i) FROM unnest(c.confkey) WITH ORDINALITY k(n, i) \
              JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n) \
             FROM pg_constraint c WHERE c.contype = 'f' AND c.conparentid = 0 ORDER BY c.conname",
            &[],
        )
        .await?;
    let mut by_parent: BTreeMap<String, Vec<ForeignKey>> = BTreeMap::new();
    for r in rows {
        let fk = ForeignKey { child: r.get(0), columns: r.get(2), parent_columns: r.get(3) };
        by_parent.entry(r.get(1)).or_default().push(fk);
    }
    Ok(by_parent)
}

/// The tables, each after every table that references it where the
/// references allow (a cycle is broken at its first table by name).
fn children_first(tables: &[String], fks: &BTreeMap<String, Vec<ForeignKey>>) -> Vec<String> {
    let mut waiting: BTreeMap<&str, BTreeSet<&str>> = tables
        .iter()
        .map(|t| {
            let children = fks.get(t).into_iter().flatten().map(|f| f.child.as_str()).filter(|c| c != t).collect();
            (t.as_str(), children)
        })
        .collect();
    let mut order = Vec::new();
    while !waiting.is_empty() {
        let next = waiting
            .iter()
            .find(|(_, children)| children.iter().all(|c| !waiting.contains_key(c)))
            .or_else(|| waiting.iter().next())
            .map(|(t, _)| *t)
            .expect("a table");
        waiting.remove(next);
        order.push(next.to_string());
    }
    order
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fk(child: &str) -> ForeignKey {
        ForeignKey { child: child.into(), columns: vec!["x".into()], parent_columns: vec!["id".into()] }
    }

    #[test]
    fn children_are_thinned_before_their_parents_and_a_cycle_is_broken() {
        let tables: Vec<String> = ["customers", "invoices", "orders", "a", "b"].map(String::from).to_vec();
        let fks = BTreeMap::from([
            ("customers".to_string(), vec![fk("orders")]),
            ("orders".to_string(), vec![fk("invoices"), fk("orders")]),
            ("a".to_string(), vec![fk("b")]),
            ("b".to_string(), vec![fk("a")]),
        ]);
        let order = children_first(&tables, &fks);
        let at = |t: &str| order.iter().position(|o| o == t).unwrap();
        assert!(at("invoices") < at("orders") && at("orders") < at("customers"), "{order:?}");
        assert_eq!(order.len(), 5, "a self-reference and a cycle still place every table: {order:?}");
    }
}
