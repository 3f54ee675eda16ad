//! COPY's binary format for the generator's values: the server stores a
//! binary field as sent, where text is parsed per value (timestamps, numbers:
//! about a third of a text load's server time). A table is loaded in binary
//! when every column it loads has a type written here and every value its
//! statistics name (most common values, histogram bounds) converts; the
//! generator makes a value's text as always and this writes it as a field.

use super::parse_time;

/// The 19-byte header of a binary COPY stream: signature, flags, extension length.
pub const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The stream's end: a field count of -1.
pub const TRAILER: &[u8] = &[0xff, 0xff];

/// Microseconds from 1970-01-01 (where `parse_time` counts) to PostgreSQL's
/// epoch, 2000-01-01.
const PG_EPOCH_US: i64 = 946_684_800_000_000;

/// A column type the generator writes in binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Date,
    /// With or without time zone: microseconds since 2000-01-01 UTC.
    Timestamp,
    Bool,
    Uuid,
    /// text, varchar, char: the bytes (the server applies the length).
    Text,
}

impl Binary {
    /// The binary form of a column of `data_type` (`format_type`'s
    /// spelling), or none: numeric, arrays, enums, domains and the rest go as text.
    pub fn of(data_type: &str) -> Option<Binary> {
        let (base, modifier) = data_type.split_once('(').unwrap_or((data_type, ""));
        Some(match base.trim() {
            "smallint" => Binary::Int2,
            "integer" => Binary::Int4,
            "bigint" => Binary::Int8,
            "real" => Binary::Float4,
            "double precision" => Binary::Float8,
            "date" => Binary::Date,
            // `timestamp(3) …` rounds its input: left to the server.
            "timestamp with time zone" | "timestamp without time zone" if modifier.is_empty() => Binary::Timestamp,
            "boolean" => Binary::Bool,
            "uuid" => Binary::Uuid,
            "text" | "character varying" | "character" if !data_type.ends_with("[]") => Binary::Text,
            _ => return None,
        })
    }

    /// Appends `v` (the value as text) as a field, its length first; false
    /// (nothing appended) when `v` does not convert.
    pub fn write(self, v: &str, buf: &mut Vec<u8>) -> bool {
        let put = |buf: &mut Vec<u8>, bytes: &[u8]| {
            buf.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
            buf.extend_from_slice(bytes);
            true
        };
        match self {
            Binary::Int2 => v.parse::<i16>().is_ok_and(|n| put(buf, &n.to_be_bytes())),
            Binary::Int4 => v.parse::<i32>().is_ok_and(|n| put(buf, &n.to_be_bytes())),
            Binary::Int8 => v.parse::<i64>().is_ok_and(|n| put(buf, &n.to_be_bytes())),
            Binary::Float4 => v.parse::<f32>().is_ok_and(|n| put(buf, &n.to_be_bytes())),
            Binary::Float8 => v.parse::<f64>().is_ok_and(|n| put(buf, &n.to_be_bytes())),
            Binary::Date => time(v)
                .is_some_and(|us| put(buf, &(((us - PG_EPOCH_US).div_euclid(86_400_000_000)) as i32).to_be_bytes())),
            Binary::Timestamp => time(v).is_some_and(|us| put(buf, &(us - PG_EPOCH_US).to_be_bytes())),
            Binary::Bool => match v {
                "t" | "true" => put(buf, &[1]),
                "f" | "false" => put(buf, &[0]),
                _ => false,
            },
            Binary::Uuid => uuid(v).is_some_and(|b| put(buf, &b)),
            Binary::Text => put(buf, v.as_bytes()),
        }
    }
}

/// A NULL field.
pub fn write_null(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(-1i32).to_be_bytes());
}

/// An empty field: no type written in binary but text takes it, so the
/// server refuses it, naming the column and the row.
pub fn write_refused(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&0i32.to_be_bytes());
}

/// A tuple's start: its field count.
pub fn write_tuple_start(fields: usize, buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(fields as i16).to_be_bytes());
}

