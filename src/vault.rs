//! The encrypted vault: one file holding every account, opened by key slots.
//!
//! # File format, versions 1 to 3
//!
//! ```text
//! offset  size  field
//! 0       8     magic  "CSVAULT\n"
//! 8       2     format version, big-endian u16: 1; 2 when the payload
//!               holds privacyIDEA tokens; 3 when it holds the sign-in
//!               journal's key (so that older readers, which ignore unknown
//!               fields, refuse the file instead of dropping them on save)
//! 10      4     header length N, big-endian u32 (at most 1 MiB)
//! 14      N     header: UTF-8 JSON (below)
//! 14+N    ...   payload ciphertext: XChaCha20-Poly1305(master key, header.nonce,
//!               plaintext = payload JSON, AAD = bytes 0 .. 14+N), 16-byte tag last
//! end-32  32    SHA-256 of every byte before it
//! ```
//!
//! The header is plain JSON so that it can be read without a key:
//!
//! ```json
//! { "vault_id": "<32 hex>", "cipher": "XChaCha20-Poly1305", "nonce": "<base64, 24 bytes>",
//!   "slots": [
//!     { "kind": "password", "kdf": { "algorithm": "argon2id", "version": 19,
//!       "memory_kib": 65536, "passes": 3, "lanes": 1, "salt": "<base64, 16 bytes>" },
//!       "nonce": "<base64, 24>", "wrapped_key": "<base64, 48>" },
//!     { "kind": "keyring", "service": "countersign", "user": "vault-<vault_id>-<16 hex>",
//!       "nonce": "<base64, 24>", "wrapped_key": "<base64, 48>" } ] }
//! ```
//!
//! * **Master key.** 32 random bytes from the OS. It encrypts the payload only.
//!   It is replaced by a new random key whenever the password changes or is removed.
//! * **Slots** (the Aegis model). Each slot holds the master key encrypted with
//!   XChaCha20-Poly1305 under a slot key, with AAD
//!   `"countersign-slot-v1|" + vault_id + "|" + kind`, which binds a slot to its
//!   vault and kind. The password slot's key is Argon2id(password, salt, params
//!   in the header, 32-byte output). The keyring slot's key is 32 random bytes
//!   stored in the OS keyring (Secret Service, Keychain, Credential Manager)
//!   under `service`/`user`.
//! * **Keyring entries.** Each keyring key has its own entry,
//!   `countersign`/`vault-<vault_id>-<16 random hex>` (since December 2026;
//!   earlier releases wrote one entry per vault, `vault-<vault_id>`, which
//!   still opens). The header is read before anything is authenticated, so
//!   readers accept only the service `countersign` and these two user
//!   shapes for this `vault_id` (anything else is a damaged header): a
//!   tampered file cannot make Countersign read or delete another entry.
//! * **Re-keying.** A password change or removal draws a new master key and,
//!   when there is a keyring slot, a new keyring key in a new entry (the old
//!   entry is deleted). The vault's older copies (`<vault>.bak`, the
//!   automatic backups) are then re-encrypted to the new header and master
//!   key, each keeping its own accounts; copies made under an earlier master
//!   key cannot be and are removed, so no copy Countersign knows of opens with
//!   the old password or keyring key. Turning the keyring off re-encrypts the
//!   copies without the keyring slot, and keeps the entry only while an
//!   older copy opens through nothing else.
//! * **Argon2id costs.** Readers refuse, by the file's name and before any
//!   password is tried, a password slot asking for more than 1 GiB of
//!   memory, 16 passes or 16 lanes ([`Kdf::MAX_MEMORY_KIB`]; until December
//!   2026 the ceiling was 4 GiB and 64 passes, which no writer came near).
//!   Front ends refuse to set a password with less than 19 MiB and 2 passes
//!   ([`Kdf::check_strength`], OWASP's minimum); readers accept any floor.
//! * **Nonces.** Every save draws a fresh random 24-byte payload nonce; every
//!   slot (re)wrap draws a fresh one too. 192-bit random nonces make reuse
//!   negligible without any counter state.
//! * **Authentication.** The whole header is the payload's associated data, so
//!   a changed slot list, KDF parameter or nonce makes decryption fail. The
//!   trailing SHA-256 is not a security measure: it tells accidental damage
//!   (truncation, a flipped bit) apart from a wrong password, so the user gets
//!   "damaged, restore the backup" rather than "wrong password".
//! * **Payload** JSON: `{ "entries": [ { "id", "added", "issuer", "name",
//!   "label_issuer", "secret" (Base32), "type" ("totp" | "hotp" | "steam"),
//!   "period" | "counter", "algorithm", "digits", "push" (a work or school
//!   account's link) } ], "push_tokens": [ { "id", "added", "serial", "label",
//!   "issuer", "url", "sslverify", "pin", "key" (PKCS#8 DER, base64),
//!   "server_key" (PKCS#1 DER, base64) } ], "journal_key": "<base64, 32
//!   bytes>" }`: `push_tokens` are privacyIDEA PUSH tokens (no codes), left
//!   out when there are none; `journal_key` is the X25519 secret key that
//!   opens the sign-in journal beside the vault (`crate::journal`), made the
//!   first time the vault has a work or school account or token, left out of
//!   exports. Unknown fields are ignored.
//! * **Exports** ([`export_copy`]) are vaults of the same format holding the
//!   accounts only: no `push_tokens`, no `journal_key` and no entry's `push`
//!   link (its device key answers sign-ins: a copy holding it would be a
//!   second phone the organisation never enrolled), so a work or school
//!   account exports as its TOTP codes.
//! * **Outside the vault**, on purpose: the listener keys of work or school
//!   accounts (`crate::listeners`), which only receive sign-in requests, so
//!   that a locked vault still gets them; and the journal, sealed to the
//!   public half of `journal_key`, so records can be appended while locked.
//! * **Compatibility.** Readers refuse versions they do not know and never
//!   write over such a file. `tests/fixtures/vault-v1.cvault` is kept forever
//!   and must keep opening.
//!
//! # Saving
//!
//! Writers hold an advisory lock on `<vault>.lock`, re-read the vault under it,
//! apply their change, write `<vault>.tmp` (created anew, mode 0600, never
//! through a symlink: `crate::atomic`), fsync it, hard-link the current
//! vault to `<vault>.bak` (the previous generation), rename the temp file over
//! the vault and fsync the directory. A crash at any point leaves a vault that
//! opens with either the old or the new contents.

