//! The unlock screen: the OS keyring first, then the password, with inline
//! errors; or "Open a backup instead", which unlocks a backup and restores it.

use std::path::PathBuf;
use std::sync::Arc;

use iced::widget::{Space, button, column, container, row, text, text_input};
use iced::{Center, Element, Fill, Task};

use super::{Sensitive, SharedVault, blocking, share};
use crate::backup::{self, Backup};
use crate::secret::Password;
use crate::vault::{self, Keyring, Locked};
use zeroize::{Zeroize, Zeroizing};

#[derive(Debug)]
pub struct Unlock {
    path: PathBuf,
    /// Where backups are taken; a restore first backs up the vault it replaces.
    policy: Option<backup::Policy>,
    backup_dir: PathBuf,
    /// The backups offered after "Open a backup instead", newest first.
    pub backups: Option<Vec<Backup>>,
    /// The backup being opened instead of the vault.
    pub source: Option<PathBuf>,
    /// An unlocked backup waiting for "Restore", with its account count.
    pub restoring: Option<(SharedVault, usize)>,
    /// What is typed, wiped when replaced, cleared or dropped.
    password: Zeroizing<String>,
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
    OpenBackup,
    BackupChosen(PathBuf),
    ChooseBackupFile,
    BackupFilePicked(Option<PathBuf>),
    CancelBackup,
    Restore,
    Restored(Result<SharedVault, vault::Error>),
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
    pub fn new(path: PathBuf, auto_keyring: bool, policy: Option<backup::Policy>, backup_dir: PathBuf) -> (Self, Task<Message>) {
        let mut unlock = Unlock {
            path,
            policy,
            backup_dir,
            backups: None,
            source: None,
            restoring: None,
            password: Zeroizing::default(),
            has_password: false,
            has_keyring: false,
            busy: false,
            keyring_note: None,
            error: None,
            fatal: None,
        };
        let path = unlock.path.clone();
        if unlock.read(&path) && unlock.has_keyring && auto_keyring {
            let task = unlock.try_keyring();
            return (unlock, task);
        }
        (unlock, iced::widget::operation::focus(PASSWORD_ID))
    }

    /// Reads the slots of the file to open; false when it is unreadable.
    fn read(&mut self, path: &std::path::Path) -> bool {
        self.keyring_note = None;
        self.error = None;
        self.password.zeroize();
        match Locked::read(path) {
            Err(error) => {
                self.fatal = Some(error.to_string());
                false
            }
            Ok(locked) => {
                self.fatal = None;
                self.has_password = locked.has_password();
                self.has_keyring = locked.has_keyring();
                true
            }
        }
    }

    /// The file the form opens: the chosen backup, or the vault.
    fn target(&self) -> PathBuf {
        self.source.clone().unwrap_or_else(|| self.path.clone())
    }

