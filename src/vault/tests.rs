use std::sync::OnceLock;

use super::*;
use crate::secret::Secret;

/// A cheap KDF so tests stay fast; the default is exercised by the benchmark.
const CHEAP: Kdf = Kdf { memory_kib: 64, passes: 1, lanes: 1 };

fn password() -> Option<(Password, Kdf)> {
    Some((Password::new("correct horse".into()), CHEAP))
}

fn mock_keyring() -> Keyring {
    static STORE: OnceLock<()> = OnceLock::new();
    STORE.get_or_init(|| keyring_core::set_default_store(keyring_core::mock::Store::new().expect("mock store")));
    Keyring::with_current_store()
}

fn account(name: &str) -> Account {
    Account::totp("Acme", name, Secret::from_bytes(name.as_bytes().to_vec()))
}

#[test]
fn create_add_reopen_with_password() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    let mut vault = Vault::create(&path, Protection { password: password(), keyring: None }).unwrap();
    let ids = vault.add(vec![account("alice"), account("bob")], 100).unwrap();
    assert_eq!(ids.len(), 2);

    let locked = Locked::read(&path).unwrap();
    assert!(locked.has_password() && !locked.has_keyring());
    let reopened = locked.unlock_with_password(&Password::new("correct horse".into())).unwrap();
    assert_eq!(reopened.entries(), vault.entries());
    assert_eq!(reopened.entries()[0].account, account("alice"));
    assert_eq!(reopened.entries()[1].added, 100);
}

#[test]
fn wrong_password_is_reported_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    Vault::create(&path, Protection { password: password(), keyring: None }).unwrap();
    let before = std::fs::read(&path).unwrap();
    let error = Locked::read(&path).unwrap().unlock_with_password(&Password::new("nope".into())).unwrap_err();
    assert!(matches!(error, Error::WrongPassword), "{error}");
    assert_eq!(error.to_string(), "wrong password");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn every_flipped_byte_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    let mut vault = Vault::create(&path, Protection { password: password(), keyring: None }).unwrap();
    vault.add(vec![account("alice")], 1).unwrap();
    vault.add(vec![account("bob")], 2).unwrap();
    let good = std::fs::read(&path).unwrap();
    for index in 0..good.len() {
        let mut bad = good.clone();
        bad[index] ^= 0x20;
        std::fs::write(&path, &bad).unwrap();
        let error = Locked::read(&path).and_then(|l| l.unlock_with_password(&Password::new("correct horse".into())));
        match error {
            Err(Error::Corrupt { backup: Some(_), .. } | Error::NotAVault { .. } | Error::UnsupportedVersion { .. }) => {}
            other => panic!("byte {index}: {other:?}"),
        }
        assert_eq!(std::fs::read(&path).unwrap(), bad, "the damaged file is left as it was");
    }
    for length in 0..good.len() {
        std::fs::write(&path, &good[..length]).unwrap();
        assert!(Locked::read(&path).is_err(), "truncated to {length}");
    }
}

#[test]
fn corrupt_error_names_the_file_and_the_backup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    let mut vault = Vault::create(&path, Protection { password: password(), keyring: None }).unwrap();
    vault.add(vec![account("alice")], 1).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 40;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let message = Locked::read(&path).unwrap_err().to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("v.cvault.bak"), "{message}");
    // The backup is the previous generation and opens.
    let backup = Locked::read(&backup_path(&path)).unwrap().unlock_with_password(&Password::new("correct horse".into())).unwrap();
    assert!(backup.entries().is_empty());
}

#[test]
fn updates_by_two_handles_are_both_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    let mut first = Vault::create(&path, Protection { password: password(), keyring: None }).unwrap();
    let mut second = Locked::read(&path).unwrap().unlock_with_password(&Password::new("correct horse".into())).unwrap();
    first.add(vec![account("alice")], 1).unwrap();
    second.add(vec![account("bob")], 2).unwrap();
    let names: Vec<_> = second.entries().iter().map(|e| e.account.name.clone()).collect();
    assert_eq!(names, ["alice", "bob"]);
}

#[test]
fn refuses_to_overwrite_an_existing_vault() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    Vault::create(&path, Protection { password: password(), keyring: None }).unwrap();
    let before = std::fs::read(&path).unwrap();
    assert!(matches!(Vault::create(&path, Protection { password: password(), keyring: None }), Err(Error::AlreadyExists { .. })));
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn unknown_version_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    Vault::create(&path, Protection { password: password(), keyring: None }).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[9] = 4;
    std::fs::write(&path, &bytes).unwrap();
    let error = Locked::read(&path).unwrap_err();
    assert!(matches!(error, Error::UnsupportedVersion { version: 4, .. }), "{error}");
    assert!(error.to_string().contains("version 4"));
}