mod copies;
mod file;
mod format;
pub mod keyring;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::account::{self, Account, Method};
use crate::backup;
use crate::secret::Password;

pub use copies::Copies;
pub use format::Kdf;
pub use keyring::Keyring;

/// The first bytes of every vault file (and so of every backup).
pub const MAGIC: &[u8] = format::MAGIC;

/// The file name used inside the data directory.
pub const FILE_NAME: &str = "vault.cvault";

/// Where the vault lives when nothing overrides it: the platform data directory.
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("org", "Countersign", "countersign").map(|dirs| dirs.data_dir().join(FILE_NAME))
}

/// The previous generation kept beside a vault.
pub fn backup_path(path: &Path) -> PathBuf {
    file::sibling(path, "bak")
}

/// A stable, random identifier of an account inside one vault.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Id(String);

impl Id {
    fn random() -> Result<Self, Error> {
        Ok(Id(hex(&format::random::<8>()?)))
    }

    /// A fixed id for tests of other modules.
    #[cfg(test)]
    pub(crate) fn for_tests(n: usize) -> Self {
        Id(format!("{n:016x}"))
    }

    /// The id as text (16 lower-case hex digits).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An account as stored: its id, when it was added, and the account itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Stable id, used by front ends instead of the secret.
    pub id: Id,
    /// Unix seconds when it was added.
    pub added: u64,
    /// The OTP account.
    pub account: Account,
    /// For a work or school account: how it receives push approvals.
    pub push: Option<crate::push::Link>,
}

/// A privacyIDEA PUSH token in the vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushToken {
    pub id: Id,
    /// Unix seconds when it was enrolled.
    pub added: u64,
    pub token: crate::privacyidea::Token,
}

/// What [`Vault::import`] did with one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    Added(Id),
    /// An entry with the same secret and code settings was already there.
    AlreadyThere(Id),
    /// It matched an entry, which took the imported names and the higher HOTP counter.
    Merged(Id),
}

/// What an import does with an account the vault already has (same codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Duplicates {
    /// Leave the vault's entry as it is.
    #[default]
    Skip,
    /// Update the vault's entry: the imported issuer and name where they are
    /// not empty, and the higher of the two HOTP counters (a counter never
    /// moves back, or codes already used would be shown again).
    Merge,
}

/// Applies [`Duplicates::Merge`]; true when anything changed.
fn merge(entry: &mut Account, imported: &Account) -> bool {
    let before = entry.clone();
    if !imported.issuer.is_empty() {
        entry.issuer = imported.issuer.clone();
        entry.label_issuer = imported.label_issuer.clone();
    }
    if !imported.name.is_empty() {
        entry.name = imported.name.clone();
    }
    if let (Method::Hotp { counter }, Method::Hotp { counter: theirs }) = (&mut entry.method, imported.method) {
        *counter = (*counter).max(theirs);
    }
    *entry != before
}

