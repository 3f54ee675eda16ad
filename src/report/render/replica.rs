//! The replicas section of the terminal and Markdown reports, when the
//! clone had standbys: per standby, the largest replay lag (bytes and
//! time), where it happened, standby sessions blocked by a replayed lock and
//! queries cancelled by recovery conflicts; then the largest lag per step.

use super::Rows;
use crate::fmt::{fmt_bytes, fmt_count, fmt_ms};
use crate::report::Report;
use crate::report::model::{ReplicasReport, StandbyReport};

/// The title and the two tables (standbys, then steps); `None` without standbys.
pub fn replica_tables(r: &Report) -> Option<(String, Rows, Rows)> {
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
    Some((title, standbys, steps))
}

fn standby_row(s: &StandbyReport) -> Vec<String> {
    let place = match (s.max_lag_step, s.max_lag_phase) {
        (Some(i), _) => format!("step {}", i + 1),
        (None, Some(p)) => p.name().to_string(),
        (None, None) => "-".into(),
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