#[test]
fn keyring_slot_opens_without_password_and_survives_rekeying() {
    let keyring = mock_keyring();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    let mut vault = Vault::create(&path, Protection { password: password(), keyring: Some(&keyring) }).unwrap();
    vault.add(vec![account("alice")], 1).unwrap();

    let opened = Locked::read(&path).unwrap().unlock_with_keyring(&keyring).unwrap();
    assert_eq!(opened.entries().len(), 1);

    // Changing the password rotates the master key: the old file's key no
    // longer opens the new file, but both slots still do.
    let old_bytes = std::fs::read(&path).unwrap();
    vault.set_password(Some((Password::new("new one".into()), CHEAP)), Some(&keyring), 3).unwrap();
    let new_bytes = std::fs::read(&path).unwrap();
    assert_ne!(old_bytes, new_bytes);
    assert!(matches!(Locked::read(&path).unwrap().unlock_with_password(&Password::new("correct horse".into())), Err(Error::WrongPassword)));
    Locked::read(&path).unwrap().unlock_with_password(&Password::new("new one".into())).unwrap();
    Locked::read(&path).unwrap().unlock_with_keyring(&keyring).unwrap();

    // The handle opened before the re-key can no longer write blindly.
    let mut stale = opened;
    assert!(matches!(stale.add(vec![account("bob")], 2), Err(Error::ChangedElsewhere { .. })));

    // Keyring off keeps the password; removing the password then is refused.
    vault.set_keyring(false, &keyring, 4).unwrap();
    assert!(!Locked::read(&path).unwrap().has_keyring());
    assert!(matches!(vault.set_password(None, Some(&keyring), 5), Err(Error::LastSlot)));
    vault.set_keyring(true, &keyring, 6).unwrap();
    vault.set_password(None, Some(&keyring), 7).unwrap();
    let locked = Locked::read(&path).unwrap();
    assert!(!locked.has_password() && locked.has_keyring());
    assert!(matches!(vault.set_keyring(false, &keyring, 8), Err(Error::LastSlot)));
    assert_eq!(locked.unlock_with_keyring(&keyring).unwrap().entries().len(), 1);
}

#[test]
fn every_save_uses_a_fresh_nonce() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    let mut vault = Vault::create(&path, Protection { password: password(), keyring: None }).unwrap();
    let mut nonces = std::collections::HashSet::new();
    for round in 0..20 {
        vault.update(9, |_| Ok(())).unwrap();
        let locked = Locked::read(&path).unwrap();
        assert!(nonces.insert(locked.file.header_nonce()), "nonce repeated at save {round}");
    }
}

#[test]
fn secrets_stay_out_of_debug_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    let mut vault = Vault::create(&path, Protection { password: password(), keyring: None }).unwrap();
    let secret = Secret::from_base32("JBSWY3DPEHPK3PXP").unwrap().0;
    vault.add(vec![Account::totp("Acme", "alice", secret)], 1).unwrap();
    let text = format!("{vault:?} {:?}", vault.entries());
    assert!(!text.contains("JBSWY3DPEHPK3PXP") && !text.contains("correct horse"), "{text}");
    let bytes = std::fs::read(&path).unwrap();
    assert!(!bytes.windows(16).any(|w| w == b"JBSWY3DPEHPK3PXP"), "secret in clear in the file");
}

#[test]
fn released_v1_fixture_still_opens() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vault-v1.cvault");
    let vault = Locked::read(&path).unwrap().unlock_with_password(&Password::new("fixture-password".into())).unwrap();
    let accounts: Vec<Account> = vault.entries().iter().map(|e| e.account.clone()).collect();
    let expected: Vec<Account> = std::fs::read_to_string(path.with_extension("uris"))
        .unwrap()
        .lines()
        .map(|line| match crate::uri::parse(line) {
            Ok(crate::uri::Payload::Account { account, .. }) => account,
            other => panic!("{line}: {other:?}"),
        })
        .collect();
    assert_eq!(accounts.len(), 5);
    assert_eq!(accounts, expected);
}

#[test]
fn import_skips_accounts_that_give_the_same_codes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    let mut vault = Vault::create(&path, Protection { password: password(), keyring: None }).unwrap();
    let ids = vault.add(vec![account("alice")], 1).unwrap();
    // Same secret under another name: a duplicate. Same secret with 8
    // digits: different codes, so a new account.
    let mut renamed = account("alice");
    renamed.name = "alice (old phone)".into();
    let mut eight = account("alice");
    eight.digits = 8;
    let outcome = vault.import(vec![renamed, account("bob"), eight.clone(), account("bob")], 2, Duplicates::Skip).unwrap();
    assert_eq!(outcome[0], Imported::AlreadyThere(ids[0].clone()));
    let Imported::Added(bob) = &outcome[1] else { panic!("{outcome:?}") };
    assert!(matches!(outcome[2], Imported::Added(_)));
    // The second bob duplicates the first one of the same import.
    assert_eq!(outcome[3], Imported::AlreadyThere(bob.clone()));
    let reopened = Locked::read(&path).unwrap().unlock_with_password(&Password::new("correct horse".into())).unwrap();
    let names: Vec<(&str, u8)> = reopened.entries().iter().map(|e| (e.account.name.as_str(), e.account.digits)).collect();
    assert_eq!(names, [("alice", 6), ("bob", 6), ("alice", 8)]);
}

