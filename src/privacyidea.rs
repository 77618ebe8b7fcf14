//! privacyIDEA PUSH tokens, poll-only (privacyIDEA 3.14, no Firebase): the
//! enrollment link, the token kept in the vault, and every signed text.
//! The HTTP side is [`client`] (feature `client`).
//!
//! # Protocol
//!
//! All signatures are RSASSA-PKCS1-v1_5 with SHA-256, written as RFC 4648
//! base32, upper case, with `=` padding (privacyIDEA refuses anything else:
//! HTTP 400 on a poll, 500 on an answer).
//!
//! **Enrollment.** The QR code is
//! `otpauth://pipush/LABEL?url=URL&ttl=MINUTES&issuer=ISSUER&enrollment_credential=HEX&v=1&serial=SERIAL&sslverify=0|1&poll_only=True`
//! (or `pia://pipush/...`), values percent-encoded with `/` left as is,
//! optionally with `pin=True` (answer only after the user's PIN; Countersign
//! asks for the vault password) and `app_force_unlock=...`. The app makes an
//! RSA-4096 key and POSTs, form-encoded, to URL: `enrollment_credential`,
//! `serial`, `fbtoken=no_firebase_token` and `pubkey`, the public key as
//! SubjectPublicKeyInfo DER in padded standard base64 (a wrong format is
//! accepted here and fails at every later call with HTTP 500). The answer's
//! `detail.public_key` is the server's RSA-4096 key: PKCS#1 DER, base64 with a
//! line break every 64 characters. The server never enforces `ttl`, so the
//! app refuses to finish an enrollment more than TTL minutes after it read
//! the link.
//!
//! **Polling.** `GET URL?serial=S&timestamp=T&signature=SIG`, T in ISO 8601
//! UTC (within ±60 s of the server's clock), SIG over `S|T`. `result.value`
//! lists the open challenges: `nonce, serial, question, title, sslverify,
//! url, signature`, and in 3.14 `capabilities` (a JSON *string*, such as
//! `{"decline_reason": true}`) with `capabilities_signature`, and in presence
//! mode `require_presence` (the options, comma-separated) and `version: "2"`.
//!
//! **Verifying.** The signature covers
//! `nonce|url|serial|question|title|sslverify`, plus `|OPTIONS` in presence
//! mode. `capabilities_signature` covers the RFC 8785 canonical JSON of
//! `{"capabilities": PARSED, "nonce": NONCE}`. A challenge that does not
//! verify, or is for another serial, is dropped (and logged by the caller);
//! unsigned capabilities are ignored.
//!
//! **Answering.** POST, form-encoded, to the challenge's `url`: `serial`,
//! `nonce`, `signature`. Approve signs `nonce|serial` (presence mode:
//! `presence_answer=X` and `nonce|serial|X`). Decline adds `decline=1` and
//! signs `nonce|serial|decline`; when the server signed the `decline_reason`
//! capability, Deny sends `decline_reason=cancelled` and "It wasn't me"
//! `decline_reason=unknown_trigger`, signing `nonce|serial|decline|REASON`.
//! `result.value` is `true` only when the server took the answer; a wrong
//! signature or presence option is a 200 with `false`.

#[cfg(feature = "client")]
pub mod client;

use std::collections::BTreeMap;

use data_encoding::BASE32;
use zeroize::Zeroizing;

use crate::push::Decision;

/// How often the app asks for challenges by default.
pub const DEFAULT_POLL_SECONDS: u64 = 3;
/// How long a challenge stays open when nothing else is known: privacyIDEA's
/// default validity. The prompt leaves earlier if the challenge stops being
/// listed.
pub const CHALLENGE_SECONDS: i64 = 120;
/// The key size privacyIDEA's own app uses.
pub const KEY_BITS: usize = 4096;

/// Why an enrollment link, a key or a challenge was refused. Never holds a
/// secret (the enrollment credential, the private key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the privacyIDEA enrollment link has no {0}")]
    Missing(&'static str),
    #[error("the privacyIDEA enrollment link's {0} is not valid")]
    Invalid(&'static str),
    #[error(
        "this privacyIDEA token expects Firebase push notifications, which Countersign does not use: ask for a poll-only token (policy push_firebase_configuration = \"poll only\")"
    )]
    NotPollOnly,
    #[error("the privacyIDEA enrollment link expired: it was valid for {0} minutes after it was read; enroll the token again")]
    Expired(u64),
    #[error("the privacyIDEA server's key is not an RSA public key")]
    ServerKey,
    #[error("cannot make or use the token's key: {0}")]
    Key(String),
    #[error("the signature does not verify against the server's key")]
    Signature,
    #[error("the challenge is for token {0}, not this one")]
    WrongSerial(String),
}

