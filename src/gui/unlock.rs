//! The unlock screen: the OS keyring first, then the password, with inline errors.

use std::path::PathBuf;

use iced::widget::{Space, button, column, container, text, text_input};
use iced::{Center, Element, Fill, Task};

use super::{Sensitive, SharedVault, blocking, share};
use crate::secret::Password;
use crate::vault::{self, Keyring, Locked};

#[derive(Debug)]
pub struct Unlock {
    path: PathBuf,
    password: String,
    has_password: bool,
    has_keyring: bool,
    busy: bool,
    /// Why the keyring did not open the vault, shown above the password field.
    keyring_note: Option<String>,
    error: Option<String>,
    /// The file itself is unreadable (damaged, unknown version): no form.
    fatal: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Message {
    PasswordChanged(Sensitive<String>),
    Submit,
    UseKeyring,
    Unlocked(Result<SharedVault, vault::Error>),
}

/// What the root does next.
pub enum Action {
    None,
    Run(Task<Message>),
    Unlocked(SharedVault),
}

pub const PASSWORD_ID: &str = "unlock-password";

impl Unlock {
    /// Reads the file. At start-up (`auto_keyring`) a keyring slot is tried at
    /// once; after the user locked, only when asked, or Lock would be undone.
    pub fn new(path: PathBuf, auto_keyring: bool) -> (Self, Task<Message>) {
        let mut unlock = Unlock { path, password: String::new(), has_password: false, has_keyring: false, busy: false, keyring_note: None, error: None, fatal: None };
        match Locked::read(&unlock.path) {
            Err(error) => {
                unlock.fatal = Some(error.to_string());
                (unlock, Task::none())
            }
            Ok(locked) => {
                unlock.has_password = locked.has_password();
                unlock.has_keyring = locked.has_keyring();
                if unlock.has_keyring && auto_keyring {
                    let task = unlock.try_keyring();
                    return (unlock, task);
                }
                (unlock, iced::widget::operation::focus(PASSWORD_ID))
            }
        }
    }

    fn try_keyring(&mut self) -> Task<Message> {
        self.busy = true;
        self.error = None;
        let path = self.path.clone();
        Task::perform(
            blocking(move || {
                let keyring = Keyring::system()?;
                Locked::read(&path)?.unlock_with_keyring(&keyring).map(share)
            }),
            Message::Unlocked,
        )
    }

    pub fn update(&mut self, message: Message) -> Action {
        match message {
            Message::PasswordChanged(Sensitive(password)) => {
                self.password = password;
                self.error = None;
                Action::None
            }
            Message::Submit => {
                if self.busy || self.password.is_empty() || !self.has_password {
                    return Action::None;
                }
                self.busy = true;
                let path = self.path.clone();
                let password = Password::new(std::mem::take(&mut self.password));
                Action::Run(Task::perform(
                    blocking(move || Locked::read(&path)?.unlock_with_password(&password).map(share)),
                    Message::Unlocked,
                ))
            }
            Message::UseKeyring => {
                if self.busy || !self.has_keyring {
                    return Action::None;
                }
                Action::Run(self.try_keyring())
            }
            Message::Unlocked(Ok(vault)) => {
                self.busy = false;
                Action::Unlocked(vault)
            }
            Message::Unlocked(Err(error)) => {
                self.busy = false;
                match error {
                    vault::Error::WrongPassword => self.error = Some("Wrong password. Try again.".into()),
                    vault::Error::Keyring(_) | vault::Error::KeyringMismatch | vault::Error::NoKeyringSlot if self.has_password => {
                        self.keyring_note = Some(format!("{error}. Enter your password instead."));
                    }
                    vault::Error::Corrupt { .. } | vault::Error::UnsupportedVersion { .. } | vault::Error::NotAVault { .. } | vault::Error::NotFound { .. } => {
                        self.fatal = Some(error.to_string());
                    }
                    other => self.error = Some(other.to_string()),
                }
                Action::Run(iced::widget::operation::focus(PASSWORD_ID))
            }
        }
    }

    pub fn view(&self) -> Element<'_, Message> {
        let mut form = column![
            text("Countersign").size(30),
            text("Your accounts are locked.").size(15),
            Space::new().height(12),
        ]
        .spacing(6)
        .align_x(Center)
        .max_width(380);

        if let Some(fatal) = &self.fatal {
            form = form.push(container(text(fatal.clone()).size(14)).padding(12).style(super::style::notice(true)));
            return super::centered(form);
        }
        if let Some(note) = &self.keyring_note {
            form = form.push(container(text(note.clone()).size(13)).padding(10).style(super::style::notice(false)));
        }
        if self.has_keyring && self.keyring_note.is_none() {
            let label = if self.busy { "Opening with the OS keyring…" } else { "Unlock with the OS keyring" };
            let mut keyring = button(text(label).width(Fill).align_x(Center)).padding(10).width(Fill);
            if !self.busy {
                keyring = keyring.on_press(Message::UseKeyring);
            }
            form = form.push(keyring);
        }
        if !self.has_password {
            if let Some(error) = &self.error {
                form = form.push(text(error.clone()).style(text::danger));
            }
            return super::centered(form);
        }
        let mut field = text_input("Password", &self.password).id(PASSWORD_ID).secure(true).padding(10).size(16);
        if !self.busy {
            field = field.on_input(|p| Message::PasswordChanged(Sensitive(p))).on_submit(Message::Submit);
        }
        form = form.push(field);
        if let Some(error) = &self.error {
            form = form.push(text(error.clone()).size(14).style(text::danger));
        }
        let label = if self.busy { "Unlocking…" } else { "Unlock" };
        let mut unlock = button(text(label).width(Fill).align_x(Center)).padding(10).width(Fill);
        if !self.busy && !self.password.is_empty() {
            unlock = unlock.on_press(Message::Submit);
        }
        super::centered(form.push(unlock))
    }
}
