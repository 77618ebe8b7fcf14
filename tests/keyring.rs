//! The OS keyring slot against a real Secret Service: gnome-keyring-daemon in a
//! private D-Bus session that `tests/run` starts. Ignored by a plain
//! `cargo test`, because on a desktop it would reach the user's real keyring.

#![cfg(feature = "cli")]

mod common;

use std::process::Output;

use common::Sandbox;

fn require_private_secret_service() {
    assert_eq!(
        std::env::var("COUNTERSIGN_PRIVATE_SECRET_SERVICE").as_deref(),
        Ok("1"),
        "run this through tests/run, which starts a private Secret Service; it must not touch your real keyring"
    );
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn run(sandbox: &Sandbox, args: &[&str]) -> Output {
    sandbox.keyring_command().args(args).output().expect("run countersign")
}

fn with_password(sandbox: &Sandbox, args: &[&str]) -> Output {
    sandbox.keyring_command().env("COUNTERSIGN_PASSWORD_FILE", &sandbox.password_file).args(args).output().expect("run countersign")
}

fn listed(output: &Output) -> usize {
    assert!(output.status.success(), "{}", stderr(output));
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    list.as_array().expect("array").len()
}

/// One test, in order, because the last phase locks the shared keyring.
#[test]
#[ignore = "needs the private Secret Service that tests/run starts"]
fn keyring_slot_against_a_real_secret_service() {
    require_private_secret_service();
    let sandbox = Sandbox::new();

    // Keyring plus password; from then on, no password is asked for.
    let created = with_password(&sandbox, &["init", "--keyring", "--password", "--kdf-memory", "1", "--kdf-passes", "1"]);
    assert!(created.status.success(), "{}", stderr(&created));
    assert!(String::from_utf8_lossy(&created.stdout).contains("the OS keyring and a password"));
    assert!(run(&sandbox, &["add", "--uri", "otpauth://totp/Acme:alice?secret=JBSWY3DPEHPK3PXP"]).status.success());
    assert_eq!(listed(&run(&sandbox, &["list", "--json"])), 1);

    // Changing the password rotates the master key; the keyring slot follows.
    let new_password = sandbox.dir.path().join("new");
    std::fs::write(&new_password, "rotated\n").unwrap();
    let rotated =
        run(&sandbox, &["passwd", "--new-password-file", new_password.to_str().unwrap(), "--kdf-memory", "1", "--kdf-passes", "1"]);
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    let said = String::from_utf8_lossy(&rotated.stdout);
    assert!(
        said.contains("the master key and the OS keyring's key were replaced")
            && said.contains("Older copies: 2 older copies (backups) re-encrypted"),
        "{said}"
    );
    assert_eq!(listed(&run(&sandbox, &["list", "--json"])), 1);
    std::fs::write(&sandbox.password_file, "rotated\n").unwrap();

    // Keyring off: the password is needed again, and the keyring entry is gone.
    assert!(run(&sandbox, &["keyring", "off"]).status.success());
    let refused = run(&sandbox, &["list"]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("the vault password is needed"), "{}", stderr(&refused));
    assert_eq!(listed(&with_password(&sandbox, &["list", "--json"])), 1);
    assert!(with_password(&sandbox, &["keyring", "on"]).status.success());
    assert_eq!(listed(&run(&sandbox, &["list", "--json"])), 1);

    // No Secret Service at all: an immediate, clear fallback to the password.
    let no_bus = sandbox
        .keyring_command()
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env("COUNTERSIGN_PASSWORD_FILE", &sandbox.password_file)
        .args(["list", "--json"])
        .output()
        .unwrap();
    assert_eq!(listed(&no_bus), 1);
    assert!(
        stderr(&no_bus).contains("keyring is unavailable") && stderr(&no_bus).contains("unlocking with the password instead"),
        "{}",
        stderr(&no_bus)
    );

    // A locked keyring: the same fallback, never a hang waiting for a prompt.
    let lock = std::process::Command::new("dbus-send")
        .args([
            "--session",
            "--print-reply",
            "--dest=org.freedesktop.secrets",
            "/org/freedesktop/secrets",
            "org.freedesktop.Secret.Service.Lock",
            "array:objpath:/org/freedesktop/secrets/collection/login",
        ])
        .output()
        .expect("dbus-send");
    assert!(lock.status.success(), "locking the keyring: {}", stderr(&lock));
    let locked = with_password(&sandbox, &["list", "--json"]);
    assert_eq!(listed(&locked), 1);
    assert!(stderr(&locked).contains("unlocking with the password instead"), "{}", stderr(&locked));
    let without_password = run(&sandbox, &["list"]);
    assert!(!without_password.status.success());
}
