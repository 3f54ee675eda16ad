//! The SQL of each preflight check: a count of the violating rows and up to
//! five examples (each row's primary key, or its ctid, and the offending
//! value), built from what `detect` found and, for `VALIDATE CONSTRAINT` and
//! `USING INDEX`, from the catalog as it stands when the check runs.

use pg_query::NodeEnum;
use tokio_postgres::Client;

use super::EXAMPLES;
use super::detect::{Found, Rel, quote};
use crate::error::{Error, Result, describe_pg};
use crate::run_record::{CheckKind, CheckRecord};

/// One check, ready to run on the table aliased `t`.
#[derive(Debug, Clone)]
pub struct Query {
    pub kind: CheckKind,
    pub relation: String,
    pub columns: Vec<String>,
    pub detail: String,
    pub what: String,
    /// Runs first (the temporary function of a type check).
    pub setup: Option<String>,
    pub count: String,
    pub examples: String,
}

impl Query {
    pub fn record(&self, step: usize, statement: usize) -> CheckRecord {
        CheckRecord {
            step,
            statement,
            kind: self.kind,
            relation: self.relation.clone(),
            columns: self.columns.clone(),
            detail: self.detail.clone(),
            violations: None,
            examples: Vec::new(),
            what: self.what.clone(),
            duration: Default::default(),
            skipped: None,
        }
    }
}

/// A `'text'` literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `'name=' || coalesce((expr)::text, 'NULL')` for each (name, expr), joined with ", ".
fn labelled(items: &[(String, String)]) -> String {
    let parts: Vec<String> =
        items.iter().map(|(n, e)| format!("{} || coalesce(({e})::text, 'NULL')", literal(&format!("{n}=")))).collect();
    format!("concat_ws(', ', {})", parts.join(", "))
}

/// The row identity shown in examples: its primary key, or its ctid.
async fn key(client: &Client, table: &Rel) -> String {
    let sql = "SELECT a.attname::text FROM pg_index i \
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
               WHERE i.indrelid = to_regclass($1) AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)";
    let cols: Vec<String> =
        client.query(sql, &[&table.sql]).await.map(|rows| rows.iter().map(|r| r.get(0)).collect()).unwrap_or_default();
    if cols.is_empty() {
        return "'ctid=' || t.ctid::text".into();
    }
    labelled(&cols.iter().map(|c| (c.clone(), format!("t.{}", quote(c)))).collect::<Vec<_>>())
}

/// Count and examples of the rows of `table` where `cond` holds.
async fn rows_where(client: &Client, table: &Rel, cond: &str, shown: &[(String, String)]) -> (String, String) {
    let mut example = key(client, table).await;
    if !shown.is_empty() {
        example = format!("{example} || ': ' || {}", labelled(shown));
    }
    (
        format!("SELECT count(*) FROM {} AS t WHERE {cond}", table.sql),
        format!("SELECT {example} FROM {} AS t WHERE {cond} LIMIT {EXAMPLES}", table.sql),
    )
}

/// The queries of a found check (catalog lookups made now); `Err` says why it cannot run.
pub async fn resolve(client: &Client, f: &Found, n: usize) -> Result<Vec<Query>> {
    let base = |kind, table: &Rel, columns: Vec<String>, detail: String, what: String| Query {
        kind,
        relation: table.name.clone(),
        columns,
        detail,
        what,
        setup: None,
        count: String::new(),
        examples: String::new(),
    };
    Ok(match f {
        Found::NotNull { table, column } => {
            let (count, examples) = rows_where(client, table, &format!("t.{} IS NULL", quote(column)), &[]).await;
            let what = format!("{column} NULL");
            vec![Query {
                count,
                examples,
                ..base(CheckKind::NotNull, table, vec![column.clone()], "NOT NULL".into(), what)
            }]
        }
        Found::Check { table, expr } => {
            let (count, examples) = rows_where(client, table, &format!("NOT ({expr})"), &[]).await;
            let what = format!("a value that fails CHECK ({expr})");
            vec![Query { count, examples, ..base(CheckKind::Check, table, vec![], format!("CHECK ({expr})"), what) }]
        }
        Found::Unique { table, columns, partial, nulls_distinct } => {
            vec![unique(table, columns, partial, *nulls_distinct)]
        }
        Found::ForeignKey { table, columns, parent, parent_columns } => {
            vec![foreign_key(client, table, columns, parent, parent_columns).await?]
        }
        Found::Cast { table, column, type_sql, using } => {
            vec![cast(client, table, column, type_sql, using.as_deref(), n).await]
        }
        Found::PrimaryUsingIndex { table, index } => {
            let sql = "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid \
                       AND a.attnum = ANY(i.indkey) WHERE i.indexrelid = to_regclass($1)";
            let idx = match &table.sql.rsplit_once('.') {
                Some((schema, _)) => format!("{schema}.{}", quote(index)),
                None => quote(index),
            };
            let rows = client.query(sql, &[&idx]).await.map_err(|e| Error::db(describe_pg(&e)))?;
            if rows.is_empty() {
                return Err(Error::db(format!("index {index} is not there yet")));
            }
            let mut out = Vec::new();
            for r in rows {
                let column: String = r.get(0);
                out.extend(Box::pin(resolve(client, &Found::NotNull { table: table.clone(), column }, n)).await?);
            }
            out
        }
        Found::Validate { table, constraint } => {
            Box::pin(resolve(client, &validated(client, table, constraint).await?, n)).await?
        }
    })
}

