//! Which SQL statements reach beyond their database, read from PostgreSQL's
//! own parse tree (pg_query): programs run on the server's host (`COPY …
//! PROGRAM`, untrusted languages, `LOAD`), files of the server's host read
//! or written (`COPY` to or from a file, `pg_read_file()`, `lo_export()`,
//! tablespaces, a foreign table's `filename`), and changes to the whole
//! server (`ALTER SYSTEM`, other databases, roles, tablespaces,
//! `pg_reload_conf()`).
//!
//! Every node of the tree is visited (the protobuf tree as JSON), and the
//! bodies of PL/pgSQL functions and `DO` blocks are parsed too. SQL built at
//! run time (`EXECUTE` of a string) cannot be seen: for SQL you do not trust,
//! a sandbox (a container) is the answer, not this check.

use pg_query::protobuf::ObjectType;
use serde_json::Value;

/// How far a statement reaches beyond its database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reach {
    /// Runs a program on the server's host, as the server's OS user.
    HostProgram,
    /// Reads or writes files on the server's host.
    HostFiles,
    /// Changes the whole server: its settings, other databases, roles, tablespaces.
    ServerWide,
}

impl Reach {
    /// What it does, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Reach::HostProgram => "runs a program on the server's host",
            Reach::HostFiles => "reads or writes files on the server's host",
            Reach::ServerWide => "changes the whole server, beyond its database",
        }
    }
}

/// One statement that reaches beyond its database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub reach: Reach,
    /// What it does, e.g. `COPY … TO PROGRAM`, `ALTER SYSTEM`, `pg_read_file()`.
    pub what: String,
    /// Byte offset of the statement in the text that was read.
    pub offset: usize,
}

/// Languages whose functions run arbitrary code as the server's OS user.
const UNTRUSTED_LANGUAGES: &[&str] =
    &["c", "plpythonu", "plpython2u", "plpython3u", "plperlu", "pltclu", "plsh", "plr"];

/// Extensions that give SQL access to the host's files.
const FILE_EXTENSIONS: &[&str] = &["adminpack"];

/// Server functions on the host's files, and on the whole server.
const FILE_FUNCTIONS: &[&str] = &[
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "pg_stat_file",
    "pg_ls_logdir",
    "pg_ls_waldir",
    "pg_ls_tmpdir",
    "pg_ls_archive_statusdir",
    "pg_ls_logicalsnapdir",
    "pg_ls_logicalmapdir",
    "pg_ls_replslotdir",
    "pg_file_write",
    "pg_file_rename",
    "pg_file_unlink",
    "pg_file_sync",
    "pg_logdir_ls",
    "lo_import",
    "lo_export",
];
const SERVER_FUNCTIONS: &[&str] = &["pg_reload_conf", "pg_rotate_logfile", "pg_promote"];

/// The statements of `sql` (one or more) that reach beyond the database
/// `current_db` (`ALTER DATABASE` of it stays inside); with `None`, every
/// database counts as another. SQL that does not parse yields nothing (the
/// server rejects it the same way).
pub fn findings(sql: &str, current_db: Option<&str>) -> Vec<Finding> {
    let Ok(parsed) = pg_query::parse(sql, 0) else { return Vec::new() };
    let mut out = Vec::new();
    for raw in &parsed.protobuf.stmts {
        let Some(stmt) = &raw.stmt else { continue };
        let offset = raw.stmt_location.max(0) as usize;
        let tree = serde_json::to_value(stmt).unwrap_or(Value::Null);
        let mut found = Vec::new();
        walk(&tree, current_db, &mut found);
        let end = if raw.stmt_len > 0 { offset + raw.stmt_len as usize } else { sql.len() };
        if let Some(text) = sql.get(offset..end) {
            for body_sql in plpgsql_statements(&tree, text) {
                found.extend(findings(&body_sql, current_db).into_iter().map(|f| (f.reach, f.what)));
            }
        }
        found.sort();
        found.dedup();
        out.extend(found.into_iter().map(|(reach, what)| Finding { reach, what, offset }));
    }
    out
}

