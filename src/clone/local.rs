//! The `local` backend: `initdb` + `pg_ctl` from server binaries found on this
//! machine, in a temp dir (under TMPDIR, default /tmp) with a free port and a
//! short unix-socket path. As root it runs them as the `postgres` user
//! (initdb refuses root).
//!
//! Other local users are kept out: the temp dir, which holds the data
//! directory and the unix socket, is mode 0700 (only the tool's user, or the
//! `postgres` user it runs the server as, can enter it), so connections
//! through the socket are trusted; TCP connections on 127.0.0.1 need the
//! superuser's random password (scram-sha-256), which `--keep` prints.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::ServerHandle;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::clone::plan::ClonePlan;
use crate::error::{Error, Result};
use crate::sys::{self, Signal};

/// Server binaries of one major version.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub dir: PathBuf,
    pub major: u32,
    pub version: String,
}

/// Longest TMPDIR that leaves room for `/lockimpact-XXXXXX/.s.PGSQL.NNNNN`.
const MAX_TMPDIR_LEN: usize = 70;

pub struct LocalServer {
    bins: Binaries,
    /// Removed on drop unless kept.
    dir: Option<tempfile::TempDir>,
    data: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    pid: i32,
    run_as: Option<(u32, u32)>,
    /// The superuser's password for TCP connections (the socket needs none).
    password: String,
    /// `-c name=value` settings the server starts with (copies too).
    settings: Vec<(String, String)>,
    kept: bool,
    /// Streaming standbys of this server (`[replica]`), stopped before it.
    standbys: Vec<super::standby::Standby>,
}

impl LocalServer {
    pub fn start(plan: &ClonePlan) -> Result<LocalServer> {
        LocalServer::start_in(plan, &std::env::temp_dir())
    }

    /// `start` with the server's directory under `base` instead of TMPDIR
    /// (the bench's `--data-dir`: a file system that can share blocks).
    pub fn start_in(plan: &ClonePlan, base: &Path) -> Result<LocalServer> {
        let bins = find_binaries(plan.pg_bin.as_deref(), plan.pg_version)?;
        let run_as = if sys::effective_uid() == 0 { Some(postgres_user()?) } else { None };
        let (dir, root) = socket_dir(base, run_as)?;
        let mut server = LocalServer {
            bins,
            dir: Some(dir),
            data: root.join("data"),
            socket_dir: root,
            port: 0,
            pid: 0,
            run_as,
            password: random_password()?,
            settings: plan.settings.clone(),
            kept: false,
            standbys: Vec::new(),
        };
        server.initdb()?;
        server.start_on_free_port()?;
        if plan.replicas.count > 0 {
            let primary = super::standby::Primary {
                bin_dir: &server.bins.dir,
                root: &server.socket_dir,
                port: server.port,
                run_as: server.run_as,
                settings: &plan.settings,
            };
            server.standbys = super::standby::start_all(&primary, &plan.replicas)?;
        }
        Ok(server)
    }

    /// Starts the server on a free port. The port is picked before the
    /// server binds it: another process may take it in between. Try another
    /// port then, a few times.
    fn start_on_free_port(&mut self) -> Result<()> {
        let mut tries = 0;
        loop {
            self.port = free_port()?;
            match self.pg_ctl_start() {
                Err(_) if tries < 3 && self.log_tail().contains("could not bind") => tries += 1,
                other => break other?,
            }
        }
        self.pid = self.read_pid()?;
        Ok(())
    }

    /// The data directory (`<dir>/data`).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Whether the postmaster runs (false once `stop_cleanly` stopped it).
    pub fn is_running(&self) -> bool {
        self.pid > 0
    }

