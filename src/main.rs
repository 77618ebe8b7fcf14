//! The `countersign` binary: the command line (and, once it exists, the window).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
