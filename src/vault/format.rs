//! Byte layout and cryptography of vault format versions 1 to 3 (documented in [`super`]).

use std::path::Path;

use argon2::{Algorithm as Argon2Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{Entry, Id, PushToken};
use crate::account::{Account, Algorithm, Method};
use crate::secret::{Password, Secret};

pub(super) const MAGIC: &[u8; 8] = b"CSVAULT\n";
pub(super) const VERSION: u16 = 1;
/// Written when the vault holds privacyIDEA tokens: version 1 readers ignore
/// unknown fields and would drop the tokens (and their keys) on their next
/// save, so they must refuse the file instead.
pub(super) const VERSION_TOKENS: u16 = 2;
/// Written when the vault holds the sign-in journal's key, for the same
/// reason: a version 1 or 2 reader would drop the key on its next save, and
/// the journal could never be read again.
pub(super) const VERSION_JOURNAL: u16 = 3;
const PREFIX: usize = 8 + 2 + 4;
const MAX_HEADER: usize = 1 << 20;
const TAG: usize = 16;
const CHECKSUM: usize = 32;
const CIPHER: &str = "XChaCha20-Poly1305";
const SLOT_AAD: &str = "countersign-slot-v1";

/// Argon2id cost parameters for a password slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kdf {
    /// Memory in KiB (default 65536 = 64 MiB).
    pub memory_kib: u32,
    /// Passes over memory (default 3).
    pub passes: u32,
    /// Parallel lanes (default 1).
    pub lanes: u32,
}

impl Default for Kdf {
    fn default() -> Self {
        Kdf { memory_kib: 64 * 1024, passes: 3, lanes: 1 }
    }
}

impl Kdf {
    /// Highest costs a file may ask for, checked when its header is read,
    /// before any password is tried: a damaged or tampered header cannot
    /// demand gigabytes or minutes of work. Every value Countersign writes is
    /// far below (the default is 64 MiB, 3 passes; the command line stops at
    /// 1024 MiB, 16 passes). Before December 2026 the ceiling was 4 GiB and
    /// 64 passes; no released writer used more than this one allows.
    pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;
    /// See [`Kdf::MAX_MEMORY_KIB`].
    pub const MAX_PASSES: u32 = 16;
    /// See [`Kdf::MAX_MEMORY_KIB`].
    pub const MAX_LANES: u32 = 16;
    /// Lowest costs a front end may choose for a new password slot: OWASP's
    /// minimum for Argon2id (19 MiB, 2 passes, 1 lane). Only tests go lower,
    /// on purpose and explicitly; files are still read whatever their floor.
    pub const MIN_MEMORY_KIB: u32 = 19 * 1024;
    /// See [`Kdf::MIN_MEMORY_KIB`].
    pub const MIN_PASSES: u32 = 2;

    /// Whether these costs are within what a file may ask for.
    fn within_ceiling(&self) -> Result<(), String> {
        if self.memory_kib > Self::MAX_MEMORY_KIB || self.passes > Self::MAX_PASSES || self.lanes > Self::MAX_LANES {
            return Err(format!(
                "its password slot asks for Argon2id with {} MiB, {} passes and {} lanes; at most {} MiB, {} passes and {} lanes are tried",
                self.memory_kib / 1024,
                self.passes,
                self.lanes,
                Self::MAX_MEMORY_KIB / 1024,
                Self::MAX_PASSES,
                Self::MAX_LANES
            ));
        }
        Ok(())
    }

    /// Refuses costs under the floor ([`Kdf::MIN_MEMORY_KIB`],
    /// [`Kdf::MIN_PASSES`]) or over the ceiling, for a password the user is
    /// about to set.
    pub fn check_strength(&self) -> Result<(), super::Error> {
        if self.memory_kib < Self::MIN_MEMORY_KIB || self.passes < Self::MIN_PASSES {
            return Err(super::Error::Kdf(format!(
                "Argon2id with {} MiB and {} passes is too cheap to slow down password guessing; use at least {} MiB and {} passes",
                self.memory_kib / 1024,
                self.passes,
                Self::MIN_MEMORY_KIB / 1024,
                Self::MIN_PASSES
            )));
        }
        self.within_ceiling().map_err(super::Error::Kdf)
    }

    fn params(&self) -> Result<Params, super::Error> {
        self.within_ceiling().map_err(super::Error::Kdf)?;
        Params::new(self.memory_kib, self.passes, self.lanes, Some(32)).map_err(|e| super::Error::Kdf(e.to_string()))
    }

