//! The window's logic, headless: real `App::update` with the Tasks it returns
//! actually run (blocking work, clipboard), and iced_test simulators clicking
//! and typing in the real views. Time is injected through `Message::Tick`.

#![cfg(feature = "gui")]

mod common;
mod harness;

use common::qr_png;

use countersign::account::Account;
use countersign::gui::{self, App, Message, Options, Page, Screen, accounts, add, onboarding, unlock};
use countersign::secret::Secret;
use countersign::vault::Locked;
use iced::keyboard::{Key, Modifiers, key::Named};

use harness::{Harness, PASSWORD, T, github, google};

#[test]
fn wrong_password_is_an_inline_error_then_the_right_one_unlocks() {
    let mut harness = Harness::with_vault(vec![github()]);
    assert!(matches!(harness.app.screen, Screen::Unlock(_)));
    assert_eq!(harness.app.title(), "Countersign — Locked");
    harness.submit(unlock::PASSWORD_ID, "not it");
    let typed = format!("{:?}", Message::Unlock(unlock::Message::PasswordChanged(gui::Sensitive("not it".into()))));
    assert!(!typed.contains("not it"), "typed passwords never reach Debug output: {typed}");
    assert!(harness.shows("Wrong password. Try again."));
    assert!(matches!(harness.app.screen, Screen::Unlock(_)));
    harness.type_into(unlock::PASSWORD_ID, PASSWORD);
    harness.click("Unlock");
    assert!(matches!(harness.app.screen, Screen::Unlocked(_)));
}

#[test]
fn codes_at_a_fixed_time_match_an_independent_implementation() {
    // Python's hmac gives 013254 at T and 847338 for the next window.
    let mut harness = Harness::unlocked(vec![github()]);
    let card = &harness.accounts().cards[0];
    assert_eq!((card.code.as_str(), card.seconds_left), ("013 254", Some(20)));
    assert_eq!(card.next, None);
    assert!(harness.shows("013 254"));
    assert!(harness.shows("20 s"));
    // In the last 5 s the next code is shown beside the current one.
    harness.send(Message::Tick(T + 16));
    let card = &harness.accounts().cards[0];
    assert_eq!((card.code.as_str(), card.next.as_deref(), card.seconds_left), ("013 254", Some("847 338"), Some(4)));
    assert!(harness.shows("next 847 338"));
    harness.send(Message::Tick(T + 20));
    assert_eq!(harness.accounts().cards[0].code, "847 338");
}

#[test]
fn add_an_account_by_hand_and_see_its_code() {
    let mut harness = Harness::unlocked(vec![github()]);
    harness.click("Add account");
    assert!(matches!(&harness.app.screen, Screen::Unlocked(u) if matches!(u.page, Page::Add(_))));
    harness.type_into(add::NAME_ID, "bob");
    harness.type_into(add::SECRET_ID, "gezd gnbv gy3t qojq gezd gnbv gy3t qojq");
    harness.type_into(add::ISSUER_ID, "Google");
    harness.click("Review");
    assert!(harness.shows("Check the account before adding it:"));
    assert!(harness.shows("TOTP, new code every 30 s"));
    harness.click("Save account");
    assert!(matches!(&harness.app.screen, Screen::Unlocked(u) if matches!(u.page, Page::Accounts)));
    assert_eq!(harness.vault_names(), ["alice@example.com", "bob"]);
    harness.send(Message::Tick(T));
    let expected = countersign::otp::code(&google(), T).grouped();
    assert_eq!(harness.accounts().cards[1].code, expected);
    assert!(harness.shows(&expected));
}

#[test]
fn bad_manual_input_gets_an_inline_error_naming_the_problem() {
    let mut harness = Harness::unlocked(vec![]);
    assert!(harness.shows("No accounts yet"));
    harness.click("Add account");
    harness.click("Review");
    assert!(harness.shows("Enter the account name."));
    harness.type_into(add::NAME_ID, "bob");
    harness.type_into(add::SECRET_ID, "not base32!");
    harness.click("Review");
    assert!(harness.shows("The secret key is not valid: the secret is not Base32: it may only hold the letters A-Z and the digits 2-7."));
    assert!(harness.vault_names().is_empty());
}

