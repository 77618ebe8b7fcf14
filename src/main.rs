//! The `countersign` binary: the command line (and, once it exists, the window).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    countersign::process::forbid_core_dumps();
    cli::main()
}