/// A scanned `otpauth://pipush/...` link: what step 2 of the enrollment needs.
#[derive(Clone, PartialEq, Eq)]
pub struct Enrollment {
    pub serial: String,
    pub label: String,
    pub issuer: String,
    /// Where to finish the enrollment, poll and answer.
    pub url: String,
    /// Minutes the link stays usable after it is read.
    pub ttl_minutes: u64,
    /// One-time credential for step 2 (secret).
    pub credential: Zeroizing<String>,
    pub sslverify: bool,
    /// Answers need the user's PIN (`pin=True`) or an unlock (`app_force_unlock`).
    pub pin: bool,
}

impl std::fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrollment")
            .field("serial", &self.serial)
            .field("label", &self.label)
            .field("issuer", &self.issuer)
            .field("url", &self.url)
            .field("ttl_minutes", &self.ttl_minutes)
            .field("credential", &"<redacted>")
            .field("sslverify", &self.sslverify)
            .field("pin", &self.pin)
            .finish()
    }
}

impl Enrollment {
    /// From the label and parameters [`crate::uri::parse`] found (already
    /// percent-decoded).
    pub fn from_link(label: &str, parameters: &BTreeMap<String, String>) -> Result<Self, Error> {
        let get = |name: &'static str| parameters.get(name).map(|value| value.trim()).filter(|value| !value.is_empty());
        let serial = get("serial").ok_or(Error::Missing("serial"))?;
        if !serial.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(Error::Invalid("serial"));
        }
        let url = get("url").ok_or(Error::Missing("url"))?;
        if !(url.starts_with("https://") || url.starts_with("http://")) || url.contains(char::is_whitespace) {
            return Err(Error::Invalid("url"));
        }
        let credential = get("enrollment_credential").ok_or(Error::Missing("enrollment_credential"))?;
        match get("v") {
            None | Some("1") => {}
            Some(_) => return Err(Error::Invalid("version")),
        }
        if !get("poll_only").is_some_and(is_true) {
            return Err(Error::NotPollOnly);
        }
        let ttl_minutes = match get("ttl") {
            None => 10,
            Some(text) => text.parse::<u64>().ok().filter(|minutes| (1..=10_080).contains(minutes)).ok_or(Error::Invalid("ttl"))?,
        };
        let sslverify = get("sslverify").is_none_or(is_true);
        let pin = get("pin").is_some_and(is_true)
            || get("app_force_unlock").is_some_and(|value| !value.eq_ignore_ascii_case("none") && !value.eq_ignore_ascii_case("false"));
        Ok(Enrollment {
            serial: serial.to_owned(),
            label: if label.trim().is_empty() { serial.to_owned() } else { label.trim().to_owned() },
            issuer: get("issuer").unwrap_or("privacyIDEA").replace(':', " "),
            url: url.to_owned(),
            ttl_minutes,
            credential: Zeroizing::new(credential.to_owned()),
            sslverify,
            pin,
        })
    }

    /// Whether step 2 may still run at `now`, the link having been read at
    /// `read_at` (Unix seconds).
    pub fn check_ttl(&self, read_at: i64, now: i64) -> Result<(), Error> {
        if now.saturating_sub(read_at) > self.ttl_minutes as i64 * 60 { Err(Error::Expired(self.ttl_minutes)) } else { Ok(()) }
    }

    /// The form of step 2.
    pub fn form(&self, key: &DeviceKey) -> Result<Vec<(&'static str, String)>, Error> {
        Ok(vec![
            ("enrollment_credential", self.credential.to_string()),
            ("serial", self.serial.clone()),
            ("fbtoken", "no_firebase_token".to_owned()),
            ("pubkey", key.public_key_base64()?),
        ])
    }

    /// The token, once the server answered step 2 with its key.
    pub fn finish(self, key: DeviceKey, server_public_key: &str) -> Result<Token, Error> {
        let server_key = parse_server_key(server_public_key)?;
        Ok(Token {
            serial: self.serial,
            label: self.label,
            issuer: self.issuer,
            url: self.url,
            sslverify: self.sslverify,
            pin: self.pin,
            key,
            server_key,
        })
    }
}

