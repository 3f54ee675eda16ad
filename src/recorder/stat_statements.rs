//! `lockimpact record stat-statements`: reads `pg_stat_statements` of the
//! source database two or more times (`--samples`, `--interval` apart), each in
//! a read-only transaction, computes calls per second per statement (queryid)
//! between reads, keeps the busiest statements that cover `--coverage` of all
//! calls, and writes a rate-based workload file (see `write`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::cli::StatStatementsArgs;
use crate::error::{Error, Result, describe_pg};
use crate::files::dur::Dur;
use crate::pg::ConnInfo;

use super::infer::Columns;
use super::write::{RecordedClass, replayable, workload_toml, write_file};

/// One read of the view: queryid → (query text, calls).
type Sample = BTreeMap<i64, (String, i64)>;

/// Reads `--url` as libpq would (environment, service and password files).
pub fn source(url: &str) -> Result<ConnInfo> {
    ConnInfo::resolve(url).map_err(|e| Error::input(format!("--url: {e}")))
}

/// Connects read-only to the source, with the TLS its `sslmode` asks for;
/// errors name the source without its password.
pub async fn connect_read_only(source: &ConnInfo) -> Result<tokio_postgres::Client> {
    let mut target = source.target().map_err(|e| Error::input(format!("--url {source}: {e}")))?;
    target.config.application_name("lockimpact-record");
    let options = format!("{} -c default_transaction_read_only=on", source.get("options").unwrap_or_default());
    target.config.options(options.trim());
    target.connect().await.map_err(|e| Error::env(format!("cannot connect to {source}: {}", describe_pg(&e))))
}

/// What the recording needs, said when it is missing.
const NEEDS: &str = "lockimpact record stat-statements needs the pg_stat_statements extension:\n  \
    1. postgresql.conf: shared_preload_libraries = 'pg_stat_statements' (then restart the server)\n  \
    2. in the recorded database, as a superuser: CREATE EXTENSION pg_stat_statements;\n  \
    3. the recording role needs pg_read_all_stats (GRANT pg_read_all_stats TO app_role) to see other users' statements";

async fn check(client: &tokio_postgres::Client, shown: &str) -> Result<String> {
    let row = client
        .query_one(
            "SELECT current_database(), current_setting('shared_preload_libraries'), \
             EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements')",
            &[],
        )
        .await
        .map_err(|e| Error::env(format!("{shown}: {}", describe_pg(&e))))?;
    let (db, preload, installed): (String, String, bool) = (row.get(0), row.get(1), row.get(2));
    if !installed {
        let why = if preload.contains("pg_stat_statements") {
            format!("the library is loaded but the extension is not created in database {db:?}")
        } else {
            format!("shared_preload_libraries is {preload:?} and the extension is not created in database {db:?}")
        };
        return Err(Error::env(format!("{shown}: {why}.\n{NEEDS}")));
    }
    Ok(db)
}

/// A read-only transaction on the source.
async fn read_only<'a>(client: &'a mut tokio_postgres::Client, shown: &str) -> Result<tokio_postgres::Transaction<'a>> {
    client
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .map_err(|e| Error::env(format!("{shown}: {}", describe_pg(&e))))
}

async fn read(client: &mut tokio_postgres::Client, shown: &str) -> Result<Sample> {
    let tx = read_only(client, shown).await?;
    let rows = tx
        .query(
            "SELECT queryid, min(query), sum(calls)::bigint FROM pg_stat_statements \
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND queryid IS NOT NULL GROUP BY queryid",
            &[],
        )
        .await
        .map_err(|e| {
            let m = describe_pg(&e);
            if m.contains("shared_preload_libraries") {
                Error::env(format!("{shown}: {m}\n{NEEDS}"))
            } else {
                Error::env(format!("{shown}: cannot read pg_stat_statements: {m}"))
            }
        })?;
    tx.commit().await.map_err(|e| Error::env(format!("{shown}: {}", describe_pg(&e))))?;
    Ok(rows.iter().map(|r| (r.get::<_, i64>(0), (r.get::<_, String>(1), r.get::<_, i64>(2)))).collect())
}

