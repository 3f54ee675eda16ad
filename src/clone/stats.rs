//! The statistics file (`stats.json`): production's shape without its rows.
//! `lockimpact snapshot --stats-only` writes it and `clone::synthetic`
//! generates a dataset from it. Its query reads, read-only and without reading any row of a user table, the schema
//! (`pg_dump --schema-only`) and the planner's statistics: per table its
//! estimated rows, pages and sizes (`pg_class`, `pg_stat_user_tables`), per
//! column `null_frac`, `n_distinct`, `avg_width`, `correlation`, the most
//! common values and their frequencies and the histogram bounds
//! (`pg_stats`; a partitioned table's over all its partitions), which
//! partition belongs to which table, and the keys and constraints; writes
//! them as one JSON file.
//! With `--redact-values`, the values the statistics quote (real data) are
//! replaced by generated ones of the same width, in the same order.

use serde::{Deserialize, Serialize};

/// The statistics file's format version: 2 added the partitions (a
/// partitioned table's statistics are its partitions' together).
pub const STATS_VERSION: u32 = 2;

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    #[serde(default)]
    pub stats_version: u32,
    pub server_version: String,
    /// `pg_dump --schema-only --no-owner --no-privileges`, plain SQL.
    #[serde(default)]
    pub schema_sql: String,
    pub tables: Vec<TableStats>,
    /// Primary keys, unique, check and foreign-key constraints.
    pub constraints: Vec<ConstraintStats>,
    /// Quoted values were replaced by generated ones (`--redact-values`).
    #[serde(default)]
    pub redacted: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TableStats {
    pub schema: String,
    pub name: String,
    /// `oid::regclass::text` on the source, as the constraints name the table
    /// (quoted where needed, e.g. `"order"`); absent in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regclass: Option<String>,
    /// `pg_class.reltuples` (-1: never analyzed) and `relpages`.
    pub reltuples: i64,
    pub relpages: i64,
    pub bytes: i64,
    pub total_bytes: i64,
    pub n_live_tup: Option<i64>,
    /// The table was never analyzed: its columns have no statistics.
    pub analyzed: bool,
    /// A partition: the table it is a partition of (regclass); its rows are
    /// generated through that table, not on their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_of: Option<String>,
    /// A partitioned table: its statistics are over all its partitions.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partitioned: bool,
    pub columns: Vec<ColumnStats>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ColumnStats {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub not_null: bool,
    /// From `pg_stats`; absent when the column has no statistics.
    pub null_frac: Option<f64>,
    /// > 0: distinct values; < 0: minus the fraction of rows distinct.
    pub n_distinct: Option<f64>,
    pub avg_width: Option<i32>,
    pub correlation: Option<f64>,
    #[serde(deserialize_with = "values")]
    pub most_common_vals: Option<Vec<Option<String>>>,
    pub most_common_freqs: Option<Vec<f64>>,
    #[serde(deserialize_with = "values")]
    pub histogram_bounds: Option<Vec<Option<String>>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConstraintStats {
    pub table: String,
    pub name: String,
    /// `p`, `u`, `c` or `f`, as `pg_constraint.contype`.
    pub kind: String,
    pub columns: Vec<String>,
    /// For a foreign key: the table and columns it references.
    pub references: Option<String>,
    pub ref_columns: Vec<String>,
    pub definition: String,
}

/// One query over the catalogs and `pg_stats` (no user table is read): the
/// tables with their columns' statistics, and the constraints, as JSON.
/// The statistics' values stay array literals (`anyarray::text`), parsed by
/// `array_literal` as they are read, so a column of any type reads.
pub const STATS_SQL: &str = "SELECT json_build_object(\
  'server_version', current_setting('server_version'), \
  'tables', coalesce((SELECT json_agg(t ORDER BY t.schema, t.name) FROM (\
    SELECT n.nspname AS schema, c.relname AS name, c.oid::regclass::text AS regclass, c.reltuples::bigint AS reltuples, c.relpages::bigint AS relpages, \
      pg_table_size(c.oid) AS bytes, pg_total_relation_size(c.oid) AS total_bytes, s.n_live_tup, \
      (s.last_analyze IS NOT NULL OR s.last_autoanalyze IS NOT NULL OR c.reltuples >= 0) AS analyzed, \
      (SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = c.oid AND c.relispartition) AS partition_of, \
      c.relkind = 'p' AS partitioned, \
      coalesce((SELECT json_agg(json_build_object(\
          'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod), 'not_null', a.attnotnull, \
          'null_frac', st.null_frac, 'n_distinct', st.n_distinct, 'avg_width', st.avg_width, \
          'correlation', st.correlation, 'most_common_vals', st.most_common_vals::text, \
          'most_common_freqs', st.most_common_freqs, 'histogram_bounds', st.histogram_bounds::text) ORDER BY a.attnum) \
        FROM pg_attribute a LEFT JOIN pg_stats st ON st.schemaname = n.nspname AND st.tablename = c.relname \
          AND st.attname = a.attname AND st.inherited = (c.relkind = 'p') \
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]') AS columns \
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
    LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid \
    WHERE c.relkind IN ('r','p') AND n.nspname NOT IN ('pg_catalog','information_schema') \
      AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%') t), '[]'), \
  'constraints', coalesce((SELECT json_agg(json_build_object(\
      'table', co.conrelid::regclass::text, 'name', co.conname, 'kind', co.contype, \
      'columns', (SELECT coalesce(json_agg(a.attname ORDER BY k.ord), '[]') FROM unnest(co.conkey) WITH ORDINALITY k(n, ord) \
        JOIN pg_attribute a ON a.attrelid = co.conrelid AND a.attnum = k.n), \
      'references', CASE WHEN co.contype = 'f' THEN co.confrelid::regclass::text END, \
      'ref_columns', (SELECT coalesce(json_agg(a.attname ORDER BY k.ord), '[]') FROM unnest(co.confkey) WITH ORDINALITY k(n, ord) \
        JOIN pg_attribute a ON a.attrelid = co.confrelid AND a.attnum = k.n), \
      'definition', pg_get_constraintdef(co.oid)) ORDER BY co.conrelid::regclass::text, co.conname) \
    FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace \
    WHERE co.contype IN ('p','u','c','f') AND co.conrelid <> 0 \
      AND n.nspname NOT IN ('pg_catalog','information_schema')), '[]'))";

impl Stats {
    /// A partitioned table (not itself a partition) without statistics of
    /// its own: its rows cannot be generated. Autovacuum never analyzes a
    /// partitioned table; `ANALYZE` of it does, from a sample of its partitions.
    pub fn unanalyzed_partitioned(&self) -> Option<&TableStats> {
        let unanalyzed = |t: &TableStats| t.reltuples < 0 || t.columns.iter().all(|c| c.null_frac.is_none());
        self.tables.iter().find(|t| t.partitioned && t.partition_of.is_none() && unanalyzed(t))
    }
}

/// The statistics from `STATS_SQL`'s JSON and the schema dump.
pub fn from_query(json: &str, schema_sql: String) -> Result<Stats, String> {
    let st: Stats = serde_json::from_str(json).map_err(|e| format!("unexpected statistics from the server: {e}"))?;
    Ok(Stats { stats_version: STATS_VERSION, schema_sql, redacted: false, ..st })
}

/// A list of values as the file keeps it, or as the query returns it (an
/// array literal, `anyarray::text`).
#[derive(Deserialize)]
#[serde(untagged)]
enum ListOrLiteral {
    List(Vec<Option<String>>),
    Literal(String),
}

fn values<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<Option<String>>>, D::Error> {
    Ok(Option::<ListOrLiteral>::deserialize(d)?.map(|v| match v {
        ListOrLiteral::List(l) => l,
        ListOrLiteral::Literal(s) => array_literal(&s),
    }))
}

/// The elements of a one-dimensional array literal (`{a,"b c",NULL}`);
/// `None` for an unquoted NULL.
pub fn array_literal(text: &str) -> Vec<Option<String>> {
    let inner = text.trim().strip_prefix('{').and_then(|t| t.strip_suffix('}')).unwrap_or(text);
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    while chars.peek().is_some() {
        let mut item = String::new();
        let quoted = chars.peek() == Some(&'"');
        if quoted {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => item.extend(chars.next()),
                    '"' => break,
                    c => item.push(c),
                }
            }
            chars.next_if_eq(&',');
            out.push(Some(item));
            continue;
        }
        for c in chars.by_ref() {
            if c == ',' {
                break;
            }
            item.push(c);
        }
        out.push(if item == "NULL" { None } else { Some(item) });
    }
    out
}

