//! Copy-on-write clone resets for the local backend (and, through
//! `docker_cow`, the docker backend). A fresh copy of the
//! template database by `CREATE DATABASE … TEMPLATE` (`template::fresh_copy`)
//! takes time in proportion to the data. When the local server's directory is
//! on a file system that can share blocks between files (XFS made with
//! `reflink=1`, btrfs), `reset` instead stops the template's server once,
//! cleanly, and starts each run's server on a reflink copy of its data
//! directory (`FICLONE` per file, as `cp --reflink=always` does): the copy
//! takes no space until written, and its time grows with the number of files,
//! not with the data. Elsewhere (ext4, tmpfs, overlayfs, another backend) it
//! falls back to the template copy, and says which method it used and why.
//!
//! `probe` tells whether a directory's file system shares blocks, by cloning
//! a small temp file there; `copy_dir` copies a stopped cluster's data
//! directory by reflinks, keeping each file's owner and mode.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Server;
use super::template::{self, TEMPLATE_DB};
use crate::error::{Error, Result, describe_pg};
pub use crate::run_record::CopyMethod;
use crate::sys;

/// Whether a directory's file system can share blocks between files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// A small file was cloned there.
    Reflink { filesystem: String },
    /// It could not be: the file system, and the error of the attempt.
    Unsupported { filesystem: String, why: String },
}

impl Support {
    pub fn is_supported(&self) -> bool {
        matches!(self, Support::Reflink { .. })
    }

    /// One line: `reflinks supported (xfs)` or why not.
    pub fn describe(&self) -> String {
        match self {
            Support::Reflink { filesystem } => format!("reflinks supported ({filesystem})"),
            Support::Unsupported { filesystem, why } => format!("no reflinks on {filesystem}: {why}"),
        }
    }
}

/// Tries a `FICLONE` of a small temp file in `dir` (both files are removed).
pub fn probe(dir: &Path) -> Support {
    let filesystem = filesystem_name(dir);
    let attempt = || -> io::Result<()> {
        let mut src = tempfile::Builder::new().prefix(".lockimpact-reflink-").tempfile_in(dir)?;
        src.write_all(&[0x5a; 8192])?;
        src.flush()?;
        let dst = tempfile::Builder::new().prefix(".lockimpact-reflink-").tempfile_in(dir)?;
        sys::ficlone(src.as_file(), dst.as_file())
    };
    match attempt() {
        Ok(()) => Support::Reflink { filesystem },
        Err(e) => Support::Unsupported { filesystem, why: format!("FICLONE of a test file in {}: {e}", dir.display()) },
    }
}

/// The file system type of `path`, by name where it is a common one.
pub fn filesystem_name(path: &Path) -> String {
    match sys::filesystem_magic(path) {
        Ok(0x5846_5342) => "xfs".into(),
        Ok(0x9123_683e) => "btrfs".into(),
        Ok(0xef53) => "ext2/ext3/ext4".into(),
        Ok(0x0102_1994) => "tmpfs".into(),
        Ok(0x794c_7630) => "overlayfs".into(),
        Ok(0x2fc1_2fc1) => "zfs".into(),
        Ok(0x6969) => "nfs".into(),
        Ok(magic) => format!("file system type 0x{magic:x}"),
        Err(e) => format!("unknown file system ({e})"),
    }
}

/// What `copy_dir` copied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Copied {
    pub files: u64,
    /// Their apparent size (shared, not written).
    pub bytes: u64,
    pub took: Duration,
}

/// Copies the directory tree `src` (a stopped cluster's data directory) to
/// `dst`, which must not exist, by reflinks: every regular file shares its
/// blocks with the original; directories and files keep their owner and mode.
/// A symbolic link (a tablespace or WAL directory elsewhere, which the copy
/// would share with the original) or any other kind of file is an error.
pub fn copy_dir(src: &Path, dst: &Path) -> Result<Copied> {
    let started = Instant::now();
    let mut copied = Copied::default();
    copy_tree(src, dst, &mut copied).map_err(|(path, e)| {
        Error::env(format!(
            "cannot make a reflink copy of {} in {}: {}: {e}",
            src.display(),
            dst.display(),
            path.display()
        ))
    })?;
    copied.took = started.elapsed();
    Ok(copied)
}