    /// Derives a slot key: Argon2id v0x13, 32-byte output.
    fn derive(&self, password: &Password, salt: &[u8]) -> Result<Key, super::Error> {
        let argon2 = Argon2::new(Argon2Algorithm::Argon2id, Version::V0x13, self.params()?);
        let mut key = Key(Zeroizing::new([0; 32]));
        argon2.hash_password_into(password.as_bytes(), salt, &mut key.0[..]).map_err(|e| super::Error::Kdf(e.to_string()))?;
        Ok(key)
    }
}

/// A 256-bit key (master or slot key), wiped on drop.
#[derive(Clone)]
pub(super) struct Key(Zeroizing<[u8; 32]>);

impl Key {
    pub(super) fn random() -> Result<Self, super::Error> {
        Ok(Key(Zeroizing::new(random::<32>()?)))
    }

    pub(super) fn from_bytes(bytes: [u8; 32]) -> Self {
        Key(Zeroizing::new(bytes))
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.0[..]
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&(*self.0).into())
    }
}

/// `N` bytes from the operating system's CSPRNG.
pub(super) fn random<const N: usize>() -> Result<[u8; N], super::Error> {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes).map_err(|_| super::Error::Random)?;
    Ok(bytes)
}

/// What can be wrong with a file's bytes, before a path is attached.
#[derive(Debug)]
pub(super) enum Error {
    NotAVault,
    Truncated,
    Version(u16),
    Checksum,
    Header(String),
    /// The payload did not authenticate under the master key.
    Decrypt,
    Payload(String),
    /// The password slot asks for more Argon2id work than any file may.
    TooCostly(String),
}

impl Error {
    pub(super) fn at(self, path: &Path) -> super::Error {
        let path = path.to_owned();
        let backup = Some(super::backup_path(&path)).filter(|b| b.is_file());
        let reason = match self {
            Error::NotAVault => return super::Error::NotAVault { path },
            Error::Version(version) => return super::Error::UnsupportedVersion { path, version, backup },
            Error::TooCostly(reason) => return super::Error::TooCostly { path, reason },
            other => other.reason(),
        };
        super::Error::Corrupt { path, reason, backup }
    }

    /// What is wrong, without a file name.
    pub(super) fn reason(self) -> String {
        match self {
            Error::NotAVault => "it is not a Countersign vault".to_owned(),
            Error::Version(version) => format!("it uses vault format version {version}, which this Countersign cannot read"),
            Error::Truncated => "the file is truncated".to_owned(),
            Error::Checksum => "checksum mismatch: the file was truncated or altered".to_owned(),
            Error::Header(why) => format!("unreadable header: {why}"),
            Error::Decrypt => "the encrypted accounts failed authentication".to_owned(),
            Error::Payload(why) => format!("unreadable accounts: {why}"),
            Error::TooCostly(why) => format!("{why}, so it was not opened (a damaged or tampered file)"),
        }
    }
}

