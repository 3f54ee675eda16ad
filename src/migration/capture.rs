//! `migration.command`: a framework's own migrate command (`bin/rails
//! db:migrate`, `mix ecto.migrate`, `npx knex migrate:latest`, …) run
//! against the clone while the workload runs, with the connection in
//! `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE` and
//! `DATABASE_URL`. It connects as its own role, for which the clone logs
//! every statement when it starts (`log_statement = 'all'`), its duration
//! when it ends (`log_min_duration_statement = 0`) and the SQLSTATE of an
//! error (`log_error_verbosity = verbose`), with the prefix the log reader
//! of `lockimpact record` understands. While it runs, its sessions count as
//! the migration for the sampler (blocked sessions, locks). When it ends,
//! each statement becomes a step with its start and duration from the log;
//! its transactions (BEGIN … COMMIT) and runs of autocommit statements are
//! the groups. WAL and rewrites are measured around the whole command.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use super::TxMode;
use super::runner;
use super::split::{self, TxControl};
use crate::clone::Server;
use crate::error::{Error, Result, describe_pg};
use crate::pg::log::{Entry, STDERR_PREFIX, inline, parse_parameters, parse_time, stderr_entries};
use crate::run_record::{CommandRecord, GroupRecord, MigrationRecord, Outcome, StepRecord};
use crate::sys::{self, Signal};
use crate::timeline::{Clock, Slot};
use crate::workload::Roles;

/// The role the command connects as (a superuser of the disposable clone).
pub const ROLE: &str = "lockimpact_command";

/// Lines of the command's output kept for the report.
const OUTPUT_LINES: usize = 40;

/// What `prepare` set up: the role's password.
pub struct Prepared {
    password: String,
}