/// Everything a vault operation can fail on. Messages name the file and
/// never contain secrets.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("no vault at {path}; create one with `countersign init`")]
    NotFound { path: PathBuf },
    #[error("a vault already exists at {path}; it was left untouched")]
    AlreadyExists { path: PathBuf },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: Arc<std::io::Error> },
    #[error("{path} is not a Countersign vault")]
    NotAVault { path: PathBuf },
    #[error("{path} is damaged ({reason}); it was not changed. {}", restore_hint(path, backup))]
    Corrupt { path: PathBuf, reason: String, backup: Option<PathBuf> },
    #[error(
        "{path} uses vault format version {version}, which this Countersign cannot read; it was not changed. Update Countersign. {}",
        restore_hint(path, backup)
    )]
    UnsupportedVersion { path: PathBuf, version: u16, backup: Option<PathBuf> },
    #[error("{path} was not opened: {reason}. A damaged or tampered header can ask for this; Countersign never writes such a file")]
    TooCostly { path: PathBuf, reason: String },
    #[error("wrong password")]
    WrongPassword,
    #[error("this vault has no password slot")]
    NoPasswordSlot,
    #[error("this vault has no keyring slot")]
    NoKeyringSlot,
    #[error("the key in the OS keyring does not open this vault")]
    KeyringMismatch,
    #[error(transparent)]
    Keyring(#[from] keyring::Error),
    #[error("a vault needs a password or the OS keyring (or both); refusing to remove the last way to open it")]
    LastSlot,
    #[error("{path} was re-keyed or replaced by another Countersign process; open it again")]
    ChangedElsewhere { path: PathBuf },
    #[error("invalid key derivation parameters: {0}")]
    Kdf(String),
    #[error("no account with id {0}")]
    NoSuchAccount(Id),
    #[error(transparent)]
    Account(#[from] account::Error),
    #[error("the operating system's random number generator failed")]
    Random,
    #[error("could not encode the vault: {0}")]
    Encode(String),
    #[error("not a readable Countersign vault: {0}")]
    Unreadable(String),
    #[error("the backup {path} does not match the vault: {reason}")]
    BackupMismatch { path: PathBuf, reason: String },
    #[error("no backup in {dir} yet: one is taken after the next change")]
    NoBackup { dir: PathBuf },
    #[error("automatic backups are off (backup_keep is 0 in the settings)")]
    BackupsOff,
    #[error(transparent)]
    Backup(#[from] backup::Error),
    #[error("the sign-in journal: {0}")]
    Journal(String),
}

fn restore_hint(path: &Path, backup: &Option<PathBuf>) -> String {
    match backup {
        Some(backup) => format!("The previous version is at {}: to restore it, copy it over {}.", backup.display(), path.display()),
        None => "No backup file exists beside it.".to_owned(),
    }
}

/// How a new vault is protected.
#[derive(Debug, Default)]
pub struct Protection<'a> {
    /// Add a password slot with these Argon2id parameters.
    pub password: Option<(Password, Kdf)>,
    /// Add a keyring slot in this keyring.
    pub keyring: Option<&'a Keyring>,
}

/// A vault file that has been read and checked but not decrypted.
#[derive(Debug)]
pub struct Locked {
    path: PathBuf,
    file: format::File,
}

impl Locked {
    /// Reads and checks a vault file (magic, version, checksum, header).
    pub fn read(path: &Path) -> Result<Self, Error> {
        let bytes = file::read(path)?;
        let file = format::File::decode(&bytes).map_err(|e| e.at(path))?;
        Ok(Locked { path: path.to_owned(), file })
    }

    /// Whether a password can open it.
    pub fn has_password(&self) -> bool {
        self.file.header.password_slot().is_some()
    }

    /// Whether the OS keyring can open it.
    pub fn has_keyring(&self) -> bool {
        self.file.header.keyring_slot().is_some()
    }

    /// The file that was read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens it with a password (Argon2id runs here: tens to hundreds of ms).
    pub fn unlock_with_password(&self, password: &Password) -> Result<Vault, Error> {
        let master = self.file.header.unwrap_with_password(password)?;
        self.to_vault(master, None)
    }

    /// Opens it through the OS keyring, without a prompt.
    pub fn unlock_with_keyring(&self, keyring: &Keyring) -> Result<Vault, Error> {
        let user = self.file.header.keyring_slot().ok_or(Error::NoKeyringSlot)?;
        let key = keyring.get(keyring::SERVICE, user)?;
        let master = self.file.header.unwrap_with_keyring(&key)?;
        self.to_vault(master, Some(key))
    }

    fn to_vault(&self, master: format::Key, keyring_key: Option<format::Key>) -> Result<Vault, Error> {
        let format::Contents { entries, tokens, journal } = self.file.decrypt(&master).map_err(|e| e.at(&self.path))?;
        Ok(Vault {
            path: self.path.clone(),
            header: self.file.header.clone(),
            master,
            keyring_key,
            entries,
            tokens,
            journal,
            backups: None,
            backup_problem: None,
        })
    }
}

/// An unlocked vault. Dropping it wipes the keys and secrets from memory.
pub struct Vault {
    path: PathBuf,
    header: format::Header,
    master: format::Key,
    /// The keyring slot key, when known, so that re-keying can rewrap it.
    keyring_key: Option<format::Key>,
    entries: Vec<Entry>,
    /// privacyIDEA PUSH tokens: they receive sign-in requests, show no codes.
    tokens: Vec<PushToken>,
    /// The sign-in journal's secret key, once there is a journal.
    journal: Option<crate::journal::SecretKey>,
    /// Where a copy goes after each save, if anywhere.
    backups: Option<backup::Policy>,
    /// Why the copy after the last save failed (the save itself succeeded).
    backup_problem: Option<backup::Error>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("path", &self.path).field("entries", &self.entries.len()).finish_non_exhaustive()
    }
}

