//! The `docker` backend: the clone runs in a container of the official
//! `postgres:<major>` image (or `--image`), started with the docker command
//! line, which negotiates the API version with any engine. The container is
//! labelled `lockimpact=1`, publishes its port on 127.0.0.1 only, gets the
//! scenario's server settings as `postgres -c name=value` arguments, and is
//! removed with its anonymous volumes when the guard is dropped (unless
//! `--keep`).
//!
//! Why the command line and not the testcontainers crate: testcontainers 0.28
//! (bollard 0.21) pins Docker API 1.53 without negotiating, and engines older
//! than Docker 25 (API ≤ 1.43, e.g. Debian bookworm's 20.10 with API 1.41)
//! refuse every request ("client version 1.53 is too new").

use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::restore::Tools;
use crate::error::{Error, Result};
use crate::scenario::ClonePlan;

/// Every container this tool starts carries this label (`lockimpact=1`), so
/// leftovers can be listed: `docker ps -a --filter label=lockimpact=1`.
pub const LABEL: &str = "lockimpact";

/// How long the server in a new container may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// A `docker` command in its own process group: a Ctrl-C in the terminal
/// reaches us, and we remove the container ourselves.
pub fn docker() -> Command {
    let mut c = Command::new(std::env::var_os("LOCKIMPACT_DOCKER").unwrap_or_else(|| "docker".into()));
    c.process_group(0);
    c
}

/// Runs a command with a time limit; the child is killed (by its pid) when it
/// takes longer.
fn output_within(cmd: &mut Command, limit: Duration) -> std::io::Result<Output> {
    output_until(cmd, limit, None)
}

/// `output_within` that also stops (and kills the child) when `cancel` fires:
/// Ctrl-C during a pull or a slow start-up.
fn output_until(cmd: &mut Command, limit: Duration, cancel: Option<&CancellationToken>) -> std::io::Result<Output> {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    // Drain both pipes while waiting: a child that writes more than a pipe
    // holds (a long pull) would otherwise block until the time limit.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + limit;
    let stopped = loop {
        if let Some(status) = child.try_wait()? {
            break Ok(status);
        }
        if cancel.is_some_and(|c| c.is_cancelled()) {
            break Err(std::io::Error::new(std::io::ErrorKind::Interrupted, "interrupted"));
        }
        if Instant::now() > deadline {
            break Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {} s", limit.as_secs()),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if stopped.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let (stdout, stderr) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    Ok(Output { status: stopped?, stdout, stderr })
}

fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("").to_string()
}

/// The engine's version when a Docker engine answers, else why not, in one line.
pub fn engine() -> std::result::Result<String, String> {
    let out = output_within(docker().args(["version", "--format", "{{.Server.Version}}"]), Duration::from_secs(15))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "the docker command is not installed".to_string(),
            _ => format!("docker version: {e}"),
        })?;
    if out.status.success() {
        Ok(first_line(&out.stdout))
    } else {
        // "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
        let why = first_line(&out.stderr);
        Err(if why.is_empty() { format!("docker version failed ({})", out.status) } else { why })
    }
}

