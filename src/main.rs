//! `lockimpact` binary: a thin shell that parses the command line, calls the
//! library and maps its outcome to an exit code (0 ok, 1 budget exceeded,
//! 2 bad input or environment, 3 inconclusive, 130 interrupted).

use clap::Parser;

fn main() {
    let cli = lockimpact::cli::Cli::parse();
    let code = lockimpact::main_entry(cli);
    std::process::exit(code);
}
