//! The listener credentials of a vault's work or school accounts, kept
//! outside the vault so that sign-in requests still arrive while it is
//! locked, or before it was ever unlocked since login.
//!
//! A listener key opens a receive-only session with the account's server
//! (see the wire protocol in [`crate::push`]): it lets the holder *see*
//! sign-in requests (app, user, place, time), never answer them. Answers
//! are signed with the device key, which stays in the vault.
//!
//! # File format, version 1
//!
//! `<vault>.listeners` beside the vault, UTF-8 JSON, mode 0600, always
//! replaced whole (a new temp file, fsync, rename) under an advisory lock on
//! `<vault>.listeners.lock`:
//!
//! ```json
//! { "version": 1,
//!   "listeners": [ { "account": "<vault entry id>", "organization": "Contoso",
//!     "user": "alice", "device_id": "dev_…", "endpoint": "wss://…/api/push",
//!     "server_key": "<base64 Ed25519 public key, pinned at activation>",
//!     "key": { "keyring": "listener-<account>-dev_…" } } ] }
//! ```
//!
//! `key` says where the 32-byte listener key seed is: `{"keyring": NAME}`,
//! the OS keyring entry `countersign`/NAME, whenever a keyring answered when
//! it was written; else `{"file": "<base64 seed>"}`, in this file, which is
//! then as private as the user's other files (0600). Readers refuse other
//! versions and leave such a file alone.
//!
//! Losing this file loses nothing: the next unlock registers new listener
//! keys with the device keys in the vault.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::base64;
use crate::push::{Keypair, Listener, PublicKey};
use crate::vault::{Id, Keyring, keyring};

/// The only version this code reads and writes.
const VERSION: u32 = 1;
/// A listeners file is a few hundred bytes per account.
const MAX_SIZE: u64 = 1024 * 1024;

/// Why the listener credentials could not be read or written. Never holds key material.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: Arc<io::Error> },
    #[error("{path} is damaged ({reason}); the next unlock writes it anew")]
    Damaged { path: PathBuf, reason: String },
}

/// Where a listener key was put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// In the OS keyring.
    Keyring,
    /// In the listeners file (0600), because no keyring answered.
    File,
}

/// Why a stored listener cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unusable {
    /// Its key is in a keyring that does not answer now (locked, gone from
    /// the bus): it is tried again.
    #[error("the OS keyring does not give its key now: {0}")]
    Waiting(keyring::Error),
    /// Its key is gone (the keyring entry deleted) or damaged: a new one is
    /// registered at the next unlock.
    #[error("its key is lost: {0}")]
    Lost(String),
}

/// One account's listener as read back: the credential, or why not.
#[derive(Debug, Clone)]
pub struct Stored {
    pub account: Id,
    pub organization: String,
    pub user: String,
    pub listener: Result<Listener, Unusable>,
}

/// `vault.cvault` → `vault.cvault.listeners`.
pub fn path(vault: &Path) -> PathBuf {
    sibling(vault, "listeners")
}

/// Every stored listener of the vault at `vault`; none when there is no file.
/// Keys kept in the OS keyring are fetched through `keyring` (none: each such
/// listener reports the keyring as unavailable).
pub fn load(vault: &Path, keyring: Option<&Keyring>) -> Result<Vec<Stored>, Error> {
    let file = path(vault);
    Ok(read(&file)?.iter().map(|record| record.to_stored(&file, keyring)).collect())
}

/// The accounts with a listener kept, and each one's device, read from the
/// file alone (no key is fetched); none when it is missing or damaged.
pub fn kept(vault: &Path) -> Vec<(Id, String)> {
    read(&path(vault)).map(|records| records.into_iter().map(|r| (r.account.clone(), r.device_id.clone())).collect()).unwrap_or_default()
}

/// Forgets the listener of `account` whose key is `refused` (the server
/// refused it); a newer key kept meanwhile for the account stays.
pub fn remove(vault: &Path, account: &Id, refused: &PublicKey, keyring: Option<&Keyring>) -> Result<bool, Error> {
    let file = path(vault);
    let _lock = lock(&file)?;
    let mut records = read(&file)?;
    let is_refused = |record: &Record| {
        record.account == *account && matches!(record.to_stored(&file, keyring).listener, Ok(listener) if listener.key.public() == *refused)
    };
    let removed: Vec<Record> = records.extract_if(.., |r| is_refused(r)).collect();
    if removed.is_empty() {
        return Ok(false);
    }
    write(&file, &records)?;
    forget_keys(removed.iter(), keyring);
    Ok(true)
}

