//! Which steps cannot be undone by a down step, read with PostgreSQL's
//! parser: a step that loses data (DROP TABLE, DROP COLUMN, TRUNCATE,
//! DELETE, an UPDATE overwriting a column that existed before the
//! migration, a type change that may narrow) is one-way: its fallback is a
//! restore or a forward fix. A table, sequence or column the migration created
//! earlier holds nothing to lose, so changing it again stays reversible.

use std::collections::BTreeSet;

use pg_query::NodeEnum;
use pg_query::protobuf::{AlterTableType, Node, ObjectType};

use super::Step;

/// Tables and columns the migration created so far (`table`, `table.column`).
#[derive(Default)]
struct Created(BTreeSet<String>);

impl Created {
    fn table(&self, t: &str) -> bool {
        self.0.contains(t)
    }
    fn column(&self, t: &str, c: &str) -> bool {
        self.table(t) || self.0.contains(&format!("{t}.{c}"))
    }
}

/// Per step, why it is one-way (`None`: reversible), in the order of `steps`.
pub fn one_way(steps: &[Step]) -> Vec<Option<String>> {
    let mut created = Created::default();
    steps
        .iter()
        .map(|step| {
            let mut reasons: Vec<String> = Vec::new();
            for s in step.statements() {
                let Ok(parsed) = pg_query::parse(&s.sql, 0) else { continue };
                for raw in &parsed.protobuf.stmts {
                    let Some(node) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) else { continue };
                    reasons.extend(statement(node, &mut created));
                }
            }
            (!reasons.is_empty()).then(|| reasons.join("; "))
        })
        .collect()
}

/// Why `node` loses data, if it does; records what it creates.
fn statement(node: &NodeEnum, created: &mut Created) -> Vec<String> {
    match node {
        NodeEnum::CreateStmt(c) => {
            created.0.extend(c.relation.as_ref().map(|r| r.relname.clone()));
            vec![]
        }
        NodeEnum::CreateSeqStmt(c) => {
            created.0.extend(c.sequence.as_ref().map(|r| r.relname.clone()));
            vec![]
        }
        NodeEnum::CreateTableAsStmt(c) => {
            created.0.extend(c.into.as_ref().and_then(|i| i.rel.as_ref()).map(|r| r.relname.clone()));
            vec![]
        }
        NodeEnum::DropStmt(d) => dropped(d.remove_type, &d.objects, created),
        NodeEnum::TruncateStmt(t) => relations(&t.relations)
            .into_iter()
            .filter(|r| !created.table(r))
            .map(|r| format!("truncates {r}"))
            .collect(),
        NodeEnum::DeleteStmt(d) => match d.relation.as_ref().map(|r| r.relname.as_str()) {
            Some(t) if !created.table(t) => vec![format!("deletes rows of {t}")],
            _ => vec![],
        },
        NodeEnum::UpdateStmt(u) => {
            let Some(t) = u.relation.as_ref().map(|r| r.relname.as_str()) else { return vec![] };
            let cols: Vec<String> = u
                .target_list
                .iter()
                .filter_map(|n| match &n.node {
                    Some(NodeEnum::ResTarget(r)) if !created.column(t, &r.name) => Some(format!("{t}.{}", r.name)),
                    _ => None,
                })
                .collect();
            if cols.is_empty() { vec![] } else { vec![format!("overwrites {} with no copy kept", cols.join(", "))] }
        }
        NodeEnum::AlterTableStmt(a) => {
            let Some(t) = a.relation.as_ref().map(|r| r.relname.clone()) else { return vec![] };
            a.cmds.iter().filter_map(|c| alter(&t, c, created)).collect()
        }
        _ => vec![],
    }
}

fn dropped(kind: i32, objects: &[Node], created: &Created) -> Vec<String> {
    let what = match ObjectType::try_from(kind) {
        Ok(ObjectType::ObjectTable) => "table",
        Ok(ObjectType::ObjectMatview) => "materialized view",
        Ok(ObjectType::ObjectSequence) => "sequence",
        Ok(ObjectType::ObjectSchema) => "schema",
        _ => return vec![],
    };
    objects
        .iter()
        .filter_map(name)
        .filter(|n| !created.table(n))
        .map(|n| format!("drops {what} {n} and its data"))
        .collect()
}

