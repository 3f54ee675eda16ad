//! Text input: a text file read whole (UTF-8, named in every error), where
//! invalid UTF-8 starts, and TOML errors as one line with their place.

use std::path::Path;

use crate::error::{Error, Result};

/// Where a file stops being UTF-8: "line L, byte B" (B counted from 0 in the file).
pub fn utf8_place(e: &std::string::FromUtf8Error) -> String {
    let valid = e.utf8_error().valid_up_to();
    let line = e.as_bytes()[..valid].iter().filter(|&&b| b == b'\n').count() + 1;
    format!("line {line}, byte {valid}")
}

/// Reads a text file, naming it in the error (missing, unreadable, not a
/// regular file, too big, not UTF-8, empty); a byte-order mark at its start
/// is dropped.
pub fn read_text(path: &Path, what: &str) -> Result<String> {
    read_text_within(path, what, super::TEXT_LIMIT)
}

/// `read_text` with its own size limit (a session replay is a recording).
pub fn read_text_within(path: &Path, what: &str, limit: u64) -> Result<String> {
    let bytes = super::read_input(path, what, limit)?;
    let mut text = String::from_utf8(bytes).map_err(|e| {
        Error::input(format!(
            "{}: the {what} is not valid UTF-8 ({}); save it as UTF-8",
            path.display(),
            utf8_place(&e)
        ))
    })?;
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    if text.trim().is_empty() {
        return Err(Error::input(format!("{}: the {what} is empty", path.display())));
    }
    Ok(text)
}

/// A TOML error as "line L, column C: message" (the toml crate's own text
/// repeats the source line; this keeps one line).
pub fn toml_message(e: &toml::de::Error, text: &str) -> String {
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {col}: {}", e.message())
        }
        None => e.message().to_string(),
    }
}