#[test]
fn merging_a_duplicate_takes_the_new_names_and_the_higher_counter() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    let mut vault = Vault::create(&path, Protection { password: password(), keyring: None }).unwrap();
    let mut hotp = account("carol");
    hotp.method = Method::Hotp { counter: 7 };
    let ids = vault.add(vec![account("alice"), hotp.clone()], 1).unwrap();
    let mut renamed = account("alice");
    renamed.issuer = "Acme Corp".into();
    let mut behind = hotp.clone();
    behind.method = Method::Hotp { counter: 3 };
    behind.name = String::new();
    let outcome = vault.import(vec![renamed.clone(), behind, renamed], 2, Duplicates::Merge).unwrap();
    assert_eq!(outcome, [Imported::Merged(ids[0].clone()), Imported::AlreadyThere(ids[1].clone()), Imported::AlreadyThere(ids[0].clone())]);
    assert_eq!(vault.entries()[0].account.issuer, "Acme Corp");
    // An empty imported name keeps the vault's; a lower counter never wins.
    assert_eq!(vault.entries()[1].account, hotp);

    // A repeat inside one import is skipped, never merged into the entry
    // the same import just added (the preview says "skipped").
    let (mut first, mut again) = (account("dora"), account("dora"));
    first.name = "dora (phone)".into();
    again.name = "dora (tablet)".into();
    let outcome = vault.import(vec![first, again], 3, Duplicates::Merge).unwrap();
    let Imported::Added(dora) = &outcome[0] else { panic!("{outcome:?}") };
    assert_eq!(outcome[1], Imported::AlreadyThere(dora.clone()));
    assert_eq!(vault.entries()[2].account.name, "dora (phone)");
}

#[test]
fn an_import_that_changes_nothing_saves_nothing_and_takes_no_backup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    let mut vault = Vault::create(&path, Protection { password: password(), keyring: None }).unwrap();
    let policy = backup::Policy { dir: dir.path().join("backups"), keep: 10 };
    vault.set_backups(Some(policy.clone()));
    let mut hotp = account("carol");
    hotp.method = Method::Hotp { counter: 7 };
    vault.add(vec![account("alice"), hotp.clone()], 1).unwrap();
    let (file, backups) = (std::fs::read(&path).unwrap(), backup::list(&policy.dir, &path).unwrap());
    assert_eq!(backups.len(), 1);
    let unchanged = || (std::fs::read(&path).unwrap() == file, backup::list(&policy.dir, &path).unwrap() == backups);
    // Only duplicates, skipped or merged with nothing new; a lower counter;
    // nothing at all (a file whose entries were all unusable).
    let mut behind = hotp.clone();
    behind.method = Method::Hotp { counter: 3 };
    for (accounts, duplicates) in [
        (vec![account("alice")], Duplicates::Skip),
        (vec![account("alice"), hotp.clone()], Duplicates::Merge),
        (vec![behind], Duplicates::Merge),
        (Vec::new(), Duplicates::Skip),
    ] {
        for _ in 0..12 {
            let outcome = vault.import(accounts.clone(), 2, duplicates).unwrap();
            assert!(outcome.iter().all(|done| matches!(done, Imported::AlreadyThere(_))), "{outcome:?}");
        }
        assert_eq!(unchanged(), (true, true), "{duplicates:?}");
    }
    // A real change is still saved and backed up.
    let mut renamed = account("alice");
    renamed.issuer = "Acme Corp".into();
    assert!(matches!(vault.import(vec![renamed], 3, Duplicates::Merge).unwrap()[..], [Imported::Merged(_)]));
    assert_eq!(unchanged(), (false, false));
    assert_eq!(backup::list(&policy.dir, &path).unwrap().len(), 2);
}

#[test]
fn an_exported_copy_opens_with_its_own_password_only() {
    let entries = vec![Entry { id: Id("0123456789abcdef".into()), added: 5, account: account("alice"), push: None }];
    let bytes = export_copy(&entries, &Password::new("copy pass".into()), &CHEAP).unwrap();
    assert!(bytes.starts_with(MAGIC));
    assert_eq!(open_copy(&bytes, &Password::new("copy pass".into())).unwrap(), entries);
    assert!(matches!(open_copy(&bytes, &Password::new("nope".into())), Err(Error::WrongPassword)));
    let mut damaged = bytes.clone();
    damaged.truncate(bytes.len() - 3);
    let error = open_copy(&damaged, &Password::new("copy pass".into())).unwrap_err();
    assert!(matches!(error, Error::Unreadable(_)), "{error}");
}