/// Microseconds since 1970 of a date or timestamp `parse_time` reads, to
/// the microsecond (`infinity`, BC dates: none). The generator's own form
/// (`YYYY-MM-DD HH:MM:SS.ffffff[+00]`) is read by position, without floats.
fn time(v: &str) -> Option<i64> {
    generated_time(v.as_bytes()).or_else(|| parse_time(v).filter(|us| us.is_finite()).map(|us| us.round() as i64))
}

fn generated_time(b: &[u8]) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b.get(r)?.iter().try_fold(0i64, |n, &d| d.is_ascii_digit().then(|| n * 10 + (d - b'0') as i64))
    };
    let sep = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-')) {
        return None;
    }
    let days = super::days_from_civil(num(0..4)?, num(5..7)?, num(8..10)?);
    let clock = match b.len() {
        10 => 0,
        26 | 29 if sep(10, b' ') && sep(13, b':') && sep(16, b':') && sep(19, b'.') => {
            if b.len() == 29 && &b[26..] != b"+00" {
                return None;
            }
            (num(11..13)? * 3600 + num(14..16)? * 60 + num(17..19)?) * 1_000_000 + num(20..26)?
        }
        _ => return None,
    };
    Some(days * 86_400_000_000 + clock)
}

/// 32 hex digits, dashes anywhere.
fn uuid(v: &str) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    let mut n = 0;
    for b in v.bytes().filter(|&b| b != b'-') {
        let d = (b as char).to_digit(16)? as u8;
        *out.get_mut(n / 2)? |= if n % 2 == 0 { d << 4 } else { d };
        n += 1;
    }
    (n == 32).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(b: Binary, v: &str) -> Option<Vec<u8>> {
        let mut buf = Vec::new();
        b.write(v, &mut buf).then(|| {
            assert_eq!(i32::from_be_bytes(buf[..4].try_into().unwrap()) as usize, buf.len() - 4);
            buf[4..].to_vec()
        })
    }

    #[test]
    fn types_map_to_their_binary_form_or_to_text() {
        assert_eq!(Binary::of("bigint"), Some(Binary::Int8));
        assert_eq!(Binary::of("character varying(20)"), Some(Binary::Text));
        assert_eq!(Binary::of("timestamp with time zone"), Some(Binary::Timestamp));
        for text_only in ["numeric(10,2)", "timestamp(3) with time zone", "integer[]", "text[]", "jsonb", "mood"] {
            assert_eq!(Binary::of(text_only), None, "{text_only}");
        }
    }

    #[test]
    fn values_are_written_as_the_server_reads_them() {
        assert_eq!(field(Binary::Int4, "-2"), Some(vec![0xff, 0xff, 0xff, 0xfe]));
        assert_eq!(field(Binary::Int2, "70000"), None, "out of range");
        // 2000-01-01 is day 0; 2000-01-02 01:00:00+01 is exactly one day later.
        assert_eq!(field(Binary::Date, "2000-01-01"), Some(vec![0; 4]));
        assert_eq!(field(Binary::Timestamp, "2000-01-02 01:00:00+01"), Some(86_400_000_000i64.to_be_bytes().to_vec()));
        assert_eq!(field(Binary::Timestamp, "1999-12-31 23:59:59.5"), Some((-500_000i64).to_be_bytes().to_vec()));
        assert_eq!(field(Binary::Timestamp, "infinity"), None);
        // The generator's own form, read by position, agrees with the general parser.
        for v in ["2026-03-04 05:06:07.000008+00", "1999-12-31 23:59:59.500000", "2026-03-04"] {
            assert_eq!(generated_time(v.as_bytes()), parse_time(v).map(|us| us.round() as i64), "{v}");
        }
        assert_eq!(field(Binary::Bool, "t"), Some(vec![1]));
        let u = field(Binary::Uuid, "0123ABCD-0000-0000-0000-0000000000ff").unwrap();
        assert_eq!((u[0], u[3], u[15]), (0x01, 0xcd, 0xff));
        assert_eq!(field(Binary::Uuid, "not-a-uuid"), None);
        assert_eq!(field(Binary::Text, "é\t"), Some("é\t".as_bytes().to_vec()));
        assert_eq!(HEADER.len(), 19);
    }
}
