//! Markdown renderer, sized for a pull-request comment: the verdict and a
//! summary table first, the details (the annotated migration among them) in
//! collapsible `<details>` sections, nothing about the disposable server
//! (its port), and the whole under GitHub's 65,536-character limit: details
//! that do not fit are cut, with a note saying which. Formats the report;
//! computes nothing.

use std::io::{self, Write};

use super::{
    Rows, ServerDetail, blocked_note, command_lines, during_rows, episode_rows, group_rows, latency_rows,
    preflight_rows, side_by_side_rows, step_rows, summary_rows,
};
use crate::report::compare::Comparison;
use crate::report::model::Report;

/// GitHub's limit on a comment's body, in characters.
pub const COMMENT_LIMIT: usize = 65_536;

/// A collapsible section: its title and its Markdown body.
struct Details {
    title: String,
    body: String,
}

/// Writes `head`, the `sections` that fit under `COMMENT_LIMIT` with `tail`,
/// and a note naming the sections cut (the last ones first; one too long by
/// itself is cut at a line).
fn fit(out: &mut impl Write, head: String, mut sections: Vec<Details>, tail: String) -> io::Result<()> {
    let render = |d: &Details| format!("<details><summary>{}</summary>\n\n{}\n</details>\n\n", d.title, d.body);
    let room = COMMENT_LIMIT - 400; // the cut note
    let mut used = head.chars().count() + tail.chars().count();
    let mut kept = String::new();
    let mut cut = Vec::new();
    for d in sections.drain(..) {
        let text = render(&d);
        let n = text.chars().count();
        if used + n <= room {
            used += n;
            kept.push_str(&text);
        } else if cut.is_empty() && room.saturating_sub(used) > 2_000 {
            let part = cut_at_line(&d.body, room - used - d.title.len() - 200);
            let text = render(&Details { title: format!("{} (cut)", d.title), body: part });
            used += text.chars().count();
            kept.push_str(&text);
            cut.push(format!("the rest of \"{}\"", strip_tags(&d.title)));
        } else {
            cut.push(format!("\"{}\"", strip_tags(&d.title)));
        }
    }
    write!(out, "{head}{kept}")?;
    if !cut.is_empty() {
        writeln!(
            out,
            "_Cut to stay under GitHub's {COMMENT_LIMIT}-character limit: {}. The JSON and HTML reports have everything._\n",
            cut.join(", ")
        )?;
    }
    write!(out, "{tail}")
}

