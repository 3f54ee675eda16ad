//! `[snapshot] synthetic = "stats.json"`: a dataset made from the planner's
//! statistics (`clone::stats`, written by `lockimpact snapshot --stats-only`)
//! instead of a seed script or a dump. The schema's pre-data part (tables,
//! types, sequences) is applied first, each table's rows (`reltuples ×
//! scale`) are generated and loaded with COPY — parents before children, the
//! tables of one level in parallel on their own connections, a table of a
//! million rows or more over two, in COPY's binary format when every
//! column's type has one (`binary`) — then the post-data part (indexes, keys,
//! foreign keys, which validate the load), the sequences are moved past the
//! loaded keys, and ANALYZE. A partitioned table is generated as one table,
//! from its statistics over all its partitions, and COPY routes each row to
//! its partition; the partitions are not generated on their own.
//!
//! Per column: NULL with `null_frac`; a most common value with its
//! frequency; else one of the remaining distinct values (`n_distinct`, a
//! negative one a fraction of the generated rows), spread over the
//! histogram's equal-frequency buckets (uniform between bounds for numbers,
//! dates and timestamps; bound strings, or text of the bucket's bound with a
//! distinguishing tag, for text), in row order when `correlation` says the
//! table is laid out by the column. A single-column primary key or unique
//! integer column is 1..n; other unique columns get one distinct value per
//! row; a foreign key takes the parent's generated keys, and the last
//! foreign key of a key made only of foreign-key columns takes them in turn
//! for each combination of the others (`Distinct`), so the key stays
//! unique. Deterministic: the same file, scale and seed give the same rows
//! (a table loaded over two connections may place its chunks in another
//! order). This module imports only the statistics' model and the shared
//! vocabulary (no clone backend).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::SinkExt;

mod binary;

use self::binary::Binary;
use super::stats::{ColumnStats, ConstraintStats, Stats, TableStats};
use crate::error::{Error, Result, describe_pg};
use crate::pg::Target;

/// The generator's seed unless the scenario names one.
pub const DEFAULT_SEED: u64 = 0x5eed_da7a;
/// Tables loaded at once (each on its own connection).
const PARALLEL: usize = 4;
/// Rows per COPY chunk.
const CHUNK_ROWS: u64 = 20_000;

/// A validated `[snapshot] synthetic`.
#[derive(Debug, Clone)]
pub struct SyntheticPlan {
    /// The statistics file (`lockimpact snapshot --stats-only`).
    pub path: PathBuf,
    pub stats: Arc<Stats>,
    /// Fraction of each table's rows to generate (`snapshot.scale`).
    pub scale: f64,
    pub seed: u64,
}

/// What `build` generated.
#[derive(Debug, Clone)]
pub struct Generated {
    /// (table, rows) in load order.
    pub tables: Vec<(String, u64)>,
    pub rows: u64,
    /// Time spent generating and loading (COPY), without the schema and ANALYZE.
    pub load_time: Duration,
    /// Each table's load, in load order.
    pub loads: Vec<TableLoad>,
}

/// One table's generation and COPY.
#[derive(Debug, Clone)]
pub struct TableLoad {
    pub table: String,
    pub rows: u64,
    /// COPY data sent.
    pub bytes: u64,
    /// COPY connections it was loaded over (`STREAMS` for a large table).
    pub streams: usize,
    /// Sent in COPY's binary format (every column's type has one), else text.
    pub binary: bool,
    /// From the COPY's start to the server's acknowledgement of its end.
    pub took: Duration,
    /// The part of `took` spent generating rows (the rest: sending and
    /// waiting for the server).
    pub generating: Duration,
}

// ---------------------------------------------------------------- schema

/// pg_dump's TOC types of the post-data section: created after the load.
const POST_DATA: &[&str] = &[
    "INDEX",
    "INDEX ATTACH",
    "CONSTRAINT",
    "FK CONSTRAINT",
    "CHECK CONSTRAINT",
    "TRIGGER",
    "EVENT TRIGGER",
    "RULE",
    "POLICY",
    "STATISTICS",
    "MATERIALIZED VIEW DATA",
    "PUBLICATION TABLE",
];

/// The schema split at its first post-data object (pg_dump writes every
/// pre-data object first, each after a `-- Name: …; Type: …;` header);
/// psql meta-commands (`\restrict`) are dropped. Without such headers the
/// whole script is pre-data.
pub fn split_schema(sql: &str) -> (String, String) {
    let lines: Vec<&str> = sql.lines().filter(|l| !l.starts_with('\\')).collect();
    let is_post = |l: &str| {
        l.strip_prefix("-- Name: ")
            .and_then(|r| r.split("; Type: ").nth(1))
            .and_then(|r| r.split(';').next())
            .is_some_and(|t| POST_DATA.contains(&t))
    };
    let Some(at) = lines.iter().position(|l| is_post(l)) else {
        return (lines.join("\n"), String::new());
    };
    // The header's opening `--` line belongs with it.
    let at = if at > 0 && lines[at - 1] == "--" { at - 1 } else { at };
    // The session settings at the top (SET …) apply to both parts.
    let settings: Vec<&str> = lines[..at]
        .iter()
        .copied()
        .filter(|l| l.starts_with("SET ") || l.starts_with("SELECT pg_catalog.set_config"))
        .collect();
    (lines[..at].join("\n"), format!("{}\n{}", settings.join("\n"), lines[at..].join("\n")))
}

// ---------------------------------------------------------------- random

/// splitmix64: small, fast, deterministic.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn hash(seed: u64, text: &str) -> u64 {
    text.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

// ---------------------------------------------------------------- values

/// How a column's values are made and written.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Int,
    Float { decimals: usize },
    Date,
    Timestamp { tz: bool },
    Bool,
    Uuid,
    Text,
}

