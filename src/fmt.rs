//! Numbers as people read them (durations, rates, counts, bytes) and text
//! cut to a width: one place, so the terminal, Markdown, HTML and progress
//! lines agree.

/// "0 ms", "850 µs", "12.3 ms", "8.10 s".
pub fn fmt_ms(ms: f64) -> String {
    if ms == 0.0 {
        "0 ms".to_string()
    } else if ms < 1.0 {
        format!("{:.0} µs", ms * 1000.0)
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// "200 ops/s", "49.5 ops/s", "0.25 ops/s": a rate people read, rounded to
/// three significant digits (at least the whole number).
pub fn fmt_rate(r: f64) -> String {
    let digits = if r >= 100.0 || r == r.trunc() {
        0
    } else if r >= 1.0 {
        1
    } else {
        2
    };
    format!("{r:.digits$} ops/s")
}

/// "1,203": a count with thousands separated.
pub fn fmt_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "512 B", "12.3 kB", "1.5 MB", "2.1 GB".
pub fn fmt_bytes(b: u64) -> String {
    let b = b as f64;
    if b < 1000.0 {
        format!("{b:.0} B")
    } else if b < 1e6 {
        format!("{:.1} kB", b / 1e3)
    } else if b < 1e9 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.2} GB", b / 1e9)
    }
}

/// The first `n` characters of `s`, with `…` when cut.
pub fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { format!("{}…", s.chars().take(n - 1).collect::<String>()) }
}

#[cfg(test)]
mod rate_tests {
    #[test]
    fn rates_are_rounded_for_people() {
        assert_eq!(super::fmt_rate(200.0), "200 ops/s");
        assert_eq!(super::fmt_rate(49.513579246645875), "49.5 ops/s");
        assert_eq!(super::fmt_rate(1234.5678), "1235 ops/s");
        assert_eq!(super::fmt_rate(0.2468), "0.25 ops/s");
    }
}
