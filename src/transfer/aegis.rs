//! Aegis vault files (`aegis-export-*.json`, `aegis-backup-*.json`), as
//! documented in Aegis's `docs/vault.md` (vault version 1, database
//! versions 1 to 3; Aegis 3.x writes database version 3).
//!
//! ```text
//! { "version": 1,
//!   "header": { "slots": null | [slot...], "params": null | { "nonce": hex12, "tag": hex16 } },
//!   "db": { "version": 3, "entries": [entry...], "groups": [...] }   (plain)
//!       | "base64 of the AES-256-GCM ciphertext of that JSON, tag removed" (encrypted) }
//! entry = { "type": "totp"|"hotp"|"steam"|"yandex"|"motp", "uuid", "name", "issuer",
//!           "note", "favorite", "icon", "info": { "secret": Base32, "algo", "digits",
//!           "period" (totp, steam), "counter" (hotp) } }
//! ```
//!
//! Encryption: a random 32-byte master key encrypts the database with
//! AES-256-GCM (`header.params`). Each password slot (`"type": 1`) holds the
//! master key (`key`, hex) encrypted with AES-256-GCM (`key_params`) under
//! scrypt(password, `salt`, `n`, `r`, `p`, 32 bytes). No associated data
//! anywhere. Biometric slots (type 2) are skipped: only the phone has their key.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::Zeroizing;

use super::crypto::{self, Key};
use super::{Fields, Format, Item, Problem, base32, json, unhex};
use crate::account::Method;
use crate::secret::Password;
use crate::vault::Entry;

const FORMAT: Format = Format::Aegis;

pub(super) fn detect(json: &Value) -> Option<(Format, bool)> {
    let header = json.get("header")?;
    (json.get("version").is_some() && header.get("slots").is_some()).then(|| (FORMAT, json.get("db").is_some_and(Value::is_string)))
}

#[derive(Deserialize)]
struct File {
    version: u64,
    header: Header,
    db: Value,
}

#[derive(Deserialize, Serialize)]
struct Header {
    slots: Option<Vec<Slot>>,
    params: Option<Params>,
}

#[derive(Deserialize, Serialize)]
struct Params {
    nonce: String,
    tag: String,
}

#[derive(Deserialize, Serialize)]
struct Slot {
    #[serde(rename = "type")]
    kind: u32,
    uuid: String,
    key: String,
    key_params: Params,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    r: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    salt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    repaired: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    is_backup: Option<bool>,
}

const PASSWORD_SLOT: u32 = 1;
const MAX_PASSWORD_SLOTS: usize = 4;

#[derive(Deserialize, Serialize)]
struct Database {
    version: u64,
    entries: Vec<DbEntry>,
    #[serde(default)]
    groups: Vec<Value>,
}

#[derive(Deserialize, Serialize)]
struct DbEntry {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    uuid: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    favorite: bool,
    #[serde(default)]
    icon: Option<String>,
    info: Info,
    #[serde(default)]
    groups: Vec<String>,
}

#[derive(Deserialize, Serialize)]
struct Info {
    #[serde(default)]
    secret: String,
    #[serde(default)]
    algo: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    digits: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    counter: Option<u64>,
}

