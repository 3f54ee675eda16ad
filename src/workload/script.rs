//! pgbench scripts as workload classes (`script = "file.sql"`,
//! `script = "builtin:tpcb-like"` or inline `script_text`): SQL commands with
//! `:var` substitution, `\set var expression` (integer and double arithmetic,
//! `random`, `random_zipfian`, `random_exponential`, `random_gaussian`,
//! `abs`, `least`, `greatest`, `int`, `double`, `sqrt`, `pi`) and `\sleep`.
//! One run of the script is one operation of its class; several scripts mix
//! by their classes' `weight`, as pgbench's `-f file@weight` does.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::params::{Rng, Value, Zipf};
use crate::error::{Error, Result};

/// pgbench's built-in `tpcb-like` script.
pub const TPCB_LIKE: &str = "\\set aid random(1, 100000 * :scale)
\\set bid random(1, 1 * :scale)
\\set tid random(1, 10 * :scale)
\\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
END;
";

/// pgbench's built-in `simple-update` script.
pub const SIMPLE_UPDATE: &str = "\\set aid random(1, 100000 * :scale)
\\set bid random(1, 1 * :scale)
\\set tid random(1, 10 * :scale)
\\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
END;
";

/// pgbench's built-in `select-only` script.
pub const SELECT_ONLY: &str = "\\set aid random(1, 100000 * :scale)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
";

/// The text of `builtin:NAME`.
pub fn builtin(name: &str) -> Option<&'static str> {
    match name {
        "tpcb-like" => Some(TPCB_LIKE),
        "simple-update" => Some(SIMPLE_UPDATE),
        "select-only" => Some(SELECT_ONLY),
        _ => None,
    }
}

/// A parsed script.
#[derive(Debug, Clone)]
pub struct Script {
    pub commands: Vec<Command>,
    /// Variables given by the class (`vars = { scale = 10 }`).
    pub vars: BTreeMap<String, Num>,
}

#[derive(Debug, Clone)]
pub enum Command {
    /// `\set var expr`.
    Set { var: String, expr: Expr },
    /// `\sleep n [us|ms|s]`.
    Sleep { amount: Expr, unit_us: f64 },
    /// A SQL command with `:var` replaced by `$1…`; `params[i]` feeds `$i+1`.
    Sql { sql: String, params: Vec<String> },
}

/// A number as pgbench computes with: integers stay integers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    Int(i64),
    Double(f64),
}

