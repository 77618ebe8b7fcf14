//! What a change of protection does to a vault's older copies: `<vault>.bak` and the automatic backups.

use std::path::{Path, PathBuf};

use super::{Vault, backup_path, file, format};
use crate::backup;

/// What a change of password or keyring slot did to the vault's older
/// copies (`<vault>.bak` and the automatic backups of this vault).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Copies {
    /// Re-encrypted to the vault's new key slots (each keeps its own accounts).
    pub rekeyed: Vec<PathBuf>,
    /// Removed: made under an earlier master key, they could not be
    /// re-encrypted and still opened with an old password or keyring key.
    pub removed: Vec<PathBuf>,
    /// Made under an earlier master key and left as they are (keyring off).
    pub older: Vec<PathBuf>,
    /// Could be neither re-encrypted nor removed.
    pub failed: Vec<PathBuf>,
    /// Keyring off only: the keyring entry was kept, because a copy in
    /// `older` or `failed` opens only through it.
    pub keyring_entry_kept: bool,
}

impl Copies {
    /// One line for the user, or `None` when there were no copies.
    pub fn summary(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.rekeyed.is_empty() {
            parts.push(format!(
                "{} older cop{} (backups) re-encrypted to the new key",
                self.rekeyed.len(),
                if self.rekeyed.len() == 1 { "y" } else { "ies" }
            ));
        }
        if !self.removed.is_empty() {
            parts.push(format!(
                "{} backup{} made before an earlier change removed, as {} still opened with an old password or keyring key",
                self.removed.len(),
                if self.removed.len() == 1 { "" } else { "s" },
                if self.removed.len() == 1 { "it" } else { "they" }
            ));
        }
        if !self.failed.is_empty() {
            parts.push(format!(
                "{} could be neither re-encrypted nor removed and still open{} with the old key: {}",
                self.failed.len(),
                if self.failed.len() == 1 { "s" } else { "" },
                self.failed.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            ));
        }
        if self.keyring_entry_kept {
            parts.push("the keyring entry was kept, because an older backup opens only through it".to_owned());
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// Whether the vault copy at `path` opens only through the keyring entry `user`.
pub(super) fn needs_entry(path: &Path, user: &str) -> bool {
    let Ok(bytes) = file::read(path) else { return false };
    let Ok(copy) = format::File::decode(&bytes) else { return false };
    copy.header.password_slot().is_none() && copy.header.keyring_slot() == Some(user)
}

impl Vault {
    /// Re-encrypts this vault's older copies (`<vault>.bak`, the automatic
    /// backups) to the current header and master key, each keeping its own
    /// accounts. Copies `old_master` cannot open were made under an earlier
    /// master key: removed when `remove_older`, else left (and listed). Other
    /// vaults' files are never touched. The caller holds the lock.
    pub(super) fn rekey_copies(&self, old_master: &format::Key, remove_older: bool) -> Copies {
        let mut copies = Copies::default();
        let mut paths: Vec<PathBuf> = vec![backup_path(&self.path)];
        if let Some(policy) = &self.backups
            && let Ok(list) = backup::list(&policy.dir, &self.path)
        {
            paths.extend(list.into_iter().map(|b| b.path));
        }
        for path in paths.into_iter().filter(|p| p.is_file()) {
            let Ok(bytes) = file::read(&path) else { continue };
            let Ok(copy) = format::File::decode(&bytes) else { continue };
            if copy.header.vault_id != self.header.vault_id {
                continue;
            }
            let outcome = match copy.decrypt(old_master) {
                Ok(contents) => format::File::encrypt(&self.header, &self.master, &contents)
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| crate::atomic::replace(&path, file::sibling(&path, "tmp"), &bytes).map_err(|e| e.to_string()))
                    .map(|()| copies.rekeyed.push(path.clone())),
                Err(_) if remove_older => {
                    std::fs::remove_file(&path).map_err(|e| e.to_string()).map(|()| copies.removed.push(path.clone()))
                }
                Err(_) => {
                    copies.older.push(path.clone());
                    Ok(())
                }
            };
            if outcome.is_err() {
                // Never left opening with the old credentials if it can be helped.
                match std::fs::remove_file(&path) {
                    Ok(()) => copies.removed.push(path),
                    Err(_) => copies.failed.push(path),
                }
            }
        }
        copies
    }
}