/// Whether the image is present in the engine.
pub fn image_present(image: &str) -> bool {
    output_within(docker().args(["image", "inspect", "--format", "{{.Id}}", image]), Duration::from_secs(30))
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Pulls the image; the error is one line.
pub fn pull(image: &str, cancel: Option<&CancellationToken>) -> std::result::Result<(), String> {
    let out = output_until(docker().args(["pull", "--quiet", image]), Duration::from_secs(900), cancel)
        .map_err(|e| format!("docker pull {image}: {e}"))?;
    if out.status.success() { Ok(()) } else { Err(first_line(&out.stderr)) }
}

/// The image the plan asks for: `--image`/`clone.image`, else the official
/// `postgres:<pg_version>`.
pub fn image_for(plan: &ClonePlan) -> Option<String> {
    plan.image.clone().or_else(|| plan.pg_version.map(|v| format!("postgres:{v}")))
}

pub struct DockerServer {
    id: String,
    image: String,
    port: u16,
    password: String,
    major: u32,
    version: String,
    kept: bool,
}

impl DockerServer {
    /// Starts a container of `image` and waits until its server accepts
    /// connections; it is removed again if anything fails.
    pub fn start(plan: &ClonePlan, image: &str, cancel: Option<&CancellationToken>) -> Result<DockerServer> {
        let password = random_password();
        let mut cmd = docker();
        cmd.args(["run", "--detach", "--label", &format!("{LABEL}=1")])
            .args(["--label", &format!("{LABEL}.pid={}", std::process::id())])
            .args(["--publish", "127.0.0.1::5432"])
            .args(["--shm-size", "256m"])
            .args(["--env", &format!("POSTGRES_PASSWORD={password}")])
            .args(["--env", "POSTGRES_USER=postgres", "--env", "POSTGRES_DB=postgres"])
            .arg(image)
            .args(["postgres", "-c", "listen_addresses=*"]);
        for (k, v) in &plan.settings {
            cmd.arg("-c").arg(format!("{k}={v}"));
        }
        let out = output_within(&mut cmd, Duration::from_secs(120))
            .map_err(|e| Error::env(format!("cannot start a container of {image}: {e}")))?;
        let id = first_line(&out.stdout);
        if !out.status.success() || id.is_empty() {
            // `docker run` may have created the container before failing.
            if !id.is_empty() {
                remove(&id);
            }
            return Err(Error::env(format!(
                "cannot start a container of {image}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        // From here on the guard removes the container on every exit path.
        let mut server = DockerServer {
            id,
            image: image.to_string(),
            port: 0,
            password,
            major: 0,
            version: String::new(),
            kept: false,
        };
        server.port = server.host_port()?;
        (server.version, server.major) = server.server_version()?;
        if let Some(want) = plan.pg_version
            && want != server.major
        {
            return Err(Error::env(format!(
                "image {image} runs PostgreSQL {}, but the scenario asks for clone.pg_version = {want}; \
                 use an image of PostgreSQL {want} (postgres:{want}) or change clone.pg_version",
                server.version
            )));
        }
        server.wait_ready(cancel)?;
        Ok(server)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where the server lives, for progress output.
    pub fn location(&self) -> String {
        format!("container {} (image {}), port 127.0.0.1:{}", short(&self.id), self.image, self.port)
    }

    fn host_port(&self) -> Result<u16> {
        let out = output_within(docker().args(["port", &self.id, "5432/tcp"]), Duration::from_secs(30))
            .map_err(|e| Error::env(format!("docker port: {e}")))?;
        // "127.0.0.1:49153"
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.trim().strip_prefix("127.0.0.1:")?.parse().ok())
            .ok_or_else(|| {
                Error::env(format!(
                    "container {} publishes no port for 5432/tcp on 127.0.0.1: {}{}",
                    short(&self.id),
                    String::from_utf8_lossy(&out.stdout).trim(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            })
    }

    /// The server's version, from the image's own `postgres` binary.
    fn server_version(&self) -> Result<(String, u32)> {
        let out = output_within(docker().args(["exec", &self.id, "postgres", "--version"]), Duration::from_secs(60))
            .map_err(|e| Error::env(format!("docker exec postgres --version: {e}")))?;
        let text = String::from_utf8_lossy(&out.stdout);
        // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
        let version = text.split_whitespace().nth(2).unwrap_or("").to_string();
        let major = version.split(['.', 'b', 'r']).next().and_then(|m| m.parse().ok()).ok_or_else(|| {
            Error::env(format!(
                "image {} does not look like a PostgreSQL server image: `postgres --version` printed {:?} {}",
                self.image,
                text.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        })?;
        Ok((version, major))
    }

    /// Waits until the final server (not the entrypoint's temporary one, which
    /// listens on no TCP address) accepts TCP connections.
    fn wait_ready(&self, cancel: Option<&CancellationToken>) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if cancel.is_some_and(|c| c.is_cancelled()) {
                return Err(Error::interrupted());
            }
            let ready = output_within(
                docker().args([
                    "exec",
                    "-u",
                    "postgres",
                    &self.id,
                    "pg_isready",
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    "5432",
                ]),
                Duration::from_secs(30),
            )
            .map(|o| o.status.success())
            .unwrap_or(false);
            if ready {
                return Ok(());
            }
            let running = output_within(
                docker().args(["inspect", "--format", "{{.State.Running}}", &self.id]),
                Duration::from_secs(30),
            )
            .map(|o| first_line(&o.stdout) == "true")
            .unwrap_or(false);
            if !running {
                return Err(Error::env(format!(
                    "the server in container {} (image {}) stopped during start-up; its log:\n{}",
                    short(&self.id),
                    self.image,
                    self.logs(30)
                )));
            }
            if Instant::now() > deadline {
                return Err(Error::env(format!(
                    "the server in container {} did not accept connections within {} s; its log:\n{}",
                    short(&self.id),
                    READY_TIMEOUT.as_secs(),
                    self.logs(30)
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn logs(&self, lines: usize) -> String {
        match output_within(docker().args(["logs", "--tail", &lines.to_string(), &self.id]), Duration::from_secs(30)) {
            Ok(o) => format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
                .trim_end()
                .to_string(),
            Err(e) => format!("(docker logs failed: {e})"),
        }
    }
}

impl super::ServerHandle for DockerServer {
    fn config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host("127.0.0.1").port(self.port).user("postgres").password(self.password.as_str()).dbname(dbname);
        c.application_name("lockimpact");
        c.connect_timeout(Duration::from_secs(10));
        c
    }

    fn describe(&self) -> String {
        format!("docker image {}, container {}, port {}", self.image, short(&self.id), self.port)
    }

    fn keep(&mut self, dbname: &str) -> String {
        self.kept = true;
        format!(
            "the clone keeps running in container {} (image {}):\n  connect: PGPASSWORD={} psql -h 127.0.0.1 -p {} -U postgres {dbname}\n  stop:    docker rm -f -v {}",
            short(&self.id),
            self.image,
            self.password,
            self.port,
            self.id
        )
    }

    fn log_tail(&self) -> String {
        self.logs(20)
    }

    fn read_log(&self) -> Option<std::io::Result<String>> {
        // The server logs to the container's stderr (stdout holds initdb's output).
        let logs = output_within(docker().args(["logs", &self.id]), Duration::from_secs(60));
        Some(logs.map(|o| String::from_utf8_lossy(&o.stderr).into_owned()))
    }

    fn tools(&self) -> Option<Tools> {
        Some(Tools::Docker { container: self.id.clone(), major: self.major })
    }
}

impl Drop for DockerServer {
    fn drop(&mut self) {
        if !self.kept {
            remove(&self.id);
        }
    }
}

/// Removes a container and its anonymous volumes, waiting until it is gone.
fn remove(id: &str) {
    let _ = output_within(docker().args(["rm", "--force", "--volumes", id]), Duration::from_secs(120));
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// A password for the container's superuser; the port is published on
/// 127.0.0.1 only, this keeps other local users out as well.
fn random_password() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
        h.write_u32(std::process::id());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}
