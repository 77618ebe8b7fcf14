//! Import, export, QR codes of secrets, backups and restore in the window,
//! driven through the real `App::update` and views (see tests/harness).

#![cfg(feature = "gui")]

mod common;
mod harness;

use std::path::PathBuf;

use countersign::gui::{Message, Page, Screen, accounts, codes, export, import, unlock};
use countersign::secret::Password;
use countersign::transfer::{self, ExportFormat};
use countersign::uri::{self, Payload};
use countersign::vault::Locked;
use harness::{Harness, PASSWORD, github, google};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import").join(name)
}

fn page(harness: &Harness) -> &Page {
    match &harness.app.screen {
        Screen::Unlocked(unlocked) => &unlocked.page,
        _ => panic!("not unlocked"),
    }
}

fn open_settings(harness: &mut Harness) {
    harness.click("Settings");
    assert!(matches!(page(harness), Page::Preferences(_)));
}

#[test]
fn an_encrypted_aegis_file_is_previewed_then_imported_with_a_report() {
    let mut harness = Harness::unlocked(vec![github()]);
    open_settings(&mut harness);
    harness.click("Import…");
    assert!(harness.shows("Choose a file…"));
    // The file dialog's answer, as the portal would give it.
    harness.send(Message::Import(import::Message::Picked(Some(fixture("aegis-encrypted.json")))));
    assert!(harness.shows(&format!(
        "{} is an encrypted Aegis export. Enter the password it was exported with.",
        fixture("aegis-encrypted.json").display()
    )));
    harness.submit(import::PASSWORD_ID, "not it");
    assert!(harness.shows("Wrong password, or the encrypted part of the file is damaged. Nothing was imported."));
    harness.submit(import::PASSWORD_ID, "countersign-test");
    assert!(harness.shows("4 new, 0 already in the vault, 0 cannot be imported"), "the preview counts");
    assert!(harness.shows("Steam (dave)"));
    assert_eq!(harness.vault_names(), ["alice@example.com"], "nothing is saved by the preview");
    harness.click("Import 4 accounts");
    assert!(harness.shows("Imported 4 of 4 entries."));
    assert_eq!(harness.vault_names(), ["alice@example.com", "alice@example.com", "bob", "carol", "dave"]);
    harness.send(Message::Tick(harness::T + 1));
    assert_eq!(harness.accounts().cards.len(), 5, "the list shows them");

    // The same file dropped again: everything is already there, and the
    // page says so instead of offering a button that would do nothing.
    harness.click("Done");
    assert!(matches!(page(&harness), Page::Accounts));
    open_settings(&mut harness);
    harness.click("Import…");
    harness.send(Message::FileDropped(fixture("aegis-plain.json")));
    assert!(harness.shows("0 new, 4 already in the vault, 0 cannot be imported"));
    assert!(harness.shows("There is nothing new to import from this file."));
    assert!(!harness.shows("Import 4 accounts"));
}

#[test]
fn a_file_that_is_not_an_export_gets_a_clear_error() {
    let mut harness = Harness::unlocked(vec![github()]);
    open_settings(&mut harness);
    harness.click("Import…");
    let path = harness.dir.path().join("notes.txt");
    std::fs::write(&path, "shopping list\nmilk\n").unwrap();
    harness.send(Message::Import(import::Message::Picked(Some(path.clone()))));
    let Page::Import(page) = page(&harness) else { panic!("not the import page") };
    let error = page.error.clone().expect("an error");
    assert!(error.starts_with(&format!("{}: not a format Countersign can import (Aegis, 2FAS", path.display())), "{error}");
    assert!(harness.shows(&error));
    assert_eq!(harness.vault_names(), ["alice@example.com"]);
}

