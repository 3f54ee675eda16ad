//! `[replica]` and `--replicas N`: how many streaming standbys the clone gets
//! and their recovery settings, resolved into a `ReplicaPlan`. Bad values
//! are refused naming the key; so are standbys on a backend that cannot
//! make them (url: a server lockimpact did not make; docker: not yet).

use crate::cli::RunOptions;
use crate::clone::plan::Backend;
use crate::clone::standby::{DEFAULT_INTERVAL, MAX_STANDBYS, ReplicaPlan, StreamingDelay};
use crate::error::{Error, Result};
use crate::files::dur::Dur;

use super::file::{BudgetSection, ReplicaSection};

/// `[replica]` with `--replicas` over its `count`.
pub fn resolve(r: &ReplicaSection, args: &RunOptions, backend: Backend, file: &str) -> Result<ReplicaPlan> {
    let count = match (args.replicas, &r.count) {
        (Some(n), _) => check_count(i64::from(n), "--replicas", file)?,
        (None, Some(v)) => {
            let n = v.as_integer().ok_or_else(|| {
                Error::input(format!("{file}: replica.count = {v}: must be a whole number from 0 to {MAX_STANDBYS}"))
            })?;
            check_count(n, "replica.count", file)?
        }
        (None, None) => 0,
    };
    let plan = ReplicaPlan {
        count,
        hot_standby_feedback: r.hot_standby_feedback.unwrap_or(false),
        max_standby_streaming_delay: r
            .max_standby_streaming_delay
            .as_ref()
            .map(|v| streaming_delay(v, file))
            .transpose()?,
        recovery_min_apply_delay: r
            .recovery_min_apply_delay
            .as_ref()
            .map(|v| apply_delay(v, file))
            .transpose()?
            .unwrap_or_default(),
        synchronous: r.synchronous.unwrap_or(false),
        logical: r.logical.unwrap_or(false),
        reader: r.standby.as_ref().map(|v| reader(v, count, file)).transpose()?.unwrap_or(1),
        interval: interval(r.interval, file)?,
    };
    if count == 0 {
        if let Some(key) = set_key(r) {
            return Err(Error::input(format!(
                "{file}: replica.{key} is set, but the clone gets no standby (replica.count is 0); set \
                 replica.count (or --replicas N), or remove replica.{key}"
            )));
        }
        if !plan.logical {
            return Ok(plan);
        }
    }
    match backend {
        Backend::Url => Err(Error::input(format!(
            "{file}: [replica] (or --replicas) asks for streaming standbys or a logical subscriber, but the url \
             backend runs on an existing server that lockimpact did not make: it cannot add them to it (and it \
             refuses a server with replicas attached); use the local or docker backend"
        ))),
        Backend::Docker if plan.logical => Err(Error::input(format!(
            "{file}: replica.logical = true asks for a logical subscriber, and the docker backend does not make \
             one yet; use --backend local (or auto, which picks local for it)"
        ))),
        Backend::Local | Backend::Docker | Backend::Auto => Ok(plan),
    }
}

fn check_count(n: i64, key: &str, file: &str) -> Result<u32> {
    u32::try_from(n)
        .ok()
        .filter(|n| *n <= MAX_STANDBYS)
        .ok_or_else(|| Error::input(format!("{file}: {key} = {n}: the clone gets 0 to {MAX_STANDBYS} standbys")))
}

/// A duration (`"30s"`), or -1 (`-1` or `"-1"`): replay waits forever.
fn streaming_delay(v: &toml::Value, file: &str) -> Result<StreamingDelay> {
    let bad = |why: String| {
        Error::input(format!(
            "{file}: replica.max_standby_streaming_delay = {v}: {why}; use a duration such as \"500ms\", or -1 \
             (replay waits for conflicting standby queries as long as they run)"
        ))
    };
    match v {
        toml::Value::Integer(-1) => Ok(StreamingDelay::Forever),
        toml::Value::Integer(0) => Ok(StreamingDelay::After(std::time::Duration::ZERO)),
        toml::Value::String(s) if s.trim() == "-1" => Ok(StreamingDelay::Forever),
        toml::Value::String(s) => Dur::parse(s).map(|d| StreamingDelay::After(d.0)).map_err(|e| bad(e.message)),
        toml::Value::Integer(_) => Err(bad("a number needs a unit".into())),
        _ => Err(bad("not a duration".into())),
    }
}

/// `standby`: which of the `count` standbys `target = "replica"` classes run on.
fn reader(v: &toml::Value, count: u32, file: &str) -> Result<u32> {
    v.as_integer().and_then(|n| u32::try_from(n).ok()).filter(|n| (1..=count.max(1)).contains(n)).ok_or_else(|| {
        Error::input(format!(
            "{file}: replica.standby = {v}: the standby that target = \"replica\" classes run on, a whole \
                 number from 1 to replica.count ({count})"
        ))
    })
}

