//! The `docker` backend: the clone runs in a container of the official
//! `postgres:<major>` image (or `--image`), started with testcontainers'
//! async runner. The container is labelled `lockimpact=1` and with its owner
//! (`owner`: pid, start time, host), publishes PostgreSQL on 127.0.0.1 only,
//! gets the scenario's server settings as `postgres -c name=value`
//! arguments and a random superuser password, has a `snapshot.dump`
//! bind-mounted read-only, runs pg_restore/psql of the server's own version
//! inside it (exec), keeps the tail of its log for error messages, and is
//! removed with its anonymous volumes when the guard is dropped — after
//! success, an error, a panic, Ctrl-C or SIGTERM — unless `--keep` (then it
//! is renamed `lockimpact-kept-<id>`). A missing image is pulled only when it
//! is not present in the engine.
//!
//! # Which Docker engines this works with, and what an upgrade must check
//!
//! testcontainers 0.28 hands bollard 0.21 a recent API version (1.53), but
//! released bollard builds each request path by joining an absolute path to
//! a base that holds the `/v1.xx` prefix, which drops the prefix: every
//! request goes out unversioned (`POST /containers/create`), and an engine
//! serves an unversioned request at its own API version. So the same client
//! works with Docker 20.10 (API 1.41, Debian bookworm) and with Docker 29
//! (API ≥ 1.44); a client that put its version in the path would be refused
//! by one of them ("client version 1.53 is too new"). bollard is pinned in
//! Cargo.toml (`=0.21.1`) because its next version puts the version in the
//! path when the caller passes one. Before upgrading testcontainers or
//! bollard, run `tests/env/docker.rs`'s `requests_are_ones_this_engine_accepts`
//! on an engine older than the client's API version: it records every
//! request on the engine's socket and fails, naming the cause, when one
//! carries a version the engine refuses (the fix is then to negotiate,
//! `Docker::negotiate_version`, or to stay on the pinned version).

use std::collections::{HashMap, VecDeque};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::models::{ContainerSummary, HostConfig, PortBinding};
use bollard::query_parameters::{
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, RenameContainerOptionsBuilder,
};
use testcontainers::core::logs::LogFrame;
use testcontainers::core::{AccessMode, ExecCommand, IntoContainerPort, Mount};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio_util::sync::CancellationToken;

use super::docker_cow::{DataDir, HostData};
use super::owner::Owner;
use super::restore::Tools;
use crate::clone::plan::ClonePlan;
use crate::error::{Error, Kind, Result};

/// Every container this tool starts carries this label (`lockimpact=1`), so
/// leftovers can be listed: `docker ps -a --filter label=lockimpact=1`.
pub const LABEL: &str = "lockimpact";

/// The label that tells one start-up's container from any other, to remove
/// it when the start-up fails or is interrupted half-way.
const RUN_LABEL: &str = "lockimpact.clone";

/// What a container kept with `--keep` is renamed to (plus its short id).
pub const KEPT_PREFIX: &str = "lockimpact-kept-";

/// The container's data directory when it is bind-mounted from the host.
const PGDATA: &str = "/var/lib/postgresql/data";

/// Where `snapshot.dump` is mounted inside the container.
const DUMP_PATH: &str = "/lockimpact-dump";

/// How long the server in a new container may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// How long an engine may take to answer a short request.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(15);

/// Lines of the container's log kept for error messages.
const LOG_LINES: usize = 200;

pub type Container = ContainerAsync<GenericImage>;

/// The error and every cause below it, once each.
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text = format!("{text}: {part}");
        }
        source = s.source();
    }
    text
}

/// The engine testcontainers talks to (DOCKER_HOST, else the default socket).
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

/// The Docker client testcontainers uses (its configuration: DOCKER_HOST,
/// `~/.testcontainers.properties`).
pub async fn client() -> Result<bollard::Docker> {
    testcontainers::core::client::docker_client_instance()
        .await
        .map_err(|e| Error::env(format!("cannot set up a Docker client for {}: {}", docker_host(), causes(&e))))
}

