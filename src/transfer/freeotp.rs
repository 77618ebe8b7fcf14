//! FreeOTP+ JSON exports (FreeOTP+ 2.x, "Export JSON"), the layout of its
//! `SavedTokens` class as Aegis's `FreeOtpPlusImporter` reads it:
//!
//! ```text
//! { "tokenOrder": ["issuer:label", ...],
//!   "tokens": [ { "type": "TOTP"|"HOTP", "algo": "SHA1"|"SHA256"|"SHA512", "digits": 6,
//!                 "period": 30, "counter": 0, "issuerExt": "Acme", "issuerInt": "Acme",
//!                 "label": "alice", "secret": [signed bytes -128..127] } ] }
//! ```
//!
//! The secret is raw bytes as Java writes a `byte[]`, not Base32. The
//! stored HOTP counter is one less than the URI's (`OtpTokenFactory` reads
//! `counter - 1` and writes `counter + 1`: FreeOTP+ advances it before each
//! code), so the next code's counter is the stored one plus 1. Its URI list
//! export is read by the otpauth URI list reader.

use serde::Deserialize;
use serde_json::Value;

use super::{Fields, Format, Item, Problem, Skip, json};
use crate::secret::Secret;

const FORMAT: Format = Format::FreeOtpPlus;

pub(super) fn detect(json: &Value) -> Option<(Format, bool)> {
    (json.get("tokens").is_some_and(Value::is_array) && json.get("tokenOrder").is_some()).then_some((FORMAT, false))
}

#[derive(Deserialize)]
struct Export {
    tokens: Vec<Token>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Token {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    algo: String,
    digits: Option<u64>,
    period: Option<u64>,
    /// Signed: a fresh HOTP token is stored as -1.
    counter: Option<i64>,
    #[serde(default)]
    issuer_ext: String,
    #[serde(default)]
    issuer_int: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    secret: Vec<i64>,
}

impl Drop for Token {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

pub(super) fn read(bytes: &[u8]) -> Result<Vec<Item>, Problem> {
    let export: Export = json(bytes, FORMAT)?;
    Ok(export.tokens.iter().map(item).collect())
}

fn item(token: &Token) -> Item {
    let issuer = if token.issuer_ext.trim().is_empty() { &token.issuer_int } else { &token.issuer_ext };
    // Java bytes are signed; anything outside -128..=255 is damage.
    let secret = token
        .secret
        .iter()
        .map(|&byte| if (-128..=255).contains(&byte) { Some(byte as u8) } else { None })
        .collect::<Option<Vec<u8>>>()
        .map(Secret::from_bytes)
        .ok_or(Skip::Field("secret"));
    Fields {
        issuer,
        name: &token.label,
        secret,
        kind: &token.kind,
        algorithm: &token.algo,
        digits: token.digits,
        period: token.period,
        counter: token.counter.map(|c| u64::try_from(c.saturating_add(1)).unwrap_or(0)),
    }
    .item()
}
