//! 2FAS backups (`.2fas`), schema versions 1 to 4, as 2FAS for Android and
//! iOS write them (twofas-android `BackupContent`; Aegis's `TwoFasImporter`).
//!
//! ```text
//! { "services": [service...], "groups": [...], "schemaVersion": 4, "appOrigin": ...,
//!   "servicesEncrypted": "B64(ciphertext||tag):B64(salt):B64(iv)",   (encrypted only)
//!   "reference": "..." }
//! service = { "name", "secret": Base32, "otp": { "account", "issuer", "label",
//!             "digits", "period", "algorithm", "counter", "tokenType": "TOTP"|"HOTP"|"STEAM" } }
//! ```
//!
//! Encrypted backups have an empty `services` list; `servicesEncrypted`
//! decrypts to the JSON list of services with AES-256-GCM (12-byte IV) under
//! PBKDF2-HMAC-SHA256(password, salt, 10,000 iterations, 256 bits).

use serde::Deserialize;
use serde_json::Value;

use super::crypto::{self, Hash};
use super::{Fields, Format, Item, Problem, base32, json, unb64};
use crate::secret::Password;

const FORMAT: Format = Format::TwoFas;
const ITERATIONS: u32 = 10_000;

pub(super) fn detect(json: &Value) -> Option<(Format, bool)> {
    let encrypted = json.get("servicesEncrypted").and_then(Value::as_str).is_some_and(|text| !text.is_empty());
    (json.get("services").is_some() && json.get("schemaVersion").is_some()).then_some((FORMAT, encrypted))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Backup {
    #[serde(default)]
    services: Vec<Service>,
    #[serde(default)]
    services_encrypted: Option<String>,
}

#[derive(Deserialize)]
struct Service {
    #[serde(default)]
    name: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    otp: Otp,
}

impl Drop for Service {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Otp {
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    label: Option<String>,
    digits: Option<u64>,
    period: Option<u64>,
    #[serde(default)]
    algorithm: Option<String>,
    counter: Option<u64>,
    #[serde(default)]
    token_type: Option<String>,
}

pub(super) fn read(bytes: &[u8], password: Option<&Password>) -> Result<Vec<Item>, Problem> {
    let backup: Backup = json(bytes, FORMAT)?;
    let services = match backup.services_encrypted.as_deref().filter(|text| !text.is_empty()) {
        None => backup.services,
        Some(encrypted) => {
            let password = password.ok_or(Problem::PasswordNeeded(FORMAT))?;
            let plain = decrypt(encrypted, password)?;
            json::<Vec<Service>>(&plain, FORMAT)?
        }
    };
    Ok(services.iter().map(item).collect())
}

fn decrypt(encrypted: &str, password: &Password) -> Result<zeroize::Zeroizing<Vec<u8>>, Problem> {
    let parts: Vec<&str> = encrypted.split(':').collect();
    let [data, salt, iv] = parts.as_slice() else {
        return Err(Problem::Damaged(format!("servicesEncrypted has {} parts where 2FAS writes 3", parts.len())));
    };
    let key = crypto::pbkdf2(Hash::Sha256, password.as_bytes(), &unb64(salt, "the salt")?, ITERATIONS)?;
    crypto::open(&key, &unb64(iv, "the IV")?, &unb64(data, "servicesEncrypted")?)
}

fn item(service: &Service) -> Item {
    let otp = &service.otp;
    let issuer = otp.issuer.as_deref().filter(|issuer| !issuer.trim().is_empty()).unwrap_or(&service.name);
    let name = otp.account.as_deref().filter(|name| !name.trim().is_empty()).or(otp.label.as_deref()).unwrap_or("");
    Fields {
        issuer,
        name,
        secret: base32(&service.secret),
        kind: otp.token_type.as_deref().unwrap_or("TOTP"),
        algorithm: otp.algorithm.as_deref().unwrap_or("SHA1"),
        digits: otp.digits,
        period: otp.period,
        counter: otp.counter,
    }
    .item()
}
