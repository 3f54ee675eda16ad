//! Physical streaming standbys of the docker backend's clone (`[replica]`,
//! `--replicas N`): each is another container of the primary's image that
//! runs `pg_basebackup -R` of the primary (reached at its address on the
//! engine's bridge network, with the superuser's password) and then the
//! server on that copy, as the image's `postgres` user, with the primary's
//! settings plus the `[replica]` ones. Its port is published on 127.0.0.1
//! like the primary's; it is labelled like the primary (owner, start-up),
//! so `lockimpact clean` finds a killed run's standbys too.
//!
//! The primary is prepared first: a `pg_hba.conf` line that lets
//! replication connections in with the password (the image's own lets
//! only `all` databases in, which does not cover replication), then a
//! reload. Each `DockerStandby` is a guard: dropping it removes its
//! container, and the `DockerServer` drops its standbys before itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use testcontainers::ImageExt;
use tokio_util::sync::CancellationToken;

use super::ServerHandle;
use super::docker::{Container, DockerServer, LogTail, discard, exec, generic_image, published_port, short};
use super::standby::{Endpoint, Reach};
use crate::clone::plan::ClonePlan;
use crate::error::{Error, Result, describe_pg};

/// How long a standby may take to copy the primary and stream from it.
const STREAM_TIMEOUT: Duration = Duration::from_secs(120);

/// The standby's data directory inside its container (writable by the
/// image's `postgres` user in any image: not a volume of the image).
const DATA: &str = "/tmp/lockimpact-standby";

/// The shell script a standby container runs: copy the primary, name it in
/// `primary_conninfo` (with the password: the copy's own line has none),
/// start the server on the copy with the `-c` settings given as arguments.
const SCRIPT: &str = r#"set -e
pg_basebackup -d "$PRIMARY" -D "$DATA" -R -X stream -c fast --no-sync
printf "primary_conninfo = '%s password=%s'\n" "$PRIMARY" "$PGPASSWORD" >> "$DATA/postgresql.auto.conf"
exec postgres -D "$DATA" -c listen_addresses='*' "$@"
"#;

/// A standby in a container; dropping it removes the container unless kept.
pub struct DockerStandby {
    pub endpoint: Endpoint,
    container: Option<Arc<Container>>,
    log: Arc<LogTail>,
    kept: bool,
}

/// Starts `plan.replicas.count` standbys of `primary` and waits until each
/// streams; with `synchronous`, makes the first one synchronous. On an error
/// the standbys started so far are removed (their guards drop).
pub async fn start_all(
    primary: &DockerServer,
    plan: &ClonePlan,
    cancel: &CancellationToken,
) -> Result<Vec<DockerStandby>> {
    let client = super::template::connect_with(primary.target("postgres"), "standby-setup").await?;
    allow_replication(primary, &client).await?;
    let address = super::docker::address(primary.id()).await?;
    let mut standbys = Vec::new();
    for n in 1..=plan.replicas.count {
        standbys.push(DockerStandby::start(primary, plan, n, &address, cancel).await?);
    }
    for s in &standbys {
        s.wait_streaming(&client, cancel).await?;
    }
    if plan.replicas.synchronous
        && let Some(first) = standbys.first_mut()
    {
        for sql in super::standby::make_synchronous(&mut first.endpoint) {
            let run = client.batch_execute(&sql).await;
            run.map_err(|e| Error::env(format!("{sql} on the primary: {}", describe_pg(&e))))?;
        }
    }
    Ok(standbys)
}