/// The last part of a (possibly qualified) object name.
fn name(n: &Node) -> Option<String> {
    match &n.node {
        Some(NodeEnum::List(l)) => l.items.last().and_then(name),
        Some(NodeEnum::String(s)) => Some(s.sval.clone()),
        _ => None,
    }
}

fn relations(nodes: &[Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|n| match &n.node {
            Some(NodeEnum::RangeVar(r)) => Some(r.relname.clone()),
            _ => None,
        })
        .collect()
}

/// One ALTER TABLE command of table `t`.
fn alter(t: &str, cmd: &Node, created: &mut Created) -> Option<String> {
    let Some(NodeEnum::AlterTableCmd(c)) = &cmd.node else { return None };
    let def = c.def.as_deref().and_then(|d| d.node.as_ref());
    match AlterTableType::try_from(c.subtype).ok()? {
        AlterTableType::AtAddColumn => {
            if let Some(NodeEnum::ColumnDef(d)) = def {
                created.0.insert(format!("{t}.{}", d.colname));
            }
            None
        }
        AlterTableType::AtDropColumn if !created.column(t, &c.name) => {
            Some(format!("drops column {t}.{} and its values", c.name))
        }
        AlterTableType::AtAlterColumnType if !created.column(t, &c.name) => {
            let Some(NodeEnum::ColumnDef(d)) = def else { return None };
            narrow(d.type_name.as_ref()?)
                .map(|ty| format!("changes {t}.{} to {ty}, which may not hold its values", c.name))
        }
        _ => None,
    }
}

/// The type's name when it can hold less than a wider one: small integers
/// and floats, and lengths or precisions given explicitly.
fn narrow(ty: &pg_query::protobuf::TypeName) -> Option<String> {
    let base = ty.names.last().and_then(name)?;
    let narrow = matches!(base.as_str(), "int2" | "int4" | "float4" | "bool") || !ty.typmods.is_empty();
    narrow.then_some(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migration::{Defaults, OnError, parse};
    use std::time::Duration;

    fn reasons(sql: &str) -> Vec<Option<String>> {
        let defaults = Defaults {
            transaction: None,
            lock_timeout: Duration::ZERO,
            statement_timeout: Duration::ZERO,
            retries: 0,
            retry_backoff: Duration::ZERO,
            on_error: OnError::Abort,
        };
        let m = parse(sql, std::path::Path::new("m.sql"), &defaults).unwrap();
        one_way(&m.steps)
    }

    #[test]
    fn data_losing_steps_are_one_way() {
        let r = reasons(
            "ALTER TABLE orders DROP COLUMN note;\n\
             DROP TABLE audit;\n\
             TRUNCATE orders;\n\
             DELETE FROM orders WHERE id < 10;\n\
             UPDATE orders SET status = 'x';\n\
             ALTER TABLE orders ALTER COLUMN amount TYPE int4;\n\
             ALTER TABLE orders ALTER COLUMN code TYPE varchar(10);\n",
        );
        assert_eq!(r[0].as_deref(), Some("drops column orders.note and its values"));
        assert_eq!(r[1].as_deref(), Some("drops table audit and its data"));
        assert_eq!(r[2].as_deref(), Some("truncates orders"));
        assert_eq!(r[3].as_deref(), Some("deletes rows of orders"));
        assert_eq!(r[4].as_deref(), Some("overwrites orders.status with no copy kept"));
        assert!(r[5].as_deref().unwrap().starts_with("changes orders.amount to int4"), "{r:?}");
        assert!(r[6].as_deref().unwrap().starts_with("changes orders.code to varchar"), "{r:?}");
    }

    #[test]
    fn what_the_migration_created_is_reversible() {
        let r = reasons(
            "ALTER TABLE orders ADD COLUMN billing_country text;\n\
             UPDATE orders SET billing_country = shipping_country;\n\
             CREATE TABLE tmp (id int);\n\
             DROP TABLE tmp;\n\
             CREATE SEQUENCE batch;\n\
             DROP SEQUENCE batch;\n\
             ALTER TABLE orders ALTER COLUMN id TYPE bigint;\n\
             CREATE INDEX ON orders (status);\n\
             DROP INDEX orders_status_idx;\n",
        );
        assert!(r.iter().all(Option::is_none), "{r:?}");
    }
}
