//! Fitting a measured figure against the rows a rehearsal had, for
//! `run --scales`: least squares of `a + b·n` (scans, updates) and of
//! `a + b·n·ln n` (index builds, sorts), the one with the smaller residuals
//! kept (a flat `a` when neither grows with `n`), and a prediction at another
//! row count with a 90 % prediction interval from the residuals. Pure maths,
//! no report types.

use serde::{Deserialize, Serialize};

/// The shape of a fitted curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// `a + b·n`.
    Linear,
    /// `a + b·n·ln n`.
    NLogN,
    /// `a`: the figure does not grow with the rows (neither slope is positive).
    Constant,
}

impl Model {
    /// The curve's variable at `n` rows.
    fn x(self, n: f64) -> f64 {
        match self {
            Model::Linear => n,
            Model::NLogN => n * n.max(1.0).ln(),
            Model::Constant => 0.0,
        }
    }

    pub fn formula(self) -> &'static str {
        match self {
            Model::Linear => "a + b·n",
            Model::NLogN => "a + b·n·ln n",
            Model::Constant => "a",
        }
    }
}

/// The coverage of `Fit::predict`'s interval.
pub const LEVEL: f64 = 0.90;

/// A least-squares fit of points `(n, y)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub model: Model,
    pub a: f64,
    pub b: f64,
    /// 1 − RSS/TSS (0 for `Constant`; 1 when every point is the same).
    pub r2: f64,
    /// Measured − fitted, per point, in the order given.
    pub residuals: Vec<f64>,
    /// R² of each candidate tried (`Linear`, `NLogN`).
    pub candidates: Vec<(Model, f64)>,
    /// Residual standard deviation, mean and spread of the curve's variable.
    s: f64,
    x_mean: f64,
    sxx: f64,
    points: usize,
}

/// A figure predicted at some row count, with its interval (never below 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

/// Fits `points` (`(rows, figure)`); `None` with fewer than three points or
/// fewer than two distinct row counts.
pub fn fit(points: &[(f64, f64)]) -> Option<Fit> {
    let mut distinct: Vec<f64> = points.iter().map(|p| p.0).collect();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    if points.len() < 3 || distinct.len() < 2 {
        return None;
    }
    let tried = [least_squares(points, Model::Linear), least_squares(points, Model::NLogN)];
    let candidates = tried.iter().map(|f| (f.model, f.r2)).collect();
    let best = tried.into_iter().min_by(|p, q| rss(p).total_cmp(&rss(q)))?;
    let chosen = if best.b > 0.0 { best } else { least_squares(points, Model::Constant) };
    Some(Fit { candidates, ..chosen })
}

fn rss(f: &Fit) -> f64 {
    f.residuals.iter().map(|r| r * r).sum()
}

/// Ordinary least squares of `y` on `model.x(n)`.
fn least_squares(points: &[(f64, f64)], model: Model) -> Fit {
    let m = points.len() as f64;
    let xs: Vec<f64> = points.iter().map(|p| model.x(p.0)).collect();
    let x_mean = xs.iter().sum::<f64>() / m;
    let y_mean = points.iter().map(|p| p.1).sum::<f64>() / m;
    let sxx: f64 = xs.iter().map(|x| (x - x_mean).powi(2)).sum();
    let sxy: f64 = xs.iter().zip(points).map(|(x, p)| (x - x_mean) * (p.1 - y_mean)).sum();
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let a = y_mean - b * x_mean;
    let residuals: Vec<f64> = xs.iter().zip(points).map(|(x, p)| p.1 - (a + b * x)).collect();
    let rss: f64 = residuals.iter().map(|r| r * r).sum();
    let tss: f64 = points.iter().map(|p| (p.1 - y_mean).powi(2)).sum();
    let params = if model == Model::Constant { 1.0 } else { 2.0 };
    let r2 = match (model, tss > 0.0) {
        (Model::Constant, _) => 0.0,
        (_, true) => 1.0 - rss / tss,
        (_, false) => 1.0,
    };
    let s = (rss / (m - params)).sqrt();
    Fit { model, a, b, r2, residuals, candidates: Vec::new(), s, x_mean, sxx, points: points.len() }
}

impl Fit {
    /// The fitted figure at `n` rows and its 90 % prediction interval
    /// (`ŷ ± t·s·√(1 + 1/m + (x − x̄)²/Sxx)`), both clamped at 0.
    pub fn predict(&self, n: f64) -> Prediction {
        let x = self.model.x(n);
        let value = self.a + self.b * x;
        let params = if self.model == Model::Constant { 1 } else { 2 };
        let spread = if self.sxx > 0.0 { (x - self.x_mean).powi(2) / self.sxx } else { 0.0 };
        let half = t90(self.points - params) * self.s * (1.0 + 1.0 / self.points as f64 + spread).sqrt();
        Prediction { value: value.max(0.0), low: (value - half).max(0.0), high: (value + half).max(0.0) }
    }
}