/// Visits every node of the tree; the keys of node variants are capitalised.
fn walk(v: &Value, db: Option<&str>, out: &mut Vec<(Reach, String)>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k.starts_with(|c: char| c.is_ascii_uppercase())
                    && let Some(f) = node(k, child, db)
                {
                    out.push(f);
                }
                walk(child, db, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| walk(i, db, out)),
        _ => {}
    }
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

fn object_type(v: &Value, key: &str) -> Option<ObjectType> {
    v[key].as_i64().and_then(|i| ObjectType::try_from(i as i32).ok())
}

/// The string values of a list of nodes (`[{"node": {"String": {"sval": …}}}]`) or one node.
fn names(v: &Value) -> Vec<String> {
    let one = |n: &Value| n["node"]["String"]["sval"].as_str().map(str::to_string);
    match v {
        Value::Array(items) => items.iter().filter_map(one).collect(),
        n => one(n).into_iter().collect(),
    }
}

/// The `language` of a `CREATE FUNCTION` or `DO`, from its options.
fn language(options: &Value) -> Option<String> {
    options.as_array()?.iter().find_map(|o| {
        let d = &o["node"]["DefElem"];
        (d["defname"] == "language").then(|| names(&d["arg"]).pop()).flatten()
    })
}

/// What one node does beyond its database, if anything.
fn node(kind: &str, n: &Value, db: Option<&str>) -> Option<(Reach, String)> {
    host_node(kind, n).or_else(|| server_node(kind, n, db))
}

/// A node that runs a program or touches files on the server's host.
fn host_node(kind: &str, n: &Value) -> Option<(Reach, String)> {
    let program = |what: String| Some((Reach::HostProgram, what));
    let files = |what: String| Some((Reach::HostFiles, what));
    match kind {
        "CopyStmt" => {
            let dir = if n["is_from"] == true { "FROM" } else { "TO" };
            if n["is_program"] == true {
                program(format!("COPY … {dir} PROGRAM"))
            } else if !text(n, "filename").is_empty() {
                files(format!("COPY … {dir} a file of the server"))
            } else {
                None
            }
        }
        "CreateTableSpaceStmt" => files("CREATE TABLESPACE … LOCATION".into()),
        "LoadStmt" => program("LOAD (a shared library)".into()),
        "CreatePLangStmt" => program("CREATE LANGUAGE".into()),
        "CreateFunctionStmt" | "DoStmt" => {
            let lang = language(if kind == "DoStmt" { &n["args"] } else { &n["options"] })?;
            let head = if kind == "DoStmt" { "DO" } else { "CREATE FUNCTION" };
            UNTRUSTED_LANGUAGES
                .contains(&lang.as_str())
                .then(|| (Reach::HostProgram, format!("{head} … LANGUAGE {lang} (untrusted)")))
        }
        "CreateExtensionStmt" => {
            let ext = text(n, "extname");
            if UNTRUSTED_LANGUAGES.contains(&ext.as_str()) {
                program(format!("CREATE EXTENSION {ext} (an untrusted language)"))
            } else if FILE_EXTENSIONS.contains(&ext.as_str()) {
                files(format!("CREATE EXTENSION {ext}"))
            } else {
                None
            }
        }
        "DefElem" => match n["defname"].as_str()? {
            "program" => program("OPTIONS (program …) of a foreign table".into()),
            "filename" => files("OPTIONS (filename …) of a foreign table".into()),
            _ => None,
        },
        "FuncCall" => {
            let name = names(&n["funcname"]).pop()?.to_ascii_lowercase();
            FILE_FUNCTIONS.contains(&name.as_str()).then(|| (Reach::HostFiles, format!("{name}()")))
        }
        _ => None,
    }
}