impl Vault {
    /// Creates a new vault file. Refuses to touch an existing one.
    pub fn create(path: &Path, protection: Protection<'_>) -> Result<Vault, Error> {
        file::create_parent(path)?;
        let _lock = file::Lock::acquire(path)?;
        if path.exists() {
            return Err(Error::AlreadyExists { path: path.to_owned() });
        }
        let master = format::Key::random()?;
        let mut header = format::Header::new()?;
        let mut keyring_key = None;
        if let Some((password, kdf)) = &protection.password {
            header.add_password_slot(password, kdf, &master)?;
        }
        if let Some(keyring) = protection.keyring {
            let key = format::Key::random()?;
            let user = header.new_keyring_user()?;
            keyring.set(keyring::SERVICE, &user, &key)?;
            header.add_keyring_slot(&user, &key, &master)?;
            keyring_key = Some(key);
        }
        if header.slots.is_empty() {
            return Err(Error::LastSlot);
        }
        if let Err(error) = write(path, &header, &master, &format::Contents::default()) {
            if let (Some(keyring), Some(user)) = (protection.keyring, header.keyring_slot()) {
                let _ = keyring.delete(keyring::SERVICE, user);
            }
            return Err(error);
        }
        Ok(Vault {
            path: path.to_owned(),
            header,
            master,
            keyring_key,
            entries: Vec::new(),
            tokens: Vec::new(),
            journal: None,
            backups: None,
            backup_problem: None,
        })
    }

    /// The file this vault lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The accounts, in the user's order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The privacyIDEA PUSH tokens, oldest first.
    pub fn push_tokens(&self) -> &[PushToken] {
        &self.tokens
    }

    /// Keeps a newly enrolled privacyIDEA PUSH token. The same token
    /// enrolled again (same serial and server: privacyIDEA rolled it out
    /// anew, so the old key no longer works) replaces the old one, id kept.
    pub fn add_push_token(&mut self, token: crate::privacyidea::Token, now: u64) -> Result<Id, Error> {
        self.update_all(now, |_, tokens| {
            if let Some(existing) = tokens.iter_mut().find(|t| t.token.serial == token.serial && t.token.url == token.url) {
                existing.token = token;
                existing.added = now;
                return Ok(existing.id.clone());
            }
            let id = Id::random()?;
            tokens.push(PushToken { id: id.clone(), added: now, token });
            Ok(id)
        })
    }

    /// Removes a privacyIDEA PUSH token (its key is gone with it).
    pub fn remove_push_token(&mut self, id: &Id, now: u64) -> Result<PushToken, Error> {
        self.update_all(now, |_, tokens| {
            let index = tokens.iter().position(|t| &t.id == id).ok_or_else(|| Error::NoSuchAccount(id.clone()))?;
            Ok(tokens.remove(index))
        })
    }

    /// Whether a password can open it.
    pub fn has_password(&self) -> bool {
        self.header.password_slot().is_some()
    }

    /// Whether the OS keyring can open it.
    pub fn has_keyring(&self) -> bool {
        self.header.keyring_slot().is_some()
    }

