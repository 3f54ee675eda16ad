//! HTML renderer: one self-contained file (inline CSS, inline SVG, no script,
//! no network) with the summary first, then charts (latency per class by
//! intended start with the migration steps shaded and numbered, operations
//! waiting and sessions blocked, latency percentiles per phase, and with
//! standbys each one's replay lag in bytes), the
//! annotated migration and the detail tables. Formats; computes nothing.

use std::io::{self, Write};

use super::svg::{Band, Chart, PALETTE, Scale, Series};
use super::{
    Rows, ServerDetail, blocked_note, command_lines, during_rows, episode_rows, group_rows, latency_rows,
    preflight_rows, short, side_by_side_rows, step_rows, summary_rows,
};
use crate::report::compare::Comparison;
use crate::report::model::{Phase, Report, VerdictStatus};

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;\
color:#222;max-width:1200px}h1{font-size:22px}h2{font-size:18px;margin-top:28px}h3{font-size:15px}\
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;\
vertical-align:top}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f4f4f4}\
.pass{color:#17803d;font-weight:bold}.fail{color:#c62828;font-weight:bold}.inconclusive{color:#b26a00;font-weight:bold}.summary{font-size:16px}\
svg.chart{display:block;margin:10px 0;background:#fff}.ct{font-weight:bold;font-size:13px}\
.band{fill:#ff9800;fill-opacity:.14;stroke:#ff9800;stroke-opacity:.5}.bl{font-size:10px;fill:#a65d00}\
.grid{stroke:#eee}.tick{stroke:#999}.frame{fill:none;stroke:#999}.yt{font-size:11px;text-anchor:end;fill:#555}\
.xt{font-size:11px;text-anchor:middle;fill:#555}.al{font-size:11px;text-anchor:middle;fill:#333}\
.lg{font-size:11px;fill:#333}section{border-top:1px solid #ddd;margin-top:24px}\
pre.sql{background:#f7f7f7;border:1px solid #ddd;padding:8px;overflow-x:auto;font-size:12px}.legend{font-size:12px;color:#555}";

impl Rows {
    /// Writes it as an HTML table.
    pub fn html(&self, out: &mut impl Write) -> io::Result<()> {
        let class = |i: usize| if self.right.contains(&i) { " class=\"num\"" } else { "" };
        write!(out, "<table>")?;
        if self.header.iter().any(|h| !h.is_empty()) {
            write!(out, "<thead><tr>")?;
            for (i, h) in self.header.iter().enumerate() {
                write!(out, "<th{}>{}</th>", class(i), escape(h))?;
            }
            write!(out, "</tr></thead>")?;
        }
        writeln!(out, "<tbody>")?;
        for r in &self.rows {
            write!(out, "<tr>")?;
            for (i, c) in r.iter().enumerate() {
                write!(out, "<td{}>{}</td>", class(i), escape(c))?;
            }
            writeln!(out, "</tr>")?;
        }
        writeln!(out, "</tbody></table>")
    }
}

fn head(out: &mut impl Write, title: &str) -> io::Result<()> {
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
        escape(title)
    )
}

fn status_class(status: VerdictStatus) -> &'static str {
    match status {
        VerdictStatus::Pass => "pass",
        VerdictStatus::Fail => "fail",
        VerdictStatus::Inconclusive => "inconclusive",
    }
}

fn verdict_span(status: VerdictStatus) -> String {
    format!("<span class=\"{}\">{}</span>", status_class(status), status.label())
}

pub fn render(r: &Report, out: &mut impl Write) -> io::Result<()> {
    head(out, &format!("lockimpact: {}", r.scenario.name))?;
    writeln!(out, "<h1>lockimpact rehearsal: {} {}</h1>", escape(&r.scenario.name), verdict_span(r.verdict.status()))?;
    body(r, 2, out)?;
    writeln!(out, "<p><small>{}, report schema {}</small></p></body></html>", escape(&r.tool), r.schema_version)
}

/// Everything about one rehearsal; `h` is the heading level of its sections.
fn body(r: &Report, h: u8, out: &mut impl Write) -> io::Result<()> {
    summary_rows(r, ServerDetail::Shown).html(out)?;
    if let Some(note) = blocked_note(r) {
        writeln!(out, "<p>{}</p>", escape(&note))?;
    }
    if !r.verdict.violations.is_empty() {
        writeln!(out, "<p class=\"fail\">Budget exceeded:</p><ul>")?;
        for v in &r.verdict.violations {
            writeln!(out, "<li><code>{}</code>: {}</li>", escape(&v.budget), escape(&v.message))?;
        }
        writeln!(out, "</ul>")?;
        let remedies = super::remedy_lines(&r.verdict.violations);
        if !remedies.is_empty() {
            writeln!(out, "<p><strong>Most likely remedies:</strong></p><ul>")?;
            for line in remedies {
                writeln!(out, "<li>{}</li>", escape(&line))?;
            }
            writeln!(out, "</ul>")?;
        }
    }
    if !r.verdict.inconclusive.is_empty() {
        writeln!(out, "<p class=\"inconclusive\">Inconclusive, the run is no evidence:</p><ul>")?;
        for i in &r.verdict.inconclusive {
            writeln!(out, "<li><code>{}</code>: {}</li>", escape(&i.reason), escape(&i.message))?;
        }
        writeln!(out, "</ul>")?;
    }
    for w in &r.warnings {
        writeln!(out, "<p><strong>warning:</strong> {}</p>", escape(w))?;
    }
    if let Some((title, lines)) = super::new_error_findings(r) {
        writeln!(out, "<h{h}>{}</h{h}>\n<ul>", escape(&title))?;
        for l in lines {
            writeln!(out, "<li>{}</li>", escape(&l))?;
        }
        writeln!(out, "</ul>")?;
    }
    writeln!(out, "<h{h}>Latency over time</h{h}>")?;
    writeln!(out, "{}", latency_chart(r).svg())?;
    legend(r, out)?;
    writeln!(out, "<h{h}>Operations waiting and sessions blocked over time</h{h}>")?;
    writeln!(out, "{}", blocked_chart(r).svg())?;
    writeln!(out, "<h{h}>Latency percentiles per phase</h{h}>")?;
    writeln!(out, "{}", percentile_chart(r).svg())?;
    replicas(r, h, out)?;
    if let Some(section) = preflight_rows(r) {
        table_with_notes(out, h, section)?;
    }
    if let Some((title, rows)) = group_rows(r) {
        writeln!(out, "<h{h}>{}</h{h}>", escape(&title))?;
        rows.html(out)?;
        if let Some(lines) = command_lines(r) {
            writeln!(out, "<pre>{}</pre>", escape(&lines.join("\n")))?;
        }
    }
    writeln!(out, "<h{h}>Migration, annotated: <code>{}</code></h{h}>", escape(&r.scenario.migration_file))?;
    writeln!(out, "<pre class=\"sql\">{}</pre>", escape(&super::annotated::annotated(r).join("\n")))?;
    writeln!(out, "<h{h}>Steps</h{h}>")?;
    step_rows(r).html(out)?;
    writeln!(out, "<h{h}>Latency per query class</h{h}>")?;
    latency_rows(r).html(out)?;
    if !r.blocked.episodes.is_empty() {
        writeln!(out, "<h{h}>Longest blocked episodes</h{h}>")?;
        episode_rows(r, 20).html(out)?;
    }
    for section in [super::stop_point_rows(r), super::extrapolation::extrapolation_tables(r)].into_iter().flatten() {
        table_with_notes(out, h, section)?;
    }
    Ok(())
}

/// With standbys: a replay-lag chart per standby (steps shaded), then the
/// replicas tables of the other reports.
fn replicas(r: &Report, h: u8, out: &mut impl Write) -> io::Result<()> {
    let (Some(rep), Some(section)) = (&r.replicas, super::replica::replica_section(r)) else {
        return Ok(());
    };
    writeln!(out, "<h{h}>{}</h{h}>", escape(&section.title))?;
    for s in &rep.standbys {
        writeln!(out, "{}", lag_chart(r, s).svg())?;
    }
    section.standbys.html(out)?;
    table_with_notes(out, h + 1, ("Per step".into(), section.steps, section.notes))
}

/// A standby's replay lag in bytes over time, the steps shaded.
fn lag_chart(r: &Report, s: &crate::report::model::StandbyReport) -> Chart {
    let (x_range, x_ticks) = seconds_axis(r);
    let points = s.lag_series.iter().map(|&(t, b)| (t / 1000.0, Some(b as f64))).collect();
    Chart {
        title: format!("Replay lag of standby {} behind the primary (bytes of WAL not yet replayed)", s.name),
        x_label: "seconds since warmup started".into(),
        y_label: "replay lag".into(),
        x_range,
        x_ticks,
        y_scale: Scale::Bytes,
        series: vec![Series { name: "replay lag".into(), points, color: "#9467bd", dashed: false }],
        bands: step_bands(r),
    }
}

/// A heading, a table and a list of sentences under it.
fn table_with_notes(out: &mut impl Write, h: u8, (title, rows, notes): (String, Rows, Vec<String>)) -> io::Result<()> {
    writeln!(out, "<h{h}>{}</h{h}>", escape(&title))?;
    rows.html(out)?;
    writeln!(out, "<ul>")?;
    for n in notes {
        writeln!(out, "<li>{}</li>", escape(&n))?;
    }
    writeln!(out, "</ul>")
}

fn step_bands(r: &Report) -> Vec<Band> {
    r.steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.duration_ms > 0.0)
        .map(|(i, s)| Band {
            from: s.start_ms / 1000.0,
            to: (s.start_ms + s.duration_ms) / 1000.0,
            number: i + 1,
            label: format!("step {}: {}", i + 1, short(&s.name, 60)),
        })
        .collect()
}

/// What the numbered bands are: one line under the latency chart.
fn legend(r: &Report, out: &mut impl Write) -> io::Result<()> {
    let steps: Vec<String> =
        step_bands(r).iter().map(|b| format!("{} {}", b.number, short(&r.steps[b.number - 1].name, 40))).collect();
    if steps.is_empty() {
        return Ok(());
    }
    writeln!(out, "<p class=\"legend\">Shaded: the migration's steps, by number: {}</p>", escape(&steps.join(" · ")))
}

fn seconds_axis(r: &Report) -> ((f64, f64), Vec<(f64, String)>) {
    let end = r.timeline.len().max(1) as f64;
    let every = ((end / 12.0).ceil() as usize).max(1);
    let ticks = (0..=r.timeline.len()).step_by(every).map(|t| (t as f64, format!("{t}s"))).collect();
    ((0.0, end), ticks)
}

fn latency_chart(r: &Report) -> Chart {
    let (x_range, x_ticks) = seconds_axis(r);
    let mut series = Vec::new();
    for (i, class) in r.latency.keys().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        for (q, dashed) in [("p99", false), ("p50", true)] {
            let points = r
                .timeline
                .iter()
                .map(|s| {
                    // By intended start when recorded, else (older reports) by completion.
                    let classes = s.started.as_ref().map_or(&s.classes, |b| &b.classes);
                    let v = classes.get(class).map(|c| if dashed { c.p50_ms } else { c.p99_ms });
                    (s.t as f64 + 0.5, v)
                })
                .collect();
            series.push(Series { name: format!("{class} {q}"), points, color, dashed });
        }
    }
    Chart {
        title: "Latency per query class by the second operations were due to start (p99 solid, p50 dashed)".into(),
        x_label: "seconds since warmup started".into(),
        y_label: "latency (log)".into(),
        x_range,
        x_ticks,
        y_scale: Scale::LogMs,
        series,
        bands: step_bands(r),
    }
}

fn blocked_chart(r: &Report) -> Chart {
    let (x_range, x_ticks) = seconds_axis(r);
    let step = |f: &dyn Fn(&crate::report::model::Second) -> Option<u64>| -> Vec<(f64, Option<f64>)> {
        r.timeline
            .iter()
            .flat_map(|s| {
                let v = f(s).map(|n| n as f64);
                [(s.t as f64, v), (s.t as f64 + 1.0, v)]
            })
            .collect()
    };
    let mut series = Vec::new();
    if r.timeline.iter().any(|s| s.waiting.is_some()) {
        let points = step(&|s| s.waiting);
        series.push(Series { name: "operations waiting".into(), points, color: "#1f77b4", dashed: false });
    }
    series.extend([
        Series {
            name: "sessions on any lock".into(),
            points: step(&|s| Some(u64::from(s.blocked))),
            color: "#7f7f7f",
            dashed: true,
        },
        Series {
            name: "on the migration".into(),
            points: step(&|s| Some(u64::from(s.blocked_by_migration))),
            color: "#d62728",
            dashed: false,
        },
    ]);
    Chart {
        title: "Most operations waiting (due, not finished) and sessions blocked at once, per second".into(),
        x_label: "seconds since warmup started".into(),
        y_label: "operations, sessions".into(),
        x_range,
        x_ticks,
        y_scale: Scale::Count,
        series,
        bands: step_bands(r),
    }
}

/// x position of a percentile: -log10(1 - p/100), so 90, 99, 99.9 are evenly
/// spaced; the maximum (100) is drawn one decade past 99.99.
fn percentile_x(p: f64) -> f64 {
    if p >= 100.0 { 5.0 } else { -(1.0 - p / 100.0).log10() }
}

fn percentile_chart(r: &Report) -> Chart {
    let colors = [(Phase::Baseline, "#2ca02c"), (Phase::During, "#d62728"), (Phase::After, "#1f77b4")];
    let series = colors
        .iter()
        .filter_map(|(phase, color)| {
            let points = r.latency_percentiles.get(phase)?;
            Some(Series {
                name: phase.to_string(),
                points: points.iter().map(|p| (percentile_x(p.percentile), Some(p.ms))).collect(),
                color,
                dashed: false,
            })
        })
        .collect();
    let x_ticks = [50.0, 90.0, 99.0, 99.9, 99.99, 100.0]
        .iter()
        .map(|&p| (percentile_x(p), if p >= 100.0 { "max".to_string() } else { format!("{p}%") }))
        .collect();
    Chart {
        title: "Latency by percentile, all classes, per phase".into(),
        x_label: "percentile".into(),
        y_label: "latency (log)".into(),
        x_range: (percentile_x(50.0), percentile_x(100.0)),
        x_ticks,
        y_scale: Scale::LogMs,
        series,
        bands: Vec::new(),
    }
}

pub fn render_comparison(c: &Comparison, out: &mut impl Write) -> io::Result<()> {
    head(out, "lockimpact comparison")?;
    let (headline, status) = super::comparison_headline(c);
    writeln!(
        out,
        "<h1>lockimpact comparison: <span class=\"{}\">{}</span></h1>",
        status_class(status),
        escape(&headline)
    )?;
    writeln!(out, "<p class=\"summary\"><strong>{}</strong></p>", escape(&c.summary))?;
    if let Some(note) = super::concurrency_note(c) {
        writeln!(out, "<p><strong>note:</strong> {}</p>", escape(&note))?;
    }
    side_by_side_rows(c).html(out)?;
    writeln!(out, "<h2>Latency during the migration (p99 / max)</h2>")?;
    during_rows(c).html(out)?;
    for d in &c.differences {
        writeln!(out, "<p><strong>note:</strong> {}</p>", escape(d))?;
    }
    for cand in &c.candidates {
        writeln!(
            out,
            "<section><h2>{}: {} {}</h2>",
            escape(&cand.label),
            escape(&cand.report.scenario.name),
            verdict_span(cand.report.verdict.status())
        )?;
        body(&cand.report, 3, out)?;
        writeln!(out, "</section>")?;
    }
    let tool = c.candidates.first().map(|x| x.report.tool.as_str()).unwrap_or("lockimpact");
    writeln!(out, "<p><small>{}, comparison schema {}</small></p></body></html>", escape(tool), c.schema_version)
}
