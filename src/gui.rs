//! The app's root: one process per vault that lives from start (or login)
//! until Quit, with at most one window. It routes messages to the screens
//! and the sign-in inbox, owns the clock, the window's opening and closing,
//! shortcuts, the clipboard, auto-lock and the tray.
//!
//! Screens follow the screen/Action pattern: each owns its state, `update`
//! returns an `Action`, and this root matches every variant. Time reaches the
//! screens only through `Message::Tick`, so tests drive the clock. Sign-in
//! requests live in [`inbox`], which outlives the unlocked vault and the
//! window: the process keeps receiving them with the window closed or the
//! vault locked (see `crate::listeners`).

pub mod accounts;
pub mod add;
pub mod codes;
mod desktop;
pub mod export;
pub mod import;
pub mod inbox;
pub mod jobs;
pub mod onboarding;
pub mod password;
pub mod phone;
pub mod preferences;
pub mod prompt;
mod style;
pub mod tray;
pub mod unlock;
mod window;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use iced::keyboard::{self, Key, Modifiers, key::Named};
use iced::widget::{Space, column, container, operation, stack, text};
use iced::{Element, Fill, Font, Size, Subscription, Task, Theme, event};
use zeroize::Zeroizing;

pub use accounts::{Accounts, Card, Change};
pub use add::{Add, Candidate};
pub use codes::Codes;
pub use export::Export;
pub use import::Import;
pub use inbox::Inbox;
pub use preferences::{Preferences, Protection};
pub use unlock::Unlock;
pub use window::{Instance, RaiseOn};

use crate::settings::Settings;
use crate::vault::{self, Id, Vault};
use crate::{autostart, backup, otp, transfer, uri};

/// The window's app id; packaging's desktop file uses it as StartupWMClass.
pub const APP_ID: &str = "org.countersign.Countersign";

/// An unlocked vault shared with background tasks (saves, re-keying).
pub type SharedVault = Arc<Mutex<Vault>>;

/// Wraps a freshly unlocked vault for the root and its background tasks.
pub fn share(vault: Vault) -> SharedVault {
    Arc::new(Mutex::new(vault))
}

/// Runs blocking work (keyring, Argon2, file I/O, QR decoding) off the UI thread.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

/// Text a user typed or scanned that may hold a secret (a password, a key,
/// an otpauth URI). Messages are `Debug` and may be logged; this prints only
/// that something was redacted.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Sensitive<T>(pub T);

impl<T> std::fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Where the app keeps its files, and what it may touch outside them.
#[derive(Debug, Clone)]
pub struct Options {
    pub vault: PathBuf,
    pub settings: PathBuf,
    /// Keep the login autostart entry in step with the settings (the real
    /// app; tests leave the user's autostart folder alone).
    pub autostart: Option<autostart::Launch>,
}

/// How the process starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// With its window (`countersign`).
    Window,
    /// In the background, no window (`countersign --background`, at login).
    Background,
}

/// Runs the app until Quit (or until its window closes, when it is not to
/// stay in the background). While it runs, `instance` (when given) takes
/// every later start on the same vault.
pub fn run(options: Options, instance: Option<Instance>, start: Start) -> iced::Result {
    let raise = window::raise_on(instance.as_ref());
    iced::daemon(
        move || {
            let (mut app, task) = App::new(options.clone(), now_unix(), start);
            app.raise_on = raise.clone();
            (app, task)
        },
        App::update,
        App::window_view,
    )
    .title(App::window_title)
    .subscription(App::subscription)
    .theme(App::window_theme)
    .default_font(Font::with_name("Fira Sans"))
    .run()?;
    // The socket goes only once the process ends.
    drop(instance);
    Ok(())
}

pub struct App {
    options: Options,
    pub settings: Settings,
    pub screen: Screen,
    pub now: u64,
    last_input: u64,
    pub toast: Option<(String, u64)>,
    pending_clear: Option<PendingClear>,
    settings_dirty: bool,
    /// Sign-in requests: connections, prompts, notifications, history.
    pub inbox: Inbox,
    /// The window, while one is open.
    pub window: Option<iced::window::Id>,
    /// Whether the window has the input focus.
    pub focused: bool,
    /// Set when this process is the one on its vault.
    raise_on: Option<RaiseOn>,
    tray: tray::Tray,
    /// Whether the vault was unlocked in this session (after that, the
    /// keyring is never tried without the user asking).
    unlocked_once: bool,
    /// What the autostart entry was last set to.
    autostart_set: Option<bool>,
}

// One value per app, never moved in bulk: boxing the big variant buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Screen {
    Onboarding(onboarding::Onboarding),
    Unlock(Unlock),
    Unlocked(Unlocked),
}

pub struct Unlocked {
    pub vault: SharedVault,
    pub accounts: Accounts,
    pub page: Page,
}

pub enum Page {
    Accounts,
    Add(Add),
    Preferences(Preferences),
    Import(Import),
    Export(Export),
    /// Secrets shown as QR codes (one account, or a Google export).
    Codes(Codes),
    /// Sign-in requests and where they come from.
    Activity,
}

/// A code read to copy, with the account's title for the toast.
#[derive(Clone)]
pub struct Copied {
    code: Zeroizing<String>,
    title: String,
}