/// Student's t at 0.95 (a two-sided 90 % interval) for `dof` degrees of freedom.
fn t90(dof: usize) -> f64 {
    const TABLE: [f64; 10] = [6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812];
    match dof {
        0 => f64::INFINITY,
        d if d <= TABLE.len() => TABLE[d - 1],
        // Beyond the table: the Cornish-Fisher correction to the normal's 1.645.
        d => 1.645 + (1.645f64.powi(3) + 1.645) / (4.0 * d as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZES: [f64; 3] = [100_000.0, 300_000.0, 1_000_000.0];

    fn series(f: impl Fn(f64) -> f64, sizes: &[f64]) -> Vec<(f64, f64)> {
        sizes.iter().map(|&n| (n, f(n))).collect()
    }

    /// Deterministic noise in ±`amp` (relative), different per point.
    fn noisy(points: &[(f64, f64)], amp: f64) -> Vec<(f64, f64)> {
        let wobble = [0.6, -1.0, 0.3, -0.4, 0.9, -0.7];
        points.iter().enumerate().map(|(i, &(n, y))| (n, y * (1.0 + amp * wobble[i % wobble.len()]))).collect()
    }

    #[test]
    fn a_linear_series_picks_linear_and_predicts_it() {
        let f = fit(&series(|n| 20.0 + 0.004 * n, &SIZES)).unwrap();
        assert_eq!(f.model, Model::Linear);
        assert!((f.r2 - 1.0).abs() < 1e-9, "{f:?}");
        let p = f.predict(5_000_000.0);
        assert!((p.value - 20_020.0).abs() < 1e-6, "{p:?}");
        assert!(p.high - p.low < 1e-6, "an exact fit has no spread: {p:?}");
    }

    #[test]
    fn an_n_log_n_series_picks_n_log_n() {
        let f = fit(&series(|n| 5.0 + 0.0002 * n * n.ln(), &SIZES)).unwrap();
        assert_eq!(f.model, Model::NLogN);
        let truth = 5.0 + 0.0002 * 5e6 * 5e6f64.ln();
        assert!((f.predict(5e6).value / truth - 1.0).abs() < 1e-9);
        assert_eq!(f.candidates.len(), 2);
    }

    #[test]
    fn a_flat_series_is_constant() {
        let f = fit(&[(1e5, 3.0), (3e5, 2.8), (1e6, 2.9)]).unwrap();
        assert_eq!(f.model, Model::Constant);
        let p = f.predict(5e6);
        assert!((p.value - 2.9).abs() < 1e-9 && p.low < 2.9 && p.high > 2.9, "{p:?}");
    }

    #[test]
    fn the_interval_covers_the_truth_under_noise() {
        let truth = |n: f64| 40.0 + 0.003 * n;
        let sizes = [100_000.0, 100_000.0, 300_000.0, 300_000.0, 1_000_000.0, 1_000_000.0];
        for amp in [0.02, 0.05, 0.10] {
            let f = fit(&noisy(&series(truth, &sizes), amp)).unwrap();
            let p = f.predict(5e6);
            assert!(p.low <= truth(5e6) && truth(5e6) <= p.high, "amp {amp}: {p:?} vs {}", truth(5e6));
            assert!(p.low < p.value && p.value < p.high, "noise widens the interval: {p:?}");
            assert_eq!(f.residuals.len(), sizes.len());
            assert!(f.r2 > 0.9, "{f:?}");
        }
    }

    #[test]
    fn too_few_points_or_sizes_give_no_fit() {
        assert!(fit(&[(1e5, 1.0), (1e6, 2.0)]).is_none());
        assert!(fit(&[(1e5, 1.0), (1e5, 2.0), (1e5, 3.0)]).is_none());
    }

    #[test]
    fn predictions_never_go_below_zero() {
        let f = fit(&series(|n| 1e6 - n, &SIZES)).unwrap();
        assert_eq!(f.model, Model::Constant, "a falling figure does not grow with the rows");
        let steep = fit(&[(1e5, 0.0), (3e5, 0.0), (1e6, 50.0)]).unwrap();
        assert!(steep.predict(1.0).value >= 0.0 && steep.predict(1.0).low >= 0.0);
    }
}
