//! Copy-on-write clone resets (`clone::reflink`) on file systems the tests
//! make themselves: a loop-mounted XFS image made with `mkfs.xfs -m
//! reflink=1`, and an ext4 one for the fallback. Each test attaches its image
//! to a loop device and mounts it, and unmounts and detaches it on every way
//! out (a guard's drop, after the servers on it are gone).
//!
//! - on XFS a reset gives a server of its own whose data equals the
//!   template's, shares the template's blocks (the file system's used space
//!   barely moves; `filefrag` marks the extents shared), and is isolated from
//!   the next copy; dropping it stops the server and removes its directory;
//! - on ext4 the probe says no, and the reset falls back to the template copy
//!   on the template's own (still running) server.
//!
//! They need root (mount, losetup), loop devices and xfsprogs (`bash
//! scripts/setup --tests` installs it); without them each is *ignored* after
//! a SKIPPED line saying why, and fails instead with `CI` or
//! `LOCKIMPACT_REQUIRE_REFLINK` set.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::{gated, required};
use libtest_mimic::Trial;
use lockimpact::clone::local::LocalServer;
use lockimpact::clone::reflink::{self, CopyMethod};
use lockimpact::clone::template;
use lockimpact::clone::{ClonePlan, Server};

/// Every test of this file, by name.
const TESTS: &[(&str, fn())] = &[
    ("a_reflink_reset_on_xfs_shares_the_templates_blocks", a_reflink_reset_on_xfs_shares_the_templates_blocks),
    ("ext4_has_no_reflinks_and_the_reset_copies_the_template", ext4_has_no_reflinks_and_the_reset_copies_the_template),
    ("a_run_and_its_stop_points_each_get_a_reflink_copy", a_run_and_its_stop_points_each_get_a_reflink_copy),
];

/// The reflink tests, gated on root, loop devices and mkfs.xfs.
pub fn trials() -> Vec<Trial> {
    loop_fs_trials("reflink", TESTS)
}

