//! Parameter generators inferred from a statement's parse tree (pg_query): a
//! `$n` compared with a column (`col = $1`, `col IN ($1, $2)`, `BETWEEN`), a
//! value inserted into a column, or assigned to one in `UPDATE … SET`, samples
//! existing values of that column from the clone. Anything else gets a
//! placeholder (`type = "todo"`) that the user fills in.

use serde_json::Value as Json;

/// What the recording writes for one `$n`.
#[derive(Debug, Clone, PartialEq)]
pub enum Inferred {
    /// `{ type = "sample", table, column }`.
    Sample { table: String, column: String },
    /// `{ type = "todo", note }`: nothing could be inferred.
    Todo(String),
}

impl Inferred {
    /// The generator as an inline TOML table.
    pub fn to_toml(&self) -> String {
        let q = |s: &str| toml::Value::String(s.to_string()).to_string();
        match self {
            Inferred::Sample { table, column } => {
                format!("{{ type = \"sample\", table = {}, column = {} }}", q(table), q(column))
            }
            Inferred::Todo(note) => format!("{{ type = \"todo\", note = {} }}", q(note)),
        }
    }
}

/// Columns of the source's tables (relname → column names), to tell which
/// table an unqualified column of a join belongs to.
pub type Columns = std::collections::BTreeMap<String, Vec<String>>;

/// One generator per `$1…$max` of `sql` (which must parse).
pub fn infer(sql: &str, max: usize) -> Vec<Inferred> {
    infer_with(sql, max, &Columns::new())
}

/// The tables (relnames) a statement names, sorted.
pub fn tables_of(sql: &str) -> Vec<String> {
    let Ok(p) = pg_query::parse(sql, 0) else { return Vec::new() };
    let mut t: Vec<String> = p.tables.iter().map(|(t, _)| t.rsplit('.').next().unwrap_or(t).to_string()).collect();
    t.sort();
    t.dedup();
    t
}

/// `infer`, resolving unqualified columns of joins through `columns`.
pub fn infer_with(sql: &str, max: usize, columns: &Columns) -> Vec<Inferred> {
    let mut found: Vec<Option<(String, String)>> = vec![None; max];
    if let Ok(parsed) = pg_query::parse(sql, 0)
        && let Some(stmt) = parsed.protobuf.stmts.first().and_then(|s| s.stmt.as_ref())
        && let Ok(tree) = serde_json::to_value(stmt)
    {
        let mut tables = Vec::new();
        collect_tables(&tree, &mut tables);
        let mut bind = |n: usize, col: Option<(String, String)>| {
            if let (Some(slot), Some(col)) = (n.checked_sub(1).and_then(|i| found.get_mut(i)), col)
                && slot.is_none()
            {
                *slot = Some(col);
            }
        };
        walk(&tree, &tables, columns, &mut bind);
    }
    found
        .into_iter()
        .enumerate()
        .map(|(i, f)| match f {
            Some((table, column)) => Inferred::Sample { table, column },
            None => Inferred::Todo(format!(
                "${} is not compared with a column lockimpact could name; replace with int, choice, text or sample",
                i + 1
            )),
        })
        .collect()
}

/// A table of the statement: (qualified name, relname, alias).
type Table = (String, String, Option<String>);

fn collect_tables(v: &Json, out: &mut Vec<Table>) {
    match v {
        Json::Object(map) => {
            for (k, child) in map {
                if (k == "RangeVar" || k == "relation")
                    && let Some(rel) = child.get("relname").and_then(Json::as_str)
                {
                    let schema = child.get("schemaname").and_then(Json::as_str).unwrap_or("");
                    let name = if schema.is_empty() { rel.to_string() } else { format!("{schema}.{rel}") };
                    let alias = child.pointer("/alias/aliasname").and_then(Json::as_str).map(str::to_string);
                    if !out.iter().any(|t| t.0 == name && t.2 == alias) {
                        out.push((name, rel.to_string(), alias));
                    }
                }
                collect_tables(child, out);
            }
        }
        Json::Array(items) => items.iter().for_each(|i| collect_tables(i, out)),
        _ => {}
    }
}

/// The inner node of a `Node` wrapper: (`"ColumnRef"`, {...}).
fn node(v: &Json) -> Option<(&str, &Json)> {
    let inner = v.get("node").unwrap_or(v);
    let map = inner.as_object()?;
    let (k, v) = map.iter().next()?;
    Some((k.as_str(), v))
}

/// `$n` of a ParamRef (through a type cast).
fn param(v: &Json) -> Option<usize> {
    match node(v)? {
        ("ParamRef", p) => p.get("number")?.as_u64().map(|n| n as usize),
        ("TypeCast", c) => param(c.get("arg")?),
        _ => None,
    }
}

/// The (table, column) a ColumnRef names, when the table is unambiguous.
fn column(v: &Json, tables: &[Table], columns: &Columns) -> Option<(String, String)> {
    let ("ColumnRef", c) = node(v)? else {
        return match node(v)? {
            ("TypeCast", c) => column(c.get("arg")?, tables, columns),
            _ => None,
        };
    };
    let fields: Vec<&str> = c
        .get("fields")?
        .as_array()?
        .iter()
        .map(|f| node(f).and_then(|(k, s)| (k == "String").then(|| s.get("sval")?.as_str())).flatten())
        .collect::<Option<Vec<_>>>()?;
    match fields.as_slice() {
        [col] if tables.len() == 1 => Some((tables[0].0.clone(), col.to_string())),
        [col] => {
            let mut having = tables.iter().filter(|t| columns.get(&t.1).is_some_and(|cs| cs.iter().any(|c| c == col)));
            match (having.next(), having.next()) {
                (Some(t), None) => Some((t.0.clone(), col.to_string())),
                _ => None,
            }
        }
        [q, col] => {
            let t = tables.iter().find(|t| t.2.as_deref() == Some(q)).or_else(|| tables.iter().find(|t| t.1 == *q))?;
            Some((t.0.clone(), col.to_string()))
        }
        _ => None,
    }
}