/// Runs one short engine request with a time limit; the error is one line.
pub(super) async fn ask<T>(
    what: &str,
    f: impl std::future::Future<Output = std::result::Result<T, bollard::errors::Error>>,
) -> Result<T> {
    match tokio::time::timeout(ENGINE_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Error::env(format!("{what} at {}: {}", docker_host(), causes(&e)))),
        Err(_) => {
            Err(Error::env(format!("{what} at {}: no answer within {} s", docker_host(), ENGINE_TIMEOUT.as_secs())))
        }
    }
}

/// The engine's version and API version when a Docker engine answers, else
/// why not, in one line.
pub async fn engine() -> Result<String> {
    let docker = client().await?;
    let v = ask("docker version", docker.version()).await?;
    Ok(format!("{}, API {}", v.version.unwrap_or_default(), v.api_version.unwrap_or_default()))
}

/// Whether the image is present in the engine.
pub async fn image_present(image: &str) -> bool {
    match client().await {
        Ok(docker) => ask("image inspect", docker.inspect_image(image)).await.is_ok(),
        Err(_) => false,
    }
}

/// `name:tag` → testcontainers' image (no tag means `latest`), with
/// PostgreSQL's port exposed.
pub(super) fn generic_image(image: &str) -> GenericImage {
    let image = match image.rsplit_once(':').filter(|(_, tag)| !tag.contains('/')) {
        Some((name, tag)) => GenericImage::new(name, tag),
        None => GenericImage::new(image, "latest"),
    };
    image.with_exposed_port(5432.tcp())
}

/// Pulls the image; the error is one line. Ctrl-C stops it.
pub async fn pull(image: &str, cancel: Option<&CancellationToken>) -> Result<()> {
    let never = CancellationToken::new();
    let cancel = cancel.unwrap_or(&never);
    tokio::select! {
        r = generic_image(image).pull_image() => r.map(|_| ()).map_err(|e| Error::env(causes(&e))),
        _ = cancel.cancelled() => Err(Error { kind: Kind::Interrupted, message: "interrupted".into() }),
    }
}

/// The image the plan asks for: `--image`/`clone.image`, else the official
/// `postgres:<pg_version>`.
pub fn image_for(plan: &ClonePlan) -> Option<String> {
    plan.image.clone().or_else(|| plan.pg_version.map(|v| format!("postgres:{v}")))
}

/// The last lines of a container's log, fed by testcontainers' log consumer.
#[derive(Default)]
pub(super) struct LogTail(Mutex<VecDeque<String>>);

impl LogTail {
    fn accept(&self, frame: &LogFrame) {
        let bytes = match frame {
            LogFrame::StdOut(b) | LogFrame::StdErr(b) => b,
        };
        let mut lines = self.0.lock().expect("log tail");
        for line in String::from_utf8_lossy(bytes).lines() {
            if lines.len() == LOG_LINES {
                lines.pop_front();
            }
            lines.push_back(line.to_string());
        }
    }

    pub(super) fn last(&self, n: usize) -> String {
        let lines = self.0.lock().expect("log tail");
        let skip = lines.len().saturating_sub(n);
        lines.iter().skip(skip).cloned().collect::<Vec<_>>().join("\n")
    }
}

pub struct DockerServer {
    /// `None` once removed or kept.
    container: Option<Arc<Container>>,
    id: String,
    port: u16,
    pub(super) major: u32,
    pub(super) version: String,
    log: Arc<LogTail>,
    /// What the container was started with (a copy starts with the same).
    pub(super) launch: Launch,
    /// Where the data directory is: on the host (copy-on-write resets), or
    /// in a volume of the engine, and why.
    pub(super) data: DataDir,
    /// Stopped cleanly for copies of its data directory (`stop_cleanly`).
    pub(super) stopped: bool,
    kept: bool,
    /// Streaming standbys (`[replica]`), removed before this container.
    standbys: Vec<super::docker_standby::DockerStandby>,
}

