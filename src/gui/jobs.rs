//! Vault work the window runs off the UI thread: account changes,
//! activation and enrollment, backups, exports, and changes of protection.

use std::sync::{Arc, MutexGuard};

use super::{Change, Protection, SharedVault, blocking};
use crate::account::Method;
use crate::vault::{self, Kdf, Keyring, Vault};
use crate::{backup, journal, listeners, transfer};

/// Why work run for the window failed. `Clone`, to travel in a `Message`:
/// the domain's errors are shared behind an `Arc`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A task panicked while it held the vault; nothing more is written.
    #[error("the vault lock was poisoned")]
    Poisoned,
    #[error(transparent)]
    Vault(Arc<vault::Error>),
    #[error(transparent)]
    Activation(Arc<crate::push::client::Error>),
    #[error(transparent)]
    Enrollment(Arc<crate::privacyidea::client::Error>),
    #[error(transparent)]
    Reach(Arc<crate::reach::Error>),
    #[error(transparent)]
    Listeners(Arc<listeners::Error>),
    #[error(transparent)]
    Journal(Arc<journal::Error>),
    #[error(transparent)]
    Scan(Arc<crate::scan::Error>),
    #[error(transparent)]
    Screen(Arc<crate::screen::Error>),
    #[error("The clipboard is not available: {0}")]
    Clipboard(String),
    #[error("The clipboard holds no image and no text. Copy a QR code image or an otpauth:// link first.")]
    ClipboardEmpty,
    #[error(transparent)]
    Export(Arc<transfer::ExportError>),
    #[error("the account is no longer in the vault")]
    AccountGone,
    #[error("the vault has no journal key")]
    NoJournalKey,
    #[error("The connection closed; try again.")]
    ConnectionClosed,
}

macro_rules! from_domain {
    ($($variant:ident($source:ty)),* $(,)?) => {$(
        impl From<$source> for Error {
            fn from(error: $source) -> Self {
                Error::$variant(Arc::new(error))
            }
        }
    )*};
}

from_domain!(
    Vault(vault::Error),
    Activation(crate::push::client::Error),
    Enrollment(crate::privacyidea::client::Error),
    Reach(crate::reach::Error),
    Listeners(listeners::Error),
    Journal(journal::Error),
    Scan(crate::scan::Error),
    Screen(crate::screen::Error),
    Export(transfer::ExportError),
);

/// The vault, for work off the UI thread. The only place that says what a
/// poisoned lock means.
pub fn lock(vault: &SharedVault) -> Result<MutexGuard<'_, Vault>, Error> {
    vault.lock().map_err(|_| Error::Poisoned)
}

/// What finishing an activation or enrollment added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    pub title: String,
    /// What went wrong after the account was kept: said, not failed.
    pub warning: Option<String>,
}

impl std::fmt::Display for Added {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.warning {
            Some(warning) => write!(f, "{} (but {warning})", self.title),
            None => f.write_str(&self.title),
        }
    }
}

/// What a change from the accounts list did; its `Display` is the toast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Renamed,
    /// The title of the account deleted.
    Deleted(String),
    Moved,
    NextCode,
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Applied::Renamed => f.write_str("Account renamed"),
            Applied::Deleted(title) => write!(f, "Deleted {title}"),
            Applied::Moved => f.write_str("Order saved"),
            Applied::NextCode => f.write_str("Next code"),
        }
    }
}

/// A vault change from the accounts list, applied under the vault's file lock.
pub fn apply(vault: &mut Vault, change: Change, now: u64) -> Result<Applied, vault::Error> {
    match change {
        Change::Rename { id, issuer, name } => vault
            .modify(&id, now, |account| {
                account.issuer = issuer.trim().to_owned();
                account.label_issuer = None;
                account.name = name.trim().to_owned();
            })
            .map(|()| Applied::Renamed),
        Change::Remove(id) => vault.remove(&id, now).map(|entry| Applied::Deleted(entry.account.title())),
        Change::Move { id, up } => vault
            .update(now, |entries| {
                let index = entries.iter().position(|e| e.id == id).ok_or_else(|| vault::Error::NoSuchAccount(id.clone()))?;
                let target = if up { index.checked_sub(1) } else { Some(index + 1).filter(|t| *t < entries.len()) };
                if let Some(target) = target {
                    entries.swap(index, target);
                }
                Ok(())
            })
            .map(|()| Applied::Moved),
        Change::NextHotp(id) => vault
            .modify(&id, now, |account| {
                if let Method::Hotp { counter } = &mut account.method {
                    *counter = counter.wrapping_add(1);
                }
            })
            .map(|()| Applied::NextCode),
    }
}