/// The readable part of a vault file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Header {
    pub(super) vault_id: String,
    cipher: String,
    #[serde(with = "b64")]
    nonce: [u8; 24],
    pub(super) slots: Vec<Slot>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(super) enum Slot {
    Password {
        kdf: StoredKdf,
        #[serde(with = "b64")]
        nonce: [u8; 24],
        #[serde(with = "b64")]
        wrapped_key: [u8; 48],
    },
    Keyring {
        service: String,
        user: String,
        #[serde(with = "b64")]
        nonce: [u8; 24],
        #[serde(with = "b64")]
        wrapped_key: [u8; 48],
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StoredKdf {
    algorithm: String,
    version: u32,
    #[serde(flatten)]
    params: Kdf,
    #[serde(with = "b64")]
    salt: [u8; 16],
}

impl Header {
    pub(super) fn new() -> Result<Self, super::Error> {
        Ok(Header { vault_id: super::hex(&random::<16>()?), cipher: CIPHER.into(), nonce: [0; 24], slots: Vec::new() })
    }

    /// The same vault with no slots, for re-keying.
    pub(super) fn rekeyed(&self) -> Self {
        Header { slots: Vec::new(), ..self.clone() }
    }

    /// A new keyring entry name for this vault: each keyring key gets its
    /// own, so replacing the key never overwrites the entry older copies use
    /// (see [`super::keyring::is_entry_of`]).
    pub(super) fn new_keyring_user(&self) -> Result<String, super::Error> {
        Ok(format!("vault-{}-{}", self.vault_id, super::hex(&random::<8>()?)))
    }

    pub(super) fn password_slot(&self) -> Option<&Slot> {
        self.slots.iter().find(|s| matches!(s, Slot::Password { .. }))
    }

    /// The keyring entry (user name under [`super::keyring::SERVICE`]) of the
    /// keyring slot, if there is one; [`Header::check`] proved it is this vault's.
    pub(super) fn keyring_slot(&self) -> Option<&str> {
        self.slots.iter().find_map(|s| match s {
            Slot::Keyring { user, .. } => Some(user.as_str()),
            Slot::Password { .. } => None,
        })
    }

    fn slot_aad(&self, kind: &str) -> Vec<u8> {
        format!("{SLOT_AAD}|{}|{kind}", self.vault_id).into_bytes()
    }

    fn wrap(&self, kind: &str, slot_key: &Key, master: &Key) -> Result<([u8; 24], [u8; 48]), super::Error> {
        let nonce = random::<24>()?;
        let wrapped = slot_key
            .cipher()
            .encrypt(&XNonce::from(nonce), Payload { msg: &master.0[..], aad: &self.slot_aad(kind) })
            .map_err(|_| super::Error::Random)?;
        let wrapped: [u8; 48] = wrapped.try_into().map_err(|_| super::Error::Random)?;
        Ok((nonce, wrapped))
    }

    fn unwrap(&self, kind: &str, slot_key: &Key, nonce: &[u8; 24], wrapped: &[u8; 48]) -> Option<Key> {
        let plain =
            Zeroizing::new(slot_key.cipher().decrypt(&XNonce::from(*nonce), Payload { msg: wrapped, aad: &self.slot_aad(kind) }).ok()?);
        let bytes: [u8; 32] = plain.as_slice().try_into().ok()?;
        Some(Key(Zeroizing::new(bytes)))
    }

    pub(super) fn add_password_slot(&mut self, password: &Password, kdf: &Kdf, master: &Key) -> Result<(), super::Error> {
        let salt = random::<16>()?;
        let slot_key = kdf.derive(password, &salt)?;
        let (nonce, wrapped_key) = self.wrap("password", &slot_key, master)?;
        self.slots.retain(|s| !matches!(s, Slot::Password { .. }));
        let kdf = StoredKdf { algorithm: "argon2id".into(), version: 0x13, params: *kdf, salt };
        self.slots.push(Slot::Password { kdf, nonce, wrapped_key });
        Ok(())
    }

    pub(super) fn add_keyring_slot(&mut self, user: &str, slot_key: &Key, master: &Key) -> Result<(), super::Error> {
        let (nonce, wrapped_key) = self.wrap("keyring", slot_key, master)?;
        self.remove_keyring_slot();
        self.slots.push(Slot::Keyring { service: super::keyring::SERVICE.into(), user: user.into(), nonce, wrapped_key });
        Ok(())
    }

    pub(super) fn remove_keyring_slot(&mut self) {
        self.slots.retain(|s| !matches!(s, Slot::Keyring { .. }));
    }

    pub(super) fn unwrap_with_password(&self, password: &Password) -> Result<Key, super::Error> {
        match self.password_slot() {
            Some(Slot::Password { kdf, nonce, wrapped_key }) => {
                let slot_key = kdf.params.derive(password, &kdf.salt)?;
                self.unwrap("password", &slot_key, nonce, wrapped_key).ok_or(super::Error::WrongPassword)
            }
            _ => Err(super::Error::NoPasswordSlot),
        }
    }

    pub(super) fn unwrap_with_keyring(&self, slot_key: &Key) -> Result<Key, super::Error> {
        self.slots
            .iter()
            .find_map(|slot| match slot {
                Slot::Keyring { nonce, wrapped_key, .. } => {
                    Some(self.unwrap("keyring", slot_key, nonce, wrapped_key).ok_or(super::Error::KeyringMismatch))
                }
                Slot::Password { .. } => None,
            })
            .unwrap_or(Err(super::Error::NoKeyringSlot))
    }

    fn check(&self) -> Result<(), Error> {
        if self.cipher != CIPHER {
            return Err(Error::Header(format!("unknown cipher {:?}", self.cipher)));
        }
        for slot in &self.slots {
            if let Slot::Keyring { service, user, .. } = slot
                && (service != super::keyring::SERVICE || !super::keyring::is_entry_of(&self.vault_id, user))
            {
                return Err(Error::Header("its keyring slot names an entry that is not this vault's".into()));
            }
            if let Slot::Password { kdf, .. } = slot {
                if kdf.algorithm != "argon2id" || kdf.version != 0x13 {
                    return Err(Error::Header(format!("unknown key derivation {} v{}", kdf.algorithm, kdf.version)));
                }
                kdf.params.within_ceiling().map_err(Error::TooCostly)?;
                kdf.params.params().map_err(|e| Error::Header(e.to_string()))?;
            }
        }
        if self.slots.is_empty() {
            return Err(Error::Header("no key slots".into()));
        }
        Ok(())
    }
}

/// A decoded vault file: header, and the ciphertext with its associated data.
#[derive(Debug)]
pub(super) struct File {
    pub(super) header: Header,
    aad: Vec<u8>,
    ciphertext: Vec<u8>,
}

impl File {
    #[cfg(test)]
    pub(super) fn header_nonce(&self) -> [u8; 24] {
        self.header.nonce
    }

    /// The decrypted payload JSON, for tests that look for what must not be in it.
    #[cfg(test)]
    pub(super) fn plaintext_for_tests(&self, master: &Key) -> String {
        let plain =
            master.cipher().decrypt(&XNonce::from(self.header.nonce), Payload { msg: &self.ciphertext, aad: &self.aad }).expect("decrypts");
        String::from_utf8(plain).expect("UTF-8 JSON")
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<File, Error> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(if MAGIC.starts_with(bytes) { Error::Truncated } else { Error::NotAVault });
        }
        if bytes.len() < PREFIX {
            return Err(Error::Truncated);
        }
        let version = u16::from_be_bytes([bytes[8], bytes[9]]);
        if !matches!(version, VERSION | VERSION_TOKENS | VERSION_JOURNAL) {
            return Err(Error::Version(version));
        }
        if bytes.len() < PREFIX + TAG + CHECKSUM {
            return Err(Error::Truncated);
        }
        let (body, checksum) = bytes.split_at(bytes.len() - CHECKSUM);
        if Sha256::digest(body).as_slice() != checksum {
            return Err(Error::Checksum);
        }
        let header_len = u32::from_be_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]) as usize;
        if header_len > MAX_HEADER || PREFIX + header_len + TAG > body.len() {
            return Err(Error::Header("impossible header length".into()));
        }
        let (aad, ciphertext) = body.split_at(PREFIX + header_len);
        let header: Header = serde_json::from_slice(&aad[PREFIX..]).map_err(|e| Error::Header(e.to_string()))?;
        header.check()?;
        Ok(File { header, aad: aad.to_vec(), ciphertext: ciphertext.to_vec() })
    }

    pub(super) fn decrypt(&self, master: &Key) -> Result<Contents, Error> {
        let plain = Zeroizing::new(
            master
                .cipher()
                .decrypt(&XNonce::from(self.header.nonce), Payload { msg: &self.ciphertext, aad: &self.aad })
                .map_err(|_| Error::Decrypt)?,
        );
        // serde's message can quote a value (a secret): keep the position only.
        let payload: StoredPayload = serde_json::from_slice(&plain)
            .map_err(|e| Error::Payload(format!("unexpected layout at line {}, column {}", e.line(), e.column())))?;
        let entries = payload.entries.into_iter().map(StoredEntry::into_entry).collect::<Result<_, _>>().map_err(Error::Payload)?;
        let tokens = payload.push_tokens.iter().map(StoredToken::to_token).collect::<Result<_, _>>().map_err(Error::Payload)?;
        let journal = payload.journal_key.as_ref().map(StoredJournalKey::to_key).transpose().map_err(Error::Payload)?;
        Ok(Contents { entries, tokens, journal })
    }

    /// Encodes a whole file with a fresh payload nonce.
    pub(super) fn encrypt(header: &Header, master: &Key, contents: &Contents) -> Result<Vec<u8>, super::Error> {
        let Contents { entries, tokens, journal } = contents;
        let header = Header { nonce: random::<24>()?, ..header.clone() };
        let header_json = serde_json::to_vec(&header).map_err(|e| super::Error::Encode(e.to_string()))?;
        let payload = StoredPayload {
            entries: entries.iter().map(StoredEntry::from_entry).collect(),
            push_tokens: tokens.iter().map(StoredToken::from_token).collect(),
            journal_key: journal.as_ref().map(StoredJournalKey::from_key),
        };
        // Large enough for the whole payload, so no reallocation leaves an
        // unwiped copy of a secret or a key behind (a token's PKCS#8 key is
        // about 3.2 KiB of base64).
        let mut plain = Zeroizing::new(Vec::with_capacity(256 * entries.len() + 6144 * tokens.len() + 64));
        serde_json::to_writer(&mut *plain, &payload).map_err(|e| super::Error::Encode(e.to_string()))?;

        let mut bytes = Vec::with_capacity(PREFIX + header_json.len() + plain.len() + TAG + CHECKSUM);
        bytes.extend_from_slice(MAGIC);
        let version = match (journal, tokens.is_empty()) {
            (Some(_), _) => VERSION_JOURNAL,
            (None, false) => VERSION_TOKENS,
            (None, true) => VERSION,
        };
        bytes.extend_from_slice(&version.to_be_bytes());
        bytes.extend_from_slice(&(header_json.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&header_json);
        let ciphertext =
            master.cipher().encrypt(&XNonce::from(header.nonce), Payload { msg: &plain, aad: &bytes }).map_err(|_| super::Error::Random)?;
        bytes.extend_from_slice(&ciphertext);
        let checksum = Sha256::digest(&bytes);
        bytes.extend_from_slice(&checksum);
        Ok(bytes)
    }
}

