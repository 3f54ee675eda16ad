//! PostgreSQL's server log read into entries: csvlog, or stderr logs written
//! with `log_line_prefix = '%m [%c:%l:%v] %u@%d '`; the statements client
//! sessions ran (simple and extended protocol, with their `parameters:`
//! detail). Read by `lockimpact record log` and by the capture of a
//! framework's migration command.

use std::collections::BTreeMap;

use crate::pg::lex::scan_tokens;

/// The stderr `log_line_prefix` this reader understands.
pub const STDERR_PREFIX: &str = "%m [%c:%l:%v] %u@%d ";

/// One log message of a client session.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// Log time, ms since 1970 in the log's time zone.
    pub time_ms: f64,
    pub session: String,
    pub line: u64,
    pub vxid: String,
    pub user: String,
    pub database: String,
    pub severity: String,
    pub message: String,
    pub detail: String,
    pub backend_type: String,
    /// The session's application_name (csvlog; empty in a stderr log).
    pub application_name: String,
}

/// A statement the log says a session ran.
#[derive(Debug, Clone)]
pub struct Logged {
    pub start_ms: f64,
    pub session: String,
    pub line: u64,
    pub vxid: String,
    pub user: String,
    pub database: String,
    pub application_name: String,
    /// As sent: `$n` for extended-protocol statements.
    pub sql: String,
    /// Literal text of each `$n` (`'42'`, `NULL`), from the `parameters:` detail.
    pub params: Vec<String>,
}

