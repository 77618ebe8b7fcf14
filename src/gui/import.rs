//! Import: choose another app's export (or a Countersign backup), give its
//! password if it has one, see what would happen to each entry, import, and
//! read the per-entry report.

use std::path::PathBuf;

use iced::widget::{Space, button, checkbox, column, container, row, scrollable, text, text_input};
use iced::{Center, Element, Fill, Task};

use super::{Sensitive, style};
use crate::secret::Password;
use crate::transfer::{self, Contents, Outcome, Plan, Problem};
use crate::vault::Duplicates;

pub const PASSWORD_ID: &str = "import-password";

#[derive(Debug, Default)]
pub struct Import {
    pub path: Option<PathBuf>,
    pub stage: Stage,
    password: Sensitive<zeroize::Zeroizing<String>>,
    pub merge: bool,
    busy: Option<&'static str>,
    pub error: Option<String>,
}

#[derive(Debug, Default)]
pub enum Stage {
    #[default]
    Choose,
    /// The file is encrypted: its password is asked for.
    Password(transfer::Format),
    Preview {
        contents: Contents,
        plan: Vec<Plan>,
    },
    Report {
        lines: Vec<(String, Outcome)>,
    },
}

#[derive(Debug, Clone)]
pub enum Message {
    Choose,
    Picked(Option<PathBuf>),
    PasswordChanged(Sensitive<String>),
    SubmitPassword,
    /// The file read and previewed against the vault, or why not.
    Read(Result<Sensitive<(Contents, Vec<Plan>)>, transfer::Error>),
    MergeToggled(bool),
    Import,
    Imported(Result<Vec<(String, Outcome)>, super::jobs::Error>),
    /// Leave the report for the accounts list.
    Done,
    Back,
}

pub enum Action {
    None,
    Run(Task<Message>),
    /// Read the file (with a password when it is encrypted) and preview it.
    Read {
        path: PathBuf,
        password: Option<Password>,
    },
    Import {
        contents: Contents,
        duplicates: Duplicates,
    },
    /// Show the accounts list.
    Done,
    Back,
}

impl Import {
    /// Reads a file chosen in the dialog or dropped on the window.
    pub fn file(&mut self, path: PathBuf) -> Action {
        // One file at a time: a second one's answer could be taken for the first's.
        if self.busy.is_some() {
            return Action::None;
        }
        self.path = Some(path.clone());
        self.stage = Stage::Choose;
        self.error = None;
        self.busy = Some("Reading the file…");
        Action::Read { path, password: None }
    }

    pub fn update(&mut self, message: Message) -> Action {
        match message {
            Message::Choose => {
                let dialog = rfd::AsyncFileDialog::new().set_title("Import accounts from a file");
                Action::Run(Task::perform(async move { dialog.pick_file().await.map(|f| f.path().to_owned()) }, Message::Picked))
            }
            Message::Picked(None) => {
                self.error = Some("No file was chosen. If no file dialog appeared, this desktop has no file chooser portal (xdg-desktop-portal) or zenity: drop the file onto this window instead.".into());
                Action::None
            }
            Message::Picked(Some(path)) => self.file(path),
            Message::PasswordChanged(Sensitive(password)) => {
                self.password = Sensitive(zeroize::Zeroizing::new(password));
                self.error = None;
                Action::None
            }
            Message::SubmitPassword => match (&self.path, self.busy) {
                (Some(path), None) if !self.password.0.is_empty() => {
                    self.busy = Some("Decrypting…");
                    Action::Read { path: path.clone(), password: Some(Password::new(std::mem::take(&mut *self.password.0))) }
                }
                _ => Action::None,
            },
            Message::Read(result) => {
                self.busy = None;
                match result {
                    Ok(Sensitive((contents, plan))) => self.stage = Stage::Preview { contents, plan },
                    Err(transfer::Error { problem: Problem::PasswordNeeded(format), .. }) => {
                        self.stage = Stage::Password(format);
                        return Action::Run(iced::widget::operation::focus(PASSWORD_ID));
                    }
                    Err(transfer::Error { problem: Problem::WrongPassword, .. }) if matches!(self.stage, Stage::Password(_)) => {
                        self.error = Some("Wrong password, or the encrypted part of the file is damaged. Nothing was imported.".into());
                    }
                    Err(error) => {
                        self.stage = Stage::Choose;
                        self.error = Some(error.to_string());
                    }
                }
                Action::None
            }
            Message::MergeToggled(merge) => {
                self.merge = merge;
                Action::None
            }
            Message::Import => {
                let Stage::Preview { contents, .. } = &self.stage else { return Action::None };
                if self.busy.is_some() {
                    return Action::None;
                }
                self.busy = Some("Importing…");
                Action::Import { contents: contents.clone(), duplicates: if self.merge { Duplicates::Merge } else { Duplicates::Skip } }
            }
            Message::Imported(result) => {
                self.busy = None;
                match result {
                    Ok(lines) => self.stage = Stage::Report { lines },
                    Err(error) => self.error = Some(format!("Nothing was imported: {error}")),
                }
                Action::None
            }
            Message::Done => Action::Done,
            Message::Back => Action::Back,
        }
    }

