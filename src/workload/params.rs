//! Parameter generators for workload classes (`$1`, `$2`, …) and the value type
//! sent to the server. Generation is deterministic: each operation draws from
//! its own RNG seeded by (workload seed, operation number), so two runs with
//! the same seed send the same values in the same order.

use std::error::Error as StdError;
use std::sync::Arc;

use bytes::BytesMut;
use serde::Deserialize;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use crate::error::Error;

/// A parameter generator as written in the workload file.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ParamSpec {
    /// An integer in `[min, max]`, uniform or zipf-distributed (low values hot).
    Int {
        min: i64,
        max: i64,
        #[serde(default)]
        dist: Dist,
        /// Zipf exponent (default 1.0); ignored for uniform.
        exponent: Option<f64>,
    },
    /// One of the listed values, uniformly.
    Choice { values: Vec<toml::Value> },
    /// Random alphanumeric text with a length in `[min_len, max_len]`.
    Text { min_len: usize, max_len: usize },
    /// A value sampled from a column of the clone (read once before the run).
    Sample {
        table: String,
        column: String,
        /// How many distinct rows to sample (default 10000).
        limit: Option<u32>,
    },
    /// A placeholder `lockimpact record` writes where it could infer nothing;
    /// loading the file fails until it is replaced by a generator.
    Todo {
        #[serde(default)]
        note: String,
    },
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Dist {
    #[default]
    Uniform,
    Zipf,
}

/// A value bound to a `$n` parameter. It converts itself to the parameter's
/// type as the server prepared it (an int sent to a `text` parameter becomes
/// its decimal text, sampled text sent to an `int8` parameter is parsed).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(Arc<str>),
}

impl Value {
    pub fn from_toml(v: &toml::Value) -> Option<Value> {
        Some(match v {
            toml::Value::Integer(i) => Value::Int(*i),
            toml::Value::Float(f) => Value::Float(*f),
            toml::Value::Boolean(b) => Value::Bool(*b),
            toml::Value::String(s) => Value::Text(s.as_str().into()),
            _ => return None,
        })
    }

    fn as_i64(&self) -> Result<i64, Box<dyn StdError + Sync + Send>> {
        match self {
            Value::Int(i) => Ok(*i),
            Value::Float(f) => Ok(*f as i64),
            Value::Bool(b) => Ok(*b as i64),
            Value::Text(t) => Ok(t.trim().parse()?),
        }
    }

    fn as_f64(&self) -> Result<f64, Box<dyn StdError + Sync + Send>> {
        match self {
            Value::Int(i) => Ok(*i as f64),
            Value::Float(f) => Ok(*f),
            Value::Bool(b) => Ok(*b as i64 as f64),
            Value::Text(t) => Ok(t.trim().parse()?),
        }
    }
}

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match *ty {
            Type::INT2 => i16::try_from(self.as_i64()?)?.to_sql(ty, out),
            Type::INT4 => i32::try_from(self.as_i64()?)?.to_sql(ty, out),
            Type::INT8 => self.as_i64()?.to_sql(ty, out),
            Type::FLOAT4 => (self.as_f64()? as f32).to_sql(ty, out),
            Type::FLOAT8 => self.as_f64()?.to_sql(ty, out),
            Type::BOOL => match self {
                Value::Bool(b) => b.to_sql(ty, out),
                Value::Text(t) => matches!(&**t, "t" | "true" | "1").to_sql(ty, out),
                other => (other.as_i64()? != 0).to_sql(ty, out),
            },
            _ => match self {
                Value::Text(t) => (&**t).to_sql(ty, out),
                Value::Int(i) => i.to_string().as_str().to_sql(ty, out),
                Value::Float(f) => f.to_string().as_str().to_sql(ty, out),
                Value::Bool(b) => b.to_string().as_str().to_sql(ty, out),
            },
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::INT2
                | Type::INT4
                | Type::INT8
                | Type::FLOAT4
                | Type::FLOAT8
                | Type::BOOL
                | Type::TEXT
                | Type::VARCHAR
                | Type::BPCHAR
                | Type::NAME
                | Type::UNKNOWN
        )
    }

    to_sql_checked!();
}

