//! The tool's own sessions on a server, so that none outlives a rehearsal.
//!
//! Every connection a rehearsal opens (admin, migration, sampler, each
//! workload connection or replayed session) is registered with its backend pid
//! and the key that cancels its statement (a CancelRequest, which needs no
//! session of its own). `close` runs on every way out of a rehearsal — its
//! end, an error, Ctrl-C, SIGTERM or SIGHUP — and `Drop` runs it on a panic:
//! it cancels the statements still running, confirms through
//! `pg_stat_activity` that none of the sessions remains, terminates those that
//! do (`pg_terminate_backend`), and returns what it did, to be said. It matters
//! most on the url backend, whose server is not ours and outlives the run; a
//! disposable server is removed afterwards anyway, but not with `--keep`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio_postgres::config::Host;
use tokio_postgres::{CancelToken, Client};

use super::template::connect_with;
use crate::error::{Error, Result, describe_pg};
use crate::pg::{Target, Tls};

/// How long one control step may take: connecting, a query, a cancel request.
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long sessions may take to end after their statement was cancelled and
/// their connection closed, before they are terminated.
const END_GRACE: Duration = Duration::from_secs(3);

/// The tool's sessions, as `pg_stat_activity` shows them: only backends whose
/// `application_name` is one of the tool's are ever cancelled or terminated.
const OURS_SQL: &str = "SELECT pid, coalesce(state, ''), left(coalesce(query, ''), 80), \
     coalesce(wait_event_type, '') = 'Lock' FROM pg_stat_activity \
     WHERE pid = ANY($1) AND pid <> pg_backend_pid() AND application_name LIKE 'lockimpact-%' ORDER BY pid";

/// How to cancel one session's statement.
enum Key {
    /// A tokio-postgres connection's own token.
    Client(CancelToken),
    /// The secret key a workload connection got at login (`BackendKeyData`).
    Secret(i32),
}

struct Session {
    pid: i32,
    purpose: String,
    key: Key,
}

/// The sessions one rehearsal opened on one server.
pub struct Sessions {
    /// Where control connections and cancel requests go.
    target: Target,
    list: Mutex<Vec<Session>>,
    closed: AtomicBool,
}

/// What `close` did.
#[derive(Debug, Default)]
pub struct Closed {
    /// Sessions registered during the run.
    pub total: usize,
    /// Sessions whose running statement was cancelled: "purpose (pid N): query".
    pub cancelled: Vec<String>,
    /// Sessions that did not end by themselves and were terminated.
    pub terminated: Vec<String>,
    /// Sessions still there at the end (not ours to terminate, or not terminable).
    pub remaining: Vec<String>,
    /// Why it could not check, when it could not (the server does not answer).
    pub unconfirmed: Option<String>,
}

impl Closed {
    /// Nothing was left behind, and that was confirmed.
    pub fn clean(&self) -> bool {
        self.remaining.is_empty() && self.unconfirmed.is_none()
    }

    /// One line to say; `removed_next`: the server is removed right after
    /// (a disposable one, not kept), and its sessions with it.
    pub fn message(&self, removed_next: bool) -> String {
        let mut parts = Vec::new();
        if !self.cancelled.is_empty() {
            parts.push(format!("cancelled the running statement of {}", self.cancelled.join(", ")));
        }
        if !self.terminated.is_empty() {
            parts.push(format!("terminated {}, which had not ended", self.terminated.join(", ")));
        }
        let end = match (&self.unconfirmed, self.remaining.is_empty()) {
            (Some(why), _) if removed_next => {
                format!("cannot confirm that they ended ({why}); the server is removed next, and they with it")
            }
            (Some(why), _) => format!(
                "cannot confirm that lockimpact's {} sessions on the server ended: {why}; a cancel request was sent \
                 to each. Check pg_stat_activity for application_name LIKE 'lockimpact-%'",
                self.total
            ),
            (None, false) => {
                format!("{} still on the server; end them with pg_terminate_backend(pid)", self.remaining.join(", "))
            }
            (None, true) => format!("all {} of lockimpact's sessions on the server have ended", self.total),
        };
        parts.push(end);
        format!("sessions: {}", parts.join("; "))
    }
}