#[test]
fn an_encrypted_export_is_written_and_imports_back_identically() {
    let mut harness = Harness::unlocked(vec![github(), google()]);
    open_settings(&mut harness);
    harness.click("Export…");
    harness.send(Message::Export(export::Message::FormatSelected(ExportFormat::AegisEncrypted)));
    harness.send(Message::Export(export::Message::Password(countersign::gui::password::Message::PasswordChanged(
        countersign::gui::Sensitive("export pass".into()),
    ))));
    harness.send(Message::Export(export::Message::Password(countersign::gui::password::Message::ConfirmChanged(
        countersign::gui::Sensitive("export pass".into()),
    ))));
    let out = harness.dir.path().join("aegis.json");
    harness.send(Message::Export(export::Message::Picked(Some(out.clone()))));
    assert!(harness.shows(&format!("Exported 2 of 2 accounts to {}.", out.display())));
    let contents = transfer::open(&out, None, Some(&Password::new("export pass".into()))).unwrap();
    let accounts: Vec<_> = contents.items.into_iter().map(|item| item.account.unwrap()).collect();
    assert_eq!(accounts, [github(), google()]);

    // In the clear only after "I understand".
    harness.send(Message::Export(export::Message::FormatSelected(ExportFormat::UriList)));
    assert!(
        harness
            .shows("This export holds every secret key in the clear: anyone who gets the file or sees the codes can copy your accounts.")
    );
    let clear = harness.dir.path().join("uris.txt");
    harness.send(Message::Export(export::Message::Picked(Some(clear.clone()))));
    assert!(harness.shows("Confirm first that this file will hold your secret keys in the clear."));
    assert!(!clear.exists());
    harness.click("I understand");
    harness.send(Message::Export(export::Message::Picked(Some(clear.clone()))));
    assert_eq!(std::fs::read_to_string(&clear).unwrap(), format!("{}\n{}\n", uri::format(&github()), uri::format(&google())));
}

/// The payloads of the QR code the Codes page draws now.
fn shown_payload(harness: &Harness) -> String {
    let Page::Codes(codes) = page(harness) else { panic!("not the codes page") };
    assert!(codes.revealed);
    let code = &codes.codes[codes.index];
    let found = countersign::scan::rgba(code.side, code.side, code.rgba.clone()).unwrap();
    assert_eq!(found.len(), 1);
    found[0].clone()
}

#[test]
fn an_accounts_qr_code_is_drawn_only_after_a_warning_and_scans_back() {
    let mut harness = Harness::unlocked(vec![github(), google()]);
    let id = harness.accounts().cards[1].id.clone();
    harness.send(Message::Accounts(accounts::Message::CardPressed(id)));
    harness.click("QR code");
    assert!(harness.shows("This shows the secret key of Google (alice@gmail.com) as a QR code. Anyone who sees it, or a screenshot of it, can make this account's codes."));
    let Page::Codes(codes) = page(&harness) else { panic!("not the codes page") };
    assert!(!codes.revealed);
    harness.click("Show the QR code");
    let Ok(Payload::Account { account, .. }) = uri::parse(&shown_payload(&harness)) else { panic!("not an account") };
    assert_eq!(account, google());
    harness.send(Message::Codes(codes::Message::Back));
    assert!(matches!(page(&harness), Page::Accounts));
}

#[test]
fn google_authenticator_codes_are_shown_page_by_page() {
    let accounts: Vec<_> = (0..10u8)
        .map(|i| countersign::account::Account::totp("Bulk", &format!("user{i}"), countersign::secret::Secret::from_bytes(vec![i + 1; 20])))
        .collect();
    let mut harness = Harness::unlocked(accounts.clone());
    open_settings(&mut harness);
    harness.click("Export…");
    harness.send(Message::Export(export::Message::FormatSelected(ExportFormat::GoogleQr)));
    harness.click("Show the codes here");
    assert!(harness.shows("Confirm first that this file will hold your secret keys in the clear."));
    harness.click("I understand");
    harness.click("Show the codes here");
    harness.click("Show the QR code");
    assert!(harness.shows("Code 1 of 2"));
    let mut text = shown_payload(&harness);
    harness.click("Next");
    assert!(harness.shows("Code 2 of 2"));
    text.push('\n');
    text.push_str(&shown_payload(&harness));
    let contents = transfer::read(text.as_bytes(), None, None).unwrap();
    assert!(contents.notes.is_empty());
    let scanned: Vec<_> = contents.items.into_iter().map(|item| item.account.unwrap()).collect();
    assert_eq!(scanned, accounts);
    // Back returns to the Export page it came from.
    harness.click("← Back");
    assert!(matches!(page(&harness), Page::Export(export) if export.format == ExportFormat::GoogleQr));
}

