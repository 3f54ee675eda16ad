//! The disposable PostgreSQL a rehearsal runs on. A backend starts a server
//! and hands back a `Server` guard; dropping the guard stops the server and
//! removes everything it created (unless `--keep`). `template` builds the
//! dataset once (from a seed script, or `restore` from a pg_dump snapshot) and
//! makes a fresh copy of it for each run.
//!
//! Backends plug in by implementing `ServerHandle`: `local` (initdb + pg_ctl),
//! `docker` (a container of the official image, on testcontainers) and `url`
//! (an existing server, behind an explicit opt-in); `start` picks one from
//! the `plan`. `owner` names the run a server belongs to, for `lockimpact clean`.
//!
//! `sessions` keeps track of the tool's own sessions on a server so none
//! outlives a run; `watchdog` notices a server that stopped answering;
//! `state` tells whether a rehearsal changed the server for the next one.
//!
//! `reflink` resets by copy-on-write instead, on the local backend when its
//! directory is on a file system that shares blocks (XFS with reflink, btrfs):
//! the template's server is stopped and each run starts a server of its own
//! on a reflink copy of the data directory.

pub mod docker;
pub mod docker_cow;
mod docker_standby;
pub mod local;
pub mod logical;
pub mod owner;
pub mod plan;
pub mod reflink;
pub mod restore;
pub mod sample;
pub mod sessions;
pub mod standby;
pub mod state;
pub mod stats;
pub mod synthetic;
pub mod template;
pub mod url;
pub mod watchdog;

use std::path::Path;

use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::pg::{Target, Tls};
pub use plan::{Backend, ClonePlan};

/// A running disposable server. Dropping it stops the server and removes its
/// files, unless `keep` was called.
pub trait ServerHandle: Send + Sync {
    /// Which backend started it (`Local`, `Docker` or `Url`, never `Auto`).
    fn backend(&self) -> Backend;
    /// Connection settings for one database on this server.
    fn config(&self, dbname: &str) -> tokio_postgres::Config;
    /// The TLS its connections use; none for a disposable server.
    fn tls(&self) -> Tls {
        Tls::disabled()
    }
    /// Settings and TLS for one database on this server.
    fn target(&self, dbname: &str) -> Target {
        Target { config: self.config(dbname), tls: self.tls() }
    }
    /// One line for the report: backend, version, where it runs.
    fn describe(&self) -> String;
    /// The backend without the disposable server's details (port,
    /// container, connection), as a pull-request comment shows it.
    fn kind(&self) -> String;
    /// Leave the server running after the guard is dropped; returns how to
    /// connect and how to stop it.
    fn keep(&mut self, dbname: &str) -> String;
    /// The last lines of the server's log, for error messages.
    fn log_tail(&self) -> String;
    /// The server's whole log (stderr), to read the statements a framework
    /// command sent (`migration.command`); `None` when lockimpact cannot
    /// read it. Servers that have one also listen on 127.0.0.1 at the port
    /// of their `config`.
    fn read_log(&self) -> Option<std::io::Result<String>> {
        None
    }
    /// Where client tools of the server's own major version (pg_restore,
    /// psql) run against it; `None` when lockimpact cannot run them there.
    fn tools(&self) -> Option<restore::Tools>;
    /// The database to rehearse on directly, for a server that is not ours
    /// (`url` backend); `None` for a disposable server, where each rehearsal
    /// runs on a fresh copy of the template.
    fn existing_database(&self) -> Option<String> {
        None
    }
    /// The streaming standbys of this server (`[replica]`), in order; none
    /// unless the scenario asked for them.
    fn standbys(&self) -> Vec<standby::Endpoint> {
        Vec::new()
    }
    /// The local backend's server itself, for a copy-on-write reset of its
    /// data directory (`reflink`); `None` for the other backends.
    fn local_mut(&mut self) -> Option<&mut local::LocalServer> {
        None
    }
    /// The docker backend's server itself, for a copy-on-write reset of its
    /// data directory on the host (`docker_cow`); `None` for the other backends.
    fn docker_mut(&mut self) -> Option<&mut docker::DockerServer> {
        None
    }
}

