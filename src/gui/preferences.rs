//! Settings: theme, auto-lock, clipboard clearing, hidden codes, vault
//! protection, backups, import and export, about.

use std::path::{Path, PathBuf};

use iced::widget::{Space, button, checkbox, column, container, pick_list, row, rule, scrollable, text};
use iced::{Center, Element, Fill};

pub mod backups;
pub mod protection;

use crate::settings::{Settings, ThemeChoice};

/// A duration offered in a pick list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub u64);

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            0 => f.write_str("Never"),
            s if s % 3600 == 0 => write!(f, "{} hour{}", s / 3600, if s == 3600 { "" } else { "s" }),
            s if s % 60 == 0 => write!(f, "{} minute{}", s / 60, if s == 60 { "" } else { "s" }),
            s => write!(f, "{s} seconds"),
        }
    }
}

const AUTO_LOCK: [Seconds; 6] = [Seconds(60), Seconds(300), Seconds(900), Seconds(1800), Seconds(3600), Seconds(0)];
const CLIPBOARD: [Seconds; 5] = [Seconds(15), Seconds(30), Seconds(60), Seconds(120), Seconds(0)];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Theme(ThemeChoice);

impl std::fmt::Display for Theme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            ThemeChoice::System => "Follow the system",
            ThemeChoice::Light => "Light",
            ThemeChoice::Dark => "Dark",
        })
    }
}

/// What the settings page shows about the vault.
pub struct VaultFacts<'a> {
    pub path: &'a Path,
    pub has_password: bool,
    pub has_keyring: bool,
    pub accounts: usize,
    /// Where backups go (whether or not they are on).
    pub backup_dir: PathBuf,
    /// Why the backup after the last save failed.
    pub backup_problem: Option<String>,
    /// Whether Countersign starts at login now (the choice, or its default).
    pub starts_at_login: bool,
    /// What is known about the clock.
    pub clock: String,
}

#[derive(Debug, Default)]
pub struct Preferences {
    pub protection: protection::Section,
    pub backups: backups::Section,
}

#[derive(Debug, Clone)]
pub enum Message {
    Backups(backups::Message),
    Protection(protection::Message),
    Import,
    Export,
    ThemeSelected(ThemeChoice),
    AutoLockSelected(u64),
    ClipboardSelected(u64),
    HideCodesToggled(bool),
    BackgroundToggled(bool),
    StartAtLoginToggled(bool),
    Back,
}

/// A change to how the vault is opened; the root runs it off the UI thread.
#[derive(Debug, Clone)]
pub enum Protection {
    SetPassword(crate::secret::Password),
    RemovePassword,
    Keyring(bool),
}

pub enum Action {
    None,
    ChangeSettings(Box<dyn FnOnce(&mut Settings) + Send>),
    Protection(Protection),
    Run(iced::Task<Message>),
    /// Decrypt the newest backup and compare it with the vault.
    VerifyBackup,
    Import,
    Export,
    Back,
}

impl Preferences {
    /// The page, with the last backup verification read from `backup_dir`.
    pub fn new(backup_dir: &Path) -> Self {
        Preferences { backups: backups::Section::new(backup_dir), ..Preferences::default() }
    }

    pub fn update(&mut self, message: Message) -> Action {
        match message {
            Message::Backups(message) => self.backups.update(message),
            Message::Protection(message) => self.protection.update(message),
            Message::Import => Action::Import,
            Message::Export => Action::Export,
            Message::ThemeSelected(theme) => Action::ChangeSettings(Box::new(move |s| s.theme = theme)),
            Message::AutoLockSelected(seconds) => Action::ChangeSettings(Box::new(move |s| s.auto_lock_seconds = seconds)),
            Message::ClipboardSelected(seconds) => Action::ChangeSettings(Box::new(move |s| s.clipboard_clear_seconds = seconds)),
            Message::HideCodesToggled(hide) => Action::ChangeSettings(Box::new(move |s| s.hide_codes = hide)),
            Message::BackgroundToggled(on) => Action::ChangeSettings(Box::new(move |s| s.run_in_background = on)),
            Message::StartAtLoginToggled(on) => Action::ChangeSettings(Box::new(move |s| s.start_at_login = Some(on))),
            Message::Back => Action::Back,
        }
    }