#[test]
fn a_dropped_qr_image_is_reviewed_then_saved() {
    let mut harness = Harness::unlocked(vec![]);
    let path = harness.dir.path().join("qr.png");
    let uri = "otpauth://totp/Acme:carol?secret=JBSWY3DPEHPK3PXP&issuer=Acme";
    qr_png(uri, &path);
    harness.send(Message::FileDropped(path));
    assert!(harness.shows("Check the account before adding it:"));
    assert!(harness.shows("carol"));
    harness.click("Save account");
    assert_eq!(harness.vault_names(), ["carol"]);

    // An activation QR is shown with its Code and URL, for "Activate".
    let path = harness.dir.path().join("activation.png");
    qr_png("phonefactor://activate_account?code=123456789&url=https%3A%2F%2Fexample.test%2Fa", &path);
    harness.send(Message::FileDropped(path));
    assert!(harness.shows("A work or school account activation"));
    assert!(harness.shows("Check the activation before using it:"));
    assert!(harness.shows("123456789"));
    assert!(harness.shows("https://example.test/a"));
    assert!(harness.shows("Activate"));

    // A file that is no image is an inline error.
    let path = harness.dir.path().join("notes.txt");
    std::fs::write(&path, "hello").unwrap();
    harness.send(Message::FileDropped(path));
    assert!(
        matches!(&harness.app.screen, Screen::Unlocked(u) if matches!(&u.page, Page::Add(a) if a.error.as_deref().is_some_and(|e| e.contains("not an image"))))
    );
}

#[test]
fn a_google_export_in_two_codes_is_collected_then_reported_account_by_account() {
    use countersign::migration::{Batch, encode};
    let mut harness = Harness::unlocked(vec![github()]);
    let dir = harness.dir.path().to_owned();
    let part = |index: u32, accounts: &[Account]| {
        let path = dir.join(format!("export-{index}.png"));
        qr_png(&encode(accounts, Batch { id: 7, index, size: 2 }).0, &path);
        path
    };
    let first = part(0, &[github(), Account::totp("Proton", "dora@proton.me", Secret::from_bytes(vec![9; 20]))]);
    let second = part(1, &[google()]);

    harness.send(Message::FileDropped(first.clone()));
    assert!(harness.shows("Google Authenticator export: 1 of 2 scanned"));
    assert!(harness.shows("Still to scan: code 2. Google Authenticator shows them one after another; scan each."));
    assert!(harness.shows("Proton (dora@proton.me)"));
    // Incomplete: Save does nothing until the user agrees to go without code 2.
    harness.click("Save 2 accounts");
    assert_eq!(harness.vault_names(), ["alice@example.com"]);

    // Scanning the same code again changes nothing; the second one completes it.
    harness.send(Message::FileDropped(first));
    assert!(harness.shows("Google Authenticator export: 1 of 2 scanned"));
    harness.send(Message::FileDropped(second));
    assert!(harness.shows("Google Authenticator export: 2 of 2 scanned"));
    assert!(!harness.shows("Still to scan"));
    harness.click("Save 3 accounts");
    // GitHub was already in the vault: reported, not added twice.
    assert!(harness.shows("Added 2 of 3 accounts."));
    assert!(harness.shows("Already in the vault"));
    assert_eq!(harness.vault_names(), ["alice@example.com", "dora@proton.me", "alice@gmail.com"]);
    harness.click("Done");
    assert!(harness.shows("Proton"));
}

#[test]
fn a_partial_export_is_added_only_when_confirmed_and_an_empty_import_says_so() {
    use countersign::migration::{Batch, encode};
    let mut harness = Harness::unlocked(vec![]);
    let path = harness.dir.path().join("export-1-of-3.png");
    qr_png(&encode(&[google()], Batch { id: 9, index: 0, size: 3 }).0, &path);
    harness.send(Message::FileDropped(path.clone()));
    assert!(harness.shows("Google Authenticator export: 1 of 3 scanned"));
    assert!(harness.shows("Still to scan: codes 2 and 3. Google Authenticator shows them one after another; scan each."));
    harness.click("Save account");
    assert!(harness.vault_names().is_empty());
    harness.click("Add the accounts scanned so far without the missing codes");
    harness.click("Save account");
    assert!(harness.vault_names() == ["alice@gmail.com"]);
    // One account added and nothing else to say: straight back to the list.
    assert!(harness.shows("Account added"));

    // The same partial export again: nothing is new, and the report says so.
    harness.send(Message::FileDropped(path));
    harness.click("Add the accounts scanned so far without the missing codes");
    harness.click("Save account");
    assert!(harness.shows("Nothing was added."));
    assert!(harness.shows("Already in the vault"));
    assert_eq!(harness.vault_names(), ["alice@gmail.com"]);
}

