//! Preferences' backups: how many to keep, where, and verifying the newest.

use std::path::{Path, PathBuf};

use iced::widget::{button, column, container, pick_list, row, text};
use iced::{Center, Element, Fill};

use super::{Action, VaultFacts, section};
use crate::backup;
use crate::gui::style;
use crate::settings::Settings;

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

#[derive(Debug, Default)]
pub struct Section {
    /// The last verification recorded in the backup folder.
    pub verified: Option<backup::Verified>,
    pub verifying: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Message {
    KeepSelected(usize),
    ChooseFolder,
    FolderPicked(Option<PathBuf>),
    Verify,
    Verified(Result<backup::Verified, crate::gui::jobs::Error>),
}

impl Section {
    /// The section, with the last verification read from `backup_dir`.
    pub fn new(backup_dir: &Path) -> Self {
        Section { verified: backup::last_verified(backup_dir), ..Section::default() }
    }

    pub fn update(&mut self, message: Message) -> Action {
        match message {
            Message::KeepSelected(keep) => Action::ChangeSettings(Box::new(move |s| s.backup_keep = keep)),
            Message::ChooseFolder => {
                let dialog = rfd::AsyncFileDialog::new().set_title("Folder for automatic backups");
                Action::Run(iced::Task::perform(async move { dialog.pick_folder().await.map(|f| f.path().to_owned()) }, |picked| {
                    super::Message::Backups(Message::FolderPicked(picked))
                }))
            }
            Message::FolderPicked(None) => Action::None,
            Message::FolderPicked(Some(dir)) => Action::ChangeSettings(Box::new(move |s| s.backup_dir = Some(dir))),
            Message::Verify => {
                if self.verifying {
                    return Action::None;
                }
                self.verifying = true;
                self.error = None;
                Action::VerifyBackup
            }
            Message::Verified(result) => {
                self.verifying = false;
                match result {
                    Ok(verified) => self.verified = Some(verified),
                    Err(error) => self.error = Some(error.to_string()),
                }
                Action::None
            }
        }
    }

    pub fn view<'a>(&'a self, settings: &'a Settings, vault: &VaultFacts<'a>) -> Element<'a, Message> {
        let backups_on = settings.backup_keep > 0;
        let mut backups = column![
            section("Backups"),
            row![
                text("Keep an encrypted copy after every change").size(15).width(Fill),
                pick_list(KEEP, Some(Keep(settings.backup_keep)), |k| Message::KeepSelected(k.0)).padding(8),
            ]
            .spacing(12)
            .align_y(Center),
            row![
                text(format!("Folder: {}", vault.backup_dir.display())).size(13).style(text::secondary).width(Fill),
                button(text("Change folder…").size(14)).on_press(Message::ChooseFolder).padding([6, 12]).style(button::secondary),
            ]
            .spacing(10)
            .align_y(Center),
            text("A backup is a copy of the vault file: it opens with the same password or keyring.").size(13).style(text::secondary),
        ]
        .spacing(10);
        backups = backups.push(
            text(match &self.verified {
                Some(verified) => {
                    format!("Last verified restorable: {} ({}, {} accounts)", verified.when(), verified.file, verified.accounts)
                }
                None => "Never verified.".to_owned(),
            })
            .size(14),
        );
        if backups_on && !self.verifying {
            backups = backups.push(button(text("Verify backup")).on_press(Message::Verify).padding([8, 14]));
        } else if self.verifying {
            backups = backups.push(text("Verifying…").size(14));
        }
        for error in [&vault.backup_problem, &self.error].into_iter().flatten() {
            backups = backups.push(container(text(error.clone()).size(14)).padding(10).width(Fill).style(style::notice(true)));
        }
        backups.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifying_asks_the_root_once_and_says_how_it_went() {
        let mut section = Section::default();
        assert!(matches!(section.update(Message::Verify), Action::VerifyBackup));
        assert!(matches!(section.update(Message::Verify), Action::None), "one verification at a time");
        section.update(Message::Verified(Err(crate::gui::jobs::Error::Poisoned)));
        assert!(!section.verifying);
        assert_eq!(section.error.as_deref(), Some("the vault lock was poisoned"));
        let verified = backup::Verified { file: "vault-1.cvault".into(), accounts: 3, at: 1_795_435_210 };
        assert!(matches!(section.update(Message::Verify), Action::VerifyBackup));
        assert_eq!(section.error, None);
        section.update(Message::Verified(Ok(verified.clone())));
        assert_eq!(section.verified, Some(verified));
    }

    #[test]
    fn a_choice_becomes_a_settings_change() {
        let mut section = Section::default();
        let mut settings = Settings::default();
        let Action::ChangeSettings(change) = section.update(Message::KeepSelected(20)) else { panic!("a settings change") };
        change(&mut settings);
        assert_eq!(settings.backup_keep, 20);
        let Action::ChangeSettings(change) = section.update(Message::FolderPicked(Some("/backups".into()))) else {
            panic!("a settings change")
        };
        change(&mut settings);
        assert_eq!(settings.backup_dir.as_deref(), Some(Path::new("/backups")));
        assert!(matches!(section.update(Message::FolderPicked(None)), Action::None), "a cancelled dialog changes nothing");
    }
}