impl DockerServer {
    /// Starts a container of `image` (with `dump` mounted read-only) and
    /// waits until its server accepts connections; whatever was created is
    /// removed again if anything fails or `cancel` fires.
    pub async fn start(
        plan: &ClonePlan,
        image: &str,
        dump: Option<&Path>,
        cancel: Option<&CancellationToken>,
    ) -> Result<DockerServer> {
        let never = CancellationToken::new();
        let cancel = cancel.unwrap_or(&never);
        let dump =
            dump.map(std::path::absolute).transpose().map_err(|e| Error::input(format!("snapshot.dump: {e}")))?;
        let data = match HostData::wanted(&std::env::temp_dir()) {
            Ok(base) => DataDir::OnHost(HostData::create(base)?.with_empty_data()?),
            Err(why) => DataDir::InVolume { why },
        };
        let launch = Launch { image: image.to_string(), password: random_hex(), settings: plan.settings.clone(), dump };
        let mut server = DockerServer::launch(launch, data, None, cancel).await?;
        if let Some(want) = plan.pg_version
            && want != server.major
        {
            return Err(Error::env(format!(
                "image {image} runs PostgreSQL {}, but the scenario asks for clone.pg_version = {want}; \
                 use an image of PostgreSQL {want} (postgres:{want}) or change clone.pg_version",
                server.version
            )));
        }
        if plan.replicas.count > 0 {
            server.standbys = super::docker_standby::start_all(&server, plan, cancel).await?;
        }
        Ok(server)
    }

    /// Starts a container as `launch` says, with its data directory where
    /// `data` says (bind-mounted from the host, or a volume of the engine), and waits until
    /// its server accepts connections. `version`: the image's server version
    /// when known (a copy's), else asked from the container.
    pub(super) async fn launch(
        launch: Launch,
        data: DataDir,
        version: Option<(String, u32)>,
        cancel: &CancellationToken,
    ) -> Result<DockerServer> {
        let log = Arc::new(LogTail::default());
        let request = container_request(&launch, data.on_host());
        let container = start_labelled(request, &launch.image, log.clone(), cancel).await?;
        // From here on the guard removes the container on every exit path.
        let mut server = DockerServer {
            id: container.id().to_string(),
            container: Some(Arc::new(container)),
            port: 0,
            major: 0,
            version: String::new(),
            log,
            launch,
            data,
            stopped: false,
            kept: false,
            standbys: Vec::new(),
        };
        server.port = published_port(server.container()?).await?;
        (server.version, server.major) = match version {
            Some(known) => known,
            None => server.server_version().await?,
        };
        server.wait_ready(cancel).await?;
        Ok(server)
    }

