//! Files the tool reads and writes, as a leaf every command uses (`text`:
//! text files and TOML messages; `dur`: the duration type of every format).
//!
//! Inputs (scenario, workload, migration, seed, scripts, logs, replays) are
//! read from regular files only, up to a size limit: a FIFO would block the
//! run and `/dev/zero` would be read until memory runs out.
//!
//! Outputs (reports, recorded workloads) are resolved and checked before the
//! work starts — not a directory, not a symlink loop, in a directory the tool
//! can write, not one of the run's inputs — and written atomically: a
//! temporary file in the destination's directory, then a rename, so a failed
//! write (a full disk) leaves the previous file as it was. A FIFO or a device
//! (`/dev/stdout`, `/dev/null`) as a destination is written in place.

use std::fs::Metadata;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub mod dur;
pub mod text;

/// Largest text input read whole: a scenario, workload, migration, seed script
/// or pgbench script.
pub const TEXT_LIMIT: u64 = 256 << 20;

/// Largest recording read whole: a PostgreSQL log (`lockimpact record log`)
/// or a session replay.
pub const RECORDING_LIMIT: u64 = 4 << 30;

/// What a path is, when it is not a regular file.
fn kind(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// Reads the `what` at `path` whole: a regular file of at most `limit` bytes.
/// Opening does not block (a FIFO is refused, not waited on).
pub fn read_input(path: &Path, what: &str, limit: u64) -> Result<Vec<u8>> {
    let fail = |e: io::Error| Error::input(format!("{}: cannot read the {what}: {e}", path.display()));
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).map_err(fail)?;
    let meta = file.metadata().map_err(fail)?;
    if !meta.is_file() {
        return Err(Error::input(format!(
            "{}: the {what} is {}; lockimpact reads its inputs from regular files only (a pipe or a device \
             may block or never end)",
            path.display(),
            kind(&meta)
        )));
    }
    let too_big = |size: u64| {
        Error::input(format!(
            "{}: the {what} is {} ({size} bytes), more than the {} lockimpact reads for a {what}",
            path.display(),
            mib(size),
            mib(limit)
        ))
    };
    if meta.len() > limit {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(fail)?;
    if bytes.len() as u64 > limit {
        return Err(too_big(bytes.len() as u64)); // it grew while being read
    }
    Ok(bytes)
}

/// The metadata of a regular file or a directory; a FIFO or a device is
/// refused without being opened. `what` names it in messages.
pub fn file_or_dir(path: &Path, what: &str) -> Result<Metadata> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::input(format!("{}: cannot read the {what}: {e}", path.display())))?;
    if meta.is_file() || meta.is_dir() {
        return Ok(meta);
    }
    Err(Error::input(format!(
        "{}: the {what} is {}; use a regular file (or a pg_dump directory)",
        path.display(),
        kind(&meta)
    )))
}

/// Whether `a` and `b` are the same file (through links and symlinks);
/// false when either does not exist.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// An output path, checked and resolved before the work starts.
#[derive(Debug, Clone)]
pub struct Destination {
    /// As the user gave it, for messages.
    pub shown: PathBuf,
    target: Target,
}

#[derive(Debug, Clone)]
enum Target {
    /// A regular file (existing, or new) at this resolved path (symlinks
    /// followed), written atomically; `mode` of the file it replaces.
    File { path: PathBuf, mode: Option<u32> },
    /// A FIFO or a device, written in place.
    Special(PathBuf),
}

