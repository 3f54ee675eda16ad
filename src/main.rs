//! `lockimpact` binary: a thin shell that parses the command line, calls the
//! library and turns its outcome into the process's exit status
//! (`lockimpact::error::ExitCode`: 0 ok, 1 budget exceeded, 2 bad input or
//! environment, 3 inconclusive, 130 interrupted).

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = lockimpact::cli::Cli::parse();
    lockimpact::main_entry(cli).into()
}