pub type Server = Box<dyn ServerHandle>;

/// The database control connections use: the url backend's own, else `postgres`.
pub fn control_db(server: &Server) -> String {
    server.existing_database().unwrap_or_else(|| "postgres".into())
}

/// Starts a local or url server (tests, benchmarks: no async runtime needed);
/// the docker backend starts with `start_cancellable`.
pub fn start(plan: &ClonePlan, say: &dyn Fn(&str)) -> Result<Server> {
    match plan.backend {
        Backend::Local => start_local(plan, say),
        Backend::Url => start_url(plan, say),
        Backend::Docker | Backend::Auto => Err(Error::env(
            "clone::start starts local and url servers; use clone::start_cancellable for docker and auto",
        )),
    }
}

/// Starts a server with the backend the plan asks for, saying which and why;
/// gives up when `cancel` fires (Ctrl-C during a pull or a slow container
/// start-up), and whatever was started is removed. `dump` is the snapshot to
/// restore later: the docker backend mounts it into the container.
pub async fn start_cancellable(
    plan: &ClonePlan,
    dump: Option<&Path>,
    say: &dyn Fn(&str),
    cancel: Option<&CancellationToken>,
) -> Result<Server> {
    match start_backend(plan, dump, say, cancel).await {
        Err(_) if cancel.is_some_and(|c| c.is_cancelled()) => Err(Error::interrupted()),
        other => other,
    }
}

async fn start_backend(
    plan: &ClonePlan,
    dump: Option<&Path>,
    say: &dyn Fn(&str),
    cancel: Option<&CancellationToken>,
) -> Result<Server> {
    match plan.backend {
        Backend::Local => start_local(plan, say),
        Backend::Url => start_url(plan, say),
        Backend::Docker => {
            let engine = docker::engine().await.map_err(|why| {
                Error::env(format!(
                    "the docker backend needs a Docker engine, and none answers: {why}\n\
                     Start Docker (or set DOCKER_HOST), or use --backend local with PostgreSQL server binaries."
                ))
            })?;
            let image = docker::image_for(plan).ok_or_else(|| {
                Error::env(
                    "the docker backend needs clone.pg_version (to run the official postgres:<major> image) \
                     or --image NAME:TAG",
                )
            })?;
            ensure_image(&image, say, cancel).await.map_err(|why| {
                Error::env(format!(
                    "image {image} is not present in the Docker engine and cannot be pulled: {why}\n\
                     Pull or build it first (docker pull {image}), or pass --image with one that is present."
                ))
            })?;
            start_docker(plan, &image, dump, &format!("backend: docker (Docker engine {engine})"), say, cancel).await
        }
        Backend::Auto => start_auto(plan, dump, say, cancel).await,
    }
}

fn start_local(plan: &ClonePlan, say: &dyn Fn(&str)) -> Result<Server> {
    let server = local::LocalServer::start(plan)?;
    say(&format!("server: {}", server.location()));
    Ok(Box::new(server))
}

fn start_url(plan: &ClonePlan, say: &dyn Fn(&str)) -> Result<Server> {
    let server = url::UrlServer::new(plan.url.as_deref().unwrap_or_default())?;
    say("backend: url (an existing server, opted in with --allow-existing-server)");
    say(&format!("server: {}", server.location()));
    Ok(Box::new(server))
}

async fn start_docker(
    plan: &ClonePlan,
    image: &str,
    dump: Option<&Path>,
    why: &str,
    say: &dyn Fn(&str),
    cancel: Option<&CancellationToken>,
) -> Result<Server> {
    say(why);
    let server = docker::DockerServer::start(plan, image, dump, cancel).await?;
    say(&format!("server: {}", server.location()));
    Ok(Box::new(server))
}

