//! Small SVG line charts for the HTML report: series of points (gaps where a
//! value is missing), shaded bands (the migration steps) labelled by number
//! without any two labels overlapping, a count, bytes or log y-axis. Pure
//! formatting: it maps given values to pixels.

use std::fmt::Write;

use super::html::escape;

pub const PALETTE: &[&str] =
    &["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];

pub struct Series {
    pub name: String,
    pub points: Vec<(f64, Option<f64>)>,
    pub color: &'static str,
    pub dashed: bool,
}

pub struct Band {
    pub from: f64,
    pub to: f64,
    /// The step's number, its label on the chart.
    pub number: usize,
    /// The full label, its tooltip.
    pub label: String,
}

#[derive(Clone, Copy, PartialEq)]
pub enum Scale {
    /// Whole numbers from 0 (sessions, operations): integer ticks.
    Count,
    /// Log10; values are milliseconds and ticks are labelled as durations.
    LogMs,
    /// Bytes from 0, ticks labelled as sizes (kB, MB).
    Bytes,
}

pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_range: (f64, f64),
    /// Ticks on the x-axis: position and label.
    pub x_ticks: Vec<(f64, String)>,
    pub y_scale: Scale,
    pub series: Vec<Series>,
    pub bands: Vec<Band>,
}

const W: f64 = 960.0;
const H: f64 = 300.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 44.0;
/// A band label's font size (CSS `.bl`) and a width per character that no
/// digit or letter of it exceeds, so estimated boxes contain the drawn ones.
const LABEL_CHAR_W: f64 = 7.0;
const LABEL_GAP: f64 = 6.0;

/// The plot area and the value ranges mapped onto it.
struct Frame {
    x: (f64, f64),
    y: (f64, f64),
    scale: Scale,
    /// Width and height of the plot area.
    pw: f64,
    ph: f64,
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        LEFT + (x - self.x.0) / (self.x.1 - self.x.0).max(1e-9) * self.pw
    }

    fn py(&self, v: f64) -> f64 {
        let t = match self.scale {
            Scale::Count | Scale::Bytes => v,
            Scale::LogMs => v.max(1e-6).log10(),
        };
        TOP + self.ph - (t - self.y.0) / (self.y.1 - self.y.0).max(1e-9) * self.ph
    }
}

impl Chart {
    pub fn svg(&self) -> String {
        let f = Frame {
            x: self.x_range,
            y: self.y_range(),
            scale: self.y_scale,
            pw: W - LEFT - RIGHT,
            ph: H - TOP - BOTTOM,
        };
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img"><title>{t}</title><text x="{LEFT}" y="20" class="ct">{t}</text>"#,
            t = escape(&self.title)
        );
        self.bands(&f, &mut s);
        self.axes(&f, &mut s);
        for (i, series) in self.series.iter().enumerate() {
            series_path(&f, series, i, &mut s);
        }
        s.push_str("</svg>");
        s
    }

    /// The y-axis range: from 0 (count), or whole decades around the values (log).
    fn y_range(&self) -> (f64, f64) {
        let values = self.series.iter().flat_map(|s| s.points.iter().filter_map(|p| p.1));
        match self.y_scale {
            Scale::Count | Scale::Bytes => (0.0, count_step(values.fold(1.0f64, f64::max)) * 4.0),
            Scale::LogMs => {
                let (lo, hi) = values
                    .filter(|v| *v > 0.0)
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
                if lo.is_finite() {
                    (lo.log10().floor(), hi.log10().ceil().max(lo.log10().floor() + 1.0))
                } else {
                    (-1.0, 3.0)
                }
            }
        }
    }

    fn bands(&self, f: &Frame, s: &mut String) {
        let (x0, x1) = f.x;
        for b in &self.bands {
            let (a, z) = (f.px(b.from.max(x0)), f.px(b.to.min(x1)));
            let _ = write!(
                s,
                r#"<rect class="band" x="{a:.1}" y="{TOP}" width="{:.1}" height="{ph}"><title>{l}</title></rect>"#,
                (z - a).max(1.0),
                ph = f.ph,
                l = escape(&b.label)
            );
        }
        for (x, text) in band_labels(&self.bands, f) {
            let _ = write!(s, r#"<text class="bl" x="{x:.1}" y="{:.1}">{}</text>"#, TOP + 10.0, escape(&text));
        }
    }

    /// Ticks, grid, frame and axis labels.
    fn axes(&self, f: &Frame, s: &mut String) {
        let (y0, y1) = f.y;
        let (pw, ph) = (f.pw, f.ph);
        let ticks: Vec<(f64, String)> = match self.y_scale {
            Scale::Count => (0..=4).map(|i| y1 * i as f64 / 4.0).map(|v| (v, format!("{v:.0}"))).collect(),
            Scale::Bytes => {
                (0..=4).map(|i| y1 * i as f64 / 4.0).map(|v| (v, crate::fmt::fmt_bytes(v as u64))).collect()
            }
            Scale::LogMs => (y0 as i32..=y1 as i32)
                .map(|e| {
                    let v = 10f64.powi(e);
                    (v, crate::fmt::fmt_ms(v))
                })
                .collect(),
        };
        for (v, label) in ticks {
            let y = f.py(v);
            let _ = write!(
                s,
                r#"<line class="grid" x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"/><text class="yt" x="{:.1}" y="{:.1}">{}</text>"#,
                LEFT + pw,
                LEFT - 6.0,
                y + 4.0,
                escape(&label)
            );
        }
        for (x, label) in &self.x_ticks {
            let x = f.px(*x);
            let _ = write!(
                s,
                r#"<line class="tick" x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}"/><text class="xt" x="{x:.1}" y="{:.1}">{}</text>"#,
                TOP + ph,
                TOP + ph + 5.0,
                TOP + ph + 18.0,
                escape(label)
            );
        }
        let _ = write!(
            s,
            r#"<rect class="frame" x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}"/><text class="al" x="{:.1}" y="{:.1}">{}</text><text class="al" transform="translate(16 {:.1}) rotate(-90)">{}</text>"#,
            LEFT + pw / 2.0,
            H - 6.0,
            escape(&self.x_label),
            TOP + ph / 2.0,
            escape(&self.y_label)
        );
    }
}

