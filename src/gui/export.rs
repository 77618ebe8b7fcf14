//! Export: every account to an encrypted backup or Aegis file, or, after an
//! explicit confirmation, in the clear (Aegis JSON, otpauth links, Google
//! Authenticator codes shown here or saved as images).

use std::path::PathBuf;

use iced::widget::{Space, button, checkbox, column, container, pick_list, row, scrollable, text};
use iced::{Center, Element, Fill, Task};

use super::password::{self, NewPassword};
use super::style;
use crate::secret::Password;
use crate::transfer::ExportFormat;

#[derive(Debug)]
pub struct Export {
    pub format: ExportFormat,
    password: NewPassword,
    pub understood: bool,
    busy: bool,
    pub error: Option<String>,
    pub info: Option<String>,
}

impl Default for Export {
    fn default() -> Self {
        Export {
            format: ExportFormat::Countersign,
            password: NewPassword::default(),
            understood: false,
            busy: false,
            error: None,
            info: None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Message {
    FormatSelected(ExportFormat),
    Password(password::Message),
    UnderstoodToggled(bool),
    Save,
    Picked(Option<PathBuf>),
    ShowCodes,
    Saved(Result<super::jobs::Exported, super::jobs::Error>),
    Back,
}

pub enum Action {
    None,
    Run(Task<Message>),
    /// Write the export to `path` (a folder for image exports).
    Save {
        format: ExportFormat,
        password: Option<Password>,
        path: PathBuf,
    },
    /// Show the Google Authenticator codes in the window.
    ShowGoogleCodes,
    Back,
}

impl Export {
    /// The password for an encrypted format, or the inline error; `None` for
    /// formats in the clear, which need the confirmation instead.
    fn ready(&self) -> Result<Option<Password>, String> {
        if self.format.is_encrypted() {
            return self.password.chosen().map(Some).map_err(|problem| problem.to_string());
        }
        if !self.understood {
            return Err("Confirm first that this file will hold your secret keys in the clear.".into());
        }
        Ok(None)
    }

    pub fn update(&mut self, message: Message) -> Action {
        match message {
            Message::FormatSelected(format) => {
                self.format = format;
                self.understood = false;
                self.error = None;
                self.info = None;
                Action::None
            }
            Message::Password(message) => match self.password.update(message) {
                password::Event::Edited => {
                    self.error = None;
                    Action::None
                }
                password::Event::Submitted => self.update(Message::Save),
            },
            Message::UnderstoodToggled(understood) => {
                self.understood = understood;
                self.error = None;
                Action::None
            }
            Message::Save => {
                if let Err(error) = self.ready() {
                    self.error = Some(error);
                    return Action::None;
                }
                let title = format!("Export as {}", self.format);
                let dialog = rfd::AsyncFileDialog::new().set_title(title);
                let task = if self.format == ExportFormat::GoogleQr {
                    Task::perform(async move { dialog.pick_folder().await.map(|f| f.path().to_owned()) }, Message::Picked)
                } else {
                    let name = match self.format {
                        ExportFormat::Countersign => "countersign-backup.cvault",
                        ExportFormat::UriList => "otpauth-uris.txt",
                        _ => "aegis-export.json",
                    };
                    Task::perform(async move { dialog.set_file_name(name).save_file().await.map(|f| f.path().to_owned()) }, Message::Picked)
                };
                Action::Run(task)
            }
            Message::Picked(None) => {
                self.error = Some("No file was chosen, so nothing was written. If no file dialog appeared, this desktop has no file chooser portal (xdg-desktop-portal) or zenity: use `countersign export` instead.".into());
                Action::None
            }
            Message::Picked(Some(path)) => match self.ready() {
                Ok(password) => {
                    self.busy = true;
                    self.error = None;
                    self.password.clear();
                    Action::Save { format: self.format, password, path }
                }
                Err(error) => {
                    self.error = Some(error);
                    Action::None
                }
            },
            Message::ShowCodes => match self.ready() {
                Ok(_) => Action::ShowGoogleCodes,
                Err(error) => {
                    self.error = Some(error);
                    Action::None
                }
            },
            Message::Saved(result) => {
                self.busy = false;
                match result {
                    Ok(exported) => self.info = Some(exported.to_string()),
                    Err(error) => self.error = Some(error.to_string()),
                }
                Action::None
            }
            Message::Back => Action::Back,
        }
    }

    pub fn view(&self) -> Element<'_, Message> {
        let header = row![
            button(text("← Back")).on_press(Message::Back).padding([8, 12]).style(button::secondary),
            text("Export accounts").size(22)
        ]
        .spacing(14)
        .align_y(Center);
        let mut page = column![
            header,
            row![text("Format").size(15).width(Fill), pick_list(ExportFormat::ALL, Some(self.format), Message::FormatSelected).padding(8)]
                .spacing(12)
                .align_y(Center),
        ]
        .spacing(14)
        .padding(16)
        .max_width(720);
        page = page.push(text(describe(self.format)).size(14).style(text::secondary));
        if self.format.is_encrypted() {
            let [password, confirm] = self.password.fields(["Password for the export", "Repeat it"], 8, true);
            page = page.push(row![password.map(Message::Password), confirm.map(Message::Password)].spacing(8));
        } else {
            page = page.push(container(text("This export holds every secret key in the clear: anyone who gets the file or sees the codes can copy your accounts.").size(14)).padding(10).width(Fill).style(style::notice(true)));
            page = page.push(checkbox(self.understood).label("I understand").on_toggle(Message::UnderstoodToggled));
        }
        if !self.busy {
            let label = if self.format == ExportFormat::GoogleQr { "Save as images…" } else { "Save as…" };
            let mut buttons = row![button(text(label)).on_press(Message::Save).padding([10, 18])].spacing(10);
            if self.format == ExportFormat::GoogleQr {
                buttons = buttons
                    .push(button(text("Show the codes here")).on_press(Message::ShowCodes).padding([10, 18]).style(button::secondary));
            }
            page = page.push(buttons);
        } else {
            page = page.push(text("Exporting…").size(14));
        }
        if let Some(info) = &self.info {
            page = page.push(container(text(info.clone()).size(14)).padding(10).width(Fill).style(style::notice(false)));
        }
        if let Some(error) = &self.error {
            page = page.push(container(text(error.clone()).size(14)).padding(10).width(Fill).style(style::notice(true)));
        }
        page = page.push(Space::new().height(10));
        scrollable(container(page).center_x(Fill)).into()
    }
}

fn describe(format: ExportFormat) -> &'static str {
    match format {
        ExportFormat::Countersign => {
            "A Countersign vault file protected by its own password (Argon2id, XChaCha20-Poly1305). Import it here or on another computer."
        }
        ExportFormat::AegisEncrypted => "An encrypted Aegis vault (scrypt, AES-256-GCM) that Aegis on Android imports.",
        ExportFormat::Aegis => "Aegis's JSON format without encryption.",
        ExportFormat::UriList => "One otpauth:// link per line: most authenticators import it.",
        ExportFormat::GoogleQr => {
            "QR codes that Google Authenticator's \"Transfer accounts\" scans, so accounts can move to a phone. Steam accounts, periods other than 30 s and 7-digit codes cannot go there."
        }
    }
}
