//! The extrapolation section of every format (`run --scales`): per step and
//! figure, what each scale measured beside the fitted model and the
//! prediction at production's row count; then the budgets a step would
//! exceed there, and what was left out of the fit.

use super::Rows;
use crate::fmt::{fmt_bytes, fmt_count, fmt_ms};
use crate::report::Report;
use crate::report::model::{Figure, FigureFit};

/// The title, the table and the lines under it; `None` without `--scales`.
pub fn extrapolation_tables(r: &Report) -> Option<(String, Rows, Vec<String>)> {
    let e = r.extrapolation.as_ref()?;
    let scales: Vec<String> = e.scales.iter().map(|&n| fmt_count(n)).collect();
    let with = match e.scaled_vars.is_empty() {
        true => String::new(),
        false => format!(", {} in proportion", e.scaled_vars.join(", ")),
    };
    let title = format!(
        "Extrapolation to {} rows (rehearsed at {} rows{with}; {:.0} % prediction intervals)",
        fmt_count(e.predict_rows),
        scales.join(", "),
        e.level * 100.0
    );
    let mut rows = Vec::new();
    for s in &e.steps {
        // A figure that stayed 0 at every scale (nothing blocked) is left out.
        for (f, fit) in s.figures.iter().filter(|(_, fit)| fit.measured.iter().any(|&m| m > 0.0)) {
            rows.push(row(s.step, &s.name, *f, fit));
        }
    }
    let header = ["step", "figure", &format!("measured ({} rows)", scales.join(" / ")), "model", "R²"]
        .into_iter()
        .map(String::from)
        .chain([format!("at {} rows", fmt_count(e.predict_rows)), "interval".into()])
        .collect();
    let lines = e.risks.iter().map(|k| format!("WARNING: {}", k.message)).chain(e.notes.iter().cloned()).collect();
    Some((title, Rows { header, rows, right: vec![2, 4, 5, 6] }, lines))
}

fn row(step: usize, name: &str, f: Figure, fit: &FigureFit) -> Vec<String> {
    let v = |x: f64| if f == Figure::WalBytes { fmt_bytes(x.max(0.0) as u64) } else { fmt_ms(x) };
    vec![
        format!("{}. {}", step + 1, crate::fmt::short(name, 40)),
        f.as_str().to_string(),
        fit.measured.iter().map(|&m| v(m)).collect::<Vec<_>>().join(" / "),
        fit.model.formula().to_string(),
        format!("{:.3}", fit.r2),
        v(fit.predicted),
        format!("{} – {}", v(fit.low), v(fit.high)),
    ]
}
