//! JSON renderer: the report (or the comparison) as pretty-printed JSON, the
//! public contract.

use std::io::Write;

/// Writes a `Report` or a `Comparison`.
pub fn render(r: &impl serde::Serialize, out: &mut impl Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, r)?;
    writeln!(out)
}
