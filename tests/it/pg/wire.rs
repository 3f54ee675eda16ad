//! The workload's own protocol client (`workload::wire`) against a real
//! server: logging in with each password method PostgreSQL offers, parameters
//! in text format into columns of several types, server errors with their
//! SQLSTATE on a connection that stays usable, and a statement blocked on a
//! lock ended from another thread.

use crate::common;

use std::sync::Arc;

use lockimpact::workload::params::Value;
use lockimpact::workload::wire::Conn;

/// A local server whose `pg_hba.conf` asks role `s` for SCRAM, `m` for md5
/// and `c` for a clear-text password over the socket; `postgres` is trusted.
async fn server_with_passwords() -> (lockimpact::clone::Server, tokio_postgres::Client) {
    let server = common::source_server(&[]);
    let admin = common::client(&server, "postgres").await;
    admin
        .batch_execute(
            "SET password_encryption = 'scram-sha-256'; CREATE ROLE s LOGIN SUPERUSER PASSWORD 'pw-s';
             SET password_encryption = 'md5'; CREATE ROLE m LOGIN SUPERUSER PASSWORD 'pw-m';
             CREATE ROLE c LOGIN SUPERUSER PASSWORD 'pw-c';",
        )
        .await
        .unwrap();
    let hba: String = admin.query_one("SHOW hba_file", &[]).await.unwrap().get(0);
    std::fs::write(
        &hba,
        "local all postgres trust\nlocal all s scram-sha-256\nlocal all m md5\nlocal all c password\n",
    )
    .unwrap();
    admin.batch_execute("SELECT pg_reload_conf()").await.unwrap();
    // The reload is asynchronous: wait until the new rules answer.
    for _ in 0..100 {
        let rules: i64 = admin
            .query_one("SELECT count(*) FROM pg_hba_file_rules WHERE 's' = ANY(user_name)", &[])
            .await
            .unwrap()
            .get(0);
        if rules == 1 && Conn::connect(&config(&server, "s", None)).is_err() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    (server, admin)
}

fn config(server: &lockimpact::clone::Server, user: &str, password: Option<&str>) -> tokio_postgres::Config {
    let mut c = server.config("postgres");
    c.user(user);
    if let Some(p) = password {
        c.password(p);
    }
    c
}

#[tokio::test]
async fn logs_in_with_scram_md5_and_clear_text_passwords() {
    let (server, admin) = server_with_passwords().await;
    for (user, password) in [("s", "pw-s"), ("m", "pw-m"), ("c", "pw-c"), ("postgres", "")] {
        let mut conn =
            Conn::connect(&config(&server, user, Some(password))).unwrap_or_else(|e| panic!("{user} logs in: {e}"));
        let alive: bool = admin
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND usename = $2)",
                &[&conn.pid(), &user],
            )
            .await
            .unwrap()
            .get(0);
        assert!(alive, "{user}: the backend pid {} is the connection's", conn.pid());
        conn.prepare("one", "SELECT $1::int + 1").unwrap();
        conn.execute("one", &[Value::Int(41)]).unwrap();

        let wrong = Conn::connect(&config(&server, user, Some("wrong")));
        if user != "postgres" {
            let e = wrong.err().unwrap_or_else(|| panic!("{user}: a wrong password is refused"));
            assert_eq!(e.code, "28P01", "{user}: {e}");
            assert!(e.message.contains("password authentication failed"), "{e}");
            let e = Conn::connect(&config(&server, user, None)).err().unwrap();
            assert!(e.message.contains("asks for a password"), "{user}: {e}");
        }
    }
}