/// What the payload holds, decrypted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Contents {
    pub(super) entries: Vec<Entry>,
    pub(super) tokens: Vec<PushToken>,
    /// The sign-in journal's secret key (see [`crate::journal`]).
    pub(super) journal: Option<crate::journal::SecretKey>,
}

#[derive(Serialize, Deserialize)]
struct StoredPayload {
    entries: Vec<StoredEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    push_tokens: Vec<StoredToken>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    journal_key: Option<StoredJournalKey>,
}

/// The journal's 32-byte secret key in base64, wiped when dropped.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct StoredJournalKey(String);

impl Drop for StoredJournalKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl StoredJournalKey {
    fn from_key(key: &crate::journal::SecretKey) -> Self {
        StoredJournalKey(crate::base64::encode(*key.to_bytes()))
    }

    fn to_key(&self) -> Result<crate::journal::SecretKey, String> {
        let bytes = Zeroizing::new(crate::base64::decode(&self.0).map_err(|_| "unreadable journal key".to_owned())?);
        let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| "unreadable journal key".to_owned())?;
        Ok(crate::journal::SecretKey::from_bytes(bytes))
    }
}

/// [`PushToken`] as stored: the keys' DER in base64.
#[derive(Serialize, Deserialize)]
struct StoredToken {
    id: Id,
    added: u64,
    serial: String,
    label: String,
    issuer: String,
    url: String,
    sslverify: bool,
    pin: bool,
    key: String,
    server_key: String,
}

