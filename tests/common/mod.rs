//! Helpers shared by the integration tests: a private vault in a temp dir and
//! the real `countersign` binary.

#![allow(dead_code)]

#[cfg(all(feature = "server", feature = "client", feature = "cli"))]
pub mod cluster;
#[cfg(all(feature = "server", feature = "client", feature = "cli"))]
pub mod server;

use std::path::{Path, PathBuf};
#[cfg(feature = "cli")]
use std::process::{Command, Output};
use std::time::Duration;

/// A vault path in a fresh temp dir, and the password file that opens it.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub vault: PathBuf,
    pub password_file: PathBuf,
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let vault = dir.path().join("vault.cvault");
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, "test password\n").expect("password file");
        Sandbox { dir, vault, password_file }
    }

    pub fn path(&self) -> &Path {
        &self.vault
    }
}

// The real binary is built only with the feature `cli`.
#[cfg(feature = "cli")]
impl Sandbox {
    /// `countersign` with this vault, the password file, no keyring, and a
    /// HOME inside the sandbox so nothing touches the user's real files.
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_countersign"));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("COUNTERSIGN_VAULT", &self.vault)
            .env("COUNTERSIGN_PASSWORD_FILE", &self.password_file)
            .arg("--no-keyring");
        command
    }

    /// `countersign` that may use the session's Secret Service (no `--no-keyring`,
    /// no password unless the caller adds one).
    pub fn keyring_command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_countersign"));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("COUNTERSIGN_VAULT", &self.vault);
        for name in ["DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR"] {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run countersign")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(output.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("utf-8 stdout")
    }

    /// A vault with a cheap KDF, so that tests spawning hundreds of processes stay fast.
    pub fn init(&self) {
        self.ok(&["init", "--kdf-memory", "1", "--kdf-passes", "1"]);
    }
}

/// The account names in `list --json`.
#[cfg(feature = "cli")]
pub fn names(sandbox: &Sandbox) -> Vec<String> {
    let list: serde_json::Value = serde_json::from_str(&sandbox.ok(&["list", "--json"])).expect("list --json is JSON");
    list.as_array().expect("an array").iter().map(|a| a["account"].as_str().expect("account").to_owned()).collect()
}

/// Writes `text` as a QR code PNG: 4 pixels a module, a 4-module quiet zone.
pub fn qr_png(text: &str, path: &Path) {
    countersign::transfer::qr_image(text, 4).expect("fits in a QR code").save(path).expect("write the PNG");
}

/// A line, or the end, from a reader thread; `None` when nothing came within
/// `within` (a hang turned into a failure, not a measure of speed).
pub fn line_within(lines: &std::sync::mpsc::Receiver<String>, within: Duration) -> Option<Option<String>> {
    match lines.recv_timeout(within) {
        Ok(line) => Some(Some(line)),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Some(None),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
    }
}

/// Reads `from` line by line on a thread of its own.
pub fn lines_of(from: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(from).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    lines
}

/// A child process killed when the test ends, however it ends.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