    pub fn view<'a>(&'a self, settings: &'a Settings, vault: VaultFacts<'a>) -> Element<'a, Message> {
        let header =
            row![button(text("← Back")).on_press(Message::Back).padding([8, 12]).style(button::secondary), text("Settings").size(22)]
                .spacing(14)
                .align_y(Center);
        let setting = |label: &'static str, control: Element<'a, Message>| {
            row![text(label).size(15).width(Fill), control].spacing(12).align_y(Center)
        };

        let appearance = column![
            section("Appearance"),
            setting(
                "Theme",
                pick_list(
                    [Theme(ThemeChoice::System), Theme(ThemeChoice::Light), Theme(ThemeChoice::Dark)],
                    Some(Theme(settings.theme)),
                    |t| Message::ThemeSelected(t.0)
                )
                .padding(8)
                .into()
            ),
            setting("Hide codes until clicked", checkbox(settings.hide_codes).on_toggle(Message::HideCodesToggled).into()),
        ]
        .spacing(10);

        let security = column![
            section("Security"),
            setting(
                "Lock when idle for",
                pick_list(AUTO_LOCK, Some(Seconds(settings.auto_lock_seconds)), |s| Message::AutoLockSelected(s.0)).padding(8).into()
            ),
            setting(
                "Clear copied codes after",
                pick_list(CLIPBOARD, Some(Seconds(settings.clipboard_clear_seconds)), |s| Message::ClipboardSelected(s.0))
                    .padding(8)
                    .into()
            ),
        ]
        .spacing(10);

        let requests = column![
            section("Sign-in requests"),
            checkbox(settings.run_in_background)
                .label("Keep receiving them when the window is closed (until Quit)")
                .on_toggle(Message::BackgroundToggled),
            checkbox(vault.starts_at_login).label("Start Countersign in the background at login").on_toggle(Message::StartAtLoginToggled),
            text("Requests arrive while the vault is locked too; answering one asks you to unlock it.").size(13).style(text::secondary),
            text(vault.clock.clone()).size(13).style(text::secondary),
        ]
        .spacing(10);

        let protection = self.protection.view(&vault).map(Message::Protection);
        let backups = self.backups.view(settings, &vault).map(Message::Backups);

        let transfer = column![
            section("Import and export"),
            text("Bring accounts from Aegis, 2FAS, andOTP, Bitwarden, FreeOTP+, Ente Auth, Google Authenticator or a backup; export them to a file or to a phone.").size(14),
            row![button(text("Import…")).on_press(Message::Import).padding([8, 14]), button(text("Export…")).on_press(Message::Export).padding([8, 14]).style(button::secondary)].spacing(10),
        ]
        .spacing(10);

        let about = column![
            section("About"),
            text(format!("Countersign {}", env!("CARGO_PKG_VERSION"))).size(15),
            text(format!("Vault: {}", vault.path.display())).size(13).style(text::secondary),
            text(format!("{} account{}", vault.accounts, if vault.accounts == 1 { "" } else { "s" })).size(13).style(text::secondary),
        ]
        .spacing(6);

        let page = column![
            header,
            appearance,
            rule::horizontal(1),
            security,
            rule::horizontal(1),
            transfer,
            rule::horizontal(1),
            backups,
            rule::horizontal(1),
            requests,
            rule::horizontal(1),
            protection,
            rule::horizontal(1),
            about,
            Space::new().height(10)
        ]
        .spacing(16)
        .padding(16)
        .max_width(720);
        scrollable(container(page).center_x(Fill)).into()
    }
}

fn section<'a, M: 'a>(title: &'static str) -> Element<'a, M> {
    text(title).size(18).into()
}