impl Num {
    fn f(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Double(d) => d,
        }
    }
    fn i(self) -> i64 {
        match self {
            Num::Int(i) => i,
            Num::Double(d) => d as i64,
        }
    }
    pub fn value(self) -> Value {
        match self {
            Num::Int(i) => Value::Int(i),
            Num::Double(d) => Value::Float(d),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Expr {
    Num(Num),
    Var(String),
    Neg(Box<Expr>),
    Bin(char, Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>),
}

impl Script {
    /// Parses a pgbench script; errors say `line N: …`.
    pub fn parse(text: &str) -> Result<Script> {
        let mut commands = Vec::new();
        let mut sql = String::new();
        let mut sql_line = 0;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let n = i + 1;
            if sql.is_empty() && (line.is_empty() || line.starts_with("--")) {
                continue;
            }
            if sql.is_empty() && line.starts_with('\\') {
                commands.push(meta(line).map_err(|e| e.context(format_args!("line {n}")))?);
                continue;
            }
            if sql.is_empty() {
                sql_line = n;
            }
            sql.push_str(raw);
            sql.push('\n');
            if line.ends_with(';') {
                commands.push(sql_command(&sql).map_err(|e| e.context(format_args!("line {sql_line}")))?);
                sql.clear();
            }
        }
        if !sql.trim().is_empty() {
            commands.push(sql_command(&sql).map_err(|e| e.context(format_args!("line {sql_line}")))?);
        }
        if !commands.iter().any(|c| matches!(c, Command::Sql { .. })) {
            return Err(Error::input("the script has no SQL command"));
        }
        Ok(Script { commands, vars: BTreeMap::new() })
    }

    /// The SQL commands, as prepared.
    pub fn statements(&self) -> impl Iterator<Item = &str> {
        self.commands.iter().filter_map(|c| match c {
            Command::Sql { sql, .. } => Some(sql.as_str()),
            _ => None,
        })
    }

    /// Variables used but never `\set` nor given by the class, in first-use order.
    pub fn unset_vars(&self) -> Vec<String> {
        let mut set: Vec<&str> = self.vars.keys().map(String::as_str).collect();
        let mut missing = Vec::new();
        let mut need = |v: &str, set: &Vec<&str>| {
            if !set.contains(&v) && !missing.iter().any(|m: &String| m == v) {
                missing.push(v.to_string());
            }
        };
        for c in &self.commands {
            match c {
                Command::Set { var, expr } => {
                    expr.vars(&mut |v| need(v, &set));
                    set.push(var);
                }
                Command::Sleep { amount, .. } => amount.vars(&mut |v| need(v, &set)),
                Command::Sql { params, .. } => params.iter().for_each(|v| need(v, &set)),
            }
        }
        missing
    }
}

fn meta(line: &str) -> Result<Command> {
    let (cmd, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    match cmd {
        "\\set" => {
            let (var, expr) = rest
                .split_once(char::is_whitespace)
                .ok_or_else(|| Error::input("\\set needs a variable and an expression"))?;
            if !is_ident(var) {
                return Err(Error::input(format!("\\set: {var:?} is not a variable name")));
            }
            Ok(Command::Set { var: var.to_string(), expr: Parser::new(expr).parse_all()? })
        }
        "\\sleep" => {
            let mut parts = rest.split_whitespace();
            let amount = parts.next().ok_or_else(|| Error::input("\\sleep needs a duration"))?;
            let unit_us = match parts.next().unwrap_or("s") {
                "us" => 1.0,
                "ms" => 1_000.0,
                "s" => 1_000_000.0,
                u => return Err(Error::input(format!("\\sleep: unit {u:?}; use us, ms or s"))),
            };
            let amount = match amount.strip_prefix(':') {
                Some(v) => Expr::Var(v.to_string()),
                None => Expr::Num(Num::Int(
                    amount.parse().map_err(|_| Error::input(format!("\\sleep: {amount:?} is not a number")))?,
                )),
            };
            Ok(Command::Sleep { amount, unit_us })
        }
        other => Err(Error::input(format!(
            "{other} is not supported (supported: \\set, \\sleep; SQL commands end with ';')"
        ))),
    }
}

fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_') && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// Replaces `:var` (outside quotes, not `::`) by `$n`.
fn sql_command(sql: &str) -> Result<Command> {
    let b = sql.as_bytes();
    let mut out = String::new();
    let mut params: Vec<String> = Vec::new();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            out.push(c as char);
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if c == b'\'' || c == b'"' {
            quote = Some(c);
        } else if c == b':' && b.get(i + 1) == Some(&b':') {
            out.push_str("::");
            i += 2;
            continue;
        } else if c == b':' && b.get(i + 1).is_some_and(|n| n.is_ascii_alphabetic() || *n == b'_') {
            let start = i + 1;
            let mut end = start;
            while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                end += 1;
            }
            let name = &sql[start..end];
            let n = match params.iter().position(|p| p == name) {
                Some(p) => p + 1,
                None => {
                    params.push(name.to_string());
                    params.len()
                }
            };
            out.push_str(&format!("${n}"));
            i = end;
            continue;
        }
        out.push(c as char);
        i += 1;
    }
    let sql = out.trim().trim_end_matches(';').trim().to_string();
    let parsed = pg_query::parse(&sql, 0)
        .map_err(|e| Error::input(format!("SQL syntax error: {}", crate::pg::lex::pg_message(&e))))?;
    if parsed.protobuf.stmts.len() != 1 {
        return Err(Error::input("one SQL command per ';'"));
    }
    Ok(Command::Sql { sql, params })
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    text: &'a str,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Parser<'a> {
        Parser { s: text.as_bytes(), i: 0, text }
    }
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }
    fn parse_all(mut self) -> Result<Expr> {
        let e = self.sum()?;
        match self.peek() {
            None => Ok(e),
            Some(_) => {
                Err(Error::input(format!("unexpected {:?} in expression {:?}", &self.text[self.i..], self.text)))
            }
        }
    }
    fn sum(&mut self) -> Result<Expr> {
        let mut l = self.product()?;
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.i += 1;
            l = Expr::Bin(op as char, Box::new(l), Box::new(self.product()?));
        }
        Ok(l)
    }
    fn product(&mut self) -> Result<Expr> {
        let mut l = self.unary()?;
        while let Some(op @ (b'*' | b'/' | b'%')) = self.peek() {
            self.i += 1;
            l = Expr::Bin(op as char, Box::new(l), Box::new(self.unary()?));
        }
        Ok(l)
    }
    fn unary(&mut self) -> Result<Expr> {
        match self.peek() {
            Some(b'-') => {
                self.i += 1;
                Ok(Expr::Neg(Box::new(self.unary()?)))
            }
            Some(b'+') => {
                self.i += 1;
                self.unary()
            }
            _ => self.atom(),
        }
    }
    fn atom(&mut self) -> Result<Expr> {
        match self.peek() {
            Some(b'(') => {
                self.i += 1;
                let e = self.sum()?;
                if self.peek() != Some(b')') {
                    return Err(Error::input(format!("missing ')' in {:?}", self.text)));
                }
                self.i += 1;
                Ok(e)
            }
            Some(b':') => {
                self.i += 1;
                let name = self.word();
                if name.is_empty() {
                    return Err(Error::input(format!("':' without a variable name in {:?}", self.text)));
                }
                Ok(Expr::Var(name))
            }
            Some(c) if c.is_ascii_digit() || c == b'.' => {
                let start = self.i;
                while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'.') {
                    self.i += 1;
                }
                let t = &self.text[start..self.i];
                if let Ok(i) = t.parse::<i64>() {
                    Ok(Expr::Num(Num::Int(i)))
                } else {
                    t.parse::<f64>()
                        .map(|d| Expr::Num(Num::Double(d)))
                        .map_err(|_| Error::input(format!("{t:?} is not a number")))
                }
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let name = self.word().to_ascii_lowercase();
                let mut args = Vec::new();
                if self.peek() == Some(b'(') {
                    self.i += 1;
                    if self.peek() == Some(b')') {
                        self.i += 1;
                    } else {
                        loop {
                            args.push(self.sum()?);
                            match self.peek() {
                                Some(b',') => self.i += 1,
                                Some(b')') => {
                                    self.i += 1;
                                    break;
                                }
                                _ => return Err(Error::input(format!("expected ',' or ')' in {:?}", self.text))),
                            }
                        }
                    }
                }
                let arity = match name.as_str() {
                    "random" => 2..=2,
                    "random_zipfian" | "random_exponential" | "random_gaussian" => 3..=3,
                    "abs" | "int" | "double" | "sqrt" => 1..=1,
                    "least" | "greatest" => 1..=64,
                    "pi" => 0..=0,
                    other => return Err(Error::input(format!("unknown function {other}()"))),
                };
                if !arity.contains(&args.len()) {
                    return Err(Error::input(format!("{name}() takes {:?} argument(s), not {}", arity, args.len())));
                }
                Ok(Expr::Call(name, args))
            }
            other => Err(Error::input(format!(
                "unexpected {:?} in expression {:?}",
                other.map(|c| c as char).unwrap_or(' '),
                self.text
            ))),
        }
    }
    fn word(&mut self) -> String {
        let start = self.i;
        while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_') {
            self.i += 1;
        }
        self.text[start..self.i].to_string()
    }
}

