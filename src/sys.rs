//! Every call into the C library, behind small safe functions: the user
//! database (reentrant lookups), signals, a thread's timer slack and priority,
//! the resources a process used, and the file system calls of copy-on-write
//! clones (`FICLONE`, `statfs`). The rest of the crate denies
//! `unsafe_code` (Cargo.toml's `[lints]`); this module is where it is audited.

// The one module allowed `unsafe`: FFI calls cannot be made without it. Each
// block says why it is sound.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

/// A user account, from the password database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

/// The effective user id of this process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid takes no arguments, always succeeds and touches no memory.
    unsafe { libc::geteuid() }
}

/// The account of the effective user, if the password database has one.
pub fn effective_user() -> Option<User> {
    let uid = effective_uid();
    lookup_user(&|pw, buf, len, found| {
        // SAFETY: `pw`, `buf` (`len` bytes) and `found` point to storage that
        // `lookup_user` owns and keeps alive for the call.
        unsafe { libc::getpwuid_r(uid, pw, buf, len, found) }
    })
}

/// The account named `name`, if the password database has one.
pub fn user_named(name: &str) -> Option<User> {
    let name = CString::new(name).ok()?;
    lookup_user(&|pw, buf, len, found| {
        // SAFETY: `name` is NUL-terminated and outlives the call; `pw`, `buf`
        // (`len` bytes) and `found` point to storage that `lookup_user` owns
        // and keeps alive for the call.
        unsafe { libc::getpwnam_r(name.as_ptr(), pw, buf, len, found) }
    })
}

type PwCall<'a> =
    dyn Fn(*mut libc::passwd, *mut libc::c_char, libc::size_t, *mut *mut libc::passwd) -> libc::c_int + 'a;

/// Runs a `getpw*_r` call with a buffer that grows while it is too small
/// (`ERANGE`), and copies the entry out of it.
fn lookup_user(call: &PwCall<'_>) -> Option<User> {
    let mut len = 1024;
    loop {
        let mut buf = vec![0 as libc::c_char; len];
        // SAFETY: `passwd` holds only integers and pointers, for which all
        // zeros is a valid value; the call overwrites it.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        match call(&mut pw, buf.as_mut_ptr(), buf.len(), &mut found) {
            libc::ERANGE if len < 1 << 20 => len *= 4,
            0 if !found.is_null() => {
                // SAFETY: on success the entry's strings are NUL-terminated and
                // live in `buf`, which is alive here; they are copied at once.
                let (name, home) = unsafe { (c_bytes(pw.pw_name), c_bytes(pw.pw_dir)) };
                return Some(User {
                    name: String::from_utf8_lossy(name).into_owned(),
                    uid: pw.pw_uid,
                    gid: pw.pw_gid,
                    home: PathBuf::from(OsStr::from_bytes(home)),
                });
            }
            _ => return None, // no such user, or the database cannot be read
        }
    }
}

/// The bytes of a C string, empty for a null pointer.
///
/// # Safety
/// `p` is null or points to a NUL-terminated string that outlives the result.
unsafe fn c_bytes<'a>(p: *const libc::c_char) -> &'a [u8] {
    if p.is_null() {
        return &[];
    }
    // SAFETY: non-null, and NUL-terminated and alive by the caller's contract.
    unsafe { CStr::from_ptr(p) }.to_bytes()
}

/// The signals the tool sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Term,
    Kill,
    /// PostgreSQL's immediate shutdown.
    Quit,
    /// Wakes a stopped process.
    Cont,
}

impl Signal {
    fn raw(self) -> libc::c_int {
        match self {
            Signal::Term => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
            Signal::Quit => libc::SIGQUIT,
            Signal::Cont => libc::SIGCONT,
        }
    }
}

/// Sends `signal` to process `pid`; false when it was not sent (no such
/// process, not ours). A pid ≤ 0 (a process group, or every process) is
/// refused: `signal_group` is for groups.
pub fn signal(pid: i32, signal: Signal) -> bool {
    pid > 0 && kill(pid, signal.raw())
}

/// Sends `signal` to every process of group `pgid`; false when it was not sent.
pub fn signal_group(pgid: u32, signal: Signal) -> bool {
    match i32::try_from(pgid) {
        Ok(g) if g > 0 => kill(-g, signal.raw()),
        _ => false,
    }
}

/// Whether process `pid` exists and may be signalled by us (`kill(pid, 0)`).
pub fn process_exists(pid: i32) -> bool {
    pid > 0 && kill(pid, 0)
}

fn kill(pid: i32, sig: libc::c_int) -> bool {
    // SAFETY: kill takes plain integers and touches no memory of ours; the
    // callers decide which pids are meant.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// Sets the calling thread's timer slack: how late a sleep may wake, to merge
/// wake-ups (Linux's default is 50 µs).
pub fn set_timer_slack(slack: Duration) {
    let ns = slack.as_nanos().min(libc::c_ulong::MAX as u128) as libc::c_ulong;
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and changes only
    // the calling thread's timer slack.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns) };
}

/// Sets the calling thread's nice value; false when refused (a negative one
/// needs CAP_SYS_NICE).
pub fn set_thread_nice(nice: i32) -> bool {
    // SAFETY: gettid takes no arguments and always succeeds.
    let tid = unsafe { libc::gettid() };
    // SAFETY: setpriority takes plain integers; with PRIO_PROCESS and a thread
    // id it changes only that thread.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) == 0 }
}

/// What a process used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// User + system CPU time.
    pub cpu: Duration,
    /// Peak resident set size, KiB.
    pub maxrss_kb: u64,
}