    fn try_keyring(&mut self) -> Task<Message> {
        self.busy = true;
        self.error = None;
        let path = self.target();
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
                self.password = Zeroizing::new(password);
                self.error = None;
                Action::None
            }
            Message::Submit => {
                if self.busy || self.password.is_empty() || !self.has_password {
                    return Action::None;
                }
                self.busy = true;
                let path = self.target();
                let password = Password::new(std::mem::take(&mut *self.password));
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
                if self.source.is_some() {
                    let accounts = vault.lock().map(|v| v.entries().len()).unwrap_or(0);
                    self.restoring = Some((vault, accounts));
                    return Action::None;
                }
                Action::Unlocked(vault)
            }
            Message::OpenBackup => {
                match backup::list(&self.backup_dir, &self.path) {
                    Ok(backups) => self.backups = Some(backups),
                    Err(error) => {
                        self.backups = Some(Vec::new());
                        self.error = Some(error.to_string());
                    }
                }
                Action::None
            }
            Message::BackupChosen(path) => {
                self.read(&path);
                self.source = Some(path);
                self.backups = None;
                Action::Run(iced::widget::operation::focus(PASSWORD_ID))
            }
            Message::ChooseBackupFile => {
                let dialog =
                    rfd::AsyncFileDialog::new().set_title("Open a Countersign backup").add_filter("Countersign vault", &["cvault", "bak"]);
                Action::Run(Task::perform(async move { dialog.pick_file().await.map(|f| f.path().to_owned()) }, Message::BackupFilePicked))
            }
            Message::BackupFilePicked(None) => Action::None,
            Message::BackupFilePicked(Some(path)) => self.update(Message::BackupChosen(path)),
            Message::CancelBackup => {
                self.source = None;
                self.backups = None;
                self.restoring = None;
                let path = self.path.clone();
                self.read(&path);
                Action::None
            }
            Message::Restore => {
                let Some((backup, _)) = self.restoring.take() else { return Action::None };
                self.busy = true;
                let (path, policy) = (self.path.clone(), self.policy.clone());
                let copies = policy.clone().unwrap_or(backup::Policy { dir: self.backup_dir.clone(), keep: usize::MAX });
                Action::Run(Task::perform(
                    blocking(move || {
                        let backup = Arc::try_unwrap(backup).map_err(|_| vault::Error::Encode("the backup is still in use".into()))?;
                        let backup = backup.into_inner().map_err(|_| vault::Error::Encode("the backup's lock was poisoned".into()))?;
                        vault::restore(backup, &path, &copies, policy, super::now_unix()).map(share)
                    }),
                    Message::Restored,
                ))
            }
            Message::Restored(Ok(vault)) => {
                self.busy = false;
                self.source = None;
                Action::Unlocked(vault)
            }
            Message::Restored(Err(error)) => {
                self.busy = false;
                self.error = Some(format!("Not restored: {error}"));
                Action::None
            }
            Message::Unlocked(Err(error)) => {
                self.busy = false;
                match error {
                    vault::Error::WrongPassword => self.error = Some("Wrong password. Try again.".into()),
                    vault::Error::Keyring(_) | vault::Error::KeyringMismatch | vault::Error::NoKeyringSlot if self.has_password => {
                        self.keyring_note = Some(format!("{error}. Enter your password instead."));
                    }
                    vault::Error::Corrupt { .. }
                    | vault::Error::UnsupportedVersion { .. }
                    | vault::Error::NotAVault { .. }
                    | vault::Error::NotFound { .. } => {
                        self.fatal = Some(error.to_string());
                    }
                    other => self.error = Some(other.to_string()),
                }
                Action::Run(iced::widget::operation::focus(PASSWORD_ID))
            }
        }
    }

    pub fn view(&self) -> Element<'_, Message> {
        let mut form = column![text("Countersign").size(30), text("Your accounts are locked.").size(15), Space::new().height(12),]
            .spacing(6)
            .align_x(Center)
            .max_width(380);

        if let Some(backups) = &self.backups {
            return super::centered(self.backup_list(form, backups));
        }
        if let Some((_, accounts)) = &self.restoring {
            let file = self.source.as_ref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            form = form.push(text("Restore this backup?").size(18));
            form = form.push(
                text(format!(
                    "It holds {accounts} account{}. The vault it replaces is first copied to the backups folder, {}.",
                    if *accounts == 1 { "" } else { "s" },
                    self.backup_dir.display()
                ))
                .size(14)
                .align_x(Center),
            );
            form = form.push(text(file).size(13).style(text::secondary));
            form = form.push(
                row![
                    button(text("Restore")).on_press(Message::Restore).padding([10, 18]),
                    button(text("Cancel")).on_press(Message::CancelBackup).padding([10, 18]).style(button::secondary)
                ]
                .spacing(10),
            );
            if let Some(error) = &self.error {
                form = form.push(text(error.clone()).size(14).style(text::danger));
            }
            return super::centered(form);
        }
        if let Some(source) = &self.source {
            form = form.push(
                container(text(format!("Opening the backup {}", source.display())).size(13)).padding(10).style(super::style::notice(false)),
            );
        }
        if let Some(fatal) = &self.fatal {
            form = form.push(container(text(fatal.clone()).size(14)).padding(12).style(super::style::notice(true)));
            return super::centered(form.push(self.backup_link()));
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
            return super::centered(form.push(self.backup_link()));
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
        super::centered(form.push(unlock).push(self.backup_link()))
    }

    /// "Open a backup instead", or the way back from a backup to the vault.
    fn backup_link(&self) -> Element<'_, Message> {
        if self.busy {
            return Space::new().into();
        }
        let (label, message) = if self.source.is_some() {
            ("Open the vault instead", Message::CancelBackup)
        } else {
            ("Open a backup instead", Message::OpenBackup)
        };
        button(text(label).size(14)).on_press(message).style(button::text).into()
    }

    fn backup_list<'a>(&'a self, mut form: iced::widget::Column<'a, Message>, backups: &'a [Backup]) -> iced::widget::Column<'a, Message> {
        form = form.push(text(format!("Backups in {}", self.backup_dir.display())).size(14));
        if backups.is_empty() {
            form = form.push(text("There are no backups in this folder.").size(14).style(text::secondary));
        }
        for backup in backups.iter().take(10) {
            form = form.push(
                button(text(format!("Taken {}", backup.taken())).width(Fill))
                    .on_press(Message::BackupChosen(backup.path.clone()))
                    .padding(8)
                    .width(Fill)
                    .style(button::secondary),
            );
        }
        if let Some(error) = &self.error {
            form = form.push(text(error.clone()).size(14).style(text::danger));
        }
        form.push(
            row![
                button(text("Choose a file…")).on_press(Message::ChooseBackupFile).padding([8, 14]),
                button(text("Cancel")).on_press(Message::CancelBackup).padding([8, 14]).style(button::secondary)
            ]
            .spacing(10),
        )
    }
}
