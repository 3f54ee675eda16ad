//! Restoring a pg_dump snapshot (`snapshot.dump`) into the template database:
//! detects the dump's format (custom, directory, tar, plain SQL), checks that
//! the server has the extensions it needs, runs pg_restore or psql of the
//! server's own major version where the server runs (this machine's binaries
//! for `local`, inside the container for `docker`) without owners and
//! privileges, turns statements about roles the clone lacks into notes, then
//! ANALYZE. Every rehearsal then runs on a fresh copy of the template.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Server;
use super::docker::Container;
use super::template::{Dataset, TEMPLATE_DB, connect, describe_dataset};
use crate::error::{Error, Result, describe_pg};

/// The formats pg_dump writes (`-F c|d|t|p`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpFormat {
    Custom,
    Directory,
    Tar,
    Plain,
}

impl DumpFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DumpFormat::Custom => "custom",
            DumpFormat::Directory => "directory",
            DumpFormat::Tar => "tar",
            DumpFormat::Plain => "plain SQL",
        }
    }

    /// Reads the format from the dump itself: a directory with `toc.dat`, the
    /// custom format's `PGDMP` magic, a tar header, else plain SQL.
    pub fn detect(path: &Path) -> Result<DumpFormat> {
        let meta = crate::files::file_or_dir(path, "dump")?;
        if meta.is_dir() {
            if path.join("toc.dat").is_file() {
                return Ok(DumpFormat::Directory);
            }
            return Err(Error::input(format!(
                "{}: a directory without toc.dat is not a pg_dump directory-format dump (pg_dump -Fd)",
                path.display()
            )));
        }
        let mut head = Vec::with_capacity(512);
        std::fs::File::open(path)
            .and_then(|f| f.take(512).read_to_end(&mut head))
            .map_err(|e| Error::input(format!("{}: cannot read the dump: {e}", path.display())))?;
        if head.is_empty() {
            return Err(Error::input(format!("{}: the dump is empty", path.display())));
        }
        if head.starts_with(b"PGDMP") {
            return Ok(DumpFormat::Custom);
        }
        if head.len() >= 262 && &head[257..262] == b"ustar" {
            return Ok(DumpFormat::Tar);
        }
        if head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            return Err(Error::input(format!(
                "{}: the dump is compressed (gzip/zstd); decompress it first (gunzip / unzstd), or use pg_dump -Fc",
                path.display()
            )));
        }
        if head.contains(&0) {
            return Err(Error::input(format!(
                "{}: not a pg_dump file (custom, directory, tar or plain SQL)",
                path.display()
            )));
        }
        Ok(DumpFormat::Plain)
    }
}

/// A validated `snapshot.dump`.
#[derive(Debug, Clone)]
pub struct DumpPlan {
    pub path: PathBuf,
    pub format: DumpFormat,
    /// pg_restore `-j` for custom and directory dumps.
    pub jobs: u32,
    /// `snapshot.sample`: the fraction of the rows kept (`clone::sample`).
    pub sample: Option<f64>,
}

/// Where the server's own client tools (pg_restore, psql) run.
#[derive(Debug, Clone)]
pub enum Tools {
    /// On this machine, from the server's binary directory, over its socket.
    Local { bin_dir: PathBuf, socket_dir: PathBuf, port: u16, major: u32 },
    /// Inside the container (testcontainers' exec), over the container's
    /// socket; `dump` is the dump mounted into it (host path, path inside).
    Docker { container: Arc<Container>, major: u32, password: String, dump: Option<(PathBuf, String)> },
}

impl Tools {
    fn major(&self) -> u32 {
        match self {
            Tools::Local { major, .. } | Tools::Docker { major, .. } => *major,
        }
    }

    /// Runs a client program with `args`, connecting to `dbname` as
    /// `postgres` when one is given, and collects its output.
    async fn run(&self, program: &str, dbname: Option<&str>, args: &[&str]) -> Result<Output> {
        match self {
            Tools::Local { bin_dir, socket_dir, port, .. } => {
                let mut c = Command::new(bin_dir.join(program));
                if let Some(db) = dbname {
                    c.arg("-h").arg(socket_dir).arg("-p").arg(port.to_string());
                    c.args(["-U", "postgres", "-d", db]);
                }
                c.args(args).env_remove("PGSERVICE").env_remove("PGOPTIONS");
                output(c, program).await
            }
            Tools::Docker { container, password, .. } => {
                let mut cmd = vec![program];
                if let Some(db) = dbname {
                    cmd.extend(["-U", "postgres", "-d", db]);
                }
                cmd.extend(args);
                super::docker::exec(container, &cmd, &[("PGPASSWORD", password.as_str())]).await
            }
        }
    }