    pub(super) fn container(&self) -> Result<&Arc<Container>> {
        self.container.as_ref().ok_or_else(|| Error::env(format!("container {} is gone", short(&self.id))))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn image(&self) -> &str {
        &self.launch.image
    }

    /// The superuser's password (TCP connections need it).
    pub fn password(&self) -> &str {
        &self.launch.password
    }

    /// Where the server lives, for progress output.
    pub fn location(&self) -> String {
        format!("container {} (image {}), port 127.0.0.1:{}", short(&self.id), self.launch.image, self.port)
    }

    /// The server's version, from the image's own `postgres` binary.
    async fn server_version(&self) -> Result<(String, u32)> {
        let out = exec(self.container()?, &["postgres", "--version"], &[]).await?;
        let text = String::from_utf8_lossy(&out.stdout);
        // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
        let version = text.split_whitespace().nth(2).unwrap_or("").to_string();
        let major = version.split(['.', 'b', 'r']).next().and_then(|m| m.parse().ok()).ok_or_else(|| {
            Error::env(format!(
                "image {} does not look like a PostgreSQL server image: `postgres --version` printed {:?} {}",
                self.launch.image,
                text.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        })?;
        Ok((version, major))
    }

    /// Waits until the final server (not the entrypoint's temporary one, which
    /// listens on no TCP address) accepts connections on the published port.
    async fn wait_ready(&self, cancel: &CancellationToken) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let config = super::ServerHandle::config(self, "postgres");
        loop {
            let attempt = tokio::time::timeout(Duration::from_secs(5), config.connect(tokio_postgres::NoTls));
            if let Ok(Ok((client, conn))) = attempt.await {
                drop(client);
                let _ = conn.await;
                return Ok(());
            }
            if !self.container()?.is_running().await.unwrap_or(false) {
                return Err(Error::env(format!(
                    "the server in container {} (image {}) stopped during start-up; its log:\n{}",
                    short(&self.id),
                    self.launch.image,
                    self.log.last(30)
                )));
            }
            if Instant::now() > deadline {
                return Err(Error::env(format!(
                    "the server in container {} did not accept connections within {} s; its log:\n{}",
                    short(&self.id),
                    READY_TIMEOUT.as_secs(),
                    self.log.last(30)
                )));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = cancel.cancelled() => return Err(Error::interrupted()),
            }
        }
    }
}

/// What a container is started with; a copy-on-write copy of its data
/// directory starts with the same.
#[derive(Clone)]
pub(super) struct Launch {
    image: String,
    /// The superuser's password (random; in the data directory once initialized).
    password: String,
    /// `[clone.settings]`, as `postgres -c name=value` arguments.
    settings: Vec<(String, String)>,
    /// The host path of the dump mounted at `DUMP_PATH`.
    dump: Option<PathBuf>,
}

/// The container as `launch` asks for it, its data directory in `host`
/// when given (an initialized copy starts without the entrypoint's initdb).
fn container_request(launch: &Launch, host: Option<&HostData>) -> testcontainers::ContainerRequest<GenericImage> {
    let mut cmd = vec!["postgres".to_string(), "-c".into(), "listen_addresses=*".into()];
    for (k, v) in &launch.settings {
        cmd.push("-c".into());
        cmd.push(format!("{k}={v}"));
    }
    let mut request = generic_image(&launch.image)
        .with_env_var("POSTGRES_PASSWORD", launch.password.as_str())
        .with_env_var("POSTGRES_USER", "postgres")
        .with_env_var("POSTGRES_DB", "postgres")
        .with_cmd(cmd);
    if let Some(path) = &launch.dump {
        request = request.with_mount(
            Mount::bind_mount(path.display().to_string(), DUMP_PATH).with_access_mode(AccessMode::ReadOnly),
        );
    }
    if let Some(host) = host {
        request = request
            .with_env_var("PGDATA", PGDATA)
            .with_mount(Mount::bind_mount(host.data().display().to_string(), PGDATA));
    }
    request
}

/// Starts `request` as one of this tool's containers: labelled (`lockimpact=1`,
/// its owner, this start-up), port 5432 published on 127.0.0.1 only, its log
/// kept in `log`. Whatever was created is removed again if the start fails
/// or `cancel` fires.
pub(super) async fn start_labelled(
    request: testcontainers::ContainerRequest<GenericImage>,
    image: &str,
    log: Arc<LogTail>,
    cancel: &CancellationToken,
) -> Result<Container> {
    let run = random_hex();
    let mut request = request
        .with_label(LABEL, "1")
        .with_label(RUN_LABEL, &run)
        .with_shm_size(256 << 20)
        .with_startup_timeout(READY_TIMEOUT)
        .with_log_consumer(move |frame: &LogFrame| log.accept(frame))
        // Published on 127.0.0.1 only (testcontainers publishes on every
        // address by default), on a port the engine picks.
        .with_host_config_modifier(|hc: &mut HostConfig| {
            hc.publish_all_ports = Some(false);
            let binding = PortBinding { host_ip: Some("127.0.0.1".into()), host_port: None };
            hc.port_bindings = Some(HashMap::from([("5432/tcp".to_string(), Some(vec![binding]))]));
        });
    for (k, v) in Owner::current().labels() {
        request = request.with_label(k, v);
    }
    let started = tokio::select! {
        r = request.start() => r.map_err(|e| {
            Error::env(format!("cannot start a container of {image} (Docker engine at {}): {}", docker_host(), causes(&e)))
        }),
        _ = cancel.cancelled() => Err(Error::interrupted()),
    };
    if started.is_err() {
        // Created but not started, or interrupted half-way: testcontainers
        // holds no handle to remove it, the label finds it. An interrupted
        // create may still complete in the engine: look again.
        let passes = if cancel.is_cancelled() { 3 } else { 1 };
        for pass in 0..passes {
            if pass > 0 {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            remove_labelled(&format!("{RUN_LABEL}={run}")).await;
        }
    }
    started
}

/// A container's address on the engine's network (its first network's:
/// `bridge` unless the engine is set up otherwise), which other containers
/// reach it at.
pub(super) async fn address(id: &str) -> Result<String> {
    let docker = client().await?;
    let c = ask("inspect container", docker.inspect_container(id, None)).await?;
    let networks = c.network_settings.and_then(|n| n.networks).unwrap_or_default();
    let ip = networks.into_values().filter_map(|n| n.ip_address).find(|ip| !ip.is_empty());
    ip.ok_or_else(|| Error::env(format!("container {} has no address on any of the engine's networks", short(id))))
}

/// The host port (on 127.0.0.1) a container publishes 5432/tcp on.
pub(super) async fn published_port(container: &Container) -> Result<u16> {
    container.get_host_port_ipv4(5432).await.map_err(|e| {
        Error::env(format!("container {} publishes no port for 5432/tcp: {}", short(container.id()), causes(&e)))
    })
}

/// Runs `cmd` in the container (as the image's user) and collects its output.
pub async fn exec(container: &Container, cmd: &[&str], env: &[(&str, &str)]) -> Result<Output> {
    let what = || format!("{} in container {}", cmd.join(" "), short(container.id()));
    let fail = |e: testcontainers::TestcontainersError| Error::env(format!("cannot run {}: {}", what(), causes(&e)));
    let command = ExecCommand::new(cmd.iter().copied()).with_env_vars(env.iter().copied());
    let mut result = container.exec(command).await.map_err(fail)?;
    let stdout = result.stdout_to_vec().await.map_err(fail)?;
    let stderr = result.stderr_to_vec().await.map_err(fail)?;
    // The output ends when the process does; its exit code follows.
    let deadline = Instant::now() + ENGINE_TIMEOUT;
    let code = loop {
        if let Some(code) = result.exit_code().await.map_err(fail)? {
            break code;
        }
        if Instant::now() > deadline {
            return Err(Error::env(format!("{} ended without an exit code", what())));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    Ok(Output { status: ExitStatus::from_raw(((code & 0xff) as i32) << 8), stdout, stderr })
}

impl super::ServerHandle for DockerServer {
    fn backend(&self) -> crate::clone::plan::Backend {
        crate::clone::plan::Backend::Docker
    }

    fn config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host("127.0.0.1").port(self.port).user("postgres").password(self.launch.password.as_str()).dbname(dbname);
        c.application_name("lockimpact");
        c.connect_timeout(Duration::from_secs(10));
        c
    }

    fn describe(&self) -> String {
        let ports: Vec<String> = self.standbys.iter().map(|s| s.endpoint.port.to_string()).collect();
        let standbys = match ports.len() {
            0 => String::new(),
            n => format!(", {n} streaming standby container(s) on port(s) {}", ports.join(", ")),
        };
        format!("docker image {}, container {}, port {}{standbys}", self.launch.image, short(&self.id), self.port)
    }

    fn standbys(&self) -> Vec<super::standby::Endpoint> {
        self.standbys.iter().map(|s| s.endpoint.clone()).collect()
    }

    fn docker_mut(&mut self) -> Option<&mut DockerServer> {
        Some(self)
    }

    fn kind(&self) -> String {
        format!("docker image {}", self.launch.image)
    }

    fn keep(&mut self, dbname: &str) -> String {
        self.kept = true;
        let data = match self.data.on_host_mut() {
            Some(h) => {
                format!("\n  its data directory {} is kept too: rm -rf it after the container", h.keep().display())
            }
            None => String::new(),
        };
        let id = self.id.clone();
        let running = on_engine(move |docker| async move {
            let c = ask("inspect container", docker.inspect_container(&id, None)).await?;
            Ok(c.state.and_then(|s| s.running).unwrap_or(false))
        });
        if !running.unwrap_or(false) {
            return format!(
                "--keep: container {} is not running (its server died or it was stopped), so there is nothing to \
                 connect to; it is kept for a look at its log: docker logs {}\n  remove it: docker rm -f -v {}{data}",
                short(&self.id),
                self.id,
                self.id
            );
        }
        let note = rename_kept(&self.id);
        let standbys: String = self.standbys.iter_mut().map(|s| format!("\n  {}", s.keep())).collect();
        format!(
            "the clone keeps running in {note} (image {}):\n  connect: PGPASSWORD={} psql -h 127.0.0.1 -p {} -U postgres {dbname}\n  stop:    docker rm -f -v {}{standbys}{data}",
            self.launch.image, self.launch.password, self.port, self.id
        )
    }

    fn log_tail(&self) -> String {
        self.log.last(20)
    }

    fn read_log(&self) -> Option<std::io::Result<String>> {
        // The server logs to the container's stderr (stdout holds initdb's output).
        let container = self.container.clone()?;
        let read = match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| h.block_on(container.stderr_to_vec()))
            }
            _ => return Some(Err(std::io::Error::other("no async runtime to read the container's log on"))),
        };
        Some(read.map(|b| String::from_utf8_lossy(&b).into_owned()).map_err(|e| std::io::Error::other(causes(&e))))
    }

    fn tools(&self) -> Option<Tools> {
        let container = self.container.clone()?;
        let dump = self.launch.dump.clone().map(|p| (p, DUMP_PATH.to_string()));
        Some(Tools::Docker { container, major: self.major, password: self.launch.password.clone(), dump })
    }
}

impl Drop for DockerServer {
    fn drop(&mut self) {
        self.standbys.clear(); // each is removed (or kept) on drop, before the primary they follow
        if let Some(container) = self.container.take() {
            discard(container, self.kept);
        }
    }
}

/// Removes a container when its last handle goes (testcontainers removes it
/// with its anonymous volumes), or leaves it running when `kept`.
pub(super) fn discard(container: Arc<Container>, kept: bool) {
    if kept {
        // testcontainers removes a container when its handle drops.
        std::mem::forget(container);
        return;
    }
    let id = container.id().to_string();
    let removed = match Arc::try_unwrap(container) {
        Ok(c) => match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| h.block_on(c.rm())).map_err(|e| Error::env(causes(&e)))
            }
            // No runtime to drive testcontainers' client: remove it with a
            // fresh one, and drop the handle without its own removal.
            _ => {
                std::mem::forget(c);
                let id = id.clone();
                on_engine(move |docker| async move { remove(&docker, &id).await })
            }
        },
        Err(shared) => {
            drop(shared); // a restore still holds it; the last handle removes it
            Ok(())
        }
    };
    if let Err(e) = removed {
        eprintln!("lockimpact: could not remove container {}: {e}\n  remove it with: docker rm -f -v {id}", short(&id));
    }
}

