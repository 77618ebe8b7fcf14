//! The `countersign` binary: the command line (and, once it exists, the window).

// Nothing input can reach may panic: unwrap and expect are for tests.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    countersign::process::forbid_core_dumps();
    cli::main()
}