fn unique(table: &Rel, columns: &[String], partial: &Option<String>, nulls_distinct: bool) -> Query {
    let mut cond: Vec<String> =
        if nulls_distinct { columns.iter().map(|c| format!("{c} IS NOT NULL")).collect() } else { Vec::new() };
    cond.extend(partial.iter().map(|p| format!("({p})")));
    let cond = if cond.is_empty() { "true".to_string() } else { cond.join(" AND ") };
    let shown: Vec<(String, String)> = columns.iter().map(|c| (c.trim_matches('"').to_string(), c.clone())).collect();
    let groups = format!("FROM {} AS t WHERE {cond} GROUP BY {} HAVING count(*) > 1", table.sql, columns.join(", "));
    let display: Vec<String> = shown.iter().map(|(n, _)| n.clone()).collect();
    let listed = display.join(", ");
    Query {
        kind: CheckKind::Unique,
        relation: table.name.clone(),
        columns: display.clone(),
        detail: match partial {
            Some(p) => format!("UNIQUE ({listed}) WHERE {p}"),
            None => format!("UNIQUE ({listed})"),
        },
        what: format!("a duplicate ({listed})"),
        setup: None,
        count: format!("SELECT coalesce(sum(n), 0)::int8 FROM (SELECT count(*) AS n {groups}) AS d"),
        examples: format!(
            "SELECT {} || ' (' || count(*) || ' rows)' {groups} ORDER BY count(*) DESC LIMIT {EXAMPLES}",
            labelled(&shown)
        ),
    }
}

async fn foreign_key(
    client: &Client,
    table: &Rel,
    columns: &[String],
    parent: &Rel,
    parent_columns: &[String],
) -> Result<Query> {
    let mut pcols = parent_columns.to_vec();
    if pcols.is_empty() {
        let sql = "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid \
                   AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass($1) AND i.indisprimary \
                   ORDER BY array_position(i.indkey::int2[], a.attnum)";
        pcols = client
            .query(sql, &[&parent.sql])
            .await
            .map_err(|e| Error::db(describe_pg(&e)))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if pcols.is_empty() {
            return Err(Error::db(format!("{} has no primary key to refer to", parent.name)));
        }
    }
    let mut cond: Vec<String> = columns.iter().map(|c| format!("t.{} IS NOT NULL", quote(c))).collect();
    let join: Vec<String> =
        columns.iter().zip(&pcols).map(|(c, p)| format!("p.{} = t.{}", quote(p), quote(c))).collect();
    cond.push(format!("NOT EXISTS (SELECT 1 FROM {} AS p WHERE {})", parent.sql, join.join(" AND ")));
    let shown: Vec<(String, String)> = columns.iter().map(|c| (c.clone(), format!("t.{}", quote(c)))).collect();
    let (count, examples) = rows_where(client, table, &cond.join(" AND "), &shown).await;
    Ok(Query {
        kind: CheckKind::ForeignKey,
        relation: table.name.clone(),
        columns: columns.to_vec(),
        detail: format!("FOREIGN KEY ({}) REFERENCES {} ({})", columns.join(", "), parent.name, pcols.join(", ")),
        what: format!("{} without a parent in {} ({})", columns.join(", "), parent.name, pcols.join(", ")),
        setup: None,
        count,
        examples,
    })
}

/// A type change: a temporary function assigns each row's new value to a
/// variable of the new type (ALTER's assignment rules) and says when that fails.
async fn cast(client: &Client, table: &Rel, column: &str, type_sql: &str, using: Option<&str>, n: usize) -> Query {
    let function = format!("pg_temp.lockimpact_cast_{n}");
    let value = using.map(str::to_string).unwrap_or_else(|| format!("t.{}", quote(column)));
    let setup = format!(
        "CREATE FUNCTION {function}(lockimpact_row {rel}) RETURNS boolean LANGUAGE plpgsql AS $lockimpact$ \
         DECLARE lockimpact_value {type_sql}; \
         BEGIN lockimpact_value := (SELECT {value} FROM (SELECT (lockimpact_row).*) AS t); RETURN false; \
         EXCEPTION WHEN others THEN RETURN true; END $lockimpact$",
        rel = table.sql
    );
    let shown = [(column.to_string(), format!("t.{}", quote(column)))];
    let (count, examples) = rows_where(client, table, &format!("{function}(t)"), &shown).await;
    Query {
        kind: CheckKind::Cast,
        relation: table.name.clone(),
        columns: vec![column.to_string()],
        detail: match using {
            Some(u) => format!("TYPE {type_sql} USING {u}"),
            None => format!("TYPE {type_sql}"),
        },
        what: format!("a {column} that does not convert to {type_sql}"),
        setup: Some(setup),
        count,
        examples,
    }
}