/// Whether any listener key of the vault at `vault` is in the OS keyring
/// (so a caller connects to the keyring only when it must).
pub fn in_keyring(vault: &Path) -> bool {
    read(&path(vault)).is_ok_and(|records| records.iter().any(|r| matches!(r.key, KeyPlace::Keyring(_))))
}

/// Keeps `listener` as the listener of `account` (replacing an earlier one).
pub fn add(vault: &Path, account: &Id, listener: &Listener, keyring: Option<&Keyring>) -> Result<Placement, Error> {
    let file = path(vault);
    let _lock = lock(&file)?;
    let mut records = read(&file)?;
    let seed = listener.key.to_seed();
    let name = entry_name(account, &listener.device_id);
    let (key, placement) = match keyring.map(|keyring| keyring.set_secret(keyring::SERVICE, &name, &seed[..])) {
        Some(Ok(())) => (KeyPlace::Keyring(name), Placement::Keyring),
        // No keyring, or it refused: the file, private to the user.
        Some(Err(_)) | None => (KeyPlace::File(Seed(base64::encode(&seed[..]))), Placement::File),
    };
    let replaced: Vec<Record> = records.extract_if(.., |r| r.account == *account).collect();
    records.push(Record {
        account: account.clone(),
        organization: listener.organization.clone(),
        user: listener.user.clone(),
        device_id: listener.device_id.clone(),
        endpoint: listener.endpoint.clone(),
        server_key: listener.server_key.to_base64(),
        key,
    });
    write(&file, &records)?;
    forget_keys(replaced.iter().filter(|old| old.device_id != listener.device_id), keyring);
    Ok(placement)
}

/// Keeps only the listeners of `accounts` (the others' accounts were
/// removed); true when anything was removed.
pub fn retain(vault: &Path, accounts: &[Id], keyring: Option<&Keyring>) -> Result<bool, Error> {
    let file = path(vault);
    if !file.exists() {
        return Ok(false);
    }
    let _lock = lock(&file)?;
    let mut records = read(&file)?;
    let removed: Vec<Record> = records.extract_if(.., |r| !accounts.contains(&r.account)).collect();
    if removed.is_empty() {
        return Ok(false);
    }
    write(&file, &records)?;
    forget_keys(removed.iter(), keyring);
    Ok(true)
}

/// The keyring entry of an account's listener key: the vault's own account
/// id with the server's device id, so two vaults or servers never share one.
fn entry_name(account: &Id, device_id: &str) -> String {
    format!("listener-{account}-{device_id}")
}

/// Deletes the keyring entries of records that are gone (best effort: an
/// entry left behind opens only a receive-only session of a removed device).
fn forget_keys<'a>(gone: impl Iterator<Item = &'a Record>, keyring: Option<&Keyring>) {
    let Some(keyring) = keyring else { return };
    for record in gone {
        if let KeyPlace::Keyring(name) = &record.key {
            let _ = keyring.delete(keyring::SERVICE, name);
        }
    }
}

#[derive(Deserialize)]
struct FileFormat {
    version: u32,
    listeners: Vec<Record>,
}