#[test]
fn every_save_leaves_a_backup_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    let policy = backup::Policy { dir: dir.path().join("backups"), keep: 2 };
    let mut vault = Vault::create(&path, Protection { password: password(), keyring: None }).unwrap();
    assert!(matches!(vault.verify_backup(1_764_752_100), Err(Error::BackupsOff)));
    vault.set_backups(Some(policy.clone()));
    assert!(matches!(vault.verify_backup(1_764_752_100), Err(Error::NoBackup { .. })));
    for name in ["alice", "bob", "carol"] {
        vault.add(vec![account(name)], 1).unwrap();
    }
    assert_eq!(vault.backup_problem(), None);
    let backups = backup::list(&policy.dir, &path).unwrap();
    assert_eq!(backups.len(), 2, "only `keep` copies stay");
    assert_eq!(std::fs::read(&backups[0].path).unwrap(), std::fs::read(&path).unwrap());
    let verification = vault.verify_backup(1_764_752_100).unwrap();
    assert_eq!((verification.backup, verification.verified.accounts), (backups[0].clone(), 3));
    // The backup opens on its own with the vault's password.
    let copy = Locked::read(&backups[0].path).unwrap().unlock_with_password(&Password::new("correct horse".into())).unwrap();
    assert_eq!(copy.entries(), vault.entries());

    // A backup that no longer matches is reported, not trusted.
    std::fs::copy(&backups[1].path, &backups[0].path).unwrap();
    let error = vault.verify_backup(1_764_752_100).unwrap_err();
    assert!(error.to_string().contains("holds 2 accounts where the vault holds 3"), "{error}");
    let mut bytes = std::fs::read(&backups[0].path).unwrap();
    let last = bytes.len() - 40;
    bytes[last] ^= 1;
    std::fs::write(&backups[0].path, bytes).unwrap();
    assert!(matches!(vault.verify_backup(1_764_752_100), Err(Error::BackupMismatch { .. })));
}

/// The window and the command line once recorded a verification each their
/// own way; both now call `verify_backup`, and this pins its one rule.
#[test]
fn a_verification_is_recorded_in_the_backup_folder_only_when_it_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    let elsewhere = dir.path().join("elsewhere");
    let mut vault = Vault::create(&path, Protection { password: password(), keyring: None }).unwrap();
    vault.set_backups(Some(backup::Policy { dir: elsewhere.clone(), keep: 3 }));
    vault.add(vec![account("alice")], 1).unwrap();

    // Backups off: refused, and nothing recorded, not even beside the vault.
    vault.set_backups(None);
    assert!(matches!(vault.verify_backup(1_764_752_100), Err(Error::BackupsOff)));
    assert_eq!(backup::last_verified(&elsewhere), None);
    assert_eq!(backup::last_verified(&backup::default_dir(&path)), None);

    // On, in a folder of the user's choosing: recorded there, at the given time.
    vault.set_backups(Some(backup::Policy { dir: elsewhere.clone(), keep: 3 }));
    let verification = vault.verify_backup(1_764_752_100).unwrap();
    let newest = backup::list(&elsewhere, &path).unwrap()[0].clone();
    let expected = backup::Verified { file: newest.path.file_name().unwrap().to_str().unwrap().to_owned(), accounts: 1, at: 1_764_752_100 };
    assert_eq!(verification, backup::Verification { backup: newest, verified: expected.clone() });
    assert_eq!(backup::last_verified(&elsewhere), Some(expected.clone()));
    assert_eq!(backup::last_verified(&backup::default_dir(&path)), None);

    // A failed check keeps the last success on record.
    vault.add(vec![account("bob")], 2).unwrap();
    std::fs::write(&backup::list(&elsewhere, &path).unwrap()[0].path, b"not a vault").unwrap();
    assert!(matches!(vault.verify_backup(1_764_752_200), Err(Error::BackupMismatch { .. })));
    assert_eq!(backup::last_verified(&elsewhere), Some(expected));
}

#[test]
fn a_failed_backup_is_reported_and_the_save_still_happens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"x").unwrap();
    let mut vault = Vault::create(&path, Protection { password: password(), keyring: None }).unwrap();
    vault.set_backups(Some(backup::Policy { dir: blocker.clone(), keep: 3 }));
    vault.add(vec![account("alice")], 1).unwrap();
    let problem = vault.backup_problem().expect("the copy cannot be made");
    assert_eq!(problem.dir, blocker);
    let reopened = Locked::read(&path).unwrap().unlock_with_password(&Password::new("correct horse".into())).unwrap();
    assert_eq!(reopened.entries().len(), 1);
}