/// The columns of the tables the statements name (from the catalog, read-only),
/// to tell which table an unqualified column of a join belongs to.
async fn columns_of(client: &mut tokio_postgres::Client, classes: &[RecordedClass], shown: &str) -> Result<Columns> {
    let mut names: Vec<String> = classes.iter().flat_map(|c| super::infer::tables_of(&c.sql)).collect();
    names.sort();
    names.dedup();
    let tx = read_only(client, shown).await?;
    let rows = tx
        .query(
            "SELECT c.relname::text, a.attname::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             WHERE c.relname = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped AND pg_table_is_visible(c.oid)",
            &[&names],
        )
        .await
        .map_err(|e| {
            Error::env(format!("{shown}: cannot read the columns of {}: {}", names.join(", "), describe_pg(&e)))
        })?;
    tx.commit().await.map_err(|e| Error::env(format!("{shown}: {}", describe_pg(&e))))?;
    let mut columns = Columns::new();
    for r in rows {
        columns.entry(r.get::<_, String>(0)).or_default().push(r.get(1));
    }
    Ok(columns)
}

/// Per statement: calls in each interval between consecutive samples.
pub struct Rates {
    pub intervals: Vec<f64>,
    /// queryid → (query, calls per interval).
    pub calls: BTreeMap<i64, (String, Vec<i64>)>,
}

/// Calls between consecutive samples (a counter that went down was reset:
/// its new value counts).
pub fn deltas(samples: &[(Instant, Sample)]) -> Rates {
    let mut calls: BTreeMap<i64, (String, Vec<i64>)> = BTreeMap::new();
    let n = samples.len().saturating_sub(1);
    let mut intervals = Vec::new();
    for (i, w) in samples.windows(2).enumerate() {
        let ((t0, a), (t1, b)) = (&w[0], &w[1]);
        intervals.push(t1.duration_since(*t0).as_secs_f64().max(1e-6));
        for (id, (q, c1)) in b {
            let c0 = a.get(id).map_or(0, |x| x.1);
            let d = if *c1 >= c0 { c1 - c0 } else { *c1 };
            let e = calls.entry(*id).or_insert_with(|| (q.clone(), vec![0; n]));
            e.1[i] = d;
        }
    }
    Rates { intervals, calls }
}

/// The interval between reads; `--samples` and `--coverage` in range.
fn check_args(args: &StatStatementsArgs) -> Result<Duration> {
    let interval = Dur::parse(&args.interval).map_err(|e| e.context("--interval"))?.0;
    if interval < Duration::from_millis(100) {
        return Err(Error::input("--interval must be at least 100ms"));
    }
    if args.samples < 2 {
        return Err(Error::input(format!(
            "--samples must be at least 2 (rates are differences), not {}",
            args.samples
        )));
    }
    if !(args.coverage > 0.0 && args.coverage <= 1.0) {
        return Err(Error::input(format!("--coverage must be in (0, 1], not {}", args.coverage)));
    }
    Ok(interval)
}

/// The busiest of `classes` (sorted busiest first) until they make
/// `enough` calls, and the calls they make.
fn busiest(classes: &[Called], enough: f64) -> (Vec<&Called>, i64) {
    let mut kept = Vec::new();
    let mut covered = 0i64;
    for c in classes {
        if covered as f64 >= enough {
            break;
        }
        covered += c.2.iter().sum::<i64>();
        kept.push(c);
    }
    (kept, covered)
}

/// A statement that ran while recording: its queryid, text and calls per interval.
type Called = (i64, String, Vec<i64>);

/// The statements that ran and can be replayed, with how many were left out
/// (utility or unparsable) and how many were hidden (other roles').
fn replayable_classes(calls: impl IntoIterator<Item = (i64, (String, Vec<i64>))>) -> (Vec<Called>, usize, usize) {
    let mut skipped = 0usize;
    let mut hidden = 0usize;
    let mut classes: Vec<Called> = Vec::new();
    for (id, (q, d)) in calls {
        if d.iter().all(|&c| c == 0) {
            continue;
        }
        if q == "<insufficient privilege>" {
            hidden += 1;
            continue;
        }
        if q.contains("pg_stat_statements") || !replayable(&q) {
            skipped += 1;
            continue;
        }
        classes.push((id, q, d));
    }
    (classes, skipped, hidden)
}

