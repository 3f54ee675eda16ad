//! What SQL each backend lets a rehearsal run, checked before the dataset is
//! built: the statements of the migration, the workload (classes, scripts,
//! a session replay) and the seed script that reach beyond their database
//! (`pg::reach`, from the parse tree) are refused where they would reach
//! something that is not the clone's:
//!
//! - `local`: the server runs on this machine (as the `postgres` user, or
//!   yours): SQL that runs programs or touches files of the host is refused
//!   unless `--allow-host-access`;
//! - `url`: the server is someone's: the same, and SQL that changes the whole
//!   server (its settings, other databases, roles, tablespaces) unless
//!   `--allow-server-wide`;
//! - `docker`: the container is the sandbox; nothing is refused.

use super::Plan;
use crate::clone::Backend;
use crate::error::{Error, Result};
use crate::migration::StepKind;
use crate::pg::reach::{Finding, Reach, findings};

/// One statement of the plan that reaches beyond its database, and where it is written.
struct Found {
    place: String,
    finding: Finding,
}

/// Every statement of the plan's SQL that reaches beyond the database `current_db`.
fn scan(plan: &Plan, current_db: Option<&str>) -> Vec<Found> {
    let mut out = Vec::new();
    let mut add = |place: &dyn Fn(&Finding) -> String, sql: &str| {
        for f in findings(sql, current_db) {
            out.push(Found { place: place(&f), finding: f });
        }
    };
    let migration = plan.migration_path.display().to_string();
    for step in &plan.migration.steps {
        let statements = match &step.kind {
            StepKind::Sql(s) => s.iter().collect(),
            StepKind::Backfill { statement, .. } => vec![statement],
            StepKind::Pause(_) => vec![],
        };
        for s in statements {
            add(&|_| format!("{migration}:{} (statement {})", s.line, s.number), &s.sql);
        }
    }
    let workload = plan.workload.path.display().to_string();
    for class in &plan.workload.classes {
        for sql in class.statements() {
            add(&|_| format!("{workload}: class {:?}", class.name), sql);
        }
    }
    if let Some(replay) = &plan.workload.replay {
        for (i, session) in replay.sessions.iter().enumerate() {
            for (j, st) in session.statements.iter().enumerate() {
                add(
                    &|_| format!("session replay: session {} ({}), statement {}", i + 1, session.session, j + 1),
                    &st.sql,
                );
            }
        }
    }
    if plan.dump.is_none() {
        let seed = plan.seed_path.display().to_string();
        let line = |f: &Finding| {
            let start = f.offset + plan.seed_sql[f.offset..].len() - plan.seed_sql[f.offset..].trim_start().len();
            plan.seed_sql[..start].matches('\n').count() + 1
        };
        add(&|f| format!("{seed}:{}", line(f)), &plan.seed_sql);
    }
    out
}

/// Refuses the plan's SQL that the backend must not run without a flag;
/// the message lists each statement with its place and says which flag
/// allows it.
pub fn check(plan: &Plan, backend: Backend, current_db: Option<&str>) -> Result<()> {
    let host_refused = matches!(backend, Backend::Local | Backend::Url) && !plan.clone.allow_host_access;
    let server_refused = backend == Backend::Url && !plan.clone.allow_server_wide;
    let refused: Vec<Found> = scan(plan, current_db)
        .into_iter()
        .filter(|f| match f.finding.reach {
            Reach::HostProgram | Reach::HostFiles => host_refused,
            Reach::ServerWide => server_refused,
        })
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = refused
        .iter()
        .take(10)
        .map(|f| format!("  {}: {} ({})", f.place, f.finding.what, f.finding.reach.describe()))
        .collect();
    let more = if refused.len() > 10 { format!("\n  … and {} more", refused.len() - 10) } else { String::new() };
    let host = refused.iter().any(|f| f.finding.reach != Reach::ServerWide);
    let server = refused.iter().any(|f| f.finding.reach == Reach::ServerWide);
    let mut why = Vec::new();
    if host && backend == Backend::Local {
        why.push(
            "the local backend's server runs on this machine, so this SQL would run programs or touch files here; \
             rehearse SQL you do not trust on the docker backend (--backend docker), whose container is its \
             sandbox, or pass --allow-host-access if you trust it"
                .to_string(),
        );
    }
    if host && backend == Backend::Url {
        why.push(
            "on an existing server this SQL would run programs or touch files of that server's host; pass \
             --allow-host-access if that is intended"
                .to_string(),
        );
    }
    if server {
        why.push(format!(
            "this SQL reaches beyond the rehearsal's database{} to the whole existing server; pass \
             --allow-server-wide if that is intended",
            current_db.map(|d| format!(" {d}")).unwrap_or_default()
        ));
    }
    Err(Error::input(format!(
        "refusing to run SQL that reaches beyond its database:\n{}{more}\n{}",
        lines.join("\n"),
        why.join(";\n")
    )))
}