impl Drop for StoredToken {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

impl StoredToken {
    fn from_token(stored: &PushToken) -> Self {
        let token = &stored.token;
        StoredToken {
            id: stored.id.clone(),
            added: stored.added,
            serial: token.serial.clone(),
            label: token.label.clone(),
            issuer: token.issuer.clone(),
            url: token.url.clone(),
            sslverify: token.sslverify,
            pin: token.pin,
            key: crate::base64::encode(token.key.pkcs8()),
            server_key: crate::base64::encode(&token.server_key),
        }
    }

    fn to_token(&self) -> Result<PushToken, String> {
        let unreadable = |what: &str| format!("privacyIDEA token {}: unreadable {what}", self.id);
        let der = zeroize::Zeroizing::new(crate::base64::decode(&self.key).map_err(|_| unreadable("key"))?);
        let key = crate::privacyidea::DeviceKey::from_pkcs8(&der).map_err(|_| unreadable("key"))?;
        let server_key = crate::base64::decode(&self.server_key).map_err(|_| unreadable("server key"))?;
        Ok(PushToken {
            id: self.id.clone(),
            added: self.added,
            token: crate::privacyidea::Token {
                serial: self.serial.clone(),
                label: self.label.clone(),
                issuer: self.issuer.clone(),
                url: self.url.clone(),
                sslverify: self.sslverify,
                pin: self.pin,
                key,
                server_key,
            },
        })
    }
}

#[derive(Serialize, Deserialize)]
struct StoredEntry {
    id: Id,
    added: u64,
    issuer: String,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    label_issuer: Option<String>,
    #[serde(with = "secret_base32")]
    secret: Secret,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    counter: Option<u64>,
    algorithm: Algorithm,
    digits: u8,
    /// A work or school account's push link (format 1 readers that predate
    /// it ignore the field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    push: Option<StoredLink>,
}

/// [`crate::push::Link`] as stored: the device key's 32-byte seed in base64.
#[derive(Serialize, Deserialize)]
struct StoredLink {
    organization: String,
    user: String,
    device_id: String,
    device_key: String,
    server_key: crate::push::PublicKey,
    endpoint: String,
}

impl Drop for StoredLink {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.device_key);
    }
}

