//! Vault work the window runs off the UI thread: account changes,
//! activation and enrollment, backups, exports, and changes of protection.

use super::{Change, Protection, SharedVault, blocking};
use crate::account::Method;
use crate::vault::{self, Keyring, Kdf, Vault};
use crate::{backup, transfer};

/// A vault change from the accounts list, applied under the vault's file lock.
pub fn apply(vault: &mut Vault, change: Change) -> Result<String, vault::Error> {
    match change {
        Change::Rename { id, issuer, name } => vault
            .modify(&id, |account| {
                account.issuer = issuer.trim().to_owned();
                account.label_issuer = None;
                account.name = name.trim().to_owned();
            })
            .map(|()| "Account renamed".to_owned()),
        Change::Remove(id) => vault.remove(&id).map(|entry| format!("Deleted {}", entry.account.title())),
        Change::Move { id, up } => vault
            .update(|entries| {
                let index = entries.iter().position(|e| e.id == id).ok_or_else(|| vault::Error::NoSuchAccount(id.clone()))?;
                let target = if up { index.checked_sub(1) } else { Some(index + 1).filter(|t| *t < entries.len()) };
                if let Some(target) = target {
                    entries.swap(index, target);
                }
                Ok(())
            })
            .map(|()| "Order saved".to_owned()),
        Change::NextHotp(id) => vault
            .modify(&id, |account| {
                if let Method::Hotp { counter } = &mut account.method {
                    *counter = counter.wrapping_add(1);
                }
            })
            .map(|()| "Next code".to_owned()),
    }
}

/// Finishes a privacyIDEA enrollment (an RSA-4096 key, sent to the server)
/// and keeps the token.
pub async fn enroll_token(vault: SharedVault, enrollment: crate::privacyidea::Enrollment, read_at: i64, now: u64) -> Result<String, String> {
    let token = crate::privacyidea::client::enroll(enrollment, read_at, now as i64, jiff::Timestamp::now).await.map_err(|e| e.to_string())?;
    blocking(move || {
        let mut vault = vault.lock().map_err(|_| "the vault lock was poisoned".to_owned())?;
        let title = token.title();
        vault.add_push_token(token, now).map_err(|e| e.to_string())?;
        vault.ensure_journal().map_err(|e| e.to_string())?;
        Ok(title)
    })
    .await
}

/// Activates a work or school account and keeps it: the account with its
/// push link in the vault, its listener key outside it.
pub async fn activate(vault: SharedVault, code: String, url: String, now: u64) -> Result<String, String> {
    let device = std::env::var("HOSTNAME").unwrap_or_else(|_| "Countersign desktop".into());
    let activated = crate::push::client::activate(&url, &code, &device).await.map_err(|e| e.to_string())?;
    blocking(move || {
        let mut vault = vault.lock().map_err(|_| "the vault lock was poisoned".to_owned())?;
        let keyring = crate::reach::keyring_for(&vault);
        let kept = crate::reach::keep_activation(&mut vault, activated, keyring.as_ref(), now).map_err(|e| e.to_string())?;
        // The account is kept: what went wrong after that is said, not failed.
        Ok(match kept.warnings.first() {
            Some(warning) => format!("{} (but {warning})", kept.title),
            None => kept.title,
        })
    })
    .await
}

/// Verifies the newest backup and records it in the backup folder.
pub fn verify_backup(vault: &SharedVault) -> Result<backup::Verified, String> {
    let mut vault = vault.lock().map_err(|_| "the vault lock was poisoned".to_owned())?;
    let (newest, accounts) = vault.verify_backup().map_err(|e| e.to_string())?;
    let file = newest.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let verified = backup::Verified { file, accounts, at: super::now_unix() as i64 };
    if let Some(policy) = vault.backups() {
        backup::record(&policy.dir, &verified).map_err(|e| e.to_string())?;
    }
    Ok(verified)
}

/// Writes an export chosen on the Export page.
pub fn save_export(vault: &SharedVault, format: transfer::ExportFormat, password: Option<crate::secret::Password>, path: &std::path::Path) -> Result<String, String> {
    let vault = vault.lock().map_err(|_| "the vault lock was poisoned".to_owned())?;
    let export = transfer::export(format, vault.entries(), password.as_ref()).map_err(|e| e.to_string())?;
    let written = transfer::save(&export, path).map_err(|e| e.to_string())?;
    let exported = vault.entries().len() - export.left_out.len();
    let mut info = format!("Exported {exported} of {} accounts to {}.", vault.entries().len(), if written.len() == 1 { written[0].display().to_string() } else { format!("{} images in {}", written.len(), path.display()) });
    for (title, why) in &export.left_out {
        info.push_str(&format!(" Left out {title}: {why}."));
    }
    Ok(info)
}

/// `done`, then what happened to the vault's older copies, if there were any.
fn with_copies(done: &str, copies: &vault::Copies) -> String {
    match copies.summary() {
        Some(summary) => format!("{done} Older copies: {summary}."),
        None => done.to_owned(),
    }
}

/// A change of password or keyring slot, run off the UI thread (Argon2id).
pub fn protect(vault: &SharedVault, protection: Protection) -> Result<String, String> {
    let mut vault = vault.lock().map_err(|_| "the vault lock was poisoned".to_owned())?;
    let keyring = || Keyring::system().map_err(|e| e.to_string());
    match protection {
        Protection::SetPassword(password) => {
            let keyring = if vault.has_keyring() { keyring().ok() } else { None };
            let copies = vault.set_password(Some((password, Kdf::default())), keyring.as_ref()).map_err(|e| e.to_string())?;
            Ok(with_copies("Password saved. The vault's master key (and keyring key, if any) was replaced.", &copies))
        }
        Protection::RemovePassword => {
            let keyring = keyring().ok();
            let copies = vault.set_password(None, keyring.as_ref()).map_err(|e| e.to_string())?;
            Ok(with_copies("Password removed: the OS keyring, with a new key, now opens the vault.", &copies))
        }
        Protection::Keyring(on) => {
            let copies = vault.set_keyring(on, &keyring()?).map_err(|e| e.to_string())?;
            Ok(with_copies(if on { "The OS keyring now unlocks the vault." } else { "The OS keyring no longer unlocks the vault." }, &copies))
        }
    }
}

