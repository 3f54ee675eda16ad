//! Physical streaming standbys of the local backend's clone, for replica
//! measurements (`[replica]`, `--replicas N`). Each is `pg_basebackup -R`
//! of the primary into `<primary's temp dir>/standby-N/data`, started with
//! `pg_ctl` on a free port of its own and the primary's socket directory,
//! under the same user as the primary (the `postgres` user when lockimpact
//! runs as root). `start_all` returns once every standby streams
//! (`pg_stat_replication` on the primary shows it).
//!
//! Each `Standby` is a guard like the primary: dropping it stops its
//! postmaster (immediate shutdown, SIGKILL if that fails). Its files live in
//! the primary's temp dir, so they go with it, and `lockimpact clean` stops
//! a killed run's standbys before removing that directory.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::pg::Target;
use crate::sys::{self, Signal};

/// The most standbys a scenario may ask for.
pub const MAX_STANDBYS: u32 = 4;

/// The directory of standby `n` (1-based) inside the primary's temp dir;
/// `lockimpact clean` looks for these.
pub const DIR_PREFIX: &str = "standby-";

/// How long a standby may take to stream after it started.
const STREAM_TIMEOUT: Duration = Duration::from_secs(60);

/// `max_standby_streaming_delay`: how long replay waits for conflicting
/// standby queries before it cancels them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamingDelay {
    /// `-1`: replay waits for the queries as long as they run.
    Forever,
    After(Duration),
}

impl StreamingDelay {
    /// As the server setting takes it.
    pub fn setting(self) -> String {
        match self {
            StreamingDelay::Forever => "-1".into(),
            StreamingDelay::After(d) => format!("{}ms", d.as_millis()),
        }
    }
}

/// The standbys a scenario asks for, and their recovery settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaPlan {
    pub count: u32,
    pub hot_standby_feedback: bool,
    /// `None`: the server's default (30 s).
    pub max_standby_streaming_delay: Option<StreamingDelay>,
    pub recovery_min_apply_delay: Duration,
    /// The first standby is synchronous (`synchronous_standby_names` on the primary).
    pub synchronous: bool,
    /// A logical subscriber of the run database (`clone::logical`).
    pub logical: bool,
    /// The standby `target = "replica"` classes run on (1-based).
    pub reader: u32,
    /// How often the replica sampler polls the primary and the standbys.
    pub interval: Duration,
}

/// The replica sampler's default interval: lag moves over many commits, and
/// each poll is a query on every server (`lockimpact bench` row 6).
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);

impl Default for ReplicaPlan {
    fn default() -> Self {
        ReplicaPlan {
            count: 0,
            hot_standby_feedback: false,
            max_standby_streaming_delay: None,
            recovery_min_apply_delay: Duration::ZERO,
            synchronous: false,
            logical: false,
            reader: 1,
            interval: DEFAULT_INTERVAL,
        }
    }
}

impl ReplicaPlan {
    /// Only the local backend makes what this asks for (standbys, a logical subscriber).
    pub fn local_only(&self) -> bool {
        self.count > 0 || self.logical
    }

    /// The `-c` settings of each standby, after the primary's own.
    pub(super) fn settings(&self) -> Vec<(String, String)> {
        let mut s = vec![
            ("hot_standby".to_string(), "on".to_string()),
            ("hot_standby_feedback".to_string(), if self.hot_standby_feedback { "on" } else { "off" }.to_string()),
            ("recovery_min_apply_delay".to_string(), format!("{}ms", self.recovery_min_apply_delay.as_millis())),
        ];
        if let Some(d) = self.max_standby_streaming_delay {
            s.push(("max_standby_streaming_delay".to_string(), d.setting()));
        }
        s
    }
}

/// Where a standby answers: its name (`application_name` on the primary),
/// port and how it is reached.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub name: String,
    pub port: u16,
    pub reach: Reach,
    /// It is the primary's synchronous standby (`synchronous_standby_names`).
    pub synchronous: bool,
}

/// How a standby is reached.
#[derive(Debug, Clone)]
pub enum Reach {
    /// A local standby: through the primary's socket directory, without a
    /// password.
    Socket(PathBuf),
    /// A standby in a container: 127.0.0.1 at its published port, with the
    /// superuser's password (the primary's).
    Tcp { password: String },
}

