//! Where a report goes: `--format` picks what is printed on stdout, each
//! `--out FILE` (and `--json FILE`) writes one more file in the format its
//! extension names, or as `FORMAT:FILE`. Resolved and checked before the
//! rehearsal starts (`files::Destination`: not a directory, not a symlink
//! loop, writable, not an input of the run), so a typo fails in a second, not
//! after a long run. The files are written first, each atomically, then
//! stdout: a closed stdout (`| head -1`) loses no file.

use std::io::Write;
use std::path::PathBuf;

pub use crate::cli::Format;
use crate::cli::RunOptions;
use crate::error::{Error, Result};
use crate::files::Destination;
use crate::report::render::{self, Doc};

#[derive(Debug)]
pub struct Outputs {
    stdout: Format,
    files: Vec<(Format, Destination)>,
}

impl Outputs {
    /// Resolves `--format`, `--out` and `--json`; `inputs` are the files the
    /// run reads, which no output may overwrite.
    pub fn parse(opts: &RunOptions, inputs: &[PathBuf]) -> Result<Outputs> {
        let stdout = opts.format;
        let mut paths = Vec::new();
        for spec in &opts.out {
            let (format, path) = match spec.split_once(':').and_then(|(f, p)| Some((Format::parse(f)?, p))) {
                Some((f, p)) => (f, PathBuf::from(p)),
                None => {
                    let path = PathBuf::from(spec);
                    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
                    let f = Format::parse(&ext).ok_or_else(|| {
                        Error::input(format!(
                            "--out {spec}: cannot tell the format from the extension; use .txt, .json, .md or \
                             .html, or write it as FORMAT:FILE (e.g. --out markdown:{spec})"
                        ))
                    })?;
                    (f, path)
                }
            };
            paths.push(("--out", format, path));
        }
        if let Some(p) = &opts.json {
            paths.push(("--json", Format::Json, p.clone()));
        }
        let mut files: Vec<(Format, Destination)> = Vec::new();
        for (flag, format, path) in paths {
            let dest = Destination::check(&path, flag, inputs)?;
            if let Some((_, twice)) = files.iter().find(|(_, d)| d.same_as(&dest)) {
                return Err(Error::input(format!(
                    "{flag} {}: the same file as {}, given twice; give each output once",
                    path.display(),
                    twice.shown.display()
                )));
            }
            files.push((format, dest));
        }
        Ok(Outputs { stdout, files })
    }

    /// Writes every file (each atomically), then prints the report on stdout.
    /// A closed stdout (a reader that stopped, `| head -1`) is not an error:
    /// the files are written by then.
    pub fn write(&self, doc: Doc) -> Result<()> {
        for (format, dest) in &self.files {
            dest.write(|mut f| render::render(doc, *format, &mut f))
                .map_err(|e| Error::env(format!("{}: cannot write the report: {e}", dest.shown.display())))?;
        }
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        match render::render(doc, self.stdout, &mut out).and_then(|_| out.flush()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(Error::env(format!("cannot print the report: {e}")))
            }
            _ => Ok(()),
        }
    }
}