fn is_true(value: &str) -> bool {
    matches!(value.to_ascii_lowercase().as_str(), "1" | "true" | "yes")
}

/// The server's key from `detail.public_key`: base64 (line breaks allowed,
/// PEM lines too) of PKCS#1 RSAPublicKey DER. Returns the DER.
pub fn parse_server_key(text: &str) -> Result<Vec<u8>, Error> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    let body: String =
        text.lines().filter(|line| !line.starts_with("-----")).flat_map(|line| line.chars()).filter(|c| !c.is_whitespace()).collect();
    let der = crate::base64::decode(body).map_err(|_| Error::ServerKey)?;
    rsa::RsaPublicKey::from_pkcs1_der(&der).map_err(|_| Error::ServerKey)?;
    Ok(der)
}

/// The token's RSA private key, PKCS#8 DER, wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceKey(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKey(<redacted>)")
    }
}

impl DeviceKey {
    /// A new RSA-4096 key (seconds of work: run it off the UI thread).
    pub fn generate() -> Result<Self, Error> {
        Self::generate_bits(KEY_BITS)
    }

    /// A key of another size (tests use 2048 bits for speed).
    pub fn generate_bits(bits: usize) -> Result<Self, Error> {
        use rsa::pkcs8::EncodePrivateKey;
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).map_err(|e| Error::Key(e.to_string()))?;
        let der = key.to_pkcs8_der().map_err(|e| Error::Key(e.to_string()))?;
        Ok(DeviceKey(Zeroizing::new(der.as_bytes().to_vec())))
    }

    /// From stored PKCS#8 DER (checked by loading it).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, Error> {
        ring::signature::RsaKeyPair::from_pkcs8(der).map_err(|e| Error::Key(e.to_string()))?;
        Ok(DeviceKey(Zeroizing::new(der.to_vec())))
    }

    pub fn pkcs8(&self) -> &[u8] {
        &self.0
    }

    /// The public key as step 2 wants it: SubjectPublicKeyInfo DER, padded
    /// standard base64.
    pub fn public_key_base64(&self) -> Result<String, Error> {
        use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
        let key = rsa::RsaPrivateKey::from_pkcs8_der(&self.0).map_err(|e| Error::Key(e.to_string()))?;
        let der = key.to_public_key().to_public_key_der().map_err(|e| Error::Key(e.to_string()))?;
        Ok(crate::base64::encode(der.as_bytes()))
    }

    /// RSASSA-PKCS1-v1_5 SHA-256 over `text`, in padded upper-case base32.
    /// The private-key operation is ring's (constant time, blinded).
    pub fn sign(&self, text: &str) -> Result<String, Error> {
        let pair = ring::signature::RsaKeyPair::from_pkcs8(&self.0).map_err(|e| Error::Key(e.to_string()))?;
        let mut signature = vec![0; pair.public().modulus_len()];
        pair.sign(&ring::signature::RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), text.as_bytes(), &mut signature)
            .map_err(|_| Error::Key("signing failed".into()))?;
        Ok(BASE32.encode(&signature))
    }
}

/// Checks `signature` (padded upper-case base32) over `text` against the
/// server's PKCS#1 key.
pub fn verify(server_key: &[u8], text: &[u8], signature: &str) -> Result<(), Error> {
    let signature = BASE32.decode(signature.as_bytes()).map_err(|_| Error::Signature)?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, server_key)
        .verify(text, &signature)
        .map_err(|_| Error::Signature)
}

/// An enrolled PUSH token, as the vault keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub serial: String,
    pub label: String,
    pub issuer: String,
    pub url: String,
    pub sslverify: bool,
    /// Answers need the user's PIN (Countersign: the vault password).
    pub pin: bool,
    pub key: DeviceKey,
    /// The server's RSA public key, PKCS#1 DER, pinned at enrollment.
    pub server_key: Vec<u8>,
}

impl Token {
    /// "privacyIDEA (PIPU0001)", as lists show it.
    pub fn title(&self) -> String {
        if self.label == self.serial {
            format!("{} ({})", self.issuer, self.serial)
        } else {
            format!("{} ({}, {})", self.issuer, self.label, self.serial)
        }
    }

    /// Case-insensitive match against issuer, label or serial.
    pub fn matches(&self, query: &str) -> bool {
        let query = query.to_lowercase();
        [&self.issuer, &self.label, &self.serial].iter().any(|field| field.to_lowercase().contains(&query))
    }