/// Present, or pulled now.
async fn ensure_image(image: &str, say: &dyn Fn(&str), cancel: Option<&CancellationToken>) -> Result<&'static str> {
    if docker::image_present(image).await {
        return Ok("present");
    }
    say(&format!("pulling image {image}"));
    docker::pull(image, cancel).await.map(|_| "pulled")
}

/// The directory the user named with --pg-bin (or PG_BIN) holds no server
/// binaries: the path is what is wrong, whatever else is installed.
fn wrong_pg_bin(e: &Error, docker_answers: bool) -> Error {
    Error::env(format!(
        "{e}\nCheck the path: --pg-bin (or PG_BIN) must name the directory holding initdb, pg_ctl and postgres \
         (e.g. /usr/lib/postgresql/15/bin; `pg_config --bindir` prints it), or leave it out to let the tool find them{}.",
        if docker_answers { "; a Docker engine answers: set clone.pg_version to use it" } else { "" }
    ))
}

/// `auto`: Docker when an engine answers and the image is present or can be
/// pulled, else local binaries of the requested major version, else an error
/// that says what to install. Without `clone.pg_version` (and `--image`) any
/// local server binaries will do, so those come first.
async fn start_auto(
    plan: &ClonePlan,
    dump: Option<&Path>,
    say: &dyn Fn(&str),
    cancel: Option<&CancellationToken>,
) -> Result<Server> {
    if plan.replicas.logical {
        say("backend: local (auto: a logical subscriber for [replica] is made by the local backend only, for now)");
        return start_local(plan, say);
    }
    let Some(image) = docker::image_for(plan) else {
        return match local::find_binaries(plan.pg_bin.as_deref(), None) {
            Ok(b) => {
                say(&format!(
                    "backend: local (auto: no clone.pg_version asked for; PostgreSQL {} server binaries in {})",
                    b.major,
                    b.dir.display()
                ));
                start_local(plan, say)
            }
            Err(e) if plan.pg_bin.is_some() => Err(wrong_pg_bin(&e, docker::engine().await.is_ok())),
            Err(e) => Err(Error::env(format!(
                "no backend can provide the clone: {e}\nInstall the PostgreSQL server binaries \
                 (Debian/Ubuntu: apt-get install postgresql), or set clone.pg_version and install Docker \
                 to run the official postgres image."
            ))),
        };
    };
    let docker_unusable = match docker::engine().await {
        Err(why) => format!("no Docker engine answers ({why})"),
        Ok(engine) => match ensure_image(&image, say, cancel).await {
            Ok(how) => {
                let why = format!("backend: docker (auto: Docker engine {engine} answers and image {image} is {how})");
                return start_docker(plan, &image, dump, &why, say, cancel).await;
            }
            Err(why) => format!("image {image} is not present and cannot be pulled ({why})"),
        },
    };
    if plan.image.is_some() {
        return Err(Error::env(format!(
            "--image/clone.image {image} needs Docker, but {docker_unusable}; start Docker or drop the image"
        )));
    }
    let want = plan.pg_version.expect("an image without --image comes from pg_version");
    match local::find_binaries(plan.pg_bin.as_deref(), Some(want)) {
        Ok(b) => {
            say(&format!(
                "backend: local (auto: {docker_unusable}; PostgreSQL {want} server binaries in {})",
                b.dir.display()
            ));
            start_local(plan, say)
        }
        Err(e) if plan.pg_bin.is_some() => Err(wrong_pg_bin(&e, false)),
        Err(e) => Err(Error::env(format!(
            "no backend can provide PostgreSQL {want}:\n  docker: {docker_unusable}\n  local: {e}\n\
             Install Docker (the image postgres:{want} is pulled on first use), or the PostgreSQL {want} \
             server binaries (Debian/Ubuntu: apt-get install postgresql-{want})."
        ))),
    }
}