/// Lets replication connections with the password into the primary.
async fn allow_replication(primary: &DockerServer, client: &tokio_postgres::Client) -> Result<()> {
    let line = r#"printf '\nhost replication all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf""#;
    let out = exec(primary.container()?, &["sh", "-c", line], &[]).await?;
    if !out.status.success() {
        return Err(Error::env(format!(
            "cannot let the standbys replicate from container {}: appending to its pg_hba.conf failed ({}): {}",
            short(primary.id()),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    client
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .map_err(|e| Error::env(format!("reloading the primary's configuration: {}", describe_pg(&e))))
}

impl DockerStandby {
    async fn start(
        primary: &DockerServer,
        plan: &ClonePlan,
        n: u32,
        address: &str,
        cancel: &CancellationToken,
    ) -> Result<DockerStandby> {
        let name = format!("lockimpact_standby_{n}");
        let password = primary.password().to_string();
        let conninfo = format!("host={address} port=5432 user=postgres application_name={name}");
        let mut cmd = vec!["-c".to_string(), SCRIPT.to_string(), "standby".into()];
        for (k, v) in plan.settings.iter().chain(plan.replicas.settings().iter()) {
            cmd.push("-c".into());
            cmd.push(format!("{k}={v}"));
        }
        let request = generic_image(primary.image())
            .with_entrypoint("sh")
            .with_user("postgres")
            .with_env_var("PRIMARY", conninfo)
            .with_env_var("PGPASSWORD", password.clone())
            .with_env_var("DATA", DATA)
            .with_cmd(cmd);
        let log = Arc::new(LogTail::default());
        let container = super::docker::start_labelled(request, primary.image(), log.clone(), cancel).await?;
        let mut standby = DockerStandby {
            endpoint: Endpoint { name, port: 0, reach: Reach::Tcp { password }, synchronous: false },
            container: Some(Arc::new(container)),
            log,
            kept: false,
        };
        standby.endpoint.port = published_port(standby.container()?).await?;
        Ok(standby)
    }

    fn container(&self) -> Result<&Arc<Container>> {
        self.container.as_ref().ok_or_else(|| Error::env(format!("standby {} is gone", self.endpoint.name)))
    }

    /// Waits until the primary's `pg_stat_replication` shows this standby
    /// streaming and the standby accepts connections.
    async fn wait_streaming(&self, primary: &tokio_postgres::Client, cancel: &CancellationToken) -> Result<()> {
        let sql = "SELECT count(*) FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'";
        let deadline = Instant::now() + STREAM_TIMEOUT;
        loop {
            let row = primary
                .query_one(sql, &[&self.endpoint.name])
                .await
                .map_err(|e| Error::env(format!("reading pg_stat_replication on the primary: {}", describe_pg(&e))))?;
            // Streaming, and accepting read-only connections (a standby
            // streams a moment before it reaches a consistent state).
            if row.get::<_, i64>(0) == 1 && self.endpoint.target("postgres").connect().await.is_ok() {
                return Ok(());
            }
            let running = self.container()?.is_running().await.unwrap_or(false);
            if !running || Instant::now() > deadline {
                let why = if running {
                    format!("does not stream from the primary and answer after {} s", STREAM_TIMEOUT.as_secs())
                } else {
                    "stopped".into()
                };
                return Err(Error::env(format!(
                    "standby {} (container {}) {why}; its log:\n{}",
                    self.endpoint.name,
                    short(self.container()?.id()),
                    self.log.last(30)
                )));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = cancel.cancelled() => return Err(Error::interrupted()),
            }
        }
    }

    /// Leaves the standby's container running when its guard drops
    /// (`--keep`), renamed so that `lockimpact clean` leaves it alone;
    /// returns how to connect to it.
    pub fn keep(&mut self) -> String {
        let Some(container) = &self.container else { return String::new() };
        self.kept = true;
        let id = container.id().to_string();
        let password = match &self.endpoint.reach {
            Reach::Tcp { password } => format!("PGPASSWORD={password} "),
            Reach::Socket(_) => String::new(),
        };
        format!(
            "standby {} in {}: {password}psql -h {} -p {} -U postgres\n  stop:    docker rm -f -v {id}",
            self.endpoint.name,
            super::docker::rename_kept(&id),
            self.endpoint.host(),
            self.endpoint.port
        )
    }
}

impl Drop for DockerStandby {
    fn drop(&mut self) {
        if let Some(container) = self.container.take() {
            discard(container, self.kept);
        }
    }
}
