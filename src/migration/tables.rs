//! The tables a migration changes (written to or altered), as its
//! statements name them: what a logical subscriber's publication covers
//! (`[replica] logical = true`). Read with PostgreSQL's parser; a name may
//! be schema-qualified (`public.orders`), and may name a table the
//! migration itself creates (the caller keeps those that exist).

use super::Migration;

/// The tables the forward steps of `m` write to or change the definition
/// of, in the order first named, each once. Empty when it names none (a
/// migration run by a framework command, whose statements are known only
/// once it ran, names none).
pub fn changed(m: &Migration) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in m.steps.iter().flat_map(|s| s.statements()) {
        let Ok(parsed) = pg_query::parse(&s.sql, 0) else { continue };
        let mut names = parsed.dml_tables();
        names.extend(parsed.ddl_tables());
        names.sort();
        for n in names {
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(sql: &str) -> Vec<String> {
        let defaults = crate::migration::Defaults {
            transaction: None,
            lock_timeout: std::time::Duration::ZERO,
            statement_timeout: std::time::Duration::ZERO,
            retries: 0,
            retry_backoff: std::time::Duration::ZERO,
            on_error: crate::migration::OnError::Abort,
        };
        changed(&crate::migration::parse(sql, std::path::Path::new("m.sql"), &defaults).unwrap())
    }

    #[test]
    fn writes_and_definitions_count_reads_do_not() {
        assert_eq!(
            of("ALTER TABLE orders ADD COLUMN note text;\n\
                UPDATE public.customers SET name = 'x' FROM regions WHERE customers.id = 1;\n\
                CREATE INDEX ON orders (status);\nSELECT count(*) FROM items;\n"),
            vec!["orders", "public.customers"]
        );
        assert!(of("SELECT 1;\n").is_empty());
    }
}
