//! Keeping this device reachable for sign-in requests (feature `client`):
//! an activation keeps the account in the vault and its listener key
//! outside it; a device activated before listener keys existed (or whose
//! key was lost) registers a new one the next time the vault is open; and
//! the listeners file follows the vault when accounts go. The window and the
//! command line both do these through here.

use crate::listeners::{self, Placement};
use crate::push::client::{self, Activated};
use crate::push::{Keypair, Link};
use crate::vault::{self, Id, Keyring, Vault};

/// Why keeping a device reachable failed. Never holds key material.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Vault(#[from] vault::Error),
    #[error("the listener key could not be kept: {0}")]
    Listeners(#[from] listeners::Error),
    #[error(transparent)]
    Server(#[from] client::Error),
}

/// What an activation kept.
#[derive(Debug, Clone)]
pub struct Kept {
    pub id: Id,
    pub title: String,
    /// Where the listener key went; `None` when the server has no listener
    /// keys, or it could not be kept (the account then receives requests
    /// only while unlocked, and the next unlock registers a new one).
    pub placement: Option<Placement>,
    /// What could not be done after the account was kept (its activation
    /// code is spent by then, so these are not failures of the activation).
    pub warnings: Vec<String>,
}

/// The keyring for listener keys: the OS keyring when the vault itself uses
/// one and it answers. A password-only vault keeps them in the private file,
/// so that requests arrive right after login even where no keyring is
/// unlocked then.
pub fn keyring_for(vault: &Vault) -> Option<Keyring> {
    if vault.has_keyring() { Keyring::system().ok() } else { None }
}

/// Keeps an activation: the account and its push link in the vault, its
/// listener key outside it, and the sign-in journal ready.
pub fn keep_activation(vault: &mut Vault, activated: Activated, keyring: Option<&Keyring>, now: u64) -> Result<Kept, Error> {
    let Activated { account, link, listener } = activated;
    let title = account.title();
    let id = vault.add_push(account, link, now)?;
    let mut warnings = Vec::new();
    let placement = match listener.map(|listener| listeners::add(vault.path(), &id, &listener, keyring)) {
        Some(Ok(placement)) => Some(placement),
        Some(Err(error)) => {
            warnings.push(format!(
                "the listener key was not kept ({error}); requests arrive only while unlocked until the next unlock registers a new one"
            ));
            None
        }
        None => None,
    };
    if let Err(error) = vault.ensure_journal(now) {
        warnings.push(format!("the sign-in history is not kept: {error}"));
    }
    Ok(Kept { id, title, placement, warnings })
}

/// The work or school accounts with no listener kept (`kept`: account and
/// device, from [`listeners::kept`]), or one for another device (the
/// account was activated again): each needs a new listener key. A key kept
/// in a keyring that does not answer right now is not missing.
pub fn missing_listeners(vault: &Vault, kept: &[(Id, String)]) -> Vec<(Id, Link)> {
    vault
        .entries()
        .iter()
        .filter_map(|entry| entry.push.clone().map(|link| (entry.id.clone(), link)))
        .filter(|(id, link)| !kept.iter().any(|(account, device)| account == id && *device == link.device_id))
        .collect()
}

/// Registers a new listener key for the device behind `link` with its
/// server (the device key vouches for it), and keeps it for account `id`.
/// The vault need not stay unlocked meanwhile: `link` is a copy. `now`
/// dates the registration.
pub async fn register(
    vault_path: std::path::PathBuf,
    id: Id,
    link: Link,
    keyring: Option<Keyring>,
    now: crate::clock::Now,
) -> Result<Placement, Error> {
    let key = Keypair::generate().map_err(|e| client::Error::Account(e.to_string()))?;
    client::register_listener(&link, &key.public(), now).await?;
    let listener = link.listener(key);
    let placement = tokio::task::spawn_blocking(move || listeners::add(&vault_path, &id, &listener, keyring.as_ref()))
        .await
        .map_err(|e| listeners::Error::Damaged { path: std::path::PathBuf::new(), reason: e.to_string() })??;
    Ok(placement)
}

/// Forgets the listeners of accounts no longer in the vault; true when any went.
pub fn prune(vault: &Vault, keyring: Option<&Keyring>) -> Result<bool, Error> {
    let accounts: Vec<Id> = vault.entries().iter().filter(|e| e.push.is_some()).map(|e| e.id.clone()).collect();
    Ok(listeners::retain(vault.path(), &accounts, keyring)?)
}