/// `recovery_min_apply_delay`: a duration.
fn apply_delay(v: &toml::Value, file: &str) -> Result<std::time::Duration> {
    let parsed = match v {
        toml::Value::String(s) => Dur::parse(s).map(|d| d.0).map_err(|e| e.message),
        toml::Value::Integer(0) => Ok(std::time::Duration::ZERO),
        _ => Err("not a duration with a unit".to_string()),
    };
    parsed.map_err(|why| {
        Error::input(format!(
            "{file}: replica.recovery_min_apply_delay = {v}: {why}; use a duration such as \"300ms\" (replay of \
             each commit waits that long)"
        ))
    })
}

/// `replica.interval`: from 1 ms to 10 s (default `DEFAULT_INTERVAL`).
fn interval(v: Option<Dur>, file: &str) -> Result<std::time::Duration> {
    let Some(Dur(d)) = v else { return Ok(DEFAULT_INTERVAL) };
    if d < std::time::Duration::from_millis(1) || d > std::time::Duration::from_secs(10) {
        return Err(Error::input(format!(
            "{file}: replica.interval = {}: poll from every 1ms to every 10s (default {} ms)",
            Dur(d),
            DEFAULT_INTERVAL.as_millis()
        )));
    }
    Ok(d)
}

/// The first setting of `[replica]` given besides `count`.
fn set_key(r: &ReplicaSection) -> Option<&'static str> {
    let ReplicaSection {
        count: _,
        hot_standby_feedback,
        max_standby_streaming_delay,
        recovery_min_apply_delay,
        synchronous,
        logical: _,
        standby,
        interval: _,
    } = r;
    [
        ("hot_standby_feedback", hot_standby_feedback.is_some()),
        ("max_standby_streaming_delay", max_standby_streaming_delay.is_some()),
        ("recovery_min_apply_delay", recovery_min_apply_delay.is_some()),
        ("synchronous", synchronous.is_some()),
        ("standby", standby.is_some()),
    ]
    .into_iter()
    .find_map(|(k, set)| set.then_some(k))
}

/// `logical = true`: the primary runs with `wal_level = logical`, added to
/// `settings` (`[clone.settings]`); another `wal_level` there is refused.
pub fn logical_settings(plan: &ReplicaPlan, settings: &mut Vec<(String, String)>, file: &str) -> Result<()> {
    if !plan.logical {
        return Ok(());
    }
    match settings.iter().find(|(k, _)| k == "wal_level") {
        Some((_, v)) if v != "logical" => Err(Error::input(format!(
            "{file}: clone.settings.wal_level = {v:?}, but replica.logical = true needs wal_level = \"logical\"; \
             remove clone.settings.wal_level (lockimpact sets it)"
        ))),
        Some(_) => Ok(()),
        None => {
            settings.push(("wal_level".into(), "logical".into()));
            Ok(())
        }
    }
}

/// The replica budgets need standbys to measure.
pub fn check_budget(b: &BudgetSection, plan: &ReplicaPlan, file: &str) -> Result<()> {
    let set = [
        ("max_replica_lag", b.max_replica_lag.is_some()),
        ("max_replica_lag_bytes", b.max_replica_lag_bytes.is_some()),
        ("max_standby_cancels", b.max_standby_cancels.is_some()),
        ("max_standby_blocked", b.max_standby_blocked.is_some()),
    ];
    if let Some((key, _)) = set.iter().find(|(_, s)| *s)
        && !plan.local_only()
    {
        return Err(Error::input(format!(
            "{file}: budget.{key} judges the clone's standbys, but it gets none; set replica.count (or --replicas N)"
        )));
    }
    if b.max_sync_commit_added.is_some() && !(plan.synchronous && plan.count > 0) {
        return Err(Error::input(format!(
            "{file}: budget.max_sync_commit_added judges the commit latency a synchronous standby adds, but the \
             clone gets none; set replica.synchronous = true (and replica.count, or --replicas N)"
        )));
    }
    if b.max_subscriber_errors.is_some() && !plan.logical {
        return Err(Error::input(format!(
            "{file}: budget.max_subscriber_errors judges the logical subscriber, but the clone gets none; set \
             replica.logical = true"
        )));
    }
    Ok(())
}

/// A `target = "replica"` class needs a standby to run on.
pub fn check_classes(
    classes: &[crate::workload::file::Class],
    plan: &ReplicaPlan,
    workload: &std::path::Path,
) -> Result<()> {
    match classes.iter().find(|c| c.on_replica) {
        Some(c) if plan.count == 0 => Err(Error::input(format!(
            "{}: class {:?} has target = \"replica\", but the clone gets no standby; set replica.count \
             (or --replicas N)",
            workload.display(),
            c.name
        ))),
        _ => Ok(()),
    }
}