impl Usage {
    fn from_raw(ru: &libc::rusage) -> Usage {
        Usage { cpu: duration(ru.ru_utime) + duration(ru.ru_stime), maxrss_kb: ru.ru_maxrss.max(0) as u64 }
    }
}

fn duration(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

/// What this process has used so far.
pub fn own_usage() -> Usage {
    // SAFETY: `rusage` holds only integers, for which all zeros is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a live, writable rusage; RUSAGE_SELF cannot fail.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    Usage::from_raw(&ru)
}

/// The CPU time process `pid`'s threads have used so far, to the
/// nanosecond: the first field of each `/proc/<pid>/task/<tid>/schedstat`
/// (`/proc/<pid>/stat` counts in 10 ms ticks, too coarse for a few polls).
pub fn process_cpu(pid: u32) -> io::Result<Duration> {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path().join("schedstat");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // the thread ended meanwhile
            Err(e) => return Err(e),
        };
        let first = text.split_whitespace().next().and_then(|f| f.parse::<u64>().ok());
        ns += first.ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("unexpected {}: {text:?}", path.display()))
        })?;
    }
    Ok(Duration::from_nanos(ns))
}

/// Waits for child `pid` to end; returns its exit code (or 128 + the signal
/// that ended it) and what it used. The child must not be reaped elsewhere.
pub fn wait_child(pid: i32) -> io::Result<(i32, Usage)> {
    let mut status = 0;
    // SAFETY: `rusage` holds only integers, for which all zeros is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `status` and `ru` are live and writable for the call.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    if r != pid {
        return Err(io::Error::last_os_error());
    }
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) };
    Ok((code, Usage::from_raw(&ru)))
}

/// Makes `dst` share `src`'s data blocks (Linux `FICLONE`, a reflink): a
/// copy-on-write copy that takes no space until one of them is written.
/// `dst` must be a regular file open for writing on the same file system as
/// `src`; `EOPNOTSUPP`/`EINVAL` mean that file system cannot share blocks,
/// `EXDEV` that the two are on different ones.
pub fn ficlone(src: &std::fs::File, dst: &std::fs::File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: both descriptors are open for the whole call (the borrows keep
    // the files alive); FICLONE takes the source descriptor as its argument
    // by value and touches no memory of ours.
    match unsafe { libc::ioctl(dst.as_raw_fd(), libc::FICLONE, src.as_raw_fd()) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// The magic number of the file system holding `path` (`statfs`'s `f_type`:
/// 0x58465342 XFS, 0x9123683e btrfs, 0xef53 ext2/3/4, 0x01021994 tmpfs, …).
pub fn filesystem_magic(path: &std::path::Path) -> io::Result<u64> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: `statfs` holds only integers, for which all zeros is valid.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `st` is live and writable for the call.
    match unsafe { libc::statfs(c.as_ptr(), &mut st) } {
        0 => Ok(st.f_type as u64),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Creates a FIFO (named pipe) at `path`.
#[cfg(test)]
pub fn mkfifo(path: &std::path::Path, mode: u32) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: `c` is NUL-terminated and outlives the call.
    match unsafe { libc::mkfifo(c.as_ptr(), mode as libc::mode_t) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_cpu_time_grows_with_the_work_it_does() {
        let pid = std::process::id();
        let before = process_cpu(pid).unwrap();
        let start = own_usage().cpu;
        let mut x = 0u64;
        while own_usage().cpu - start < Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let used = process_cpu(pid).unwrap() - before;
        assert!(used >= Duration::from_millis(250), "{used:?} by /proc for 300 ms by getrusage");
        assert!(process_cpu(u32::MAX).is_err());
    }

    #[test]
    fn the_effective_user_is_found_by_id_and_by_name() {
        let me = effective_user().expect("the effective user has an entry");
        assert_eq!(me.uid, effective_uid());
        assert_eq!(user_named(&me.name), Some(me));
        assert_eq!(user_named("no-such-user-lockimpact"), None);
        assert_eq!(user_named("nul\0inside"), None);
    }

    #[test]
    fn pids_that_name_groups_are_refused() {
        assert!(!signal(0, Signal::Cont));
        assert!(!signal(-1, Signal::Cont));
        assert!(!process_exists(0));
        assert!(!signal_group(0, Signal::Cont));
        assert!(process_exists(std::process::id() as i32));
    }

    #[test]
    #[allow(clippy::zombie_processes)] // wait_child reaps it
    fn a_child_is_reaped_with_its_exit_code() {
        let child = std::process::Command::new("sh").args(["-c", "exit 7"]).spawn().unwrap();
        let (code, usage) = wait_child(child.id() as i32).unwrap();
        assert_eq!(code, 7);
        assert!(usage.maxrss_kb > 0);
        assert!(own_usage().cpu > Duration::ZERO);
    }
}