    /// Stops the server with a shutdown checkpoint (`pg_ctl stop -m fast`),
    /// so that a copy of its data directory starts without crash recovery;
    /// its files stay until the guard is dropped. Returns how long it took.
    pub fn stop_cleanly(&mut self) -> Result<Duration> {
        let started = Instant::now();
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "-t", "120", "stop"])
            .output()
            .map_err(|e| self.cannot_run("pg_ctl", e))?;
        // pg_ctl returns once postmaster.pid is gone, a moment before the
        // postmaster itself exits.
        let deadline = Instant::now() + Duration::from_secs(10);
        while out.status.success() && process_alive(self.pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if !out.status.success() || process_alive(self.pid) {
            return Err(Error::env(format!(
                "the template server (pid {}) did not stop cleanly ({}): {}\nserver log:\n{}",
                self.pid,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                self.log_tail()
            )));
        }
        self.pid = 0;
        Ok(started.elapsed())
    }

    /// A new server, in a private directory of its own beside this one's (on
    /// the same file system), on a data directory that `copy(from, to)`
    /// fills from this stopped server's, with its own port and socket and
    /// the same settings and password. Dropping it stops it and removes its
    /// directory, as for any local server.
    pub fn start_on_copy<T>(&self, copy: impl FnOnce(&Path, &Path) -> Result<T>) -> Result<(LocalServer, T)> {
        if self.is_running() {
            return Err(Error::env("a data directory is copied only while its server is stopped (stop_cleanly)"));
        }
        let base = self.socket_dir.parent().unwrap_or(Path::new("/"));
        let (dir, root) = socket_dir(base, self.run_as)?;
        let mut server = LocalServer {
            bins: self.bins.clone(),
            dir: Some(dir),
            data: root.join("data"),
            socket_dir: root,
            port: 0,
            pid: 0,
            run_as: self.run_as,
            password: self.password.clone(),
            settings: self.settings.clone(),
            kept: false,
            standbys: Vec::new(),
        };
        let copied = copy(&self.data, &server.data)?;
        server.start_on_free_port()?;
        Ok((server, copied))
    }

    /// Where the server lives, for progress output: its directory and postmaster pid.
    pub fn location(&self) -> String {
        format!("directory {}, postmaster pid {}", self.socket_dir.display(), self.pid)
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(self.bins.dir.join(program));
        c.current_dir(self.socket_dir.as_path()).env_remove("PGDATA").stdin(Stdio::null());
        // Its own process group: a Ctrl-C in the terminal reaches us, not the
        // server; we stop the server ourselves.
        c.process_group(0);
        if let Some((uid, gid)) = self.run_as {
            c.uid(uid).gid(gid);
        }
        c
    }

    /// initdb with a superuser password (from a 0600 file, not the command
    /// line): trusted over the private socket, scram-sha-256 over TCP.
    fn initdb(&self) -> Result<()> {
        let pwfile = self.socket_dir.join("pwfile");
        std::fs::write(&pwfile, format!("{}\n", self.password))
            .and_then(|_| std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o600)))
            .map_err(|e| Error::env(format!("cannot write {}: {e}", pwfile.display())))?;
        if let Some((uid, gid)) = self.run_as {
            chown(&pwfile, uid, gid)?;
        }
        let out = self
            .command("initdb")
            .arg("-D")
            .arg(&self.data)
            .args(["-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile"])
            .arg(&pwfile)
            .args(["-E", "UTF8", "--locale=C", "--no-sync"])
            .output();
        let _ = std::fs::remove_file(&pwfile);
        let out = out.map_err(|e| self.cannot_run("initdb", e))?;
        if !out.status.success() {
            return Err(Error::env(format!(
                "initdb failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }

    /// Why a server program could not start: the `postgres` user cannot
    /// reach the temp dir (a TMPDIR under a private directory), or another cause.
    fn cannot_run(&self, program: &str, e: std::io::Error) -> Error {
        let path = self.bins.dir.join(program);
        let blocked = self.run_as.and_then(|(uid, gid)| {
            self.socket_dir.ancestors().skip(1).filter(|d| !can_enter(d, uid, gid)).last().map(Path::to_path_buf)
        });
        match blocked {
            Some(dir) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                let (mode, owner) = std::fs::metadata(&dir).map(|m| (m.mode() & 0o7777, m.uid())).unwrap_or((0, 0));
                Error::env(format!(
                    "TMPDIR {}: the postgres user, which runs the server because initdb refuses to run as root, \
                     cannot enter {} (mode {mode:o}, owner uid {owner}); point TMPDIR at a directory it can reach, \
                     e.g. TMPDIR=/tmp",
                    std::env::temp_dir().display(),
                    dir.display()
                ))
            }
            _ => Error::env(format!("cannot run {}: {e}", path.display())),
        }
    }

    fn log_path(&self) -> PathBuf {
        self.socket_dir.join("server.log")
    }

    fn pg_ctl_start(&mut self) -> Result<()> {
        let pg_ctl = self.command("pg_ctl");
        let out = pg_ctl_start(pg_ctl, &self.data, &self.log_path(), (self.port, &self.socket_dir), &self.settings)
            .map_err(|e| self.cannot_run("pg_ctl", e))?;
        if !out.status.success() {
            return Err(Error::env(format!(
                "the server did not start ({}): {}\nserver log:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                self.log_tail()
            )));
        }
        Ok(())
    }

    fn standby_ports(&self) -> String {
        self.standbys.iter().map(|s| s.endpoint.port.to_string()).collect::<Vec<_>>().join(", ")
    }

    fn read_pid(&self) -> Result<i32> {
        read_pid(&self.data)
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(|d| d.path())
    }

    fn stop(&mut self) {
        if self.pid <= 0 {
            return;
        }
        // A frozen server (stopped with SIGSTOP) would not act on pg_ctl's
        // signal, nor its backends on the postmaster's: wake them all first.
        for pid in children(self.pid).into_iter().chain([self.pid]) {
            sys::signal(pid, Signal::Cont);
        }
        let stopped = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "-t", "20", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !stopped || process_alive(self.pid) {
            sys::signal(self.pid, Signal::Kill);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while process_alive(self.pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl super::ServerHandle for LocalServer {
    fn backend(&self) -> crate::clone::plan::Backend {
        crate::clone::plan::Backend::Local
    }

    fn local_mut(&mut self) -> Option<&mut LocalServer> {
        Some(self)
    }

    fn config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host_path(&self.socket_dir).port(self.port).user("postgres").dbname(dbname);
        c.application_name("lockimpact");
        c.connect_timeout(Duration::from_secs(10));
        c
    }

    fn describe(&self) -> String {
        let standbys = match self.standbys.len() {
            0 => String::new(),
            n => format!(", {n} streaming standby(s) on port(s) {}", self.standby_ports()),
        };
        format!("local server binaries in {}, port {}{standbys}", self.bins.dir.display(), self.port)
    }

    fn standbys(&self) -> Vec<super::standby::Endpoint> {
        self.standbys.iter().map(|s| s.endpoint.clone()).collect()
    }

    fn kind(&self) -> String {
        "local server binaries".into()
    }

    fn keep(&mut self, dbname: &str) -> String {
        self.kept = true;
        let path = self.dir.take().map(|d| d.keep()).unwrap_or_default();
        if !process_alive(self.pid) {
            return format!(
                "--keep: the server is not running (its postmaster, pid {}, has exited), so there is nothing to \
                 connect to; its files are kept for a look at its log, {}\n  remove them: rm -rf {}",
                self.pid,
                self.log_path().display(),
                path.display()
            );
        }
        let _ = std::fs::write(path.join(super::owner::KEPT_FILE), ""); // `lockimpact clean` leaves it alone
        let standbys: String = self.standbys.iter_mut().map(|s| format!("\n  {}", s.keep())).collect();
        let su = if self.run_as.is_some() { "su postgres -s /bin/sh -c " } else { "" };
        let stop = format!("{}/pg_ctl -D {} stop", self.bins.dir.display(), self.data.display());
        let who = if self.run_as.is_some() { "root and the postgres user" } else { "you" };
        format!(
            "the clone keeps running (postmaster pid {}); only {who} can enter its socket directory, and TCP \
             connections need the superuser's password:\n  connect: psql -h {} -p {} -U postgres {dbname}\n  \
             tcp:     psql \"postgresql://postgres:{}@127.0.0.1:{}/{dbname}\"\n  stop:    {}{}\n  then remove {}{standbys}",
            self.pid,
            self.socket_dir.display(),
            self.port,
            self.password,
            self.port,
            su,
            if su.is_empty() { stop } else { shell_quote(&stop) },
            path.display()
        )
    }

    fn read_log(&self) -> Option<std::io::Result<String>> {
        Some(std::fs::read(self.log_path()).map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    fn log_tail(&self) -> String {
        log_tail(&self.log_path())
    }

    fn tools(&self) -> Option<super::restore::Tools> {
        Some(super::restore::Tools::Local {
            bin_dir: self.bins.dir.clone(),
            socket_dir: self.socket_dir.clone(),
            port: self.port,
            major: self.bins.major,
        })
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        if !self.kept {
            self.standbys.clear(); // each stops on drop, before the primary they follow
            self.stop();
        }
        // TempDir's own drop removes the directory.
    }
}

/// A private directory for a server's socket under `base`: a socket path
/// is limited to 107 bytes.
fn socket_dir(base: &Path, run_as: Option<(u32, u32)>) -> Result<(tempfile::TempDir, PathBuf)> {
    if base.as_os_str().len() > MAX_TMPDIR_LEN {
        return Err(Error::env(format!(
            "TMPDIR {} is too long for the server's unix socket path; use a directory of at most \
             {MAX_TMPDIR_LEN} characters",
            base.display()
        )));
    }
    private_dir(base, run_as)
}

/// A new private directory (mode 0700, owned by `run_as` when set) under
/// `base`, marked with the run that owns it, for `lockimpact clean`.
pub(super) fn private_dir(base: &Path, run_as: Option<(u32, u32)>) -> Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::Builder::new()
        .prefix("lockimpact-")
        .tempdir_in(base)
        .map_err(|e| Error::env(format!("cannot create a temp dir in {} (TMPDIR): {e}", base.display())))?;
    let root = dir.path().to_path_buf();
    super::owner::Owner::current().write_to(&root)?; // for `lockimpact clean`
    // A socket may live here: only its owner may enter.
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::env(format!("cannot make {} private: {e}", root.display())))?;
    if let Some((uid, gid)) = run_as {
        chown(&root, uid, gid)?;
    }
    Ok((dir, root))
}

/// The processes whose parent is `pid` (a postmaster's backends and
/// auxiliary processes, each in a session of its own), from /proc.
pub fn children(pid: i32) -> Vec<i32> {
    let parent = |stat: &str| stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse::<i32>().ok();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok().and_then(|s| parent(&s)) == Some(pid))
        .collect()
}

/// Whether `pid` runs: it exists and is not a zombie (a postmaster that died
/// stays one until init reaps it; it is pg_ctl's child, not ours).
pub(super) fn process_alive(pid: i32) -> bool {
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(false);
    !zombie && sys::process_exists(pid)
}

pub(super) fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `pg_ctl start -w` (`pg_ctl` with its user and directory set) of the
/// cluster in `data`, its log in `log`, on `port` with its socket in
/// `socket_dir`, on 127.0.0.1, with each of `settings` as `-c`; the primary
/// and its standbys start alike.
pub(super) fn pg_ctl_start(
    mut pg_ctl: Command,
    data: &Path,
    log: &Path,
    (port, socket_dir): (u16, &Path),
    settings: &[(String, String)],
) -> std::io::Result<std::process::Output> {
    let mut opts = vec![
        "-p".to_string(),
        port.to_string(),
        "-k".to_string(),
        socket_dir.display().to_string(),
        "-c".to_string(),
        "listen_addresses=127.0.0.1".to_string(),
    ];
    for (k, v) in settings {
        opts.push("-c".into());
        opts.push(format!("{k}={v}"));
    }
    let quoted: Vec<String> = opts.iter().map(|o| shell_quote(o)).collect();
    pg_ctl.arg("-D").arg(data).arg("-l").arg(log).args(["-w", "-t", "60", "-o"]).arg(quoted.join(" ")).arg("start");
    pg_ctl.stdout(Stdio::piped()).stderr(Stdio::piped()).output()
}

/// The postmaster's pid, from `data/postmaster.pid` once it started.
pub(super) fn read_pid(data: &Path) -> Result<i32> {
    let file = data.join("postmaster.pid");
    let text = std::fs::read_to_string(&file)
        .map_err(|e| Error::env(format!("the server started but {} is unreadable: {e}", file.display())))?;
    text.lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| Error::env(format!("the server started but {} holds no pid", file.display())))
}

/// The last 20 lines of a server log, for error messages.
pub(super) fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

pub(super) fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::env(format!("no free TCP port on 127.0.0.1: {e}")))?;
    Ok(l.local_addr().map_err(|e| Error::env(e.to_string()))?.port())
}

/// A random password for the clone's superuser (128 bits, hex).
fn random_password() -> Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::env(format!("cannot read /dev/urandom for the clone's password: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether `uid` (primary group `gid`) may enter `dir`, by its mode bits.
fn can_enter(dir: &Path, uid: u32, gid: u32) -> bool {
    let Ok(m) = std::fs::metadata(dir) else { return false };
    let bits = if m.uid() == uid {
        0o100
    } else if m.gid() == gid {
        0o010
    } else {
        0o001
    };
    uid == 0 || m.mode() & bits != 0
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(|e| Error::env(format!("cannot hand {} to the postgres user: {e}", path.display())))
}

/// uid and gid of the `postgres` user, to run the server as when we are root.
fn postgres_user() -> Result<(u32, u32)> {
    let Some(user) = sys::user_named("postgres") else {
        return Err(Error::env(
            "running as root, and initdb refuses to run as root, but there is no `postgres` user to run the \
             server as; create one (useradd --system postgres) or run lockimpact as a normal user",
        ));
    };
    Ok((user.uid, user.gid))
}

/// Finds server binaries: `--pg-bin`/`PG_BIN`, `pg_config --bindir`, `PATH`,
/// then `/usr/lib/postgresql/*/bin` (newest first). With `want` set, only that
/// major version is accepted.
pub fn find_binaries(explicit: Option<&Path>, want: Option<u32>) -> Result<Binaries> {
    if let Some(dir) = explicit {
        let b = probe(dir).ok_or_else(|| {
            Error::env(format!("--pg-bin/PG_BIN {}: no initdb, pg_ctl and postgres there", dir.display()))
        })?;
        return match want {
            Some(v) if v != b.major => Err(Error::env(format!(
                "--pg-bin {} holds PostgreSQL {}, but the scenario asks for clone.pg_version = {v}",
                dir.display(),
                b.major
            ))),
            _ => Ok(b),
        };
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .collect();
    versioned.sort_by_key(|v| std::cmp::Reverse(v.0));
    candidates.extend(versioned.into_iter().map(|(_, p)| p));

    let mut seen = Vec::new();
    for dir in candidates {
        if let Some(b) = probe(&dir) {
            if want.is_none_or(|v| v == b.major) {
                return Ok(b);
            }
            seen.push(format!("{} ({})", b.dir.display(), b.major));
        }
    }
    Err(Error::env(match want {
        Some(v) if !seen.is_empty() => format!(
            "no PostgreSQL {v} server binaries found (found: {}); install postgresql-{v} or set clone.pg_version to one of those",
            seen.join(", ")
        ),
        _ => "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found via --pg-bin, PG_BIN, pg_config, PATH \
              or /usr/lib/postgresql/*/bin; install them (Debian/Ubuntu: apt-get install postgresql)"
            .to_string(),
    }))
}

fn probe(dir: &Path) -> Option<Binaries> {
    if !["initdb", "pg_ctl", "postgres"].iter().all(|b| dir.join(b).is_file()) {
        return None;
    }
    let out = Command::new(dir.join("postgres")).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    let version = text.split_whitespace().nth(2)?.to_string();
    let major = version.split(['.', 'b', 'r']).next()?.parse().ok()?;
    Some(Binaries { dir: dir.to_path_buf(), major, version })
}