    /// Where the tools read the dump: its path on this machine, or inside the
    /// container, where the backend mounted it when it started.
    fn stage(&self, dump: &Path) -> Result<String> {
        let path = std::path::absolute(dump).unwrap_or(dump.to_path_buf());
        match self {
            Tools::Local { .. } => Ok(path.display().to_string()),
            Tools::Docker { dump: Some((host, inside)), .. } if *host == path => Ok(inside.clone()),
            Tools::Docker { .. } => Err(Error::env(format!(
                "{}: the dump was not mounted into the container when it started",
                dump.display()
            ))),
        }
    }

    fn install_hint(&self, missing: &[String]) -> String {
        match self {
            Tools::Local { major, .. } => format!(
                "install them for PostgreSQL {major} on this machine (Debian/Ubuntu: apt-get install {}), \
                 or use --backend docker --image with an image that has them",
                missing.iter().map(|m| format!("postgresql-{major}-{m}")).collect::<Vec<_>>().join(" ")
            ),
            Tools::Docker { major, .. } => format!(
                "run with --image set to a PostgreSQL {major} image that has them \
                 (for PostGIS: postgis/postgis:{major}-3.4), or build one FROM postgres:{major}"
            ),
        }
    }
}

/// Runs a blocking client program off the async runtime's worker threads.
async fn output(mut cmd: Command, what: &str) -> Result<Output> {
    let what = what.to_string();
    tokio::task::spawn_blocking(move || {
        cmd.stdin(Stdio::null())
            .output()
            .map_err(|e| Error::env(format!("{what}: cannot run {:?}: {e}", cmd.get_program())))
    })
    .await
    .map_err(|e| Error::env(format!("the restore task failed: {e}")))?
}

