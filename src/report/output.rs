//! Where a report goes: `--format` picks what is printed on stdout, each
//! `--out FILE` (and `--json FILE`) writes one more file in the format its
//! extension names, or as `FORMAT:FILE`. Resolved and checked before the
//! rehearsal starts, so a typo fails in a second, not after a long run.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::RunOptions;
use crate::error::{Error, Result};
use crate::report::render::{self, Doc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Markdown,
    Html,
}

impl Format {
    fn parse(name: &str) -> Option<Format> {
        match name {
            "text" | "txt" => Some(Format::Text),
            "json" => Some(Format::Json),
            "markdown" | "md" => Some(Format::Markdown),
            "html" | "htm" => Some(Format::Html),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub struct Outputs {
    stdout: Format,
    files: Vec<(Format, PathBuf)>,
}

impl Outputs {
    pub fn parse(opts: &RunOptions) -> Result<Outputs> {
        let stdout = Format::parse(&opts.format).ok_or_else(|| {
            Error::input(format!("--format {:?} is not known; use text, json, markdown or html", opts.format))
        })?;
        let mut files = Vec::new();
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
            files.push((format, path));
        }
        if let Some(p) = &opts.json {
            files.push((Format::Json, p.clone()));
        }
        for (_, path) in &files {
            check_dir(path)?;
        }
        Ok(Outputs { stdout, files })
    }

    /// Prints the report on stdout and writes every file.
    pub fn write(&self, doc: Doc) -> Result<()> {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        render::render(doc, self.stdout, &mut out).map_err(|e| Error::env(format!("cannot print the report: {e}")))?;
        out.flush().ok();
        for (format, path) in &self.files {
            let write = || -> std::io::Result<()> {
                let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
                render::render(doc, *format, &mut f)?;
                f.flush()
            };
            write().map_err(|e| Error::env(format!("{}: cannot write the report: {e}", path.display())))?;
        }
        Ok(())
    }
}

fn check_dir(path: &Path) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(Error::input(format!("{}: directory {} does not exist", path.display(), dir.display())));
    }
    Ok(())
}
