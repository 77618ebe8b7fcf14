//! The window: screens, the second-aligned clock, shortcuts, clipboard and auto-lock.
//!
//! Screens follow the screen/Action pattern: each owns its state, `update`
//! returns an `Action`, and this root matches every variant. Time reaches the
//! screens only through `Message::Tick`, so tests drive the clock.

pub mod accounts;
pub mod add;
mod capture;
pub mod codes;
pub mod export;
pub mod import;
pub mod onboarding;
pub mod preferences;
pub mod prompt;
mod style;
pub mod unlock;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use iced::keyboard::{self, Key, Modifiers, key::Named};
use iced::widget::{container, operation, stack, text};
use iced::{Element, Fill, Font, Size, Subscription, Task, Theme, event, window};
use zeroize::Zeroizing;

pub use accounts::{Accounts, Card, Change};
pub use add::{Add, Candidate};
pub use codes::Codes;
pub use export::Export;
pub use import::Import;
pub use preferences::{Preferences, Protection};
pub use unlock::Unlock;

use crate::account::Method;
use crate::push::client::{self as push_client, Answer, Event, Update};
use crate::push::{Link, Shield};
use crate::transfer;
use crate::{backup, otp, uri};
use crate::settings::Settings;
use crate::vault::{self, Id, Kdf, Keyring, Vault};

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

/// Where the window keeps its files.
#[derive(Debug, Clone)]
pub struct Options {
    pub vault: PathBuf,
    pub settings: PathBuf,
}

/// This process's claim to be the one window on its vault (see
/// `crate::instance`); not built on other platforms yet.
#[cfg(unix)]
pub type Instance = crate::instance::Listener;
#[cfg(not(unix))]
pub type Instance = std::convert::Infallible;

/// Opens the window; returns when it closes. While it is open, `instance`
/// (when given) brings it forward for every later start on the same vault.
pub fn run(options: Options, instance: Option<Instance>) -> iced::Result {
    let settings = Settings::load(&options.settings);
    let size = settings.window_size.map(|(w, h)| Size::new(w, h)).unwrap_or(Size::new(600.0, 720.0));
    let icon = style::window_icon();
    #[cfg(unix)]
    let raise = instance.as_ref().and_then(|listener| listener.waiter().ok()).map(|waiter| RaiseOn(Arc::new(waiter)));
    #[cfg(not(unix))]
    let raise: Option<RaiseOn> = None;
    iced::application(
        move || {
            let (mut app, task) = App::new(options.clone(), now_unix());
            app.raise_on = raise.clone();
            (app, task)
        },
        App::update,
        App::view,
    )
        .title(App::title)
        .subscription(App::subscription)
        .theme(App::theme)
        .default_font(Font::with_name("Fira Sans"))
        .window(window::Settings {
            size,
            min_size: Some(Size::new(440.0, 480.0)),
            icon,
            #[cfg(target_os = "linux")]
            platform_specific: window::settings::PlatformSpecific { application_id: APP_ID.into(), ..Default::default() },
            ..window::Settings::default()
        })
        .run()?;
    // The socket goes only once the window has closed.
    drop(instance);
    Ok(())
}

/// Where later starts on the same vault ask this window to come forward.
#[derive(Clone)]
pub struct RaiseOn(#[cfg(unix)] Arc<crate::instance::Waiter>);

/// One waiter per app: the subscription never restarts.
impl std::hash::Hash for RaiseOn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "raise".hash(state);
    }
}