#[test]
fn every_change_is_backed_up_and_verify_says_when() {
    let mut harness = Harness::unlocked(vec![github()]);
    harness.send(Message::Accounts(accounts::Message::CardPressed(harness.accounts().cards[0].id.clone())));
    harness.click("Delete");
    harness.send(Message::Accounts(accounts::Message::DeleteConfirmed(true)));
    let backups = countersign::backup::list(&harness.dir.path().join("backups"), &harness.vault_path).unwrap();
    assert_eq!(backups.len(), 1, "the deletion was backed up");
    open_settings(&mut harness);
    assert!(harness.shows("Never verified."));
    harness.click("Verify backup");
    let Page::Preferences(preferences) = page(&harness) else { panic!("not the settings page") };
    assert_eq!(preferences.backups.error, None);
    let verified = preferences.backups.verified.clone().expect("verified");
    assert_eq!((verified.file.as_str(), verified.accounts), (backups[0].path.file_name().unwrap().to_str().unwrap(), 0));
    assert!(
        harness.shows(&format!("Last verified restorable: {} ({}, 0 accounts)", verified.when(), verified.file)),
        "the verification is shown"
    );
    // It was recorded where the command line also reads it.
    assert_eq!(countersign::backup::last_verified(&harness.dir.path().join("backups")), Some(verified));
}

#[test]
fn a_backup_is_opened_from_the_unlock_screen_and_restored() {
    let mut harness = Harness::with_vault(vec![github()]);
    let policy = countersign::backup::Policy { dir: harness.dir.path().join("backups"), keep: 10 };
    let mut vault = Locked::read(&harness.vault_path).unwrap().unlock_with_password(&Password::new(PASSWORD.into())).unwrap();
    vault.set_backups(Some(policy.clone()));
    vault.add(vec![google()], harness::T).unwrap();
    let with_google = countersign::backup::list(&policy.dir, &harness.vault_path).unwrap()[0].path.clone();
    vault.remove(&vault.entries()[0].id.clone(), harness::T).unwrap();
    drop(vault);
    assert_eq!(harness.vault_names(), ["alice@gmail.com"]);

    harness.click("Open a backup instead");
    assert!(harness.shows(&format!("Backups in {}", policy.dir.display())));
    harness.send(Message::Unlock(unlock::Message::BackupChosen(with_google.clone())));
    assert!(harness.shows(&format!("Opening the backup {}", with_google.display())));
    harness.submit(unlock::PASSWORD_ID, PASSWORD);
    assert!(harness.shows("Restore this backup?"));
    assert!(
        harness
            .shows(&format!("It holds 2 accounts. The vault it replaces is first copied to the backups folder, {}.", policy.dir.display()))
    );
    assert!(matches!(harness.app.screen, Screen::Unlock(_)), "nothing is replaced before Restore");
    harness.click("Restore");
    assert!(matches!(harness.app.screen, Screen::Unlocked(_)));
    assert_eq!(harness.vault_names(), ["alice@example.com", "alice@gmail.com"]);
    assert_eq!(
        countersign::backup::list(&policy.dir, &harness.vault_path).unwrap().len(),
        4,
        "the replaced vault was backed up first, then the restored one"
    );
}