impl Endpoint {
    /// Connection settings for one database on this standby.
    pub fn target(&self, dbname: &str) -> Target {
        let mut c = tokio_postgres::Config::new();
        match &self.reach {
            Reach::Socket(dir) => c.host_path(dir),
            Reach::Tcp { password } => c.host("127.0.0.1").password(password.as_str()),
        };
        c.port(self.port).user("postgres").dbname(dbname);
        c.application_name("lockimpact");
        c.connect_timeout(Duration::from_secs(10));
        Target::plain(c)
    }

    /// The host `psql -h` takes: the socket directory, or 127.0.0.1.
    pub fn host(&self) -> String {
        match &self.reach {
            Reach::Socket(dir) => dir.display().to_string(),
            Reach::Tcp { .. } => "127.0.0.1".into(),
        }
    }
}

/// The statements that make `standby` the primary's synchronous standby
/// (run them on the primary), and it marked so.
pub(super) fn make_synchronous(standby: &mut Endpoint) -> [String; 2] {
    standby.synchronous = true;
    [
        format!("ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 ({})'", standby.name),
        "SELECT pg_reload_conf()".into(),
    ]
}

/// The primary the standbys copy and follow.
pub struct Primary<'a> {
    pub bin_dir: &'a Path,
    /// The primary's temp dir: its socket directory, and where the standbys live.
    pub root: &'a Path,
    pub port: u16,
    pub run_as: Option<(u32, u32)>,
    /// The primary's `-c` settings (a hot standby needs max_connections and
    /// the like at least as high as the primary's).
    pub settings: &'a [(String, String)],
}