#[derive(Serialize, Deserialize)]
struct Record {
    account: Id,
    organization: String,
    user: String,
    device_id: String,
    endpoint: String,
    server_key: String,
    key: KeyPlace,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum KeyPlace {
    Keyring(String),
    File(Seed),
}

/// A base64 key seed, wiped when dropped.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct Seed(String);

impl Drop for Seed {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl Record {
    fn to_stored(&self, file: &Path, keyring: Option<&Keyring>) -> Stored {
        let damaged = |what: &str| Unusable::Lost(format!("{}: {what}", file.display()));
        let listener = (|| {
            let server_key = PublicKey::from_base64(&self.server_key).map_err(|_| damaged("a server key is damaged"))?;
            let seed = match &self.key {
                KeyPlace::File(Seed(seed)) => {
                    Zeroizing::new(base64::decode(seed.as_bytes()).map_err(|_| damaged("a listener key is damaged"))?)
                }
                KeyPlace::Keyring(name) => {
                    let keyring = keyring.ok_or_else(|| Unusable::Waiting(keyring::Error::Unavailable("it is not connected".into())))?;
                    match keyring.get_secret(keyring::SERVICE, name) {
                        Ok(secret) => Zeroizing::new(secret.to_vec()),
                        Err(missing @ keyring::Error::Missing(_)) => return Err(Unusable::Lost(missing.to_string())),
                        Err(waiting) => return Err(Unusable::Waiting(waiting)),
                    }
                }
            };
            let key = Keypair::from_seed(&seed).map_err(|_| damaged("a listener key is damaged"))?;
            Ok(Listener {
                organization: self.organization.clone(),
                user: self.user.clone(),
                device_id: self.device_id.clone(),
                endpoint: self.endpoint.clone(),
                server_key,
                key,
            })
        })();
        Stored { account: self.account.clone(), organization: self.organization.clone(), user: self.user.clone(), listener }
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_owned(), source: Arc::new(source) }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

/// The records of `file`; none when it does not exist.
fn read(file: &Path) -> Result<Vec<Record>, Error> {
    let bytes = match File::open(file) {
        Ok(opened) => {
            let size = opened.metadata().map_err(io_error(file))?.len();
            if size > MAX_SIZE {
                return Err(Error::Damaged { path: file.to_owned(), reason: format!("{size} bytes is too large") });
            }
            Zeroizing::new(fs::read(file).map_err(io_error(file))?)
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(io_error(file)(error)),
    };
    // serde's messages may quote the file: only where it broke is said.
    let format: FileFormat = serde_json::from_slice(&bytes).map_err(|e| Error::Damaged {
        path: file.to_owned(),
        reason: format!("not a listeners file (line {}, column {})", e.line(), e.column()),
    })?;
    if format.version != VERSION {
        return Err(Error::Damaged { path: file.to_owned(), reason: format!("unknown version {}", format.version) });
    }
    // One record per account: a file edited by hand keeps the last.
    let mut by_account = BTreeMap::new();
    for record in format.listeners {
        by_account.insert(record.account.clone(), record);
    }
    Ok(by_account.into_values().collect())
}

/// Replaces `file` with `records`: a new temp file (never an existing one,
/// never through a symlink), fsync, rename, directory fsync.
fn write(file: &Path, records: &[Record]) -> Result<(), Error> {
    let json = Zeroizing::new(
        serde_json::to_vec_pretty(&Borrowed { version: VERSION, listeners: records })
            .map_err(|e| Error::Damaged { path: file.to_owned(), reason: e.to_string() })?,
    );
    let temp = sibling(file, "tmp");
    // A temp file a crash left behind is ours to replace.
    match fs::remove_file(&temp) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(io_error(&temp)(error)),
    }
    let written = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut opened = options.open(&temp)?;
        opened.write_all(&json)?;
        opened.sync_all()?;
        fs::rename(&temp, file)?;
        #[cfg(unix)]
        if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(parent)?.sync_all()?;
        }
        Ok(())
    })();
    written.map_err(|error| {
        let _ = fs::remove_file(&temp);
        io_error(file)(error)
    })
}

/// Serialises records without taking them.
#[derive(Serialize)]
struct Borrowed<'a> {
    version: u32,
    listeners: &'a [Record],
}

/// An exclusive advisory lock beside the file, released on drop.
struct Lock(File);

