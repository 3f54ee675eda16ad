//! JSON renderer: the report as pretty-printed JSON (the public contract).

use std::io::Write;

use crate::report::model::Report;

pub fn render(r: &Report, out: &mut impl Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, r)?;
    writeln!(out)
}
