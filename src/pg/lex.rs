//! PostgreSQL's own scanner (through pg_query), safe on any text, and its
//! error messages without the crate's prefix. Shared by the workload file
//! checks and the migration splitter.

/// `pg_query::scan_tokens`, safe on text without a single token. For empty or
/// whitespace-only text the C scanner returns a null token array, which the
/// crate turns into a slice: undefined behaviour (a panic in debug builds,
/// found by fuzzing the migration splitter).
pub fn scan_tokens(sql: &str) -> Result<Vec<pg_query::protobuf::ScanToken>, pg_query::Error> {
    if sql.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')) {
        return Ok(Vec::new());
    }
    pg_query::scan_tokens(sql)
}

/// The message of a pg_query error without the crate's prefix.
pub fn pg_message(e: &pg_query::Error) -> String {
    match e {
        pg_query::Error::Parse(m) | pg_query::Error::Split(m) | pg_query::Error::Scan(m) => m.clone(),
        other => other.to_string(),
    }
}