impl Drop for Info {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

pub(super) fn read(bytes: &[u8], password: Option<&Password>) -> Result<Vec<Item>, Problem> {
    let file: File = json(bytes, FORMAT)?;
    if file.version != 1 {
        return Err(Problem::Unsupported(format!("Aegis vault version {} is newer than this Countersign reads (1)", file.version)));
    }
    let database: Database = match file.db {
        Value::String(ciphertext) => {
            let password = password.ok_or(Problem::PasswordNeeded(FORMAT))?;
            let plain = decrypt(&file.header, &ciphertext, password)?;
            json(&plain, FORMAT)?
        }
        // serde's message can quote a value (a secret): say only what it is.
        db => serde_json::from_value(db).map_err(|_| Problem::Damaged("unexpected Aegis database layout".into()))?,
    };
    if !(1..=3).contains(&database.version) {
        return Err(Problem::Unsupported(format!("Aegis database version {} is newer than this Countersign reads (3)", database.version)));
    }
    Ok(database.entries.iter().map(item).collect())
}

fn item(entry: &DbEntry) -> Item {
    Fields {
        issuer: &entry.issuer,
        name: &entry.name,
        secret: base32(&entry.info.secret),
        kind: &entry.kind,
        algorithm: &entry.info.algo,
        digits: entry.info.digits,
        period: entry.info.period,
        counter: entry.info.counter,
    }
    .item()
}

fn decrypt(header: &Header, ciphertext: &str, password: &Password) -> Result<Zeroizing<Vec<u8>>, Problem> {
    let params = header.params.as_ref().ok_or_else(|| Problem::Damaged("encrypted, but the header has no params".into()))?;
    let slots: Vec<&Slot> = header.slots.iter().flatten().filter(|slot| slot.kind == PASSWORD_SLOT).collect();
    if slots.is_empty() {
        return Err(Problem::Unsupported(
            "this Aegis vault has no password slot (only biometric unlock): export it from Aegis with a password".into(),
        ));
    }
    // Each slot costs a full scrypt; a file cannot make a wrong password cost more than a few.
    if slots.len() > MAX_PASSWORD_SLOTS {
        return Err(Problem::Damaged(format!(
            "{} password slots; Aegis writes one, and at most {MAX_PASSWORD_SLOTS} are tried",
            slots.len()
        )));
    }
    let mut master = None;
    for slot in slots {
        if let Some(key) = unwrap_slot(slot, password)? {
            master = Some(key);
            break;
        }
    }
    let master = master.ok_or(Problem::WrongPassword)?;
    let mut sealed = super::unb64(ciphertext, "the database")?;
    sealed.extend(unhex(&params.tag, "header.params.tag")?);
    let plain = crypto::open(&master, &unhex(&params.nonce, "header.params.nonce")?, &sealed).map_err(|problem| match problem {
        // The password opened a slot, so a failure here is damage.
        Problem::WrongPassword => Problem::Damaged("the encrypted database failed authentication".into()),
        other => other,
    });
    zeroize::Zeroize::zeroize(&mut sealed);
    plain
}

/// The master key from one password slot, or `None` for a wrong password.
fn unwrap_slot(slot: &Slot, password: &Password) -> Result<Option<Key>, Problem> {
    let (Some(n), Some(r), Some(p), Some(salt)) = (slot.n, slot.r, slot.p, &slot.salt) else {
        return Err(Problem::Damaged("a password slot without scrypt parameters".into()));
    };
    let slot_key = crypto::scrypt(password.as_bytes(), &unhex(salt, "a slot's salt")?, n, r, p)?;
    let mut sealed = unhex(&slot.key, "a slot's key")?;
    sealed.extend(unhex(&slot.key_params.tag, "a slot's tag")?);
    match crypto::open(&slot_key, &unhex(&slot.key_params.nonce, "a slot's nonce")?, &sealed) {
        Ok(plain) => {
            let key: [u8; 32] = plain.as_slice().try_into().map_err(|_| Problem::Damaged("a slot's master key is not 32 bytes".into()))?;
            Ok(Some(Zeroizing::new(key)))
        }
        Err(Problem::WrongPassword) => Ok(None),
        Err(other) => Err(other),
    }
}

/// Writes an Aegis export; encrypted with one scrypt password slot when
/// `password` is given (the parameters Aegis itself uses: N=2^15, r=8, p=1).
pub(super) fn write(entries: &[Entry], password: Option<&Password>) -> Result<Vec<u8>, Problem> {
    let database = Database { version: 3, entries: entries.iter().map(db_entry).collect::<Result<_, _>>()?, groups: Vec::new() };
    let file = match password {
        None => serde_json::json!({ "version": 1, "header": { "slots": null, "params": null }, "db": database }),
        Some(password) => {
            let plain = Zeroizing::new(serde_json::to_vec(&database).map_err(|e| Problem::Damaged(e.to_string()))?);
            let master = Zeroizing::new(crypto::random::<32>()?);
            let (db_nonce, salt, slot_nonce) = (crypto::random::<12>()?, crypto::random::<32>()?, crypto::random::<12>()?);
            let (n, r, p) = (1 << 15, 8, 1);
            let slot_key = crypto::scrypt(password.as_bytes(), &salt, n, r, p)?;
            let (db, db_tag) = split_tag(crypto::seal(&master, &db_nonce, &plain)?);
            let (key, key_tag) = split_tag(crypto::seal(&slot_key, &slot_nonce, &master[..])?);
            let slot = Slot {
                kind: PASSWORD_SLOT,
                uuid: uuid()?,
                key: hex(&key),
                key_params: Params { nonce: hex(&slot_nonce), tag: hex(&key_tag) },
                n: Some(n),
                r: Some(r),
                p: Some(p),
                salt: Some(hex(&salt)),
                repaired: Some(true),
                is_backup: Some(false),
            };
            let header = Header { slots: Some(vec![slot]), params: Some(Params { nonce: hex(&db_nonce), tag: hex(&db_tag) }) };
            serde_json::json!({ "version": 1, "header": header, "db": super::b64(&db) })
        }
    };
    serde_json::to_vec_pretty(&file).map_err(|e| Problem::Damaged(e.to_string()))
}

fn db_entry(entry: &Entry) -> Result<DbEntry, Problem> {
    let account = &entry.account;
    let (period, counter) = match account.method {
        Method::Totp { period } => (Some(period), None),
        Method::Hotp { counter } => (None, Some(counter)),
        Method::Steam => (Some(30), None),
    };
    Ok(DbEntry {
        kind: account.method.kind().into(),
        uuid: uuid()?,
        name: account.name.clone(),
        issuer: account.issuer.clone(),
        note: String::new(),
        favorite: false,
        icon: None,
        info: Info {
            secret: account.secret.to_base32().trim_end_matches('=').to_owned(),
            algo: account.algorithm.as_str().into(),
            digits: Some(account.digits.into()),
            period,
            counter,
        },
        groups: Vec::new(),
    })
}

fn split_tag(mut sealed: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    let tag = sealed.split_off(sealed.len().saturating_sub(16));
    (sealed, tag)
}

fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

/// A random (version 4) UUID, as Aegis gives every entry and slot.
fn uuid() -> Result<String, Problem> {
    let mut bytes = crypto::random::<16>()?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex(&bytes);
    Ok(format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]))
}