#[test]
fn leaving_the_add_page_while_saving_still_shows_the_new_accounts() {
    let mut harness = Harness::unlocked(vec![]);
    let path = harness.dir.path().join("two.png");
    qr_png(&countersign::migration::encode(&[github(), google()], countersign::migration::Batch { id: 1, index: 0, size: 1 }).0, &path);
    harness.send(Message::FileDropped(path));
    assert!(harness.shows("Save 2 accounts"));
    // Save, then press Back before the save's answer arrives.
    let saving = harness.app.update(Message::Add(add::Message::Save));
    harness.send(Message::Add(add::Message::Cancel));
    harness.run(saving);
    assert!(matches!(&harness.app.screen, Screen::Unlocked(u) if matches!(u.page, Page::Accounts)));
    assert!(harness.shows("Added 2 of 2 accounts"));
    assert!(harness.shows("GitHub") && harness.shows("Google"));
}

#[test]
fn search_filters_by_issuer_and_account() {
    let mut harness = Harness::unlocked(vec![github(), google()]);
    assert!(harness.shows("GitHub") && harness.shows("Google"));
    harness.type_into(accounts::SEARCH_ID, "goo");
    assert!(harness.shows("Google"));
    assert!(!harness.shows("GitHub"));
    harness.send(Message::Key { key: Key::Named(Named::Escape), modifiers: Modifiers::empty(), captured: false });
    assert!(harness.shows("GitHub"));
    harness.type_into(accounts::SEARCH_ID, "nothing");
    assert!(harness.shows("No account matches “nothing”."));
}

#[test]
fn copy_then_the_clipboard_is_cleared_only_if_it_still_holds_the_code() {
    let mut harness = Harness::unlocked(vec![github()]);
    harness.click("GitHub");
    assert_eq!(harness.clipboard.as_deref(), Some("013254"));
    assert!(harness.shows("Copied the code for GitHub (alice@example.com) · the clipboard clears in 30 s"));
    harness.send(Message::Tick(T + 29));
    assert_eq!(harness.clipboard.as_deref(), Some("013254"));
    harness.send(Message::Tick(T + 30));
    assert_eq!(harness.clipboard.as_deref(), Some(""), "cleared after 30 s");

    // Something else copied meanwhile is left alone.
    harness.send(Message::Key { key: Key::Named(Named::Enter), modifiers: Modifiers::empty(), captured: false });
    assert_eq!(harness.clipboard.as_deref(), Some("847338"));
    harness.clipboard = Some("the user's own text".into());
    harness.send(Message::Tick(T + 61));
    assert_eq!(harness.clipboard.as_deref(), Some("the user's own text"));
}

#[test]
fn delete_asks_first() {
    let mut harness = Harness::unlocked(vec![github(), google()]);
    harness.click("Google");
    harness.click("Delete");
    assert!(harness.shows("Delete Google? Its codes cannot be recovered."));
    harness.click("Cancel");
    assert_eq!(harness.vault_names().len(), 2);
    harness.click("Delete");
    harness.click("Delete");
    assert_eq!(harness.vault_names(), ["alice@example.com"]);
    assert_eq!(harness.accounts().cards.len(), 1);
}

#[test]
fn edit_and_reorder() {
    let mut harness = Harness::unlocked(vec![github(), google()]);
    harness.click("Google");
    harness.click("Move up");
    assert_eq!(harness.vault_names(), ["alice@gmail.com", "alice@example.com"]);
    harness.click("Edit");
    harness.interact(|ui| {
        ui.click("Save").unwrap();
    });
    harness.click("Google");
    harness.click("Edit");
    let messages = vec![
        Message::Accounts(accounts::Message::Editing(accounts::EditMessage::IssuerChanged("Gmail".into()))),
        Message::Accounts(accounts::Message::Editing(accounts::EditMessage::NameChanged("work".into()))),
        Message::Accounts(accounts::Message::Editing(accounts::EditMessage::Save)),
    ];
    for message in messages {
        harness.send(message);
    }
    assert_eq!(harness.vault_names(), ["work", "alice@example.com"]);
    assert!(harness.shows("Gmail"));
}

