//! andOTP backups (andOTP 0.9), as its `BackupHelper` and `EncryptionHelper`
//! write them and Aegis's `AndOtpImporter` reads them.
//!
//! Plain (`otp_accounts.json`): a JSON list of
//! `{ "secret": Base32, "issuer", "label", "digits", "type": "TOTP"|"HOTP"|"STEAM",
//!    "algorithm": "SHA1"|..., "period" (TOTP, STEAM), "counter" (HOTP), "thumbnail", "tags", ... }`.
//!
//! Encrypted (`otp_accounts.json.aes`), current layout:
//! `iterations (4 bytes, big-endian) || salt (12) || IV (12) || AES-256-GCM(ciphertext || tag)`
//! with the key PBKDF2-HMAC-SHA1(password, salt, iterations, 256 bits);
//! andOTP draws the iteration count between 140,000 and 160,000.
//! The old layout (before 0.6.3) is `IV (12) || ciphertext || tag` under
//! SHA-256(password); it is tried when the current one fails.

use serde::Deserialize;
use serde_json::Value;
use sha2::Digest;

use super::crypto::{self, Hash};
use super::{Fields, Format, Item, Problem, base32, json};
use crate::secret::Password;

const FORMAT: Format = Format::AndOtp;
const SALT: usize = 12;
const IV: usize = 12;
const TAG: usize = 16;

pub(super) fn detect_plain(json: &Value) -> Option<(Format, bool)> {
    let entries = json.as_array()?;
    entries.iter().all(|entry| entry.get("secret").is_some() && entry.get("type").is_some()).then_some((FORMAT, false))
}

/// Binary content whose first four bytes are a plausible iteration count.
pub(super) fn detect_encrypted(bytes: &[u8]) -> Option<(Format, bool)> {
    let iterations = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?);
    (bytes.len() >= 4 + SALT + IV + TAG && (1_000..=10_000_000).contains(&iterations)).then_some((FORMAT, true))
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    secret: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    label: String,
    digits: Option<u64>,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    algorithm: String,
    period: Option<u64>,
    counter: Option<u64>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

pub(super) fn read(bytes: &[u8], password: Option<&Password>) -> Result<Vec<Item>, Problem> {
    let entries: Vec<Entry> = match serde_json::from_slice::<Value>(bytes) {
        Ok(_) => json(bytes, FORMAT)?,
        Err(_) => {
            let password = password.ok_or(Problem::PasswordNeeded(FORMAT))?;
            json(&decrypt(bytes, password)?, FORMAT)?
        }
    };
    Ok(entries.iter().map(item).collect())
}

fn decrypt(bytes: &[u8], password: &Password) -> Result<zeroize::Zeroizing<Vec<u8>>, Problem> {
    if bytes.len() < IV + TAG {
        return Err(Problem::Damaged("too short for an encrypted andOTP backup".into()));
    }
    if let Some((_, true)) = detect_encrypted(bytes) {
        let iterations = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let (salt, rest) = bytes[4..].split_at(SALT);
        let (iv, sealed) = rest.split_at(IV);
        let key = crypto::pbkdf2(Hash::Sha1, password.as_bytes(), salt, iterations)?;
        if let Ok(plain) = crypto::open(&key, iv, sealed) {
            return Ok(plain);
        }
    }
    let key = zeroize::Zeroizing::new(<[u8; 32]>::from(sha2::Sha256::digest(password.as_bytes())));
    let (iv, sealed) = bytes.split_at(IV);
    crypto::open(&key, iv, sealed)
}

fn item(entry: &Entry) -> Item {
    Fields {
        issuer: &entry.issuer,
        name: &entry.label,
        secret: base32(&entry.secret),
        kind: &entry.kind,
        algorithm: &entry.algorithm,
        digits: entry.digits,
        period: entry.period,
        counter: entry.counter,
    }
    .item()
}