/// Before the workload starts: the command's role and what the clone logs
/// for it. Refused on a server whose log lockimpact cannot read.
pub async fn prepare(server: &Server, admin: &Client) -> Result<Prepared> {
    if server.read_log().is_none() {
        return Err(Error::input(
            "migration.command captures the statements from the clone's own log, which lockimpact reads on the local \
             and docker backends only; rehearse it on one of those (--backend local or docker)",
        ));
    }
    let password = random_hex()?;
    let setup = [
        format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN CREATE ROLE {ROLE}; END IF; END $$"
        ),
        format!("ALTER ROLE {ROLE} LOGIN SUPERUSER PASSWORD '{password}'"),
        format!("ALTER ROLE {ROLE} SET log_statement = 'all'"),
        format!("ALTER ROLE {ROLE} SET log_min_duration_statement = 0"),
        format!("ALTER ROLE {ROLE} SET log_error_verbosity = 'verbose'"),
        format!("ALTER SYSTEM SET log_line_prefix = '{STDERR_PREFIX}'"),
        "SELECT pg_reload_conf()".to_string(),
    ];
    for sql in &setup {
        admin.batch_execute(sql).await.map_err(|e| {
            Error::db(format!("cannot prepare the clone to capture migration.command: {}", describe_pg(&e)))
        })?;
    }
    // The postmaster reloads asynchronously; sessions started after it see the prefix.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let row = admin.query_one("SHOW log_line_prefix", &[]).await.map_err(|e| Error::db(describe_pg(&e)))?;
        if row.get::<_, String>(0) == STDERR_PREFIX {
            return Ok(Prepared { password });
        }
        if Instant::now() > deadline {
            return Err(Error::db("the clone did not take the new log_line_prefix within 10 s (pg_reload_conf)"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn random_hex() -> Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .map_err(|e| Error::env(format!("cannot read /dev/urandom for a password: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Runs the command and turns what the clone logged into steps.
pub struct Capture<'a> {
    pub server: &'a Server,
    pub db: &'a str,
    /// A superuser connection of lockimpact's own (the migration's).
    pub client: &'a Client,
    pub clock: Arc<Clock>,
    pub roles: Arc<Roles>,
    pub cancel: CancellationToken,
    /// How often the command's sessions are looked for (the sampler's interval).
    pub poll: Duration,
    pub say: &'a (dyn Fn(&str) + Sync),
}

impl Capture<'_> {
    /// Runs `command` in `cwd` and records its statements into `rec`.
    pub async fn run(&self, prepared: &Prepared, command: &str, cwd: &Path, rec: &mut MigrationRecord) {
        let zero = self.server_time().await;
        let offset = self.server.read_log().and_then(|r| r.ok()).map_or(0, |t| t.len());
        let (wal0, nodes0) = (runner::wal_lsn(self.client).await, runner::filenodes(self.client).await);
        self.clock.enter(Slot::Between);
        (self.say)(&format!("running the migration command: {command}"));
        let started = Instant::now();
        let (exit_code, output_tail) = self.execute(prepared, command, cwd).await;
        let mut cmd = CommandRecord {
            command: command.to_string(),
            exit_code,
            output_tail,
            duration: started.elapsed(),
            ..Default::default()
        };
        if let (Some(a), Some(b)) = (wal0, runner::wal_lsn(self.client).await) {
            cmd.wal_bytes = Some(b.saturating_sub(a));
        }
        if let (Some(before), Some(after)) = (nodes0, runner::filenodes(self.client).await) {
            cmd.rewritten = runner::rewritten(&before, &after);
        }
        let log = match self.server.read_log() {
            Some(Ok(text)) => text.get(offset..).unwrap_or_default().to_string(),
            Some(Err(e)) => {
                (self.say)(&format!("cannot read the clone's log: {e}; the command's statements are not known"));
                String::new()
            }
            None => String::new(),
        };
        let statements = captured(&stderr_entries(&log).0, self.db);
        cmd.sessions = statements.iter().map(|s| &s.session).collect::<std::collections::HashSet<_>>().len();
        let end = self.clock.since_start(Instant::now());
        let to_clock = |ms: f64| match zero {
            Some((server_ms, at)) => Duration::from_secs_f64(((ms - server_ms) / 1000.0 + at.as_secs_f64()).max(0.0)),
            None => end,
        };
        record(rec, statements, command, &to_clock, end);
        rec.committed = exit_code == Some(0) && rec.steps.iter().all(|s| s.outcome == Outcome::Ok);
        (self.say)(&format!(
            "the command {}; {} statements captured from the clone's log",
            match exit_code {
                Some(c) => format!("exited with code {c}"),
                None => "was stopped".to_string(),
            },
            rec.steps.len()
        ));
        rec.command = Some(cmd);
        let _ = self.client.batch_execute("ALTER SYSTEM RESET log_line_prefix").await;
        let _ = self.client.batch_execute("SELECT pg_reload_conf()").await;
    }

    /// The server's clock in the log's time zone (ms, as `parse_time` reads
    /// the log) and the clock offset it was read at.
    async fn server_time(&self) -> Option<(f64, Duration)> {
        let sent = Instant::now();
        let row = self
            .client
            .query_one(
                "SELECT to_char(clock_timestamp() AT TIME ZONE current_setting('log_timezone'), \
                 'YYYY-MM-DD HH24:MI:SS.US')",
                &[],
            )
            .await
            .ok()?;
        let at = self.clock.since_start(sent + sent.elapsed() / 2);
        Some((parse_time(&row.get::<_, String>(0))?, at))
    }

    /// Runs the command to its end (or until interrupted: its process group
    /// is stopped); meanwhile its sessions join the migration's. Returns
    /// its exit code and the last lines it printed.
    async fn execute(&self, prepared: &Prepared, command: &str, cwd: &Path) -> (Option<i32>, String) {
        let config = self.server.config(self.db);
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let url = format!("postgresql://{ROLE}:{}@127.0.0.1:{port}/{}", prepared.password, self.db);
        let spawned = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(cwd)
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", port.to_string())
            .env("PGUSER", ROLE)
            .env("PGPASSWORD", &prepared.password)
            .env("PGDATABASE", self.db)
            .env("PGSSLMODE", "disable")
            .env("DATABASE_URL", &url)
            .env_remove("PGSERVICE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => return (None, format!("cannot start `sh -c {command}` in {}: {e}", cwd.display())),
        };
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(tokio::spawn(drain(out, output.clone())));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(drain(err, output.clone())));
        }
        let mut tick = tokio::time::interval(self.poll);
        let status = loop {
            tokio::select! {
                s = child.wait() => break s.ok().and_then(|s| s.code()),
                _ = tick.tick() => self.join_sessions().await,
                _ = self.cancel.cancelled() => {
                    stop_group(&mut child).await;
                    break None;
                }
            }
        };
        for r in readers {
            // A background process of the command may hold a pipe open: do not wait for it.
            let _ = tokio::time::timeout(Duration::from_secs(2), r).await;
        }
        let text = String::from_utf8_lossy(&output.lock().expect("output")).into_owned();
        let lines: Vec<&str> = text.lines().collect();
        (status, lines[lines.len().saturating_sub(OUTPUT_LINES)..].join("\n"))
    }

    /// Adds the command's sessions to the migration's backends.
    async fn join_sessions(&self) {
        if let Ok(rows) = self.client.query("SELECT pid FROM pg_stat_activity WHERE usename = $1", &[&ROLE]).await {
            for r in rows {
                self.roles.add_migration(r.get(0));
            }
        }
    }
}

/// Reads a pipe of the command to its end into `into`.
async fn drain(mut pipe: impl tokio::io::AsyncRead + Unpin, into: Arc<Mutex<Vec<u8>>>) {
    let mut buf = [0u8; 8192];
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        into.lock().expect("output").extend_from_slice(&buf[..n]);
    }
}

/// Stops the command's process group: SIGTERM, then SIGKILL after 5 s.
async fn stop_group(child: &mut tokio::process::Child) {
    let Some(pid) = child.id() else { return };
    // The command runs in its own process group (pgid = its pid).
    sys::signal_group(pid, Signal::Term);
    if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
        sys::signal_group(pid, Signal::Kill);
        let _ = child.wait().await;
    }
}

