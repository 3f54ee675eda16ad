//! The `url` backend runs on an existing server only behind three guards: the
//! `--allow-existing-server` flag, an opt-in marker on the database, and no
//! sign of production (streaming replicas attached, or a standby). Real
//! servers: a primary started in-process, and a real streaming standby.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use lockimpact::clone::ClonePlan;
use lockimpact::clone::{self, restore::Tools};

const PASSWORD: &str = "s3cretpw";

fn lockimpact(args: &[&str]) -> (i32, String) {
    let out = bin().args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn postgres_ids() -> Option<(u32, u32)> {
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = std::ffi::CString::new("postgres").unwrap();
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(!pw.is_null(), "running as root needs a postgres user");
    Some(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

fn as_postgres(cmd: &mut Command) -> &mut Command {
    if let Some((uid, gid)) = postgres_ids() {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

#[test]
fn url_backend_needs_the_flag_and_the_marker_and_refuses_production_lookalikes() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = url_scenario(dir.path(), "ALTER TABLE orders ADD COLUMN rehearsed int;\n");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = clone::start(&ClonePlan::local(), &|_| {}).expect("a local primary");
    let Some(Tools::Local { bin_dir, socket_dir, port, .. }) = server.tools() else { panic!("a local server") };
    let sql = |db: &str, text: &str| {
        rt.block_on(async {
            let (c, conn) = server.config(db).connect(tokio_postgres::NoTls).await.unwrap();
            let task = tokio::spawn(conn);
            c.batch_execute(text).await.unwrap();
            drop(c);
            let _ = task.await;
        })
    };
    // Over TCP the clone asks for the superuser's password (scram-sha-256).
    sql("postgres", &format!("ALTER ROLE postgres PASSWORD '{PASSWORD}'"));
    sql("postgres", "CREATE DATABASE clonedb");
    sql("clonedb", &orders_seed(5000, 500));
    let url = format!("postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/clonedb");
    let s = scenario.to_str().unwrap();

    // 1. No opt-in flag.
    let (code, text) = lockimpact(&["run", s, "--url", &url]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("--allow-existing-server"), "{text}");
    // 2. The flag, but the database has not opted in.
    let (code, text) = lockimpact(&["run", s, "--url", &url, "--allow-existing-server"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("ALTER DATABASE clonedb SET lockimpact.rehearsal = on"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");

    // 3. Opted in: it rehearses on that database, and the password never shows.
    sql("postgres", "ALTER DATABASE clonedb SET lockimpact.rehearsal = on");
    let json = dir.path().join("r.json");
    let (code, text) =
        lockimpact(&["run", s, "--url", &url, "--allow-existing-server", "--json", json.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let report = std::fs::read_to_string(&json).unwrap();
    assert!(!text.contains(PASSWORD) && !report.contains(PASSWORD), "{text}");
    let r: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert!(r["clone"]["backend"].as_str().unwrap().starts_with("existing server postgresql://postgres:****@"));
    assert_eq!(r["steps"][0]["outcome"], "ok");
    sql("clonedb", "SELECT rehearsed FROM orders LIMIT 1"); // the migration ran there

    // 4. A streaming standby attached: the primary looks like production.
    let standby_dir = tempfile::Builder::new().prefix("lockimpact-standby-").tempdir_in("/tmp").unwrap();
    if let Some((uid, gid)) = postgres_ids() {
        std::os::unix::fs::chown(standby_dir.path(), Some(uid), Some(gid)).unwrap();
    }
    let data = standby_dir.path().join("data");
    let status = as_postgres(
        Command::new(bin_dir.join("pg_basebackup"))
            .arg("-h")
            .arg(&socket_dir)
            .args(["-p", &port.to_string(), "-U", "postgres"])
            .args(["-R", "-X", "stream", "--checkpoint=fast", "-D"])
            .arg(&data),
    )
    .status()
    .unwrap();
    assert!(status.success(), "pg_basebackup");
    let standby_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut standby = as_postgres(
        Command::new(bin_dir.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &standby_port.to_string(), "-c", "listen_addresses=127.0.0.1", "-k"])
            .arg(standby_dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .spawn()
    .unwrap();
    let attached = || {
        rt.block_on(async {
            let (c, conn) = server.config("postgres").connect(tokio_postgres::NoTls).await.unwrap();
            let task = tokio::spawn(conn);
            let n: i64 = c.query_one("SELECT count(*) FROM pg_stat_replication", &[]).await.unwrap().get(0);
            drop(c);
            let _ = task.await;
            n
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while attached() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let on_primary = lockimpact(&["run", s, "--url", &url, "--allow-existing-server"]);
    let standby_url = format!("postgresql://postgres:{PASSWORD}@127.0.0.1:{standby_port}/clonedb");
    let on_standby = lockimpact(&["run", s, "--url", &standby_url, "--allow-existing-server"]);
    // Stop the standby by its pid (fast shutdown) before asserting.
    unsafe { libc::kill(standby.id() as i32, libc::SIGINT) };
    let _ = standby.wait();
    assert_eq!(on_primary.0, 2, "{}", on_primary.1);
    assert!(on_primary.1.contains("1 streaming replica(s) attached"), "{}", on_primary.1);
    assert_eq!(on_standby.0, 2, "{}", on_standby.1);
    assert!(on_standby.1.contains("this server is a standby"), "{}", on_standby.1);
    assert!(!on_primary.1.contains(PASSWORD) && !on_standby.1.contains(PASSWORD));
}

#[test]
fn compare_refuses_the_url_backend() {
    let dir = tempfile::tempdir().unwrap();
    let s = url_scenario(dir.path(), "ALTER TABLE orders ADD COLUMN rehearsed int;\n");
    let url = "postgresql://postgres@127.0.0.1:1/clonedb";
    let (code, text) =
        lockimpact(&["compare", s.to_str().unwrap(), s.to_str().unwrap(), "--url", url, "--allow-existing-server"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("compare needs a fresh copy"), "{text}");
}
