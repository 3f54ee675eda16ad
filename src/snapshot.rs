//! `lockimpact snapshot`: takes a rehearsal snapshot of a database with
//! pg_dump — custom format, no owners, no privileges, every transaction
//! read-only (`default_transaction_read_only=on` through PGOPTIONS) — and can
//! keep a schema-only dump and a row-count sample from the statistics. A
//! password in the source URL is never printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::Serialize;

use crate::cli::SnapshotArgs;
use crate::error::{Error, Result};

/// The URL or connection string with its password replaced by `****`.
pub fn redact(conn: &str) -> String {
    if let Some((scheme, rest)) = conn.split_once("://") {
        // postgresql://user:password@host/db?password=x
        let (auth_host, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let auth_host = match auth_host.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:****@{host}"),
                None => format!("{userinfo}@{host}"),
            },
            None => auth_host.to_string(),
        };
        let query = query.map(|q| {
            q.split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=****"),
                    _ => kv.to_string(),
                })
                .collect::<Vec<_>>()
                .join("&")
        });
        return match query {
            Some(q) => format!("{scheme}://{auth_host}?{q}"),
            None => format!("{scheme}://{auth_host}"),
        };
    }
    // key=value connection string: password=secret or password='se cret'
    let mut out = String::new();
    let mut rest = conn;
    while let Some(i) = rest.find("password") {
        let after = &rest[i + "password".len()..];
        let trimmed = after.trim_start();
        let at_word_start = i == 0 || rest[..i].ends_with(char::is_whitespace);
        if !at_word_start || !trimmed.starts_with('=') {
            out.push_str(&rest[..i + "password".len()]);
            rest = after;
            continue;
        }
        out.push_str(&rest[..i]);
        out.push_str("password=****");
        let value = trimmed[1..].trim_start();
        let end = if let Some(quoted) = value.strip_prefix('\'') {
            quoted.find('\'').map(|j| j + 2).unwrap_or(value.len())
        } else {
            value.find(char::is_whitespace).unwrap_or(value.len())
        };
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

/// The password in the URL or connection string, to scrub from tool output.
fn password_of(conn: &str) -> Option<String> {
    let redacted = redact(conn);
    if redacted == conn {
        return None;
    }
    // The first span that differs between the two is the password.
    let start = conn.bytes().zip(redacted.bytes()).take_while(|(a, b)| a == b).count();
    let tail = conn.len() - start;
    let rtail = redacted.len() - start;
    let common_end =
        conn.bytes().rev().zip(redacted.bytes().rev()).take(tail.min(rtail)).take_while(|(a, b)| a == b).count();
    let pw = &conn[start..conn.len() - common_end];
    (!pw.is_empty()).then(|| pw.to_string())
}

fn scrub(text: &str, conn: &str) -> String {
    let mut t = text.replace(conn, &redact(conn));
    if let Some(pw) = password_of(conn)
        && pw.len() >= 3
    {
        t = t.replace(&pw, "****");
    }
    t
}

/// pg_dump and psql: `--pg-bin`, else the newest `/usr/lib/postgresql/*/bin`,
/// else `PATH` (pg_dump must be at least the source server's version).
fn client_dir(explicit: Option<&Path>) -> Result<Option<PathBuf>> {
    if let Some(dir) = explicit {
        if !dir.join("pg_dump").is_file() {
            return Err(Error::env(format!("--pg-bin/PG_BIN {}: no pg_dump there", dir.display())));
        }
        return Ok(Some(dir.to_path_buf()));
    }
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, p)| p.join("pg_dump").is_file())
        .collect();
    versioned.sort_by_key(|v| std::cmp::Reverse(v.0));
    Ok(versioned.into_iter().next().map(|(_, p)| p))
}

fn tool(dir: &Option<PathBuf>, name: &str) -> Command {
    let mut c = Command::new(match dir {
        Some(d) => d.join(name),
        None => PathBuf::from(name),
    });
    // Read-only against the source, whatever pg_dump does by itself.
    let mut opts = std::env::var("PGOPTIONS").unwrap_or_default();
    opts.push_str(" -c default_transaction_read_only=on");
    c.env("PGOPTIONS", opts.trim()).stdin(Stdio::null());
    c
}

#[derive(Debug, Serialize)]
struct RowCount {
    table: String,
    /// From `pg_class.reltuples` (statistics, not a scan); -1 when never analyzed.
    estimated_rows: i64,
    bytes: i64,
}