fn kind(data_type: &str, bounds: &[String]) -> Kind {
    let t = data_type.split('(').next().unwrap_or(data_type).trim();
    match t {
        "smallint" | "integer" | "bigint" => Kind::Int,
        "numeric" | "real" | "double precision" => Kind::Float {
            decimals: bounds.iter().filter_map(|b| b.split_once('.').map(|(_, d)| d.len())).max().unwrap_or(0),
        },
        "date" => Kind::Date,
        "timestamp with time zone" => Kind::Timestamp { tz: true },
        "timestamp without time zone" => Kind::Timestamp { tz: false },
        "boolean" => Kind::Bool,
        "uuid" => Kind::Uuid,
        _ => Kind::Text,
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Microseconds since 1970 of `YYYY-MM-DD[ HH:MM:SS[.f]][±HH[:MM]]`.
fn parse_time(s: &str) -> Option<f64> {
    let (date, rest) = s.split_at_checked(10)?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let days = days_from_civil(d.next()??, d.next()??, d.next()??);
    let rest = rest.trim_start();
    let (clock, offset) = match rest.rfind(['+', '-']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let mut secs = 0.0;
    for (i, part) in clock.split(':').filter(|p| !p.is_empty()).enumerate() {
        secs += part.parse::<f64>().ok()? * [3600.0, 60.0, 1.0].get(i)?;
    }
    if let Some(sign) = offset.chars().next() {
        let mut o = offset[1..].split(':').map(|p| p.parse::<f64>().unwrap_or(0.0));
        let off = o.next().unwrap_or(0.0) * 3600.0 + o.next().unwrap_or(0.0) * 60.0;
        secs -= if sign == '-' { -off } else { off };
    }
    Some(days as f64 * 86_400e6 + secs * 1e6)
}

fn write_time(micros: f64, kind: Kind, out: &mut String) {
    let us = micros.round() as i64;
    let (y, m, d) = civil_from_days(us.div_euclid(86_400_000_000));
    push_padded(out, y, 4);
    out.push('-');
    push_padded(out, m, 2);
    out.push('-');
    push_padded(out, d, 2);
    if let Kind::Timestamp { tz } = kind {
        let t = us.rem_euclid(86_400_000_000);
        let (s, f) = (t / 1_000_000, t % 1_000_000);
        out.push(' ');
        push_padded(out, s / 3600, 2);
        out.push(':');
        push_padded(out, s / 60 % 60, 2);
        out.push(':');
        push_padded(out, s % 60, 2);
        out.push('.');
        push_padded(out, f, 6);
        if tz {
            out.push_str("+00");
        }
    }
}

/// `v` in decimal, zero-padded to `width` digits (a sign before them),
/// without the formatting machinery: the generator writes millions of these.
fn push_padded(out: &mut String, v: i64, width: usize) {
    let mut digits = [0u8; 20];
    let (mut n, mut u) = (0, v.unsigned_abs());
    while u > 0 || n < width.max(1) {
        digits[n] = b'0' + (u % 10) as u8;
        u /= 10;
        n += 1;
    }
    if v < 0 {
        out.push('-');
    }
    out.extend(digits[..n].iter().rev().map(|&b| b as char));
}

fn push_int(out: &mut String, v: i64) {
    push_padded(out, v, 1);
}

/// A value of a number-like column as f64 (timestamps in microseconds).
fn numeric(v: &str, kind: Kind) -> Option<f64> {
    match kind {
        Kind::Int | Kind::Float { .. } => v.parse().ok(),
        Kind::Date | Kind::Timestamp { .. } => parse_time(v),
        _ => None,
    }
}

/// A short tag that tells distinct values apart: `k` in base 36, `width` digits at least.
fn tag(mut k: u64, width: usize, out: &mut String) {
    let mut digits = [0u8; 16];
    let mut n = 0;
    while k > 0 || n < width.max(1) {
        digits[n] = b"0123456789abcdefghijklmnopqrstuvwxyz"[(k % 36) as usize];
        k /= 36;
        n += 1;
    }
    out.extend(digits[..n].iter().rev().map(|&b| b as char));
}

// ---------------------------------------------------------------- columns

/// Where a row's value comes from, before it is written.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Draw {
    Null,
    Common(usize),
    /// A place in [0, 1) among the remaining values (in their order).
    Rest(f64),
}

/// Nulls, most common values and the remaining distinct values of a column.
#[derive(Debug, Clone)]
struct Dist {
    null_frac: f64,
    /// Cumulative frequencies of the most common values, after `null_frac`.
    common: Vec<f64>,
    /// Distinct values besides the most common ones (at least 1).
    rest: u64,
    /// Rows expected to draw from the rest.
    rest_rows: f64,
    /// Ascending (1), descending (-1) or scattered (0) over the rows.
    /// A draw from the rest is a place in [0, 1) among the rest's rows.
    order: i8,
    stride: u64,
    seen: u64,
}

impl Dist {
    fn new(c: &ColumnStats, rows: u64, distinct_cap: u64) -> Dist {
        let null_frac = if c.not_null { 0.0 } else { c.null_frac.unwrap_or(0.0) };
        let freqs = c.most_common_freqs.clone().unwrap_or_default();
        let mut common = Vec::with_capacity(freqs.len());
        let mut acc = null_frac;
        for f in &freqs {
            acc += f;
            common.push(acc.min(1.0));
        }
        let total = match c.n_distinct {
            Some(d) if d < 0.0 => (-d * rows as f64).round() as u64,
            Some(d) if d > 0.0 => d.round() as u64,
            _ => rows,
        };
        let total = total.clamp(1, distinct_cap.max(1));
        let rest_rows = (rows as f64 * (1.0 - acc)).max(1.0);
        let rest = total.saturating_sub(freqs.len() as u64).max(1);
        let order = match c.correlation {
            Some(r) if r > 0.5 => 1,
            Some(r) if r < -0.5 => -1,
            _ => 0,
        };
        let n = rest_rows.ceil() as u64;
        let stride = [1_000_003u64, 999_983, 7_919, 104_729].into_iter().find(|p| !n.is_multiple_of(*p)).unwrap_or(1);
        Dist { null_frac, common, rest, rest_rows, order, stride, seen: 0 }
    }

    /// Every row distinct (a unique column).
    fn unique(c: &ColumnStats, rows: u64) -> Dist {
        let mut d =
            Dist::new(&ColumnStats { n_distinct: Some(-1.0), most_common_freqs: None, ..c.clone() }, rows, rows);
        d.rest = rows.max(1);
        d.rest_rows = (rows.max(1) as f64 * (1.0 - d.null_frac)).max(1.0);
        d
    }

    fn draw(&mut self, rng: &mut Rng) -> Draw {
        let u = rng.unit();
        if u < self.null_frac {
            return Draw::Null;
        }
        if let Some(i) = self.common.iter().position(|&c| u < c) {
            return Draw::Common(i);
        }
        let i = self.seen;
        self.seen += 1;
        let n = self.rest_rows.ceil().max(1.0) as u64;
        let at = match self.order {
            0 => i.wrapping_mul(self.stride) % n,
            _ => i.min(n - 1),
        };
        let q = (at as f64 + 0.5) / n as f64;
        Draw::Rest(if self.order < 0 { 1.0 - q } else { q })
    }

    /// The k-th remaining distinct value at place `q`.
    fn k(&self, q: f64) -> u64 {
        ((q * self.rest as f64) as u64).min(self.rest - 1)
    }
}

/// The values a column's remaining draws map to.
#[derive(Debug, Clone)]
struct Values {
    kind: Kind,
    common: Vec<Option<String>>,
    /// Histogram bounds (text), and as numbers for a number-like kind.
    bounds: Vec<String>,
    numbers: Vec<f64>,
    /// Target width of generated text (`avg_width`).
    width: usize,
    /// Fixed tag width, so generated text stays distinct (unique columns).
    tag_width: usize,
    /// Integers: distinct values per histogram bucket, at most its width.
    slots: Vec<f64>,
}

impl Values {
    fn new(c: &ColumnStats, dist: &Dist) -> Values {
        let rest = dist.rest;
        let bounds: Vec<String> = c.histogram_bounds.iter().flatten().flatten().cloned().collect();
        let kind = kind(&c.data_type, &bounds);
        let mut numbers: Vec<f64> = bounds.iter().filter_map(|b| numeric(b, kind)).collect();
        if numbers.len() != bounds.len() || numbers.len() < 2 {
            numbers.clear();
        }
        numbers.sort_by(f64::total_cmp);
        let mut tag_width = 1;
        while 36f64.powi(tag_width as i32) < rest as f64 {
            tag_width += 1;
        }
        let slots = if kind == Kind::Int { int_slots(&numbers, dist) } else { Vec::new() };
        Values {
            kind,
            slots,
            common: c.most_common_vals.clone().unwrap_or_default(),
            bounds,
            numbers,
            width: c.avg_width.unwrap_or(8).max(1) as usize,
            tag_width,
        }
    }

    /// The remaining value at place `q`, written to `out`.
    fn rest(&self, q: f64, dist: &Dist, out: &mut String) {
        use std::fmt::Write;
        let (k, rest) = (dist.k(q), dist.rest);
        let p = (k as f64 + 0.5) / rest as f64;
        if !self.slots.is_empty() {
            // Each bucket holds as many rows; its distinct values fit its width.
            let pos = q * self.slots.len() as f64;
            let (j, frac) = ((pos as usize).min(self.slots.len() - 1), pos.fract());
            let (lo, hi) = (self.numbers[j], self.numbers[j + 1]);
            let idx = (frac * self.slots[j]).floor();
            push_int(out, (lo + idx * ((hi - lo) / self.slots[j]).max(1.0)).floor() as i64);
            return;
        }
        if !self.numbers.is_empty() {
            let pos = p * (self.numbers.len() - 1) as f64;
            let (j, frac) = (pos.floor() as usize, pos.fract());
            let (lo, hi) = (self.numbers[j], self.numbers[(j + 1).min(self.numbers.len() - 1)]);
            let v = lo + frac * (hi - lo);
            match self.kind {
                Kind::Int => push_int(out, v.floor() as i64),
                Kind::Float { decimals } => drop(write!(out, "{v:.decimals$}")),
                _ => write_time(v, self.kind, out),
            }
            return;
        }
        match self.kind {
            Kind::Int => push_int(out, k as i64 + 1),
            Kind::Float { .. } => {
                let _ = write!(out, "{k}");
            }
            Kind::Date | Kind::Timestamp { .. } => write_time(k as f64 * 86_400e6, self.kind, out),
            Kind::Bool => out.push(if k % 2 == 0 { 't' } else { 'f' }),
            Kind::Uuid => {
                let h = hash(k, "uuid") as u128 | ((k as u128) << 64);
                let x = format!("{h:032x}");
                let _ = write!(out, "{}-{}-{}-{}-{}", &x[..8], &x[8..12], &x[12..16], &x[16..20], &x[20..]);
            }
            Kind::Text => self.text(k, rest, p, out),
        }
    }

    /// Text: a bound string when there are no more distinct values than
    /// bounds; else the bucket's lower bound, cut to the column's width,
    /// with a tag of `k`.
    fn text(&self, k: u64, rest: u64, p: f64, out: &mut String) {
        if self.bounds.is_empty() {
            tag(k, self.tag_width.max(self.width.saturating_sub(1)), out);
            return;
        }
        let j = ((p * self.bounds.len() as f64) as usize).min(self.bounds.len() - 1);
        if rest <= self.bounds.len() as u64 {
            out.push_str(&self.bounds[j]);
            return;
        }
        let keep = self.width.saturating_sub(1 + self.tag_width);
        out.extend(self.bounds[j].chars().take(keep));
        tag(k, self.tag_width, out);
    }
}

/// Distinct integers per histogram bucket: the rest's distinct count
/// shared out evenly, no bucket given more than its width or its rows
/// (water-filling), so a narrow bucket's repeats do not lose values.
fn int_slots(bounds: &[f64], dist: &Dist) -> Vec<f64> {
    if bounds.len() < 2 {
        return Vec::new();
    }
    let m = bounds.len() - 1;
    let rows = dist.rest_rows / m as f64;
    let caps: Vec<f64> = bounds.windows(2).map(|w| (w[1] - w[0]).max(1.0).min(rows.max(1.0))).collect();
    let mut sorted = caps.clone();
    sorted.sort_by(f64::total_cmp);
    let (mut left, mut level) = (dist.rest as f64, f64::INFINITY);
    for (i, c) in sorted.iter().enumerate() {
        let share = left / (m - i) as f64;
        if *c >= share {
            level = share;
            break;
        }
        left -= c;
    }
    caps.iter().map(|c| c.min(level).max(1.0)).collect()
}

/// Where a column's values come from.
#[derive(Debug, Clone)]
enum Role {
    /// Not in the COPY (no statistics and a default, or a generated column).
    Skip,
    /// 1..n (a single-column integer key).
    Serial,
    /// Drawn from the statistics (`Dist` over `Values`).
    Drawn(Values, Dist),
    /// Part `pos` of the table's foreign key `fk`.
    Foreign { fk: usize, pos: usize },
}

#[derive(Debug, Clone)]
struct ColumnGen {
    name: String,
    role: Role,
    /// Its type's binary form, when it has one.
    binary: Option<Binary>,
}

impl ColumnGen {
    /// Whether every value its statistics name converts to its binary form
    /// (a generated value always does).
    fn binary_ready(&self) -> bool {
        let Some(b) = self.binary else { return false };
        let converts = |v: &String| b.write(v, &mut Vec::new());
        match &self.role {
            Role::Skip | Role::Foreign { .. } => true,
            Role::Serial => matches!(b, Binary::Int2 | Binary::Int4 | Binary::Int8),
            Role::Drawn(values, _) => values.common.iter().flatten().chain(&values.bounds).all(converts),
        }
    }
}

// ---------------------------------------------------------------- keys

/// The generated keys a foreign key draws from: row j's referenced columns.
#[derive(Debug)]
enum Keys {
    /// A serial key: row j holds j + 1.
    Range(u64),
    Rows(Vec<Vec<String>>),
}

impl Keys {
    fn len(&self) -> u64 {
        match self {
            Keys::Range(n) => *n,
            Keys::Rows(r) => r.len() as u64,
        }
    }

    fn write(&self, j: u64, pos: usize, out: &mut String) {
        match self {
            Keys::Range(_) => push_int(out, j as i64 + 1),
            Keys::Rows(r) => out.push_str(&r[j as usize][pos]),
        }
    }
}

/// A foreign key of a table being generated: which parent row each child row takes.
#[derive(Debug)]
struct FkGen {
    keys: Arc<Keys>,
    dist: Dist,
    commons: usize,
    /// Set when the foreign key completes a unique key made only of
    /// foreign-key columns: its parent keys are then taken in turn.
    distinct: Option<Distinct>,
}

/// A foreign key that must not repeat a parent key for the same picks of
/// the key's other foreign keys (`others`, none when it is the whole
/// unique key): for each combination of theirs it takes the parent keys
/// in turn, from an offset of the combination's hash, so no tuple of the
/// unique key repeats while a combination has no more rows than there are
/// parent keys. Its own statistics then only say where it is NULL.
#[derive(Debug)]
struct Distinct {
    others: Vec<usize>,
    /// Rows so far per combination (by its hash).
    taken: std::collections::HashMap<u64, u64>,
}

impl Distinct {
    /// The parent key (< `n`, which is not 0: a foreign key with no parent
    /// keys picks NULL) of the row whose foreign keys picked `picks`.
    fn next(&mut self, picks: &[Option<u64>], n: u64) -> u64 {
        let mix = |h: u64, v: u64| Rng(h ^ v).next();
        let combination = self.others.iter().fold(0, |h, &o| mix(h, picks[o].map_or(u64::MAX, |p| p)));
        let taken = self.taken.entry(combination).or_insert(0);
        *taken += 1;
        combination.wrapping_add(*taken - 1) % n
    }
}

impl FkGen {
    fn pick(&mut self, rng: &mut Rng) -> Option<u64> {
        let n = self.keys.len();
        match self.dist.draw(rng) {
            _ if n == 0 => None,
            Draw::Null => None,
            Draw::Common(i) => Some(i as u64 % n),
            Draw::Rest(q) => Some((self.commons as u64 + self.dist.k(q)) % n),
        }
    }
}

// ---------------------------------------------------------------- tables

/// A table's name as `regclass::text` shows it (the constraints' `table`):
/// the source's own text, or for a file written before it was recorded, as
/// the source would have quoted it (all but reserved words).
fn regclass(t: &TableStats) -> String {
    match &t.regclass {
        Some(r) => r.clone(),
        None => regclass_of(&t.schema, &t.name),
    }
}

fn regclass_of(schema: &str, name: &str) -> String {
    let q = |s: &str| {
        if s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !s.starts_with(|c: char| c.is_ascii_digit())
        {
            s.to_string()
        } else {
            format!("\"{}\"", s.replace('"', "\"\""))
        }
    };
    if schema == "public" { q(name) } else { format!("{}.{}", q(schema), q(name)) }
}

fn qualified(t: &TableStats) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    format!("{}.{}", q(&t.schema), q(&t.name))
}

/// Rows to generate: `reltuples × scale` (`n_live_tup` when never
/// analyzed), at least 1 for a table that has rows.
pub fn target_rows(t: &TableStats, scale: f64) -> u64 {
    let rows = if t.reltuples >= 0 { t.reltuples } else { t.n_live_tup.unwrap_or(0) };
    if rows <= 0 { 0 } else { ((rows as f64 * scale).round() as u64).max(1) }
}

/// A referenced column set: its names, their places in the row, and each row's values.
type Recorded = (Vec<String>, Vec<usize>, Vec<Vec<String>>);

/// One table's generator: its columns, its foreign keys and the keys it records for children.
struct TableGen {
    name: String,
    qualified: String,
    rows: u64,
    done: u64,
    rng: Rng,
    columns: Vec<ColumnGen>,
    fks: Vec<FkGen>,
    /// Referenced column sets (indexes into `columns`) whose values children need.
    record: Vec<Recorded>,
    /// Loaded in COPY's binary format (every column converts), else text.
    binary: bool,
}

impl TableGen {
    /// Appends up to `max` rows in its COPY format to `buf`; false when done.
    fn chunk(&mut self, max: u64, buf: &mut Vec<u8>) -> bool {
        let fields = self.loaded().count();
        let mut value = String::new();
        let mut picks = vec![None; self.fks.len()];
        let mut recorded: Vec<Vec<String>> = self.record.iter().map(|(_, c, _)| vec![String::new(); c.len()]).collect();
        let end = (self.done + max).min(self.rows);
        for row in self.done..end {
            for (p, fk) in picks.iter_mut().zip(&mut self.fks) {
                *p = fk.pick(&mut self.rng);
            }
            for fk in 0..self.fks.len() {
                let n = self.fks[fk].keys.len();
                if let (Some(d), Some(_)) = (&mut self.fks[fk].distinct, picks[fk]) {
                    picks[fk] = Some(d.next(&picks, n));
                }
            }
            if self.binary {
                binary::write_tuple_start(fields, buf);
            }
            let mut first = true;
            for (ci, col) in self.columns.iter_mut().enumerate() {
                value.clear();
                let null = match &mut col.role {
                    Role::Skip => continue,
                    Role::Serial => {
                        push_int(&mut value, row as i64 + 1);
                        false
                    }
                    Role::Drawn(values, dist) => match dist.draw(&mut self.rng) {
                        Draw::Null => true,
                        Draw::Common(i) => match &values.common[i] {
                            Some(v) => {
                                value.push_str(v);
                                false
                            }
                            None => true,
                        },
                        Draw::Rest(q) => {
                            values.rest(q, dist, &mut value);
                            false
                        }
                    },
                    Role::Foreign { fk, pos } => match picks[*fk] {
                        Some(j) => {
                            self.fks[*fk].keys.write(j, *pos, &mut value);
                            false
                        }
                        None => true,
                    },
                };
                match (self.binary, col.binary) {
                    (true, _) if null => binary::write_null(buf),
                    // Converts by construction (`binary_ready`); else the
                    // server refuses the field, naming the column.
                    (true, Some(b)) => {
                        if !b.write(&value, buf) {
                            binary::write_refused(buf);
                        }
                    }
                    _ => {
                        if !first {
                            buf.push(b'\t');
                        }
                        if null { buf.extend_from_slice(b"\\N") } else { escape(&value, buf) }
                    }
                }
                first = false;
                for ((_, cols, _), slots) in self.record.iter().zip(&mut recorded) {
                    if let Some(pos) = cols.iter().position(|&c| c == ci) {
                        slots[pos].clone_from(&value);
                    }
                }
            }
            // In the key's column order, whatever the table's.
            for ((_, _, rows), slots) in self.record.iter_mut().zip(&recorded) {
                rows.push(slots.clone());
            }
            if !self.binary {
                buf.push(b'\n');
            }
        }
        self.done = end;
        self.done < self.rows
    }

    /// The columns in the COPY, in order.
    fn loaded(&self) -> impl Iterator<Item = &ColumnGen> {
        self.columns.iter().filter(|c| !matches!(c.role, Role::Skip))
    }

    /// The COPY statement's column list.
    fn copy_sql(&self) -> String {
        let cols: Vec<String> = self.loaded().map(|c| format!("\"{}\"", c.name.replace('"', "\"\""))).collect();
        let format = if self.binary { " (FORMAT binary)" } else { "" };
        format!("COPY {} ({}) FROM STDIN{format}", self.qualified, cols.join(", "))
    }

    /// What each COPY stream starts and ends with.
    fn framing(&self) -> (&'static [u8], &'static [u8]) {
        if self.binary { (binary::HEADER, binary::TRAILER) } else { (b"", b"") }
    }
}

/// COPY text format: backslash, tab, newline and carriage return escaped.
fn escape(v: &str, buf: &mut Vec<u8>) {
    if !v.bytes().any(|b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r')) {
        buf.extend_from_slice(v.as_bytes());
        return;
    }
    for b in v.bytes() {
        match b {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b => buf.push(b),
        }
    }
}

// ---------------------------------------------------------------- model

/// The statistics, indexed for generation.
struct Model<'a> {
    stats: &'a Stats,
    scale: f64,
    /// Per table (regclass name): its index in `stats.tables`.
    index: BTreeMap<String, usize>,
}

