//! `lockimpact clean`: lists and removes what killed runs left behind. A run
//! killed with `kill -9` cannot clean up; its server keeps running. Every run
//! records its owner (`clone::owner`) beside its resources, so this finds
//! local server directories (`$TMPDIR/lockimpact-*` with a `lockimpact.pid`
//! file; the server in it is stopped first) and containers (label
//! `lockimpact=1`) whose run is gone, and removes them. It never touches a
//! resource whose run still runs, one of another machine or pid namespace,
//! one without an owner record, or one kept with `--keep` (unless `--kept`).
//! `run` and `compare` mention leftovers when they find them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cli::CleanArgs;
use crate::clone::docker;
use crate::clone::owner::{KEPT_FILE, Liveness, Owner};
use crate::error::{Error, Result};
use crate::status::Progress;
use crate::sys::{self, Signal};

/// What a found resource is, and how to remove it.
#[derive(Debug, Clone)]
pub enum Resource {
    /// A local server's temp dir.
    Dir(PathBuf),
    /// A container: id, and its name and image for people.
    Container { id: String, name: String, image: String },
}

/// Whether a resource may be removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Its run is gone: a leftover.
    Leftover,
    /// Kept on purpose with `--keep`.
    Kept,
    /// Its run still runs (pid).
    InUse(u32),
    /// Another machine's or pid namespace's, or without an owner record.
    Foreign,
}

#[derive(Debug, Clone)]
pub struct Found {
    pub resource: Resource,
    pub owner: Option<Owner>,
    pub state: State,
}

/// What a scan found; `docker` says why containers were not looked at.
#[derive(Debug, Default)]
pub struct Scan {
    pub found: Vec<Found>,
    pub docker: Option<String>,
}

impl Found {
    fn describe(&self) -> String {
        let what = match &self.resource {
            Resource::Dir(p) => format!("server directory {}", p.display()),
            Resource::Container { id, name, image } => {
                format!("container {} {name} (image {image})", docker::short(id))
            }
        };
        match &self.owner {
            Some(o) => format!("{what} of lockimpact pid {}", o.pid),
            None => what,
        }
    }
}

fn state_of(owner: Option<&Owner>, kept: bool) -> State {
    match owner.map(Owner::liveness) {
        None | Some(Liveness::Elsewhere) => State::Foreign,
        Some(Liveness::Alive) => State::InUse(owner.map_or(0, |o| o.pid)),
        Some(Liveness::Gone) if kept => State::Kept,
        Some(Liveness::Gone) => State::Leftover,
    }
}

/// Local server directories in `dir` (TMPDIR): `lockimpact-*` directories
/// with an owner record. Anything else there is not lockimpact's to judge.
pub fn scan_dirs(dir: &Path) -> Vec<Found> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir()); // not through a symlink
        if !is_dir || !entry.file_name().to_string_lossy().starts_with("lockimpact-") {
            continue;
        }
        let Some(owner) = Owner::read_from(&path) else { continue };
        let state = state_of(Some(&owner), path.join(KEPT_FILE).exists());
        found.push(Found { resource: Resource::Dir(path), owner: Some(owner), state });
    }
    found.sort_by_key(|f| format!("{:?}", f.resource));
    found
}

/// Containers labelled `lockimpact=1`.
pub async fn scan_containers() -> Result<Vec<Found>> {
    let mut found = Vec::new();
    for c in docker::containers(&format!("{}=1", docker::LABEL)).await? {
        let Some(id) = c.id else { continue };
        let name =
            c.names.unwrap_or_default().first().map(|n| n.trim_start_matches('/').to_string()).unwrap_or_default();
        let owner = c.labels.as_ref().and_then(Owner::from_labels);
        let state = state_of(owner.as_ref(), name.starts_with(docker::KEPT_PREFIX));
        found.push(Found {
            resource: Resource::Container { id, name, image: c.image.unwrap_or_default() },
            owner,
            state,
        });
    }
    Ok(found)
}

/// Everything in TMPDIR and the Docker engine (if one answers within `limit`).
pub async fn scan(limit: Duration) -> Scan {
    let mut found = scan_dirs(&std::env::temp_dir());
    let docker = match tokio::time::timeout(limit, scan_containers()).await {
        Ok(Ok(c)) => {
            found.extend(c);
            None
        }
        Ok(Err(e)) => Some(e.message),
        Err(_) => {
            Some(format!("no answer from the Docker engine at {} within {} s", docker::docker_host(), limit.as_secs()))
        }
    };
    Scan { found, docker }
}

