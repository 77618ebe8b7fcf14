//! Preferences' vault protection: the OS keyring slot, and setting,
//! changing or removing the password.

use iced::widget::{button, checkbox, column, container, row, text};
use iced::{Center, Element, Fill};

use super::{Action, Protection, VaultFacts, section};
use crate::gui::jobs::{self, ProtectionChanged};
use crate::gui::password::{self, NewPassword};
use crate::gui::style;

#[derive(Debug, Default)]
pub struct Section {
    pub new_password: NewPassword,
    /// A change is being saved (Argon2id runs off the UI thread).
    pub busy: bool,
    pub error: Option<String>,
    pub info: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Message {
    NewPassword(password::Message),
    SetPassword,
    RemovePassword,
    KeyringToggled(bool),
    Changed(Result<ProtectionChanged, jobs::Error>),
}

impl Section {
    pub fn update(&mut self, message: Message) -> Action {
        match message {
            Message::NewPassword(message) => match self.new_password.update(message) {
                password::Event::Edited => {
                    self.error = None;
                    Action::None
                }
                password::Event::Submitted => self.update(Message::SetPassword),
            },
            Message::SetPassword => {
                if self.busy {
                    return Action::None;
                }
                match self.new_password.chosen() {
                    Ok(password) => {
                        self.start();
                        self.new_password.clear();
                        Action::Protection(Protection::SetPassword(password))
                    }
                    Err(problem) => {
                        self.error = Some(problem.to_string());
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
            Message::Changed(result) => {
                self.busy = false;
                match result {
                    Ok(changed) => self.info = Some(changed.to_string()),
                    Err(error) => self.error = Some(error.to_string()),
                }
                Action::None
            }
        }
    }

    fn start(&mut self) {
        self.busy = true;
        self.error = None;
        self.info = None;
    }

    pub fn view<'a>(&'a self, vault: &VaultFacts<'a>) -> Element<'a, Message> {
        let mut protection = column![section("Vault protection")].spacing(10);
        let keyring_label = if vault.has_keyring { "Unlocks with the OS keyring" } else { "Unlock with the OS keyring" };
        let mut keyring = checkbox(vault.has_keyring).label(keyring_label);
        if !self.busy && (vault.has_password || !vault.has_keyring) {
            keyring = keyring.on_toggle(Message::KeyringToggled);
        }
        protection = protection.push(keyring);
        if vault.has_keyring && !vault.has_password {
            protection = protection
                .push(text("The keyring is the only way in: add a password before turning it off.").size(13).style(text::secondary));
        }
        protection = protection.push(
            text(if vault.has_password {
                "Change the password (this also replaces the vault's master key):"
            } else {
                "Set a password, so the vault also opens without this keyring:"
            })
            .size(14),
        );
        let mut save = button(text(if vault.has_password { "Change password" } else { "Set password" })).padding([8, 14]);
        if !self.busy {
            save = save.on_press(Message::SetPassword);
        }
        let [new_password, confirm] = self.new_password.fields(["New password", "Repeat it"], 8, true);
        protection = protection.push(row![new_password.map(Message::NewPassword), confirm.map(Message::NewPassword), save].spacing(8));
        if vault.has_password && vault.has_keyring {
            let mut remove = button(text("Remove password")).padding([8, 14]).style(button::danger);
            if !self.busy {
                remove = remove.on_press(Message::RemovePassword);
            }
            protection = protection.push(
                row![text("The OS keyring alone would then open the vault.").size(13).style(text::secondary).width(Fill), remove]
                    .align_y(Center),
            );
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
        protection.into()
    }
}
