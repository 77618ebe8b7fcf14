//! Bitwarden's unencrypted JSON export (Bitwarden clients 2024+, "File
//! format: .json"): only login items with a `login.totp` field are accounts.
//!
//! ```text
//! { "encrypted": false, "folders": [...],
//!   "items": [ { "type": 1, "name": "GitHub", "login": { "username": "bob",
//!                "totp": "otpauth://..." | "steam://BASE32" | "BASE32", "uris": [...] } } ] }
//! ```
//!
//! A bare Base32 secret is a 6-digit, 30 s SHA-1 TOTP; like Aegis's
//! `BitwardenImporter`, its issuer is the item's name and its account name the
//! login's username. An otpauth URI keeps its own fields, with those two
//! filling whatever it leaves empty.

use serde::Deserialize;
use serde_json::Value;

use super::{Fields, Format, Item, Problem, Skip, base32, json};
use crate::uri::{self, Payload};

const FORMAT: Format = Format::Bitwarden;

pub(super) fn detect(json: &Value) -> Option<(Format, bool)> {
    let encrypted = json.get("encrypted").and_then(Value::as_bool).unwrap_or(false)
        || json.get("passwordProtected").and_then(Value::as_bool).unwrap_or(false);
    (json.get("items").is_some_and(Value::is_array) || encrypted).then_some((FORMAT, encrypted))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Export {
    #[serde(default)]
    encrypted: bool,
    #[serde(default)]
    password_protected: bool,
    #[serde(default)]
    items: Vec<ExportItem>,
}

#[derive(Deserialize)]
struct ExportItem {
    #[serde(default)]
    name: String,
    login: Option<Login>,
}

#[derive(Deserialize)]
struct Login {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    totp: Option<String>,
}

impl Drop for Login {
    fn drop(&mut self) {
        if let Some(totp) = &mut self.totp {
            zeroize::Zeroize::zeroize(totp);
        }
    }
}

pub(super) fn read(bytes: &[u8]) -> Result<Vec<Item>, Problem> {
    let export: Export = json(bytes, FORMAT)?;
    if export.encrypted || export.password_protected {
        return Err(Problem::Unsupported(
            "this is an encrypted Bitwarden export, which Countersign cannot read: export again from Bitwarden as unencrypted .json".into(),
        ));
    }
    Ok(export
        .items
        .iter()
        .filter_map(|item| {
            let login = item.login.as_ref()?;
            let totp = login.totp.as_deref().map(str::trim).filter(|totp| !totp.is_empty())?;
            Some(entry(&item.name, login.username.as_deref().unwrap_or(""), totp))
        })
        .collect())
}

fn entry(item_name: &str, username: &str, totp: &str) -> Item {
    let fields = |kind, secret| {
        Fields { issuer: item_name, name: username, secret, kind, algorithm: "SHA1", digits: None, period: None, counter: None }.item()
    };
    let lower = totp.to_ascii_lowercase();
    if let Some(secret) = lower.starts_with("steam://").then(|| &totp["steam://".len()..]) {
        return fields("steam", base32(secret));
    }
    if !lower.starts_with("otpauth://") {
        return fields("totp", base32(totp));
    }
    let title = if item_name.is_empty() { username.to_owned() } else { item_name.to_owned() };
    match uri::parse(totp) {
        Ok(Payload::Account { mut account, .. }) => {
            if account.issuer.is_empty() {
                account.issuer = crate::account::storable_issuer(item_name);
            }
            if account.name.is_empty() {
                account.name = username.to_owned();
            }
            Item { title: account.title(), account: Ok(account) }
        }
        Ok(other) => Item { title, account: Err(Skip::NotAnAccount(other.describe())) },
        Err(error) => Item { title, account: Err(Skip::Uri(error)) },
    }
}
