//! Settings: theme, auto-lock, clipboard clearing, hidden codes, vault
//! protection, backups, import and export, about.

use std::path::{Path, PathBuf};

use iced::widget::{Space, button, checkbox, column, container, pick_list, row, rule, scrollable, text, text_input};
use iced::{Center, Element, Fill};

use super::{Sensitive, style};
use crate::backup;
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

/// How many backups to keep, offered in a pick list (0 is off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep(pub usize);

impl std::fmt::Display for Keep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            0 => f.write_str("Off"),
            n => write!(f, "The last {n}"),
        }
    }
}

const KEEP: [Keep; 5] = [Keep(5), Keep(10), Keep(20), Keep(50), Keep(0)];

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
    pub new_password: String,
    pub confirm: String,
    pub busy: bool,
    pub error: Option<String>,
    pub info: Option<String>,
    /// The last verification recorded in the backup folder.
    pub verified: Option<backup::Verified>,
    pub verifying: bool,
    pub backup_error: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Message {
    BackupKeepSelected(usize),
    ChooseBackupFolder,
    BackupFolderPicked(Option<PathBuf>),
    VerifyBackup,
    BackupVerified(Result<backup::Verified, String>),
    Import,
    Export,
    ThemeSelected(ThemeChoice),
    AutoLockSelected(u64),
    ClipboardSelected(u64),
    HideCodesToggled(bool),
    BackgroundToggled(bool),
    StartAtLoginToggled(bool),
    NewPasswordChanged(Sensitive<String>),
    ConfirmChanged(Sensitive<String>),
    SetPassword,
    RemovePassword,
    KeyringToggled(bool),
    ProtectionChanged(Result<String, String>),
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
    Settings(Box<dyn FnOnce(&mut Settings) + Send>),
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
        Preferences { verified: backup::last_verified(backup_dir), ..Preferences::default() }
    }

    pub fn update(&mut self, message: Message) -> Action {
        match message {
            Message::BackupKeepSelected(keep) => Action::Settings(Box::new(move |s| s.backup_keep = keep)),
            Message::ChooseBackupFolder => {
                let dialog = rfd::AsyncFileDialog::new().set_title("Folder for automatic backups");
                Action::Run(iced::Task::perform(async move { dialog.pick_folder().await.map(|f| f.path().to_owned()) }, Message::BackupFolderPicked))
            }
            Message::BackupFolderPicked(None) => Action::None,
            Message::BackupFolderPicked(Some(dir)) => Action::Settings(Box::new(move |s| s.backup_dir = Some(dir))),
            Message::VerifyBackup => {
                if self.verifying {
                    return Action::None;
                }
                self.verifying = true;
                self.backup_error = None;
                Action::VerifyBackup
            }
            Message::BackupVerified(result) => {
                self.verifying = false;
                match result {
                    Ok(verified) => self.verified = Some(verified),
                    Err(error) => self.backup_error = Some(error),
                }
                Action::None
            }
            Message::Import => Action::Import,
            Message::Export => Action::Export,
            Message::ThemeSelected(theme) => Action::Settings(Box::new(move |s| s.theme = theme)),
            Message::AutoLockSelected(seconds) => Action::Settings(Box::new(move |s| s.auto_lock_seconds = seconds)),
            Message::ClipboardSelected(seconds) => Action::Settings(Box::new(move |s| s.clipboard_clear_seconds = seconds)),
            Message::HideCodesToggled(hide) => Action::Settings(Box::new(move |s| s.hide_codes = hide)),
            Message::BackgroundToggled(on) => Action::Settings(Box::new(move |s| s.run_in_background = on)),
            Message::StartAtLoginToggled(on) => Action::Settings(Box::new(move |s| s.start_at_login = Some(on))),
            Message::NewPasswordChanged(Sensitive(password)) => {
                self.new_password = password;
                self.error = None;
                Action::None
            }
            Message::ConfirmChanged(Sensitive(confirm)) => {
                self.confirm = confirm;
                self.error = None;
                Action::None
            }
            Message::SetPassword => {
                if self.busy {
                    return Action::None;
                }
                match super::chosen_password(&self.new_password, &self.confirm) {
                    Ok(password) => {
                        self.start();
                        self.new_password.clear();
                        self.confirm.clear();
                        Action::Protection(Protection::SetPassword(password))
                    }
                    Err(error) => {
                        self.error = Some(error);
                        Action::None
                    }
                }
            }
            Message::RemovePassword => {
                self.start();
                Action::Protection(Protection::RemovePassword)
            }
            Message::KeyringToggled(on) => {
                self.start();
                Action::Protection(Protection::Keyring(on))
            }
            Message::ProtectionChanged(result) => {
                self.busy = false;
                match result {
                    Ok(info) => self.info = Some(info),
                    Err(error) => self.error = Some(error),
                }
                Action::None
            }
            Message::Back => Action::Back,
        }
    }

    fn start(&mut self) {
        self.busy = true;
        self.error = None;
        self.info = None;
    }

    pub fn view<'a>(&'a self, settings: &'a Settings, vault: VaultFacts<'a>) -> Element<'a, Message> {
        let header = row![button(text("← Back")).on_press(Message::Back).padding([8, 12]).style(button::secondary), text("Settings").size(22)].spacing(14).align_y(Center);
        let setting = |label: &'static str, control: Element<'a, Message>| row![text(label).size(15).width(Fill), control].spacing(12).align_y(Center);

        let appearance = column![
            section("Appearance"),
            setting("Theme", pick_list([Theme(ThemeChoice::System), Theme(ThemeChoice::Light), Theme(ThemeChoice::Dark)], Some(Theme(settings.theme)), |t| Message::ThemeSelected(t.0)).padding(8).into()),
            setting("Hide codes until clicked", checkbox(settings.hide_codes).on_toggle(Message::HideCodesToggled).into()),
        ]
        .spacing(10);

        let security = column![
            section("Security"),
            setting("Lock when idle for", pick_list(AUTO_LOCK, Some(Seconds(settings.auto_lock_seconds)), |s| Message::AutoLockSelected(s.0)).padding(8).into()),
            setting("Clear copied codes after", pick_list(CLIPBOARD, Some(Seconds(settings.clipboard_clear_seconds)), |s| Message::ClipboardSelected(s.0)).padding(8).into()),
        ]
        .spacing(10);

        let requests = column![
            section("Sign-in requests"),
            checkbox(settings.run_in_background).label("Keep receiving them when the window is closed (until Quit)").on_toggle(Message::BackgroundToggled),
            checkbox(vault.starts_at_login).label("Start Countersign in the background at login").on_toggle(Message::StartAtLoginToggled),
            text("Requests arrive while the vault is locked too; answering one asks you to unlock it.").size(13).style(text::secondary),
            text(vault.clock.clone()).size(13).style(text::secondary),
        ]
        .spacing(10);

        let mut protection = column![section("Vault protection")].spacing(10);
        let keyring_label = if vault.has_keyring { "Unlocks with the OS keyring" } else { "Unlock with the OS keyring" };
        let mut keyring = checkbox(vault.has_keyring).label(keyring_label);
        if !self.busy && (vault.has_password || !vault.has_keyring) {
            keyring = keyring.on_toggle(Message::KeyringToggled);
        }
        protection = protection.push(keyring);
        if vault.has_keyring && !vault.has_password {
            protection = protection.push(text("The keyring is the only way in: add a password before turning it off.").size(13).style(text::secondary));
        }
        protection = protection.push(text(if vault.has_password { "Change the password (this also replaces the vault's master key):" } else { "Set a password, so the vault also opens without this keyring:" }).size(14));
        let mut save = button(text(if vault.has_password { "Change password" } else { "Set password" })).padding([8, 14]);
        if !self.busy {
            save = save.on_press(Message::SetPassword);
        }
        protection = protection.push(
            row![
                text_input("New password", &self.new_password).secure(true).on_input(|p| Message::NewPasswordChanged(Sensitive(p))).padding(8),
                text_input("Repeat it", &self.confirm).secure(true).on_input(|p| Message::ConfirmChanged(Sensitive(p))).on_submit(Message::SetPassword).padding(8),
                save,
            ]
            .spacing(8),
        );
        if vault.has_password && vault.has_keyring {
            let mut remove = button(text("Remove password")).padding([8, 14]).style(button::danger);
            if !self.busy {
                remove = remove.on_press(Message::RemovePassword);
            }
            protection = protection.push(row![text("The OS keyring alone would then open the vault.").size(13).style(text::secondary).width(Fill), remove].align_y(Center));
        }
        if self.busy {
            protection = protection.push(text("Working…").size(14));
        }
        if let Some(info) = &self.info {
            protection = protection.push(container(text(info.clone()).size(14)).padding(10).width(Fill).style(style::notice(false)));
        }
        if let Some(error) = &self.error {
            protection = protection.push(container(text(error.clone()).size(14)).padding(10).width(Fill).style(style::notice(true)));
        }

        let backups_on = settings.backup_keep > 0;
        let mut backups = column![
            section("Backups"),
            setting("Keep an encrypted copy after every change", pick_list(KEEP, Some(Keep(settings.backup_keep)), |k| Message::BackupKeepSelected(k.0)).padding(8).into()),
            row![
                text(format!("Folder: {}", vault.backup_dir.display())).size(13).style(text::secondary).width(Fill),
                button(text("Change folder…").size(14)).on_press(Message::ChooseBackupFolder).padding([6, 12]).style(button::secondary),
            ]
            .spacing(10)
            .align_y(Center),
            text("A backup is a copy of the vault file: it opens with the same password or keyring.").size(13).style(text::secondary),
        ]
        .spacing(10);
        backups = backups.push(text(match &self.verified {
            Some(verified) => format!("Last verified restorable: {} ({}, {} accounts)", verified.when(), verified.file, verified.accounts),
            None => "Never verified.".to_owned(),
        }).size(14));
        if backups_on && !self.verifying {
            backups = backups.push(button(text("Verify backup")).on_press(Message::VerifyBackup).padding([8, 14]));
        } else if self.verifying {
            backups = backups.push(text("Verifying…").size(14));
        }
        for error in [&vault.backup_problem, &self.backup_error].into_iter().flatten() {
            backups = backups.push(container(text(error.clone()).size(14)).padding(10).width(Fill).style(style::notice(true)));
        }

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

        let page = column![header, appearance, rule::horizontal(1), security, rule::horizontal(1), transfer, rule::horizontal(1), backups, rule::horizontal(1), requests, rule::horizontal(1), protection, rule::horizontal(1), about, Space::new().height(10)].spacing(16).padding(16).max_width(720);
        scrollable(container(page).center_x(Fill)).into()
    }
}

fn section<'a>(title: &'static str) -> Element<'a, Message> {
    text(title).size(18).into()
}