#[test]
fn restoring_a_backup_keeps_the_replaced_vault() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    let policy = backup::Policy { dir: dir.path().join("backups"), keep: 10 };
    let mut vault = Vault::create(&path, Protection { password: password(), keyring: None }).unwrap();
    vault.set_backups(Some(policy.clone()));
    vault.add(vec![account("alice")], 1).unwrap();
    let old = backup::list(&policy.dir, &path).unwrap()[0].clone();
    vault.add(vec![account("bob")], 2).unwrap();
    let current = std::fs::read(&path).unwrap();

    let opened = Locked::read(&old.path).unwrap().unlock_with_password(&Password::new("correct horse".into())).unwrap();
    let restored = restore(opened, &path, &policy, Some(policy.clone()), 3).unwrap();
    assert_eq!(restored.path(), path);
    assert_eq!(restored.entries().len(), 1);
    let reopened = Locked::read(&path).unwrap().unlock_with_password(&Password::new("correct horse".into())).unwrap();
    assert_eq!(reopened.entries()[0].account.name, "alice");
    // The vault that was replaced is backed up, and the restored one is the
    // newest backup, so verifying right away passes.
    let copies = backup::list(&policy.dir, &path).unwrap();
    assert_eq!(std::fs::read(&copies[1].path).unwrap(), current);
    assert_eq!(std::fs::read(&copies[0].path).unwrap(), std::fs::read(&path).unwrap());
    let mut restored = restored;
    assert_eq!(restored.verify_backup(1_764_752_100).unwrap().verified.accounts, 1);
}

#[test]
fn push_tokens_are_kept_apart_from_accounts_and_stay_on_this_device() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    let mut vault = Vault::create(&path, Protection { password: password(), keyring: None }).unwrap();
    vault.add(vec![account("alice")], 1).unwrap();
    let key = crate::privacyidea::DeviceKey::generate_bits(2048).unwrap();
    let token = crate::privacyidea::Token {
        serial: "PIPU0001".into(),
        label: "alice".into(),
        issuer: "privacyIDEA".into(),
        url: "https://pi.example/ttype/push".into(),
        sslverify: true,
        pin: true,
        key,
        server_key: vec![1, 2, 3],
    };
    assert_eq!(std::fs::read(&path).unwrap()[8..10], [0, 1], "format 1 while there are no tokens");
    let id = vault.add_push_token(token.clone(), 7).unwrap();
    assert_eq!(std::fs::read(&path).unwrap()[8..10], [0, 2], "format 2 once there is one: format 1 readers refuse it rather than drop it");
    // Enrolled again (privacyIDEA rolled the token out anew): the new key replaces the old.
    let mut again = token.clone();
    again.key = crate::privacyidea::DeviceKey::generate_bits(2048).unwrap();
    assert_eq!(vault.add_push_token(again.clone(), 8).unwrap(), id);
    assert_eq!(vault.push_tokens()[0].token.key, again.key);
    let token = again;

    let open = || Locked::read(&path).unwrap().unlock_with_password(&Password::new("correct horse".into())).unwrap();
    let reopened = open();
    assert_eq!(reopened.push_tokens(), [PushToken { id: id.clone(), added: 8, token: token.clone() }]);
    assert_eq!(reopened.entries().len(), 1, "a token is not an account");
    // A change to the accounts keeps the tokens.
    let mut other = open();
    other.add(vec![account("bob")], 2).unwrap();
    assert_eq!(open().push_tokens().len(), 1);
    // An export made for elsewhere leaves the token (and its key) behind.
    let copy = export_copy(vault.entries(), &Password::new("p".into()), &CHEAP).unwrap();
    std::fs::write(dir.path().join("copy.cvault"), copy).unwrap();
    let exported = Locked::read(&dir.path().join("copy.cvault")).unwrap().unlock_with_password(&Password::new("p".into())).unwrap();
    assert!(exported.push_tokens().is_empty());

    vault.remove_push_token(&id, 9).unwrap();
    assert!(open().push_tokens().is_empty());
    assert_eq!(open().entries().len(), 2);
    assert_eq!(std::fs::read(&path).unwrap()[8..10], [0, 1], "back to format 1");
}

#[test]
fn the_journal_key_is_made_once_kept_through_changes_and_left_out_of_exports() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    let mut vault = Vault::create(&path, Protection { password: password(), keyring: None }).unwrap();
    assert!(vault.journal_key().is_none());
    assert_eq!(std::fs::read(&path).unwrap()[9], 1, "no journal: still format version 1");
    let public = vault.ensure_journal(3).unwrap();
    assert_eq!(std::fs::read(&path).unwrap()[9], 3, "a vault with a journal key is format version 3, which older readers refuse");
    assert!(crate::journal::exists(&path));
    // A second handle, and later changes, keep the same key.
    let mut other = Locked::read(&path).unwrap().unlock_with_password(&Password::new("correct horse".into())).unwrap();
    assert_eq!(other.ensure_journal(4).unwrap(), public);
    other.add(vec![account("carol")], 5).unwrap();
    other.set_password(Some((Password::new("new horse".into()), CHEAP)), None, 6).unwrap();
    let reopened = Locked::read(&path).unwrap().unlock_with_password(&Password::new("new horse".into())).unwrap();
    assert_eq!(reopened.journal_key().map(crate::journal::SecretKey::public), Some(public));
    // An export is a new vault: the history stays with this one.
    let copy = export_copy(reopened.entries(), &Password::new("x".into()), &CHEAP).unwrap();
    assert_eq!(copy[9], 1);
    assert!(!format!("{reopened:?}").contains(&crate::base64::encode(*reopened.journal_key().unwrap().to_bytes())));
}