impl<'a> Model<'a> {
    fn new(stats: &'a Stats, scale: f64) -> Model<'a> {
        let index = stats.tables.iter().enumerate().map(|(i, t)| (regclass(t), i)).collect();
        Model { stats, scale, index }
    }

    fn constraints(&self, table: &str, kind: &str) -> impl Iterator<Item = &'a ConstraintStats> {
        let table = table.to_string();
        let kind = kind.to_string();
        self.stats.constraints.iter().filter(move |c| c.table == table && c.kind == kind)
    }

    /// Tables in levels, partitions left out: each level's foreign keys
    /// point only to earlier levels (or to itself); a cycle ends up in one
    /// last level.
    fn levels(&self) -> Vec<Vec<usize>> {
        // A partition's rows are generated through its partitioned table.
        let mut left: BTreeSet<usize> =
            (0..self.stats.tables.len()).filter(|&i| self.stats.tables[i].partition_of.is_none()).collect();
        let mut levels = Vec::new();
        while !left.is_empty() {
            let ready: Vec<usize> = left
                .iter()
                .copied()
                .filter(|&i| {
                    let name = regclass(&self.stats.tables[i]);
                    self.constraints(&name, "f").all(|c| {
                        let parent = c.references.as_deref().and_then(|r| self.index.get(r));
                        parent.is_none_or(|p| *p == i || !left.contains(p))
                    })
                })
                .collect();
            let level = if ready.is_empty() { left.iter().copied().collect() } else { ready };
            for i in &level {
                left.remove(i);
            }
            levels.push(level);
        }
        levels
    }

