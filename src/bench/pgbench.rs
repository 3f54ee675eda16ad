//! `pgbench` as the other side of the closed-loop row: one script per query
//! class with the same SQL (`$n` becomes `:pn`) and `\set pn random(lo, hi)`
//! for each parameter, weighted like the classes (`-f script@weight`), run as
//! a child process with `-n -M prepared -c N -j N -T secs`. Its CPU time comes
//! from `wait4`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{BENCH_DB, Ctx};
use crate::clone::restore::Tools;
use crate::error::{Error, Result};
use crate::workload::file::{Class, Pace};
use crate::workload::params::Param;

/// The pgbench script of one class, or why it cannot be written.
pub fn script(class: &Class) -> Result<String> {
    let mut out = String::new();
    for (i, p) in class.params.iter().enumerate() {
        match p {
            Param::Uniform { min, span } => {
                let hi = min.saturating_add(*span as i64 - 1);
                out.push_str(&format!("\\set p{} random({min}, {hi})\n", i + 1));
            }
            other => {
                return Err(Error::input(format!(
                    "class {:?}: parameter ${} ({other:?}) has no pgbench form",
                    class.name,
                    i + 1
                )));
            }
        }
    }
    if class.hold.is_some() {
        return Err(Error::input(format!("class {:?}: a held transaction has no pgbench form", class.name)));
    }
    let tokens =
        crate::pg::lex::scan_tokens(&class.sql).map_err(|e| Error::input(format!("class {:?}: {e}", class.name)))?;
    let mut sql = String::new();
    let mut at = 0usize;
    for t in tokens.iter().filter(|t| t.token == pg_query::protobuf::Token::Param as i32) {
        let (s, e) = (t.start as usize, t.end as usize);
        sql.push_str(&class.sql[at..s]);
        sql.push_str(":p");
        sql.push_str(&class.sql[s + 1..e]);
        at = e;
    }
    sql.push_str(&class.sql[at..]);
    out.push_str(sql.trim().trim_end_matches(';'));
    out.push_str(";\n");
    Ok(out)
}

/// Writes one script per class into `dir`; returns the `-f file@weight` arguments.
pub fn write_scripts(classes: &[Class], dir: &Path) -> Result<Vec<String>> {
    let mut args = Vec::new();
    for c in classes {
        let Pace::Weight(w) = c.pace else {
            return Err(Error::input(format!("class {:?}: a class at its own rate has no pgbench form", c.name)));
        };
        let text = script(c)?;
        let path = dir.join(format!("{}.sql", c.name));
        std::fs::write(&path, text).map_err(|e| Error::env(format!("{}: {e}", path.display())))?;
        args.push("-f".into());
        args.push(format!("{}@{}", path.display(), (w * 100.0).round().max(1.0) as u64));
    }
    Ok(args)
}

/// One pgbench run.
#[derive(Debug, Clone)]
pub struct Run {
    /// "tps = … (without initial connection time)".
    pub tps: f64,
    pub transactions: u64,
    pub failed: u64,
    /// pgbench's own CPU time (user + system).
    pub cpu: Duration,
}

fn tools(ctx: &Ctx) -> Result<(PathBuf, PathBuf, u16)> {
    match ctx.server.tools() {
        Some(Tools::Local { bin_dir, socket_dir, port, .. }) => Ok((bin_dir, socket_dir, port)),
        _ => Err(Error::env("the bench runs on the local backend only")),
    }
}

/// `pgbench --version`, or what went wrong.
pub fn version(ctx: &Ctx) -> String {
    let Ok((bin, _, _)) = tools(ctx) else { return "unknown".into() };
    Command::new(bin.join("pgbench"))
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|e| format!("not runnable: {e}"))
}

/// Runs pgbench for `secs` seconds on `BENCH_DB` with the class scripts.
pub async fn run(ctx: &Ctx, scripts: &[String], dir: &Path, secs: u64) -> Result<Run> {
    let (bin, socket, port) = tools(ctx)?;
    let n = ctx.cfg.connections.to_string();
    let mut cmd = Command::new(bin.join("pgbench"));
    cmd.arg("-h").arg(&socket).args(["-p", &port.to_string(), "-U", "postgres"]);
    cmd.args(["-n", "-M", "prepared", "-c", &n, "-j", &n, "-T", &secs.to_string()]);
    cmd.args(scripts).arg(BENCH_DB);
    let out_path = dir.join("pgbench.out");
    let err_path = dir.join("pgbench.err");
    let file = |p: &Path| std::fs::File::create(p).map_err(|e| Error::env(format!("{}: {e}", p.display())));
    cmd.stdin(Stdio::null()).stdout(file(&out_path)?).stderr(file(&err_path)?);
    let child = cmd.spawn().map_err(|e| Error::env(format!("cannot run {}: {e}", bin.join("pgbench").display())))?;
    let pid = child.id() as i32;
    let Reaped { code: status, cpu, .. } = tokio::task::spawn_blocking(move || wait4(pid))
        .await
        .map_err(|e| Error::env(format!("pgbench wait: {e}")))??;
    drop(child); // already reaped by wait4
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    if status != 0 {
        return Err(Error::env(format!("pgbench failed (status {status}):\n{stderr}{stdout}")));
    }
    let field = |prefix: &str| -> Option<String> {
        stdout.lines().find_map(|l| l.trim().strip_prefix(prefix).map(|r| r.trim().to_string()))
    };
    let tps = field("tps = ")
        .and_then(|r| r.split_whitespace().next().and_then(|x| x.parse().ok()))
        .ok_or_else(|| Error::env(format!("pgbench printed no tps:\n{stdout}{stderr}")))?;
    let transactions = field("number of transactions actually processed:")
        .and_then(|r| r.split(['/', ' ']).next().and_then(|x| x.parse().ok()))
        .unwrap_or(0);
    let failed = field("number of failed transactions:")
        .and_then(|r| r.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0);
    Ok(Run { tps, transactions, failed, cpu })
}

/// What a reaped child used.
pub struct Reaped {
    /// Exit code, or 128 + the signal that ended it.
    pub code: i32,
    /// User + system CPU time.
    pub cpu: Duration,
    /// Peak resident set size, KiB.
    pub maxrss_kb: u64,
}

/// Waits for child `pid` and reads what it used (`wait4`'s rusage).
pub fn wait4(pid: i32) -> Result<Reaped> {
    let (code, usage) = crate::sys::wait_child(pid).map_err(|e| Error::env(format!("wait4({pid}) failed: {e}")))?;
    Ok(Reaped { code, cpu: usage.cpu, maxrss_kb: usage.maxrss_kb })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_carry_the_same_sql_and_ranges() {
        let cfg = super::super::Config::new(&crate::cli::BenchArgs {
            quick: true,
            out: ".".into(),
            pg_bin: None,
            reset_rows: None,
            data_dir: None,
            reset_10gb: false,
            predict_5m: false,
            predict_only: Vec::new(),
            rounds: None,
            only: Vec::new(),
            quiet: true,
        });
        let classes = super::super::bench_classes(&cfg).unwrap();
        let s = script(&classes[3]).unwrap();
        assert_eq!(
            s,
            "\\set p1 random(1, 10000)\n\\set p2 random(100, 100000)\nUPDATE orders SET total_cents = :p2 WHERE id = :p1;\n"
        );
    }
}
