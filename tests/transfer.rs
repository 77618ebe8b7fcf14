//! `countersign import`, `export` and `backup`, run as real processes
//! against real vault files and the format fixtures.

#![cfg(feature = "cli")]

mod common;

use std::path::PathBuf;

use common::{Sandbox, names};

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import").join(name).display().to_string()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn an_encrypted_aegis_export_imports_with_a_per_entry_report_and_only_once() {
    let sandbox = Sandbox::new();
    sandbox.init();
    let before = std::fs::read(sandbox.path()).unwrap();
    let file = fixture("aegis-encrypted.json");

    // A dry run says what would happen and changes nothing.
    let output =
        sandbox.command().env("COUNTERSIGN_FILE_PASSWORD", "countersign-test").args(["import", &file, "--dry-run"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("new       Acme Corp (alice@example.com)"), "{text}");
    assert!(text.contains("4 of 4 entries would be imported; nothing was changed"), "{text}");
    assert_eq!(std::fs::read(sandbox.path()).unwrap(), before);

    let output = sandbox.command().env("COUNTERSIGN_FILE_PASSWORD", "countersign-test").args(["import", &file]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("imported  Steam (dave)"), "{text}");
    assert!(text.contains("(Aegis, encrypted): 4 of 4 entries imported."), "{text}");
    assert_eq!(names(&sandbox), ["alice@example.com", "bob", "carol", "dave"]);

    // The same file again: every entry is reported as already there, and
    // the command fails because nothing was imported.
    let output = sandbox.command().env("COUNTERSIGN_FILE_PASSWORD", "countersign-test").args(["import", &file, "--json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert!(
        report.as_array().unwrap().iter().all(|line| line["outcome"] == "skipped" && line["reason"] == "already in the vault"),
        "{report}"
    );
    assert!(stderr(&output).contains("nothing was imported from"), "{}", stderr(&output));
    assert_eq!(names(&sandbox).len(), 4);
}

#[test]
fn every_plain_format_imports_through_the_command_line() {
    for (file, format, count) in [
        ("aegis-plain.json", "Aegis", 4),
        ("2fas-plain.2fas", "2FAS", 4),
        ("andotp-plain.json", "andOTP", 4),
        ("bitwarden.json", "Bitwarden", 3),
        ("freeotp-plus.json", "FreeOTP+", 4),
        ("freeotp-plus-uris.txt", "otpauth URI list", 4),
        ("ente-plain.txt", "Ente Auth", 4),
        ("uris.txt", "otpauth URI list", 4),
        ("google-migration.txt", "Google Authenticator export", 2),
    ] {
        let sandbox = Sandbox::new();
        sandbox.init();
        let text = sandbox.ok(&["import", &fixture(file)]);
        assert!(text.contains(&format!("({format}): {count} of {count} entries imported.")), "{file}: {text}");
        assert_eq!(names(&sandbox).len(), count, "{file}");
    }
}

#[test]
fn wrong_passwords_and_damaged_files_name_the_file_and_leave_the_vault_alone() {
    let sandbox = Sandbox::new();
    sandbox.init();
    let before = std::fs::read(sandbox.path()).unwrap();
    let file = fixture("2fas-encrypted.2fas");
    let output = sandbox.command().env("COUNTERSIGN_FILE_PASSWORD", "guess").args(["import", &file]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stderr(&output), format!("countersign: {file}: wrong password, or the encrypted part is damaged\n"));

    // No password and no terminal: a clear message naming the file's
    // password options (not the vault's), not a hang.
    let output = sandbox.run(&["import", &file]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "countersign: the file's password is needed and there is no terminal to ask on: pass --file-password-file FILE or set COUNTERSIGN_FILE_PASSWORD\n"
    );
    let out = sandbox.dir.path().join("export.cvault");
    let output = sandbox.run(&["export", "--format", "countersign", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("pass --file-password-file FILE or set COUNTERSIGN_FILE_PASSWORD"), "{}", stderr(&output));

    // A format named on the command line that the file does not have.
    let aegis = fixture("aegis-plain.json");
    let output = sandbox.run(&["import", &aegis, "--format", "bitwarden"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stderr(&output), format!("countersign: {aegis}: it is not a Bitwarden export: it looks like an Aegis export\n"));

    let broken = sandbox.dir.path().join("broken.json");
    std::fs::write(&broken, &std::fs::read(fixture("aegis-plain.json")).unwrap()[..300]).unwrap();
    let output = sandbox.run(&["import", broken.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with(&format!("countersign: {}: not a format Countersign can import", broken.display())),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read(sandbox.path()).unwrap(), before, "the vault is untouched");
}

#[test]
fn exports_in_the_clear_need_reveal_and_every_export_imports_back_identically() {
    let source = Sandbox::new();
    source.init();
    source.ok(&["import", &fixture("uris.txt")]);
    source.ok(&[
        "add",
        "--issuer",
        "Seven",
        "--account",
        "erin",
        "--secret",
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBV",
        "--digits",
        "7",
        "--algorithm",
        "SHA512",
    ]);
    let codes = |sandbox: &Sandbox| sandbox.ok(&["code", "--json", "--at", "2026-12-03T10:00:00Z"]);
    let list = |sandbox: &Sandbox| sandbox.ok(&["list", "--json"]).replace(char::is_whitespace, "");
    let strip_ids = |text: String| -> serde_json::Value {
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        for entry in value.as_array_mut().unwrap() {
            entry.as_object_mut().unwrap().retain(|key, _| key != "id" && key != "added");
        }
        value
    };

    let out = source.dir.path().join("clear.txt");
    let output = source.run(&["export", "--format", "uris", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("add --reveal to confirm"), "{}", stderr(&output));
    assert!(!out.exists());

    for (format, name) in
        [("countersign", "backup.cvault"), ("aegis-encrypted", "aegis.json"), ("aegis", "aegis-plain.json"), ("uris", "uris.txt")]
    {
        let out = source.dir.path().join(name);
        let output = source
            .command()
            .env("COUNTERSIGN_FILE_PASSWORD", "export pass")
            .args(["export", "--format", format, "--reveal", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(output.status.success(), "{format}: {}", stderr(&output));
        assert!(stdout(&output).contains("Exported 5 of 5 accounts"), "{format}: {}", stdout(&output));

        let target = Sandbox::new();
        target.init();
        let output =
            target.command().env("COUNTERSIGN_FILE_PASSWORD", "export pass").args(["import", out.to_str().unwrap()]).output().unwrap();
        assert!(output.status.success(), "{format}: {}", stderr(&output));
        assert_eq!(strip_ids(list(&target)), strip_ids(list(&source)), "{format}");
        assert_eq!(strip_ids(codes(&target)), strip_ids(codes(&source)), "{format}");
    }

    // Never over an existing file.
    let existing = source.dir.path().join("uris.txt");
    let before = std::fs::read(&existing).unwrap();
    let output = source.run(&["export", "--format", "uris", "--reveal", existing.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("already exists; it was left untouched"), "{}", stderr(&output));
    assert_eq!(std::fs::read(&existing).unwrap(), before);
}

#[test]
fn google_codes_are_written_as_images_that_scan_back() {
    let sandbox = Sandbox::new();
    sandbox.init();
    sandbox.ok(&["import", &fixture("uris.txt")]);
    let out = sandbox.dir.path().join("google");
    let output = sandbox.run(&["export", "--format", "google-qr", "--reveal", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    // GitHub (60 s, 8 digits, SHA256) and Steam cannot go to Google Authenticator.
    assert!(stderr(&output).contains("left out GitHub (bob)") && stderr(&output).contains("left out Steam (dave)"), "{}", stderr(&output));
    assert!(stdout(&output).contains("Exported 2 of 4 accounts"), "{}", stdout(&output));
    let image = out.join("google-authenticator-1-of-1.png");
    let scanned = sandbox.ok(&["scan", image.to_str().unwrap()]);
    assert!(scanned.starts_with("otpauth-migration://offline?data="), "{scanned}");

    let target = Sandbox::new();
    target.init();
    target.ok(&["add", "--qr", image.to_str().unwrap()]);
    assert_eq!(names(&target), ["alice@example.com", "carol"]);
}

#[test]
fn every_change_is_backed_up_verified_and_restorable() {
    let sandbox = Sandbox::new();
    sandbox.init();
    let listing = sandbox.ok(&["backup", "list"]);
    assert!(listing.contains("No backups in") && listing.contains("Never verified"), "{listing}");
    assert_eq!(sandbox.run(&["backup", "verify"]).status.code(), Some(1));

    sandbox.ok(&["add", "--issuer", "A", "--account", "first", "--secret", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"]);
    sandbox.ok(&["add", "--issuer", "B", "--account", "second", "--secret", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJR"]);
    let backups_dir = sandbox.dir.path().join("backups");
    let mut backups: Vec<PathBuf> = std::fs::read_dir(&backups_dir).unwrap().map(|e| e.unwrap().path()).collect();
    backups.sort();
    assert_eq!(backups.len(), 2);
    assert_eq!(std::fs::read(&backups[1]).unwrap(), std::fs::read(sandbox.path()).unwrap());

    let verified = sandbox.ok(&["backup", "verify"]);
    assert!(verified.contains("decrypts and matches the vault: 2 accounts"), "{verified}");
    assert!(sandbox.ok(&["backup", "list"]).contains("Last verified restorable:"));

    // Restoring asks for confirmation first, then keeps the replaced vault.
    let older = backups[0].to_str().unwrap();
    let output = sandbox.run(&["backup", "restore", older]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("Refusing without --yes when not run interactively"), "{}", stderr(&output));
    assert_eq!(names(&sandbox), ["first", "second"]);
    sandbox.ok(&["backup", "restore", older, "--yes"]);
    assert_eq!(names(&sandbox), ["first"]);
    // The replaced vault was copied first, and the restored one is the newest copy.
    assert_eq!(
        std::fs::read_dir(&backups_dir).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "cvault")).count(),
        4
    );
    assert!(sandbox.ok(&["backup", "verify"]).contains("matches the vault: 1 accounts"));

    // A backup folder that cannot be written: the change is saved, and the user is told.
    std::fs::remove_dir_all(&backups_dir).unwrap();
    std::fs::write(&backups_dir, b"in the way").unwrap();
    let output = sandbox.run(&["rename", "first", "--account", "renamed"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("warning: saved, but no backup was taken"), "{}", stderr(&output));
    assert_eq!(names(&sandbox), ["renamed"]);
}

#[test]
fn imports_that_add_nothing_save_nothing_and_keep_the_backup_of_a_real_change() {
    let sandbox = Sandbox::new();
    sandbox.init();
    let file = fixture("uris.txt");
    sandbox.ok(&["import", &file]);
    let backups_dir = sandbox.dir.path().join("backups");
    let backups = || {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&backups_dir).unwrap().map(|e| e.unwrap().path()).collect();
        found.sort();
        found
    };
    let (vault, taken) = (std::fs::read(sandbox.path()).unwrap(), backups());
    assert_eq!(taken.len(), 1);

    // Every entry invalid, duplicates only, duplicates to merge with nothing
    // new: twelve of them would have pushed the real change's backup out of
    // the newest ten.
    let invalid = sandbox.dir.path().join("invalid.txt");
    std::fs::write(&invalid, "otpauth://totp/B:b?secret=not*base32\notpauth://yandex/C:c?secret=GEZDGNBVGY3TQOJQ\n").unwrap();
    let invalid = invalid.to_str().unwrap();
    for round in 0..12 {
        for args in [&["import", &file][..], &["import", &file, "--merge"], &["import", invalid]] {
            let output = sandbox.run(args);
            assert_eq!(output.status.code(), Some(1), "{args:?}");
            assert!(stdout(&output).contains("entries imported; the vault was not changed."), "{args:?}: {}", stdout(&output));
            assert!(stderr(&output).ends_with("; the vault was not changed\n"), "{args:?}: {}", stderr(&output));
            assert!(std::fs::read(sandbox.path()).unwrap() == vault, "round {round}, {args:?}: the vault was rewritten");
        }
    }
    assert_eq!(backups(), taken);
    assert!(sandbox.ok(&["backup", "verify"]).contains("decrypts and matches the vault: 4 accounts"));
}