#[test]
fn hotp_next_code_advances_the_stored_counter() {
    let mut hotp = Account::totp("RFC", "hotp", Secret::from_bytes(b"12345678901234567890".to_vec()));
    hotp.method = countersign::account::Method::Hotp { counter: 0 };
    let mut harness = Harness::unlocked(vec![hotp]);
    assert_eq!(harness.accounts().cards[0].code, "755 224");
    harness.click("Next code");
    assert_eq!(harness.accounts().cards[0].code, "287 082");
    harness.click("Next code");
    assert_eq!(harness.accounts().cards[0].code, "359 152");
}

#[test]
fn lock_and_auto_lock_return_to_the_unlock_screen() {
    let mut harness = Harness::unlocked(vec![github()]);
    harness.send(Message::Key { key: Key::Character("l".into()), modifiers: Modifiers::CTRL, captured: false });
    assert!(matches!(harness.app.screen, Screen::Unlock(_)));
    assert!(harness.shows("Your accounts are locked."));

    harness.submit(unlock::PASSWORD_ID, PASSWORD);
    harness.app.settings.auto_lock_seconds = 60;
    harness.send(Message::Tick(T + 50));
    harness.send(Message::Input);
    harness.send(Message::Tick(T + 109));
    assert!(matches!(harness.app.screen, Screen::Unlocked(_)), "input at +50 s restarted the idle timer");
    harness.send(Message::Tick(T + 110));
    assert!(matches!(harness.app.screen, Screen::Unlock(_)), "locked after 60 s idle");
}

#[test]
fn hide_codes_until_clicked() {
    let mut harness = Harness::unlocked(vec![github()]);
    harness.send(Message::Key { key: Key::Character(",".into()), modifiers: Modifiers::CTRL, captured: false });
    assert!(harness.shows("Hide codes until clicked"));
    harness.send(Message::Preferences(gui::preferences::Message::HideCodesToggled(true)));
    harness.click("← Back");
    assert!(harness.shows("••• •••"));
    assert!(!harness.shows("013 254"));
    harness.click("GitHub");
    assert!(harness.shows("013 254"));
}

#[test]
fn onboarding_creates_a_password_vault_when_no_keyring_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.cvault");
    let options = Options { vault: path.clone(), settings: dir.path().join("settings.json"), autostart: None };
    // The probe task is not run: this test must not reach any real keyring.
    let (app, _probe) = App::new(options, T, gui::Start::Window);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let mut harness = Harness { app, clipboard: None, runtime, dir, vault_path: path.clone() };
    assert!(matches!(harness.app.screen, Screen::Onboarding(_)));
    harness.send(Message::Onboarding(onboarding::Message::KeyringProbed(Err(countersign::vault::keyring::Error::Unavailable(
        "no session bus".into(),
    )))));
    assert!(harness.shows("No OS keyring answered on this desktop, so the vault needs a password."));
    harness.send(Message::Onboarding(onboarding::Message::Password(gui::password::Message::PasswordChanged(gui::Sensitive("one".into())))));
    harness.send(Message::Onboarding(onboarding::Message::Password(gui::password::Message::ConfirmChanged(gui::Sensitive("two".into())))));
    harness.click("Create vault");
    assert!(harness.shows("The two passwords differ."));
    assert!(!path.exists());
    harness.send(Message::Onboarding(onboarding::Message::Password(gui::password::Message::ConfirmChanged(gui::Sensitive("one".into())))));
    harness.click("Create vault");
    assert!(matches!(harness.app.screen, Screen::Unlocked(_)));
    assert!(Locked::read(&path).unwrap().has_password());
}

#[test]
fn a_damaged_vault_says_so_and_offers_no_form() {
    let harness = Harness::with_vault(vec![github()]);
    let mut bytes = std::fs::read(&harness.vault_path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&harness.vault_path, &bytes).unwrap();
    let dir = harness.dir;
    let path = harness.vault_path;
    let mut harness = Harness::start(dir, path);
    assert!(iced_test::simulator(harness.app.view()).find(iced::widget::Id::new(unlock::PASSWORD_ID)).is_err());
    assert!(!harness.shows("Unlock"));
    let message = Locked::read(&harness.vault_path).unwrap_err().to_string();
    assert!(message.contains("is damaged") && message.contains(".bak"), "{message}");
    assert!(harness.shows(&message), "the screen shows the error naming the file and the backup");
}

