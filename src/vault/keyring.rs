//! The OS keyring slot's storage: a random 256-bit slot key per vault, kept
//! in the platform credential store through keyring-core.
//!
//! Every call runs on a helper thread with a deadline, so a keyring daemon
//! that never answers gives an error instead of a frozen app.

use std::sync::mpsc;
use std::time::Duration;

use zeroize::Zeroizing;

use super::format::Key;

/// The keyring service name under which vault slot keys are stored.
pub const SERVICE: &str = "countersign";

/// Whether `user` is a keyring entry name of the vault `vault_id`:
/// `vault-<vault_id>` (one entry per vault, written until December 2026) or
/// `vault-<vault_id>-<16 hex digits>` (one entry per keyring key since). The
/// names in a vault's header are not trusted beyond this: a tampered header
/// cannot make Countersign read, overwrite or delete another entry.
pub(super) fn is_entry_of(vault_id: &str, user: &str) -> bool {
    let hex = |text: &str, len: usize| text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let Some(rest) = user.strip_prefix("vault-").and_then(|rest| rest.strip_prefix(vault_id)) else { return false };
    hex(vault_id, 32) && (rest.is_empty() || rest.strip_prefix('-').is_some_and(|tag| hex(tag, 16)))
}

/// How long one keyring call may take before it counts as unavailable.
const DEADLINE: Duration = Duration::from_secs(5);

/// Why the keyring could not be used. The messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the OS keyring is unavailable: {0}")]
    Unavailable(String),
    #[error("the OS keyring holds no key for this vault (entry {0})")]
    Missing(String),
    #[error("the OS keyring did not answer within {} seconds", DEADLINE.as_secs())]
    Timeout,
}

/// A handle on the process-wide credential store.
#[derive(Debug)]
pub struct Keyring(());

impl Keyring {
    /// Connects to the platform store (Secret Service on Linux) and makes it
    /// the process default. Fails fast with no session bus or a locked keyring.
    pub fn system() -> Result<Keyring, Error> {
        with_deadline(|| {
            #[cfg(target_os = "linux")]
            {
                let store = zbus_secret_service_keyring_store::Store::new().map_err(describe)?;
                keyring_core::set_default_store(store);
                Ok(Keyring(()))
            }
            #[cfg(not(target_os = "linux"))]
            {
                Err(Error::Unavailable("Countersign does not support this platform's keyring yet".into()))
            }
        })
    }

    /// Uses whatever store the process already set as default (for tests:
    /// keyring-core's in-memory mock store).
    pub fn with_current_store() -> Keyring {
        Keyring(())
    }

    pub(super) fn get(&self, service: &str, user: &str) -> Result<Key, Error> {
        let bytes = self.get_secret(service, user)?;
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| Error::Unavailable(format!("the entry {service}/{user} does not hold a 32-byte key")))?;
        Ok(Key::from_bytes(key))
    }

    /// The bytes stored under `service`/`user` (the listener keys use this too).
    pub(crate) fn get_secret(&self, service: &str, user: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
        let (service, user) = (service.to_owned(), user.to_owned());
        with_deadline(move || {
            let entry = keyring_core::Entry::new(&service, &user).map_err(describe)?;
            entry.get_secret().map(Zeroizing::new).map_err(|e| match e {
                keyring_core::Error::NoEntry => Error::Missing(format!("{service}/{user}")),
                other => describe(other),
            })
        })
    }

    pub(super) fn set(&self, service: &str, user: &str, key: &Key) -> Result<(), Error> {
        self.set_secret(service, user, key.as_bytes())
    }

    /// Stores `secret` under `service`/`user`, replacing what was there.
    pub(crate) fn set_secret(&self, service: &str, user: &str, secret: &[u8]) -> Result<(), Error> {
        let (service, user, secret) = (service.to_owned(), user.to_owned(), Zeroizing::new(secret.to_vec()));
        with_deadline(move || {
            let entry = keyring_core::Entry::new(&service, &user).map_err(describe)?;
            entry.set_secret(&secret).map_err(describe)
        })
    }

    pub(crate) fn delete(&self, service: &str, user: &str) -> Result<(), Error> {
        let (service, user) = (service.to_owned(), user.to_owned());
        with_deadline(move || {
            let entry = keyring_core::Entry::new(&service, &user).map_err(describe)?;
            match entry.delete_credential() {
                Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
                Err(other) => Err(describe(other)),
            }
        })
    }
}

/// keyring-core errors as text. Variants that carry secret bytes
/// (`BadEncoding`, `BadDataFormat`) are described without them.
fn describe(error: keyring_core::Error) -> Error {
    use keyring_core::Error as E;
    Error::Unavailable(match error {
        E::BadEncoding(_) => "the stored key is not in the expected encoding".into(),
        E::BadDataFormat(_, _) => "the stored key is not in the expected format".into(),
        E::Ambiguous(_) => "several keyring entries match this vault".into(),
        other => other.to_string(),
    })
}

fn with_deadline<T: Send + 'static>(call: impl FnOnce() -> Result<T, Error> + Send + 'static) -> Result<T, Error> {
    let (sender, receiver) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("keyring".into())
        .spawn(move || {
            let _ = sender.send(call());
        })
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    receiver.recv_timeout(DEADLINE).unwrap_or(Err(Error::Timeout))
}
