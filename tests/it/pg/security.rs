//! Safe next to real servers (issue 14): the url guard reads the database's
//! own opt-in and refuses server-wide SQL; the local clone keeps other local
//! users out and refuses SQL that reaches the host; passwords never show and
//! libpq's environment and files are honoured; TLS per sslmode against a
//! server with a certificate made here; clear messages for a TMPDIR the
//! postgres user cannot enter and a byte-order mark. Every case runs the
//! real binary against real servers started by the test.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::*;
use lockimpact::clone::ClonePlan;
use lockimpact::clone::{self, Server, restore::Tools};

/// Runs `lockimpact ARGS` with extra environment variables.
fn lockimpact(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = bin().args(args).envs(env.iter().copied()).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Runs SQL on `db` of a local server, over its socket.
fn sql(rt: &tokio::runtime::Runtime, server: &Server, db: &str, text: &str) {
    rt.block_on(async { client(server, db).await.batch_execute(text).await.unwrap() })
}

fn one_int(rt: &tokio::runtime::Runtime, server: &Server, db: &str, query: &str) -> i64 {
    rt.block_on(async { client(server, db).await.query_one(query, &[]).await.unwrap().get(0) })
}

fn port_of(server: &Server) -> u16 {
    let Some(Tools::Local { port, .. }) = server.tools() else { panic!("a local server") };
    port
}

/// A local server (extra `settings`) with database `clonedb` holding the
/// orders dataset, and `password` for the superuser, which TCP needs.
fn existing_server(rt: &tokio::runtime::Runtime, settings: &[(&str, &str)], password: &str) -> Server {
    let server = source_server(settings);
    let quoted = password.replace('\'', "''");
    sql(rt, &server, "postgres", &format!("ALTER ROLE postgres PASSWORD '{quoted}'"));
    sql(rt, &server, "postgres", "CREATE DATABASE clonedb");
    sql(rt, &server, "clonedb", &orders_seed(5000, 500));
    server
}

fn column_exists(rt: &tokio::runtime::Runtime, server: &Server) -> bool {
    let q = "SELECT count(*) FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'rehearsed'";
    one_int(rt, server, "clonedb", q) == 1
}

const REHEARSED: &str = "ALTER TABLE orders ADD COLUMN rehearsed int;\n";

/// 14.1: a marker set by the client (`options=-c …`) or for a role (`ALTER
/// ROLE … SET`) is not the database opting in; a superuser's server-wide or
/// host SQL is refused unless its flag is given, and the superuser is named.
#[test]
fn url_guard_reads_the_database_setting_and_refuses_server_wide_sql() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let server = existing_server(&rt, &[], "pw-guard");
    let url = format!("postgresql://postgres:pw-guard@127.0.0.1:{}/clonedb", port_of(&server));
    let s = url_scenario(dir.path(), REHEARSED);
    let s = s.to_str().unwrap();

    let bypass = format!("{url}?options=-c%20lockimpact.rehearsal%3Don");
    let (code, _, err) = lockimpact(&["run", s, "--url", &bypass, "--allow-existing-server"], &[]);
    assert_eq!(code, 2, "a client-side marker opened the database:\n{err}");
    assert!(err.contains("has not opted in"), "{err}");
    sql(&rt, &server, "postgres", "ALTER ROLE postgres SET lockimpact.rehearsal = on");
    let (code, _, err) = lockimpact(&["run", s, "--url", &url, "--allow-existing-server"], &[]);
    assert_eq!(code, 2, "a role's marker opened the database:\n{err}");
    assert!(err.contains("ALTER ROLE … SET") && err.contains("does not count"), "{err}");
    assert!(!column_exists(&rt, &server), "the migration ran on a database that never opted in");

    sql(&rt, &server, "postgres", "ALTER ROLE postgres RESET lockimpact.rehearsal");
    sql(&rt, &server, "postgres", "ALTER DATABASE clonedb SET lockimpact.rehearsal = on");
    let wide =
        format!("{REHEARSED}ALTER ROLE postgres SET work_mem = '8MB';\nCOPY (SELECT 1) TO PROGRAM 'cat >/dev/null';\n");
    let s = url_scenario(dir.path(), &wide);
    let s = s.to_str().unwrap();
    let (code, _, err) = lockimpact(&["run", s, "--url", &url, "--allow-existing-server"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("migration.sql:2 (statement 2): ALTER ROLE"), "{err}");
    assert!(err.contains("migration.sql:3 (statement 3): COPY … TO PROGRAM"), "{err}");
    assert!(err.contains("--allow-server-wide") && err.contains("--allow-host-access"), "{err}");
    assert!(!column_exists(&rt, &server));

    let allowed = ["--allow-existing-server", "--allow-server-wide", "--allow-host-access"];
    let (code, _, err) = lockimpact(&[&["run", s, "--url", &url][..], &allowed[..]].concat(), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("the URL's role postgres is a superuser"), "{err}");
    assert!(column_exists(&rt, &server));
}

/// 14.3: TCP needs the superuser's password, the socket's directory is
/// private; `--keep` prints the credentials, and they work. (That another
/// user cannot get in is tested as that user in `tests/env/as_root.rs`.)
#[test]
fn local_clone_needs_a_password_and_keep_prints_the_credentials() {
    let rt = runtime();
    let server = clone::start(&ClonePlan::local(), &|_| {}).unwrap();
    let Some(Tools::Local { socket_dir, port, .. }) = server.tools() else { panic!("local") };
    let mut no_password = tokio_postgres::Config::new();
    no_password.host("127.0.0.1").port(port).user("postgres").dbname("postgres");
    let e = rt.block_on(no_password.connect(tokio_postgres::NoTls)).err().expect("TCP without a password is refused");
    assert!(format!("{e:?}").contains("password missing"), "{e:?}");
    let mode = std::fs::metadata(&socket_dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "{} is open to others: {mode:o}", socket_dir.display());

    drop(server);

    let dir = tempfile::tempdir().unwrap();
    let scenario = tiny_scenario(dir.path(), REHEARSED, "");
    let o = run(&[scenario.to_str().unwrap(), "--keep"]);
    let (server_dir, pid) = server_location(&o.stderr);
    let tcp =
        o.stderr.lines().find_map(|l| l.trim().strip_prefix("tcp:     psql ")).map(|u| u.trim_matches('"').to_string());
    let answered = tcp.as_ref().map(|url| {
        rt.block_on(async {
            let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            c.query_one("SELECT count(*) FROM orders", &[]).await.map(|r| r.get::<_, i64>(0))
        })
    });
    // Stop the kept server by its pid (fast shutdown) and remove its files.
    unsafe { libc::kill(pid, libc::SIGINT) };
    assert!(wait_gone(pid));
    std::fs::remove_dir_all(&server_dir).unwrap();
    assert_eq!(o.code, 0, "{}", o.stderr);
    let url = tcp.unwrap_or_else(|| panic!("no tcp line with the credentials:\n{}", o.stderr));
    assert!(url.starts_with("postgresql://postgres:") && url.contains("@127.0.0.1:"), "{url}");
    assert!(answered.unwrap().unwrap() > 0, "the printed credentials connect");
}

/// 14.3: on the local backend, SQL that runs programs or touches the host's
/// files (in the migration or the workload) is refused unless allowed.
#[test]
fn local_backend_refuses_sql_that_reaches_the_host_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let program = format!("/tmp/lockimpact-test-{}-ran-a-program", std::process::id());
    let migration = format!("{REHEARSED}COPY (SELECT 1) TO PROGRAM 'touch {program}';\n");
    let s = tiny_scenario(dir.path(), &migration, "");
    let o = run(&[s.to_str().unwrap()]);
    let ran = Path::new(&program).exists();
    let _ = std::fs::remove_file(&program);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(!ran, "the migration ran a program on this machine");
    assert!(o.stderr.contains("migration.sql:2 (statement 2): COPY … TO PROGRAM"), "{}", o.stderr);
    assert!(o.stderr.contains("--backend docker") && o.stderr.contains("--allow-host-access"), "{}", o.stderr);

    let other = tempfile::tempdir().unwrap();
    let workload = other.path().join("peek.toml");
    std::fs::write(
        &workload,
        "[[class]]\nname = \"peek\"\nweight = 1\nsql = \"SELECT pg_read_file('/etc/hostname')\"\n",
    )
    .unwrap();
    let s2 = tiny_scenario(other.path(), REHEARSED, "");
    let set = format!("workload.file={:?}", workload.display().to_string());
    let o = run(&[s2.to_str().unwrap(), "--set", &set]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("peek.toml: class \"peek\": pg_read_file()"), "{}", o.stderr);

    let o = run(&[s.to_str().unwrap(), "--allow-host-access"]);
    let ran = Path::new(&program).exists();
    let _ = std::fs::remove_file(&program);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(ran, "--allow-host-access lets the program run");
}