#[test]
fn only_cards_in_view_are_built_and_scrolling_reaches_the_end() {
    let accounts: Vec<Account> =
        (0..1000).map(|i| Account::totp(&format!("Issuer {i}"), &format!("user{i}"), Secret::from_bytes(vec![i as u8; 20]))).collect();
    let mut harness = Harness::unlocked(accounts);
    assert_eq!(harness.accounts().cards.len(), 1000);
    assert!(harness.shows("Issuer 0"));
    assert!(!harness.shows("Issuer 500"), "a card far below the window is not built");
    assert!(!harness.shows("Issuer 999"));
    harness.interact(|ui| {
        ui.point_at(iced::Point::new(300.0, 400.0));
        ui.simulate([iced::Event::Mouse(iced::mouse::Event::WheelScrolled {
            delta: iced::mouse::ScrollDelta::Pixels { x: 0.0, y: -200_000.0 },
        })]);
    });
    assert!(harness.shows("Issuer 999"), "the end of the list is reachable");
    assert!(!harness.shows("Issuer 0"));
}

#[test]
fn the_selected_cards_tools_work_from_the_keyboard() {
    let mut harness = Harness::unlocked(vec![github(), google()]);
    let key = |named| Message::Key { key: Key::Named(named), modifiers: Modifiers::empty(), captured: false };
    harness.send(key(Named::ArrowDown));
    harness.send(key(Named::ArrowDown));
    assert_eq!(harness.accounts().selected.as_ref(), Some(&harness.accounts().cards[1].id));
    harness.send(Message::Key { key: Key::Named(Named::ArrowUp), modifiers: Modifiers::ALT, captured: false });
    assert_eq!(harness.vault_names(), ["alice@gmail.com", "alice@example.com"], "Alt+Up moved it");
    harness.send(key(Named::Delete));
    assert!(harness.shows("Delete Google? Its codes cannot be recovered."));
    harness.send(key(Named::Escape));
    assert_eq!(harness.accounts().confirm_delete, None);
    harness.send(key(Named::Delete));
    harness.send(key(Named::Enter));
    assert_eq!(harness.vault_names(), ["alice@example.com"], "Delete then Enter deleted it");
    // Typing on the list starts a search.
    harness.send(Message::Key { key: Key::Character("x".into()), modifiers: Modifiers::empty(), captured: false });
    assert_eq!(harness.accounts().query, "x");
}

/// A password change holds the vault through Argon2id and the re-keying of
/// every backup. Copying a code, opening an account's QR page or changing a
/// setting meanwhile must not make the UI thread wait for it.
#[test]
fn the_ui_thread_never_waits_for_a_vault_held_by_background_work() {
    use std::sync::mpsc;
    use std::time::Duration;

    let mut harness = Harness::unlocked(vec![github()]);
    let Screen::Unlocked(unlocked) = &harness.app.screen else { panic!("unlocked") };
    let (vault, id) = (unlocked.vault.clone(), harness.accounts().cards[0].id.clone());
    let (held, is_held) = mpsc::channel();
    let (returned, has_returned) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _guard = vault.lock().unwrap();
        held.send(()).unwrap();
        // Let go once the UI thread came back, or after a bound so that a
        // regression fails the test instead of hanging it. True: it waited.
        has_returned.recv_timeout(Duration::from_secs(30)).is_err()
    });
    is_held.recv().unwrap();
    let copy = harness.app.update(Message::Accounts(accounts::Message::CardPressed(id.clone())));
    let qr = harness.app.update(Message::Accounts(accounts::Message::ShowQr(id)));
    harness.send(Message::Key { key: Key::Character(",".into()), modifiers: Modifiers::CTRL, captured: false });
    let setting = harness.app.update(Message::Preferences(gui::preferences::Message::HideCodesToggled(true)));
    returned.send(()).unwrap();
    assert!(!holder.join().unwrap(), "the UI thread waited for the vault");
    // Once the vault is free, each finishes.
    harness.run(copy);
    assert_eq!(harness.clipboard.as_deref(), Some("013254"));
    harness.run(setting);
    assert!(harness.app.settings.hide_codes);
    harness.run(qr);
    assert!(matches!(&harness.app.screen, Screen::Unlocked(u) if matches!(u.page, Page::Codes(_))));
}
