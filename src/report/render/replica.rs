//! The replicas section of the terminal and Markdown reports, when the
//! clone had standbys: per standby, the largest replay lag (bytes and
//! time), where it happened, standby sessions blocked by a replayed lock and
//! queries cancelled by recovery conflicts; then the largest lag per step;
//! then lines on the commit latency a synchronous standby adds and on a
//! logical subscriber's errors.

use super::Rows;
use crate::fmt::{fmt_bytes, fmt_count, fmt_ms};
use crate::report::Report;
use crate::report::model::{CommitLatency, LogicalReport, ReplicasReport, StandbyReport, SyncCommitReport};

/// The replicas section: its title, the two tables and the lines under them.
pub struct ReplicaSection {
    pub title: String,
    pub standbys: Rows,
    pub steps: Rows,
    pub notes: Vec<String>,
}

/// The replicas section; `None` without standbys.
pub fn replica_section(r: &Report) -> Option<ReplicaSection> {
    let rep: &ReplicasReport = r.replicas.as_ref()?;
    let title =
        format!("Replicas ({} streaming standby(s), polled every {})", rep.standbys.len(), fmt_ms(rep.interval_ms));
    let standbys = Rows {
        header: ["standby", "max lag", "at", "where", "baseline max", "max replay_lag", "blocked", "cancels"]
            .map(String::from)
            .to_vec(),
        rows: rep.standbys.iter().map(standby_row).collect(),
        right: vec![1, 2, 4, 5, 6, 7],
    };
    let steps = Rows {
        header: ["standby", "step", "max lag", "max replay_lag", "blocked"].map(String::from).to_vec(),
        rows: rep
            .standbys
            .iter()
            .flat_map(|s| {
                s.steps.iter().map(|st| {
                    vec![
                        s.name.clone(),
                        format!("{}. {}", st.step + 1, crate::fmt::short(&st.name, 48)),
                        fmt_bytes(st.max_lag_bytes),
                        st.max_replay_lag_ms.map_or("-".into(), fmt_ms),
                        fmt_count(st.blocked_sessions),
                    ]
                })
            })
            .collect(),
        right: vec![2, 3, 4],
    };
    let notes = rep.standbys.iter().flat_map(|s| notes(r, s)).collect();
    Some(ReplicaSection { title, standbys, steps, notes })
}

/// Where in the run a step index or a phase is, for a sentence.
fn place(r: &Report, step: Option<usize>, phase: Option<crate::report::model::Phase>) -> String {
    match (step, phase) {
        (Some(i), _) => {
            format!("in step {} ({})", i + 1, crate::fmt::short(r.steps.get(i).map_or("", |s| s.name.as_str()), 40))
        }
        (None, Some(p)) => format!("in the {} phase", p.name()),
        (None, None) => String::new(),
    }
}

fn notes(r: &Report, s: &StandbyReport) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(sc) = &s.sync_commit {
        out.push(sync_commit_note(r, &s.name, sc));
    }
    if let Some(l) = &s.logical {
        out.push(logical_note(r, &s.name, l));
    }
    out
}

/// `synchronous standby X (remote_apply): a commit on the primary waited … for it`.
fn sync_commit_note(r: &Report, name: &str, sc: &SyncCommitReport) -> String {
    let phase = |c: &CommitLatency| match (c.waiting_p50_ms, c.local_p50_ms, c.added_ms) {
        (Some(w), Some(l), Some(added)) => {
            format!("median {} against {} without waiting (+{})", fmt_ms(w), fmt_ms(l), fmt_ms(added))
        }
        _ => "not measured".into(),
    };
    let phases: Vec<String> = sc.phases.iter().map(|p| format!("{}: {}", p.phase.name(), phase(&p.latency))).collect();
    let most = match sc.max_added_ms {
        Some(ms) => format!("; most added: {} {}", fmt_ms(ms), place(r, sc.max_added_step, sc.max_added_phase)),
        None => String::new(),
    };
    format!(
        "synchronous standby {name} (synchronous_commit = {}): a commit on the primary took {}{most}",
        sc.level,
        phases.join("; ")
    )
}

/// `logical subscriber X: N apply errors, the first in step …`, and what it subscribed to.
fn logical_note(r: &Report, name: &str, l: &LogicalReport) -> String {
    let errors = match (l.apply_errors, l.sync_errors) {
        (Some(apply), Some(sync)) if l.first_error_at_ms.is_some() => format!(
            "{apply} apply and {sync} sync error(s), the first seen {}{}; logical replication does not carry DDL, so \
             a new column written to breaks the subscriber until it has it too",
            place(r, l.first_error_step, l.first_error_phase),
            l.first_error_message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default()
        ),
        (Some(_), Some(_)) => "no apply or sync error".to_string(),
        _ => "its errors are not counted before PostgreSQL 15".to_string(),
    };
    let publication = match (l.published_tables.as_slice(), &l.publication_note) {
        ([], Some(why)) => format!(" (publication of all tables: {why})"),
        ([], None) => String::new(),
        (tables, _) => format!(" (publication of {})", tables.join(", ")),
    };
    format!("logical subscriber {name} (slot {}): {errors}{publication}", l.slot)
}

fn standby_row(s: &StandbyReport) -> Vec<String> {
    let place = match (s.max_lag_step, s.max_lag_phase) {
        (Some(i), _) => format!("step {}", i + 1),
        (None, Some(p)) => p.name().to_string(),
        (None, None) => "-".into(),
    };
    let place = match s.max_lag_wal_step {
        Some(w) if s.max_lag_step != Some(w) => format!("{place}, behind on step {}'s WAL", w + 1),
        _ => place,
    };
    let blocked = match s.blocked_sessions {
        0 => "0".to_string(),
        n => format!("{} (longest {})", fmt_count(n), fmt_ms(s.longest_blocked_ms)),
    };
    vec![
        s.name.clone(),
        fmt_bytes(s.max_lag_bytes),
        s.max_lag_at_ms.map_or("-".into(), |t| format!("{:.1} s", t / 1000.0)),
        place,
        fmt_bytes(s.baseline_max_lag_bytes),
        s.max_replay_lag_ms.map_or("-".into(), fmt_ms),
        blocked,
        fmt_count(s.cancels),
    ]
}