impl Expr {
    fn vars(&self, f: &mut impl FnMut(&str)) {
        match self {
            Expr::Var(v) => f(v),
            Expr::Neg(e) => e.vars(f),
            Expr::Bin(_, a, b) => {
                a.vars(f);
                b.vars(f);
            }
            Expr::Call(_, args) => args.iter().for_each(|a| a.vars(f)),
            Expr::Num(_) => {}
        }
    }

    /// Evaluates with pgbench's semantics (integer arithmetic when both sides are integers).
    pub fn eval(&self, vars: &HashMap<String, Num>, rng: &mut Rng) -> Result<Num> {
        Ok(match self {
            Expr::Num(n) => *n,
            Expr::Var(v) => *vars.get(v).ok_or_else(|| Error::input(format!("variable :{v} is not set")))?,
            Expr::Neg(e) => match e.eval(vars, rng)? {
                Num::Int(i) => Num::Int(-i),
                Num::Double(d) => Num::Double(-d),
            },
            Expr::Bin(op, a, b) => {
                let (a, b) = (a.eval(vars, rng)?, b.eval(vars, rng)?);
                match (a, b) {
                    (Num::Int(x), Num::Int(y)) => Num::Int(match op {
                        '+' => x.wrapping_add(y),
                        '-' => x.wrapping_sub(y),
                        '*' => x.wrapping_mul(y),
                        '/' | '%' if y == 0 => return Err(Error::input("division by zero")),
                        '/' => x / y,
                        _ => x % y,
                    }),
                    _ => {
                        let (x, y) = (a.f(), b.f());
                        Num::Double(match op {
                            '+' => x + y,
                            '-' => x - y,
                            '*' => x * y,
                            '/' => x / y,
                            _ => return Err(Error::input("% needs integers")),
                        })
                    }
                }
            }
            Expr::Call(name, args) => {
                let v: Vec<Num> = args.iter().map(|a| a.eval(vars, rng)).collect::<Result<_, _>>()?;
                call(name, &v, rng)?
            }
        })
    }
}