#[tokio::test]
async fn text_parameters_reach_columns_of_every_type_and_errors_keep_the_connection() {
    let server = common::source_server(&[]);
    let admin = common::client(&server, "postgres").await;
    admin
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, big bigint, small smallint, f float8, ok bool, note text,
                             at timestamptz, u uuid, n numeric)",
        )
        .await
        .unwrap();
    let mut conn = Conn::connect(&server.config("postgres")).unwrap();
    conn.prepare("ins", "INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)").unwrap();
    let row = |id: i64| {
        [
            Value::Int(id),
            Value::Int(9_000_000_000),
            Value::Int(-7),
            Value::Float(0.25),
            Value::Bool(true),
            Value::Text(Arc::from("héllo, wörld")),
            Value::Text(Arc::from("2026-11-24 12:00:00+00")),
            Value::Text(Arc::from("6f1d2c9e-0000-4000-8000-000000000001")),
            Value::Float(1.5),
        ]
    };
    conn.execute("ins", &row(1)).unwrap();

    let e = conn.execute("ins", &row(1)).unwrap_err();
    assert_eq!(e.code, "23505", "{e}");
    assert!(e.message.contains("(SQLSTATE 23505)") && e.message.contains("detail: Key (id)=(1)"), "{e}");
    assert!(!e.closed && !conn.is_closed());
    let mut small_too_big = row(2);
    small_too_big[2] = Value::Int(70_000);
    let e = conn.execute("ins", &small_too_big).unwrap_err();
    assert_eq!(e.code, "22003", "smallint out of range: {e}");
    let e = conn.prepare("bad", "SELECT * FROM missing").unwrap_err();
    assert_eq!(e.code, "42P01", "{e}");

    // Still usable after each error, and in a transaction.
    conn.simple("BEGIN").unwrap();
    conn.execute("ins", &row(3)).unwrap();
    conn.simple("COMMIT").unwrap();
    let r = admin
        .query_one(
            "SELECT count(*), min(big), min(small), min(f), bool_and(ok), min(note), min(at)::text, min(u::text), \
             min(n)::text FROM t",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, i64>(0), 2);
    assert_eq!(r.get::<_, i64>(1), 9_000_000_000);
    assert_eq!(r.get::<_, i16>(2), -7);
    assert_eq!(r.get::<_, f64>(3), 0.25);
    assert!(r.get::<_, bool>(4));
    assert_eq!(r.get::<_, String>(5), "héllo, wörld");
    assert!(r.get::<_, String>(6).starts_with("2026-11-24"));
    assert_eq!(r.get::<_, String>(7), "6f1d2c9e-0000-4000-8000-000000000001");
    assert_eq!(r.get::<_, String>(8), "1.5");
}

#[tokio::test]
async fn a_statement_blocked_on_a_lock_ends_when_its_connection_is_killed() {
    let server = common::source_server(&[]);
    let mut admin = common::client(&server, "postgres").await;
    admin.batch_execute("CREATE TABLE t (id int)").await.unwrap();
    let mut conn = Conn::connect(&server.config("postgres")).unwrap();
    let pid = conn.pid();
    conn.prepare("read", "SELECT count(*) FROM t").unwrap();
    let tx = admin.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let killer = conn.killer().unwrap();
    let blocked = std::thread::spawn(move || {
        let r = conn.execute("read", &[]);
        (r, conn.is_closed())
    });
    // Wait until the server shows it waiting for the lock.
    let waiting = async {
        loop {
            let w: bool = tx
                .query_one("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted)", &[&pid])
                .await
                .unwrap()
                .get(0);
            if w {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), waiting).await.expect("the read waits for the lock");
    assert!(!blocked.is_finished(), "the read is still blocked");
    killer.kill();
    let (r, closed) = blocked.join().unwrap();
    let e = r.expect_err("a killed connection fails its statement");
    assert_eq!(e.code, "08006", "{e}");
    assert!(e.closed && closed);
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn options_notices_copy_and_a_terminated_session() {
    let server = common::source_server(&[]);
    let admin = common::client(&server, "postgres").await;
    admin
        .batch_execute(
            "CREATE TABLE t (id int);
             CREATE FUNCTION noisy() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'hello'; RETURN 1; END $$;",
        )
        .await
        .unwrap();
    let mut config = server.config("postgres");
    config.application_name("wire-test").options("-c statement_timeout=200");
    let mut conn = Conn::connect(&config).unwrap();
    let app: String = admin
        .query_one("SELECT application_name FROM pg_stat_activity WHERE pid = $1", &[&conn.pid()])
        .await
        .unwrap()
        .get(0);
    assert_eq!(app, "wire-test");

    // The options reach the session: a statement longer than statement_timeout is cancelled.
    conn.prepare("slow", "SELECT pg_sleep(5)").unwrap();
    let e = conn.execute("slow", &[]).unwrap_err();
    assert_eq!(e.code, "57014", "{e}");
    assert!(!e.closed);

    // A notice in the middle of the results is skipped.
    conn.prepare("noisy", "SELECT noisy()").unwrap();
    conn.execute("noisy", &[]).unwrap();

    // COPY FROM STDIN is refused (there is no data to send) and the connection stays in step.
    conn.prepare("copy", "COPY t FROM STDIN").unwrap();
    let e = conn.execute("copy", &[]).unwrap_err();
    assert!(e.message.contains("sends no COPY data"), "{e}");
    conn.execute("noisy", &[]).unwrap();
    conn.simple("BEGIN").unwrap();
    conn.simple("COMMIT").unwrap();

    // A session the server ends reports the server's reason, not a bare closed connection.
    conn.simple("BEGIN").unwrap();
    let pid = conn.pid();
    let ended: bool = admin.query_one("SELECT pg_terminate_backend($1, 10000)", &[&pid]).await.unwrap().get(0);
    assert!(ended);
    let e = conn.execute("noisy", &[]).unwrap_err();
    assert!(e.closed && conn.is_closed(), "{e}");
    assert_eq!(e.code, "57P01", "{e}");
    let e = conn.execute("noisy", &[]).unwrap_err();
    assert_eq!(e.code, "08006", "{e}");
}