type AtPath = (PathBuf, io::Error);

fn at(path: &Path) -> impl FnOnce(io::Error) -> AtPath + '_ {
    move |e| (path.to_path_buf(), e)
}

fn copy_tree(src: &Path, dst: &Path, copied: &mut Copied) -> std::result::Result<(), AtPath> {
    let meta = fs::symlink_metadata(src).map_err(at(src))?;
    fs::create_dir(dst).map_err(at(dst))?;
    for entry in fs::read_dir(src).map_err(at(src))? {
        let entry = entry.map_err(at(src))?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let m = entry.metadata().map_err(at(&from))?; // not followed: a link is a link
        if m.is_dir() {
            copy_tree(&from, &to, copied)?;
        } else if m.is_file() {
            clone_file(&from, &to, &m).map_err(at(&from))?;
            copied.files += 1;
            copied.bytes += m.len();
        } else {
            let what = if m.file_type().is_symlink() {
                "a symbolic link (a tablespace or WAL directory elsewhere would be shared with the original)"
            } else {
                "neither a file nor a directory"
            };
            return Err((from, io::Error::other(what)));
        }
    }
    same_owner_and_mode(dst, &meta).map_err(at(dst))
}

/// `to` as a reflink of `from`, with its owner and mode.
fn clone_file(from: &Path, to: &Path, meta: &Metadata) -> io::Result<()> {
    let src = File::open(from)?;
    let dst = OpenOptions::new().write(true).create_new(true).mode(0o600).open(to)?;
    if meta.len() > 0 {
        sys::ficlone(&src, &dst)?;
    }
    same_owner_and_mode(to, meta)
}

fn same_owner_and_mode(path: &Path, meta: &Metadata) -> io::Result<()> {
    if meta.uid() != sys::effective_uid() || meta.gid() != fs::metadata(path)?.gid() {
        std::os::unix::fs::lchown(path, Some(meta.uid()), Some(meta.gid()))?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777))
}

/// A run's fresh copy of the template database, named as the run asked,
/// and where it is.
pub struct Reset {
    /// The copy's own server (`Reflink`), or `None`: the database is on the
    /// template's server (`TemplateCopy`).
    pub server: Option<Server>,
    /// From the start of the copy to the copy accepting connections under
    /// its name (for a reflink: copy, server start and the rename).
    pub took: Duration,
    /// For a reflink: from the start of the copy to its server accepting
    /// connections; the rest of `took` is the rename.
    pub started: Option<Duration>,
    pub method: CopyMethod,
    /// Why this method, one line: the file system, or why not a reflink.
    pub why: String,
    /// The clean stop of the template's server, on the first reflink reset
    /// only (once per template; not in `took`).
    pub template_stop: Option<Duration>,
    /// What the reflink copy copied.
    pub copied: Option<Copied>,
}

impl Reset {
    /// A template copy on the template's own server, `why` not a reflink.
    pub fn template_copy(took: Duration, why: String) -> Reset {
        Reset {
            server: None,
            took,
            started: None,
            method: CopyMethod::TemplateCopy,
            why,
            template_stop: None,
            copied: None,
        }
    }

    /// The server the copy is on: its own, or the template's.
    pub fn server<'a>(&'a self, template: &'a Server) -> &'a Server {
        self.server.as_ref().unwrap_or(template)
    }
}

