//! Copy-on-write clone resets for the docker backend. When lockimpact runs
//! as root next to a local engine (a `unix://` DOCKER_HOST) and TMPDIR is on
//! a file system that shares blocks (XFS with `reflink=1`, btrfs), the
//! container's data directory is not a volume of the engine but a private
//! directory under TMPDIR (`HostData`), bind-mounted as its PGDATA. A reset
//! then stops the template's container cleanly once (SIGINT: a fast
//! shutdown with its checkpoint), copies that directory by reflinks
//! (`reflink::copy_dir`, owners kept: the image's `postgres` user) and starts
//! a container of the same image on the copy, with its own port; the copy's
//! directory goes when its container does. Elsewhere the data stays in a
//! volume and resets copy the template database, as before.
//!
//! `lockimpact clean` finds a killed run's directory like a local server's
//! (`lockimpact-*` with its owner's record) and its containers by their
//! labels; the pid in such a directory's `postmaster.pid` is one of the
//! container's, and `clean` signals a pid only when its command line names
//! the directory, which a container's postmaster's does not.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::query_parameters::KillContainerOptionsBuilder;
use tokio_util::sync::CancellationToken;

use super::docker::{DockerServer, ask, client, docker_host, short};
use super::reflink::{self, Support};
use crate::error::{Error, Result};
use crate::sys;

/// How long the template's server may take to shut down cleanly.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

/// Where a container's data directory is.
pub enum DataDir {
    /// Bind-mounted from a directory on the host: copies can be made by reflinks.
    OnHost(HostData),
    /// In a volume of the engine, and why not on the host.
    InVolume { why: String },
}

impl DataDir {
    pub fn on_host(&self) -> Option<&HostData> {
        match self {
            DataDir::OnHost(h) => Some(h),
            DataDir::InVolume { .. } => None,
        }
    }

    pub fn on_host_mut(&mut self) -> Option<&mut HostData> {
        match self {
            DataDir::OnHost(h) => Some(h),
            DataDir::InVolume { .. } => None,
        }
    }
}

/// A private directory under TMPDIR holding a container's data directory
/// (`data`); removed on drop unless kept.
pub struct HostData {
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
}

impl HostData {
    /// Whether containers started now keep their data under `base`: `Ok`
    /// with the base when they can be copied by reflinks there, else why not.
    pub fn wanted(base: &Path) -> std::result::Result<PathBuf, String> {
        if sys::effective_uid() != 0 {
            return Err("not root: the container's files belong to its postgres user, which only root may copy \
                        with their owners and remove"
                .into());
        }
        if !docker_host().starts_with("unix://") {
            return Err(format!("the engine at {} may not see this machine's directories", docker_host()));
        }
        match reflink::probe(base) {
            Support::Reflink { .. } => Ok(base.to_path_buf()),
            unsupported => Err(format!("TMPDIR: {}", unsupported.describe())),
        }
    }

    /// A new private directory under `base` (`lockimpact-*`), with its
    /// owner's record for `lockimpact clean`.
    pub fn create(base: PathBuf) -> Result<HostData> {
        let (dir, root) = super::local::private_dir(&base, None)?;
        Ok(HostData { dir: Some(dir), root })
    }

    /// With an empty data directory, for a new cluster (the image's
    /// entrypoint makes it its `postgres` user's and runs initdb there).
    pub fn with_empty_data(self) -> Result<HostData> {
        std::fs::create_dir(self.data())
            .map_err(|e| Error::env(format!("cannot create {}: {e}", self.data().display())))?;
        Ok(self)
    }

    /// The data directory, bind-mounted as the container's PGDATA.
    pub fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    /// Leaves the directory when dropped (`--keep`); returns it.
    pub fn keep(&mut self) -> PathBuf {
        self.dir.take().map(|d| d.keep()).unwrap_or_else(|| self.root.clone())
    }
}

impl DockerServer {
    /// Whether resets of this server can copy its data directory by reflinks.
    pub fn cow_support(&self) -> Support {
        match &self.data {
            DataDir::OnHost(h) => Support::Reflink { filesystem: reflink::filesystem_name(&h.data()) },
            DataDir::InVolume { why } => Support::Unsupported {
                filesystem: "-".into(),
                why: format!("the docker backend keeps the data in a volume of the engine ({why})"),
            },
        }
    }

    /// Whether the container's server runs (false once `stop_cleanly` stopped it).
    pub fn is_running(&self) -> bool {
        !self.stopped
    }

    /// Stops the container's server with a fast shutdown (SIGINT to the
    /// postmaster, the container's main process) and its checkpoint, and
    /// waits until the container exited: a copy of its data directory then
    /// starts without crash recovery. Returns how long it took.
    pub async fn stop_cleanly(&mut self) -> Result<Duration> {
        let started = Instant::now();
        let docker = client().await?;
        let options = KillContainerOptionsBuilder::new().signal("SIGINT").build();
        ask("stop the template's server (SIGINT)", docker.kill_container(self.id(), Some(options))).await?;
        let container = self.container()?;
        while container.is_running().await.unwrap_or(false) {
            if started.elapsed() > STOP_TIMEOUT {
                return Err(Error::env(format!(
                    "the template's server in container {} did not stop within {} s",
                    short(self.id()),
                    STOP_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.stopped = true;
        Ok(started.elapsed())
    }

    /// A new container of the same image, settings and password on a
    /// data directory that `copy(from, to)` fills from this stopped
    /// server's, in a private directory of its own beside this one's.
    pub async fn start_on_copy<T>(
        &self,
        copy: impl FnOnce(&Path, &Path) -> Result<T>,
        cancel: &CancellationToken,
    ) -> Result<(DockerServer, T)> {
        let Some(host) = self.data.on_host().filter(|_| self.stopped) else {
            return Err(Error::env("a data directory is copied only from a stopped server on the host (stop_cleanly)"));
        };
        let base = host.root.parent().unwrap_or(Path::new("/")).to_path_buf();
        let new = HostData::create(base)?;
        let copied = copy(&host.data(), &new.data())?;
        // Ctrl-C during the start removes the container before its directory goes.
        let version = Some((self.version.clone(), self.major));
        let server = DockerServer::launch(self.launch.clone(), DataDir::OnHost(new), version, cancel).await?;
        Ok((server, copied))
    }
}