/// Finishes a privacyIDEA enrollment (an RSA-4096 key, sent to the server)
/// and keeps the token.
pub async fn enroll_token(vault: SharedVault, enrollment: crate::privacyidea::Enrollment, read_at: i64, now: u64) -> Result<Added, Error> {
    let token = crate::privacyidea::client::enroll(enrollment, read_at, now as i64).await?;
    blocking(move || {
        let mut vault = lock(&vault)?;
        let title = token.title();
        vault.add_push_token(token, now)?;
        vault.ensure_journal(now)?;
        Ok(Added { title, warning: None })
    })
    .await
}

/// Activates a work or school account and keeps it: the account with its
/// push link in the vault, its listener key outside it.
pub async fn activate(vault: SharedVault, code: String, url: String, now: u64) -> Result<Added, Error> {
    let device = std::env::var("HOSTNAME").unwrap_or_else(|_| "Countersign desktop".into());
    let activated = crate::push::client::activate(&url, &code, &device).await?;
    blocking(move || {
        let mut vault = lock(&vault)?;
        let keyring = crate::reach::keyring_for(&vault);
        let kept = crate::reach::keep_activation(&mut vault, activated, keyring.as_ref(), now)?;
        Ok(Added { warning: kept.warnings.first().map(ToString::to_string), title: kept.title })
    })
    .await
}

/// Verifies the newest backup and records it in the backup folder.
pub fn verify_backup(vault: &SharedVault, now: u64) -> Result<backup::Verified, Error> {
    Ok(lock(vault)?.verify_backup(now)?.verified)
}

/// Writes an export chosen on the Export page.
pub fn save_export(
    vault: &SharedVault,
    format: transfer::ExportFormat,
    password: Option<crate::secret::Password>,
    path: &std::path::Path,
) -> Result<Exported, Error> {
    let vault = lock(vault)?;
    let saved = transfer::export_to(path, format, vault.entries(), password.as_ref())?;
    Ok(Exported { saved, path: path.to_owned() })
}

/// An export that was written, to `path` (a folder for images).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub saved: transfer::Saved,
    pub path: std::path::PathBuf,
}

impl std::fmt::Display for Exported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Exported { saved, path } = self;
        let to = if saved.files.len() == 1 {
            saved.files[0].display().to_string()
        } else {
            format!("{} images in {}", saved.files.len(), path.display())
        };
        write!(f, "Exported {} of {} accounts to {to}.", saved.exported, saved.of)?;
        for (title, why) in &saved.left_out {
            write!(f, " Left out {title}: {why}.")?;
        }
        Ok(())
    }
}

/// What a change of protection did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protected {
    PasswordSet,
    PasswordRemoved,
    KeyringOn,
    KeyringOff,
}

/// A change of protection that was saved, and what happened to the vault's
/// older copies, if there were any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectionChanged {
    pub change: Protected,
    pub copies: Option<String>,
}

impl std::fmt::Display for ProtectionChanged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.change {
            Protected::PasswordSet => "Password saved. The vault's master key (and keyring key, if any) was replaced.",
            Protected::PasswordRemoved => "Password removed: the OS keyring, with a new key, now opens the vault.",
            Protected::KeyringOn => "The OS keyring now unlocks the vault.",
            Protected::KeyringOff => "The OS keyring no longer unlocks the vault.",
        })?;
        match &self.copies {
            Some(summary) => write!(f, " Older copies: {summary}."),
            None => Ok(()),
        }
    }
}

/// A change of password or keyring slot, run off the UI thread (Argon2id).
pub fn protect(vault: &SharedVault, protection: Protection, now: u64) -> Result<ProtectionChanged, Error> {
    let mut vault = lock(vault)?;
    let (change, copies) = match protection {
        Protection::SetPassword(password) => {
            let keyring = if vault.has_keyring() { Keyring::system().ok() } else { None };
            (Protected::PasswordSet, vault.set_password(Some((password, Kdf::default())), keyring.as_ref(), now)?)
        }
        Protection::RemovePassword => {
            let keyring = Keyring::system().ok();
            (Protected::PasswordRemoved, vault.set_password(None, keyring.as_ref(), now)?)
        }
        Protection::Keyring(on) => {
            let keyring = Keyring::system().map_err(vault::Error::from)?;
            (if on { Protected::KeyringOn } else { Protected::KeyringOff }, vault.set_keyring(on, &keyring, now)?)
        }
    };
    Ok(ProtectionChanged { change, copies: copies.summary() })
}