/// `Message::Raise` each time `countersign` is started again on this vault.
/// The socket is blocking, so a thread waits on it.
fn raise_requests(raise: &RaiseOn) -> impl iced::futures::Stream<Item = Message> + use<> {
    let (sender, receiver) = iced::futures::channel::mpsc::unbounded();
    #[cfg(unix)]
    {
        let waiter = raise.0.clone();
        std::thread::spawn(move || {
            while waiter.wait().is_ok() {
                if sender.unbounded_send(Message::Raise).is_err() {
                    break;
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (raise, sender);
    receiver
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
    /// Sign-in requests waiting for an answer, oldest first.
    pub prompts: VecDeque<prompt::Prompt>,
    /// Recent sign-in requests and their outcomes, newest first.
    pub activity: Vec<prompt::Activity>,
    /// Each work or school account's connection.
    connections: HashMap<Id, Connection>,
    shields: HashMap<Id, Shield>,
    /// Whether the window has the input focus (a request in the background
    /// also raises a desktop notification).
    pub focused: bool,
    /// Set when this window is the one window on its vault.
    raise_on: Option<RaiseOn>,
    /// The desktop notification shown for each request still in the queue.
    notifications: HashMap<String, u32>,
    /// The privacyIDEA token the activity page asks about removing.
    confirm_remove_token: Option<Id>,
}

/// A work or school account's link to its server, as the window knows it.
#[derive(Debug, Clone)]
pub enum Connection {
    Connecting,
    Connected(tokio::sync::mpsc::Sender<Answer>),
    Offline { reason: String, retry_at: i64 },
}

/// What the push subscription of one account or token is keyed by.
#[derive(Debug, Clone)]
pub struct PushTarget {
    pub id: Id,
    pub channel: Channel,
}

/// Where a push subscription gets its requests.
#[derive(Debug, Clone)]
pub enum Channel {
    /// A work or school account: a WebSocket to Countersign's server.
    Countersign(Link),
    /// A privacyIDEA PUSH token, polled every interval.
    PrivacyIdea(crate::privacyidea::Token, Duration),
}

impl std::hash::Hash for PushTarget {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
        match &self.channel {
            Channel::Countersign(link) => {
                link.device_id.hash(state);
                link.endpoint.hash(state);
            }
            Channel::PrivacyIdea(token, interval) => {
                token.serial.hash(state);
                token.url.hash(state);
                interval.hash(state);
            }
        }
    }
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
    /// The work or school accounts to keep connected (cached at each refresh).
    pub push_targets: Vec<PushTarget>,
    /// The privacyIDEA tokens (id, title), for the activity page.
    pub tokens: Vec<(Id, String)>,
}

pub enum Page {
    Accounts,
    Add(Add),
    Settings(Preferences),
    Import(Import),
    Export(Export),
    /// Secrets shown as QR codes (one account, or a Google export).
    Codes(Codes),
    /// Recent sign-in requests.
    Activity,
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
    Key { key: Key, modifiers: Modifiers, captured: bool },
    FileDropped(PathBuf),
    Resized(Size),
    Focused(bool),
    /// Come to the front: `countersign` was started again on this vault, or
    /// a sign-in request's notification was clicked.
    Raise,
    /// The desktop notification (its id) shown for this request.
    Notified(String, u32),
    Onboarding(onboarding::Message),
    Unlock(unlock::Message),
    Accounts(accounts::Message),
    Add(add::Message),
    Settings(preferences::Message),
    Import(import::Message),
    Export(export::Message),
    Codes(codes::Message),
    /// An update from one work or school account's connection.
    Push(Id, Update),
    Prompt(prompt::Message),
    /// An answer to this request went out (the verdict follows as a push event), or why not.
    PromptSent(String, Result<(), String>),
    Activity(prompt::ActivityMessage),
    Saved(Result<String, vault::Error>),
    /// The vault's answer to the Add page's save, for that page if it is still open.
    Imported(Result<Vec<vault::Imported>, String>),
    ClipboardChecked(bool),
}

impl App {
    /// The app at Unix time `now`: onboarding with no vault, else unlock.
    pub fn new(options: Options, now: u64) -> (Self, Task<Message>) {
        let settings = Settings::load(&options.settings);
        let (screen, task) = if options.vault.exists() {
            let (unlock, task) = Unlock::new(options.vault.clone(), true, settings.backup_policy(&options.vault), backup_dir(&settings, &options.vault));
            (Screen::Unlock(unlock), task.map(Message::Unlock))
        } else {
            let (onboarding, task) = onboarding::Onboarding::new(options.vault.clone());
            (Screen::Onboarding(onboarding), task.map(Message::Onboarding))
        };
        let app = App {
            options,
            settings,
            screen,
            now,
            last_input: now,
            toast: None,
            pending_clear: None,
            settings_dirty: false,
            prompts: VecDeque::new(),
            activity: Vec::new(),
            connections: HashMap::new(),
            shields: HashMap::new(),
            focused: true,
            raise_on: None,
            notifications: HashMap::new(),
            confirm_remove_token: None,
        };
        (app, task)
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

    pub fn update(&mut self, message: Message) -> Task<Message> {
        let task = self.handle(message);
        // A request that left the queue (answered here or elsewhere, expired,
        // the vault locked) takes its notification off the screen.
        let gone: Vec<String> = self.notifications.keys().filter(|id| !self.prompts.iter().any(|p| &p.challenge.id == *id)).cloned().collect();
        let closes = gone.into_iter().filter_map(|id| self.notifications.remove(&id)).map(|notification| Task::future(close_notification(notification)).discard());
        Task::batch(std::iter::once(task).chain(closes))
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
                    Page::Accounts | Page::Settings(_) | Page::Import(_) | Page::Export(_) | Page::Codes(_) | Page::Activity => Task::none(),
                }
            }
            Message::Focused(focused) => {
                self.focused = focused;
                Task::none()
            }
            Message::Notified(challenge, notification) => {
                self.notifications.insert(challenge, notification);
                Task::none()
            }
            Message::Raise => {
                let field = self.prompts.front().and_then(|prompt| prompt_field(&prompt.challenge)).map_or_else(Task::none, operation::focus);
                // Restored before it is focused: X11 does not focus an iconic
                // window. Where the desktop refuses focus (Wayland without an
                // activation token), the attention hint still flags it.
                let front = window::latest().and_then(|id| {
                    window::minimize(id, false).chain(window::gain_focus(id)).chain(window::request_user_attention(id, Some(window::UserAttention::Informational)))
                });
                Task::batch([front, field])
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
                    accounts::Action::OpenSettings => {
                        self.show_page(Page::Settings(Preferences::new(&self.backup_dir())));
                        Task::none()
                    }
                    accounts::Action::ShowQr(id) => {
                        self.show_account_qr(&id);
                        Task::none()
                    }
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
                    self.toast = Some((match result {
                        Ok(title) => format!("Added {title}"),
                        Err(error) => format!("Not added: {error}"),
                    }, self.now + 8));
                    self.refresh();
                    return Task::none();
                }
                let Screen::Unlocked(Unlocked { page: Page::Add(add), vault, .. }) = &mut self.screen else { return Task::none() };
                match add.update(message) {
                    add::Action::None => Task::none(),
                    add::Action::Run(task) => task.map(Message::Add),
                    add::Action::Save(accounts) => {
                        let (vault, now) = (vault.clone(), self.now);
                        Task::perform(
                            blocking(move || {
                                let mut vault = vault.lock().map_err(|_| "the vault lock was poisoned".to_owned())?;
                                vault.import(accounts, now, crate::vault::Duplicates::Skip).map_err(|e| e.to_string())
                            }),
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
                        Task::perform(activate(vault, code, url, now), |result| Message::Add(add::Message::Activated(result)))
                    }
                    add::Action::Enroll { enrollment, read_at } => {
                        let (vault, now) = (vault.clone(), self.now);
                        Task::perform(enroll_token(vault, enrollment, read_at, now), |result| Message::Add(add::Message::Enrolled(result)))
                    }
                }
            }
            Message::Settings(message) => {
                let Screen::Unlocked(Unlocked { page: Page::Settings(preferences), vault, accounts, .. }) = &mut self.screen else { return Task::none() };
                match preferences.update(message) {
                    preferences::Action::None => Task::none(),
                    preferences::Action::Settings(change) => {
                        change(&mut self.settings);
                        accounts.hide_codes = self.settings.hide_codes;
                        if let Ok(mut vault) = vault.lock() {
                            vault.set_backups(self.settings.backup_policy(&self.options.vault));
                        }
                        self.settings_dirty = true;
                        self.save_settings();
                        Task::none()
                    }
                    preferences::Action::Run(task) => task.map(Message::Settings),
                    preferences::Action::VerifyBackup => {
                        let vault = vault.clone();
                        Task::perform(blocking(move || verify_backup(&vault)), |result| Message::Settings(preferences::Message::BackupVerified(result)))
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
                        let vault = vault.clone();
                        Task::perform(blocking(move || protect(&vault, protection)), |result| Message::Settings(preferences::Message::ProtectionChanged(result)))
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
                        Task::perform(blocking(move || save_export(&vault, format, password, &path)), |result| Message::Export(export::Message::Saved(result)))
                    }
                    export::Action::ShowGoogleCodes => {
                        self.show_google_codes();
                        Task::none()
                    }
                    export::Action::Back => {
                        self.show_page(Page::Settings(Preferences::new(&self.backup_dir())));
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
            Message::Push(id, update) => self.push_update(id, update),
            Message::Prompt(message) => {
                let Some(prompt) = self.prompts.front_mut() else { return Task::none() };
                match prompt.update(message) {
                    prompt::Action::None => Task::none(),
                    prompt::Action::Answer { decision, number, password, presence } => {
                        let answer = Answer { challenge_id: prompt.challenge.id.clone(), decision, number, user_verified: password.is_some(), presence };
                        let sender = match self.connections.get(&prompt.account) {
                            Some(Connection::Connected(sender)) => sender.clone(),
                            _ => {
                                prompt.busy = false;
                                prompt.error = Some("Not connected to your organisation's server right now; it is retrying. Try again in a moment.".into());
                                return Task::none();
                            }
                        };
                        let path = self.options.vault.clone();
                        let challenge_id = prompt.challenge.id.clone();
                        Task::perform(
                            async move {
                                if let Some(password) = password {
                                    blocking(move || vault::Locked::read(&path)?.unlock_with_password(&password).map(|_| ())).await.map_err(|e| match e {
                                        vault::Error::WrongPassword => "Wrong password.".to_owned(),
                                        other => other.to_string(),
                                    })?;
                                }
                                sender.send(answer).await.map_err(|_| "The connection closed; try again.".to_owned())
                            },
                            move |result| Message::PromptSent(challenge_id.clone(), result),
                        )
                    }
                }
            }
            Message::PromptSent(id, result) => {
                if let (Err(error), Some(prompt)) = (result, self.prompts.iter_mut().find(|p| p.challenge.id == id)) {
                    prompt.busy = false;
                    prompt.error = Some(error);
                }
                Task::none()
            }
            Message::Activity(prompt::ActivityMessage::Back) => {
                self.confirm_remove_token = None;
                self.show_page(Page::Accounts);
                Task::none()
            }
            Message::Activity(prompt::ActivityMessage::RemoveToken(id)) => {
                self.confirm_remove_token = Some(id);
                Task::none()
            }
            Message::Activity(prompt::ActivityMessage::CancelRemove) => {
                self.confirm_remove_token = None;
                Task::none()
            }
            Message::Activity(prompt::ActivityMessage::ConfirmRemove) => {
                let (Some(id), Screen::Unlocked(unlocked)) = (self.confirm_remove_token.take(), &self.screen) else { return Task::none() };
                let vault = unlocked.vault.clone();
                Task::perform(
                    blocking(move || {
                        let mut vault = vault.lock().map_err(|_| vault::Error::Encode("the vault lock was poisoned".into()))?;
                        vault.remove_push_token(&id).map(|removed| format!("Removed {}", removed.token.title()))
                    }),
                    Message::Saved,
                )
            }
            Message::Saved(result) => {
                match result {
                    Ok(text) => self.toast = Some((text, self.now + 3)),
                    Err(error) => self.toast = Some((format!("Not saved: {error}"), self.now + 8)),
                }
                self.refresh();
                Task::none()
            }
            Message::Imported(result) => {
                // The list is reloaded whatever the page: the user may have
                // left the Add page while the save ran.
                self.refresh();
                match &mut self.screen {
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
                }
            }
            Message::ClipboardChecked(still_ours) => {
                if still_ours {
                    return iced::clipboard::write(String::new());
                }
                Task::none()
            }
        }
    }

    fn unlocked(&mut self, vault: SharedVault) -> Task<Message> {
        if let Ok(mut vault) = vault.lock() {
            vault.set_backups(self.settings.backup_policy(&self.options.vault));
        }
        let mut accounts = Accounts::default();
        accounts.hide_codes = self.settings.hide_codes;
        self.screen = Screen::Unlocked(Unlocked { vault, accounts, page: Page::Accounts, push_targets: Vec::new(), tokens: Vec::new() });
        self.last_input = self.now;
        self.refresh();
        Task::none()
    }

    /// Drops the vault (and with it every decrypted secret) and shows the unlock screen.
    pub fn lock(&mut self) -> Task<Message> {
        // Requests cannot be answered while locked; they stay pending on the server.
        self.prompts.clear();
        self.connections.clear();
        let (unlock, task) = Unlock::new(self.options.vault.clone(), false, self.settings.backup_policy(&self.options.vault), self.backup_dir());
        self.screen = Screen::Unlock(unlock);
        task.map(Message::Unlock)
    }

    fn show_page(&mut self, page: Page) {
        self.confirm_remove_token = None;
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
                Task::perform(
                    blocking(move || {
                        let mut vault = vault.lock().map_err(|_| "the vault lock was poisoned".to_owned())?;
                        transfer::import(&mut vault, &contents, duplicates, now).map_err(|e| e.to_string())
                    }),
                    |result| Message::Import(import::Message::Imported(result)),
                )
            }
            import::Action::Done => {
                self.show_page(Page::Accounts);
                self.refresh();
                Task::none()
            }
            import::Action::Back => {
                self.show_page(Page::Settings(Preferences::new(&self.backup_dir())));
                Task::none()
            }
        }
    }

    /// The per-account QR page; it asks before drawing the secret.
    fn show_account_qr(&mut self, id: &Id) {
        let Screen::Unlocked(unlocked) = &mut self.screen else { return };
        let Ok(vault) = unlocked.vault.lock() else { return };
        let Some(entry) = vault.entries().iter().find(|e| &e.id == id) else { return };
        let title = entry.account.title();
        let texts = vec![(format!("Scan with another authenticator to add {title}"), Zeroizing::new(uri::format(&entry.account)))];
        let warning = format!("This shows the secret key of {title} as a QR code. Anyone who sees it, or a screenshot of it, can make this account's codes.");
        let page = Codes::new(format!("QR code: {title}"), warning, texts, Vec::new());
        drop(vault);
        match page {
            Ok(page) => unlocked.page = Page::Codes(page),
            Err(error) => self.toast = Some((error.to_string(), self.now + 8)),
        }
    }

    /// The Google Authenticator export codes, shown in the window.
    fn show_google_codes(&mut self) {
        let Screen::Unlocked(unlocked) = &mut self.screen else { return };
        let Ok(vault) = unlocked.vault.lock() else { return };
        let result = transfer::google_codes(vault.entries());
        drop(vault);
        let page = result.and_then(|(texts, left_out)| {
            let count = texts.len();
            let texts = texts.into_iter().enumerate().map(|(i, text)| (format!("In Google Authenticator: Transfer accounts → Import accounts, then scan code {} of {count}", i + 1), Zeroizing::new(text))).collect();
            let notes = left_out.into_iter().map(|(title, why)| format!("Not included: {title} ({why}).")).collect();
            Codes::new("Google Authenticator codes".into(), "These codes hold the secret keys of your accounts. Show them only to your own phone, with no one watching and no screen recording.".into(), texts, notes)
                .map(|codes| Codes { from_export: true, ..codes })
        });
        match page {
            Ok(page) => unlocked.page = Page::Codes(page),
            Err(error) => {
                if let Page::Export(export) = &mut unlocked.page {
                    export.error = Some(error.to_string());
                }
            }
        }
    }

    /// One account's connection changed, or a request or verdict arrived.
    fn push_update(&mut self, id: Id, update: Update) -> Task<Message> {
        // A connection closing as the vault locks may still speak: nothing
        // is shown or notified while locked.
        if !matches!(self.screen, Screen::Unlocked(_)) {
            return Task::none();
        }
        let status = match &update {
            Update::Connecting => Some("Push: connecting…".to_owned()),
            Update::Connected(_) => Some("Push: connected".to_owned()),
            Update::Disconnected { reason, retry_in } => Some(format!("Push: offline, retrying in {retry_in} s ({reason})")),
            Update::Event(_) => None,
        };
        if let (Some(status), Screen::Unlocked(unlocked)) = (status, &mut self.screen) {
            unlocked.accounts.push_status.insert(id.clone(), status);
        }
        match update {
            Update::Connecting => {
                self.connections.insert(id, Connection::Connecting);
            }
            Update::Connected(sender) => {
                self.connections.insert(id, Connection::Connected(sender));
            }
            Update::Disconnected { reason, retry_in } => {
                // An answer in flight may be lost with the connection: let the user answer again.
                for prompt in self.prompts.iter_mut().filter(|p| p.account == id && p.busy) {
                    prompt.busy = false;
                    prompt.error = Some("The connection dropped before the server confirmed; answer again once it is back.".into());
                }
                self.connections.insert(id, Connection::Offline { reason, retry_at: self.now as i64 + retry_in as i64 });
            }
            Update::Event(Event::Challenge(challenge)) => {
                let known = self.prompts.iter().any(|p| p.challenge.id == challenge.id) || self.activity.iter().any(|a| a.id == challenge.id && a.outcome != "Waiting");
                if known || challenge.seconds_left(self.now as i64) == 0 {
                    return Task::none();
                }
                let shield = self.shields.entry(id.clone()).or_default();
                let flagged = shield.observe(challenge.created_at).then(|| shield.warning());
                if !self.activity.iter().any(|a| a.id == challenge.id) {
                    self.activity.insert(0, prompt::Activity { id: challenge.id.clone(), at: challenge.created_at, app: challenge.app.clone(), user: challenge.user.clone(), location: challenge.location.clone(), outcome: "Waiting".into() });
                    self.activity.truncate(100);
                }
                let focus = prompt_field(&challenge);
                let notify = if self.focused { Task::none() } else { notify(&challenge) };
                self.prompts.push_back(prompt::Prompt::new(id, challenge, flagged));
                let focus = match focus {
                    Some(field) if self.prompts.len() == 1 => operation::focus(field),
                    _ => Task::none(),
                };
                return Task::batch([notify, focus]);
            }
            Update::Event(Event::Result { challenge_id, accepted, status, reason }) => {
                let outcome = match (accepted, status.as_str()) {
                    (true, "approved") if !reason.is_empty() => format!("Approved: {reason}"),
                    (true, "approved") => "Approved".to_owned(),
                    (true, "denied") if !reason.is_empty() => format!("Denied: {reason}"),
                    (true, "denied") => "Denied".to_owned(),
                    (true, "reported") => "Reported: it wasn't me".to_owned(),
                    (true, "closed") => "Closed: no longer open on the server".to_owned(),
                    (_, other) => format!("Not recorded: {reason}{}", if other.is_empty() { String::new() } else { format!(" ({other})") }),
                };
                // A refusal while the request is still open (a PIN was
                // missing, the server failed) leaves the prompt to answer again.
                if !accepted && matches!(status.as_str(), "pending" | "") {
                    if let Some(prompt) = self.prompts.iter_mut().find(|p| p.challenge.id == challenge_id || challenge_id.is_empty() && p.busy) {
                        prompt.busy = false;
                        prompt.error = Some(format!("Not recorded: {reason}"));
                    }
                    return Task::none();
                }
                self.toast = Some((outcome.clone(), self.now + 4));
                let next = self.prompts.iter().position(|p| p.challenge.id == challenge_id);
                self.prompts.retain(|p| p.challenge.id != challenge_id);
                self.set_outcome(&challenge_id, &outcome);
                // The next request in the queue gets the keyboard.
                if next == Some(0)
                    && let Some(prompt) = self.prompts.front()
                {
                    if prompt.challenge.number_matching {
                        return operation::focus(prompt::NUMBER_ID);
                    }
                    if prompt.challenge.pin_required {
                        return operation::focus(prompt::PIN_ID);
                    }
                }
            }
            Update::Event(Event::Alive) => {}
            Update::Event(Event::Dropped(reason)) => {
                // A forged or misaddressed message: never shown, only logged.
                eprintln!("countersign: {reason}");
            }
        }
        Task::none()
    }

    fn set_outcome(&mut self, challenge_id: &str, outcome: &str) {
        if let Some(item) = self.activity.iter_mut().find(|a| a.id == challenge_id) {
            item.outcome = outcome.to_owned();
        }
    }

    fn open_add(&mut self) -> Task<Message> {
        let (add, task) = Add::new();
        self.show_page(Page::Add(add));
        task.map(Message::Add)
    }

    /// Recomputes the cards for the current second.
    fn refresh(&mut self) {
        let Screen::Unlocked(unlocked) = &mut self.screen else { return };
        // A save in progress holds the lock for milliseconds; skip this tick
        // rather than block the UI thread.
        if let Ok(vault) = unlocked.vault.try_lock() {
            unlocked.accounts.refresh(vault.entries(), self.now);
            let interval = self.settings.poll_interval();
            unlocked.push_targets = vault
                .entries()
                .iter()
                .filter_map(|e| e.push.clone().map(|link| PushTarget { id: e.id.clone(), channel: Channel::Countersign(link) }))
                .chain(vault.push_tokens().iter().map(|t| PushTarget { id: t.id.clone(), channel: Channel::PrivacyIdea(t.token.clone(), interval) }))
                .collect();
            unlocked.tokens = vault.push_tokens().iter().map(|t| (t.id.clone(), t.token.title())).collect();
            unlocked.accounts.push_tokens = unlocked.tokens.len();
            // An account or token that was removed takes its requests, its
            // connection and its notifications with it.
            let targets: Vec<Id> = unlocked.push_targets.iter().map(|t| t.id.clone()).collect();
            let gone: Vec<String> = self.prompts.iter().filter(|p| !targets.contains(&p.account)).map(|p| p.challenge.id.clone()).collect();
            for id in &gone {
                if let Some(activity) = self.activity.iter_mut().find(|a| &a.id == id && a.outcome == "Waiting") {
                    activity.outcome = "Removed with its account".into();
                }
            }
            self.prompts.retain(|p| targets.contains(&p.account));
            self.connections.retain(|id, _| targets.contains(id));
            unlocked.accounts.push_status.retain(|id, _| targets.contains(id));
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
        // Requests that ran out of time leave the queue and say so in the activity list.
        let now_signed = now as i64;
        while let Some(index) = self.prompts.iter().position(|p| p.challenge.seconds_left(now_signed) == 0) {
            if let Some(expired) = self.prompts.remove(index) {
                self.set_outcome(&expired.challenge.id, "Expired");
            }
        }
        let idle = now.saturating_sub(self.last_input);
        if matches!(self.screen, Screen::Unlocked(_)) && self.settings.auto_lock_seconds > 0 && idle >= self.settings.auto_lock_seconds {
            let lock = self.lock();
            return Task::batch([lock, self.clear_clipboard_if_due(now)]);
        }
        self.refresh();
        self.clear_clipboard_if_due(now)
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

    /// Copies an account's current code and schedules the clipboard clear.
    pub fn copy(&mut self, id: &Id) -> Task<Message> {
        let Screen::Unlocked(unlocked) = &self.screen else { return Task::none() };
        let Ok(vault) = unlocked.vault.lock() else { return Task::none() };
        let Some(entry) = vault.entries().iter().find(|e| &e.id == id) else { return Task::none() };
        let code = Zeroizing::new(otp::code(&entry.account, self.now).value);
        let title = entry.account.title();
        drop(vault);
        let clear = self.settings.clipboard_clear_seconds;
        self.toast = Some((
            if clear > 0 { format!("Copied the code for {title} · the clipboard clears in {clear} s") } else { format!("Copied the code for {title}") },
            self.now + 3,
        ));
        self.pending_clear = (clear > 0).then(|| PendingClear { code: code.clone(), at: self.now + clear });
        iced::clipboard::write(code.to_string())
    }

    fn change(&mut self, change: Change) -> Task<Message> {
        let Screen::Unlocked(unlocked) = &self.screen else { return Task::none() };
        let vault = unlocked.vault.clone();
        Task::perform(
            blocking(move || {
                let mut vault = vault.lock().map_err(|_| vault::Error::Encode("the vault lock was poisoned".into()))?;
                apply(&mut vault, change)
            }),
            Message::Saved,
        )
    }

    fn shortcut(&mut self, key: Key, modifiers: Modifiers, captured: bool) -> Task<Message> {
        let Screen::Unlocked(unlocked) = &mut self.screen else { return Task::none() };
        let command = modifiers.command();
        // A sign-in request covers the page: its keys (Enter in the number
        // box) must not reach the list underneath, which would copy a code.
        if !self.prompts.is_empty() {
            return match key.as_ref() {
                Key::Character("l") if command => self.lock(),
                Key::Named(Named::Tab) if !captured => {
                    if modifiers.shift() { operation::focus_previous() } else { operation::focus_next() }
                }
                _ => Task::none(),
            };
        }
        match (key.as_ref(), &mut unlocked.page) {
            (Key::Character("l"), _) if command => self.lock(),
            (Key::Character("n"), _) if command => self.open_add(),
            (Key::Character(","), page) if command => {
                *page = Page::Settings(Preferences::new(&backup_dir(&self.settings, &self.options.vault)));
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
            (Key::Named(Named::Escape), Page::Settings(_) | Page::Codes(_) | Page::Activity) => {
                unlocked.page = Page::Accounts;
                Task::none()
            }
            (Key::Named(Named::Escape), Page::Import(_) | Page::Export(_)) => {
                unlocked.page = Page::Settings(Preferences::new(&backup_dir(&self.settings, &self.options.vault)));
                Task::none()
            }
            (Key::Named(Named::Escape), Page::Accounts) => {
                unlocked.accounts.escape();
                Task::none()
            }
            (Key::Named(Named::Tab), _) if !captured => {
                if modifiers.shift() { operation::focus_previous() } else { operation::focus_next() }
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
            (Key::Named(Named::Enter), Page::Accounts) if unlocked.accounts.confirm_delete.is_some() => self.update(Message::Accounts(accounts::Message::ConfirmDelete)),
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
                iced::Event::Keyboard(keyboard::Event::KeyPressed { key, modifiers, .. }) => Some(Message::Key { key, modifiers, captured }),
                iced::Event::Window(window::Event::FileDropped(path)) => Some(Message::FileDropped(path)),
                iced::Event::Window(window::Event::Resized(size)) => Some(Message::Resized(size)),
                iced::Event::Window(window::Event::Focused) => Some(Message::Focused(true)),
                iced::Event::Window(window::Event::Unfocused) => Some(Message::Focused(false)),
                iced::Event::Mouse(iced::mouse::Event::ButtonPressed(_) | iced::mouse::Event::WheelScrolled { .. }) => Some(Message::Input),
                _ => None,
            }
        });
        let needs_clock = matches!(self.screen, Screen::Unlocked(_)) || self.pending_clear.is_some() || self.toast.is_some() || self.settings_dirty;
        let mut subscriptions = vec![events];
        if let Some(raise) = &self.raise_on {
            subscriptions.push(Subscription::run_with(raise.clone(), raise_requests));
        }
        if needs_clock {
            subscriptions.push(Subscription::run(seconds));
        }
        // One connection per work or school account while unlocked.
        if let Screen::Unlocked(unlocked) = &self.screen {
            for target in &unlocked.push_targets {
                subscriptions.push(Subscription::run_with(target.clone(), |target: &PushTarget| {
                    let id = target.id.clone();
                    let updates: std::pin::Pin<Box<dyn iced::futures::Stream<Item = Update> + Send>> = match &target.channel {
                        Channel::Countersign(link) => Box::pin(push_client::watch(link.clone())),
                        Channel::PrivacyIdea(token, interval) => Box::pin(crate::privacyidea::client::watch(token.clone(), *interval)),
                    };
                    iced::futures::StreamExt::map(updates, move |update| Message::Push(id.clone(), update))
                }));
            }
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
                Page::Settings(preferences) => {
                    let vault = unlocked.vault.try_lock();
                    let backup_dir = self.backup_dir();
                    let facts = match &vault {
                        Ok(vault) => preferences::VaultFacts {
                            path: &self.options.vault,
                            has_password: vault.has_password(),
                            has_keyring: vault.has_keyring(),
                            accounts: vault.entries().len(),
                            backup_dir,
                            backup_problem: vault.backup_problem().map(|p| format!("The last change was saved, but no backup was taken: {p}")),
                        },
                        Err(_) => preferences::VaultFacts { path: &self.options.vault, has_password: false, has_keyring: false, accounts: unlocked.accounts.cards.len(), backup_dir, backup_problem: None },
                    };
                    preferences.view(&self.settings, facts).map(Message::Settings)
                }
                Page::Import(import) => import.view().map(Message::Import),
                Page::Export(export) => export.view().map(Message::Export),
                Page::Codes(codes) => codes.view().map(Message::Codes),
                Page::Activity => {
                    let tokens: Vec<prompt::TokenRow> = unlocked
                        .tokens
                        .iter()
                        .map(|(id, title)| prompt::TokenRow {
                            id: id.clone(),
                            title: title.clone(),
                            state: match self.connections.get(id) {
                                Some(Connection::Connected(_)) => "Connected".into(),
                                Some(Connection::Offline { reason, retry_at }) => format!("Offline: {reason} (retrying in {} s)", (*retry_at - self.now as i64).max(0)),
                                Some(Connection::Connecting) | None => "Connecting…".into(),
                            },
                        })
                        .collect();
                    prompt::activity_view(&self.activity, &tokens, self.confirm_remove_token.as_ref()).map(Message::Activity)
                }
            },
        };
        // A sign-in request comes before any page.
        let content = match (&self.screen, self.prompts.front()) {
            (Screen::Unlocked(_), Some(prompt)) => prompt.view(self.now as i64, self.prompts.len() - 1).map(Message::Prompt),
            _ => content,
        };
        match &self.toast {
            Some((message, _)) => {
                let toast = container(text(message.clone()).size(14)).padding([10, 16]).style(style::toast);
                // The page fills the window so the toast sits at its bottom edge,
                // whatever the page's own height.
                stack![container(content).width(Fill).height(Fill), container(toast).align_bottom(Fill).center_x(Fill).padding(20)].into()
            }
            None => content,
        }
    }
}

/// A vault change from the accounts list, applied under the vault's file lock.
fn apply(vault: &mut Vault, change: Change) -> Result<String, vault::Error> {
    match change {
        Change::Rename { id, issuer, name } => vault
            .modify(&id, |account| {
                account.issuer = issuer.trim().to_owned();
                account.label_issuer = None;
                account.name = name.trim().to_owned();
            })
            .map(|()| "Account renamed".to_owned()),
        Change::Remove(id) => vault.remove(&id).map(|entry| format!("Deleted {}", entry.account.title())),
        Change::Move { id, up } => vault
            .update(|entries| {
                let index = entries.iter().position(|e| e.id == id).ok_or_else(|| vault::Error::NoSuchAccount(id.clone()))?;
                let target = if up { index.checked_sub(1) } else { Some(index + 1).filter(|t| *t < entries.len()) };
                if let Some(target) = target {
                    entries.swap(index, target);
                }
                Ok(())
            })
            .map(|()| "Order saved".to_owned()),
        Change::NextHotp(id) => vault
            .modify(&id, |account| {
                if let Method::Hotp { counter } = &mut account.method {
                    *counter = counter.wrapping_add(1);
                }
            })
            .map(|()| "Next code".to_owned()),
    }
}

/// The backup folder the settings name, or the default beside the vault.
fn backup_dir(settings: &Settings, vault: &std::path::Path) -> PathBuf {
    settings.backup_dir.clone().unwrap_or_else(|| backup::default_dir(vault))
}

/// The prompt's field that takes the keyboard: the number to match, else the PIN.
fn prompt_field(challenge: &crate::push::Challenge) -> Option<&'static str> {
    if challenge.number_matching {
        Some(prompt::NUMBER_ID)
    } else if challenge.pin_required {
        Some(prompt::PIN_ID)
    } else {
        None
    }
}

/// A desktop notification for a request that arrived while the window was
/// in the background; clicking it brings the window, and the prompt in it,
/// forward. No notification service (a bare session, CI) is not an error:
/// the prompt is in the window either way.
fn notify(challenge: &crate::push::Challenge) -> Task<Message> {
    let summary = format!("Approve sign-in to {}?", challenge.app);
    let body = format!("{} · {}{}", challenge.organization, challenge.user, if challenge.location.is_empty() { String::new() } else { format!(" · {}", challenge.location) });
    let seconds = challenge.seconds_left(now_unix() as i64).clamp(1, 600) as u32;
    let challenge_id = challenge.id.clone();
    // The waiting thread reports the notification's id, then the click. It
    // is detached, not a runtime's blocking task: a notification still on
    // screen must not keep the process alive after the window closes.
    let (sender, receiver) = iced::futures::channel::mpsc::unbounded();
    let spawned = std::thread::Builder::new().name("notification".into()).spawn(move || {
        // notify-rust unwraps D-Bus errors while waiting: a broken session
        // bus must not take the window down with it.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| show_notification(&summary, &body, seconds, &challenge_id, &sender)));
    });
    match spawned {
        Ok(_) => Task::run(receiver, |message| message),
        Err(_) => Task::none(),
    }
}

/// Shows one request's notification, reports its id, and waits for a click.
#[cfg(all(unix, not(target_os = "macos")))]
fn show_notification(summary: &str, body: &str, seconds: u32, challenge_id: &str, sender: &iced::futures::channel::mpsc::UnboundedSender<Message>) {
    let shown = notify_rust::Notification::new()
        .appname("Countersign")
        .summary(summary)
        .body(body)
        .icon(APP_ID)
        .hint(notify_rust::Hint::DesktopEntry(APP_ID.into()))
        // "default" is the click on the notification itself.
        .action("default", "Show")
        .timeout(notify_rust::Timeout::Milliseconds(seconds * 1000))
        .show();
    let Ok(handle) = shown else { return };
    let _ = sender.unbounded_send(Message::Notified(challenge_id.to_owned(), handle.id()));
    // Waits until it is clicked or closed: it expires with the request, and
    // is closed when the request leaves the queue.
    handle.wait_for_action(|action| {
        if action == "default" {
            let _ = sender.unbounded_send(Message::Raise);
        }
    });
}

/// Elsewhere notify-rust can only show it: no id, no click.
#[cfg(not(all(unix, not(target_os = "macos"))))]
fn show_notification(summary: &str, body: &str, _seconds: u32, _challenge_id: &str, _sender: &iced::futures::channel::mpsc::UnboundedSender<Message>) {
    let _ = notify_rust::Notification::new().appname("Countersign").summary(summary).body(body).show();
}

/// Takes a request's notification off the screen (its waiting thread then ends).
#[cfg(all(unix, not(target_os = "macos")))]
async fn close_notification(id: u32) {
    let Ok(connection) = zbus::Connection::session().await else { return };
    let _ = connection
        .call_method(Some("org.freedesktop.Notifications"), "/org/freedesktop/Notifications", Some("org.freedesktop.Notifications"), "CloseNotification", &(id,))
        .await;
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
async fn close_notification(_id: u32) {}

/// Finishes a privacyIDEA enrollment (an RSA-4096 key, sent to the server)
/// and keeps the token.
async fn enroll_token(vault: SharedVault, enrollment: crate::privacyidea::Enrollment, read_at: i64, now: u64) -> Result<String, String> {
    let token = crate::privacyidea::client::enroll(enrollment, read_at, now as i64).await.map_err(|e| e.to_string())?;
    blocking(move || {
        let mut vault = vault.lock().map_err(|_| "the vault lock was poisoned".to_owned())?;
        let title = token.title();
        vault.add_push_token(token, now).map(|_| title).map_err(|e| e.to_string())
    })
    .await
}

/// Activates a work or school account and keeps it with its push link.
async fn activate(vault: SharedVault, code: String, url: String, now: u64) -> Result<String, String> {
    let device = std::env::var("HOSTNAME").unwrap_or_else(|_| "Countersign desktop".into());
    let (account, link) = push_client::activate(&url, &code, &device).await.map_err(|e| e.to_string())?;
    blocking(move || {
        let mut vault = vault.lock().map_err(|_| "the vault lock was poisoned".to_owned())?;
        let title = account.title();
        vault.add_push(account, link, now).map(|_| title).map_err(|e| e.to_string())
    })
    .await
}

/// Verifies the newest backup and records it in the backup folder.
fn verify_backup(vault: &SharedVault) -> Result<backup::Verified, String> {
    let mut vault = vault.lock().map_err(|_| "the vault lock was poisoned".to_owned())?;
    let (newest, accounts) = vault.verify_backup().map_err(|e| e.to_string())?;
    let file = newest.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let verified = backup::Verified { file, accounts, at: now_unix() as i64 };
    if let Some(policy) = vault.backups() {
        backup::record(&policy.dir, &verified).map_err(|e| e.to_string())?;
    }
    Ok(verified)
}

/// Writes an export chosen on the Export page.
fn save_export(vault: &SharedVault, format: transfer::ExportFormat, password: Option<crate::secret::Password>, path: &std::path::Path) -> Result<String, String> {
    let vault = vault.lock().map_err(|_| "the vault lock was poisoned".to_owned())?;
    let export = transfer::export(format, vault.entries(), password.as_ref()).map_err(|e| e.to_string())?;
    let written = transfer::save(&export, path).map_err(|e| e.to_string())?;
    let exported = vault.entries().len() - export.left_out.len();
    let mut info = format!("Exported {exported} of {} accounts to {}.", vault.entries().len(), if written.len() == 1 { written[0].display().to_string() } else { format!("{} images in {}", written.len(), path.display()) });
    for (title, why) in &export.left_out {
        info.push_str(&format!(" Left out {title}: {why}."));
    }
    Ok(info)
}

/// A change of password or keyring slot, run off the UI thread (Argon2id).
fn protect(vault: &SharedVault, protection: Protection) -> Result<String, String> {
    let mut vault = vault.lock().map_err(|_| "the vault lock was poisoned".to_owned())?;
    let keyring = || Keyring::system().map_err(|e| e.to_string());
    match protection {
        Protection::SetPassword(password) => {
            let keyring = if vault.has_keyring() { keyring().ok() } else { None };
            vault.set_password(Some((password, Kdf::default())), keyring.as_ref()).map_err(|e| e.to_string())?;
            Ok("Password saved. The vault's master key was replaced.".into())
        }
        Protection::RemovePassword => {
            let keyring = keyring().ok();
            vault.set_password(None, keyring.as_ref()).map_err(|e| e.to_string())?;
            Ok("Password removed: the OS keyring now opens the vault.".into())
        }
        Protection::Keyring(on) => {
            vault.set_keyring(on, &keyring()?).map_err(|e| e.to_string())?;
            Ok(if on { "The OS keyring now unlocks the vault." } else { "The OS keyring no longer unlocks the vault." }.into())
        }
    }
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

/// A new password typed twice, or the inline error to show.
fn chosen_password(password: &str, confirm: &str) -> Result<crate::secret::Password, String> {
    if password.is_empty() {
        return Err("Choose a password.".into());
    }
    if password != confirm {
        return Err("The two passwords differ.".into());
    }
    Ok(crate::secret::Password::new(password.to_owned()))
}

/// A form centred in the window.
fn centered<'a, M: 'a>(content: impl Into<Element<'a, M>>) -> Element<'a, M> {
    container(content).center(Fill).padding(24).into()
}
