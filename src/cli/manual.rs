//! Manual pages and shell completions, generated from a binary's clap
//! definitions when the packages are built: either binary started with
//! `COUNTERSIGN_GENERATE_DOCS=DIR` writes its own into DIR and exits (see
//! packaging/linux/build-deb). It is an environment variable rather than a
//! hidden subcommand because clap_complete completes hidden subcommands.
//! Both binaries include this file (`countersign` as `cli::manual`,
//! countersign-server by `#[path]`), so clap stays out of the library.

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The variable naming the folder to write into.
pub const VARIABLE: &str = "COUNTERSIGN_GENERATE_DOCS";

/// When [`VARIABLE`] is set: writes `command`'s pages and completions and
/// says how that went; the binary then exits with it.
pub fn requested(command: clap::Command) -> Option<ExitCode> {
    let dir = PathBuf::from(std::env::var_os(VARIABLE).filter(|dir| !dir.is_empty())?);
    let name = command.get_name().to_owned();
    Some(match write(command, &dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: cannot write the manual into {}: {error}", dir.display());
            ExitCode::FAILURE
        }
    })
}

use clap_complete::Shell;

/// Writes `DIR/man/NAME.1` and one page per subcommand (`NAME-SUB.1`), and
/// `DIR/completions/{bash/NAME, zsh/_NAME, fish/NAME.fish}`.
pub fn write(mut command: clap::Command, dir: &Path) -> io::Result<()> {
    let name = command.get_name().to_owned();
    let man = dir.join("man");
    std::fs::create_dir_all(&man)?;
    clap_mangen::generate_to(command.clone(), &man)?;
    for (shell, file) in [(Shell::Bash, name.clone()), (Shell::Zsh, format!("_{name}")), (Shell::Fish, format!("{name}.fish"))] {
        let folder = dir.join("completions").join(shell.to_string());
        std::fs::create_dir_all(&folder)?;
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut command, &name, &mut out);
        std::fs::write(folder.join(file), out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_completions_cover_the_visible_subcommands() {
        let command = clap::Command::new("demo")
            .about("A demo")
            .version("1.2.3")
            .subcommand(clap::Command::new("code").about("Print codes").arg(clap::Arg::new("query")))
            .subcommand(clap::Command::new("internal").hide(true));
        let dir = tempfile::tempdir().unwrap();
        write(command, dir.path()).unwrap();
        let page = std::fs::read_to_string(dir.path().join("man/demo.1")).unwrap();
        assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{page}");
        assert!(page.contains(".TH demo 1") && page.contains("A demo") && page.contains("demo\\-code(1)"), "{page}");
        assert!(std::fs::read_to_string(dir.path().join("man/demo-code.1")).unwrap().contains("Print codes"));
        assert!(!dir.path().join("man/demo-internal.1").exists(), "hidden commands get no page");
        let bash = std::fs::read_to_string(dir.path().join("completions/bash/demo")).unwrap();
        assert!(bash.contains("complete -F _demo") && bash.contains("code"), "{bash}");
        assert!(std::fs::read_to_string(dir.path().join("completions/zsh/_demo")).unwrap().starts_with("#compdef demo"));
        assert!(std::fs::read_to_string(dir.path().join("completions/fish/demo.fish")).unwrap().contains("complete -c demo"));
    }
}