fn call(name: &str, v: &[Num], rng: &mut Rng) -> Result<Num> {
    let range = || {
        let (lb, ub) = (v[0].i(), v[1].i());
        if lb > ub {
            Err(Error::input(format!("{name}({lb}, {ub}): the lower bound is above the upper bound")))
        } else {
            Ok((lb, ub))
        }
    };
    Ok(match name {
        "random" => {
            let (lb, ub) = range()?;
            Num::Int(lb + rng.below((ub - lb + 1) as u64) as i64)
        }
        "random_zipfian" => {
            let (lb, ub) = range()?;
            let s = v[2].f();
            if s <= 0.0 {
                return Err(Error::input(format!("random_zipfian: parameter must be greater than 0, not {s}")));
            }
            Num::Int(lb + Zipf::new((ub - lb + 1) as u64, s).sample(rng) as i64 - 1)
        }
        "random_exponential" => {
            let (lb, ub) = range()?;
            let p = v[2].f();
            if p <= 0.0 {
                return Err(Error::input(format!("random_exponential: parameter must be greater than 0, not {p}")));
            }
            let cut = (-p).exp();
            let u = 1.0 - rng.next_f64();
            let r = -(cut + (1.0 - cut) * u).ln() / p;
            Num::Int(lb + (((ub - lb + 1) as f64) * r) as i64)
        }
        "random_gaussian" => {
            let (lb, ub) = range()?;
            let p = v[2].f();
            if p < 2.0 {
                return Err(Error::input(format!("random_gaussian: parameter must be at least 2.0, not {p}")));
            }
            let stdev = loop {
                let (u1, u2) = (1.0 - rng.next_f64(), rng.next_f64());
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).sin();
                if z.abs() < p {
                    break z;
                }
            };
            let r = (stdev + p) / (p * 2.0);
            Num::Int(lb + (((ub - lb + 1) as f64) * r) as i64)
        }
        "abs" => match v[0] {
            Num::Int(i) => Num::Int(i.abs()),
            Num::Double(d) => Num::Double(d.abs()),
        },
        "int" => Num::Int(v[0].i()),
        "double" => Num::Double(v[0].f()),
        "sqrt" => Num::Double(v[0].f().sqrt()),
        "pi" => Num::Double(std::f64::consts::PI),
        "least" | "greatest" => {
            let pick = |a: Num, b: Num| if (b.f() < a.f()) == (name == "least") { b } else { a };
            let r = v.iter().copied().reduce(pick).expect("one argument");
            if v.iter().all(|x| matches!(x, Num::Int(_))) { r } else { Num::Double(r.f()) }
        }
        other => return Err(Error::input(format!("unknown function {other}()"))),
    })
}