/// A statement the command sent, as the clone logged it.
#[derive(Debug, Clone, PartialEq)]
pub struct Captured {
    pub session: String,
    /// Log time when it started, ms.
    pub start_ms: f64,
    /// How long it ran, when it finished (`duration:`) or failed (until the error).
    pub duration_ms: Option<f64>,
    pub sql: String,
    /// (SQLSTATE, message) when it failed.
    pub error: Option<(String, String)>,
}

/// The statements of `db`'s sessions of the command's role, in log order:
/// `statement:`/`execute …:` lines (logged when a statement starts) paired
/// with the bare `duration:` line or the error that ends it.
pub fn captured(entries: &[Entry], db: &str) -> Vec<Captured> {
    let mut out: Vec<Captured> = Vec::new();
    let mut open: HashMap<String, usize> = HashMap::new();
    let mut unlogged_error: HashMap<String, (f64, String, String)> = HashMap::new();
    for e in entries.iter().filter(|e| e.user == ROLE && e.database == db) {
        // log_error_verbosity = verbose puts the SQLSTATE before every message.
        let (code, text) = sqlstate_prefix(&e.message);
        let e = &Entry { message: text.to_string(), ..e.clone() };
        let ends = |out: &mut Vec<Captured>, open: &mut HashMap<String, usize>| {
            open.remove(&e.session).inspect(|&i| out[i].duration_ms = Some(e.time_ms - out[i].start_ms))
        };
        match e.severity.as_str() {
            "LOG" => {
                if let Some(sql) = started_sql(e) {
                    ends(&mut out, &mut open);
                    open.insert(e.session.clone(), out.len());
                    out.push(Captured {
                        session: e.session.clone(),
                        start_ms: e.time_ms,
                        duration_ms: None,
                        sql,
                        error: None,
                    });
                } else if let Some(ms) = bare_duration(&e.message)
                    && let Some(i) = open.remove(&e.session)
                {
                    out[i].duration_ms = Some(ms);
                }
            }
            "ERROR" | "FATAL" | "PANIC" => {
                let (code, message) = (code.unwrap_or_default().to_string(), e.message.clone());
                match ends(&mut out, &mut open) {
                    Some(i) => out[i].error = Some((code, message)),
                    // A statement that did not parse is never logged as started; its text follows.
                    None => {
                        unlogged_error.insert(e.session.clone(), (e.time_ms, code, message));
                    }
                }
            }
            "STATEMENT" => {
                if let Some((t, code, message)) = unlogged_error.remove(&e.session) {
                    out.push(Captured {
                        session: e.session.clone(),
                        start_ms: t,
                        duration_ms: Some(0.0),
                        sql: e.message.trim().to_string(),
                        error: Some((code, message)),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// (`42P07`, `relation "x" already exists`) of a verbose message.
fn sqlstate_prefix(message: &str) -> (Option<&str>, &str) {
    match message.split_once(": ") {
        Some((c, rest)) if c.len() == 5 && c.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()) => {
            (Some(c), rest)
        }
        _ => (None, message),
    }
}

/// The SQL of a `statement: …` or `execute <name>: …` line (parameters inlined).
fn started_sql(e: &Entry) -> Option<String> {
    if let Some(sql) = e.message.strip_prefix("statement: ") {
        return Some(sql.trim().to_string());
    }
    let (_, sql) = e.message.strip_prefix("execute ")?.split_once(": ")?;
    Some(inline(sql.trim(), &parse_parameters(&e.detail)))
}

/// `duration: 1.234 ms` with nothing after it.
fn bare_duration(message: &str) -> Option<f64> {
    let num = message.strip_prefix("duration: ")?.strip_suffix(" ms")?;
    num.trim().parse().ok()
}

/// A group of captured statements as it is being built.
struct Pending {
    tx: TxMode,
    started: f64,
    steps: Vec<StepRecord>,
    committed: bool,
}

/// Per session, each BEGIN … COMMIT is a `file` group and each run of
/// statements outside one a `none` group (COMMIT's time goes to the
/// transaction's last step); groups in the order they started.
fn transactions(statements: Vec<Captured>, to_clock: &dyn Fn(f64) -> Duration, end: Duration) -> Vec<Pending> {
    let mut by_session: Vec<(String, Vec<Captured>)> = Vec::new();
    for s in statements {
        match by_session.iter_mut().find(|(id, _)| *id == s.session) {
            Some((_, list)) => list.push(s),
            None => by_session.push((s.session.clone(), vec![s])),
        }
    }
    let duration = |s: &Captured| match s.duration_ms {
        Some(ms) => Duration::from_secs_f64(ms.max(0.0) / 1000.0),
        None => end.saturating_sub(to_clock(s.start_ms)),
    };
    let mut groups: Vec<Pending> = Vec::new();
    for (_, list) in by_session {
        let mut current: Option<Pending> = None;
        for s in list {
            let control = split::tx_control(&s.sql);
            let in_tx = current.as_ref().is_some_and(|g| g.tx == TxMode::File);
            match control {
                Some(TxControl::Begin) => {
                    groups.extend(current.take().filter(|g| !g.steps.is_empty()));
                    current =
                        Some(Pending { tx: TxMode::File, started: s.start_ms, steps: Vec::new(), committed: true });
                }
                Some(TxControl::Commit | TxControl::Rollback) if in_tx => {
                    let mut g = current.take().expect("an open transaction");
                    g.committed &= control == Some(TxControl::Commit) && s.error.is_none();
                    if let Some(last) = g.steps.last_mut() {
                        last.duration += duration(&s);
                    }
                    groups.push(g);
                }
                _ => {
                    let g = current.get_or_insert_with(|| Pending {
                        tx: TxMode::None,
                        started: s.start_ms,
                        steps: Vec::new(),
                        committed: true,
                    });
                    let step = step_of(&s, to_clock(s.start_ms), duration(&s));
                    g.committed &= step.outcome == Outcome::Ok;
                    g.steps.push(step);
                }
            }
        }
        groups.extend(current.take().filter(|g| !g.steps.is_empty()));
    }
    groups.sort_by(|a, b| a.started.total_cmp(&b.started));
    groups
}

/// Fills `rec` with the steps and groups of the captured statements.
fn record(
    rec: &mut MigrationRecord,
    statements: Vec<Captured>,
    command: &str,
    to_clock: &dyn Fn(f64) -> Duration,
    end: Duration,
) {
    let (mut transactions_seen, mut runs) = (0, 0);
    for g in transactions(statements, to_clock, end) {
        let name = if g.tx == TxMode::File {
            transactions_seen += 1;
            format!("transaction {transactions_seen}")
        } else {
            runs += 1;
            format!("autocommit statements {runs}")
        };
        let start = rec.steps.len();
        rec.steps.extend(g.steps);
        rec.groups.push(GroupRecord {
            name,
            file: command.to_string(),
            version: None,
            transaction: g.tx,
            steps: start..rec.steps.len(),
            committed: g.committed,
            has_down: false,
            captured: true,
        });
    }
    let first = rec.groups.first().map(|g| g.transaction);
    rec.transaction = first.filter(|t| rec.groups.iter().all(|g| g.transaction == *t));
}

fn step_of(s: &Captured, start: Duration, duration: Duration) -> StepRecord {
    let (outcome, sqlstate, error) = match (&s.error, s.duration_ms) {
        (Some((code, message)), _) => {
            (Outcome::from_sqlstate(code), (!code.is_empty()).then(|| code.clone()), Some(message.clone()))
        }
        (None, Some(_)) => (Outcome::Ok, None, None),
        (None, None) => (Outcome::Interrupted, None, Some("still running when the command ended".into())),
    };
    let name = split::default_name(s.sql.trim_end_matches([';', ' ', '\n', '\t', '\r']));
    StepRecord {
        duration,
        outcome,
        sqlstate,
        error,
        ..StepRecord::new(name, crate::run_record::StepType::Sql, 0, 1, start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
2026-12-01 13:30:05.021 UTC [a.1:1:9/2] lockimpact_command@run LOG:  00000: statement: BEGIN;
2026-12-01 13:30:05.021 UTC [a.1:2:9/2] lockimpact_command@run LOCATION:  exec_simple_query, postgres.c:1019
2026-12-01 13:30:05.021 UTC [a.1:3:9/2] lockimpact_command@run LOG:  00000: duration: 0.137 ms
2026-12-01 13:30:05.022 UTC [a.1:5:9/2] lockimpact_command@run LOG:  00000: statement: ALTER TABLE orders
\tADD COLUMN note text;
2026-12-01 13:30:05.022 UTC [b.2:1:8/1] app@run LOG:  00000: statement: SELECT 1;
2026-12-01 13:30:05.025 UTC [a.1:7:9/2] lockimpact_command@run LOG:  00000: duration: 2.500 ms
2026-12-01 13:30:05.030 UTC [a.1:9:9/2] lockimpact_command@run LOG:  00000: duration: 0.1 ms  parse <unnamed>: UPDATE orders SET note = $1 WHERE id = $2
2026-12-01 13:30:05.031 UTC [a.1:10:9/2] lockimpact_command@run LOG:  00000: execute <unnamed>: UPDATE orders SET note = $1 WHERE id = $2
2026-12-01 13:30:05.031 UTC [a.1:11:9/2] lockimpact_command@run DETAIL:  parameters: $1 = 'x', $2 = '7'
2026-12-01 13:30:05.041 UTC [a.1:12:9/2] lockimpact_command@run LOG:  00000: duration: 10.000 ms
2026-12-01 13:30:05.050 UTC [a.1:13:9/2] lockimpact_command@run LOG:  00000: statement: COMMIT;
2026-12-01 13:30:05.051 UTC [a.1:14:9/0] lockimpact_command@run LOG:  00000: duration: 1.000 ms
2026-12-01 13:30:05.060 UTC [a.1:15:9/3] lockimpact_command@run LOG:  00000: statement: ALTER TABLE nope ADD x int;
2026-12-01 13:30:05.061 UTC [a.1:16:9/3] lockimpact_command@run ERROR:  42P01: relation \"nope\" does not exist
2026-12-01 13:30:05.061 UTC [a.1:17:9/3] lockimpact_command@run STATEMENT:  ALTER TABLE nope ADD x int;
2026-12-01 13:30:05.070 UTC [a.1:18:9/4] lockimpact_command@run ERROR:  42601: syntax error at or near \"TABEL\"
2026-12-01 13:30:05.070 UTC [a.1:19:9/4] lockimpact_command@run STATEMENT:  ALTER TABEL x;
";

    #[test]
    fn statements_pair_with_their_duration_or_error() {
        let got = captured(&stderr_entries(LOG).0, "run");
        let sql: Vec<&str> = got.iter().map(|c| c.sql.as_str()).collect();
        assert_eq!(
            sql,
            [
                "BEGIN;",
                "ALTER TABLE orders\nADD COLUMN note text;",
                "UPDATE orders SET note = 'x' WHERE id = '7'",
                "COMMIT;",
                "ALTER TABLE nope ADD x int;",
                "ALTER TABEL x;"
            ]
        );
        assert_eq!(got[1].duration_ms, Some(2.5));
        assert_eq!(got[2].duration_ms, Some(10.0));
        assert_eq!(got[4].error.as_ref().map(|e| e.0.as_str()), Some("42P01"));
        assert!((got[4].duration_ms.unwrap() - 1.0).abs() < 1e-6);
        assert_eq!(got[5].error.as_ref().map(|e| e.0.as_str()), Some("42601"));
    }

    #[test]
    fn transactions_and_autocommit_runs_are_groups() {
        let mut rec = MigrationRecord::default();
        let got = captured(&stderr_entries(LOG).0, "run");
        let zero = got[0].start_ms;
        record(
            &mut rec,
            got,
            "sh migrate.sh",
            &|ms| Duration::from_secs_f64((ms - zero) / 1000.0),
            Duration::from_secs(1),
        );
        let groups: Vec<(&str, TxMode, usize, bool)> =
            rec.groups.iter().map(|g| (g.name.as_str(), g.transaction, g.steps.len(), g.committed)).collect();
        assert_eq!(
            groups,
            [("transaction 1", TxMode::File, 2, true), ("autocommit statements 1", TxMode::None, 2, false)]
        );
        // COMMIT's time counts in the transaction's last step.
        assert_eq!(rec.steps[1].duration, Duration::from_millis(11));
        assert_eq!(rec.steps[2].outcome, Outcome::Error);
        assert_eq!(rec.steps[2].sqlstate.as_deref(), Some("42P01"));
        assert_eq!(rec.steps[0].name, "ALTER TABLE orders ADD COLUMN note text");
        assert_eq!(rec.transaction, None);
    }
}