/// A node that changes the whole server: its settings, another database,
/// roles, tablespaces.
fn server_node(kind: &str, n: &Value, db: Option<&str>) -> Option<(Reach, String)> {
    let other_db = |name: &str| db != Some(name);
    let server = |what: String| Some((Reach::ServerWide, what));
    match kind {
        "AlterSystemStmt" => server("ALTER SYSTEM".into()),
        "CreatedbStmt" => server(format!("CREATE DATABASE {}", text(n, "dbname"))),
        "DropdbStmt" => server(format!("DROP DATABASE {}", text(n, "dbname"))),
        "AlterDatabaseStmt" | "AlterDatabaseSetStmt" | "AlterDatabaseRefreshCollStmt"
            if other_db(&text(n, "dbname")) =>
        {
            server(format!("ALTER DATABASE {} (another database)", text(n, "dbname")))
        }
        "CreateRoleStmt" => server(format!("CREATE ROLE {}", text(n, "role"))),
        "AlterRoleStmt" | "AlterRoleSetStmt" => server("ALTER ROLE".into()),
        "DropRoleStmt" => server("DROP ROLE".into()),
        "GrantRoleStmt" => server("GRANT or REVOKE of a role membership".into()),
        "DropTableSpaceStmt" | "AlterTableSpaceOptionsStmt" => server("DROP or ALTER TABLESPACE".into()),
        "RenameStmt" => match object_type(n, "rename_type")? {
            ObjectType::ObjectDatabase => server(format!("ALTER DATABASE {} RENAME", text(n, "subname"))),
            ObjectType::ObjectRole => server("ALTER ROLE … RENAME".into()),
            ObjectType::ObjectTablespace => server("ALTER TABLESPACE … RENAME".into()),
            _ => None,
        },
        "AlterOwnerStmt" => match object_type(n, "object_type")? {
            ObjectType::ObjectDatabase if names(&n["object"]).iter().any(|d| other_db(d)) => {
                server("ALTER DATABASE … OWNER TO (another database)".into())
            }
            ObjectType::ObjectTablespace => server("ALTER TABLESPACE … OWNER TO".into()),
            _ => None,
        },
        "GrantStmt" => match object_type(n, "objtype")? {
            ObjectType::ObjectDatabase if names(&n["objects"]).iter().any(|d| other_db(d)) => {
                server("GRANT or REVOKE on another database".into())
            }
            ObjectType::ObjectTablespace => server("GRANT or REVOKE on a tablespace".into()),
            ObjectType::ObjectParameterAcl => server("GRANT or REVOKE on a server parameter".into()),
            _ => None,
        },
        "FuncCall" => {
            let name = names(&n["funcname"]).pop()?.to_ascii_lowercase();
            SERVER_FUNCTIONS.contains(&name.as_str()).then(|| (Reach::ServerWide, format!("{name}()")))
        }
        _ => None,
    }
}

/// The SQL inside a PL/pgSQL function body or `DO` block (`stmt` is the
/// statement's tree, `text` its source): every query the body runs, as
/// written (not what `EXECUTE` builds at run time).
fn plpgsql_statements(stmt: &Value, text: &str) -> Vec<String> {
    let node = &stmt["node"];
    let (body, lang) = if let Some(d) = node.get("DoStmt") {
        let body = d["args"].as_array().and_then(|a| {
            a.iter()
                .find_map(|o| (o["node"]["DefElem"]["defname"] == "as").then(|| names(&o["node"]["DefElem"]["arg"])))
        });
        (body.and_then(|mut b| b.pop()), language(&d["args"]))
    } else if let Some(f) = node.get("CreateFunctionStmt") {
        (None, language(&f["options"]))
    } else {
        return Vec::new();
    };
    if lang.as_deref().unwrap_or("plpgsql") != "plpgsql" {
        return Vec::new();
    }
    let source = match body {
        // A DO block as a function, which the PL/pgSQL parser reads.
        Some(b) => format!(
            "CREATE FUNCTION lockimpact_do() RETURNS void LANGUAGE plpgsql AS $lockimpact_do${b}$lockimpact_do$"
        ),
        None => text.to_string(),
    };
    let Ok(tree) = pg_query::parse_plpgsql(&source) else { return Vec::new() };
    let mut queries = Vec::new();
    collect_queries(&tree, &mut queries);
    queries
}

