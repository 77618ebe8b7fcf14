//! First run: create the vault, protected by the OS keyring and/or a password.

use std::path::PathBuf;

use iced::widget::{Space, button, checkbox, column, container, text, text_input};
use iced::{Center, Element, Fill, Task};

use super::{Sensitive, SharedVault, blocking, share};
use crate::vault::{self, Kdf, Keyring, Protection, Vault};

#[derive(Debug)]
pub struct Onboarding {
    path: PathBuf,
    /// `None` while the keyring is being probed; then whether it answered.
    keyring: Option<Result<(), String>>,
    use_password: bool,
    password: String,
    confirm: String,
    busy: bool,
    error: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Message {
    KeyringProbed(Result<(), String>),
    UsePasswordToggled(bool),
    PasswordChanged(Sensitive<String>),
    ConfirmChanged(Sensitive<String>),
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
        let probe = Task::perform(blocking(|| Keyring::system().map(|_| ()).map_err(|e| e.to_string())), Message::KeyringProbed);
        (Onboarding { path, keyring: None, use_password: false, password: String::new(), confirm: String::new(), busy: false, error: None }, probe)
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
            Message::PasswordChanged(Sensitive(password)) => {
                self.password = password;
                self.error = None;
                Action::None
            }
            Message::ConfirmChanged(Sensitive(confirm)) => {
                self.confirm = confirm;
                self.error = None;
                Action::None
            }
            Message::Create => {
                if self.busy || self.keyring.is_none() {
                    return Action::None;
                }
                let password = if self.needs_password() {
                    match super::chosen_password(&self.password, &self.confirm) {
                        Ok(password) => Some(password),
                        Err(error) => {
                            self.error = Some(error);
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
                form = form.push(container(text("The vault will unlock with your OS keyring, without a prompt.").size(14)).padding(10).style(super::style::notice(false)));
                form = form.push(checkbox(self.use_password).label("Also protect it with a password (needed to open a backup elsewhere)").on_toggle(Message::UsePasswordToggled));
            }
            Some(Err(reason)) => {
                let notice = column![
                    text("No OS keyring answered on this desktop, so the vault needs a password.").size(14),
                    text(reason.clone()).size(12).style(text::secondary),
                ]
                .spacing(4);
                form = form.push(container(notice).padding(10).style(super::style::notice(false)));
            }
        }
        if self.needs_password() {
            form = form
                .push(text_input("Password", &self.password).secure(true).padding(10).on_input(|p| Message::PasswordChanged(Sensitive(p))).on_submit(Message::Create))
                .push(text_input("Repeat the password", &self.confirm).secure(true).padding(10).on_input(|p| Message::ConfirmChanged(Sensitive(p))).on_submit(Message::Create));
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
