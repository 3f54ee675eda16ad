//! The sampler against a controlled hold: one session keeps an exclusive lock
//! for exactly 2 s while another waits for it. The episode it reports must be
//! 2 s long, within two sample intervals, and attributed to the holder.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lockimpact::clone;
use lockimpact::clone::ClonePlan;
use lockimpact::sampler::Sampler;
use lockimpact::timeline::Clock;
use lockimpact::workload::Roles;
use tokio_postgres::NoTls;

const INTERVAL: Duration = Duration::from_millis(10);
const HOLD: Duration = Duration::from_secs(2);

async fn connect(server: &clone::Server) -> (tokio_postgres::Client, i32) {
    let (client, conn) = server.config("postgres").connect(NoTls).await.expect("connect to the clone");
    tokio::spawn(conn);
    let pid: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    (client, pid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_second_hold_is_one_two_second_episode() {
    let plan = ClonePlan::local();
    let server = clone::start(&plan, &|_| {}).expect("a local server");
    let (holder, holder_pid) = connect(&server).await;
    let (reader, reader_pid) = connect(&server).await;
    let (sampler_client, _) = connect(&server).await;
    holder.batch_execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1)").await.unwrap();

    let roles = Arc::new(Roles::new(&[]));
    roles.set_migration(holder_pid);
    roles.add_workload(reader_pid);
    let sampler = Sampler::start(sampler_client, INTERVAL, Arc::new(Clock::new()), roles, None);

    holder.batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let locked = Instant::now();
    let read = tokio::spawn(async move {
        reader.query_one("SELECT count(*) FROM t", &[]).await.unwrap();
        Instant::now()
    });
    tokio::time::sleep_until((locked + HOLD).into()).await;
    holder.batch_execute("COMMIT").await.unwrap();
    let released = Instant::now();
    let answered = read.await.unwrap();
    tokio::time::sleep(INTERVAL * 5).await;
    let rec = sampler.finish().await;

    let eps: Vec<_> = rec.episodes.iter().filter(|e| e.pid == reader_pid).collect();
    assert_eq!(eps.len(), 1, "{:?}", rec.episodes);
    let ep = eps[0];
    assert!(ep.by_migration, "attributed to the holder: {ep:?}");
    assert_eq!(ep.mode.name(), "AccessShareLock");
    assert_eq!(ep.relation.as_deref(), Some("t"));
    assert_eq!(ep.blockers, vec![holder_pid]);
    let measured = ep.end - ep.start;
    let held = released - locked;
    let tolerance = INTERVAL * 2;
    assert!(
        measured.abs_diff(HOLD) <= tolerance,
        "episode {measured:?} vs hold {HOLD:?} (lock held {held:?}, reader answered after {:?})",
        answered - locked
    );
}