impl Destination {
    /// Checks `path` as an output: it must not be a directory, a symlink loop
    /// or a dangling symlink, nor any of `inputs`; its directory must exist and
    /// take a new file. `flag` names the option in messages (`--out`).
    pub fn check(path: &Path, flag: &str, inputs: &[PathBuf]) -> Result<Destination> {
        let shown = path.display();
        let refuse = |why: String| Error::input(format!("{flag} {shown}: {why}"));
        let target = match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                return Err(refuse("is a directory; give the name of a file to write (in it, or elsewhere)".into()));
            }
            Ok(meta) if meta.is_file() => {
                let resolved = std::fs::canonicalize(path).map_err(|e| refuse(format!("cannot resolve it: {e}")))?;
                Target::File { path: resolved, mode: Some(meta.permissions().mode() & 0o7777) }
            }
            Ok(_) => Target::Special(path.to_path_buf()),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(refuse("is a symlink loop (a link that leads back to itself); remove it".into()));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Ok(link) = std::fs::read_link(path) {
                    return Err(refuse(format!(
                        "is a symlink to {}, which does not exist; create that file or remove the link",
                        link.display()
                    )));
                }
                let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
                if !dir.is_dir() {
                    return Err(refuse(format!("directory {} does not exist", dir.display())));
                }
                let (Ok(dir), Some(name)) = (std::fs::canonicalize(dir), path.file_name()) else {
                    return Err(refuse("is not a file name".into()));
                };
                Target::File { path: dir.join(name), mode: None }
            }
            Err(e) => return Err(refuse(format!("cannot use it: {e}"))),
        };
        if let Some(input) = inputs.iter().find(|i| same_file(path, i)) {
            return Err(refuse(format!(
                "is {}, an input of this run; writing the report there would overwrite it. Choose another file",
                input.display()
            )));
        }
        if let Target::File { path: p, .. } = &target {
            let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            temp_in(dir, None).map_err(|e| refuse(format!("cannot write in directory {}: {e}", dir.display())))?;
        }
        Ok(Destination { shown: path.to_path_buf(), target })
    }

    /// Whether both name the same file.
    pub fn same_as(&self, other: &Destination) -> bool {
        let path = |t: &Target| match t {
            Target::File { path, .. } | Target::Special(path) => path.clone(),
        };
        path(&self.target) == path(&other.target) || same_file(&self.shown, &other.shown)
    }

    /// Writes the file with `fill`: atomically for a regular file (the old
    /// file stays whole if anything fails), in place for a FIFO or a device.
    pub fn write(&self, fill: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
        match &self.target {
            Target::Special(p) => {
                let mut w = io::BufWriter::new(std::fs::OpenOptions::new().write(true).open(p)?);
                fill(&mut w)?;
                w.flush()
            }
            Target::File { path, mode } => {
                let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
                let tmp = temp_in(dir, *mode)?;
                let mut w = io::BufWriter::new(tmp.as_file());
                fill(&mut w)?;
                w.flush()?;
                drop(w);
                if let Some(m) = mode {
                    // Created under the umask: give it the replaced file's mode exactly.
                    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(*m))?;
                }
                tmp.as_file().sync_all()?;
                tmp.persist(path).map_err(|e| e.error)?;
                Ok(())
            }
        }
    }
}

/// A hidden temporary file in `dir`, removed unless persisted; `mode` (under
/// the umask) defaults to what a new file gets (0666 minus the umask).
fn temp_in(dir: &Path, mode: Option<u32>) -> io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(".lockimpact-")
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(mode.unwrap_or(0o666)))
        .tempfile_in(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_keeps_the_old_file_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        std::fs::write(&path, "old report").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let d = Destination::check(&path, "--out", &[]).unwrap();
        let err = d.write(|w: &mut dyn Write| {
            w.write_all(b"half a rep")?;
            Err(io::Error::other("disk full"))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old report");
        d.write(|w: &mut dyn Write| w.write_all(b"new report")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new report");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("r.json")]);
    }

    #[test]
    fn a_symlinked_output_is_written_through_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        std::fs::write(&real, "old").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        Destination::check(&link, "--out", &[]).unwrap().write(|w: &mut dyn Write| w.write_all(b"new")).unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
    }

    #[test]
    fn fifo_and_devices_are_refused_as_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.sql");
        crate::sys::mkfifo(&fifo, 0o600).unwrap();
        let e = read_input(&fifo, "migration file", TEXT_LIMIT).unwrap_err();
        assert!(e.message.contains("is a FIFO (named pipe)"), "{}", e.message);
        let e = read_input(Path::new("/dev/zero"), "seed script", TEXT_LIMIT).unwrap_err();
        assert!(e.message.contains("is a character device"), "{}", e.message);
        let big = dir.path().join("big.sql");
        std::fs::File::create(&big).unwrap().set_len(TEXT_LIMIT + 1).unwrap();
        let e = read_input(&big, "seed script", TEXT_LIMIT).unwrap_err();
        assert!(e.message.contains("more than the 256 MiB"), "{}", e.message);
    }
}