    /// Whether `cols` of `table` are a single-column integer key made 1..n.
    fn serial(&self, table: &TableStats, cols: &[String]) -> bool {
        let name = regclass(table);
        let [col] = cols else { return false };
        let keyed =
            self.constraints(&name, "p").chain(self.constraints(&name, "u")).any(|c| c.columns == [col.clone()]);
        let int = table.columns.iter().any(|c| &c.name == col && kind(&c.data_type, &[]) == Kind::Int);
        keyed && int
    }
}

/// Keys by (table, columns): those foreign keys reference.
type KeyMap = BTreeMap<(String, Vec<String>), Arc<Keys>>;

/// The generator of table `i`, given the keys of the tables generated
/// before it and the keys still to record (`pending`).
fn table_gen(
    m: &Model,
    i: usize,
    live: &BTreeMap<String, LiveColumn>,
    (keys, pending): (&KeyMap, &BTreeSet<(String, Vec<String>)>),
    seed: u64,
) -> Result<TableGen> {
    let t = &m.stats.tables[i];
    let name = regclass(t);
    let rows = target_rows(t, m.scale);
    let mut fks = Vec::new();
    let mut fk_of: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for c in m.constraints(&name, "f") {
        let parent = c.references.clone().unwrap_or_default();
        let key = (parent.clone(), c.ref_columns.clone());
        let self_ref = parent == name && m.serial(t, &c.ref_columns);
        let k = match keys.get(&key) {
            Some(k) => k.clone(),
            None if self_ref => Arc::new(Keys::Range(rows)),
            None if !m.index.contains_key(&parent) => continue,
            None => {
                return Err(Error::input(format!(
                    "cannot generate {name}: its foreign key {} references {parent} through a cycle of non-integer \
                     keys, which the generator does not follow yet",
                    c.name
                )));
            }
        };
        let lead = t.columns.iter().find(|col| Some(&col.name) == c.columns.first());
        let Some(lead) = lead else { continue };
        let commons = lead.most_common_freqs.as_ref().map_or(0, Vec::len);
        for (pos, col) in c.columns.iter().enumerate() {
            fk_of.entry(col.clone()).or_insert((fks.len(), pos));
        }
        fks.push(FkGen { dist: Dist::new(lead, rows, k.len()), keys: k, commons, distinct: None });
    }
    distinct_keys(m, &name, rows, &fk_of, &mut fks)?;
    let unique: BTreeSet<String> = m
        .constraints(&name, "p")
        .chain(m.constraints(&name, "u"))
        .filter_map(|c| c.columns.iter().find(|col| !fk_of.contains_key(*col)).cloned())
        .collect();
    let columns = t
        .columns
        .iter()
        .map(|c| {
            let role = match (fk_of.get(&c.name), live.get(&format!("{name}.{}", c.name))) {
                (_, Some(LiveColumn::Generated)) | (_, None) if !live.is_empty() => Role::Skip,
                (Some(&(fk, pos)), _) => Role::Foreign { fk, pos },
                _ if unique.contains(&c.name) && m.serial(t, std::slice::from_ref(&c.name)) => Role::Serial,
                _ if unique.contains(&c.name) => {
                    let dist = Dist::unique(c, rows);
                    Role::Drawn(Values::new(c, &dist), dist)
                }
                (_, Some(LiveColumn::HasDefault)) if c.null_frac.is_none() => Role::Skip,
                _ => {
                    let dist = Dist::new(c, rows, rows);
                    Role::Drawn(Values::new(c, &dist), dist)
                }
            };
            ColumnGen { name: c.name.clone(), role, binary: Binary::of(&c.data_type) }
        })
        .collect::<Vec<_>>();
    let record = pending
        .iter()
        .filter(|(p, _)| *p == name)
        .map(|(_, cols)| {
            let at = cols.iter().filter_map(|c| columns.iter().position(|g| &g.name == c)).collect();
            (cols.clone(), at, Vec::new())
        })
        .collect();
    let binary = columns.iter().all(ColumnGen::binary_ready);
    Ok(TableGen {
        binary,
        qualified: qualified(t),
        name,
        rows,
        done: 0,
        rng: Rng(hash(seed, &regclass(t))),
        columns,
        fks,
        record,
    })
}

