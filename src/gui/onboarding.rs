//! First run: create the vault, protected by the OS keyring and/or a password.

use std::path::PathBuf;

use iced::widget::{Space, button, checkbox, column, container, text};
use iced::{Center, Element, Fill, Task};

use super::password::{self, NewPassword};
use super::{SharedVault, blocking, share};
use crate::vault::{self, Kdf, Keyring, Protection, Vault};

#[derive(Debug)]
pub struct Onboarding {
    path: PathBuf,
    /// `None` while the keyring is being probed; then whether it answered.
    keyring: Option<Result<(), vault::keyring::Error>>,
    use_password: bool,
    password: NewPassword,
    busy: bool,
    error: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Message {
    KeyringProbed(Result<(), vault::keyring::Error>),
    UsePasswordToggled(bool),
    Password(password::Message),
    Create,
    Created(Result<SharedVault, vault::Error>),
}

pub enum Action {
    None,
    Run(Task<Message>),
    Unlocked(SharedVault),
}

impl Onboarding {
    pub fn new(path: PathBuf) -> (Self, Task<Message>) {
        let probe = Task::perform(blocking(|| Keyring::system().map(|_| ())), Message::KeyringProbed);
        (Onboarding { path, keyring: None, use_password: false, password: NewPassword::default(), busy: false, error: None }, probe)
    }

    fn keyring_available(&self) -> bool {
        matches!(self.keyring, Some(Ok(())))
    }

    fn needs_password(&self) -> bool {
        self.use_password || matches!(self.keyring, Some(Err(_)))
    }

    pub fn update(&mut self, message: Message) -> Action {
        match message {
            Message::KeyringProbed(result) => {
                self.keyring = Some(result);
                Action::None
            }
            Message::UsePasswordToggled(on) => {
                self.use_password = on;
                Action::None
            }
            Message::Password(message) => match self.password.update(message) {
                password::Event::Edited => {
                    self.error = None;
                    Action::None
                }
                password::Event::Submitted => self.update(Message::Create),
            },
            Message::Create => {
                if self.busy || self.keyring.is_none() {
                    return Action::None;
                }
                let password = if self.needs_password() {
                    match self.password.chosen() {
                        Ok(password) => Some(password),
                        Err(problem) => {
                            self.error = Some(problem.to_string());
                            return Action::None;
                        }
                    }
                } else {
                    None
                };
                self.busy = true;
                let (path, use_keyring) = (self.path.clone(), self.keyring_available());
                Action::Run(Task::perform(
                    blocking(move || {
                        let keyring = if use_keyring { Some(Keyring::system()?) } else { None };
                        let protection = Protection { password: password.map(|p| (p, Kdf::default())), keyring: keyring.as_ref() };
                        Vault::create(&path, protection).map(share)
                    }),
                    Message::Created,
                ))
            }
            Message::Created(Ok(vault)) => Action::Unlocked(vault),
            Message::Created(Err(error)) => {
                self.busy = false;
                self.error = Some(error.to_string());
                Action::None
            }
        }
    }

    pub fn view(&self) -> Element<'_, Message> {
        let mut form = column![
            text("Welcome to Countersign").size(28),
            text("Codes for your accounts, kept in an encrypted vault on this computer.").size(15).align_x(Center),
            Space::new().height(10),
        ]
        .spacing(8)
        .align_x(Center)
        .max_width(420);

        match &self.keyring {
            None => return super::centered(form.push(text("Looking for the OS keyring…"))),
            Some(Ok(())) => {
                form = form.push(
                    container(text("The vault will unlock with your OS keyring, without a prompt.").size(14))
                        .padding(10)
                        .style(super::style::notice(false)),
                );
                form = form.push(
                    checkbox(self.use_password)
                        .label("Also protect it with a password (needed to open a backup elsewhere)")
                        .on_toggle(Message::UsePasswordToggled),
                );
            }
            Some(Err(reason)) => {
                let notice = column![
                    text("No OS keyring answered on this desktop, so the vault needs a password.").size(14),
                    text(reason.to_string()).size(12).style(text::secondary),
                ]
                .spacing(4);
                form = form.push(container(notice).padding(10).style(super::style::notice(false)));
            }
        }
        if self.needs_password() {
            let [password, confirm] = self.password.fields(["Password", "Repeat the password"], 10, true);
            form = form.push(password.map(Message::Password)).push(confirm.map(Message::Password));
        }
        if let Some(error) = &self.error {
            form = form.push(text(error.clone()).size(14).style(text::danger));
        }
        let label = if self.busy { "Creating…" } else { "Create vault" };
        let mut create = button(text(label).width(Fill).align_x(Center)).padding(10).width(Fill);
        if !self.busy {
            create = create.on_press(Message::Create);
        }
        super::centered(form.push(create))
    }
}