/// `tests` as trials of `module`, gated on root, loop devices and mkfs.xfs
/// (`LOCKIMPACT_REQUIRE_REFLINK` makes their absence a failure).
pub fn loop_fs_trials(module: &str, tests: &[(&'static str, fn())]) -> Vec<Trial> {
    let available = what_is_missing().map_or(Ok(()), Err);
    let required = required("LOCKIMPACT_REQUIRE_REFLINK");
    if let Err(why) = &available
        && !required
    {
        eprintln!(
            "SKIPPED: the {module} tests mount loop file systems: {why}\n\
             (set CI=1 or LOCKIMPACT_REQUIRE_REFLINK=1 to make that a failure)"
        );
    }
    let available = available.map_err(|why| format!("CI requires the {module} tests to run: {why}"));
    let tests = tests.iter().map(|&(name, test)| (name, Box::new(test) as Box<dyn FnOnce() + Send>));
    gated(module, tests, available, required)
}

pub fn what_is_missing() -> Option<String> {
    if unsafe { libc::geteuid() } != 0 {
        return Some("they need root (mount, losetup)".into());
    }
    if !Path::new("/dev/loop-control").exists() {
        return Some("no loop devices (/dev/loop-control)".into());
    }
    let mut tools = Command::new("sh");
    tools.args(["-c", "command -v mkfs.xfs && command -v mkfs.ext4 && command -v losetup"]);
    if !tools.output().map(|o| o.status.success()).unwrap_or(false) {
        return Some("mkfs.xfs, mkfs.ext4 or losetup is missing (xfsprogs: bash scripts/setup --tests)".into());
    }
    None
}

/// A file system image attached to a loop device and mounted; dropping it
/// unmounts it, detaches the device and removes the image.
pub struct LoopFs {
    dir: tempfile::TempDir,
    device: String,
    mounted: bool,
}

impl LoopFs {
    pub fn new(kind: &str, mkfs_args: &[&str], megabytes: u64) -> LoopFs {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new().prefix("li-test-loop-").tempdir_in("/tmp").unwrap();
        // The server runs as postgres, which must reach the mount point.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let image = dir.path().join(format!("{kind}.img"));
        std::fs::File::create(&image).unwrap().set_len(megabytes << 20).unwrap(); // sparse
        let mkfs = Command::new(format!("mkfs.{kind}")).args(mkfs_args).arg(&image).output().unwrap();
        assert!(mkfs.status.success(), "mkfs.{kind}: {}", String::from_utf8_lossy(&mkfs.stderr));
        let attach = Command::new("losetup").args(["--find", "--show"]).arg(&image).output().unwrap();
        assert!(attach.status.success(), "losetup: {}", String::from_utf8_lossy(&attach.stderr));
        let mut fs = LoopFs { device: String::from_utf8_lossy(&attach.stdout).trim().to_string(), dir, mounted: false };
        std::fs::create_dir(fs.mount()).unwrap();
        let mount = Command::new("mount").arg(&fs.device).arg(fs.mount()).output().unwrap();
        assert!(mount.status.success(), "mount {}: {}", fs.device, String::from_utf8_lossy(&mount.stderr));
        fs.mounted = true;
        fs
    }

    pub fn mount(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// Bytes in use on the file system (df).
    fn used(&self) -> u64 {
        let out = Command::new("df").args(["-B1", "--output=used"]).arg(self.mount()).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        if self.mounted && !Command::new("umount").arg(self.mount()).status().is_ok_and(|s| s.success()) {
            let _ = Command::new("umount").arg("-l").arg(self.mount()).status();
        }
        let _ = Command::new("losetup").arg("-d").arg(&self.device).status();
    }
}

/// A local server whose directory is under `base`.
fn server_in(base: &Path) -> Server {
    Box::new(LocalServer::start_in(&ClonePlan::local(), base).unwrap())
}

/// Row counts and a checksum of the orders dataset's tables.
async fn fingerprint(server: &Server, db: &str) -> (i64, i64, i64) {
    let c = client(server, db).await;
    let q = "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM customers), \
             (SELECT sum(hashtext(o::text)::int8) FROM orders o)::int8";
    let r = c.query_one(q, &[]).await.unwrap();
    (r.get(0), r.get(1), r.get(2))
}

/// The server's directory and postmaster pid, to check they are gone after its drop.
fn whereabouts(server: &mut Server) -> (PathBuf, i32) {
    let local = server.local_mut().expect("a local server");
    (local.dir().unwrap().to_path_buf(), local.pid())
}

fn assert_removed(dir: &Path, pid: i32) {
    assert!(wait_gone(pid), "the copy's postmaster {pid} still runs");
    assert!(!dir.exists(), "the copy's directory {} is left behind", dir.display());
}

/// Data of the template on a copy of its own, sharing its blocks; a second
/// copy does not see what the first one changed; both are removed on drop.
fn a_reflink_reset_on_xfs_shares_the_templates_blocks() {
    let fs = LoopFs::new("xfs", &["-q", "-m", "reflink=1"], 1024);
    assert_eq!(reflink::probe(&fs.mount()), reflink::Support::Reflink { filesystem: "xfs".into() });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut template = server_in(&fs.mount());
        let seed = orders_seed(300_000, 5_000);
        let dataset = template::build(&template, &seed, Path::new("seed.sql")).await.unwrap();
        let bytes = dataset.bytes.unwrap() as u64;
        assert!(bytes > 30 << 20, "a dataset of {bytes} bytes is too small to show shared space");
        let expected = fingerprint(&template, template::TEMPLATE_DB).await;

        let before = fs.used();
        let mut first =
            reflink::reset(&mut template, "run_1", &tokio_util::sync::CancellationToken::new()).await.unwrap();
        assert_eq!(first.method, CopyMethod::Reflink, "{}", first.why);
        assert!(first.template_stop.is_some(), "the first reset stops the template's server");
        assert!(!template.local_mut().unwrap().is_running());
        let copied = first.copied.clone().unwrap();
        assert!(copied.bytes > bytes, "copied {copied:?} of a {bytes}-byte database");
        let copy = first.server.take().unwrap();
        assert_eq!(fingerprint(&copy, "run_1").await, expected);
        let grown = fs.used().saturating_sub(before);
        assert!(grown < copied.bytes / 10, "the copy took {grown} bytes of {} copied", copied.bytes);
        let frag = filefrag(&largest_relation(&copy));
        assert!(frag.contains("shared"), "filefrag shows no shared extents:\n{frag}");

        client(&copy, "run_1").await.batch_execute("DELETE FROM orders WHERE id <= 1000").await.unwrap();
        let second = reflink::reset(&mut template, "run_2", &tokio_util::sync::CancellationToken::new()).await.unwrap();
        assert_eq!(second.method, CopyMethod::Reflink);
        assert!(second.why.contains("reflinks supported (xfs)"), "{}", second.why);
        assert!(second.template_stop.is_none(), "the template stays stopped");
        let mut second_copy = second.server.unwrap();
        assert_eq!(fingerprint(&second_copy, "run_2").await, expected, "the second copy sees the first's changes");

        let mut copy = copy;
        let (dir, pid) = whereabouts(&mut copy);
        drop(copy);
        assert_removed(&dir, pid);
        let (dir, pid) = whereabouts(&mut second_copy);
        drop(second_copy);
        assert_removed(&dir, pid);
        let template_dir = whereabouts(&mut template).0;
        drop(template);
        assert!(!template_dir.exists(), "the template's directory is left behind");
    });
    drop(rt);
    drop(fs);
}

/// The copy's largest relation file (where `filefrag` must find shared extents).
fn largest_relation(server: &Server) -> PathBuf {
    let Some(lockimpact::clone::restore::Tools::Local { socket_dir, .. }) = server.tools() else { panic!("local") };
    largest_file(&socket_dir.join("data").join("base"))
}

fn largest_file(dir: &Path) -> PathBuf {
    let mut best = (0, dir.to_path_buf());
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let path = e.path();
        let m = std::fs::symlink_metadata(&path).unwrap();
        let candidate = if m.is_dir() { largest_file(&path) } else { path };
        let len = std::fs::metadata(&candidate).map(|m| m.len()).unwrap_or(0);
        if len > best.0 {
            best = (len, candidate);
        }
    }
    best.1
}

