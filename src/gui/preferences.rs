//! Settings: theme, auto-lock, clipboard clearing, hidden codes, vault protection, about.

use std::path::Path;

use iced::widget::{Space, button, checkbox, column, container, pick_list, row, rule, scrollable, text, text_input};
use iced::{Center, Element, Fill};

use super::{Sensitive, style};
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
}

#[derive(Debug, Default)]
pub struct Preferences {
    pub new_password: String,
    pub confirm: String,
    pub busy: bool,
    pub error: Option<String>,
    pub info: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Message {
    ThemeSelected(ThemeChoice),
    AutoLockSelected(u64),
    ClipboardSelected(u64),
    HideCodesToggled(bool),
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
    Back,
}

impl Preferences {
    pub fn update(&mut self, message: Message) -> Action {
        match message {
            Message::ThemeSelected(theme) => Action::Settings(Box::new(move |s| s.theme = theme)),
            Message::AutoLockSelected(seconds) => Action::Settings(Box::new(move |s| s.auto_lock_seconds = seconds)),
            Message::ClipboardSelected(seconds) => Action::Settings(Box::new(move |s| s.clipboard_clear_seconds = seconds)),
            Message::HideCodesToggled(hide) => Action::Settings(Box::new(move |s| s.hide_codes = hide)),
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

        let about = column![
            section("About"),
            text(format!("Countersign {}", env!("CARGO_PKG_VERSION"))).size(15),
            text(format!("Vault: {}", vault.path.display())).size(13).style(text::secondary),
            text(format!("{} account{}", vault.accounts, if vault.accounts == 1 { "" } else { "s" })).size(13).style(text::secondary),
        ]
        .spacing(6);

        let page = column![header, appearance, rule::horizontal(1), security, rule::horizontal(1), protection, rule::horizontal(1), about, Space::new().height(10)].spacing(16).padding(16).max_width(720);
        scrollable(container(page).center_x(Fill)).into()
    }
}

fn section<'a>(title: &'static str) -> Element<'a, Message> {
    text(title).size(18).into()
}