/// What a QR page shows, read from the vault off the UI thread.
#[derive(Clone)]
pub enum CodeTexts {
    /// One account's otpauth link.
    Account { title: String, uri: Zeroizing<String> },
    /// Google Authenticator export payloads, and who was left out and why.
    Google { texts: Vec<Zeroizing<String>>, left_out: Vec<(String, &'static str)> },
}

/// A copied code to wipe from the clipboard at `at`, if it is still there.
struct PendingClear {
    code: Zeroizing<String>,
    at: u64,
}

#[derive(Debug, Clone)]
pub enum Message {
    Tick(u64),
    Input,
    Key {
        key: Key,
        modifiers: Modifiers,
        captured: bool,
    },
    FileDropped(PathBuf),
    Resized(Size),
    Focused(bool),
    /// Show the window (open it when closed) and bring it forward:
    /// `countersign` was started again on this vault, or the tray's Open.
    Raise,
    /// Another start asked this process to end (`countersign quit`).
    Quit,
    WindowOpened(iced::window::Id),
    WindowClosed(iced::window::Id),
    Onboarding(onboarding::Message),
    Unlock(unlock::Message),
    Accounts(accounts::Message),
    Add(add::Message),
    Preferences(preferences::Message),
    Import(import::Message),
    Export(export::Message),
    Codes(codes::Message),
    Inbox(inbox::Message),
    Tray(tray::Event),
    /// The vault opened through the keyring slot at a background start, for
    /// the inbox only (privacyIDEA tokens, listener keys); the app stays locked.
    KeyringOpened(Sensitive<Result<SharedVault, vault::Error>>),
    Saved(Result<jobs::Applied, jobs::Error>),
    /// The vault's answer to the Add page's save, for that page if it is still open.
    Imported(Result<Vec<vault::Imported>, jobs::Error>),
    /// An account's code read off the UI thread, to copy.
    CodeRead(Result<Sensitive<Copied>, jobs::Error>),
    /// Secrets read off the UI thread, to show as QR codes.
    CodesRead(Result<Sensitive<CodeTexts>, jobs::Error>),
    ClipboardChecked(bool),
    AutostartSet(bool, Result<bool, autostart::Error>),
}

impl App {
    /// The app at Unix time `now`: onboarding with no vault, else locked.
    /// With a window it opens one (and tries the keyring slot at once); in
    /// the background it opens a keyring vault only for the inbox.
    pub fn new(options: Options, now: u64, start: Start) -> (Self, Task<Message>) {
        let settings = Settings::load(&options.settings);
        // The keyring slot is tried when the window first shows (open_window).
        let (screen, task) = if options.vault.exists() {
            let (unlock, task) =
                Unlock::new(options.vault.clone(), false, settings.backup_policy(&options.vault), backup_dir(&settings, &options.vault));
            (Screen::Unlock(unlock), task.map(Message::Unlock))
        } else {
            let (onboarding, task) = onboarding::Onboarding::new(options.vault.clone());
            (Screen::Onboarding(onboarding), task.map(Message::Onboarding))
        };
        let (inbox, inbox_task) = Inbox::new(options.vault.clone(), settings.poll_interval());
        let mut app = App {
            options,
            settings,
            screen,
            now,
            last_input: now,
            toast: None,
            pending_clear: None,
            settings_dirty: false,
            inbox,
            window: None,
            focused: false,
            raise_on: None,
            tray: tray::Tray::default(),
            unlocked_once: false,
            autostart_set: None,
        };
        let opening = match start {
            Start::Window => app.open_window(),
            Start::Background => app.peek_with_keyring(),
        };
        (app, Task::batch([task, inbox_task.map(Message::Inbox), opening]))
    }

    /// The daemon asks per window; there is only ever one.
    fn window_view(&self, _window: iced::window::Id) -> Element<'_, Message> {
        self.view()
    }

    fn window_title(&self, _window: iced::window::Id) -> String {
        self.title()
    }

    fn window_theme(&self, _window: iced::window::Id) -> Option<Theme> {
        self.theme()
    }

    pub fn title(&self) -> String {
        match &self.screen {
            Screen::Onboarding(_) => "Countersign — Welcome".into(),
            Screen::Unlock(_) => "Countersign — Locked".into(),
            Screen::Unlocked(_) => "Countersign".into(),
        }
    }

    pub fn theme(&self) -> Option<Theme> {
        style::theme(self.settings.theme)
    }

    /// Opens a keyring vault at a background start, so that privacyIDEA
    /// tokens poll and listener keys are set up before the first unlock.
    fn peek_with_keyring(&self) -> Task<Message> {
        let path = self.options.vault.clone();
        let has_keyring = vault::Locked::read(&path).is_ok_and(|locked| locked.has_keyring());
        if !has_keyring {
            return Task::none();
        }
        Task::perform(
            blocking(move || {
                let keyring = vault::Keyring::system()?;
                vault::Locked::read(&path)?.unlock_with_keyring(&keyring).map(share)
            }),
            |result| Message::KeyringOpened(Sensitive(result)),
        )
    }

    pub fn update(&mut self, message: Message) -> Task<Message> {
        let task = self.handle(message);
        // A request that left the queue (answered here or elsewhere, expired,
        // removed) takes its notification off the screen; the tray and the
        // login entry follow the app's state.
        let sweep = self.inbox.sweep().map(Message::Inbox);
        let shown = tray::Shown {
            waiting: self.inbox.waiting(),
            locked: !matches!(self.screen, Screen::Unlocked(_)),
            warning: self.inbox.clock.warning(),
        };
        let tray = self.tray.show(shown).map(Message::Tray);
        Task::batch([task, sweep, tray, self.keep_autostart()])
    }

    /// Writes or removes the login entry when what is wanted changed.
    fn keep_autostart(&mut self) -> Task<Message> {
        let Some(launch) = self.options.autostart.clone() else { return Task::none() };
        // The default follows work or school accounts, and a locked vault
        // hides its tokens: the entry goes only once none is known to exist.
        let wanted = match (self.settings.start_at_login, self.inbox.has_accounts(), self.inbox.has_none()) {
            (Some(choice), _, _) => choice,
            (None, true, _) => true,
            (None, false, true) => false,
            (None, false, false) => return Task::none(),
        };
        if self.autostart_set == Some(wanted) {
            return Task::none();
        }
        self.autostart_set = Some(wanted);
        Task::perform(blocking(move || autostart::set(&launch, wanted)), move |result| Message::AutostartSet(wanted, result))
    }

    fn handle(&mut self, message: Message) -> Task<Message> {
        match message {
            Message::Tick(now) => self.tick(now),
            Message::Input => {
                self.last_input = self.now;
                Task::none()
            }
            Message::Key { key, modifiers, captured } => {
                self.last_input = self.now;
                self.shortcut(key, modifiers, captured)
            }
            Message::FileDropped(path) => {
                let Screen::Unlocked(unlocked) = &mut self.screen else { return Task::none() };
                if let Page::Import(import) = &mut unlocked.page {
                    let action = import.file(path);
                    return self.import_action(action);
                }
                if !matches!(unlocked.page, Page::Add(_)) {
                    unlocked.page = Page::Add(Add::default());
                }
                match &mut unlocked.page {
                    Page::Add(add) => add.scan_file(path).map(Message::Add),
                    Page::Accounts | Page::Preferences(_) | Page::Import(_) | Page::Export(_) | Page::Codes(_) | Page::Activity => {
                        Task::none()
                    }
                }
            }
            Message::Focused(focused) => {
                self.focused = focused;
                Task::none()
            }
            Message::Raise => self.show(),
            Message::Quit => iced::exit(),
            Message::WindowOpened(id) => {
                self.focused = true;
                // Widget operations reach only open windows: the field that
                // takes the keyboard is chosen now.
                let field = match &self.screen {
                    Screen::Unlock(_) => operation::focus(unlock::PASSWORD_ID),
                    Screen::Unlocked(_) => self.focus_prompt(),
                    Screen::Onboarding(_) => Task::none(),
                };
                Task::batch([iced::window::gain_focus(id), field])
            }
            Message::WindowClosed(id) => {
                if self.window != Some(id) {
                    return Task::none();
                }
                self.window = None;
                self.focused = false;
                // Staying is for receiving requests: with nothing to receive,
                // or when the user turned it off, closing the window quits.
                if !self.settings.run_in_background || !self.inbox.has_accounts() {
                    return iced::exit();
                }
                Task::none()
            }
            Message::Resized(size) => {
                self.settings.window_size = Some((size.width, size.height));
                self.settings_dirty = true;
                Task::none()
            }
            Message::Onboarding(message) => {
                let Screen::Onboarding(onboarding) = &mut self.screen else { return Task::none() };
                match onboarding.update(message) {
                    onboarding::Action::None => Task::none(),
                    onboarding::Action::Run(task) => task.map(Message::Onboarding),
                    onboarding::Action::Unlocked(vault) => self.unlocked(vault),
                }
            }
            Message::Unlock(message) => {
                let Screen::Unlock(unlock) = &mut self.screen else { return Task::none() };
                match unlock.update(message) {
                    unlock::Action::None => Task::none(),
                    unlock::Action::Run(task) => task.map(Message::Unlock),
                    unlock::Action::Unlocked(vault) => self.unlocked(vault),
                }
            }
            Message::Accounts(message) => {
                let Screen::Unlocked(unlocked) = &mut self.screen else { return Task::none() };
                match unlocked.accounts.update(message) {
                    accounts::Action::None => Task::none(),
                    accounts::Action::Run(task) => task.map(Message::Accounts),
                    accounts::Action::Copy(id) => self.copy(&id),
                    accounts::Action::Change(change) => self.change(change),
                    accounts::Action::AddAccount => self.open_add(),
                    accounts::Action::OpenPreferences => {
                        self.show_page(Page::Preferences(Preferences::new(&self.backup_dir())));
                        Task::none()
                    }
                    accounts::Action::ShowQr(id) => self.read_account_qr(&id),
                    accounts::Action::OpenActivity => {
                        self.show_page(Page::Activity);
                        Task::none()
                    }
                    accounts::Action::Lock => self.lock(),
                }
            }
            Message::Add(message) => {
                // An activation or enrollment that ends after the user left
                // the Add page still says how it went.
                if let Screen::Unlocked(unlocked) = &self.screen
                    && !matches!(unlocked.page, Page::Add(_))
                    && let add::Message::Activated(result) | add::Message::Enrolled(result) = &message
                {
                    self.toast = Some((
                        match result {
                            Ok(added) => format!("Added {added}"),
                            Err(error) => format!("Not added: {error}"),
                        },
                        self.now + 8,
                    ));
                    return self.refresh();
                }
                let Screen::Unlocked(Unlocked { page: Page::Add(add), vault, .. }) = &mut self.screen else { return Task::none() };
                match add.update(message, self.now) {
                    add::Action::None => Task::none(),
                    add::Action::Run(task) => task.map(Message::Add),
                    add::Action::Save(accounts) => {
                        let (vault, now) = (vault.clone(), self.now);
                        Task::perform(
                            blocking(move || Ok(jobs::lock(&vault)?.import(accounts, now, crate::vault::Duplicates::Skip)?)),
                            Message::Imported,
                        )
                    }
                    add::Action::Finished(toast) => {
                        self.show_page(Page::Accounts);
                        self.toast = Some((toast, self.now + 3));
                        Task::none()
                    }
                    add::Action::Cancel => {
                        self.show_page(Page::Accounts);
                        Task::none()
                    }
                    add::Action::Activate { code, url } => {
                        let (vault, now) = (vault.clone(), self.now);
                        Task::perform(jobs::activate(vault, code, url, now), |result| Message::Add(add::Message::Activated(result)))
                    }
                    add::Action::Enroll { enrollment, read_at } => {
                        let (vault, now) = (vault.clone(), self.now);
                        Task::perform(jobs::enroll_token(vault, enrollment, read_at, now), |result| {
                            Message::Add(add::Message::Enrolled(result))
                        })
                    }
                }
            }
            Message::Preferences(message) => {
                let Screen::Unlocked(Unlocked { page: Page::Preferences(preferences), vault, accounts, .. }) = &mut self.screen else {
                    return Task::none();
                };
                match preferences.update(message) {
                    preferences::Action::None => Task::none(),
                    preferences::Action::ChangeSettings(change) => {
                        change(&mut self.settings);
                        accounts.hide_codes = self.settings.hide_codes;
                        // Off the UI thread: a password change may hold the
                        // vault through Argon2id and the re-keying of backups.
                        let (vault, policy) = (vault.clone(), self.settings.backup_policy(&self.options.vault));
                        self.settings_dirty = true;
                        self.save_settings();
                        Task::future(blocking(move || jobs::lock(&vault).map(|mut vault| vault.set_backups(policy)))).discard()
                    }
                    preferences::Action::Run(task) => task.map(Message::Preferences),
                    preferences::Action::VerifyBackup => {
                        let (vault, now) = (vault.clone(), self.now);
                        Task::perform(blocking(move || jobs::verify_backup(&vault, now)), |result| {
                            Message::Preferences(preferences::Message::Backups(preferences::backups::Message::Verified(result)))
                        })
                    }
                    preferences::Action::Import => {
                        self.show_page(Page::Import(Import::default()));
                        Task::none()
                    }
                    preferences::Action::Export => {
                        self.show_page(Page::Export(Export::default()));
                        Task::none()
                    }
                    preferences::Action::Protection(protection) => {
                        let (vault, now) = (vault.clone(), self.now);
                        Task::perform(blocking(move || jobs::protect(&vault, protection, now)), |result| {
                            Message::Preferences(preferences::Message::Protection(preferences::protection::Message::Changed(result)))
                        })
                    }
                    preferences::Action::Back => {
                        self.show_page(Page::Accounts);
                        Task::none()
                    }
                }
            }
            Message::Import(message) => {
                let Screen::Unlocked(Unlocked { page: Page::Import(import), .. }) = &mut self.screen else { return Task::none() };
                let action = import.update(message);
                self.import_action(action)
            }
            Message::Export(message) => {
                let Screen::Unlocked(Unlocked { page: Page::Export(export), vault, .. }) = &mut self.screen else { return Task::none() };
                match export.update(message) {
                    export::Action::None => Task::none(),
                    export::Action::Run(task) => task.map(Message::Export),
                    export::Action::Save { format, password, path } => {
                        let vault = vault.clone();
                        Task::perform(blocking(move || jobs::save_export(&vault, format, password, &path)), |result| {
                            Message::Export(export::Message::Saved(result))
                        })
                    }
                    export::Action::ShowGoogleCodes => self.read_google_codes(),
                    export::Action::Back => {
                        self.show_page(Page::Preferences(Preferences::new(&self.backup_dir())));
                        Task::none()
                    }
                }
            }
            Message::Codes(message) => {
                let Screen::Unlocked(Unlocked { page: Page::Codes(codes), .. }) = &mut self.screen else { return Task::none() };
                let from_export = codes.from_export;
                match codes.update(message) {
                    codes::Action::None => {}
                    codes::Action::Back if from_export => {
                        let mut export = Export::default();
                        export.format = transfer::ExportFormat::GoogleQr;
                        export.understood = true;
                        self.show_page(Page::Export(export));
                    }
                    codes::Action::Back => self.show_page(Page::Accounts),
                }
                Task::none()
            }
            Message::Inbox(message) => {
                let vault = match &self.screen {
                    Screen::Unlocked(unlocked) => Some(unlocked.vault.clone()),
                    _ => None,
                };
                let context = inbox::Context { now: self.now, vault: vault.as_ref(), window: self.window.is_some() };
                let action = self.inbox.update(message, context);
                self.show_push_status();
                match action {
                    inbox::Action::None => Task::none(),
                    inbox::Action::Run(task) => task.map(Message::Inbox),
                    inbox::Action::Show(_) => self.show(),
                    inbox::Action::Toast(text, task) => {
                        self.toast = Some((text, self.now + 4));
                        Task::batch([task.map(Message::Inbox), self.refresh()])
                    }
                    inbox::Action::Back => {
                        self.show_page(Page::Accounts);
                        Task::none()
                    }
                    inbox::Action::Copy(Sensitive(code), title) => self.copied(Copied { code, title }),
                }
            }
            Message::Tray(event) => match event {
                tray::Event::Ready(handle) => self.tray.ready(handle).map(Message::Tray),
                tray::Event::Unavailable(why) => {
                    eprintln!("countersign: no tray icon ({why}); sign-in requests still show as notifications");
                    Task::none()
                }
                tray::Event::Open => self.show(),
                tray::Event::Lock => self.lock(),
                tray::Event::Quit => iced::exit(),
            },
            Message::KeyringOpened(Sensitive(result)) => match result {
                // An unlock that came first already told the inbox (and
                // keeps its device connections).
                Ok(_) if matches!(self.screen, Screen::Unlocked(_)) => Task::none(),
                // Only the inbox sees it; the vault is dropped right after.
                Ok(vault) => self.inbox.opened(&vault, false).map(Message::Inbox),
                Err(error) => {
                    eprintln!(
                        "countersign: the OS keyring did not open the vault at start ({error}); privacyIDEA tokens wait for the first unlock"
                    );
                    Task::none()
                }
            },
            Message::Saved(result) => {
                match result {
                    Ok(applied) => self.toast = Some((applied.to_string(), self.now + 3)),
                    Err(error) => self.toast = Some((format!("Not saved: {error}"), self.now + 8)),
                }
                self.refresh()
            }
            Message::Imported(result) => {
                // The list is reloaded whatever the page: the user may have
                // left the Add page while the save ran.
                let refresh = self.refresh();
                let task = match &mut self.screen {
                    Screen::Unlocked(Unlocked { page: Page::Add(_), .. }) => self.update(Message::Add(add::Message::Imported(result))),
                    _ => {
                        self.toast = Some(match result {
                            Ok(outcomes) => {
                                let added = outcomes.iter().filter(|o| matches!(o, vault::Imported::Added(_))).count();
                                (format!("Added {added} of {} accounts", outcomes.len()), self.now + 3)
                            }
                            Err(error) => (format!("Not saved: {error}"), self.now + 8),
                        });
                        Task::none()
                    }
                };
                Task::batch([refresh, task])
            }
            Message::CodeRead(Ok(Sensitive(copied))) => self.copied(copied),
            Message::CodeRead(Err(error)) => {
                self.toast = Some((format!("Not copied: {error}"), self.now + 8));
                Task::none()
            }
            Message::CodesRead(result) => {
                self.show_codes(result);
                Task::none()
            }
            Message::ClipboardChecked(still_ours) => {
                if still_ours {
                    return iced::clipboard::write(String::new());
                }
                Task::none()
            }
            Message::AutostartSet(wanted, result) => {
                if let Err(error) = result {
                    eprintln!("countersign: the login entry could not be {}: {error}", if wanted { "written" } else { "removed" });
                }
                Task::none()
            }
        }
    }

    /// Shows the window, opening it when it is closed, at the first request.
    fn show(&mut self) -> Task<Message> {
        match self.window {
            Some(id) => Task::batch([window::bring_forward(id), self.focus_prompt()]),
            None => self.open_window(),
        }
    }

    fn open_window(&mut self) -> Task<Message> {
        // A vault never unlocked in this session tries its keyring slot
        // when the window first shows (a lock the user chose is kept).
        if let Screen::Unlock(_) = &self.screen
            && !self.unlocked_once
            && self.window.is_none()
        {
            let (unlock, task) =
                Unlock::new(self.options.vault.clone(), true, self.settings.backup_policy(&self.options.vault), self.backup_dir());
            self.screen = Screen::Unlock(unlock);
            let (id, opened) = window::open(&self.settings);
            self.window = Some(id);
            return Task::batch([opened.map(Message::WindowOpened), task.map(Message::Unlock)]);
        }
        let (id, opened) = window::open(&self.settings);
        self.window = Some(id);
        opened.map(Message::WindowOpened)
    }

    fn close_window(&mut self) -> Task<Message> {
        match self.window {
            Some(id) => iced::window::close(id),
            None => Task::none(),
        }
    }

    /// The first request's field takes the keyboard, when it is on screen.
    fn focus_prompt(&self) -> Task<Message> {
        match self.screen {
            Screen::Unlocked(_) => self.inbox.focus().map(Message::Inbox),
            _ => Task::none(),
        }
    }

    fn unlocked(&mut self, vault: SharedVault) -> Task<Message> {
        if let Ok(mut vault) = vault.lock() {
            vault.set_backups(self.settings.backup_policy(&self.options.vault));
        }
        let mut accounts = Accounts::default();
        accounts.hide_codes = self.settings.hide_codes;
        let inbox = self.inbox.opened(&vault, true).map(Message::Inbox);
        self.screen = Screen::Unlocked(Unlocked { vault, accounts, page: Page::Accounts });
        self.unlocked_once = true;
        self.last_input = self.now;
        // A request waiting since before the unlock comes first.
        Task::batch([self.refresh(), inbox, self.focus_prompt()])
    }

    /// Drops the vault (and with it every decrypted secret) and shows the
    /// unlock screen. Requests keep arriving, to be answered after unlocking.
    pub fn lock(&mut self) -> Task<Message> {
        self.inbox.locked();
        let (unlock, task) =
            Unlock::new(self.options.vault.clone(), false, self.settings.backup_policy(&self.options.vault), self.backup_dir());
        self.screen = Screen::Unlock(unlock);
        task.map(Message::Unlock)
    }

    fn show_page(&mut self, page: Page) {
        if let Screen::Unlocked(unlocked) = &mut self.screen {
            unlocked.page = page;
        }
    }

    fn backup_dir(&self) -> PathBuf {
        backup_dir(&self.settings, &self.options.vault)
    }

    fn import_action(&mut self, action: import::Action) -> Task<Message> {
        let Screen::Unlocked(unlocked) = &mut self.screen else { return Task::none() };
        let vault = unlocked.vault.clone();
        match action {
            import::Action::None => Task::none(),
            import::Action::Run(task) => task.map(Message::Import),
            import::Action::Read { path, password } => Task::perform(
                blocking(move || {
                    let contents = transfer::open(&path, None, password.as_ref())?;
                    let entries = vault.lock().map(|v| v.entries().to_vec()).unwrap_or_default();
                    let plan = transfer::preview(&contents, &entries);
                    Ok(Sensitive((contents, plan)))
                }),
                |result| Message::Import(import::Message::Read(result)),
            ),
            import::Action::Import { contents, duplicates } => {
                let now = self.now;
                Task::perform(blocking(move || Ok(transfer::import(&mut *jobs::lock(&vault)?, &contents, duplicates, now)?)), |result| {
                    Message::Import(import::Message::Imported(result))
                })
            }
            import::Action::Done => {
                self.show_page(Page::Accounts);
                self.refresh()
            }
            import::Action::Back => {
                self.show_page(Page::Preferences(Preferences::new(&self.backup_dir())));
                Task::none()
            }
        }
    }

    /// Reads an account's link for its QR page, off the UI thread.
    fn read_account_qr(&self, id: &Id) -> Task<Message> {
        let Screen::Unlocked(unlocked) = &self.screen else { return Task::none() };
        let (vault, id) = (unlocked.vault.clone(), id.clone());
        Task::perform(
            blocking(move || {
                let vault = jobs::lock(&vault)?;
                let entry = vault.entries().iter().find(|e| e.id == id).ok_or(jobs::Error::AccountGone)?;
                Ok(Sensitive(CodeTexts::Account { title: entry.account.title(), uri: Zeroizing::new(uri::format(&entry.account)) }))
            }),
            Message::CodesRead,
        )
    }

    /// Reads the Google Authenticator export payloads, off the UI thread.
    fn read_google_codes(&self) -> Task<Message> {
        let Screen::Unlocked(unlocked) = &self.screen else { return Task::none() };
        let vault = unlocked.vault.clone();
        Task::perform(
            blocking(move || {
                let (texts, left_out) = transfer::google_codes(jobs::lock(&vault)?.entries())?;
                Ok(Sensitive(CodeTexts::Google { texts: texts.into_iter().map(Zeroizing::new).collect(), left_out }))
            }),
            Message::CodesRead,
        )
    }

    /// The QR page for what was read; it asks before drawing the secret.
    fn show_codes(&mut self, read: Result<Sensitive<CodeTexts>, jobs::Error>) {
        let Screen::Unlocked(unlocked) = &mut self.screen else { return };
        let page = read.and_then(|Sensitive(texts)| {
            Ok(match texts {
                CodeTexts::Account { title, uri } => {
                    let texts = vec![(format!("Scan with another authenticator to add {title}"), uri)];
                    let warning = format!("This shows the secret key of {title} as a QR code. Anyone who sees it, or a screenshot of it, can make this account's codes.");
                    Codes::new(format!("QR code: {title}"), warning, texts, Vec::new())?
                }
                CodeTexts::Google { texts, left_out } => {
                    let count = texts.len();
                    let texts = texts.into_iter().enumerate().map(|(i, text)| (format!("In Google Authenticator: Transfer accounts → Import accounts, then scan code {} of {count}", i + 1), text)).collect();
                    let notes = left_out.into_iter().map(|(title, why)| format!("Not included: {title} ({why}).")).collect();
                    let codes = Codes::new("Google Authenticator codes".into(), "These codes hold the secret keys of your accounts. Show them only to your own phone, with no one watching and no screen recording.".into(), texts, notes)?;
                    Codes { from_export: true, ..codes }
                }
            })
        });
        match page {
            Ok(page) => unlocked.page = Page::Codes(page),
            Err(error) => match &mut unlocked.page {
                Page::Export(export) => export.error = Some(error.to_string()),
                _ => self.toast = Some((error.to_string(), self.now + 8)),
            },
        }
    }

    fn open_add(&mut self) -> Task<Message> {
        let (add, task) = Add::new();
        self.show_page(Page::Add(add));
        task.map(Message::Add)
    }

    /// Recomputes the cards for the current second, and lets the inbox
    /// follow the vault's work or school accounts and tokens.
    fn refresh(&mut self) -> Task<Message> {
        let Screen::Unlocked(unlocked) = &mut self.screen else { return Task::none() };
        // A save in progress holds the lock for milliseconds; skip this tick
        // rather than block the UI thread.
        if let Ok(vault) = unlocked.vault.try_lock() {
            unlocked.accounts.refresh(vault.entries(), self.now);
            unlocked.accounts.push_tokens = vault.push_tokens().len();
        }
        let vault = unlocked.vault.clone();
        self.show_push_status();
        self.inbox.vault_changed(&vault, true).map(Message::Inbox)
    }

    /// Each work or school card says how its connection is.
    fn show_push_status(&mut self) {
        let Screen::Unlocked(unlocked) = &mut self.screen else { return };
        let accounts = &mut unlocked.accounts;
        let push: Vec<Id> = accounts.cards.iter().filter(|card| card.push).map(|card| card.id.clone()).collect();
        accounts.push_status.clear();
        for id in push {
            if let Some(status) = self.inbox.status(&id) {
                accounts.push_status.insert(id, status);
            }
        }
    }

    fn tick(&mut self, now: u64) -> Task<Message> {
        self.now = now;
        if self.toast.as_ref().is_some_and(|(_, until)| now >= *until) {
            self.toast = None;
        }
        if self.settings_dirty {
            self.save_settings();
        }
        let expired = self.inbox.tick(now).map(Message::Inbox);
        if let Screen::Unlocked(unlocked) = &self.screen {
            self.inbox.read_texts(&unlocked.vault);
        }
        let idle = now.saturating_sub(self.last_input);
        if matches!(self.screen, Screen::Unlocked(_)) && self.settings.auto_lock_seconds > 0 && idle >= self.settings.auto_lock_seconds {
            let lock = self.lock();
            return Task::batch([expired, lock, self.clear_clipboard_if_due(now)]);
        }
        Task::batch([expired, self.refresh(), self.clear_clipboard_if_due(now)])
    }

    fn clear_clipboard_if_due(&mut self, now: u64) -> Task<Message> {
        match self.pending_clear.take() {
            Some(pending) if now >= pending.at => {
                // Compare inside the task: the clipboard text never travels in a Message.
                let code = pending.code;
                iced::clipboard::read().map(move |content| Message::ClipboardChecked(content.as_deref() == Some(code.as_str())))
            }
            pending => {
                self.pending_clear = pending;
                Task::none()
            }
        }
    }

    fn save_settings(&mut self) {
        match self.settings.save(&self.options.settings) {
            Ok(()) => self.settings_dirty = false,
            Err(error) => {
                self.settings_dirty = false;
                self.toast = Some((error.to_string(), self.now + 8));
            }
        }
    }

    /// Reads an account's current code off the UI thread, to copy it.
    pub fn copy(&self, id: &Id) -> Task<Message> {
        let Screen::Unlocked(unlocked) = &self.screen else { return Task::none() };
        let (vault, id, now) = (unlocked.vault.clone(), id.clone(), self.now);
        Task::perform(
            blocking(move || {
                let vault = jobs::lock(&vault)?;
                let entry = vault.entries().iter().find(|e| e.id == id).ok_or(jobs::Error::AccountGone)?;
                Ok(Sensitive(Copied { code: Zeroizing::new(otp::code(&entry.account, now).value), title: entry.account.title() }))
            }),
            Message::CodeRead,
        )
    }

    /// Copies a code read for copying and schedules the clipboard clear.
    fn copied(&mut self, Copied { code, title }: Copied) -> Task<Message> {
        let clear = self.settings.clipboard_clear_seconds;
        self.toast = Some((
            if clear > 0 {
                format!("Copied the code for {title} · the clipboard clears in {clear} s")
            } else {
                format!("Copied the code for {title}")
            },
            self.now + 3,
        ));
        self.pending_clear = (clear > 0).then(|| PendingClear { code: code.clone(), at: self.now + clear });
        iced::clipboard::write(code.to_string())
    }

    fn change(&mut self, change: Change) -> Task<Message> {
        let Screen::Unlocked(unlocked) = &self.screen else { return Task::none() };
        let (vault, now) = (unlocked.vault.clone(), self.now);
        Task::perform(blocking(move || Ok(jobs::apply(&mut *jobs::lock(&vault)?, change, now)?)), Message::Saved)
    }

    fn shortcut(&mut self, key: Key, modifiers: Modifiers, captured: bool) -> Task<Message> {
        let command = modifiers.command();
        let Screen::Unlocked(unlocked) = &mut self.screen else {
            // Locked: Ctrl+Q and Ctrl+W still work.
            return match key.as_ref() {
                Key::Character("q") if command => iced::exit(),
                Key::Character("w") if command => self.close_window(),
                _ => Task::none(),
            };
        };
        // A sign-in request covers the page: its keys (Enter in the number
        // box) must not reach the list underneath, which would copy a code.
        if !self.inbox.prompts.is_empty() {
            return match key.as_ref() {
                Key::Character("l") if command => self.lock(),
                Key::Character("q") if command => iced::exit(),
                Key::Character("w") if command => self.close_window(),
                // Deny from the keyboard (the number box takes Enter to approve).
                Key::Character("d") if command => match self.inbox.deny_first() {
                    Some(deny) => self.update(Message::Inbox(deny)),
                    None => Task::none(),
                },
                Key::Named(Named::Tab) if !captured => {
                    if modifiers.shift() {
                        operation::focus_previous()
                    } else {
                        operation::focus_next()
                    }
                }
                _ => Task::none(),
            };
        }
        match (key.as_ref(), &mut unlocked.page) {
            (Key::Character("l"), _) if command => self.lock(),
            (Key::Character("q"), _) if command => iced::exit(),
            (Key::Character("w"), _) if command => self.close_window(),
            (Key::Character("n"), _) if command => self.open_add(),
            (Key::Character(","), page) if command => {
                *page = Page::Preferences(Preferences::new(&backup_dir(&self.settings, &self.options.vault)));
                Task::none()
            }
            (Key::Character("f"), page) if command => {
                if !matches!(page, Page::Accounts) {
                    *page = Page::Accounts;
                }
                Task::batch([operation::focus(accounts::SEARCH_ID), operation::select_all(accounts::SEARCH_ID)])
            }
            (Key::Character("v"), Page::Add(add)) if command && !captured => add.paste().map(Message::Add),
            (Key::Character("v"), Page::Accounts) if command && !captured => {
                let mut add = Add::default();
                let task = add.paste().map(Message::Add);
                unlocked.page = Page::Add(add);
                task
            }
            (Key::Named(Named::Escape), Page::Add(add)) => {
                if add.review.take().is_none() {
                    unlocked.page = Page::Accounts;
                }
                Task::none()
            }
            (Key::Named(Named::Escape), Page::Preferences(_) | Page::Codes(_) | Page::Activity) => {
                unlocked.page = Page::Accounts;
                Task::none()
            }
            (Key::Named(Named::Escape), Page::Import(_) | Page::Export(_)) => {
                unlocked.page = Page::Preferences(Preferences::new(&backup_dir(&self.settings, &self.options.vault)));
                Task::none()
            }
            (Key::Named(Named::Escape), Page::Accounts) => {
                unlocked.accounts.escape();
                Task::none()
            }
            (Key::Named(Named::Tab), _) if !captured => {
                if modifiers.shift() {
                    operation::focus_previous()
                } else {
                    operation::focus_next()
                }
            }
            // The selected card's tools, from the keyboard: Alt+arrows reorder,
            // F2 edits, Delete asks to delete, Enter confirms or copies.
            (Key::Named(arrow @ (Named::ArrowUp | Named::ArrowDown)), Page::Accounts) if !captured && modifiers.alt() => {
                let Some(id) = unlocked.accounts.selected.clone() else { return Task::none() };
                self.change(Change::Move { id, up: arrow == Named::ArrowUp })
            }
            (Key::Named(Named::ArrowDown), Page::Accounts) if !captured => unlocked.accounts.select_by(1).map(Message::Accounts),
            (Key::Named(Named::ArrowUp), Page::Accounts) if !captured => unlocked.accounts.select_by(-1).map(Message::Accounts),
            (Key::Named(Named::F2), Page::Accounts) if !captured => match unlocked.accounts.selected.clone() {
                Some(id) => self.update(Message::Accounts(accounts::Message::Edit(id))),
                None => Task::none(),
            },
            (Key::Named(Named::Delete), Page::Accounts) if !captured => match unlocked.accounts.selected.clone() {
                Some(id) => self.update(Message::Accounts(accounts::Message::Delete(id))),
                None => Task::none(),
            },
            (Key::Named(Named::Enter), Page::Accounts) if unlocked.accounts.confirm_delete.is_some() => {
                self.update(Message::Accounts(accounts::Message::DeleteConfirmed(true)))
            }
            (Key::Named(Named::Enter), Page::Accounts) => match unlocked.accounts.target() {
                Some(id) => {
                    unlocked.accounts.selected = Some(id.clone());
                    self.copy(&id)
                }
                None => Task::none(),
            },
            // Typing anywhere on the list starts a search.
            (Key::Character(c), Page::Accounts) if !captured && !command && !modifiers.alt() && !c.chars().any(char::is_control) => {
                unlocked.accounts.query.push_str(c);
                Task::batch([operation::focus(accounts::SEARCH_ID), operation::move_cursor_to_end(accounts::SEARCH_ID)])
            }
            _ => Task::none(),
        }
    }

    pub fn subscription(&self) -> Subscription<Message> {
        let events = event::listen_with(|event, status, _window| {
            let captured = status == event::Status::Captured;
            match event {
                iced::Event::Keyboard(keyboard::Event::KeyPressed { key, modifiers, .. }) => {
                    Some(Message::Key { key, modifiers, captured })
                }
                iced::Event::Window(iced::window::Event::FileDropped(path)) => Some(Message::FileDropped(path)),
                iced::Event::Window(iced::window::Event::Resized(size)) => Some(Message::Resized(size)),
                iced::Event::Window(iced::window::Event::Focused) => Some(Message::Focused(true)),
                iced::Event::Window(iced::window::Event::Unfocused) => Some(Message::Focused(false)),
                iced::Event::Mouse(iced::mouse::Event::ButtonPressed(_) | iced::mouse::Event::WheelScrolled { .. }) => Some(Message::Input),
                _ => None,
            }
        });
        // The clock runs while there is something to count: codes on
        // screen, a countdown, an auto-lock, a clipboard to clear. Closed
        // and idle, the process wakes for nothing.
        let unlocked = matches!(self.screen, Screen::Unlocked(_));
        let needs_clock =
            unlocked || !self.inbox.prompts.is_empty() || self.pending_clear.is_some() || self.toast.is_some() || self.settings_dirty;
        let mut subscriptions = vec![
            events,
            iced::window::close_events().map(Message::WindowClosed),
            self.inbox.subscription().map(Message::Inbox),
            tray::Tray::subscription().map(Message::Tray),
        ];
        if let Some(raise) = &self.raise_on {
            subscriptions.push(Subscription::run_with(raise.clone(), window::requests));
        }
        if needs_clock {
            subscriptions.push(Subscription::run(seconds));
        }
        Subscription::batch(subscriptions)
    }

    pub fn view(&self) -> Element<'_, Message> {
        let content: Element<'_, Message> = match &self.screen {
            Screen::Onboarding(onboarding) => onboarding.view().map(Message::Onboarding),
            Screen::Unlock(unlock) => unlock.view().map(Message::Unlock),
            Screen::Unlocked(unlocked) => match &unlocked.page {
                Page::Accounts => unlocked.accounts.view().map(Message::Accounts),
                Page::Add(add) => add.view().map(Message::Add),
                Page::Preferences(preferences) => {
                    let vault = unlocked.vault.try_lock();
                    let backup_dir = self.backup_dir();
                    let starts_at_login = autostart::wanted(self.settings.start_at_login, self.inbox.has_accounts());
                    let clock = self.inbox.clock.summary();
                    let facts = match &vault {
                        Ok(vault) => preferences::VaultFacts {
                            path: &self.options.vault,
                            has_password: vault.has_password(),
                            has_keyring: vault.has_keyring(),
                            accounts: vault.entries().len(),
                            backup_dir,
                            backup_problem: vault
                                .backup_problem()
                                .map(|p| format!("The last change was saved, but no backup was taken: {p}")),
                            starts_at_login,
                            clock,
                        },
                        Err(_) => preferences::VaultFacts {
                            path: &self.options.vault,
                            has_password: false,
                            has_keyring: false,
                            accounts: unlocked.accounts.cards.len(),
                            backup_dir,
                            backup_problem: None,
                            starts_at_login,
                            clock,
                        },
                    };
                    preferences.view(&self.settings, facts).map(Message::Preferences)
                }
                Page::Import(import) => import.view().map(Message::Import),
                Page::Export(export) => export.view().map(Message::Export),
                Page::Codes(codes) => codes.view().map(Message::Codes),
                Page::Activity => self.inbox.view_activity(self.now).map(Message::Inbox),
            },
        };
        // A sign-in request comes before any page; locked, the unlock
        // screen says how many wait. The banners' places stay in the tree
        // whether or not they show, so a focused field keeps its focus.
        let (content, waiting) = match (&self.screen, self.inbox.view_prompt(self.now)) {
            (Screen::Unlocked(_), Some(prompt)) => (prompt.map(Message::Inbox), None),
            (Screen::Unlock(_), Some(_)) => {
                let waiting = self.inbox.waiting();
                (
                    content,
                    Some(format!("{waiting} sign-in request{} waiting: unlock to answer", if waiting == 1 { " is" } else { "s are" })),
                )
            }
            _ => (content, None),
        };
        let banner = |text_: Option<String>, danger: bool| -> Element<'_, Message> {
            match text_ {
                Some(line) => container(text(line).size(14)).padding([10, 16]).width(Fill).style(style::notice(danger)).into(),
                None => Space::new().into(),
            }
        };
        let content: Element<'_, Message> = column![banner(self.inbox.clock.warning(), true), banner(waiting, false), content].into();
        // The toast floats over the page's bottom edge; its layer is there
        // even when empty, so the page keeps its state (and focus).
        let toast: Element<'_, Message> = match &self.toast {
            Some((message, _)) => container(container(text(message.clone()).size(14)).padding([10, 16]).style(style::toast))
                .align_bottom(Fill)
                .center_x(Fill)
                .padding(20)
                .into(),
            None => Space::new().into(),
        };
        stack![container(content).width(Fill).height(Fill), toast].into()
    }
}

/// The backup folder the settings name, or the default beside the vault.
fn backup_dir(settings: &Settings, vault: &std::path::Path) -> PathBuf {
    settings.backup_dir.clone().unwrap_or_else(|| backup::default_dir(vault))
}

/// Unix seconds, delivered just after each second boundary so codes turn over on time.
fn seconds() -> impl iced::futures::Stream<Item = Message> {
    iced::futures::stream::unfold((), |()| async {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let wait = Duration::from_nanos(1_000_000_000 - u64::from(since_epoch.subsec_nanos())) + Duration::from_millis(5);
        tokio::time::sleep(wait).await;
        Some((Message::Tick(now_unix()), ()))
    })
}

/// A form centred in the window.
fn centered<'a, M: 'a>(content: impl Into<Element<'a, M>>) -> Element<'a, M> {
    container(content).center(Fill).padding(24).into()
}