fn filefrag(file: &Path) -> String {
    let out = Command::new("filefrag").arg("-v").arg(file).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// On ext4 the probe finds no reflinks: the reset is a template copy on the
/// template's own server, which keeps running.
fn ext4_has_no_reflinks_and_the_reset_copies_the_template() {
    let fs = LoopFs::new("ext4", &["-q", "-F"], 256);
    let support = reflink::probe(&fs.mount());
    assert!(!support.is_supported(), "{support:?}");
    assert!(support.describe().contains("no reflinks on ext2/ext3/ext4"), "{}", support.describe());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut template = server_in(&fs.mount());
        template::build(&template, &orders_seed(2_000, 100), Path::new("seed.sql")).await.unwrap();
        let expected = fingerprint(&template, template::TEMPLATE_DB).await;
        let reset = reflink::reset(&mut template, "run_1", &tokio_util::sync::CancellationToken::new()).await.unwrap();
        assert_eq!(reset.method, CopyMethod::TemplateCopy);
        assert_eq!(reset.method.as_str(), "template_copy");
        assert!(reset.why.contains("ext2/ext3/ext4"), "{}", reset.why);
        assert!(reset.server.is_none() && reset.copied.is_none() && reset.template_stop.is_none());
        assert!(template.local_mut().unwrap().is_running(), "the template's server keeps running");
        assert_eq!(fingerprint(reset.server(&template), "run_1").await, expected);
        let (dir, pid) = whereabouts(&mut template);
        drop(template);
        assert_removed(&dir, pid);
    });
    drop(rt);
    drop(fs);
}

/// `lockimpact run` with its temporary directory on XFS: the rehearsal and
/// each `--fail-at` stop point run on a reflink copy of their own, the
/// report says so, and nothing is left on the file system afterwards.
fn a_run_and_its_stop_points_each_get_a_reflink_copy() {
    let fs = LoopFs::new("xfs", &["-q", "-m", "reflink=1"], 1024);
    let dir = tempfile::tempdir().unwrap();
    let sql = "-- lockimpact: transaction step\n-- lockimpact: step \"add column\"\n\
               ALTER TABLE orders ADD COLUMN note text;\n-- lockimpact: down\nALTER TABLE orders DROP COLUMN note;\n";
    let scenario = tiny_scenario(dir.path(), sql, "");
    let json = dir.path().join("report.json");
    let out = bin()
        .env("TMPDIR", fs.mount())
        .arg("run")
        .arg(&scenario)
        .args(["--fail-at", "1:end", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code().is_some_and(|c| c <= 1), "{stderr}");
    assert_eq!(stderr.matches("fresh copy: reflink").count(), 2, "{stderr}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["dataset"]["copy_method"], "reflink", "{}", r["dataset"]);
    assert!(r["dataset"]["copy_why"].as_str().unwrap().contains("xfs"));
    assert_eq!(r["stop_points"][0]["rollback"]["clean"], true, "{}", r["stop_points"]);
    assert_nothing_left(&fs);
    drop(fs);
}

/// Nothing but `lost+found` on the file system, and no process working in
/// it (a postmaster's working directory is its data directory).
pub fn assert_nothing_left(fs: &LoopFs) {
    let left: Vec<_> = std::fs::read_dir(fs.mount()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.iter().all(|n| n == "lost+found"), "left on the file system: {left:?}");
    let inside: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|p| std::fs::read_link(p.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(fs.mount())))
        .map(|p| p.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(inside.is_empty(), "processes still work on the file system: pids {inside:?}");
}