impl Primary<'_> {
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(self.bin_dir.join(program));
        c.current_dir(self.root).env_remove("PGDATA").stdin(Stdio::null()).process_group(0);
        if let Some((uid, gid)) = self.run_as {
            c.uid(uid).gid(gid);
        }
        c
    }

    /// Runs `psql -Atc sql` on the primary's `postgres` database.
    fn psql(&self, sql: &str) -> Result<String> {
        let out = self
            .command("psql")
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.root)
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", "postgres", "-c", sql])
            .output()
            .map_err(|e| Error::env(format!("cannot run psql on the primary: {e}")))?;
        if !out.status.success() {
            return Err(Error::env(format!(
                "psql on the primary failed ({sql}): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

/// A running standby; dropping it stops it unless kept.
pub struct Standby {
    pub endpoint: Endpoint,
    pid: i32,
    data: PathBuf,
    bin_dir: PathBuf,
    run_as: Option<(u32, u32)>,
    kept: bool,
}

/// Starts `plan.count` standbys of `primary` and waits until each streams;
/// with `plan.synchronous`, makes the first one synchronous. On an error the
/// standbys started so far are stopped (their guards drop).
pub fn start_all(primary: &Primary, plan: &ReplicaPlan) -> Result<Vec<Standby>> {
    let mut standbys = Vec::new();
    for n in 1..=plan.count {
        let standby = Standby::create(primary, plan, n)?;
        standbys.push(standby);
    }
    for s in &standbys {
        s.wait_streaming(primary)?;
    }
    if plan.synchronous
        && let Some(first) = standbys.first_mut()
    {
        for sql in make_synchronous(&mut first.endpoint) {
            primary.psql(&sql)?;
        }
    }
    Ok(standbys)
}

impl Standby {
    fn create(primary: &Primary, plan: &ReplicaPlan, n: u32) -> Result<Standby> {
        let dir = primary.root.join(format!("{DIR_PREFIX}{n}"));
        std::fs::create_dir(&dir)
            .and_then(|_| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)))
            .map_err(|e| Error::env(format!("cannot create the standby's directory {}: {e}", dir.display())))?;
        if let Some((uid, gid)) = primary.run_as {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| Error::env(format!("cannot hand {} to the postgres user: {e}", dir.display())))?;
        }
        let name = format!("lockimpact_standby_{n}");
        let data = dir.join("data");
        base_backup(primary, &data, &name)?;
        let mut standby = Standby {
            endpoint: Endpoint { name, port: 0, reach: Reach::Socket(primary.root.to_path_buf()), synchronous: false },
            pid: 0,
            data,
            bin_dir: primary.bin_dir.to_path_buf(),
            run_as: primary.run_as,
            kept: false,
        };
        let mut settings = primary.settings.to_vec();
        settings.extend(plan.settings());
        let mut tries = 0;
        loop {
            standby.endpoint.port = super::local::free_port()?;
            match standby.pg_ctl_start(primary, &settings) {
                Err(_) if tries < 3 && standby.log_tail().contains("could not bind") => tries += 1,
                other => break other?,
            }
        }
        standby.pid = super::local::read_pid(&standby.data)?;
        Ok(standby)
    }

    fn log_path(&self) -> PathBuf {
        self.data.with_file_name("server.log")
    }

    /// The last lines of the standby's log, for error messages.
    pub fn log_tail(&self) -> String {
        super::local::log_tail(&self.log_path())
    }

    fn pg_ctl_start(&self, primary: &Primary, settings: &[(String, String)]) -> Result<()> {
        let out = super::local::pg_ctl_start(
            primary.command("pg_ctl"),
            &self.data,
            &self.log_path(),
            (self.endpoint.port, primary.root),
            settings,
        )
        .map_err(|e| Error::env(format!("cannot run pg_ctl for {}: {e}", self.endpoint.name)))?;
        if !out.status.success() {
            return Err(Error::env(format!(
                "standby {} did not start ({}): {}\nits log:\n{}",
                self.endpoint.name,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                self.log_tail()
            )));
        }
        Ok(())
    }

    /// Waits until the primary's `pg_stat_replication` shows this standby streaming.
    fn wait_streaming(&self, primary: &Primary) -> Result<()> {
        let sql = format!(
            "SELECT count(*) FROM pg_stat_replication WHERE application_name = '{}' AND state = 'streaming'",
            self.endpoint.name
        );
        let deadline = Instant::now() + STREAM_TIMEOUT;
        while Instant::now() < deadline {
            if primary.psql(&sql)? == "1" {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(Error::env(format!(
            "standby {} started but does not stream from the primary after {} s; its log:\n{}",
            self.endpoint.name,
            STREAM_TIMEOUT.as_secs(),
            self.log_tail()
        )))
    }

    /// Leaves the standby running when its guard drops (`--keep`); returns
    /// how to connect to it.
    pub fn keep(&mut self) -> String {
        self.kept = true;
        format!(
            "standby {} (postmaster pid {}): psql -h {} -p {} -U postgres",
            self.endpoint.name,
            self.pid,
            self.endpoint.host(),
            self.endpoint.port
        )
    }

    fn stop(&mut self) {
        let pid = self.pid;
        if pid <= 0 {
            return;
        }
        sys::signal(pid, Signal::Cont);
        let mut c = Command::new(self.bin_dir.join("pg_ctl"));
        c.arg("-D").arg(&self.data).args(["-m", "immediate", "-w", "-t", "20", "stop"]);
        c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).process_group(0);
        if let Some((uid, gid)) = self.run_as {
            c.uid(uid).gid(gid);
        }
        let stopped = c.status().map(|s| s.success()).unwrap_or(false);
        if !stopped || super::local::process_alive(pid) {
            sys::signal(pid, Signal::Kill);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while super::local::process_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        if !self.kept {
            self.stop();
        }
    }
}

/// `pg_basebackup -R` of the primary into `data`, with a `primary_conninfo`
/// that names the standby (`application_name`, for `pg_stat_replication`
/// and `synchronous_standby_names`).
fn base_backup(primary: &Primary, data: &Path, name: &str) -> Result<()> {
    let conninfo =
        format!("host={} port={} user=postgres application_name={name}", primary.root.display(), primary.port);
    let out = primary
        .command("pg_basebackup")
        .arg("-d")
        .arg(&conninfo)
        .arg("-D")
        .arg(data)
        .args(["-R", "-X", "stream", "-c", "fast", "--no-sync"])
        .output()
        .map_err(|e| Error::env(format!("cannot run pg_basebackup for standby {name}: {e}")))?;
    if !out.status.success() {
        return Err(Error::env(format!(
            "pg_basebackup for standby {name} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    // pg_basebackup -R writes primary_conninfo; a later line wins, and this
    // one surely carries the name.
    let auto = data.join("postgresql.auto.conf");
    let line = format!("primary_conninfo = '{}'\n", conninfo.replace('\'', "''"));
    std::fs::OpenOptions::new()
        .append(true)
        .open(&auto)
        .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()))
        .map_err(|e| Error::env(format!("cannot write {}: {e}", auto.display())))
}
