//! Which statements can fail on the data, read from pg_query's parse tree:
//! `SET NOT NULL`, `ADD CHECK`, `ADD UNIQUE` / `PRIMARY KEY` (and
//! `CREATE UNIQUE INDEX`), `ADD FOREIGN KEY` (unless `NOT VALID`),
//! `VALIDATE CONSTRAINT` and `ALTER COLUMN … TYPE` (with or without
//! `USING`). Expressions and types are deparsed by pg_query, identifiers
//! quoted.

use pg_query::NodeEnum;
use pg_query::protobuf::{AlterTableType as At, ConstrType, Node, RangeVar};

/// A relation as SQL (quoted) and as people read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rel {
    pub sql: String,
    pub name: String,
}

/// A check a statement needs, as far as its text tells (constraints named
/// by `VALIDATE` and indexes named by `USING INDEX` are looked up when the
/// check runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    NotNull {
        table: Rel,
        column: String,
    },
    Check {
        table: Rel,
        expr: String,
    },
    /// Columns (or index expressions) as SQL.
    Unique {
        table: Rel,
        columns: Vec<String>,
        partial: Option<String>,
        nulls_distinct: bool,
    },
    /// `ADD PRIMARY KEY USING INDEX`: its columns must hold no NULL.
    PrimaryUsingIndex {
        table: Rel,
        index: String,
    },
    /// `parent_columns` empty: the parent's primary key.
    ForeignKey {
        table: Rel,
        columns: Vec<String>,
        parent: Rel,
        parent_columns: Vec<String>,
    },
    Validate {
        table: Rel,
        constraint: String,
    },
    Cast {
        table: Rel,
        column: String,
        type_sql: String,
        using: Option<String>,
    },
}

/// `"name"` with inner quotes doubled.
pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn rel(r: &RangeVar) -> Rel {
    let mut sql = quote(&r.relname);
    let mut name = r.relname.clone();
    if !r.schemaname.is_empty() {
        sql = format!("{}.{sql}", quote(&r.schemaname));
        name = format!("{}.{name}", r.schemaname);
    }
    Rel { sql, name }
}