/// Whether an `A_Expr` compares (`=`, `<`, `IN`, `BETWEEN`, `LIKE`, …) rather
/// than computes (`n + $1` says nothing about the values of `n`).
fn comparison(e: &Json) -> bool {
    let op = e
        .get("name")
        .and_then(Json::as_array)
        .and_then(|n| n.last())
        .and_then(|n| node(n))
        .and_then(|(_, s)| s.get("sval")?.as_str())
        .unwrap_or("");
    matches!(op, "=" | "<>" | "!=" | "<" | ">" | "<=" | ">=" | "~~" | "~~*" | "!~~" | "!~~*") || op.contains("BETWEEN")
}

fn table_of(relation: &Json) -> Option<String> {
    let rel = relation.get("relname")?.as_str()?;
    let schema = relation.get("schemaname").and_then(Json::as_str).unwrap_or("");
    Some(if schema.is_empty() { rel.to_string() } else { format!("{schema}.{rel}") })
}

fn walk(v: &Json, tables: &[Table], columns: &Columns, bind: &mut impl FnMut(usize, Option<(String, String)>)) {
    match v {
        Json::Object(map) => {
            if let Some(e) = map.get("AExpr").filter(|e| comparison(e)) {
                let (l, r) = (e.get("lexpr"), e.get("rexpr"));
                if let (Some(l), Some(r)) = (l, r) {
                    let pairs = [(l, r), (r, l)];
                    for (a, b) in pairs {
                        if let Some(col) = column(a, tables, columns) {
                            if let Some(n) = param(b) {
                                bind(n, Some(col.clone()));
                            } else if let Some(("List", list)) = node(b) {
                                for item in list.get("items").and_then(Json::as_array).into_iter().flatten() {
                                    if let Some(n) = param(item) {
                                        bind(n, Some(col.clone()));
                                    }
                                }
                            }
                        }
                    }
                }
            }
            if let Some(ins) = map.get("InsertStmt")
                && let Some(table) = ins.get("relation").and_then(table_of)
            {
                let cols: Vec<Option<&str>> = ins
                    .get("cols")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                    .map(|c| node(c).and_then(|(_, t)| t.get("name")?.as_str()))
                    .collect();
                let rows = ins
                    .get("select_stmt")
                    .and_then(node)
                    .and_then(|(_, s)| s.get("values_lists"))
                    .and_then(Json::as_array);
                for row in rows.into_iter().flatten() {
                    let items = node(row).and_then(|(_, l)| l.get("items")?.as_array());
                    for (i, item) in items.into_iter().flatten().enumerate() {
                        if let (Some(n), Some(Some(col))) = (param(item), cols.get(i)) {
                            bind(n, Some((table.clone(), col.to_string())));
                        }
                    }
                }
            }
            if let Some(up) = map.get("UpdateStmt")
                && let Some(table) = up.get("relation").and_then(table_of)
            {
                for t in up.get("target_list").and_then(Json::as_array).into_iter().flatten() {
                    if let Some((_, rt)) = node(t)
                        && let (Some(name), Some(n)) =
                            (rt.get("name").and_then(Json::as_str), rt.get("val").and_then(param))
                    {
                        bind(n, Some((table.clone(), name.to_string())));
                    }
                }
            }
            for child in map.values() {
                walk(child, tables, columns, bind);
            }
        }
        Json::Array(items) => items.iter().for_each(|i| walk(i, tables, columns, bind)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: &str, c: &str) -> Inferred {
        Inferred::Sample { table: t.into(), column: c.into() }
    }

    #[test]
    fn compared_inserted_and_assigned_columns() {
        assert_eq!(infer("SELECT * FROM orders WHERE id = $1", 1), vec![s("orders", "id")]);
        assert_eq!(
            infer(
                "SELECT o.id FROM public.orders o JOIN customers c ON c.id = o.customer_id WHERE c.name = $1 AND o.status IN ($2, $3)",
                3
            ),
            vec![s("customers", "name"), s("public.orders", "status"), s("public.orders", "status")]
        );
        assert_eq!(infer("INSERT INTO t (a, b) VALUES ($1, $2)", 2), vec![s("t", "a"), s("t", "b")]);
        assert_eq!(infer("UPDATE t SET a = $1 WHERE id = $2::bigint", 2), vec![s("t", "a"), s("t", "id")]);
        assert_eq!(infer("SELECT * FROM t WHERE x BETWEEN $1 AND $2", 2), vec![s("t", "x"), s("t", "x")]);
        let join = "SELECT 1 FROM a JOIN b ON a.id = b.a_id WHERE name = $1";
        assert!(matches!(infer(join, 1)[0], Inferred::Todo(_)));
        let cols: Columns = [("a".into(), vec!["id".into()]), ("b".into(), vec!["a_id".into(), "name".into()])].into();
        assert_eq!(infer_with(join, 1, &cols), vec![s("b", "name")]);
        assert_eq!(tables_of(join), vec!["a".to_string(), "b".to_string()]);
        assert!(matches!(infer("UPDATE t SET n = n + $1", 1)[0], Inferred::Todo(_)));
        assert_eq!(infer("SELECT 1 FROM t WHERE name LIKE $1", 1), vec![s("t", "name")]);
        let r = infer("SELECT * FROM t LIMIT $1", 1);
        assert!(matches!(&r[0], Inferred::Todo(n) if n.contains("$1")), "{r:?}");
        assert!(r[0].to_toml().contains("type = \"todo\""));
    }
}