/// `record stat-statements`: reads the view `--samples` times, keeps the
/// busiest replayable statements up to `--coverage` of the calls, and writes
/// them as a rate-based workload file.
pub async fn record(args: &StatStatementsArgs) -> Result<()> {
    let source = source(&args.url)?;
    let shown = source.to_string();
    let interval = check_args(args)?;
    let progress = crate::status::Progress::new(args.quiet);
    let say = |m: &str| progress.say(m);
    let mut client = connect_read_only(&source).await?;
    let db = check(&client, &shown).await?;
    say(&format!(
        "recording pg_stat_statements of {shown} (database {db}): {} reads, {} ms apart, read-only",
        args.samples,
        interval.as_millis()
    ));
    let mut samples = Vec::new();
    for i in 0..args.samples {
        if i > 0 {
            tokio::time::sleep(interval).await;
        }
        samples.push((Instant::now(), read(&mut client, &shown).await?));
    }
    let rates = deltas(&samples);
    let total_time: f64 = rates.intervals.iter().sum();
    let (mut classes, skipped, hidden) = replayable_classes(rates.calls);
    let privileges = if hidden > 0 {
        format!(
            "; {hidden} statements of other roles are hidden (<insufficient privilege>): \
             GRANT pg_read_all_stats TO the recording role to see them"
        )
    } else {
        String::new()
    };
    if hidden > 0 {
        say(&format!("warning{privileges}"));
    }
    let all_calls: i64 = classes.iter().map(|c| c.2.iter().sum::<i64>()).sum();
    if all_calls == 0 {
        return Err(Error::input(format!(
            "{shown}: no SELECT, INSERT, UPDATE or DELETE ran in database {db} during the {:.1} s recorded; \
             record while the application runs, or use a longer --interval{privileges}",
            total_time
        )));
    }
    classes.sort_by_key(|c| std::cmp::Reverse(c.2.iter().sum::<i64>()));
    let (kept, covered) = busiest(&classes, args.coverage * all_calls as f64);
    let recorded: Vec<RecordedClass> = kept
        .iter()
        .map(|(id, q, d)| RecordedClass {
            name: format!("q{id}"),
            sql: q.trim().to_string(),
            rate: d.iter().sum::<i64>() as f64 / total_time,
            peak: d.iter().zip(&rates.intervals).map(|(c, t)| *c as f64 / t).fold(0.0, f64::max),
            comment: format!("queryid {id}: {} calls recorded", d.iter().sum::<i64>()),
            observed: Vec::new(),
        })
        .collect();
    let total_rate: f64 = recorded.iter().map(|c| c.rate).sum();
    let peak_total = (0..rates.intervals.len())
        .map(|i| kept.iter().map(|c| c.2[i]).sum::<i64>() as f64 / rates.intervals[i])
        .fold(0.0, f64::max);
    let header = vec![
        format!("Recorded by lockimpact record stat-statements from database {db} ({shown})"),
        format!(
            "{} reads over {:.1} s; {} of {} statements cover {:.1} % of {} calls (--coverage {})",
            args.samples,
            total_time,
            kept.len(),
            classes.len(),
            100.0 * covered as f64 / all_calls as f64,
            all_calls,
            args.coverage
        ),
        format!("{skipped} utility or unparsable statements were left out (BEGIN, COMMIT, SET, …){privileges}"),
    ];
    let columns = columns_of(&mut client, &recorded, &shown).await?;
    write_file(&args.out, &workload_toml(&header, &recorded, total_rate, peak_total, &[], &columns))?;
    say(&format!(
        "wrote {}: {} classes, {:.1} ops/s recorded, peak {:.1} ops/s ({:.1} % of calls)",
        args.out.display(),
        recorded.len(),
        total_rate,
        peak_total,
        100.0 * covered as f64 / all_calls as f64
    ));
    Ok(())
}