impl StoredEntry {
    fn from_entry(entry: &Entry) -> Self {
        let account = &entry.account;
        let (period, counter) = match account.method {
            Method::Totp { period } => (Some(period), None),
            Method::Hotp { counter } => (None, Some(counter)),
            Method::Steam => (None, None),
        };
        StoredEntry {
            id: entry.id.clone(),
            added: entry.added,
            issuer: account.issuer.clone(),
            name: account.name.clone(),
            label_issuer: account.label_issuer.clone(),
            secret: account.secret.clone(),
            kind: account.method.kind().into(),
            period,
            counter,
            algorithm: account.algorithm,
            digits: account.digits,
            push: entry.push.as_ref().map(|link| StoredLink {
                organization: link.organization.clone(),
                user: link.user.clone(),
                device_id: link.device_id.clone(),
                device_key: crate::base64::encode(*link.device_key.to_seed()),
                server_key: link.server_key,
                endpoint: link.endpoint.clone(),
            }),
        }
    }

    fn into_entry(self) -> Result<Entry, String> {
        let method = match (self.kind.as_str(), self.period, self.counter) {
            ("totp", Some(period), _) => Method::Totp { period },
            ("hotp", _, Some(counter)) => Method::Hotp { counter },
            ("steam", _, _) => Method::Steam,
            (kind, _, _) => return Err(format!("account {} has an unknown or incomplete type {kind:?}", self.id)),
        };
        let account = Account {
            issuer: self.issuer.clone(),
            name: self.name.clone(),
            label_issuer: self.label_issuer.clone(),
            secret: self.secret.clone(),
            method,
            algorithm: self.algorithm,
            digits: self.digits,
        };
        account.validate().map_err(|e| format!("account {}: {e}", self.id))?;
        let push = match &self.push {
            None => None,
            Some(link) => {
                let seed = zeroize::Zeroizing::new(
                    crate::base64::decode(&link.device_key).map_err(|_| format!("account {}: unreadable device key", self.id))?,
                );
                let device_key =
                    crate::push::Keypair::from_seed(&seed).map_err(|_| format!("account {}: unreadable device key", self.id))?;
                Some(crate::push::Link {
                    organization: link.organization.clone(),
                    user: link.user.clone(),
                    device_id: link.device_id.clone(),
                    device_key,
                    server_key: link.server_key,
                    endpoint: link.endpoint.clone(),
                })
            }
        };
        Ok(Entry { id: self.id.clone(), added: self.added, account, push })
    }
}

mod b64 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer, const N: usize>(bytes: &[u8; N], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&crate::base64::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(deserializer: D) -> Result<[u8; N], D::Error> {
        let text = <&str>::deserialize(deserializer)?;
        let bytes = crate::base64::decode(text).map_err(D::Error::custom)?;
        bytes.try_into().map_err(|_| D::Error::custom(format!("expected {N} bytes")))
    }
}

/// Secrets stay in Base32 inside the payload; no intermediate `String` copy
/// is kept when the JSON needs no unescaping.
mod secret_base32 {
    use serde::de::{Error, Visitor};
    use serde::{Deserializer, Serializer};

    use crate::secret::Secret;

    pub fn serialize<S: Serializer>(secret: &Secret, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&secret.to_base32())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        struct Base32;
        impl Visitor<'_> for Base32 {
            type Value = Secret;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a Base32 secret")
            }
            fn visit_str<E: Error>(self, text: &str) -> Result<Secret, E> {
                Secret::from_base32(text).map(|(secret, _)| secret).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Base32)
    }
}