    pub fn view(&self) -> Element<'_, Message> {
        let header = row![
            button(text("← Back")).on_press(Message::Back).padding([8, 12]).style(button::secondary),
            text("Import accounts").size(22)
        ]
        .spacing(14)
        .align_y(Center);
        let mut page = column![header].spacing(14).padding(16).max_width(720);
        let file = self.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        match &self.stage {
            Stage::Choose => {
                page = page.push(text("From Aegis, 2FAS, andOTP, Bitwarden, FreeOTP+, Ente Auth, a list of otpauth links, Google Authenticator export links, or a Countersign backup. The format is recognised from the file itself; you see every account before anything is saved.").size(15));
                if self.busy.is_none() {
                    page = page.push(
                        row![
                            button(text("Choose a file…")).on_press(Message::Choose).padding([10, 18]),
                            text("or drop it onto this window").size(14).style(text::secondary)
                        ]
                        .spacing(12)
                        .align_y(Center),
                    );
                }
            }
            Stage::Password(format) => {
                page =
                    page.push(text(format!("{file} is an encrypted {format} export. Enter the password it was exported with.")).size(15));
                let mut field = text_input("Password of the file", &self.password.0).id(PASSWORD_ID).secure(true).padding(10);
                if self.busy.is_none() {
                    field = field.on_input(|p| Message::PasswordChanged(Sensitive(p))).on_submit(Message::SubmitPassword);
                }
                page = page.push(field);
                if self.busy.is_none() && !self.password.0.is_empty() {
                    page = page.push(button(text("Decrypt")).on_press(Message::SubmitPassword).padding([10, 18]));
                }
            }
            Stage::Preview { contents, plan } => page = self.preview(page, &file, contents, plan),
            Stage::Report { lines } => {
                let imported = lines.iter().filter(|(_, outcome)| matches!(outcome, Outcome::Added | Outcome::Merged)).count();
                page = page.push(
                    text(if imported == 0 {
                        "Nothing was imported; the vault was not changed.".to_owned()
                    } else {
                        format!("Imported {imported} of {} entries.", lines.len())
                    })
                    .size(18),
                );
                let mut list = column![].spacing(6);
                for (title, outcome) in lines {
                    let failed = matches!(outcome, Outcome::Skipped(_) | Outcome::AlreadyThere);
                    list = list.push(
                        row![
                            text(title.clone()).size(14).width(Fill),
                            text(outcome.to_string()).size(14).style(if failed { text::secondary } else { text::success })
                        ]
                        .spacing(10),
                    );
                }
                page = page.push(list);
                page = page.push(button(text("Done")).on_press(Message::Done).padding([10, 18]));
            }
        }
        if let Some(busy) = self.busy {
            page = page.push(text(busy).size(14));
        }
        if let Some(error) = &self.error {
            page = page.push(container(text(error.clone()).size(14)).padding(10).width(Fill).style(style::notice(true)));
        }
        page = page.push(Space::new().height(10));
        scrollable(container(page).center_x(Fill)).into()
    }

    fn preview<'a>(
        &'a self,
        mut page: iced::widget::Column<'a, Message>,
        file: &str,
        contents: &'a Contents,
        plan: &'a [Plan],
    ) -> iced::widget::Column<'a, Message> {
        let count = |wanted: fn(&Plan) -> bool| plan.iter().filter(|p| wanted(p)).count();
        let (new, in_vault) = (count(|p| matches!(p, Plan::New)), count(|p| matches!(p, Plan::InVault(_))));
        let unusable = plan.len() - new - in_vault;
        page = page.push(
            text(format!("{file}: {}{}", contents.format, if contents.encrypted { ", encrypted" } else { "" }))
                .size(14)
                .style(text::secondary),
        );
        page = page.push(text(format!("{new} new, {in_vault} already in the vault, {unusable} cannot be imported")).size(17));
        for note in &contents.notes {
            page = page.push(container(text(note.clone()).size(14)).padding(10).width(Fill).style(style::notice(false)));
        }
        let mut list = column![].spacing(6);
        for (item, plan) in contents.items.iter().zip(plan) {
            let (what, quiet) = match plan {
                Plan::New => ("new".to_owned(), false),
                Plan::InVault(_) if self.merge => ("already in the vault: its names will be updated".to_owned(), true),
                Plan::InVault(_) => ("already in the vault: skipped".to_owned(), true),
                Plan::RepeatedInFile => ("repeats an earlier entry: skipped".to_owned(), true),
                Plan::Skipped(skip) => (format!("skipped: {skip}"), true),
            };
            list = list.push(
                row![
                    text(item.title.clone()).size(14).width(Fill),
                    text(what).size(14).style(if quiet { text::secondary } else { text::success })
                ]
                .spacing(10),
            );
        }
        page = page.push(list);
        if in_vault > 0 {
            page = page.push(
                checkbox(self.merge)
                    .label("Update the accounts already in the vault with the file's names and HOTP counters")
                    .on_toggle(Message::MergeToggled),
            );
        }
        let importable = new + if self.merge { in_vault } else { 0 };
        if importable == 0 {
            page = page.push(text("There is nothing new to import from this file.").size(15));
        } else if self.busy.is_none() {
            page = page.push(
                button(text(format!("Import {importable} account{}", if importable == 1 { "" } else { "s" })))
                    .on_press(Message::Import)
                    .padding([10, 18]),
            );
        }
        page
    }
}