    /// The query of a poll at `timestamp` (ISO 8601 UTC).
    pub fn poll_query(&self, timestamp: &str) -> Result<Vec<(&'static str, String)>, Error> {
        let signature = self.key.sign(&format!("{}|{timestamp}", self.serial))?;
        Ok(vec![("serial", self.serial.clone()), ("timestamp", timestamp.to_owned()), ("signature", signature)])
    }

    /// Checks one challenge of a poll's `result.value`.
    pub fn verify(&self, challenge: &RawChallenge) -> Result<Challenge, Error> {
        let mut text = format!(
            "{}|{}|{}|{}|{}|{}",
            challenge.nonce, challenge.url, challenge.serial, challenge.question, challenge.title, challenge.sslverify
        );
        if let Some(options) = &challenge.require_presence {
            text.push('|');
            text.push_str(options);
        }
        verify(&self.server_key, text.as_bytes(), &challenge.signature)?;
        if challenge.serial != self.serial {
            return Err(Error::WrongSerial(challenge.serial.clone()));
        }
        let capabilities = match (&challenge.capabilities, &challenge.capabilities_signature) {
            (Some(capabilities), Some(signature)) => {
                let parsed: serde_json::Value = serde_json::from_str(capabilities).map_err(|_| Error::Signature)?;
                let signed = serde_jcs::to_vec(&serde_json::json!({ "capabilities": parsed, "nonce": challenge.nonce }))
                    .map_err(|_| Error::Signature)?;
                verify(&self.server_key, &signed, signature)?;
                parsed
            }
            // Unsigned capabilities are not trusted.
            _ => serde_json::Value::Null,
        };
        Ok(Challenge {
            nonce: challenge.nonce.clone(),
            url: challenge.url.clone(),
            question: challenge.question.clone(),
            title: challenge.title.clone(),
            presence_options: challenge
                .require_presence
                .as_deref()
                .map(|options| options.split(',').map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default(),
            decline_reason: capabilities.get("decline_reason").and_then(serde_json::Value::as_bool).unwrap_or(false),
        })
    }

    /// The form answering `challenge`. `presence` is the option the user
    /// picked when the challenge asks for one.
    pub fn answer_form(
        &self,
        challenge: &Challenge,
        decision: Decision,
        presence: Option<&str>,
    ) -> Result<Vec<(&'static str, String)>, Error> {
        let mut form = vec![("serial", self.serial.clone()), ("nonce", challenge.nonce.clone())];
        let mut text = format!("{}|{}", challenge.nonce, self.serial);
        match decision {
            Decision::Approve => {
                if let Some(answer) = presence {
                    text.push('|');
                    text.push_str(answer);
                    form.push(("presence_answer", answer.to_owned()));
                }
            }
            Decision::Deny | Decision::Report => {
                text.push_str("|decline");
                form.push(("decline", "1".to_owned()));
                if challenge.decline_reason {
                    let reason = if decision == Decision::Report { "unknown_trigger" } else { "cancelled" };
                    text.push('|');
                    text.push_str(reason);
                    form.push(("decline_reason", reason.to_owned()));
                }
            }
        }
        form.push(("signature", self.key.sign(&text)?));
        Ok(form)
    }
}

/// One challenge as a poll lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct RawChallenge {
    pub nonce: String,
    pub serial: String,
    pub question: String,
    pub title: String,
    #[serde(deserialize_with = "text_or_number")]
    pub sslverify: String,
    pub url: String,
    pub signature: String,
    #[serde(default)]
    pub capabilities: Option<String>,
    #[serde(default)]
    pub capabilities_signature: Option<String>,
    #[serde(default)]
    pub require_presence: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
}

/// `sslverify` is `"0"` in 3.14; a number would sign the same text.
fn text_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(text) => Ok(text),
        serde_json::Value::Number(number) => Ok(number.to_string()),
        serde_json::Value::Bool(flag) => Ok(if flag { "1" } else { "0" }.to_owned()),
        _ => Err(serde::de::Error::custom("sslverify is neither text nor a number")),
    }
}

use serde::Deserialize as _;

/// A challenge whose signatures verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub nonce: String,
    /// Where the answer goes (signed by the server).
    pub url: String,
    pub question: String,
    pub title: String,
    /// Presence mode: the options; the user picks the one the sign-in page shows.
    pub presence_options: Vec<String>,
    /// The server signed that it understands `decline_reason`.
    pub decline_reason: bool,
}

#[cfg(test)]
mod tests;
