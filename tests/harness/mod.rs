//! The GUI test harness: the real `App::update`, with the Tasks it returns
//! actually run (blocking work, clipboard), and iced_test simulators.

#![allow(dead_code)]

use std::path::PathBuf;

use countersign::account::Account;
use countersign::gui::{App, Message, Options, Screen, Start, accounts, inbox, unlock};
use countersign::push::client::Update;
use countersign::secret::{Password, Secret};
use countersign::vault::Id;
use countersign::vault::{Kdf, Locked, Protection, Vault};
use iced::Task;
use iced::futures::StreamExt;
use iced::keyboard::key::Named;
use iced_runtime::Action;

/// 2026-11-23T12:00:10Z: 20 s left in its 30 s window.
pub const T: u64 = 1_795_435_210;
pub const PASSWORD: &str = "gui test password";

/// The app plus what its Tasks touch: a clipboard and a runtime for blocking work.
pub struct Harness {
    pub app: App,
    pub clipboard: Option<String>,
    pub runtime: tokio::runtime::Runtime,
    pub dir: tempfile::TempDir,
    pub vault_path: PathBuf,
}

impl Harness {
    /// A vault with `accounts`, opened by password only (no keyring is touched).
    pub fn with_vault(accounts: Vec<Account>) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let vault_path = dir.path().join("vault.cvault");
        let mut vault = Vault::create(
            &vault_path,
            Protection { password: Some((Password::new(PASSWORD.into()), Kdf { memory_kib: 64, passes: 1, lanes: 1 })), keyring: None },
        )
        .unwrap();
        vault.add(accounts, T).unwrap();
        Harness::start(dir, vault_path)
    }

    pub fn start(dir: tempfile::TempDir, vault_path: PathBuf) -> Harness {
        // The window is open (the harness ignores the task that opens it);
        // the user's autostart folder is left alone.
        let options = Options { vault: vault_path.clone(), settings: dir.path().join("settings.json"), autostart: None };
        let (app, task) = App::new(options, T, Start::Window);
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let mut harness = Harness { app, clipboard: None, runtime, dir, vault_path };
        harness.run(task);
        harness
    }

    /// A vault unlocked through the real unlock screen.
    pub fn unlocked(accounts: Vec<Account>) -> Harness {
        let mut harness = Harness::with_vault(accounts);
        harness.submit(unlock::PASSWORD_ID, PASSWORD);
        assert!(matches!(harness.app.screen, Screen::Unlocked(_)), "the password unlocks");
        harness.send(Message::Tick(T));
        harness
    }

    /// An update of one account's connection, as its subscription gives it.
    pub fn push(&mut self, id: &Id, update: Update) {
        self.send(Message::Inbox(inbox::Message::Push(id.clone(), update)));
    }

    pub fn send(&mut self, message: Message) {
        let task = self.app.update(message);
        self.run(task);
    }

    /// Runs a Task to completion: outputs are fed back to `update`, clipboard
    /// actions hit the fake clipboard, widget operations are ignored.
    pub fn run(&mut self, task: Task<Message>) {
        let Some(mut stream) = iced_runtime::task::into_stream(task) else { return };
        let mut outputs = Vec::new();
        let clipboard = &mut self.clipboard;
        self.runtime.block_on(async {
            while let Some(action) = stream.next().await {
                match action {
                    Action::Output(message) => outputs.push(message),
                    Action::Clipboard(iced_runtime::clipboard::Action::Write { contents, .. }) => *clipboard = Some(contents),
                    Action::Clipboard(iced_runtime::clipboard::Action::Read { channel, .. }) => {
                        let _ = channel.send(clipboard.clone());
                    }
                    _ => {}
                }
            }
        });
        for message in outputs {
            self.send(message);
        }
    }

    /// Simulates the user on the current view, then feeds what it produced.
    pub fn interact(&mut self, act: impl FnOnce(&mut iced_test::Simulator<'_, Message>)) {
        let messages: Vec<Message> = {
            let mut ui = iced_test::simulator(self.app.view());
            act(&mut ui);
            ui.into_messages().collect()
        };
        if std::env::var_os("GUI_DEBUG").is_some() {
            eprintln!("messages: {messages:?}");
        }
        for message in messages {
            self.send(message);
        }
    }

    pub fn click(&mut self, label: &str) {
        self.interact(|ui| {
            ui.click(label).unwrap_or_else(|e| panic!("no {label:?} to click: {e:?}"));
        });
    }

    pub fn type_into(&mut self, id: &'static str, text: &str) {
        self.interact(|ui| {
            ui.click(iced::widget::Id::new(id)).unwrap_or_else(|e| panic!("no field {id}: {e:?}"));
            ui.typewrite(text);
        });
    }

    /// Types into a field and presses Enter there (one simulator, so the
    /// field keeps its focus).
    pub fn submit(&mut self, id: &'static str, text: &str) {
        self.interact(|ui| {
            ui.click(iced::widget::Id::new(id)).unwrap_or_else(|e| panic!("no field {id}: {e:?}"));
            ui.typewrite(text);
            ui.tap_key(Named::Enter);
        });
    }

    pub fn shows(&mut self, text: &str) -> bool {
        iced_test::simulator(self.app.view()).find(text).is_ok()
    }

    pub fn accounts(&self) -> &accounts::Accounts {
        match &self.app.screen {
            Screen::Unlocked(unlocked) => &unlocked.accounts,
            _ => panic!("not unlocked"),
        }
    }

    pub fn vault_names(&self) -> Vec<String> {
        let vault = Locked::read(&self.vault_path).unwrap().unlock_with_password(&Password::new(PASSWORD.into())).unwrap();
        vault.entries().iter().map(|e| e.account.name.clone()).collect()
    }
}

pub fn github() -> Account {
    Account::totp("GitHub", "alice@example.com", Secret::from_base32("JBSWY3DPEHPK3PXP").unwrap().0)
}

pub fn google() -> Account {
    Account::totp("Google", "alice@gmail.com", Secret::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap().0)
}