/// Marks the foreign key that completes each primary or unique key of
/// `table` made only of foreign-key columns (a join table's pair, a 1:1
/// child's parent key): the last of its foreign keys takes its parent keys
/// in turn (`Distinct`). Refuses a key that is one foreign key alone when
/// the table has more rows than its parent has keys.
fn distinct_keys(
    m: &Model,
    table: &str,
    rows: u64,
    fk_of: &BTreeMap<String, (usize, usize)>,
    fks: &mut [FkGen],
) -> Result<()> {
    for c in m.constraints(table, "p").chain(m.constraints(table, "u")) {
        let Some(mut involved) = c.columns.iter().map(|col| fk_of.get(col).map(|f| f.0)).collect::<Option<Vec<_>>>()
        else {
            continue; // a column of its own is made unique instead
        };
        involved.sort_unstable();
        involved.dedup();
        let Some(varying) = involved.pop() else { continue };
        let parents = fks[varying].keys.len();
        if involved.is_empty() && rows > parents {
            return Err(Error::input(format!(
                "cannot generate {table}: its key {} is a foreign key alone, so each of its {rows} rows needs a \
                 parent row of its own, and the parent has {parents} at this scale",
                c.name
            )));
        }
        if fks[varying].distinct.is_none() {
            fks[varying].distinct = Some(Distinct { others: involved, taken: Default::default() });
        }
    }
    Ok(())
}