impl Sessions {
    /// `target` reaches the server (any database of it) for control connections.
    pub fn new(target: Target) -> Sessions {
        Sessions { target, list: Mutex::new(Vec::new()), closed: AtomicBool::new(false) }
    }

    /// Connects to `dbname` of `server` for `purpose` and registers the
    /// session; returns the client and its backend pid.
    pub async fn connect(&self, server: &super::Server, dbname: &str, purpose: &str) -> Result<(Client, i32)> {
        let client = super::template::connect(server, dbname, purpose).await?;
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map_err(|e| Error::db(format!("the {purpose} connection: {}", describe_pg(&e))))?
            .get(0);
        self.add_client(pid, purpose, &client);
        Ok((client, pid))
    }

    /// Registers a tokio-postgres session.
    pub fn add_client(&self, pid: i32, purpose: &str, client: &Client) {
        self.add(Session { pid, purpose: purpose.into(), key: Key::Client(client.cancel_token()) });
    }

    /// Registers a session by its pid and the secret key it got at login.
    pub fn add_key(&self, pid: i32, secret: i32, purpose: &str) {
        self.add(Session { pid, purpose: purpose.into(), key: Key::Secret(secret) });
    }

    fn add(&self, s: Session) {
        let mut list = self.list.lock().expect("sessions");
        list.retain(|o| o.pid != s.pid); // a pid the server gave again: the old session is gone
        list.push(s);
    }

    /// Forgets a session that ended normally (a replayed session between rounds).
    pub fn forget(&self, pid: i32) {
        self.list.lock().expect("sessions").retain(|s| s.pid != pid);
    }

    /// Cancels what still runs, confirms that every session ended, terminates
    /// those that did not. With `server_answers` false (the watchdog found it
    /// frozen) it only sends the cancel requests. Bounded in time.
    pub async fn close(&self, server_answers: bool) -> Closed {
        self.closed.store(true, Ordering::Release);
        let list = std::mem::take(&mut *self.list.lock().expect("sessions"));
        close(&self.target, list, server_answers).await
    }
}

impl Drop for Sessions {
    /// A panic (or a path that skipped `close`): close on a thread of its own.
    fn drop(&mut self) {
        let list = std::mem::take(&mut *self.list.lock().unwrap_or_else(|p| p.into_inner()));
        if self.closed.load(Ordering::Acquire) || list.is_empty() {
            return;
        }
        let target = self.target.clone();
        let closing = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            Some(rt.block_on(close(&target, list, true)))
        });
        if let Ok(Some(closed)) = closing.join() {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "lockimpact: {}", closed.message(false));
        }
    }
}

/// One row of `OURS_SQL`.
struct Seen {
    pid: i32,
    state: String,
    query: String,
    waiting_on_lock: bool,
}

async fn close(target: &Target, list: Vec<Session>, server_answers: bool) -> Closed {
    let mut done = Closed { total: list.len(), ..Default::default() };
    if list.is_empty() {
        return done;
    }
    let control = match server_answers {
        false => Err(Error::db("the server stopped answering")),
        true => match tokio::time::timeout(CONTROL_TIMEOUT, connect_with(target.clone(), "cleanup")).await {
            Ok(r) => r,
            Err(_) => Err(Error::db(format!("no connection within {} s", CONTROL_TIMEOUT.as_secs()))),
        },
    };
    let control = match control {
        Ok(c) => c,
        Err(why) => {
            for s in &list {
                let _ = cancel(target, s).await;
            }
            done.unconfirmed = Some(why.message);
            return done;
        }
    };
    let pids: Vec<i32> = list.iter().map(|s| s.pid).collect();
    let name = |pid: i32, q: &str| {
        let purpose = list.iter().find(|s| s.pid == pid).map_or("session", |s| s.purpose.as_str());
        if q.is_empty() { format!("{purpose} (pid {pid})") } else { format!("{purpose} (pid {pid}: {q})") }
    };
    let result: Result<()> = async {
        for s in ours(&control, &pids).await? {
            if s.state == "active" || s.state.starts_with("fastpath") || s.waiting_on_lock {
                if let Some(session) = list.iter().find(|x| x.pid == s.pid) {
                    let _ = cancel(target, session).await;
                }
                done.cancelled.push(name(s.pid, &s.query));
            }
        }
        let left = wait_gone(&control, &pids).await?;
        for s in &left {
            let _ =
                tokio::time::timeout(CONTROL_TIMEOUT, control.execute("SELECT pg_terminate_backend($1)", &[&s.pid]))
                    .await;
            done.terminated.push(name(s.pid, &s.state));
        }
        if !left.is_empty() {
            done.remaining = wait_gone(&control, &pids).await?.iter().map(|s| name(s.pid, &s.state)).collect();
        }
        Ok(())
    }
    .await;
    if let Err(why) = result {
        done.unconfirmed = Some(why.message);
    }
    done
}