/// The step of a count axis: 1, 2, 5, 10, 20, 50, … so that four steps
/// cover `max` with whole-number ticks.
fn count_step(max: f64) -> f64 {
    let raw = max / 4.0;
    let mut decade = 1.0;
    loop {
        for m in [1.0, 2.0, 5.0] {
            if m * decade >= raw {
                return m * decade;
            }
        }
        decade *= 10.0;
    }
}

/// Where band labels go: each band's number at its start; bands whose
/// labels would touch share one ("steps 3–5"), so no two overlap. Widths
/// are estimated from `LABEL_CHAR_W`, which no glyph of the label font exceeds.
fn band_labels(bands: &[Band], f: &Frame) -> Vec<(f64, String)> {
    let text = |first: usize, last: usize| {
        if first == last { format!("{first}") } else { format!("{first}–{last}") }
    };
    let width = |t: &str| t.chars().count() as f64 * LABEL_CHAR_W;
    let right = LEFT + f.pw;
    let mut groups: Vec<(f64, usize, usize)> = Vec::new();
    for b in bands {
        let x = (f.px(b.from.max(f.x.0)) + 2.0).min(right - width(&text(b.number, b.number)));
        match groups.last_mut() {
            Some((gx, first, last)) if x < *gx + width(&text(*first, *last)) + LABEL_GAP => *last = b.number,
            _ => groups.push((x, b.number, b.number)),
        }
    }
    // A group grown past the plot's right edge moves left, into its neighbour's place if need be.
    while let Some(&(x, first, last)) = groups.last() {
        let w = width(&text(first, last));
        if x + w <= right {
            break;
        }
        groups.pop();
        match groups.last_mut() {
            Some((px, pfirst, plast)) if right - w < *px + width(&text(*pfirst, *plast)) + LABEL_GAP => *plast = last,
            _ => {
                groups.push((right - w, first, last));
                break;
            }
        }
    }
    groups.into_iter().map(|(x, first, last)| (x, text(first, last))).collect()
}

/// One series as a path (gaps where a value is missing) and its legend entry (the `i`-th).
fn series_path(f: &Frame, series: &Series, i: usize, s: &mut String) {
    let (x0, x1) = f.x;
    let mut d = String::new();
    let mut pen_down = false;
    for &(x, v) in &series.points {
        match v {
            Some(v) if x >= x0 && x <= x1 => {
                let _ = write!(d, "{}{:.1},{:.1} ", if pen_down { "L" } else { "M" }, f.px(x), f.py(v));
                pen_down = true;
            }
            _ => pen_down = false,
        }
    }
    let dash = if series.dashed { r#" stroke-dasharray="5 3""# } else { "" };
    let _ = write!(
        s,
        r#"<path class="series" d="{}" stroke="{c}" fill="none" stroke-width="1.6"{dash}><title>{n}</title></path>"#,
        d.trim_end(),
        c = series.color,
        n = escape(&series.name)
    );
    let ly = TOP + 8.0 + i as f64 * 15.0;
    let lx = LEFT + f.pw + 12.0;
    let _ = write!(
        s,
        r#"<line x1="{lx:.1}" x2="{:.1}" y1="{ly:.1}" y2="{ly:.1}" stroke="{c}" stroke-width="2"{dash}/><text class="lg" x="{:.1}" y="{:.1}">{n}</text>"#,
        lx + 18.0,
        lx + 22.0,
        ly + 4.0,
        c = series.color,
        n = escape(&series.name)
    );
}