/// A small, fast, deterministic RNG (SplitMix64): reproducible across
/// platforms and crate versions, which a seeded schedule needs.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    /// An RNG for operation `n` of a stream seeded with `seed`.
    pub fn for_op(seed: u64, n: u64) -> Rng {
        let mut r = Rng(seed.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ n);
        r.next_u64();
        r
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// The longest text a `text` generator makes: each value is built in memory
/// per operation, and a longer one is a typo (an absurd one aborted the run).
pub const MAX_TEXT_LEN: usize = 1_000_000;

/// A generator ready to draw values (sample columns already read).
#[derive(Debug, Clone)]
pub enum Param {
    Uniform {
        min: i64,
        span: u64,
    },
    Zipf {
        min: i64,
        zipf: Zipf,
    },
    Choice(Vec<Value>),
    Text {
        min_len: usize,
        max_len: usize,
    },
    /// Filled by `workload::bind_samples` before the run starts.
    Sample {
        table: String,
        column: String,
        limit: u32,
        values: Arc<[Value]>,
    },
}

impl Param {
    /// Validates a spec; the error names the problem (the caller adds the place).
    pub fn from_spec(spec: &ParamSpec) -> crate::error::Result<Param> {
        Ok(match spec {
            ParamSpec::Int { min, max, dist, exponent } => {
                if min > max {
                    return Err(Error::input(format!("min ({min}) is greater than max ({max})")));
                }
                // The full i64 range holds 2^64 values, one more than a u64
                // counts: capped (max itself is then never drawn). Wrapping to
                // 0 drew only min, and made zipf panic.
                let span = u64::try_from(*max as i128 - *min as i128 + 1).unwrap_or(u64::MAX);
                match dist {
                    Dist::Uniform => Param::Uniform { min: *min, span },
                    Dist::Zipf => {
                        let s = exponent.unwrap_or(1.0);
                        if !(s > 0.0 && s.is_finite()) {
                            return Err(Error::input(format!("zipf exponent must be a positive number, not {s}")));
                        }
                        Param::Zipf { min: *min, zipf: Zipf::new(span, s) }
                    }
                }
            }
            ParamSpec::Choice { values } => {
                if values.is_empty() {
                    return Err(Error::input("choice needs at least one value"));
                }
                let vals = values
                    .iter()
                    .map(|v| {
                        Value::from_toml(v)
                            .ok_or_else(|| Error::input(format!("choice values must be scalars, not {v}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Param::Choice(vals)
            }
            ParamSpec::Text { min_len, max_len } => {
                if min_len > max_len {
                    return Err(Error::input(format!("min_len ({min_len}) is greater than max_len ({max_len})")));
                }
                if *max_len > MAX_TEXT_LEN {
                    return Err(Error::input(format!("max_len ({max_len}) is more than {MAX_TEXT_LEN} characters")));
                }
                Param::Text { min_len: *min_len, max_len: *max_len }
            }
            ParamSpec::Sample { table, column, limit } => {
                let limit = limit.unwrap_or(10_000);
                if limit == 0 {
                    return Err(Error::input("sample limit must be at least 1"));
                }
                Param::Sample { table: table.clone(), column: column.clone(), limit, values: Arc::from(Vec::new()) }
            }
            ParamSpec::Todo { note } => {
                return Err(Error::input(format!(
                    "a placeholder left by the recording ({note}); replace it with a generator \
                     (int, choice, text or sample)"
                )));
            }
        })
    }

    pub fn draw(&self, rng: &mut Rng) -> Value {
        match self {
            Param::Uniform { min, span } => Value::Int(min.wrapping_add(rng.below(*span) as i64)),
            Param::Zipf { min, zipf } => Value::Int(min.wrapping_add(zipf.sample(rng) as i64 - 1)),
            Param::Choice(vals) => vals[rng.below(vals.len() as u64) as usize].clone(),
            Param::Text { min_len, max_len } => {
                const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
                let len = min_len + rng.below((max_len - min_len + 1) as u64) as usize;
                let s: String = (0..len).map(|_| ALNUM[rng.below(ALNUM.len() as u64) as usize] as char).collect();
                Value::Text(s.into())
            }
            Param::Sample { values, .. } => values[rng.below(values.len() as u64) as usize].clone(),
        }
    }
}

/// Zipf distribution over 1..=n by rejection-inversion (Hörmann & Derflinger),
/// constant time and memory whatever n is.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: f64,
    exponent: f64,
    h_x1: f64,
    h_n: f64,
    s: f64,
}

impl Zipf {
    pub fn new(n: u64, exponent: f64) -> Zipf {
        let mut z = Zipf { n: n as f64, exponent, h_x1: 0.0, h_n: 0.0, s: 0.0 };
        z.h_x1 = z.h_integral(1.5) - 1.0;
        z.h_n = z.h_integral(n as f64 + 0.5);
        z.s = 2.0 - z.h_integral_inv(z.h_integral(2.5) - z.h(2.0));
        z
    }

    pub fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.h_n + rng.next_f64() * (self.h_x1 - self.h_n);
            let x = self.h_integral_inv(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.s || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    fn h(&self, x: f64) -> f64 {
        (-self.exponent * x.ln()).exp()
    }
    fn h_integral(&self, x: f64) -> f64 {
        let lx = x.ln();
        helper2((1.0 - self.exponent) * lx) * lx
    }
    fn h_integral_inv(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.exponent)).max(-1.0);
        (helper1(t) * x).exp()
    }
}

fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 { x.ln_1p() / x } else { 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x)) }
}
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 { x.exp_m1() / x } else { 1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_stays_in_range_and_is_deterministic() {
        let p = Param::from_spec(&ParamSpec::Int { min: 5, max: 9, dist: Dist::Uniform, exponent: None }).unwrap();
        let a: Vec<Value> = (0..100).map(|n| p.draw(&mut Rng::for_op(7, n))).collect();
        let b: Vec<Value> = (0..100).map(|n| p.draw(&mut Rng::for_op(7, n))).collect();
        assert_eq!(a, b);
        assert!(a.iter().all(|v| matches!(v, Value::Int(i) if (5..=9).contains(i))));
        for want in 5..=9 {
            assert!(a.contains(&Value::Int(want)), "{want} never drawn");
        }
    }

    #[test]
    fn zipf_favours_low_ranks() {
        let z = Zipf::new(1000, 1.0);
        let mut rng = Rng::new(1);
        let draws: Vec<u64> = (0..20_000).map(|_| z.sample(&mut rng)).collect();
        assert!(draws.iter().all(|&k| (1..=1000).contains(&k)));
        let ones = draws.iter().filter(|&&k| k == 1).count() as f64 / draws.len() as f64;
        // P(1) = 1 / H(1000) ≈ 0.134 for exponent 1.
        assert!((ones - 0.134).abs() < 0.02, "P(1) = {ones}");
    }

    #[test]
    fn bad_specs_are_rejected() {
        assert!(Param::from_spec(&ParamSpec::Int { min: 9, max: 1, dist: Dist::Uniform, exponent: None }).is_err());
        assert!(Param::from_spec(&ParamSpec::Choice { values: vec![] }).is_err());
        assert!(Param::from_spec(&ParamSpec::Text { min_len: 5, max_len: 1 }).is_err());
        let e = Param::from_spec(&ParamSpec::Text { min_len: 0, max_len: usize::MAX }).unwrap_err();
        assert!(e.message.contains("max_len"), "{e}");
    }

    #[test]
    fn the_full_i64_range_draws_without_panicking() {
        for dist in [Dist::Uniform, Dist::Zipf] {
            let spec = ParamSpec::Int { min: i64::MIN, max: i64::MAX, dist, exponent: Some(1e-6) };
            let p = Param::from_spec(&spec).unwrap();
            let drawn: Vec<Value> = (0..50).map(|n| p.draw(&mut Rng::for_op(3, n))).collect();
            if dist == Dist::Uniform {
                assert!(drawn.iter().any(|v| *v != Value::Int(i64::MIN)), "only min drawn: {drawn:?}");
            }
        }
    }
}