/// What the catalog says of a column once the pre-data schema is applied.
#[derive(Debug, Clone, Copy, PartialEq)]
enum LiveColumn {
    Plain,
    HasDefault,
    Generated,
}

/// The columns of the tables just created (`table.column` by regclass).
async fn live_columns(db: &tokio_postgres::Client) -> Result<BTreeMap<String, LiveColumn>> {
    // schema_sql emptied the search_path; regclass::text names tables as the
    // statistics did (under the default one).
    let fail =
        |e: tokio_postgres::Error| Error::db(format!("reading the synthetic schema's columns: {}", describe_pg(&e)));
    db.batch_execute("RESET search_path").await.map_err(fail)?;
    let rows = db
        .query(
            "SELECT c.oid::regclass::text, a.attname::text, a.attgenerated <> '', a.atthasdef \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r','p') AND a.attnum > 0 AND NOT a.attisdropped \
             AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg_toast%'",
            &[],
        )
        .await
        .map_err(fail)?;
    Ok(rows
        .iter()
        .map(|r| {
            let live = match (r.get::<_, bool>(2), r.get::<_, bool>(3)) {
                (true, _) => LiveColumn::Generated,
                (_, true) => LiveColumn::HasDefault,
                _ => LiveColumn::Plain,
            };
            (format!("{}.{}", r.get::<_, &str>(0), r.get::<_, &str>(1)), live)
        })
        .collect())
}

