//! WAL positions: a `pg_lsn` as PostgreSQL prints it, read into a byte
//! position that can be compared and subtracted.

/// "16/B374D848" → byte position.
pub fn parse(s: &str) -> Option<u64> {
    let (hi, lo) = s.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parse() {
        assert_eq!(super::parse("0/10"), Some(16));
        assert_eq!(super::parse("1/0"), Some(1 << 32));
        assert_eq!(super::parse("junk"), None);
    }
}