/// `tests/fixtures/vault-v3.cvault` and its journal were made by
/// `tests/fixtures/make-vault-v3.sh` when format version 3 was released.
#[test]
fn released_v3_fixture_and_its_journal_still_open() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vault-v3.cvault");
    let vault = Locked::read(&path).unwrap().unlock_with_password(&Password::new("fixture-password".into())).unwrap();
    assert_eq!(vault.entries().len(), 1);
    assert!(vault.entries()[0].push.is_some(), "a work account with its push link");
    let history = crate::journal::read(&path, vault.journal_key().expect("a journal key")).unwrap();
    assert_eq!(history.broken, None);
    assert_eq!(history.records.iter().map(|r| r.event).collect::<Vec<_>>(), [crate::journal::Event::Approved]);
    assert_eq!((history.records[0].app.as_str(), history.records[0].location.as_str()), ("Contoso VPN", "Zurich, Switzerland"));
}

#[test]
fn a_journal_of_another_key_is_set_aside_and_a_new_one_starts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    let mut vault = Vault::create(&path, Protection { password: password(), keyring: None }).unwrap();
    // A journal this vault cannot read: made by another key (a restored copy
    // from before), then one left empty by a crash.
    crate::journal::create(&path, &crate::journal::SecretKey::from_bytes([9; 32]).public()).unwrap();
    let public = vault.ensure_journal(1_764_752_100).unwrap();
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(std::result::Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("v.cvault.journal.") && name.ends_with(".old"))
        .collect();
    assert_eq!(aside, ["v.cvault.journal.1764752100.old"], "the other journal is kept aside, named by the caller's time");
    assert_eq!(crate::journal::read(&path, vault.journal_key().unwrap()).unwrap(), crate::journal::History::default());
    std::fs::write(crate::journal::path(&path), b"").unwrap();
    std::fs::remove_file(dir.path().join(&aside[0])).unwrap();
    assert_eq!(vault.ensure_journal(1_764_752_200).unwrap(), public, "an empty journal is set aside too");
    assert!(crate::journal::read(&path, vault.journal_key().unwrap()).is_ok());
}

#[test]
fn an_export_leaves_push_links_and_their_device_keys_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    let mut vault = Vault::create(&path, Protection { password: password(), keyring: None }).unwrap();
    let device_key = crate::push::Keypair::generate().unwrap();
    let seed = crate::base64::encode(*device_key.to_seed());
    let link = crate::push::Link {
        organization: "Contoso".into(),
        user: "alice".into(),
        device_id: "dev-1".into(),
        device_key,
        server_key: crate::push::Keypair::generate().unwrap().public(),
        endpoint: "wss://push.example/ws".into(),
    };
    vault.add_push(account("alice"), link, 3).unwrap();
    assert!(vault.entries()[0].push.is_some());

    let copy = export_copy(vault.entries(), &Password::new("p".into()), &CHEAP).unwrap();
    let master = format::File::decode(&copy).unwrap().header.unwrap_with_password(&Password::new("p".into())).unwrap();
    let contents = format::File::decode(&copy).unwrap().decrypt(&master).unwrap();
    assert!(contents.entries.iter().all(|e| e.push.is_none()), "no push link, so no device key, in an export");
    let payload = format::File::decode(&copy).unwrap().plaintext_for_tests(&master);
    assert!(!payload.contains(&seed) && !payload.contains("\"push\""), "the device key is not in the export");
    // The account's codes still travel.
    let exported = open_copy(&copy, &Password::new("p".into())).unwrap();
    assert_eq!(exported.len(), 1);
    assert_eq!(exported[0].account, vault.entries()[0].account);
}

#[cfg(unix)]
#[test]
fn a_planted_temp_symlink_neither_receives_the_vault_nor_replaces_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    let mut vault = Vault::create(&path, Protection { password: password(), keyring: None }).unwrap();
    let victim = dir.path().join("elsewhere");
    std::fs::write(&victim, b"").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join("v.cvault.tmp")).unwrap();
    vault.add(vec![account("alice")], 1).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"", "nothing written through the symlink");
    assert!(!std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(Locked::read(&path).unwrap().unlock_with_password(&Password::new("correct horse".into())).unwrap().entries().len(), 1);
    assert!(!dir.path().join("v.cvault.tmp").exists());
}

/// The vault at `path` with its header's JSON edited by `edit`, length and
/// checksum made consistent again (as a deliberate tamperer would).
fn with_header_edited(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    use sha2::Digest;
    let bytes = std::fs::read(path).unwrap();
    let length = u32::from_be_bytes(bytes[10..14].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[14..14 + length]).unwrap();
    edit(&mut header);
    let header = serde_json::to_vec(&header).unwrap();
    let mut out = bytes[..10].to_vec();
    out.extend_from_slice(&(header.len() as u32).to_be_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&bytes[14 + length..bytes.len() - 32]);
    let checksum = sha2::Sha256::digest(&out);
    out.extend_from_slice(&checksum);
    out
}