fn strings(nodes: &[Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|n| match &n.node {
            Some(NodeEnum::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

/// An expression node as SQL (deparsed by pg_query within a SELECT).
pub fn expr_sql(node: &Node) -> Option<String> {
    let mut tree = pg_query::parse("SELECT 1", 0).ok()?.protobuf;
    let stmt = tree.stmts.first_mut()?.stmt.as_mut()?;
    let Some(NodeEnum::SelectStmt(select)) = stmt.node.as_mut() else { return None };
    let Some(NodeEnum::ResTarget(target)) = select.target_list.first_mut()?.node.as_mut() else { return None };
    target.val = Some(Box::new(node.clone()));
    let sql = pg_query::deparse(&tree, Default::default()).ok()?;
    Some(sql.strip_prefix("SELECT ")?.to_string())
}

/// A type name as SQL (`numeric(10,2)`, `varchar(5)[]`).
fn type_sql(t: &pg_query::protobuf::TypeName) -> Option<String> {
    let mut tree = pg_query::parse("SELECT NULL::int", 0).ok()?.protobuf;
    let stmt = tree.stmts.first_mut()?.stmt.as_mut()?;
    let Some(NodeEnum::SelectStmt(select)) = stmt.node.as_mut() else { return None };
    let Some(NodeEnum::ResTarget(target)) = select.target_list.first_mut()?.node.as_mut() else { return None };
    let Some(NodeEnum::TypeCast(cast)) = target.val.as_mut()?.node.as_mut() else { return None };
    cast.type_name = Some(t.clone());
    let sql = pg_query::deparse(&tree, Default::default()).ok()?;
    Some(sql.strip_prefix("SELECT NULL::")?.to_string())
}

/// The checks `sql` (one statement) needs.
pub fn detect(sql: &str) -> Vec<Found> {
    let Ok(parsed) = pg_query::parse(sql, 0) else { return Vec::new() };
    let mut out = Vec::new();
    for raw in &parsed.protobuf.stmts {
        match raw.stmt.as_ref().and_then(|n| n.node.as_ref()) {
            Some(NodeEnum::AlterTableStmt(a)) => {
                let Some(table) = a.relation.as_ref().map(rel) else { continue };
                for cmd in &a.cmds {
                    if let Some(NodeEnum::AlterTableCmd(c)) = &cmd.node {
                        alter_cmd(&table, c, &mut out);
                    }
                }
            }
            Some(NodeEnum::IndexStmt(i)) if i.unique => {
                let Some(table) = i.relation.as_ref().map(rel) else { continue };
                let columns = i
                    .index_params
                    .iter()
                    .filter_map(|p| match &p.node {
                        Some(NodeEnum::IndexElem(e)) if !e.name.is_empty() => Some(quote(&e.name)),
                        Some(NodeEnum::IndexElem(e)) => e.expr.as_deref().and_then(expr_sql).map(|x| format!("({x})")),
                        _ => None,
                    })
                    .collect::<Vec<_>>();
                if columns.len() == i.index_params.len() {
                    let partial = i.where_clause.as_deref().and_then(expr_sql);
                    out.push(Found::Unique { table, columns, partial, nulls_distinct: !i.nulls_not_distinct });
                }
            }
            _ => {}
        }
    }
    out
}

fn alter_cmd(table: &Rel, c: &pg_query::protobuf::AlterTableCmd, out: &mut Vec<Found>) {
    let table = table.clone();
    match At::try_from(c.subtype) {
        Ok(At::AtSetNotNull) => out.push(Found::NotNull { table, column: c.name.clone() }),
        Ok(At::AtValidateConstraint) => out.push(Found::Validate { table, constraint: c.name.clone() }),
        Ok(At::AtAlterColumnType) => {
            let Some(NodeEnum::ColumnDef(d)) = c.def.as_ref().and_then(|d| d.node.as_ref()) else { return };
            let Some(type_sql) = d.type_name.as_ref().and_then(type_sql) else { return };
            let using = d.raw_default.as_deref().and_then(expr_sql);
            out.push(Found::Cast { table, column: c.name.clone(), type_sql, using });
        }
        Ok(At::AtAddConstraint) => {
            let Some(NodeEnum::Constraint(k)) = c.def.as_ref().and_then(|d| d.node.as_ref()) else { return };
            constraint(table, k, out);
        }
        _ => {}
    }
}

fn constraint(table: Rel, k: &pg_query::protobuf::Constraint, out: &mut Vec<Found>) {
    let keys: Vec<String> = strings(&k.keys);
    match ConstrType::try_from(k.contype) {
        Ok(ConstrType::ConstrCheck) if !k.skip_validation => {
            if let Some(expr) = k.raw_expr.as_deref().and_then(expr_sql) {
                out.push(Found::Check { table, expr });
            }
        }
        Ok(ConstrType::ConstrPrimary) if !k.indexname.is_empty() => {
            out.push(Found::PrimaryUsingIndex { table, index: k.indexname.clone() });
        }
        Ok(kind @ (ConstrType::ConstrPrimary | ConstrType::ConstrUnique)) if k.indexname.is_empty() => {
            if kind == ConstrType::ConstrPrimary {
                out.extend(keys.iter().map(|c| Found::NotNull { table: table.clone(), column: c.clone() }));
            }
            let columns = keys.iter().map(|c| quote(c)).collect();
            out.push(Found::Unique { table, columns, partial: None, nulls_distinct: !k.nulls_not_distinct });
        }
        Ok(ConstrType::ConstrForeign) if !k.skip_validation => {
            let Some(parent) = k.pktable.as_ref().map(rel) else { return };
            out.push(Found::ForeignKey {
                table,
                columns: strings(&k.fk_attrs),
                parent,
                parent_columns: strings(&k.pk_attrs),
            });
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orders() -> Rel {
        Rel { sql: "\"orders\"".into(), name: "orders".into() }
    }

    #[test]
    fn finds_each_statement_kind() {
        assert_eq!(
            detect("ALTER TABLE orders ALTER COLUMN billing_country SET NOT NULL"),
            [Found::NotNull { table: orders(), column: "billing_country".into() }]
        );
        assert_eq!(
            detect("ALTER TABLE orders ADD CONSTRAINT c CHECK (total_cents > 0)"),
            [Found::Check { table: orders(), expr: "total_cents > 0".into() }]
        );
        assert!(detect("ALTER TABLE orders ADD CONSTRAINT c CHECK (total_cents > 0) NOT VALID").is_empty());
        assert_eq!(
            detect("ALTER TABLE app.orders ADD PRIMARY KEY (id)"),
            [
                Found::NotNull {
                    table: Rel { sql: "\"app\".\"orders\"".into(), name: "app.orders".into() },
                    column: "id".into()
                },
                Found::Unique {
                    table: Rel { sql: "\"app\".\"orders\"".into(), name: "app.orders".into() },
                    columns: vec!["\"id\"".into()],
                    partial: None,
                    nulls_distinct: true
                },
            ]
        );
        assert_eq!(
            detect("CREATE UNIQUE INDEX CONCURRENTLY u ON orders (customer_id, lower(status)) WHERE status <> 'new'"),
            [Found::Unique {
                table: orders(),
                columns: vec!["\"customer_id\"".into(), "(lower(status))".into()],
                partial: Some("status <> 'new'".into()),
                nulls_distinct: true
            }]
        );
        assert_eq!(
            detect("ALTER TABLE orders ADD FOREIGN KEY (customer_id) REFERENCES customers"),
            [Found::ForeignKey {
                table: orders(),
                columns: vec!["customer_id".into()],
                parent: Rel { sql: "\"customers\"".into(), name: "customers".into() },
                parent_columns: vec![]
            }]
        );
        assert!(detect("ALTER TABLE orders ADD FOREIGN KEY (customer_id) REFERENCES customers NOT VALID").is_empty());
        assert_eq!(
            detect("ALTER TABLE orders VALIDATE CONSTRAINT c"),
            [Found::Validate { table: orders(), constraint: "c".into() }]
        );
        assert_eq!(
            detect("ALTER TABLE orders ALTER COLUMN code TYPE numeric(10,2) USING code::numeric"),
            [Found::Cast {
                table: orders(),
                column: "code".into(),
                type_sql: "numeric(10, 2)".into(),
                using: Some("code::numeric".into())
            }]
        );
        assert!(detect("ALTER TABLE orders ADD COLUMN note text").is_empty());
        assert!(detect("CREATE INDEX i ON orders (status)").is_empty());
    }
}