/// Replaces every value the statistics quote by a generated one of the same
/// width and kind (digits for digits, letters for letters; other characters
/// kept), in the same sort order within each list (histogram bounds stay
/// ascending); the frequencies, fractions and widths are kept.
pub fn redact(stats: &mut Stats, seed: u64) {
    let mut rng = seed | 1;
    for c in stats.tables.iter_mut().flat_map(|t| t.columns.iter_mut()) {
        for list in [c.most_common_vals.as_mut(), c.histogram_bounds.as_mut()].into_iter().flatten() {
            redact_list(list, &mut rng);
        }
    }
    stats.redacted = true;
}

/// Each value replaced, then the new values put in the old values' order.
fn redact_list(list: &mut [Option<String>], rng: &mut u64) {
    let mut fresh: Vec<String> = list.iter().flatten().map(|v| generated(v, rng)).collect();
    fresh.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
    let mut order: Vec<usize> = (0..list.len()).filter(|&i| list[i].is_some()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (list[a].as_deref().unwrap_or(""), list[b].as_deref().unwrap_or(""));
        (x.len(), x).cmp(&(y.len(), y))
    });
    for (slot, value) in order.into_iter().zip(fresh) {
        list[slot] = Some(value);
    }
}

/// A value shaped like `v`: each digit a random digit, each letter a random
/// letter (same case), every other character (`-`, `:`, `.`, ` `) kept, so
/// a date stays a date's shape and a number its width.
fn generated(v: &str, rng: &mut u64) -> String {
    v.chars()
        .map(|c| {
            *rng ^= *rng << 13;
            *rng ^= *rng >> 7;
            *rng ^= *rng << 17;
            let r = *rng;
            match c {
                '0'..='9' => char::from(b'0' + (r % 10) as u8),
                'a'..='z' => char::from(b'a' + (r % 26) as u8),
                'A'..='Z' => char::from(b'A' + (r % 26) as u8),
                c => c,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_literals() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(array_literal("{a,\"b c\",NULL,\"q\\\"x\"}"), [s("a"), s("b c"), None, s("q\"x")]);
        assert_eq!(array_literal("{1,2}"), [s("1"), s("2")]);
        assert_eq!(array_literal("{}"), Vec::<Option<String>>::new());
    }

    #[test]
    fn redaction_keeps_width_shape_and_order() {
        let mut list: Vec<Option<String>> =
            ["DE", "FR", "US"].iter().map(|v| Some(v.to_string())).chain([None]).collect();
        let before = list.clone();
        redact_list(&mut list, &mut 7);
        assert_ne!(list, before);
        assert!(
            list[..3]
                .iter()
                .all(|v| v.as_ref().is_some_and(|v| v.len() == 2 && v.chars().all(|c| c.is_ascii_uppercase())))
        );
        assert_eq!(list[3], None);
        let mut sorted = list[..3].to_vec();
        sorted.sort();
        assert_eq!(sorted, list[..3], "histogram bounds stay ascending");
        assert_eq!(generated("2024-01-31", &mut 3).len(), 10);
        assert_eq!(generated("2024-01-31", &mut 3).matches('-').count(), 2);
    }
}