/// Extensions the dump creates: `EXTENSION` entries of `pg_restore -l`, or
/// `CREATE EXTENSION` statements of a plain dump.
async fn needed_extensions(tools: &Tools, dump: &DumpPlan, staged: &str) -> Result<Vec<String>> {
    let mut names = Vec::new();
    if dump.format == DumpFormat::Plain {
        // Line by line: a plain dump can be far bigger than memory.
        let fail = |e: std::io::Error| Error::input(format!("{}: cannot read the dump: {e}", dump.path.display()));
        let mut reader = std::io::BufReader::new(std::fs::File::open(&dump.path).map_err(fail)?);
        let mut raw = Vec::new();
        loop {
            raw.clear();
            if std::io::BufRead::read_until(&mut reader, b'\n', &mut raw).map_err(fail)? == 0 {
                break;
            }
            let line = String::from_utf8_lossy(&raw);
            let l = line.trim_start();
            if let Some(rest) = l.strip_prefix("CREATE EXTENSION ") {
                let rest = rest.trim_start_matches("IF NOT EXISTS ");
                let name: String = rest
                    .trim_matches('"')
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
                    .collect();
                if !name.is_empty() {
                    names.push(name);
                }
            }
        }
    } else {
        // `-l` only reads the dump's table of contents.
        let out = tools.run("pg_restore", None, &["-l", staged]).await?;
        if !out.status.success() {
            return Err(Error::input(format!(
                "{}: pg_restore {} cannot read the dump: {}",
                dump.path.display(),
                tools.major(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        // "3; 3079 16385 EXTENSION - hstore"
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if line.starts_with(';') {
                continue;
            }
            if let Some((_, rest)) = line.split_once(" EXTENSION - ") {
                let name = rest.split_whitespace().next().unwrap_or("").trim_matches('"');
                if !name.is_empty() {
                    names.push(name.to_string());
                }
            }
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// What a restore's error output says, sorted into notes and failures.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    /// Role name → statements skipped because the role does not exist in the clone.
    pub missing_roles: BTreeMap<String, usize>,
    /// Extensions the server does not have.
    pub missing_extensions: Vec<String>,
    /// Every other error, as printed.
    pub errors: Vec<String>,
}

/// Sorts the `ERROR:` lines of pg_restore or psql output.
pub fn classify(stderr: &str) -> Outcome {
    let mut o = Outcome::default();
    for line in stderr.lines() {
        let Some((_, msg)) = line.split_once("ERROR:") else { continue };
        let msg = msg.trim();
        if let Some(rest) = msg.strip_prefix("role \"")
            && let Some((role, tail)) = rest.split_once('"')
            && tail.trim() == "does not exist"
        {
            *o.missing_roles.entry(role.to_string()).or_default() += 1;
            continue;
        }
        // PG ≤ 15: could not open extension control file ".../postgis.control"; 16+: extension "x" is not available
        let ext = if let Some(i) = msg.find("extension control file \"") {
            let path = &msg[i + 24..];
            path.split('"').next().and_then(|p| p.rsplit('/').next()).map(|f| f.trim_end_matches(".control"))
        } else if let Some(rest) = msg.strip_prefix("extension \"") {
            rest.split_once('"').filter(|(_, t)| t.contains("not available")).map(|(n, _)| n)
        } else {
            None
        };
        match ext {
            Some(name) => {
                if !o.missing_extensions.iter().any(|e| e == name) {
                    o.missing_extensions.push(name.to_string());
                }
            }
            None => o.errors.push(line.trim().to_string()),
        }
    }
    o
}

/// Restores `dump` into a new template database, then ANALYZE. `say` gets the
/// notes (skipped owners and grants).
pub async fn restore(server: &Server, dump: &DumpPlan, say: &(dyn Fn(&str) + Sync)) -> Result<Dataset> {
    let started = Instant::now();
    let tools = server.tools().ok_or_else(|| {
        Error::input("snapshot.dump cannot be restored on this backend; use the local or docker backend")
    })?;
    super::template::create_template(server).await?;

    let staged = tools.stage(&dump.path)?;
    let notes = restore_staged(server, &tools, dump, &staged, say).await?;
    let restore_time = started.elapsed();

    let db = connect(server, TEMPLATE_DB, "analyze").await?;
    let sample = match dump.sample.filter(|f| *f < 1.0) {
        Some(fraction) => Some((fraction, super::sample::thin(&db, fraction).await?)),
        None => None,
    };
    db.batch_execute("ANALYZE").await.map_err(|e| Error::db(format!("ANALYZE failed: {}", describe_pg(&e))))?;
    let (tables, bytes) = describe_dataset(&db, true).await?;
    if let Some((fraction, removed)) = sample {
        // The kept rows, as describe_dataset counted them; a partitioned
        // table's count holds its partitions'.
        let partitions: Vec<String> = db
            .query("SELECT oid::regclass::text FROM pg_class WHERE relispartition", &[])
            .await
            .map_err(|e| Error::db(format!("listing the partitions: {}", describe_pg(&e))))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let kept: u64 = tables.iter().filter(|t| !partitions.contains(&t.name)).map(|t| t.rows.max(0) as u64).sum();
        say(&format!(
            "sampled {fraction} of the dump: kept {kept} of its {} rows, foreign keys consistent",
            kept + removed
        ));
    }
    if tables.is_empty() {
        return Err(Error::input(format!(
            "{}: the dump restored no tables; it must hold the dataset the workload and migration use",
            dump.path.display()
        )));
    }
    Ok(Dataset { tables, seed_time: Duration::ZERO, restore_time: Some(restore_time), bytes: Some(bytes), notes })
}

async fn restore_staged(
    server: &Server,
    tools: &Tools,
    dump: &DumpPlan,
    staged: &str,
    say: &(dyn Fn(&str) + Sync),
) -> Result<Vec<String>> {
    let file = dump.path.display().to_string();
    // Extensions first: a missing one is named before a long restore.
    let needed = needed_extensions(tools, dump, staged).await?;
    if !needed.is_empty() {
        let db = connect(server, TEMPLATE_DB, "restore").await?;
        let available: Vec<String> = db
            .query("SELECT name FROM pg_available_extensions", &[])
            .await
            .map_err(|e| Error::db(describe_pg(&e)))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let missing: Vec<String> = needed.iter().filter(|n| !available.contains(n)).cloned().collect();
        if !missing.is_empty() {
            return Err(Error::env(format!(
                "{file}: the dump needs the extension(s) {}, which the clone's PostgreSQL {} does not have; {}",
                missing.join(", "),
                tools.major(),
                tools.install_hint(&missing)
            )));
        }
        for name in &needed {
            db.batch_execute(&format!("CREATE EXTENSION IF NOT EXISTS \"{}\" CASCADE", name.replace('"', "\"\"")))
                .await
                .map_err(|e| Error::db(format!("{file}: cannot create extension {name}: {}", describe_pg(&e))))?;
        }
        say(&format!("extensions created for the dump: {}", needed.join(", ")));
    }

    let jobs = dump.jobs.to_string();
    let (program, args): (&str, Vec<&str>) = match dump.format {
        DumpFormat::Plain => ("psql", vec!["-X", "-q", "-v", "ON_ERROR_STOP=0", "-f", staged]),
        DumpFormat::Custom | DumpFormat::Directory if dump.jobs > 1 => {
            ("pg_restore", vec!["--no-owner", "--no-privileges", "-j", &jobs, staged])
        }
        _ => ("pg_restore", vec!["--no-owner", "--no-privileges", staged]),
    };
    let jobs = if program == "pg_restore" && dump.format != DumpFormat::Tar {
        format!(" with {} jobs", dump.jobs)
    } else {
        String::new()
    };
    say(&format!("restoring {file} ({} dump) with {program} {}{jobs}", dump.format.as_str(), tools.major()));
    let out = tools.run(program, Some(TEMPLATE_DB), &args).await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let o = classify(&stderr);
    if !o.missing_extensions.is_empty() {
        return Err(Error::env(format!(
            "{file}: the dump needs the extension(s) {}, which the clone's PostgreSQL {} does not have; {}",
            o.missing_extensions.join(", "),
            tools.major(),
            tools.install_hint(&o.missing_extensions)
        )));
    }
    // A full disk shows in the client's errors, or only in the server's log
    // (when the server could not write its WAL and stopped); a write cut
    // short by it is "could not extend file …: wrote only N of M bytes".
    const DISK_FULL: [&str; 2] = ["No space left on device", "could not extend file"];
    let log = server.log_tail();
    if DISK_FULL.iter().any(|m| stderr.contains(m) || log.contains(m)) {
        // The server's disk, not the dump: its log is attached to the error.
        return Err(Error::db(format!(
            "{file}: the clone ran out of disk space while restoring the dump; give it more room: set TMPDIR to a \
             directory on a larger disk (local backend) or free space for Docker's storage"
        )));
    }
    if !o.errors.is_empty() {
        let shown: Vec<&str> = o.errors.iter().take(5).map(|s| s.as_str()).collect();
        return Err(Error::input(format!(
            "{file}: {program} reported {} error(s) restoring the dump; the first:\n  {}",
            o.errors.len(),
            shown.join("\n  ")
        )));
    }
    // pg_restore exits 1 when it ignored errors; with only role notes that is fine.
    if !out.status.success() && o.missing_roles.is_empty() {
        let tail: Vec<&str> = stderr.lines().rev().take(10).collect::<Vec<_>>().into_iter().rev().collect();
        return Err(Error::input(format!("{file}: {program} failed ({}):\n{}", out.status, tail.join("\n"))));
    }
    let mut notes = Vec::new();
    if !o.missing_roles.is_empty() {
        let roles: Vec<String> = o.missing_roles.iter().map(|(r, n)| format!("{r} ({n})")).collect();
        let note = format!(
            "restore: skipped owner/grant statements for roles that do not exist in the clone: {}",
            roles.join(", ")
        );
        say(&format!("note: {note}"));
        notes.push(note);
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_errors_are_notes_and_extensions_are_named() {
        let stderr = "psql:/d.sql:40: ERROR:  role \"alice\" does not exist\n\
                      psql:/d.sql:41: ERROR:  role \"alice\" does not exist\n\
                      pg_restore: error: could not execute query: ERROR:  role \"bob\" does not exist\n\
                      psql:/d.sql:9: ERROR:  could not open extension control file \"/usr/share/postgresql/15/extension/postgis.control\": No such file or directory\n\
                      psql:/d.sql:10: ERROR:  extension \"vector\" is not available\n\
                      psql:/d.sql:50: ERROR:  relation \"x\" does not exist\n";
        let o = classify(stderr);
        assert_eq!(o.missing_roles.get("alice"), Some(&2));
        assert_eq!(o.missing_roles.get("bob"), Some(&1));
        assert_eq!(o.missing_extensions, vec!["postgis".to_string(), "vector".to_string()]);
        assert_eq!(o.errors.len(), 1);
        assert!(o.errors[0].contains("relation \"x\""));
    }

    #[test]
    fn formats_are_detected_from_content() {
        let dir = tempfile::tempdir().unwrap();
        let custom = dir.path().join("a");
        std::fs::write(&custom, b"PGDMP\x01\x0e\x00").unwrap();
        assert_eq!(DumpFormat::detect(&custom).unwrap(), DumpFormat::Custom);
        let mut tar = vec![0u8; 512];
        tar[..7].copy_from_slice(b"toc.dat");
        tar[257..263].copy_from_slice(b"ustar\0");
        let tarp = dir.path().join("b");
        std::fs::write(&tarp, &tar).unwrap();
        assert_eq!(DumpFormat::detect(&tarp).unwrap(), DumpFormat::Tar);
        let plain = dir.path().join("c.sql");
        std::fs::write(&plain, "--\n-- PostgreSQL database dump\n--\nCREATE TABLE t (id int);\n").unwrap();
        assert_eq!(DumpFormat::detect(&plain).unwrap(), DumpFormat::Plain);
        let d = dir.path().join("d");
        std::fs::create_dir(&d).unwrap();
        assert!(DumpFormat::detect(&d).unwrap_err().message.contains("toc.dat"));
        std::fs::write(d.join("toc.dat"), b"PGDMP").unwrap();
        assert_eq!(DumpFormat::detect(&d).unwrap(), DumpFormat::Directory);
        let gz = dir.path().join("e.gz");
        std::fs::write(&gz, [0x1f, 0x8b, 8, 0]).unwrap();
        assert!(DumpFormat::detect(&gz).unwrap_err().message.contains("compressed"));
        assert!(DumpFormat::detect(&dir.path().join("missing")).unwrap_err().message.contains("cannot read"));
    }
}