/// Every `query` of a PL/pgSQL tree's expressions; a bare expression (`x > 0`) becomes `SELECT x > 0`.
fn collect_queries(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match (k.as_str(), child.as_str()) {
                    ("query", Some(q)) if pg_query::parse(q, 0).is_ok() => out.push(q.to_string()),
                    ("query", Some(q)) => out.push(format!("SELECT {q}")),
                    _ => collect_queries(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_queries(i, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whats(sql: &str, db: Option<&str>) -> Vec<(Reach, String)> {
        findings(sql, db).into_iter().map(|f| (f.reach, f.what)).collect()
    }

    #[test]
    fn programs_and_files_of_the_host_are_found_anywhere_in_the_tree() {
        assert_eq!(
            whats("COPY (SELECT 1) TO PROGRAM 'id > /tmp/x'", None),
            vec![(Reach::HostProgram, "COPY … TO PROGRAM".into())]
        );
        assert_eq!(whats("COPY t FROM '/etc/passwd'", None)[0].0, Reach::HostFiles);
        assert!(whats("COPY t FROM STDIN", None).is_empty());
        assert_eq!(
            whats("SELECT coalesce(NULL, ARRAY[pg_catalog.pg_read_file('/etc/passwd')::text])", None),
            vec![(Reach::HostFiles, "pg_read_file()".into())]
        );
        assert_eq!(
            whats("CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS 'return 1'", None)[0].0,
            Reach::HostProgram
        );
        assert_eq!(whats("DO LANGUAGE plperlu $$ system('id') $$", None)[0].0, Reach::HostProgram);
        assert_eq!(whats("CREATE EXTENSION plpython3u", None)[0].0, Reach::HostProgram);
        assert_eq!(whats("LOAD 'auto_explain'", None)[0].0, Reach::HostProgram);
        assert_eq!(
            whats("CREATE FOREIGN TABLE f (a text) SERVER s OPTIONS (program 'id')", None)[0].0,
            Reach::HostProgram
        );
    }

    #[test]
    fn plpgsql_bodies_are_read_and_ordinary_migrations_pass() {
        let body = "DO $$ BEGIN IF true THEN COPY (SELECT 1) TO PROGRAM 'id'; END IF; END $$";
        assert_eq!(whats(body, None), vec![(Reach::HostProgram, "COPY … TO PROGRAM".into())]);
        let func = "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN PERFORM pg_reload_conf(); END $f$";
        assert_eq!(whats(func, None), vec![(Reach::ServerWide, "pg_reload_conf()".into())]);
        let ordinary = "ALTER TABLE orders ADD COLUMN c int; CREATE INDEX CONCURRENTLY i ON orders (c); \
                        UPDATE orders SET c = 1 WHERE id < 100; DO $$ BEGIN EXECUTE format('ANALYZE %I', 'orders'); END $$; \
                        GRANT SELECT ON orders TO PUBLIC; ALTER DATABASE clonedb SET work_mem = '64MB'";
        assert!(whats(ordinary, Some("clonedb")).is_empty(), "{:?}", whats(ordinary, Some("clonedb")));
        assert_eq!(whats("not sql at all", None), vec![]);
    }

    #[test]
    fn server_wide_statements_are_named_and_located() {
        let sql = "SELECT 1;\nALTER SYSTEM SET work_mem = '1GB';\nCREATE DATABASE other;\nALTER DATABASE prod SET x.y = 1;\n\
                   ALTER ROLE app SET lockimpact.rehearsal = on;\nALTER DATABASE clonedb SET lockimpact.rehearsal = on";
        let f = findings(sql, Some("clonedb"));
        let got: Vec<(usize, &str)> = f.iter().map(|f| (sql[..f.offset].lines().count(), f.what.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (1, "ALTER SYSTEM"),
                (2, "CREATE DATABASE other"),
                (3, "ALTER DATABASE prod (another database)"),
                (4, "ALTER ROLE")
            ]
        );
        assert!(f.iter().all(|f| f.reach == Reach::ServerWide));
    }
}