/// What a `\sleep` waits.
pub fn sleep_for(amount: &Expr, unit_us: f64, vars: &HashMap<String, Num>, rng: &mut Rng) -> Result<Duration> {
    let n = amount.eval(vars, rng)?.f() * unit_us;
    Ok(Duration::from_micros(n.max(0.0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_scripts_parse_with_parameters() {
        let s = Script::parse(TPCB_LIKE).unwrap();
        let sql: Vec<&str> = s.statements().collect();
        assert_eq!(sql.len(), 7);
        assert_eq!(sql[1], "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2");
        assert_eq!(s.unset_vars(), vec!["scale".to_string()]);
        assert!(Script::parse(SELECT_ONLY).is_ok());
        assert!(Script::parse(SIMPLE_UPDATE).is_ok());
    }

    #[test]
    fn expressions_follow_pgbench() {
        let vars: HashMap<String, Num> = [("scale".to_string(), Num::Int(3))].into();
        let mut rng = Rng::new(1);
        let e = |t: &str| Parser::new(t).parse_all().unwrap();
        assert_eq!(e("100000 * :scale").eval(&vars, &mut rng).unwrap(), Num::Int(300000));
        assert_eq!(e("7 / 2 + -(1)").eval(&vars, &mut rng).unwrap(), Num::Int(2));
        assert_eq!(e("greatest(1, 5, 3)").eval(&vars, &mut rng).unwrap(), Num::Int(5));
        for f in [
            "random(1, 10)",
            "random_zipfian(1, 10, 1.5)",
            "random_exponential(1, 10, 2.0)",
            "random_gaussian(1, 10, 2.5)",
        ] {
            for _ in 0..200 {
                let Num::Int(v) = e(f).eval(&vars, &mut rng).unwrap() else { panic!("{f}: not an int") };
                assert!((1..=10).contains(&v), "{f} gave {v}");
            }
        }
        let mut low = 0;
        for _ in 0..1000 {
            if e("random_exponential(1, 100, 5.0)").eval(&vars, &mut rng).unwrap() == Num::Int(1) {
                low += 1;
            }
        }
        assert!(low > 30, "exponential favours the low end: {low}");
    }

    #[test]
    fn errors_name_the_line() {
        let e = Script::parse("\\set x random(1\nSELECT 1;").unwrap_err();
        assert!(e.message.starts_with("line 1:"), "{e}");
        let e = Script::parse("\\shell ls\n").unwrap_err();
        assert!(e.message.contains("not supported"), "{e}");
        let e = Script::parse("SELECT 1;\nSELEC :x;\n").unwrap_err();
        assert!(e.message.starts_with("line 2: SQL syntax error"), "{e}");
        let s = Script::parse("\\sleep 10 ms\nSELECT :a::int, ':b';\n").unwrap();
        assert_eq!(s.statements().next().unwrap(), "SELECT $1::int, ':b'");
    }
}