#[test]
fn a_header_demanding_too_much_argon2_work_is_refused_by_name_before_any_password_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    Vault::create(&path, Protection { password: password(), keyring: None }).unwrap();
    for (memory_kib, passes) in [(4 * 1024 * 1024, 1), (2 * 1024 * 1024, 1), (64, 64), (64, 17)] {
        let tampered = with_header_edited(&path, |header| {
            header["slots"][0]["kdf"]["memory_kib"] = memory_kib.into();
            header["slots"][0]["kdf"]["passes"] = passes.into();
        });
        let at = dir.path().join("tampered.cvault");
        std::fs::write(&at, &tampered).unwrap();
        let error = Locked::read(&at).unwrap_err();
        assert!(matches!(&error, Error::TooCostly { path, .. } if path == &at), "{memory_kib} KiB x {passes}: {error:?}");
        let text = error.to_string();
        assert!(text.contains(&at.display().to_string()) && text.contains("at most 1024 MiB, 16 passes"), "{text}");
        assert!(matches!(open_copy(&tampered, &Password::new("correct horse".into())), Err(Error::Unreadable(_))));
    }
    // At the ceiling, the header is read (the password check then fails as
    // the header is the payload's associated data: the file was altered).
    let at_ceiling = with_header_edited(&path, |header| header["slots"][0]["kdf"]["passes"] = 16.into());
    std::fs::write(dir.path().join("edge.cvault"), at_ceiling).unwrap();
    assert!(Locked::read(&dir.path().join("edge.cvault")).is_ok());
}

#[test]
fn new_passwords_need_at_least_owasp_argon2_costs() {
    assert!(Kdf::default().check_strength().is_ok());
    assert!(Kdf { memory_kib: 19 * 1024, passes: 2, lanes: 1 }.check_strength().is_ok());
    for weak in [
        CHEAP,
        Kdf { memory_kib: 1024, passes: 1, lanes: 1 },
        Kdf { memory_kib: 64 * 1024, passes: 1, lanes: 1 },
        Kdf { memory_kib: 18 * 1024, passes: 4, lanes: 1 },
    ] {
        assert!(matches!(weak.check_strength(), Err(Error::Kdf(_))), "{weak:?}");
    }
    assert!(Kdf { memory_kib: 2 * 1024 * 1024, passes: 3, lanes: 1 }.check_strength().is_err(), "above the ceiling too");
}

fn keyring_user_of(path: &Path) -> Option<String> {
    Locked::read(path).unwrap().file.header.keyring_slot().map(str::to_owned)
}

