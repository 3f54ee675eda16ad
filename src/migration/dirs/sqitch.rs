//! sqitch: `sqitch.plan` lists the changes in order (`%project=…`, one
//! change per line, `@tag` lines); each change has `deploy/<change>.sql`,
//! its down part `revert/<change>.sql` and `verify/<change>.sql` (kept, not
//! run: `sqitch deploy` runs it only with `--verify`). A change reworked
//! after a tag keeps its earlier scripts as `<change>@<tag>.sql`. sqitch
//! runs a script with psql, statement by statement; the script's own
//! `BEGIN … COMMIT` (as sqitch's templates write) is its transaction.
//! History: `sqitch.changes (change, project)`: the changes deployed now.

use std::path::Path;

use super::{Ctx, Read, Sending, Unit};
use crate::error::{Error, Result};
use crate::migration::{Group, TxHint};

pub const HISTORY_SQL: &str = "SELECT change, project FROM {table}";

/// A change of the plan: its name and the file stem of its scripts.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub name: String,
    pub stem: String,
    pub line: usize,
}

/// The project and the changes of a plan, reworked ones named by the tag after them.
pub fn parse_plan(text: &str, file: &str) -> Result<(Option<String>, Vec<Change>)> {
    let mut project = None;
    let mut changes: Vec<Change> = Vec::new();
    let mut untagged: Vec<usize> = Vec::new(); // changes since the last tag
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(pragma) = line.strip_prefix('%') {
            if let Some(("project", v)) = pragma.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
                project = Some(v.to_string());
            }
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or_default();
        if let Some(tag) = first.strip_prefix('@') {
            // Earlier instances of a change reworked later are named by this tag.
            for &c in &untagged {
                let name = changes[c].name.clone();
                let again = |l: &str| l.split_whitespace().next().map(|w| w.trim_start_matches('+')) == Some(&name);
                if text.lines().skip(i + 1).any(again) {
                    changes[c].stem = format!("{name}@{tag}");
                }
            }
            untagged.clear();
            continue;
        }
        if first.starts_with('-') {
            return Err(Error::input(format!(
                "{file}:{}: a revert entry ({first}); lockimpact reads plans of deploy changes only",
                i + 1
            )));
        }
        let name = first.trim_start_matches('+').to_string();
        untagged.push(changes.len());
        changes.push(Change { stem: name.clone(), name, line: i + 1 });
    }
    Ok((project, changes))
}

pub fn read(dir: &Path, ctx: &Ctx) -> Result<Read> {
    let plan_path = dir.join("sqitch.plan");
    let (project, changes) = parse_plan(&super::read_text(&plan_path)?, &plan_path.display().to_string())?;
    let hint = TxHint {
        why: ", and the script's own BEGIN … COMMIT block around it is one".into(),
        fix: "move it out of the block".into(),
        control: String::new(),
    };
    let mut parts = Vec::new();
    for c in &changes {
        let script_of = |kind: &str| dir.join(kind).join(format!("{}.sql", c.stem));
        let deploy = script_of("deploy");
        if !deploy.is_file() {
            return Err(Error::input(format!(
                "{}:{}: change {:?} has no deploy script {}",
                plan_path.display(),
                c.line,
                c.name,
                deploy.display()
            )));
        }
        let name = format!("deploy/{}.sql", c.stem);
        let unit = Unit { path: &deploy, name: &name, version: Some(&c.name) };
        let mut groups = super::groups(ctx, unit, &super::read_text(&deploy)?, &[], Sending::Autocommit, &hint)?;
        let optional = |kind: &str| -> Result<Option<crate::migration::Script>> {
            let p = script_of(kind);
            if !p.is_file() {
                return Ok(None);
            }
            super::script(ctx, &super::read_text(&p)?, &[], &p, Sending::Autocommit, &hint)
        };
        let (down, verify) = (optional("revert")?, optional("verify")?);
        for (g, _) in groups.iter_mut() {
            g.down = down.clone();
            g.verify = verify.clone();
        }
        // The verify script checks the change once deployed: after its last step.
        if let (Some(v), Some(last)) = (&verify, groups.last_mut().and_then(|(_, steps)| steps.last_mut())) {
            last.verify = v.steps.iter().flat_map(|s| s.statements().into_iter().cloned()).collect();
        }
        parts.extend(groups);
    }
    let mut read = Read::parts(parts);
    read.project = project;
    Ok(read)
}

/// Rows (change, project): the i-th instance of a change (reworked ones
/// come back) is deployed when the project has at least i rows of it.
pub fn applied(groups: &[Group], rows: &[Vec<String>], project: &str) -> super::Applied {
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut last: Option<&str> = None;
    let applied = groups
        .iter()
        .map(|g| {
            let name = g.version.as_deref().unwrap_or_default();
            // Several groups of one script (BEGIN … COMMIT blocks) are one instance.
            if last != Some(g.name.as_str()) {
                *seen.entry(name).or_default() += 1;
            }
            last = Some(g.name.as_str());
            let deployed = rows.iter().filter(|r| r[0] == name && r[1] == project).count();
            deployed >= seen[name]
        })
        .collect();
    super::Applied::of(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_with_a_rework() {
        let plan = "%syntax-version=1.0.0\n%project=shop\n\nschema 2024-01-01T00:00:00Z A <a@x> # s\n\
                    users [schema] 2024-01-02T00:00:00Z A <a@x>\n@v1 2024-01-03T00:00:00Z A <a@x>\n\
                    users [users@v1] 2024-01-04T00:00:00Z A <a@x> # reworked\n";
        let (project, changes) = parse_plan(plan, "sqitch.plan").unwrap();
        assert_eq!(project.as_deref(), Some("shop"));
        let stems: Vec<&str> = changes.iter().map(|c| c.stem.as_str()).collect();
        assert_eq!(stems, ["schema", "users@v1", "users"]);
    }
}