/// The registered sessions still on the server.
async fn ours(control: &Client, pids: &[i32]) -> Result<Vec<Seen>> {
    let rows = tokio::time::timeout(CONTROL_TIMEOUT, control.query(OURS_SQL, &[&pids]))
        .await
        .map_err(|_| Error::db(format!("pg_stat_activity did not answer within {} s", CONTROL_TIMEOUT.as_secs())))?
        .map_err(|e| Error::db(format!("cannot read pg_stat_activity: {}", describe_pg(&e))))?;
    Ok(rows
        .iter()
        .map(|r| Seen { pid: r.get(0), state: r.get(1), query: r.get(2), waiting_on_lock: r.get(3) })
        .collect())
}

/// Waits up to `END_GRACE` for the sessions to end; returns those that did not.
async fn wait_gone(control: &Client, pids: &[i32]) -> Result<Vec<Seen>> {
    let deadline = Instant::now() + END_GRACE;
    loop {
        let left = ours(control, pids).await?;
        if left.is_empty() || Instant::now() >= deadline {
            return Ok(left);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends a CancelRequest for one session (bounded; the server ignores one
/// for a session that is idle).
async fn cancel(target: &Target, s: &Session) -> std::io::Result<()> {
    let send = async {
        match &s.key {
            Key::Client(token) => cancel_token(&target.tls, token).await,
            Key::Secret(secret) => cancel_raw(&target.config, s.pid, *secret).await,
        }
    };
    tokio::time::timeout(CONTROL_TIMEOUT, send).await.unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// Cancels the statement running on a tokio-postgres connection (a
/// CancelRequest on a new socket, with the connection's TLS), within
/// `CONTROL_TIMEOUT`.
pub async fn cancel_token(tls: &Tls, token: &CancelToken) -> std::io::Result<()> {
    let sent = async {
        match tls.client_config() {
            None => token.cancel_query(tokio_postgres::NoTls).await,
            Some(c) => {
                let connector = tokio_postgres_rustls::MakeRustlsConnect::new(rustls::ClientConfig::clone(c));
                token.cancel_query(connector).await
            }
        }
    };
    match tokio::time::timeout(CONTROL_TIMEOUT, sent).await {
        Ok(r) => r.map_err(std::io::Error::other),
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// A CancelRequest for `pid` with its secret key, to the first host of
/// `config`, without TLS (as libpq sends one; the server reads it before any
/// authentication).
async fn cancel_raw(config: &tokio_postgres::Config, pid: i32, secret: i32) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut buf = bytes::BytesMut::new();
    postgres_protocol::message::frontend::cancel_request(pid, secret, &mut buf);
    let port = config.get_ports().first().copied().unwrap_or(5432);
    match config.get_hosts().first() {
        Some(Host::Unix(dir)) => {
            let mut s = tokio::net::UnixStream::connect(dir.join(format!(".s.PGSQL.{port}"))).await?;
            s.write_all(&buf).await?;
            s.shutdown().await
        }
        Some(Host::Tcp(host)) => {
            let mut s = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            s.write_all(&buf).await?;
            s.shutdown().await
        }
        None => Err(std::io::Error::other("no host in the connection settings")),
    }
}
