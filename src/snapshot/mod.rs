//! `lockimpact snapshot`: takes a rehearsal snapshot of a database with
//! pg_dump — custom format, no owners, no privileges, every transaction
//! read-only (`default_transaction_read_only=on` through PGOPTIONS) — and can
//! keep a schema-only dump and a row-count sample from the statistics. The
//! source is read as libpq reads it (`pg::ConnInfo`) and handed to pg_dump
//! and psql through their environment, the password included: nothing of
//! it is on their command line, and it is never printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::Serialize;

use crate::cli::SnapshotArgs;
use crate::error::{Error, Result};
use crate::pg::ConnInfo;

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

/// A client program connecting to `conn` through its environment (no
/// connection argument), read-only.
fn tool(dir: &Option<PathBuf>, name: &str, conn: &ConnInfo) -> Command {
    let mut c = Command::new(match dir {
        Some(d) => d.join(name),
        None => PathBuf::from(name),
    });
    for (var, value) in conn.child_env() {
        match value {
            Some(v) => c.env(var, v),
            None => c.env_remove(var),
        };
    }
    // Read-only against the source, whatever pg_dump does by itself.
    let opts = format!("{} -c default_transaction_read_only=on", conn.get("options").unwrap_or_default());
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

/// Runs `cmd` (read-only against the source); its stdout, or an error
/// naming `what` with its stderr (the password scrubbed).
fn output(mut cmd: Command, what: &str, conn: &ConnInfo) -> Result<Vec<u8>> {
    let out = cmd.output().map_err(|e| {
        Error::env(format!(
            "cannot run {what} ({e}); install the PostgreSQL client (Debian/Ubuntu: apt-get install postgresql-client) \
             or point --pg-bin at its directory"
        ))
    })?;
    if !out.status.success() {
        return Err(Error::env(format!(
            "{what} of {conn} failed ({}):\n{}",
            out.status,
            conn.scrub(String::from_utf8_lossy(&out.stderr).trim())
        )));
    }
    Ok(out.stdout)
}

/// `--stats-only`: the schema and the planner's statistics, as JSON in `--out`.
fn stats_only(args: &SnapshotArgs, dir: &Option<PathBuf>, conn: &ConnInfo, say: &dyn Fn(&str)) -> Result<()> {
    let started = Instant::now();
    say(&format!("reading the schema and the planner's statistics of {conn} (read-only; no row is read)"));
    let mut dump = tool(dir, "pg_dump", conn);
    dump.args(["--schema-only", "--no-owner", "--no-privileges", "--format=plain"]);
    let schema = String::from_utf8_lossy(&output(dump, "pg_dump --schema-only", conn)?).into_owned();
    let mut psql = tool(dir, "psql", conn);
    psql.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", crate::clone::stats::STATS_SQL]);
    let json = String::from_utf8_lossy(&output(psql, "reading the statistics", conn)?).into_owned();
    let mut st = crate::clone::stats::from_query(json.trim(), schema).map_err(Error::env)?;
    if args.redact_values {
        crate::clone::stats::redact(&mut st, 0x5eed);
    }
    let never: Vec<String> =
        st.tables.iter().filter(|t| !t.analyzed).map(|t| format!("{}.{}", t.schema, t.name)).collect();
    if !never.is_empty() {
        say(&format!(
            "warning: never analyzed, so no column statistics: {} (run ANALYZE on the source)",
            never.join(", ")
        ));
    }
    let text = serde_json::to_string_pretty(&st).expect("statistics serialize");
    let dest = crate::files::Destination::check(&args.out, "--out", &[])?;
    dest.write(|w| w.write_all((text + "\n").as_bytes()))
        .map_err(|e| Error::env(format!("{}: cannot write the statistics: {e}", args.out.display())))?;
    say(&format!(
        "wrote the statistics of {} tables to {} in {:.1} s{}",
        st.tables.len(),
        args.out.display(),
        started.elapsed().as_secs_f64(),
        if st.redacted { " (values redacted)" } else { "" }
    ));
    Ok(())
}

/// Runs `lockimpact snapshot`.
pub fn snapshot(args: &SnapshotArgs) -> Result<()> {
    let progress = crate::status::Progress::new(args.quiet);
    let say = |m: &str| progress.say(m);
    let conn = ConnInfo::resolve(&args.from).map_err(|e| Error::input(format!("--from: {e}")))?;
    let shown = conn.to_string();
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
    if args.stats_only {
        return stats_only(args, &dir, &conn, &say);
    }
    let started = Instant::now();
    let mut cmd = tool(&dir, "pg_dump", &conn);
    cmd.args(["--format=custom", "--no-owner", "--no-privileges", "--file"]).arg(&args.out);
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
            conn.scrub(String::from_utf8_lossy(&out.stderr).trim())
        )));
    }
    let size = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    say(&format!(
        "wrote {} ({}) in {:.1} s; rehearse on it with snapshot.dump = {:?} in a scenario",
        args.out.display(),
        crate::fmt::fmt_bytes(size),
        started.elapsed().as_secs_f64(),
        args.out.display().to_string()
    ));

    if let Some(path) = &args.row_counts {
        let sql = "SELECT format('%I.%I', n.nspname, c.relname), c.reltuples::bigint, \
                   pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                   WHERE c.relkind IN ('r','p','m') AND n.nspname NOT IN ('pg_catalog','information_schema') \
                   AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1";
        let out = tool(&dir, "psql", &conn)
            .args(["-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .map_err(|e| Error::env(format!("cannot run psql for --row-counts: {e}")))?;
        if !out.status.success() {
            return Err(Error::env(format!(
                "reading row counts from {shown} failed:\n{}",
                conn.scrub(String::from_utf8_lossy(&out.stderr).trim())
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
    Ok(())
}
