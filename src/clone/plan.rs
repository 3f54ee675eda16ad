//! What a scenario asks of the disposable server: the backend and its
//! settings, resolved by `scenario` and read by every backend.

use std::path::PathBuf;

/// Which clone backend runs the disposable server (`--backend`, `clone.backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Pick one that gives the requested major version.
    Auto,
    /// `initdb` + `pg_ctl` from local server binaries.
    Local,
    /// A container of the official `postgres:<major>` image (or `--image`).
    Docker,
    /// An existing server's database (explicit opt-in only).
    Url,
}

impl Backend {
    /// The names a backend is chosen by, as messages list them.
    pub const CHOICES: &'static str = "\"auto\", \"local\", \"docker\" or \"url\"";

    /// A backend by its name (`auto`, `local`, `docker`, `url`).
    pub fn parse(name: &str) -> Option<Backend> {
        <Backend as clap::ValueEnum>::from_str(name, false).ok()
    }
}

#[derive(Debug, Clone)]
pub struct ClonePlan {
    pub backend: Backend,
    /// The `url` backend's connection URL (may hold a password: never print it).
    pub url: Option<String>,
    pub pg_version: Option<u32>,
    pub pg_bin: Option<PathBuf>,
    /// The docker backend's image (`--image` or `clone.image`); default `postgres:<pg_version>`.
    pub image: Option<String>,
    /// `-c name=value` server settings, in file order.
    pub settings: Vec<(String, String)>,
    pub keep: bool,
    /// `--allow-host-access`: SQL may run programs and touch files on the
    /// server's host (refused on the local and url backends otherwise).
    pub allow_host_access: bool,
    /// `--allow-server-wide`: SQL may change the whole server (refused on
    /// the url backend otherwise).
    pub allow_server_wide: bool,
    /// Streaming standbys of the clone (`[replica]`, `--replicas`).
    pub replicas: super::standby::ReplicaPlan,
}

impl ClonePlan {
    /// A local server with default settings (tests and benchmarks).
    pub fn local() -> ClonePlan {
        ClonePlan {
            backend: Backend::Local,
            url: None,
            pg_version: None,
            pg_bin: None,
            image: None,
            settings: Vec::new(),
            keep: false,
            allow_host_access: false,
            allow_server_wide: false,
            replicas: Default::default(),
        }
    }
}