fn lock(file: &Path) -> Result<Lock, Error> {
    let lock_path = sibling(file, "lock");
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let opened = options.open(&lock_path).map_err(io_error(&lock_path))?;
    opened.lock().map_err(io_error(&lock_path))?;
    Ok(Lock(opened))
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(device: &str, seed: u8) -> Listener {
        Listener {
            organization: "Contoso".into(),
            user: "alice".into(),
            device_id: device.into(),
            endpoint: "ws://127.0.0.1:8750/api/push".into(),
            server_key: Keypair::from_seed(&[7; 32]).unwrap().public(),
            key: Keypair::from_seed(&[seed; 32]).unwrap(),
        }
    }

    fn mock_keyring() -> Keyring {
        keyring_core::set_default_store(keyring_core::mock::Store::new().unwrap());
        Keyring::with_current_store()
    }

    #[test]
    fn without_a_keyring_the_key_is_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let vault = dir.path().join("vault.cvault");
        assert!(load(&vault, None).unwrap().is_empty(), "no file: no listeners");
        let (one, two) = (Id::for_tests(1), Id::for_tests(2));
        assert_eq!(add(&vault, &one, &listener("dev_1", 1), None).unwrap(), Placement::File);
        assert_eq!(add(&vault, &two, &listener("dev_2", 2), None).unwrap(), Placement::File);
        let loaded = load(&vault, None).unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[0].listener.as_ref().unwrap(), &listener("dev_1", 1));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(path(&vault)).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // A new listener for the same account replaces the old one.
        add(&vault, &one, &listener("dev_3", 3), None).unwrap();
        let loaded = load(&vault, None).unwrap();
        assert_eq!(loaded.len(), 2);
        assert!(loaded.iter().any(|s| s.listener.as_ref().unwrap().device_id == "dev_3"));
        // Removed accounts take their listeners with them.
        assert!(retain(&vault, std::slice::from_ref(&two), None).unwrap());
        assert!(!retain(&vault, std::slice::from_ref(&two), None).unwrap(), "nothing more to remove");
        assert_eq!(load(&vault, None).unwrap().len(), 1);
        assert!(!in_keyring(&vault));
        assert!(!sibling(&path(&vault), "tmp").exists(), "no temp file is left");
    }

    #[test]
    fn with_a_keyring_the_file_holds_no_key() {
        let dir = tempfile::tempdir().unwrap();
        let vault = dir.path().join("vault.cvault");
        let keyring = mock_keyring();
        let id = Id::for_tests(1);
        assert_eq!(add(&vault, &id, &listener("dev_k", 5), Some(&keyring)).unwrap(), Placement::Keyring);
        let text = fs::read_to_string(path(&vault)).unwrap();
        assert!(text.contains(&format!("\"keyring\": \"listener-{id}-dev_k\"")), "{text}");
        assert!(!text.contains(&base64::encode([5u8; 32])), "the seed is not in the file");
        assert_eq!(load(&vault, Some(&keyring)).unwrap()[0].listener.as_ref().unwrap(), &listener("dev_k", 5));
        assert!(in_keyring(&vault));
        // Without the keyring, it says why instead of failing the whole file.
        let stored = load(&vault, None).unwrap();
        assert!(matches!(&stored[0].listener, Err(Unusable::Waiting(_))));
        assert_eq!((stored[0].organization.as_str(), stored[0].user.as_str()), ("Contoso", "alice"));
    }

    #[test]
    fn damage_and_unknown_versions_are_reported_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let vault = dir.path().join("vault.cvault");
        for bytes in [&b"not json"[..], br#"{"version": 2, "listeners": []}"#, &[0xff; 40][..]] {
            fs::write(path(&vault), bytes).unwrap();
            assert!(matches!(load(&vault, None), Err(Error::Damaged { .. })));
            assert!(add(&vault, &Id::for_tests(1), &listener("dev_1", 1), None).is_err());
            assert_eq!(fs::read(path(&vault)).unwrap(), bytes, "left as it was");
        }
        // A damaged key is that listener's problem only.
        add(&vault, &Id::for_tests(9), &listener("dev_9", 9), None).ok();
        fs::remove_file(path(&vault)).unwrap();
        add(&vault, &Id::for_tests(1), &listener("dev_1", 1), None).unwrap();
        add(&vault, &Id::for_tests(2), &listener("dev_2", 2), None).unwrap();
        let text = fs::read_to_string(path(&vault)).unwrap().replacen(&base64::encode([1u8; 32]), "AAAA", 1);
        fs::write(path(&vault), text).unwrap();
        let loaded = load(&vault, None).unwrap();
        assert!(loaded[0].listener.is_err() && loaded[1].listener.is_ok());
    }

    #[test]
    fn a_refused_key_goes_but_a_newer_one_stays() {
        let dir = tempfile::tempdir().unwrap();
        let vault = dir.path().join("vault.cvault");
        let id = Id::for_tests(1);
        add(&vault, &id, &listener("dev_1", 1), None).unwrap();
        // A new key was kept before the old connection's refusal arrived.
        add(&vault, &id, &listener("dev_1", 2), None).unwrap();
        assert!(!remove(&vault, &id, &listener("dev_1", 1).key.public(), None).unwrap());
        assert_eq!(load(&vault, None).unwrap().len(), 1, "the newer key stays");
        assert!(remove(&vault, &id, &listener("dev_1", 2).key.public(), None).unwrap());
        assert!(load(&vault, None).unwrap().is_empty());
    }

    #[test]
    fn debug_never_shows_a_key() {
        let shown = format!("{:?}", listener("dev_1", 1));
        assert!(!shown.contains(&base64::encode([1u8; 32])), "{shown}");
    }
}