// ---------------------------------------------------------------- loading

/// Generates `gen`'s rows into COPY and returns the generator (with the
/// keys it recorded) and how the time went. A blocking thread makes the
/// chunks while the previous ones are sent (up to `AHEAD` waiting), so
/// generation overlaps the server's load; a table of `STREAM_MIN_ROWS` or
/// more is loaded over `STREAMS` connections, each taking the next chunk
/// when it is free (one backend's COPY is the limit: bench row 7).
async fn load_table(target: &Target, generator: TableGen) -> Result<(TableGen, TableLoad)> {
    let (sql, name, framing, binary) =
        (generator.copy_sql(), generator.name.clone(), generator.framing(), generator.binary);
    let streams = if generator.rows >= STREAM_MIN_ROWS { STREAMS } else { 1 };
    let mut dbs = Vec::with_capacity(streams);
    for _ in 0..streams {
        dbs.push(
            target
                .connect()
                .await
                .map_err(|e| Error::db(format!("cannot open a loading connection: {}", describe_pg(&e))))?,
        );
    }
    let started = Instant::now();
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(AHEAD);
    let rx = tokio::sync::Mutex::new(rx);
    let producer = tokio::task::spawn_blocking(move || produce(generator, &tx));
    let sent = futures_util::future::try_join_all(dbs.iter().map(|db| copy_stream(db, &sql, framing, &rx))).await;
    drop(rx); // stops the producer after a failed COPY
    let (generator, generating) =
        producer.await.map_err(|e| Error::env(format!("the generator of {name} stopped: {e}")))?;
    let bytes = sent.map_err(|e| copy_error(&name, &e))?.iter().sum();
    let load = TableLoad {
        table: name.clone(),
        rows: generator.rows,
        bytes,
        streams,
        binary,
        took: started.elapsed(),
        generating,
    };
    Ok((generator, load))
}

/// COPY connections a large table is loaded over.
const STREAMS: usize = 2;
/// Rows from which a table is loaded over `STREAMS` connections. The
/// streams' chunks interleave in the table's pages, so a column laid out in
/// row order stays so (its `correlation`) only when a chunk is a small part
/// of the table: 50 chunks or more.
pub const STREAM_MIN_ROWS: u64 = 50 * CHUNK_ROWS;

/// One COPY of `sql` on `db`, fed the chunks it takes from `rx` until the
/// generator is done, between the format's `(header, trailer)`; returns
/// the bytes it sent.
async fn copy_stream(
    db: &tokio_postgres::Client,
    sql: &str,
    (header, trailer): (&'static [u8], &'static [u8]),
    rx: &tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Vec<u8>>>,
) -> std::result::Result<u64, tokio_postgres::Error> {
    let sink = db.copy_in::<_, bytes::Bytes>(sql).await?;
    futures_util::pin_mut!(sink);
    if !header.is_empty() {
        sink.send(bytes::Bytes::from_static(header)).await?;
    }
    let mut bytes = (header.len() + trailer.len()) as u64;
    loop {
        let next = rx.lock().await.recv().await;
        let Some(buf) = next else { break };
        bytes += buf.len() as u64;
        sink.send(bytes::Bytes::from(buf)).await?;
    }
    if !trailer.is_empty() {
        sink.send(bytes::Bytes::from_static(trailer)).await?;
    }
    sink.as_mut().finish().await?;
    Ok(bytes)
}

/// Chunks waiting to be sent, at most.
const AHEAD: usize = 2;

