//! Tests that only root can run: they mount a file system, or run the server
//! and a client as other users (initdb refuses root, so as root the tool
//! runs the server as `postgres`). Run as another user, they are *ignored*
//! with a SKIPPED line that says why (the `env` binary's libtest-mimic
//! harness, as `docker`); with `CI` or `LOCKIMPACT_REQUIRE_ROOT` set they
//! fail instead, so CI (which runs as root) cannot pass them without running
//! them.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::common::*;
use crate::{gated, required};
use libtest_mimic::Trial;
use lockimpact::clone::ClonePlan;
use lockimpact::clone::{self, restore::Tools};

/// Every test of this file, by name.
const TESTS: &[(&str, fn())] = &[
    ("other_users_cannot_reach_the_local_clone", other_users_cannot_reach_the_local_clone),
    ("a_tmpdir_the_postgres_user_cannot_enter_is_named", a_tmpdir_the_postgres_user_cannot_enter_is_named),
    (
        "a_full_disk_during_restore_is_explained_with_the_server_log",
        a_full_disk_during_restore_is_explained_with_the_server_log,
    ),
];

/// The root tests, gated on running as root.
pub fn trials() -> Vec<Trial> {
    let root = unsafe { libc::geteuid() } == 0;
    let required = required("LOCKIMPACT_REQUIRE_ROOT");
    if !root && !required {
        eprintln!(
            "SKIPPED: these tests need root (they mount a tmpfs and run processes as other users)\n\
             (set CI=1 or LOCKIMPACT_REQUIRE_ROOT=1 to make that a failure)"
        );
    }
    let root = if root { Ok(()) } else { Err("CI requires root for this test".to_string()) };
    let tests = TESTS.iter().map(|&(name, test)| (name, Box::new(test) as Box<dyn FnOnce() + Send>));
    gated("as_root", tests, root, required)
}

const REHEARSED: &str = "ALTER TABLE orders ADD COLUMN rehearsed int;\n";

/// 14.3: another local user (nobody) reaches the local clone neither over TCP
/// (the superuser needs its password) nor over the socket (its directory is
/// private to the user the server runs as).
fn other_users_cannot_reach_the_local_clone() {
    assert!(Command::new("id").arg("nobody").output().unwrap().status.success(), "this test needs a user nobody");
    let server = clone::start(&ClonePlan::local(), &|_| {}).unwrap();
    let Some(Tools::Local { socket_dir, port, bin_dir, .. }) = server.tools() else { panic!("local") };
    let psql = |host: &str| {
        let out = Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(bin_dir.join("psql"))
            .args(["-w", "-h", host, "-p", &port.to_string(), "-U", "postgres", "-c", "SELECT 1", "postgres"])
            .current_dir("/")
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, err) = psql("127.0.0.1");
    assert!(!ok && err.contains("no password supplied"), "user nobody over TCP: {err}");
    let (ok, err) = psql(socket_dir.to_str().unwrap());
    assert!(!ok && err.contains("Permission denied"), "user nobody over the socket: {err}");
}

/// 14.12: a TMPDIR inside a directory the postgres user cannot enter is
/// named as such (as root, the server runs as postgres).
fn a_tmpdir_the_postgres_user_cannot_enter_is_named() {
    let private = tempfile::Builder::new().prefix("li-test-private-").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let tmp = private.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = tiny_scenario(dir.path(), REHEARSED, "");
    let out = bin().arg("run").arg(&s).env("TMPDIR", &tmp).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let named = format!(
        "the postgres user, which runs the server because initdb refuses to run as root, cannot enter {}",
        private.path().display()
    );
    assert!(err.contains(&named), "{err}");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "left behind in {}", tmp.display());
}

/// A full disk during a restore: the clone's TMPDIR is a small tmpfs (root
/// only: it mounts one), the dump is bigger than what is left. The error says
/// so, with the server's own log lines, and nothing is left behind.
fn a_full_disk_during_restore_is_explained_with_the_server_log() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("big.dump");
    // A ~60 MB table, dumped compressed from a server on the normal disk.
    {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let server = clone::start(&lockimpact::clone::ClonePlan::local(), &|_| {}).unwrap();
        rt.block_on(async {
            let (c, conn) = server.config("postgres").connect(tokio_postgres::NoTls).await.unwrap();
            let task = tokio::spawn(conn);
            c.batch_execute(
                "CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 4) AS t FROM generate_series(1, 400000) g",
            )
            .await
            .unwrap();
            drop(c);
            let _ = task.await;
        });
        let Some(Tools::Local { bin_dir, socket_dir, port, .. }) = server.tools() else { panic!("local") };
        let status = std::process::Command::new(bin_dir.join("pg_dump"))
            .arg("-h")
            .arg(&socket_dir)
            .args(["-p", &port.to_string(), "-U", "postgres", "-d", "postgres", "-Fc", "-f"])
            .arg(&dump)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let small = tempfile::Builder::new().prefix("li-full-").tempdir_in("/tmp").unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=72m,mode=1777", "tmpfs"])
        .arg(small.path())
        .status()
        .unwrap();
    assert!(mounted.success(), "mount a tmpfs");
    std::fs::write(
        dir.path().join("scenario.toml"),
        format!(
            "[snapshot]\ndump = \"{}\"\njobs = 1\n[workload]\nfile = \"w.toml\"\nrate = 10\n[migration]\nfile = \"m.sql\"\n",
            dump.display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("w.toml"),
        "[[class]]\nname = \"q\"\nweight = 1\nsql = \"SELECT count(*) FROM big\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("m.sql"), "ALTER TABLE big ADD COLUMN x int;\n").unwrap();
    let out = bin().arg("run").arg(dir.path().join("scenario.toml")).env("TMPDIR", small.path()).output().unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(small.path()).unwrap().flatten().map(|e| e.path()).collect();
    let _ = std::process::Command::new("umount").arg("-l").arg(small.path()).status();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("ran out of disk space while restoring the dump"), "{stderr}");
    assert!(stderr.contains("last lines of the server log"), "{stderr}");
    // ENOSPC, or a write cut short by the full disk (how it shows depends on
    // where exactly the disk fills up).
    assert!(stderr.contains("No space left on device") || stderr.contains("could not extend file"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(leftovers.is_empty(), "left in the clone's TMPDIR: {leftovers:?}");
}
