//! Markdown renderer, sized for a pull-request comment: the verdict and a
//! summary table first, the details in collapsible `<details>` sections.
//! Formats the report; computes nothing.

use std::io::{self, Write};

use super::{
    Rows, command_lines, during_rows, episode_rows, group_rows, latency_rows, preflight_rows, side_by_side_rows,
    step_rows, summary_rows,
};
use crate::report::compare::Comparison;
use crate::report::model::Report;

fn details(out: &mut impl Write, title: &str, body: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
    writeln!(out, "<details><summary>{title}</summary>\n")?;
    body(out)?;
    writeln!(out, "\n</details>\n")
}

fn table(rows: Rows) -> impl FnOnce(&mut dyn Write) -> io::Result<()> {
    move |out| rows.markdown(&mut &mut *out)
}

pub fn render(r: &Report, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "### lockimpact rehearsal: `{}` ({})\n", r.scenario.name, r.verdict.status().label())?;
    summary_rows(r).markdown(out)?;
    violations(r, "", out)?;
    writeln!(out)?;
    if let Some((title, lines)) = super::new_error_findings(r) {
        writeln!(out, "**{title}**\n")?;
        for l in lines {
            writeln!(out, "- {l}")?;
        }
        writeln!(out)?;
    }
    if let Some((title, rows, findings)) = preflight_rows(r) {
        details(out, &title, |out| {
            rows.markdown(&mut &mut *out)?;
            writeln!(out)?;
            for f in findings {
                writeln!(out, "- {f}")?;
            }
            Ok(())
        })?;
    }
    if let Some((title, rows)) = group_rows(r) {
        details(out, &title, |out| {
            rows.markdown(&mut &mut *out)?;
            if let Some(lines) = command_lines(r) {
                writeln!(out, "\n```\n{}\n```", lines.join("\n"))?;
            }
            Ok(())
        })?;
    }
    details(out, &format!("Steps of <code>{}</code>", r.scenario.migration_file), |out| {
        step_rows(r).markdown(&mut &mut *out)?;
        if r.longest_step.is_some() {
            writeln!(out, "\n`*` marks the longest step.")?;
        }
        Ok(())
    })?;
    details(out, "Latency per query class (baseline, during, after)", table(latency_rows(r)))?;
    if !r.blocked.episodes.is_empty() {
        details(out, "Longest blocked episodes", table(episode_rows(r, 10)))?;
    }
    if !r.warnings.is_empty() {
        details(out, "Warnings", |out| {
            for w in &r.warnings {
                writeln!(out, "- {w}")?;
            }
            Ok(())
        })?;
    }
    writeln!(out, "<sub>{}, report schema {}</sub>", r.tool, r.schema_version)
}

fn violations(r: &Report, prefix: &str, out: &mut impl Write) -> io::Result<()> {
    if !r.verdict.violations.is_empty() {
        writeln!(out, "\n**Budget exceeded{prefix}:**\n")?;
        for v in &r.verdict.violations {
            writeln!(out, "- `{}`: {}", v.budget, v.message)?;
        }
    }
    if !r.verdict.inconclusive.is_empty() {
        writeln!(out, "\n**Inconclusive{prefix}, the run is no evidence:**\n")?;
        for i in &r.verdict.inconclusive {
            writeln!(out, "- `{}`: {}", i.reason, i.message)?;
        }
    }
    Ok(())
}

pub fn render_comparison(c: &Comparison, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "### lockimpact comparison ({})\n", c.status().label())?;
    writeln!(out, "**{}**\n", c.summary)?;
    side_by_side_rows(c).markdown(out)?;
    for cand in &c.candidates {
        violations(&cand.report, &format!(" by {}", cand.label), out)?;
    }
    writeln!(out)?;
    details(out, "Latency during the migration (p99 / max)", table(during_rows(c)))?;
    for cand in &c.candidates {
        let title = format!(
            "{}: steps of <code>{}</code> ({})",
            cand.label, cand.report.scenario.migration_file, cand.report.scenario.name
        );
        details(out, &title, table(step_rows(&cand.report)))?;
    }
    if !c.differences.is_empty() {
        details(out, "How the scenarios differ", |out| {
            for d in &c.differences {
                writeln!(out, "- {d}")?;
            }
            Ok(())
        })?;
    }
    let tool = c.candidates.first().map(|x| x.report.tool.as_str()).unwrap_or("lockimpact");
    writeln!(out, "<sub>{tool}, comparison schema {}</sub>", c.schema_version)
}