/// Renames a kept container (`lockimpact-kept-<id>`), so that `lockimpact
/// clean` leaves it alone; returns how to name it.
pub(super) fn rename_kept(id: &str) -> String {
    let name = format!("{KEPT_PREFIX}{}", short(id));
    let (owned, new) = (id.to_string(), name.clone());
    let renamed = on_engine(move |docker| async move {
        let options = RenameContainerOptionsBuilder::new().name(&new).build();
        ask("rename container", docker.rename_container(&owned, options)).await
    });
    match renamed {
        Ok(()) => format!("container {name}"),
        Err(e) => format!("container {} (not renamed: {e}; `lockimpact clean` would remove it)", short(id)),
    }
}

/// Runs an engine request to its end from synchronous code (a guard's drop,
/// `keep`): on the runtime's client, or with a fresh client on a thread of
/// its own when there is no multi-threaded runtime to block on.
fn on_engine<T, F>(f: impl FnOnce(bollard::Docker) -> F + Send + 'static) -> Result<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T>> + Send,
{
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| h.block_on(async { f(client().await?).await }))
        }
        _ => std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::env(e.to_string()))?;
            rt.block_on(async {
                f(bollard::Docker::connect_with_defaults().map_err(|e| Error::env(causes(&e)))?).await
            })
        })
        .join()
        .unwrap_or_else(|_| Err(Error::env("the engine thread panicked"))),
    }
}

/// Removes a container and its anonymous volumes.
pub async fn remove(docker: &bollard::Docker, id: &str) -> Result<()> {
    let options = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
    ask("remove container", docker.remove_container(id, Some(options))).await
}

/// Every container (running or not) with the label `filter` (`key=value`).
pub async fn containers(filter: &str) -> Result<Vec<ContainerSummary>> {
    let docker = client().await?;
    let filters = HashMap::from([("label", vec![filter])]);
    let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    ask("list containers", docker.list_containers(Some(options))).await
}

/// Removes every container with the label `filter`, quietly (a failed
/// start-up's cleanup).
async fn remove_labelled(filter: &str) {
    let Ok(docker) = client().await else { return };
    for c in containers(filter).await.unwrap_or_default() {
        if let Some(id) = c.id {
            let _ = remove(&docker, &id).await;
        }
    }
}

pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// 32 random hex digits: the container's superuser password (its port is
/// published on 127.0.0.1 only; this keeps other local users out as well),
/// and the start-up's label.
fn random_hex() -> String {
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
