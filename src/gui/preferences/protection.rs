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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gui::Sensitive;

    fn typed(section: &mut Section, password: &str, confirm: &str) {
        section.update(Message::NewPassword(password::Message::PasswordChanged(Sensitive(password.into()))));
        section.update(Message::NewPassword(password::Message::ConfirmChanged(Sensitive(confirm.into()))));
    }

    #[test]
    fn a_password_typed_twice_asks_the_root_to_set_it_once() {
        let mut section = Section::default();
        typed(&mut section, "one", "two");
        assert!(matches!(section.update(Message::SetPassword), Action::None));
        assert_eq!(section.error.as_deref(), Some("The two passwords differ."));
        typed(&mut section, "one", "one");
        assert_eq!(section.error, None, "typing takes the stale error away");
        // Enter in a field is the button.
        let action = section.update(Message::NewPassword(password::Message::Submitted));
        assert!(matches!(action, Action::Protection(Protection::SetPassword(ref p)) if p.as_bytes() == b"one"));
        assert!(section.busy);
        assert!(section.new_password.chosen().is_err(), "the typed fields are wiped once handed over");
        // A second press while Argon2id runs does nothing.
        typed(&mut section, "one", "one");
        assert!(matches!(section.update(Message::SetPassword), Action::None));
    }

    #[test]
    fn the_outcome_ends_the_busy_state_and_is_said() {
        let mut section = Section::default();
        assert!(matches!(section.update(Message::KeyringToggled(true)), Action::Protection(Protection::Keyring(true))));
        let changed = ProtectionChanged { change: jobs::Protected::KeyringOn, copies: None };
        assert!(matches!(section.update(Message::Changed(Ok(changed))), Action::None));
        assert!(!section.busy);
        assert_eq!(section.info.as_deref(), Some("The OS keyring now unlocks the vault."));
        assert!(matches!(section.update(Message::RemovePassword), Action::Protection(Protection::RemovePassword)));
        assert_eq!(section.info, None);
        section.update(Message::Changed(Err(jobs::Error::Poisoned)));
        assert_eq!(section.error.as_deref(), Some("the vault lock was poisoned"));
    }
}