/// Whether `reset` on `template` makes reflink copies: a local server whose
/// directory's file system shares blocks (probed; a server stopped by an
/// earlier reset was found to), or a docker server whose data directory is
/// on such a file system (`docker_cow`).
pub fn support(template: &mut Server) -> Support {
    if let Some(docker) = template.docker_mut() {
        return docker.cow_support();
    }
    match template.local_mut() {
        None => Support::Unsupported { filesystem: "-".into(), why: "not the local or docker backend".into() },
        // Stopped by an earlier reset, which found reflinks there.
        Some(local) if !local.is_running() => Support::Reflink { filesystem: filesystem_name(local.data_dir()) },
        Some(local) => probe(local.data_dir().parent().unwrap_or(local.data_dir())),
    }
}

/// Makes a fresh copy of the template database named `name`: by reflink
/// when `template` is a local server whose directory is on a file system
/// that shares blocks, or a docker server whose data directory is (the
/// first call stops that server cleanly; it stays stopped, and each later
/// call copies its data directory again), else by `template::fresh_copy`
/// on `template`. The copy's own server, if any, is in the result: dropping
/// it stops that server and removes its directory.
pub async fn reset(template: &mut Server, name: &str, cancel: &CancellationToken) -> Result<Reset> {
    let found = support(template);
    let Support::Reflink { filesystem } = found else {
        return copy_template(template, name, found.describe(), cancel).await;
    };
    let (template_stop, started, (server, copied)) = match template.docker_mut() {
        Some(docker) => {
            let stop = if docker.is_running() { Some(docker.stop_cleanly().await?) } else { None };
            let started = Instant::now();
            let (server, copied) = docker.start_on_copy(copy_dir, cancel).await?;
            (stop, started, (Box::new(server) as Server, copied))
        }
        None => {
            let local = template.local_mut().expect("a local server, probed above");
            let stop = if local.is_running() { Some(local.stop_cleanly()?) } else { None };
            let started = Instant::now();
            let (server, copied) = local.start_on_copy(copy_dir)?;
            (stop, started, (Box::new(server) as Server, copied))
        }
    };
    let accepting = started.elapsed();
    rename_template(&server, name).await?;
    let why = format!("reflinks supported ({filesystem}): a copy of the stopped template's server, with its own");
    Ok(Reset {
        server: Some(server),
        took: started.elapsed(),
        started: Some(accepting),
        method: CopyMethod::Reflink,
        why,
        template_stop,
        copied: Some(copied),
    })
}

/// The template database copied to `name` on its own server (`why`: not
/// by reflink); Ctrl-C stops the copy.
pub async fn copy_template(template: &Server, name: &str, why: String, cancel: &CancellationToken) -> Result<Reset> {
    tokio::select! {
        took = template::fresh_copy(template, name) => Ok(Reset::template_copy(took?, why)),
        _ = cancel.cancelled() => Err(Error::interrupted()),
    }
}

/// On a copy's own server, the template database becomes the run's `name`.
async fn rename_template(server: &Server, name: &str) -> Result<()> {
    let admin = template::connect(server, "postgres", "admin").await?;
    for sql in [format!("DROP DATABASE IF EXISTS {name}"), format!("ALTER DATABASE {TEMPLATE_DB} RENAME TO {name}")] {
        admin.batch_execute(&sql).await.map_err(|e| {
            Error::db(format!("on the reflink copy, cannot name the template database {name}: {}", describe_pg(&e)))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_named_as_reports_name_them() {
        assert_eq!(CopyMethod::Reflink.as_str(), "reflink");
        assert_eq!(CopyMethod::TemplateCopy.as_str(), "template_copy");
    }

    #[test]
    fn the_probe_names_the_file_system_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let support = probe(dir.path());
        let fs = filesystem_name(dir.path());
        assert!(support.describe().contains(&fs), "{support:?}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "the probe's files are left behind");
    }

    #[test]
    fn a_symbolic_link_in_the_data_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("data");
        fs::create_dir_all(src.join("pg_tblspc")).unwrap();
        std::os::unix::fs::symlink("/elsewhere", src.join("pg_tblspc").join("16384")).unwrap();
        let err = copy_dir(&src, &dir.path().join("copy")).unwrap_err().to_string();
        assert!(err.contains("pg_tblspc/16384: a symbolic link"), "{err}");
    }
}