    /// Applies a change under the file lock: re-reads the vault first, so a
    /// change made meanwhile by another process is kept, then saves atomically.
    /// Nothing is written when `change` fails. `now` (Unix seconds, as in
    /// every saving method) dates the backup taken after the save.
    pub fn update<T>(&mut self, now: u64, change: impl FnOnce(&mut Vec<Entry>) -> Result<T, Error>) -> Result<T, Error> {
        self.update_all(now, |entries, _| change(entries))
    }

    /// [`Vault::update`] of the accounts and the PUSH tokens together.
    fn update_all<T>(
        &mut self,
        now: u64,
        change: impl FnOnce(&mut Vec<Entry>, &mut Vec<PushToken>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.update_if_changed(now, |entries, tokens| change(entries, tokens).map(|result| (result, true)))
    }

    /// [`Vault::update_all`] for a change that may turn out to change
    /// nothing (it returns `false`): then the file is not rewritten and no
    /// backup is taken, so repeated no-op imports cannot push the backup of
    /// a real change out of the newest kept.
    fn update_if_changed<T>(
        &mut self,
        now: u64,
        change: impl FnOnce(&mut Vec<Entry>, &mut Vec<PushToken>) -> Result<(T, bool), Error>,
    ) -> Result<T, Error> {
        let _lock = file::Lock::acquire(&self.path)?;
        self.reload_locked()?;
        // Work on a copy so that a failed change or write leaves memory as on disk.
        let (mut entries, mut tokens) = (self.entries.clone(), self.tokens.clone());
        let (result, changed) = change(&mut entries, &mut tokens)?;
        if !changed {
            return Ok(result);
        }
        let contents = format::Contents { entries, tokens, journal: self.journal.clone() };
        write(&self.path, &self.header, &self.master, &contents)?;
        self.entries = contents.entries;
        self.tokens = contents.tokens;
        self.back_up(now);
        Ok(result)
    }

    /// Adds accounts at the end of the list and returns their new ids.
    pub fn add(&mut self, accounts: Vec<Account>, now: u64) -> Result<Vec<Id>, Error> {
        for account in &accounts {
            account.validate()?;
        }
        self.update(now, |entries| {
            let mut ids = Vec::new();
            for account in accounts {
                let id = Id::random()?;
                entries.push(Entry { id: id.clone(), added: now, account, push: None });
                ids.push(id);
            }
            Ok(ids)
        })
    }

    /// Adds the accounts that are not already in the vault, in one save.
    /// An account is already there when an entry gives the same codes (see
    /// [`Account::gives_same_codes`]); `duplicates` says whether that entry
    /// is left alone or merged. Returns, per account in order, what was done.
    /// When nothing is added or merged, nothing is saved (no write, no backup).
    pub fn import(&mut self, accounts: Vec<Account>, now: u64, duplicates: Duplicates) -> Result<Vec<Imported>, Error> {
        for account in &accounts {
            account.validate()?;
        }
        self.update_if_changed(now, |entries, _| {
            let before = entries.len();
            let mut outcome = Vec::new();
            for account in accounts {
                if let Some((index, existing)) = entries.iter_mut().enumerate().find(|(_, e)| e.account.gives_same_codes(&account)) {
                    // Only entries that were there before are merged into; a
                    // repeat within the same import is skipped, as the preview says.
                    let merged = duplicates == Duplicates::Merge && index < before && merge(&mut existing.account, &account);
                    outcome.push(if merged { Imported::Merged(existing.id.clone()) } else { Imported::AlreadyThere(existing.id.clone()) });
                    continue;
                }
                let id = Id::random()?;
                entries.push(Entry { id: id.clone(), added: now, account, push: None });
                outcome.push(Imported::Added(id));
            }
            let changed = outcome.iter().any(|done| !matches!(done, Imported::AlreadyThere(_)));
            Ok((outcome, changed))
        })
    }

    /// Adds a work or school account with its push link.
    pub fn add_push(&mut self, account: Account, link: crate::push::Link, now: u64) -> Result<Id, Error> {
        account.validate()?;
        self.update(now, |entries| {
            let id = Id::random()?;
            entries.push(Entry { id: id.clone(), added: now, account, push: Some(link) });
            Ok(id)
        })
    }

    /// Changes one account in place.
    pub fn modify<T>(&mut self, id: &Id, now: u64, change: impl FnOnce(&mut Account) -> T) -> Result<T, Error> {
        self.update(now, |entries| {
            let entry = entries.iter_mut().find(|e| &e.id == id).ok_or_else(|| Error::NoSuchAccount(id.clone()))?;
            let mut account = entry.account.clone();
            let result = change(&mut account);
            account.validate()?;
            entry.account = account;
            Ok(result)
        })
    }

    /// Removes one account.
    pub fn remove(&mut self, id: &Id, now: u64) -> Result<Entry, Error> {
        self.update(now, |entries| {
            let index = entries.iter().position(|e| &e.id == id).ok_or_else(|| Error::NoSuchAccount(id.clone()))?;
            Ok(entries.remove(index))
        })
    }

    /// Sets, changes or (with `None`) removes the password, and rotates the
    /// master key. A keyring slot, if any, gets a new key too, in a new
    /// keyring entry (the old entry is deleted), so `keyring` must answer.
    /// Then the vault's older copies (`<vault>.bak` and the automatic
    /// backups) are re-encrypted to the new slots, or removed when they were
    /// made under an earlier master key: no copy this vault knows of still
    /// opens with the old password or keyring key. Returns what was done to them.
    pub fn set_password(&mut self, password: Option<(Password, Kdf)>, keyring: Option<&Keyring>, now: u64) -> Result<Copies, Error> {
        let _lock = file::Lock::acquire(&self.path)?;
        self.reload_locked()?;
        let master = format::Key::random()?;
        let mut header = self.header.rekeyed();
        if let Some((password, kdf)) = &password {
            header.add_password_slot(password, kdf, &master)?;
        }
        let old_user = self.header.keyring_slot().map(str::to_owned);
        let mut new_entry = None;
        if old_user.is_some() {
            let keyring = keyring.ok_or_else(|| {
                keyring::Error::Unavailable("it is needed to replace the vault's keyring key; nothing was changed".into())
            })?;
            let key = format::Key::random()?;
            let user = header.new_keyring_user()?;
            header.add_keyring_slot(&user, &key, &master)?;
            keyring.set(keyring::SERVICE, &user, &key)?;
            new_entry = Some((keyring, user, key));
        }
        if header.slots.is_empty() {
            return Err(Error::LastSlot);
        }
        if let Err(error) = write(&self.path, &header, &master, &self.contents()) {
            if let Some((keyring, user, _)) = &new_entry {
                let _ = keyring.delete(keyring::SERVICE, user);
            }
            return Err(error);
        }
        let old_master = std::mem::replace(&mut self.master, master);
        self.header = header;
        self.keyring_key = new_entry.as_ref().map(|(_, _, key)| key.clone());
        let copies = self.rekey_copies(&old_master, true);
        // The old entry opens only copies that were just re-encrypted or removed.
        if let (Some((keyring, _, _)), Some(old_user)) = (&new_entry, &old_user)
            && copies.failed.is_empty()
        {
            let _ = keyring.delete(keyring::SERVICE, old_user);
        }
        self.back_up(now);
        Ok(copies)
    }

    /// Adds (`true`) or removes (`false`) the keyring slot. Removing it
    /// re-encrypts the vault's older copies without it too, then deletes the
    /// keyring entry, unless a copy that could not be re-encrypted still
    /// opens only through it (then the entry is kept: see [`Copies`]).
    pub fn set_keyring(&mut self, on: bool, keyring: &Keyring, now: u64) -> Result<Copies, Error> {
        let _lock = file::Lock::acquire(&self.path)?;
        self.reload_locked()?;
        match (on, self.header.keyring_slot().map(str::to_owned)) {
            (true, Some(_)) | (false, None) => Ok(Copies::default()),
            (true, None) => {
                let key = format::Key::random()?;
                let mut header = self.header.clone();
                let user = header.new_keyring_user()?;
                header.add_keyring_slot(&user, &key, &self.master)?;
                keyring.set(keyring::SERVICE, &user, &key)?;
                if let Err(error) = write(&self.path, &header, &self.master, &self.contents()) {
                    let _ = keyring.delete(keyring::SERVICE, &user);
                    return Err(error);
                }
                self.header = header;
                self.keyring_key = Some(key);
                self.back_up(now);
                Ok(Copies::default())
            }
            (false, Some(user)) => {
                if self.header.password_slot().is_none() {
                    return Err(Error::LastSlot);
                }
                let mut header = self.header.clone();
                header.remove_keyring_slot();
                write(&self.path, &header, &self.master, &self.contents())?;
                self.header = header;
                self.keyring_key = None;
                let master = self.master.clone();
                let mut copies = self.rekey_copies(&master, false);
                copies.keyring_entry_kept = copies.failed.iter().chain(&copies.older).any(|path| copies::needs_entry(path, &user));
                self.back_up(now);
                // The vault no longer refers to the entry; a failure here only
                // leaves an unused random key behind, so it is not an error.
                if !copies.keyring_entry_kept {
                    let _ = keyring.delete(keyring::SERVICE, &user);
                }
                Ok(copies)
            }
        }
    }

    /// Keeps a copy of the vault file in `policy`'s folder after every
    /// save from now on (`None` stops it). See [`crate::backup`].
    pub fn set_backups(&mut self, policy: Option<backup::Policy>) {
        self.backups = policy;
    }

    /// Where backups go, if anywhere.
    pub fn backups(&self) -> Option<&backup::Policy> {
        self.backups.as_ref()
    }

    /// Why the backup after the last save failed; the save itself succeeded.
    pub fn backup_problem(&self) -> Option<&backup::Error> {
        self.backup_problem.as_ref()
    }

    /// Copies the file just written, dated `now`; the caller holds the lock.
    fn back_up(&mut self, now: u64) {
        self.backup_problem = match &self.backups {
            Some(policy) => backup::take(policy, &self.path, at(now)).err(),
            None => None,
        };
    }

    /// Checks that the newest backup would restore this vault: its key slots
    /// are this vault's (so the same password or keyring entry opens it),
    /// its accounts decrypt under this vault's master key, and they equal
    /// the vault's accounts as they are on disk now (re-read under the lock).
    /// A success is recorded, at `now` (Unix seconds), in the folder the
    /// backup was read from, whichever front asked: the window and the
    /// command line show the same "last verified". Nothing is recorded when
    /// backups are off ([`Error::BackupsOff`]) or the check fails.
    pub fn verify_backup(&mut self, now: u64) -> Result<backup::Verification, Error> {
        let policy = self.backups.clone().ok_or(Error::BackupsOff)?;
        let _lock = file::Lock::acquire(&self.path)?;
        self.reload_locked()?;
        let newest =
            backup::list(&policy.dir, &self.path)?.into_iter().next().ok_or_else(|| Error::NoBackup { dir: policy.dir.clone() })?;
        let mismatch = |reason: String| Error::BackupMismatch { path: newest.path.clone(), reason };
        let bytes = file::read(&newest.path)?;
        let copy = format::File::decode(&bytes).map_err(|e| mismatch(e.reason()))?;
        let slots = |header: &format::Header| serde_json::to_value(&header.slots).ok();
        if copy.header.vault_id != self.header.vault_id || slots(&copy.header) != slots(&self.header) {
            return Err(mismatch(
                "it was made before the password or keyring setting last changed; the next change takes a new one".into(),
            ));
        }
        let format::Contents { entries, tokens, .. } = copy.decrypt(&self.master).map_err(|e| mismatch(e.reason()))?;
        if entries != self.entries || tokens != self.tokens {
            return Err(mismatch(format!(
                "it holds {} accounts where the vault holds {}, or they differ",
                entries.len(),
                self.entries.len()
            )));
        }
        let file = newest.path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        let verified = backup::Verified { file, accounts: entries.len(), at: i64::try_from(now).unwrap_or(i64::MAX) };
        backup::record(&policy.dir, &verified)?;
        Ok(backup::Verification { backup: newest, verified })
    }

    /// What is saved: copies of the accounts, tokens and journal key.
    fn contents(&self) -> format::Contents {
        format::Contents { entries: self.entries.clone(), tokens: self.tokens.clone(), journal: self.journal.clone() }
    }

    /// The sign-in journal's secret key, when the vault has one.
    pub fn journal_key(&self) -> Option<&crate::journal::SecretKey> {
        self.journal.as_ref()
    }

    /// The sign-in journal's public key, making (and saving) the key pair on
    /// first use, and the journal file beside the vault sealed to it. From
    /// then on the file is format version 3. `now` dates the backup taken
    /// after saving the key, or a journal set aside.
    pub fn ensure_journal(&mut self, now: u64) -> Result<crate::journal::PublicKey, Error> {
        let key = match &self.journal {
            Some(key) => key.clone(),
            None => {
                let _lock = file::Lock::acquire(&self.path)?;
                // Another process may have made it meanwhile: theirs is kept.
                self.reload_locked()?;
                match &self.journal {
                    Some(key) => key.clone(),
                    None => {
                        let key = crate::journal::SecretKey::generate().map_err(|_| Error::Random)?;
                        write(&self.path, &self.header, &self.master, &format::Contents { journal: Some(key.clone()), ..self.contents() })?;
                        self.journal = Some(key.clone());
                        self.back_up(now);
                        key
                    }
                }
            }
        };
        let public = key.public();
        match crate::journal::create(&self.path, &public) {
            Ok(()) => {}
            // Another vault's journal (this one was restored from a copy made
            // before it had one), or a damaged one: kept aside, a new one starts.
            Err(crate::journal::Error::OtherKey { .. } | crate::journal::Error::Unreadable { .. }) => {
                crate::journal::set_aside(&self.path, now).map_err(|e| Error::Journal(e.to_string()))?;
                crate::journal::create(&self.path, &public).map_err(|e| Error::Journal(e.to_string()))?;
            }
            Err(error) => return Err(Error::Journal(error.to_string())),
        }
        Ok(public)
    }

    /// Re-reads the file under the lock. The master key must still open it.
    fn reload_locked(&mut self) -> Result<(), Error> {
        let bytes = file::read(&self.path)?;
        let file = format::File::decode(&bytes).map_err(|e| e.at(&self.path))?;
        if file.header.vault_id != self.header.vault_id {
            return Err(Error::ChangedElsewhere { path: self.path.clone() });
        }
        format::Contents { entries: self.entries, tokens: self.tokens, journal: self.journal } =
            file.decrypt(&self.master).map_err(|e| match e {
                format::Error::Decrypt => Error::ChangedElsewhere { path: self.path.clone() },
                other => other.at(&self.path),
            })?;
        self.header = file.header;
        Ok(())
    }
}

/// Opens the bytes of a vault file (a backup, or a vault from elsewhere) with
/// a password, for importing its accounts.
pub fn open_copy(bytes: &[u8], password: &Password) -> Result<Vec<Entry>, Error> {
    // Decoding refuses a password slot above Kdf's ceiling (1 GiB, 16 passes).
    let file = format::File::decode(bytes).map_err(|e| Error::Unreadable(e.reason()))?;
    let master = file.header.unwrap_with_password(password)?;
    // PUSH tokens are bound to the vault they were enrolled in: not imported.
    file.decrypt(&master).map(|contents| contents.entries).map_err(|e| Error::Unreadable(e.reason()))
}

/// Whether a vault file's bytes have a password slot (else only the keyring
/// that made it opens it).
pub fn copy_has_password(bytes: &[u8]) -> Result<bool, Error> {
    let file = format::File::decode(bytes).map_err(|e| Error::Unreadable(e.reason()))?;
    Ok(file.header.password_slot().is_some())
}

/// A new vault file holding `entries`, protected by a password slot only
/// (no keyring slot: the copy is meant to leave this machine).
pub fn export_copy(entries: &[Entry], password: &Password, kdf: &Kdf) -> Result<Vec<u8>, Error> {
    let master = format::Key::random()?;
    let mut header = format::Header::new()?;
    header.add_password_slot(password, kdf, &master)?;
    // PUSH tokens stay behind: a copy that answers sign-ins elsewhere would
    // be a second phone the organisation never enrolled. For the same reason
    // so do work or school accounts' push links (their device keys): only
    // their codes travel, and an import drops links anyway.
    // So does the journal's key: the history stays with the vault it records.
    let entries = entries.iter().map(|entry| Entry { push: None, ..entry.clone() }).collect();
    format::File::encrypt(&header, &master, &format::Contents { entries, ..Default::default() })
}

/// Replaces the vault at `to` with `backup` (unlocked, which proves the
/// user can open it), under the vault's lock and atomically. The vault it
/// replaces is first copied into `copies.dir` (whether or not automatic
/// backups are on: a restore never loses anything), and the restored vault
/// is copied there too, so it is the newest backup; both copies are dated
/// `now`. Returns the vault now at `to`, taking automatic backups as `then` says.
pub fn restore(mut backup: Vault, to: &Path, copies: &backup::Policy, then: Option<backup::Policy>, now: u64) -> Result<Vault, Error> {
    file::create_parent(to)?;
    let _lock = file::Lock::acquire(to)?;
    if to.is_file() {
        backup::take(copies, to, at(now))?;
    }
    write(to, &backup.header, &backup.master, &backup.contents())?;
    backup.path = to.to_owned();
    backup.backups = Some(copies.clone());
    backup.back_up(now);
    backup.backups = then;
    Ok(backup)
}

/// `now`, Unix seconds as the vault's callers pass it, as the instant
/// [`backup::take`] names a copy after (the epoch if it is out of range:
/// copies are kept in the order they were taken whatever their names say).
fn at(now: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(now)).unwrap_or(std::time::UNIX_EPOCH)
}

/// Encrypts and saves; the caller holds the lock.
fn write(path: &Path, header: &format::Header, master: &format::Key, contents: &format::Contents) -> Result<(), Error> {
    let bytes = format::File::encrypt(header, master, contents)?;
    file::write_atomic(path, &bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