/// Parses CSV records (RFC 4180 quoting, newlines inside quotes).
pub fn csv_records(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

/// `2026-11-24 21:53:05.123 UTC` → ms since 1970 (the zone is ignored: one log, one zone).
pub fn parse_time(s: &str) -> Option<f64> {
    let mut parts = s.split_whitespace();
    let (date, time) = (parts.next()?, parts.next()?);
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (h, mi, sec) = (t.next()?.parse::<f64>().ok()?, t.next()?.parse::<f64>().ok()?, t.next()?.parse::<f64>().ok()?);
    let valid = (1..=9999).contains(&y)
        && (1..=12).contains(&m)
        && (1..=31).contains(&day)
        && (0.0..24.0).contains(&h)
        && (0.0..60.0).contains(&mi)
        && (0.0..61.0).contains(&sec);
    if !valid {
        return None;
    }
    // Days from civil (Howard Hinnant).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(((days as f64 * 86400.0) + h * 3600.0 + mi * 60.0 + sec) * 1000.0)
}

/// csvlog records (`log_destination = 'csvlog'`) as entries; records that
/// are not a session's log line are passed over.
pub fn csv_entries(text: &str) -> Vec<Entry> {
    csv_records(text)
        .into_iter()
        .filter(|r| r.len() >= 15)
        .filter_map(|r| {
            Some(Entry {
                time_ms: parse_time(&r[0])?,
                user: r[1].clone(),
                database: r[2].clone(),
                session: r[5].clone(),
                line: r[6].parse().ok()?,
                vxid: r[9].clone(),
                severity: r[11].clone(),
                message: r[13].clone(),
                detail: r[14].clone(),
                backend_type: r.get(23).cloned().unwrap_or_else(|| "client backend".into()),
                application_name: r.get(22).cloned().unwrap_or_default(),
            })
        })
        .collect()
}

/// Stderr lines with `STDERR_PREFIX`; continuation lines (a leading tab) are
/// appended, and a `DETAIL:` line goes to the session's message just before it
/// (`%l` counts it as a line of its own).
pub fn stderr_entries(text: &str) -> (Vec<Entry>, usize) {
    let mut out: Vec<Entry> = Vec::new();
    let mut unparsed = 0;
    let mut last_detail = false;
    for line in text.lines() {
        if let Some(cont) = line.strip_prefix('\t') {
            if let Some(e) = out.last_mut() {
                let target = if last_detail { &mut e.detail } else { &mut e.message };
                target.push('\n');
                target.push_str(cont);
            }
            continue;
        }
        let Some(e) = stderr_line(line) else {
            unparsed += 1;
            continue;
        };
        if let Some(detail) = e.message.strip_prefix("DETAIL:  ")
            && let Some(prev) = out.last_mut()
            && prev.session == e.session
            && (prev.line == e.line || prev.line + 1 == e.line)
        {
            prev.detail = detail.to_string();
            last_detail = true;
            continue;
        }
        last_detail = false;
        out.push(e);
    }
    (out, unparsed)
}

fn stderr_line(line: &str) -> Option<Entry> {
    let open = line.find(" [")?;
    let time_ms = parse_time(&line[..open])?;
    let rest = &line[open + 2..];
    let close = rest.find("] ")?;
    let mut ids = rest[..close].splitn(3, ':');
    let (session, num, vxid) = (ids.next()?, ids.next()?.parse().ok()?, ids.next()?);
    let rest = &rest[close + 2..];
    let (who, msg) = rest.split_once(' ')?;
    let (user, database) = who.split_once('@')?;
    let (severity, message) = msg.split_once(":  ")?;
    if severity == "DETAIL" {
        return Some(Entry {
            time_ms,
            session: session.into(),
            line: num,
            message: format!("DETAIL:  {message}"),
            ..Default::default()
        });
    }
    Some(Entry {
        time_ms,
        session: session.into(),
        line: num,
        vxid: vxid.into(),
        user: user.into(),
        database: database.into(),
        severity: severity.into(),
        message: message.into(),
        backend_type: "client backend".into(),
        ..Default::default()
    })
}

/// `$1 = '42', $2 = NULL` → the literals.
pub fn parse_parameters(detail: &str) -> Vec<String> {
    let Some(list) = detail.strip_prefix("parameters: ") else { return Vec::new() };
    let mut out: BTreeMap<usize, String> = BTreeMap::new();
    let b = list.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b',') {
            i += 1;
        }
        if i >= b.len() || b[i] != b'$' {
            break;
        }
        let start = i + 1;
        while i < b.len() && b[i] != b' ' {
            i += 1;
        }
        let Ok(n) = list[start..i].parse::<usize>() else { break };
        let Some(after) = list[i..].strip_prefix(" = ") else { break };
        i += 3;
        let value_start = i;
        if after.starts_with('\'') {
            i += 1;
            while i < b.len() {
                if b[i] == b'\'' {
                    if b.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
        } else {
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
        }
        out.insert(n, list[value_start..i].trim().to_string());
    }
    let max = out.keys().max().copied().unwrap_or(0);
    (1..=max).map(|n| out.get(&n).cloned().unwrap_or_else(|| "NULL".into())).collect()
}

/// The statements of a log's entries, each session's in order.
pub fn statements(entries: &[Entry]) -> Vec<Logged> {
    let mut out = Vec::new();
    for e in entries {
        if e.severity != "LOG" || e.backend_type != "client backend" || e.session.is_empty() {
            continue;
        }
        let (duration, rest) = match e.message.strip_prefix("duration: ") {
            Some(d) => {
                let (num, rest) = d.split_once(" ms").unwrap_or((d, ""));
                (num.trim().parse::<f64>().ok(), rest.trim_start())
            }
            None => (None, e.message.as_str()),
        };
        let sql = if let Some(s) = rest.strip_prefix("statement: ") {
            s
        } else if let Some(x) = rest.strip_prefix("execute ") {
            match x.split_once(": ") {
                Some((_, s)) => s,
                None => continue,
            }
        } else {
            continue; // parse/bind steps, plain durations, other messages
        };
        let params = if rest.starts_with("execute ") { parse_parameters(&e.detail) } else { Vec::new() };
        out.push(Logged {
            start_ms: e.time_ms - duration.unwrap_or(0.0),
            session: e.session.clone(),
            line: e.line,
            vxid: e.vxid.clone(),
            user: e.user.clone(),
            database: e.database.clone(),
            application_name: e.application_name.clone(),
            sql: sql.trim().to_string(),
            params,
        });
    }
    out.sort_by(|a, b| (&a.session, a.line).cmp(&(&b.session, b.line)));
    out
}

/// `sql` with each `$n` replaced by its literal.
pub fn inline(sql: &str, params: &[String]) -> String {
    if params.is_empty() {
        return sql.to_string();
    }
    let Ok(tokens) = scan_tokens(sql) else { return sql.to_string() };
    let mut out = sql.to_string();
    for t in tokens.iter().rev().filter(|t| t.token == pg_query::protobuf::Token::Param as i32) {
        let (s, e) = (t.start as usize, t.end as usize);
        if let Some(v) =
            sql.get(s + 1..e).and_then(|n| n.parse::<usize>().ok()).and_then(|n| params.get(n.checked_sub(1)?))
        {
            out.replace_range(s..e, v);
        }
    }
    out
}