/// For `run` and `compare`: one note when leftovers of killed runs exist.
pub async fn mention(progress: &Progress) {
    let scan = scan(Duration::from_secs(2)).await;
    let leftovers: Vec<String> =
        scan.found.iter().filter(|f| f.state == State::Leftover).map(Found::describe).collect();
    if !leftovers.is_empty() {
        progress.say(&format!(
            "note: {} leftover(s) of killed lockimpact runs still use this machine ({}); `lockimpact clean` lists \
             and removes them",
            leftovers.len(),
            leftovers.join("; ")
        ));
    }
}

/// `lockimpact clean`: fails (exit 2) when a leftover could not be removed.
pub async fn clean(args: &CleanArgs) -> Result<()> {
    let scan = scan(Duration::from_secs(15)).await;
    if let Some(why) = &scan.docker {
        println!("containers: not checked ({why})");
    }
    let mut failed = 0;
    for f in &scan.found {
        let remove = f.state == State::Leftover || (args.kept && f.state == State::Kept);
        let line = match (&f.state, remove, args.dry_run) {
            (_, true, true) => format!("would remove {}, whose run is gone", f.describe()),
            (_, true, false) => match remove_one(&f.resource).await {
                Ok(how) => format!("removed {}, whose run is gone{how}", f.describe()),
                Err(e) => {
                    failed += 1;
                    format!("could not remove {}: {e}", f.describe())
                }
            },
            (State::Kept, ..) => {
                format!("kept {} (--keep): left alone; `lockimpact clean --kept` removes it", f.describe())
            }
            (State::InUse(pid), ..) => format!("in use {}: lockimpact pid {pid} still runs; left alone", f.describe()),
            _ => format!(
                "left alone {}: it belongs to another machine or pid namespace, or names no owner",
                f.describe()
            ),
        };
        println!("{line}");
    }
    if scan.found.is_empty() {
        println!("no lockimpact server directories in {} and no lockimpact containers", std::env::temp_dir().display());
    }
    if failed > 0 {
        return Err(Error::env(format!("{failed} leftover(s) could not be removed (see above)")));
    }
    Ok(())
}

async fn remove_one(resource: &Resource) -> Result<String> {
    match resource {
        Resource::Container { id, .. } => docker::remove(&docker::client().await?, id).await.map(|_| String::new()),
        Resource::Dir(path) => {
            stop_standbys(path)?;
            let stopped = stop_server(path)?;
            std::fs::remove_dir_all(path).map_err(|e| Error::env(format!("cannot remove {}: {e}", path.display())))?;
            Ok(stopped.map(|pid| format!(" (its server, postmaster pid {pid}, was stopped)")).unwrap_or_default())
        }
    }
}

/// Stops the postmaster of the server in `dir`, if one still runs there;
/// returns its pid. Only a process whose command line names `dir` is signalled.
fn stop_server(dir: &Path) -> Result<Option<i32>> {
    let Ok(text) = std::fs::read_to_string(dir.join("data/postmaster.pid")) else { return Ok(None) };
    let Some(pid) = text.lines().next().and_then(|l| l.trim().parse::<i32>().ok()).filter(|p| *p > 0) else {
        return Ok(None);
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if !String::from_utf8_lossy(&cmdline).contains(&dir.display().to_string()) {
        return Ok(None); // gone, or a pid now used by another process
    }
    // Immediate shutdown (SIGQUIT): the postmaster stops its backends and
    // exits; SIGKILL if it does not within 10 s.
    for (signal, wait) in [(Signal::Quit, 10), (Signal::Kill, 10)] {
        sys::signal(pid, signal);
        let deadline = Instant::now() + Duration::from_secs(wait);
        while Instant::now() < deadline {
            if !sys::process_exists(pid) {
                return Ok(Some(pid));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Err(Error::env(format!("its postmaster (pid {pid}) does not stop")))
}

/// Stops the standbys (`[replica]`) in a server directory first: each
/// `standby-N` holds a `data` directory of its own, like the primary's.
fn stop_standbys(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with(crate::clone::standby::DIR_PREFIX) {
            stop_server(&entry.path())?;
        }
    }
    Ok(())
}