#[test]
fn passwd_reencrypts_or_removes_old_copies_and_rotates_the_keyring_key() {
    let keyring = mock_keyring();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    let policy = backup::Policy { dir: dir.path().join("backups"), keep: 5 };
    let mut vault = Vault::create(&path, Protection { password: password(), keyring: Some(&keyring) }).unwrap();
    vault.set_backups(Some(policy.clone()));
    vault.add(vec![account("alice")], 1).unwrap();
    vault.add(vec![account("bob")], 2).unwrap();
    let old = Password::new("correct horse".into());
    // A backup left by an earlier release, under a master key this vault no
    // longer has (simulated: this vault's file before a first re-key).
    let earlier = std::fs::read(&path).unwrap();
    let old_user = keyring_user_of(&path).unwrap();
    let old_key = keyring.get(keyring::SERVICE, &old_user).unwrap();
    assert!(Locked::read(&backup_path(&path)).unwrap().unlock_with_password(&old).is_ok(), "before: .bak opens with the old password");

    let copies = vault.set_password(Some((Password::new("new one".into()), CHEAP)), Some(&keyring), 3).unwrap();
    let backups = backup::list(&policy.dir, &path).unwrap();
    assert_eq!(copies.rekeyed.len(), 3, "the .bak and both backups: {copies:?}");
    assert!(copies.removed.is_empty() && copies.failed.is_empty());
    assert!(copies.summary().unwrap().contains("3 older copies (backups) re-encrypted"));
    let new_user = keyring_user_of(&path).unwrap();
    assert_ne!(new_user, old_user, "a new keyring entry");
    assert!(matches!(keyring.get(keyring::SERVICE, &old_user), Err(keyring::Error::Missing(_))), "the old entry is deleted");
    assert_ne!(keyring.get(keyring::SERVICE, &new_user).unwrap().as_bytes(), old_key.as_bytes(), "the keyring key was rotated");
    for copy in std::iter::once(backup_path(&path)).chain(backups.iter().map(|b| b.path.clone())) {
        let locked = Locked::read(&copy).unwrap();
        assert!(
            matches!(locked.unlock_with_password(&old), Err(Error::WrongPassword)),
            "{} still opens with the old password",
            copy.display()
        );
        assert!(locked.unlock_with_password(&Password::new("new one".into())).is_ok());
        assert!(locked.unlock_with_keyring(&keyring).is_ok());
    }
    // Each copy kept its own accounts (the oldest backup holds one).
    let oldest = Locked::read(&backups.last().unwrap().path).unwrap().unlock_with_password(&Password::new("new one".into())).unwrap();
    assert_eq!(oldest.entries().len(), 1);

    // An earlier-generation backup is removed, since it cannot be re-encrypted.
    let stale = policy.dir.join("v-20200101T000000.000Z.cvault");
    std::fs::write(&stale, &earlier).unwrap();
    let copies = vault.set_password(Some((Password::new("third".into()), CHEAP)), Some(&keyring), 4).unwrap();
    assert_eq!(copies.removed, std::slice::from_ref(&stale));
    assert!(!stale.exists());
    assert!(copies.summary().unwrap().contains("1 backup made before an earlier change removed"));
    assert!(Locked::read(&path).unwrap().unlock_with_keyring(&keyring).is_ok());

    // Without a keyring to hold the new key, nothing changes.
    let before = std::fs::read(&path).unwrap();
    assert!(matches!(vault.set_password(Some((Password::new("fourth".into()), CHEAP)), None, 5), Err(Error::Keyring(_))));
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn keyring_entry_names_come_from_the_vault_id_not_from_the_header() {
    let keyring = mock_keyring();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    Vault::create(&path, Protection { password: password(), keyring: Some(&keyring) }).unwrap();
    let user = keyring_user_of(&path).unwrap();
    let id = Locked::read(&path).unwrap().file.header.vault_id.clone();
    assert!(user.starts_with(&format!("vault-{id}-")) && user.len() == "vault-".len() + 32 + 1 + 16, "{user}");
    for (service, user) in [
        ("github", user.as_str()),
        ("countersign", "listener-1"),
        ("countersign", &format!("vault-{id}-../x")),
        ("countersign", "vault-00000000000000000000000000000000"),
    ] {
        let tampered = with_header_edited(&path, |header| {
            let slot = header["slots"].as_array_mut().unwrap().iter_mut().find(|s| s["kind"] == "keyring").unwrap();
            slot["service"] = service.into();
            slot["user"] = user.into();
        });
        let at = dir.path().join("tampered.cvault");
        std::fs::write(&at, tampered).unwrap();
        let error = Locked::read(&at).unwrap_err();
        assert!(error.to_string().contains("names an entry that is not this vault's"), "{service}/{user}: {error}");
    }
    assert!(keyring::is_entry_of(&id, &format!("vault-{id}")), "the one-entry-per-vault names of earlier releases still open");
}

#[test]
fn keyring_off_keeps_the_entry_while_an_older_keyring_only_backup_needs_it() {
    let keyring = mock_keyring();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.cvault");
    let policy = backup::Policy { dir: dir.path().join("backups"), keep: 5 };
    let mut vault = Vault::create(&path, Protection { password: None, keyring: Some(&keyring) }).unwrap();
    vault.add(vec![account("alice")], 1).unwrap();
    let keyring_only = std::fs::read(&path).unwrap();
    let user = keyring_user_of(&path).unwrap();
    // As an earlier release's passwd did: a new master key, the same keyring entry and key.
    let key = keyring.get(keyring::SERVICE, &user).unwrap();
    let master = format::Key::random().unwrap();
    let mut header = vault.header.rekeyed();
    header.add_password_slot(&Password::new("pw".into()), &CHEAP, &master).unwrap();
    header.add_keyring_slot(&user, &key, &master).unwrap();
    write(&path, &header, &master, &vault.contents()).unwrap();
    let stale = policy.dir.join("v-20200101T000000.000Z.cvault");
    std::fs::create_dir_all(&policy.dir).unwrap();
    std::fs::write(&stale, &keyring_only).unwrap();

    let mut vault = Locked::read(&path).unwrap().unlock_with_password(&Password::new("pw".into())).unwrap();
    vault.set_backups(Some(policy.clone()));
    let copies = vault.set_keyring(false, &keyring, 4).unwrap();
    assert!(copies.keyring_entry_kept && copies.older == [stale.clone()], "{copies:?}");
    assert!(copies.summary().unwrap().contains("keyring entry was kept"));
    assert_eq!(
        Locked::read(&stale).unwrap().unlock_with_keyring(&keyring).unwrap().entries().len(),
        1,
        "the keyring-only backup still opens"
    );
    assert!(!Locked::read(&path).unwrap().has_keyring());
    // The .bak was re-encrypted without the keyring slot.
    assert!(copies.rekeyed.contains(&backup_path(&path)) && !Locked::read(&backup_path(&path)).unwrap().has_keyring());

    // With no copy depending on it, keyring off deletes the entry.
    std::fs::remove_file(&stale).unwrap();
    vault.set_keyring(true, &keyring, 5).unwrap();
    let user = keyring_user_of(&path).unwrap();
    let copies = vault.set_keyring(false, &keyring, 6).unwrap();
    assert!(!copies.keyring_entry_kept);
    assert!(matches!(keyring.get(keyring::SERVICE, &user), Err(keyring::Error::Missing(_))));
}