/// Runs `lockimpact snapshot`.
pub fn snapshot(args: &SnapshotArgs) -> Result<i32> {
    let progress = crate::status::Progress::new(args.quiet);
    let say = |m: &str| progress.say(m);
    let shown = redact(&args.from);
    let out_dir = args.out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !out_dir.is_dir() {
        return Err(Error::input(format!(
            "--out {}: directory {} does not exist",
            args.out.display(),
            out_dir.display()
        )));
    }
    if let Some(rc) = &args.row_counts {
        let d = rc.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !d.is_dir() {
            return Err(Error::input(format!(
                "--row-counts {}: directory {} does not exist",
                rc.display(),
                d.display()
            )));
        }
    }
    let dir = client_dir(args.pg_bin.as_deref())?;
    let started = Instant::now();
    let mut cmd = tool(&dir, "pg_dump");
    cmd.args(["--format=custom", "--no-owner", "--no-privileges", "--file"])
        .arg(&args.out)
        .arg("--dbname")
        .arg(&args.from);
    if args.schema_only {
        cmd.arg("--schema-only");
    }
    say(&format!(
        "pg_dump{} of {shown} to {} (custom format, no owners, no privileges, read-only)",
        if args.schema_only { " --schema-only" } else { "" },
        args.out.display()
    ));
    let out = cmd.output().map_err(|e| {
        Error::env(format!(
            "cannot run pg_dump ({e}); install the PostgreSQL client (Debian/Ubuntu: apt-get install postgresql-client) \
             or point --pg-bin at its directory"
        ))
    })?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&args.out);
        return Err(Error::env(format!(
            "pg_dump of {shown} failed ({}):\n{}",
            out.status,
            scrub(String::from_utf8_lossy(&out.stderr).trim(), &args.from)
        )));
    }
    let size = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    say(&format!(
        "wrote {} ({}) in {:.1} s; rehearse on it with snapshot.dump = {:?} in a scenario",
        args.out.display(),
        crate::report::render::fmt_bytes(size),
        started.elapsed().as_secs_f64(),
        args.out.display().to_string()
    ));

    if let Some(path) = &args.row_counts {
        let sql = "SELECT format('%I.%I', n.nspname, c.relname), c.reltuples::bigint, \
                   pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                   WHERE c.relkind IN ('r','p','m') AND n.nspname NOT IN ('pg_catalog','information_schema') \
                   AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1";
        let out = tool(&dir, "psql")
            .args(["-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql, "--dbname"])
            .arg(&args.from)
            .output()
            .map_err(|e| Error::env(format!("cannot run psql for --row-counts: {e}")))?;
        if !out.status.success() {
            return Err(Error::env(format!(
                "reading row counts from {shown} failed:\n{}",
                scrub(String::from_utf8_lossy(&out.stderr).trim(), &args.from)
            )));
        }
        let counts: Vec<RowCount> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut f = l.split('\t');
                Some(RowCount {
                    table: f.next()?.to_string(),
                    estimated_rows: f.next()?.trim().parse().ok()?,
                    bytes: f.next()?.trim().parse().ok()?,
                })
            })
            .collect();
        let text = serde_json::to_string_pretty(&counts).expect("row counts serialize");
        std::fs::write(path, text + "\n")
            .map_err(|e| Error::env(format!("{}: cannot write the row counts: {e}", path.display())))?;
        say(&format!("wrote row counts of {} tables to {}", counts.len(), path.display()));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgresql://app:s3cret@db:5432/prod"), "postgresql://app:****@db:5432/prod");
        assert_eq!(redact("postgres://app@db/prod"), "postgres://app@db/prod");
        assert_eq!(
            redact("postgresql://db/prod?user=app&password=s3cret&sslmode=require"),
            "postgresql://db/prod?user=app&password=****&sslmode=require"
        );
        assert_eq!(redact("host=db password=s3cret dbname=prod"), "host=db password=**** dbname=prod");
        assert_eq!(redact("host=db password = 'a b' dbname=prod"), "host=db password=**** dbname=prod");
        assert_eq!(redact("host=db passwordless=1"), "host=db passwordless=1");
        assert_eq!(password_of("postgresql://app:s3cret@db/prod").as_deref(), Some("s3cret"));
        assert_eq!(
            scrub("could not connect to postgresql://app:s3cret@db/prod", "postgresql://app:s3cret@db/prod"),
            "could not connect to postgresql://app:****@db/prod"
        );
    }
}