/// Runs `lockimpact record stat-statements` against clonedb while a small
/// load runs there, with `env`; returns the exit code, stderr and the file.
fn record(rt: &tokio::runtime::Runtime, server: &Server, url: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w.toml");
    let db = rt.block_on(client(server, "clonedb"));
    let load = rt.spawn(async move {
        for i in 0i64.. {
            db.query("SELECT status FROM orders WHERE id = $1", &[&(i % 5000 + 1)]).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    });
    let args = ["record", "stat-statements", "--url", url, "--interval", "500ms", "--out", out.to_str().unwrap()];
    let (code, _, err) = lockimpact(&args, env);
    load.abort();
    (code, err, std::fs::read_to_string(&out).unwrap_or_default())
}

/// 14.4: a password is never shown, whatever it holds and however it is
/// written (URL, quoted and escaped `key=value`), in any output or file; a
/// wrongly cased keyword is refused without its value; PGPASSWORD, a
/// service file, PGSERVICE and ~/.pgpass are read as libpq reads them.
#[test]
fn passwords_never_show_and_libpq_settings_are_honoured() {
    const PW: &str = "it'sSecr3t?:x";
    let rt = runtime();
    let server = existing_server(&rt, &[("shared_preload_libraries", "pg_stat_statements")], PW);
    sql(&rt, &server, "clonedb", "CREATE EXTENSION pg_stat_statements");
    sql(&rt, &server, "postgres", "ALTER DATABASE clonedb SET lockimpact.rehearsal = on");
    let port = port_of(&server);
    let dir = tempfile::tempdir().unwrap();
    let secret_shown = |text: &str| text.contains("Secr3t");

    let url = format!("postgresql://postgres:{PW}@127.0.0.1:{port}/clonedb");
    let s = url_scenario(dir.path(), REHEARSED);
    let files = ["r.json", "r.md", "r.html"].map(|f| dir.path().join(f));
    let outs: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let args = ["run", s.to_str().unwrap(), "--url", &url, "--allow-existing-server", "--format", "markdown"];
    let (code, stdout, stderr) =
        lockimpact(&[&args[..], &["--out", &outs[0], "--out", &outs[1], "--out", &outs[2]]].concat(), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("postgresql://postgres:****@127.0.0.1:"), "{stderr}");
    let written = files.iter().map(|f| (f.to_str().unwrap(), std::fs::read_to_string(f).unwrap()));
    for (what, text) in [("stdout", stdout), ("stderr", stderr)].into_iter().chain(written) {
        assert!(!secret_shown(&text), "the password shows in {what}:\n{text}");
    }

    let kv = format!(r"host=127.0.0.1 port={port} dbname=clonedb user=postgres password='it\'sSecr3t?:x'");
    let (code, err, workload) = record(&rt, &server, &kv, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(workload.contains("postgresql://postgres:****@127.0.0.1:"), "{workload}");
    assert!(!secret_shown(&err) && !secret_shown(&workload), "{err}\n{workload}");

    let bare = format!("postgresql://postgres@127.0.0.1:{port}/clonedb");
    let (code, err, _) = record(&rt, &server, &bare, &[("PGPASSWORD", PW)]);
    assert_eq!(code, 0, "PGPASSWORD: {err}");

    let services = dir.path().join("services.conf");
    std::fs::write(&services, format!("[clone]\nhost=127.0.0.1\nport={port}\ndbname=clonedb\n")).unwrap();
    let pgpass = dir.path().join(".pgpass");
    std::fs::write(&pgpass, format!("127.0.0.1:{port}:clonedb:postgres:{}\n", PW.replace(':', "\\:"))).unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let env =
        [("PGSERVICE", "clone"), ("PGSERVICEFILE", services.to_str().unwrap()), ("HOME", dir.path().to_str().unwrap())];
    let (code, err, _) = record(&rt, &server, "user=postgres", &env);
    assert_eq!(code, 0, "PGSERVICE and ~/.pgpass: {err}");

    let (code, _, err) = lockimpact(
        &["record", "stat-statements", "--url", "host=127.0.0.1 PASSWORD=hunter22", "--out", "/tmp/x.toml"],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("\"PASSWORD\"") && err.contains("lower case") && !err.contains("hunter22"), "{err}");
}

/// 14.4: `snapshot` gives pg_dump the source through its environment: its
/// command line (what `ps` shows) holds no password.
#[test]
fn snapshot_gives_pg_dump_the_password_in_its_environment_not_its_arguments() {
    const PW: &str = "snap?pw:1";
    let rt = runtime();
    let server = existing_server(&rt, &[], PW);
    let Some(Tools::Local { bin_dir, port, .. }) = server.tools() else { panic!("local") };
    // pg_dump behind a script that records its arguments and PG* environment, then runs it.
    let wrap = tempfile::tempdir().unwrap();
    let (args_file, env_file) = (wrap.path().join("args"), wrap.path().join("env"));
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > {}\nenv | grep '^PG' > {}\nexec {} \"$@\"\n",
        args_file.display(),
        env_file.display(),
        bin_dir.join("pg_dump").display()
    );
    std::fs::write(wrap.path().join("pg_dump"), script).unwrap();
    std::fs::set_permissions(wrap.path().join("pg_dump"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = wrap.path().join("clone.dump");
    let url = format!("postgresql://postgres:{PW}@127.0.0.1:{port}/clonedb");
    let args = ["snapshot", "--from", &url, "--out", out.to_str().unwrap(), "--pg-bin", wrap.path().to_str().unwrap()];
    let (code, _, err) = lockimpact(&args, &[]);
    assert_eq!(code, 0, "{err}");
    let argv = std::fs::read_to_string(&args_file).unwrap();
    let env = std::fs::read_to_string(&env_file).unwrap();
    assert!(!argv.contains("snap?pw"), "pg_dump's arguments hold the password:\n{argv}");
    assert!(env.lines().any(|l| l == format!("PGPASSWORD={PW}")), "{env}");
    assert!(std::fs::metadata(&out).unwrap().len() > 0);
    assert!(!err.contains("snap?pw"), "{err}");
}

/// A CA, a server certificate it signed for `localhost` (key 0600, owned by
/// the user the server runs as), and an unrelated CA, in `dir`.
fn certificates(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca = |name: &str| {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert, Issuer::new(params, key))
    };
    let (ca_cert, issuer) = ca("lockimpact test CA");
    let (other_cert, _) = ca("someone else's CA");
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("other-ca.pem"), other_cert.pem()).unwrap();
    std::fs::write(dir.join("server.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    std::fs::set_permissions(dir.join("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    if unsafe { libc::geteuid() } == 0 {
        let name = std::ffi::CString::new("postgres").unwrap();
        let pw = unsafe { libc::getpwnam(name.as_ptr()) };
        assert!(!pw.is_null(), "running as root needs a postgres user");
        let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
        for f in ["server.crt", "server.key"] {
            std::os::unix::fs::chown(dir.join(f), Some(uid), Some(gid)).unwrap();
        }
    }
}

/// 14.5: sslmode require, verify-ca and verify-full with sslrootcert, against
/// a server that refuses connections without TLS (so the workload's own
/// connections must use it too); a wrong CA, a wrong host name and a missing
/// root certificate fail with what went wrong.
#[test]
fn tls_follows_sslmode_against_a_server_with_its_own_certificate() {
    let certs = tempfile::Builder::new().prefix("li-test-tls-").tempdir_in("/tmp").unwrap();
    certificates(certs.path());
    let (crt, key) = (certs.path().join("server.crt"), certs.path().join("server.key"));
    let settings = [("ssl", "on"), ("ssl_cert_file", crt.to_str().unwrap()), ("ssl_key_file", key.to_str().unwrap())];
    let rt = runtime();
    let server = existing_server(&rt, &settings, "tls-pw");
    sql(&rt, &server, "postgres", "ALTER DATABASE clonedb SET lockimpact.rehearsal = on");
    let hba: String =
        rt.block_on(async { client(&server, "postgres").await.query_one("SHOW hba_file", &[]).await.unwrap().get(0) });
    let rules = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, format!("hostnossl all all all reject\n{rules}")).unwrap();
    sql(&rt, &server, "postgres", "SELECT pg_reload_conf()");
    let reloaded = "SELECT count(*) FROM pg_hba_file_rules WHERE type = 'hostnossl'";
    for _ in 0..100 {
        if one_int(&rt, &server, "postgres", reloaded) == 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let dir = tempfile::tempdir().unwrap();
    let s = url_scenario(dir.path(), "ALTER TABLE orders ADD COLUMN IF NOT EXISTS rehearsed int;\n");
    let port = port_of(&server);
    let (ca, other) = (certs.path().join("ca.pem"), certs.path().join("other-ca.pem"));
    let url = |host: &str, query: String| format!("postgresql://postgres:tls-pw@{host}:{port}/clonedb?{query}");
    let rehearse = |url: &str| {
        let json = dir.path().join("r.json");
        let _ = std::fs::remove_file(&json);
        let args =
            ["run", s.to_str().unwrap(), "--url", url, "--allow-existing-server", "--json", json.to_str().unwrap()];
        let (code, _, err) = lockimpact(&args, &[("HOME", dir.path().to_str().unwrap())]);
        let report: Option<serde_json::Value> =
            std::fs::read_to_string(&json).ok().map(|t| serde_json::from_str(&t).unwrap());
        (code, err, report)
    };
    for ok in [
        url("127.0.0.1", "sslmode=require".into()),
        url("localhost", format!("sslmode=verify-full&sslrootcert={}", ca.display())),
        url("127.0.0.1", format!("sslmode=verify-ca&sslrootcert={}", ca.display())),
    ] {
        let (code, err, report) = rehearse(&ok);
        assert_eq!(code, 0, "{ok}: {err}");
        let r = report.unwrap();
        let ops: u64 = class_counts(&r).values().sum();
        assert!(ops > 0 && r["workload"]["errors"] == 0, "{ok}: {ops} operations, {} errors", r["workload"]["errors"]);
    }
    for (bad, why) in [
        (url("localhost", format!("sslmode=verify-full&sslrootcert={}", other.display())), "UnknownIssuer"),
        (
            url("127.0.0.1", format!("sslmode=verify-full&sslrootcert={}", ca.display())),
            "certificate not valid for name \"127.0.0.1\"",
        ),
        (url("localhost", "sslmode=verify-full".into()), "sslrootcert=/path/to/ca.pem"),
        (url("127.0.0.1", "sslmode=disable".into()), "no encryption"),
    ] {
        let (code, err, _) = rehearse(&bad);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains(why), "{bad}: expected {why:?} in:\n{err}");
    }
}

/// 14.12: a byte-order mark before the first statement of a migration (and
/// of the scenario file) is not SQL: it is dropped.
#[test]
fn a_byte_order_mark_before_the_migration_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let s = tiny_scenario(dir.path(), "\u{feff}ALTER TABLE orders ADD COLUMN note text;\n", "");
    let text = std::fs::read_to_string(&s).unwrap();
    std::fs::write(&s, format!("\u{feff}{text}")).unwrap();
    let o = run(&[s.to_str().unwrap()]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.report()["steps"][0]["outcome"], "ok");
}

/// The guard passes every shipped scenario on the local backend: their
/// seeds, workloads and migrations stay inside their database.
#[test]
fn shipped_scenarios_pass_the_local_guard() {
    use lockimpact::clone::Backend;
    let mut checked = 0;
    for entry in std::fs::read_dir(repo().join("scenarios")).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let plan = lockimpact::scenario::load(Some(&path), &Default::default()).unwrap();
            lockimpact::scenario::guard::check(&plan, Backend::Local, None)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            checked += 1;
        }
    }
    assert!(checked >= 7, "{checked} scenarios");
}