/// What `VALIDATE CONSTRAINT` validates, from the catalog.
async fn validated(client: &Client, table: &Rel, constraint: &str) -> Result<Found> {
    let sql = "SELECT c.contype::text, pg_get_expr(c.conbin, c.conrelid), c.confrelid::regclass::text, \
               ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, o) \
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o), \
               ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, o) \
                     JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o) \
               FROM pg_constraint c WHERE c.conrelid = to_regclass($1) AND c.conname = $2";
    let rows = client.query(sql, &[&table.sql, &constraint]).await.map_err(|e| Error::db(describe_pg(&e)))?;
    let Some(r) = rows.first() else {
        return Err(Error::db(format!("constraint {constraint} is not on {} yet", table.name)));
    };
    match r.get::<_, String>(0).as_str() {
        "c" => {
            let expr: String = r.get::<_, Option<String>>(1).unwrap_or_default();
            Ok(Found::Check { table: table.clone(), expr: unwrap_parens(&expr).to_string() })
        }
        "f" => {
            let parent: String = r.get(2);
            Ok(Found::ForeignKey {
                table: table.clone(),
                columns: r.get(3),
                parent: Rel { sql: parent.clone(), name: parent },
                parent_columns: r.get(4),
            })
        }
        other => Err(Error::db(format!("constraint {constraint} is of type {other}, which VALIDATE does not check"))),
    }
}

/// A record for a check that did not run, and why.
pub fn skipped(step: usize, statement: usize, f: &Found, why: &str) -> CheckRecord {
    let (kind, table, columns, detail, what) = match f {
        Found::NotNull { table, column } => {
            (CheckKind::NotNull, table, vec![column.clone()], "NOT NULL".into(), format!("{column} NULL"))
        }
        Found::Check { table, expr } => {
            (CheckKind::Check, table, vec![], format!("CHECK ({expr})"), format!("a value that fails CHECK ({expr})"))
        }
        Found::Unique { table, columns, .. } => {
            let c: Vec<String> = columns.iter().map(|c| c.trim_matches('"').to_string()).collect();
            (
                CheckKind::Unique,
                table,
                c.clone(),
                format!("UNIQUE ({})", c.join(", ")),
                format!("a duplicate ({})", c.join(", ")),
            )
        }
        Found::PrimaryUsingIndex { table, index } => {
            (CheckKind::NotNull, table, vec![], format!("PRIMARY KEY USING INDEX {index}"), "a NULL in the key".into())
        }
        Found::ForeignKey { table, columns, parent, .. } => (
            CheckKind::ForeignKey,
            table,
            columns.clone(),
            format!("FOREIGN KEY ({}) REFERENCES {}", columns.join(", "), parent.name),
            format!("{} without a parent in {}", columns.join(", "), parent.name),
        ),
        Found::Validate { table, constraint } => (
            CheckKind::Check,
            table,
            vec![],
            format!("VALIDATE CONSTRAINT {constraint}"),
            format!("a value that fails {constraint}"),
        ),
        Found::Cast { table, column, type_sql, .. } => (
            CheckKind::Cast,
            table,
            vec![column.clone()],
            format!("TYPE {type_sql}"),
            format!("a {column} that does not convert to {type_sql}"),
        ),
    };
    CheckRecord {
        step,
        statement,
        kind,
        relation: table.name.clone(),
        columns,
        detail,
        violations: None,
        examples: Vec::new(),
        what,
        duration: Default::default(),
        skipped: Some(why.to_string()),
    }
}

/// `sql` as it can run inside the preflight's transaction: an index built or
/// dropped CONCURRENTLY without it (same catalog, same data); `None` for
/// what changes no data and cannot run there (VACUUM, REINDEX CONCURRENTLY).
pub fn in_transaction(sql: &str) -> Option<String> {
    let (needs_autocommit, _) = crate::migration::split::classify_sql(sql);
    if needs_autocommit.is_none() {
        return Some(sql.to_string());
    }
    let mut tree = pg_query::parse(sql, 0).ok()?.protobuf;
    match tree.stmts.first_mut()?.stmt.as_mut()?.node.as_mut()? {
        NodeEnum::IndexStmt(i) => i.concurrent = false,
        NodeEnum::DropStmt(d) => d.concurrent = false,
        _ => return None,
    }
    pg_query::deparse(&tree, Default::default()).ok()
}

/// `(a > 0)` → `a > 0` when the outer parentheses enclose it all.
fn unwrap_parens(expr: &str) -> &str {
    let Some(inner) = expr.strip_prefix('(').and_then(|e| e.strip_suffix(')')) else { return expr };
    let mut depth = 0i32;
    for c in inner.chars() {
        depth += match c {
            '(' => 1,
            ')' => -1,
            _ => 0,
        };
        if depth < 0 {
            return expr;
        }
    }
    if depth == 0 { inner } else { expr }
}