/// `body` cut at the last line that keeps it under `max` characters, its
/// code fence closed.
fn cut_at_line(body: &str, max: usize) -> String {
    let mut out = String::new();
    for line in body.lines() {
        if out.chars().count() + line.chars().count() + 1 > max {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    if out.matches("```").count() % 2 == 1 {
        out.push_str("```\n");
    }
    out.push_str("\n… cut here.\n");
    out
}

fn strip_tags(s: &str) -> String {
    s.replace("<code>", "").replace("</code>", "")
}

fn markdown(rows: Rows) -> String {
    let mut out = Vec::new();
    rows.markdown(&mut out).expect("writing to memory");
    String::from_utf8(out).expect("UTF-8")
}

fn bullets(lines: impl IntoIterator<Item = String>) -> String {
    lines.into_iter().map(|l| format!("- {l}\n")).collect()
}

/// The annotated migration as a collapsible SQL block.
fn annotated(r: &Report, title: String) -> Details {
    let sql = super::annotated::annotated(r).join("\n");
    Details { title, body: format!("```sql\n{sql}```\n") }
}

pub fn render(r: &Report, out: &mut impl Write) -> io::Result<()> {
    let mut head = format!("### lockimpact rehearsal: `{}` ({})\n\n", r.scenario.name, r.verdict.status().label());
    head.push_str(&markdown(summary_rows(r, ServerDetail::Hidden)));
    if let Some(note) = blocked_note(r) {
        head.push_str(&format!("\n{note}\n"));
    }
    head.push_str(&violations(r, ""));
    head.push('\n');
    if let Some((title, lines)) = super::new_error_findings(r) {
        head.push_str(&format!("**{title}**\n\n{}\n", bullets(lines)));
    }
    let tail = format!("<sub>{}, report schema {}</sub>\n", r.tool, r.schema_version);
    fit(out, head, sections(r), tail)
}

/// The details of one run, most useful first.
fn sections(r: &Report) -> Vec<Details> {
    let mut s = vec![annotated(r, format!("Migration, annotated: <code>{}</code>", r.scenario.migration_file))];
    if let Some((title, rows, findings)) = preflight_rows(r) {
        s.push(Details { title, body: format!("{}\n{}", markdown(rows), bullets(findings)) });
    }
    if let Some((title, rows)) = group_rows(r) {
        let command = command_lines(r).map(|l| format!("\n```\n{}\n```\n", l.join("\n"))).unwrap_or_default();
        s.push(Details { title, body: format!("{}{command}", markdown(rows)) });
    }
    let longest = if r.longest_step.is_some() { "\n`*` marks the longest step.\n" } else { "" };
    s.push(Details { title: "Steps".into(), body: format!("{}{longest}", markdown(step_rows(r))) });
    s.push(Details {
        title: "Latency per query class (baseline, during, after)".into(),
        body: markdown(latency_rows(r)),
    });
    if !r.blocked.episodes.is_empty() {
        s.push(Details { title: "Longest blocked episodes".into(), body: markdown(episode_rows(r, 10)) });
    }
    if let Some(rep) = super::replica::replica_section(r) {
        let body = format!("{}\n{}\n{}", markdown(rep.standbys), markdown(rep.steps), bullets(rep.notes));
        s.push(Details { title: rep.title, body });
    }
    for (title, rows, lines) in
        [super::stop_point_rows(r), super::extrapolation::extrapolation_tables(r)].into_iter().flatten()
    {
        s.push(Details { title, body: format!("{}\n{}", markdown(rows), bullets(lines)) });
    }
    if !r.warnings.is_empty() {
        s.push(Details { title: "Warnings".into(), body: bullets(r.warnings.iter().cloned()) });
    }
    s
}

fn violations(r: &Report, prefix: &str) -> String {
    let mut out = String::new();
    if !r.verdict.violations.is_empty() {
        out.push_str(&format!("\n**Budget exceeded{prefix}:**\n\n"));
        for v in &r.verdict.violations {
            out.push_str(&format!("- `{}`: {}\n", v.budget, v.message));
        }
        let remedies = super::remedy_lines(&r.verdict.violations);
        if !remedies.is_empty() {
            out.push_str(&format!(
                "\n**Most likely remedies{}:**\n\n{}",
                prefix.replace(" by ", " for "),
                bullets(remedies)
            ));
        }
    }
    if !r.verdict.inconclusive.is_empty() {
        out.push_str(&format!("\n**Inconclusive{prefix}, the run is no evidence:**\n\n"));
        out.push_str(&bullets(r.verdict.inconclusive.iter().map(|i| format!("`{}`: {}", i.reason, i.message))));
    }
    out
}

pub fn render_comparison(c: &Comparison, out: &mut impl Write) -> io::Result<()> {
    let (headline, _) = super::comparison_headline(c);
    let mut head = format!("### lockimpact comparison: {headline}\n\n**{}**\n\n", c.summary);
    if let Some(note) = super::concurrency_note(c) {
        head.push_str(&format!("> {note}\n\n"));
    }
    head.push_str(&markdown(side_by_side_rows(c)));
    for cand in &c.candidates {
        head.push_str(&violations(&cand.report, &format!(" by {}", cand.label)));
    }
    head.push('\n');
    let mut sections = Vec::new();
    for cand in &c.candidates {
        let (label, r) = (&cand.label, &cand.report);
        let title =
            format!("{label}: migration annotated, <code>{}</code> ({})", r.scenario.migration_file, r.scenario.name);
        sections.push(annotated(r, title));
    }
    sections.push(Details { title: "Latency during the migration (p99 / max)".into(), body: markdown(during_rows(c)) });
    for cand in &c.candidates {
        let title = format!("{}: steps ({})", cand.label, cand.report.scenario.name);
        sections.push(Details { title, body: markdown(step_rows(&cand.report)) });
    }
    if !c.differences.is_empty() {
        sections
            .push(Details { title: "How the scenarios differ".into(), body: bullets(c.differences.iter().cloned()) });
    }
    let tool = c.candidates.first().map(|x| x.report.tool.as_str()).unwrap_or("lockimpact");
    let tail = format!("<sub>{tool}, comparison schema {}</sub>\n", c.schema_version);
    fit(out, head, sections, tail)
}