/// Makes `generator`'s chunks into `tx` until done or the receiver is gone;
/// returns it with the time spent generating.
fn produce(mut generator: TableGen, tx: &tokio::sync::mpsc::Sender<Vec<u8>>) -> (TableGen, Duration) {
    let mut generating = Duration::ZERO;
    loop {
        let t = Instant::now();
        let mut buf = Vec::with_capacity(1 << 20);
        let more = generator.chunk(CHUNK_ROWS, &mut buf);
        generating += t.elapsed();
        if tx.blocking_send(buf).is_err() || !more {
            return (generator, generating);
        }
    }
}

/// A failed COPY, naming the table, the constraint or column, and the cause.
fn copy_error(table: &str, e: &tokio_postgres::Error) -> Error {
    let db = e.as_db_error();
    let what = match (db.and_then(|d| d.constraint()), db.and_then(|d| d.column())) {
        (Some(c), _) => format!(" broke constraint {c}"),
        (None, Some(c)) => format!(" column {c} was refused"),
        _ => " was refused".to_string(),
    };
    let place = db.and_then(|d| d.where_()).map(|w| format!(" ({w})")).unwrap_or_default();
    Error::input(format!(
        "synthetic data for {table}{what}{place}: {}; the values come from the statistics file: check the \
         column's statistics there (or the constraint), or rehearse on a seed or a dump",
        describe_pg(e)
    ))
}

/// Builds the dataset in the (empty) database at `target`.
pub async fn build(target: &Target, plan: &SyntheticPlan, say: &(dyn Fn(&str) + Sync)) -> Result<Generated> {
    let file = plan.path.display();
    let db = target
        .connect()
        .await
        .map_err(|e| Error::db(format!("cannot open the synthetic connection: {}", describe_pg(&e))))?;
    let (pre, post) = split_schema(&plan.stats.schema_sql);
    db.batch_execute(&pre)
        .await
        .map_err(|e| Error::input(format!("{file}: applying schema_sql (tables) failed: {}", describe_pg(&e))))?;
    let live = live_columns(&db).await?;
    let started = Instant::now();
    let loads = load(target, plan, &live, say).await?;
    let load_time = started.elapsed();
    let tables: Vec<(String, u64)> = loads.iter().map(|l| (l.table.clone(), l.rows)).collect();
    let rows = tables.iter().map(|t| t.1).sum();
    say(&format!(
        "generated {rows} rows in {} tables in {:.1} s; creating indexes and constraints",
        tables.len(),
        load_time.as_secs_f64()
    ));
    db.batch_execute(&post).await.map_err(|e| {
        let what =
            e.as_db_error().and_then(|d| d.constraint()).map(|c| format!(" (constraint {c})")).unwrap_or_default();
        Error::input(format!(
            "{file}: creating the indexes and constraints of schema_sql on the synthetic data failed{what}: {}",
            describe_pg(&e)
        ))
    })?;
    advance_sequences(&db).await?;
    Ok(Generated { tables, rows, load_time, loads })
}

/// Generates and loads every table, level by level; returns their loads in load order.
async fn load(
    target: &Target,
    plan: &SyntheticPlan,
    live: &BTreeMap<String, LiveColumn>,
    say: &(dyn Fn(&str) + Sync),
) -> Result<Vec<TableLoad>> {
    let m = Model::new(&plan.stats, plan.scale);
    let mut keys = KeyMap::new();
    let mut pending: BTreeSet<(String, Vec<String>)> = BTreeSet::new();
    for c in plan.stats.constraints.iter().filter(|c| c.kind == "f") {
        let key = (c.references.clone().unwrap_or_default(), c.ref_columns.clone());
        match m.index.get(&key.0) {
            Some(&i) if m.serial(&m.stats.tables[i], &key.1) => {
                keys.insert(key, Arc::new(Keys::Range(target_rows(&m.stats.tables[i], m.scale))));
            }
            _ => {
                pending.insert(key);
            }
        }
    }
    let mut done = Vec::new();
    for level in m.levels() {
        let mut gens = Vec::new();
        for i in level {
            gens.push(table_gen(&m, i, live, (&keys, &pending), plan.seed)?);
        }
        say(&format!(
            "generating {}",
            gens.iter().map(|g| format!("{} ({} rows)", g.name, g.rows)).collect::<Vec<_>>().join(", ")
        ));
        while !gens.is_empty() {
            let batch: Vec<TableGen> = gens.drain(..gens.len().min(PARALLEL)).collect();
            let loaded = futures_util::future::try_join_all(batch.into_iter().map(|g| load_table(target, g))).await?;
            for (g, timing) in loaded {
                done.push(timing);
                for (cols, _, rows) in g.record {
                    pending.remove(&(g.name.clone(), cols.clone()));
                    keys.insert((g.name.clone(), cols), Arc::new(Keys::Rows(rows)));
                }
            }
        }
    }
    Ok(done)
}

/// Moves each column's sequence (serial, identity) past the loaded values,
/// so the workload's inserts do not collide with generated keys.
async fn advance_sequences(db: &tokio_postgres::Client) -> Result<()> {
    let rows = db
        .query(
            "SELECT format('SELECT setval(%L, coalesce(max(%I), 0) + 1, false) FROM %s', s, a.attname, c.oid::regclass) \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace, \
             LATERAL pg_get_serial_sequence(c.oid::regclass::text, a.attname) s \
             WHERE c.relkind IN ('r','p') AND a.attnum > 0 AND NOT a.attisdropped AND s IS NOT NULL \
             AND n.nspname NOT IN ('pg_catalog','information_schema')",
            &[],
        )
        .await
        .map_err(|e| Error::db(format!("reading the synthetic tables' sequences: {}", describe_pg(&e))))?;
    for r in rows {
        let sql: String = r.get(0);
        db.batch_execute(&sql)
            .await
            .map_err(|e| Error::db(format!("advancing a sequence past the synthetic keys: {}", describe_pg(&e))))?;
    }
    Ok(())
}
