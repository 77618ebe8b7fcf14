//! Enrollment payloads: `otpauth://` URIs (Google's Key Uri Format, as real QR codes
//! actually write it) and the other payloads a QR code may carry.
//!
//! Parsing is by hand on purpose. A label may hold a raw `#` or non-ASCII text,
//! which a strict URL parser would take for a fragment or reject; the only
//! structure relied on is `scheme://type/label?query`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::account::{self, Account, Algorithm, DEFAULT_PERIOD, DIGITS, Method, PERIODS, STEAM_DIGITS};
use crate::secret::{self, Secret};

/// What a scanned or pasted payload turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// A plain OTP account, with what had to be repaired or may surprise.
    Account { account: Account, warnings: Vec<Warning> },
    /// `otpauth-migration://offline?data=...`: a Google Authenticator export.
    GoogleExport { data: String },
    /// A work or school activation (Microsoft's `phonefactor://` or
    /// `.../authenticatorApp/activateAccount`): a Code and a URL.
    WorkActivation { code: String, url: String },
    /// `otpauth://pipush/...` or `pia://pipush/...`: privacyIDEA push enrollment.
    PrivacyIdeaPush { label: String, parameters: BTreeMap<String, String> },
}

impl Payload {
    /// A one-line description of what the payload is, for "not supported yet" messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Payload::Account { .. } => "an OTP account",
            Payload::GoogleExport { .. } => "a Google Authenticator export (otpauth-migration)",
            Payload::WorkActivation { .. } => "a work or school account activation (Code + URL)",
            Payload::PrivacyIdeaPush { .. } => "a privacyIDEA push token enrollment",
        }
    }
}

/// Something the parser repaired or noticed; the account is still usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// The `issuer=` parameter and the label's prefix differ; the parameter wins.
    IssuerMismatch { parameter: String, label: String },
    /// The secret had spaces, dashes or lower case letters.
    SecretNormalized,
    /// The secret's `=` padding was wrong and has been redone.
    PaddingFixed,
    /// The secret is shorter than 80 bits, weaker than any mainstream service uses.
    ShortSecret { bits: usize },
    /// Google Authenticator ignores this parameter's value and would show other codes.
    IgnoredByGoogle { parameter: &'static str, value: String },
    /// A `totp` URI for the issuer Steam with no `digits` (or 5): read as Steam Guard.
    AssumedSteam,
    /// The label names no account.
    NoAccountName,
    /// The issuer had a ':', which the vault keeps as a space (as every importer does).
    IssuerColon { original: String },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::IssuerMismatch { parameter, label } => {
                write!(f, "issuer mismatch: issuer= says {parameter:?} but the label says {label:?}; using {parameter:?}")
            }
            Warning::SecretNormalized => f.write_str("secret normalized: spaces, dashes or lower case removed"),
            Warning::PaddingFixed => f.write_str("secret padding fixed"),
            Warning::ShortSecret { bits } => write!(f, "secret is only {bits} bits long"),
            Warning::IgnoredByGoogle { parameter, value } => {
                write!(f, "Google Authenticator ignores {parameter}={value} on some versions and would show different codes")
            }
            Warning::AssumedSteam => f.write_str("issuer is Steam and no 6 to 8 digit length was given: read as a Steam Guard account"),
            Warning::NoAccountName => f.write_str("the label has no account name"),
            Warning::IssuerColon { original } => {
                write!(f, "the issuer {original:?} has a ':', which separates issuer and name in a link; it is kept with a space instead")
            }
        }
    }
}

/// Why a payload was refused. Variants name the parameter at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("not an enrollment payload: expected otpauth://, otpauth-migration://, phonefactor:// or a Microsoft activation link")]
    UnknownScheme,
    #[error("unknown OTP type {0:?}: expected totp, hotp or steam")]
    UnknownType(String),
    #[error("missing parameter `{0}`")]
    Missing(&'static str),
    #[error("parameter `secret`: {0}")]
    Secret(secret::Error),
    #[error("parameter `digits` must be 6, 7 or 8 (got {0:?})")]
    Digits(String),
    #[error("parameter `period` must be a whole number of seconds from 1 to 86400 (got {0:?})")]
    Period(String),
    #[error("parameter `algorithm` must be SHA1, SHA256 or SHA512 (got {0:?})")]
    Algorithm(String),
    #[error("parameter `counter` must be a whole number from 0 to 18446744073709551615 (got {0:?})")]
    Counter(String),
    #[error("the {0} is not valid UTF-8 after percent-decoding")]
    NotUtf8(&'static str),
    #[error("parameter `issuer` may not contain ':'")]
    IssuerColon,
}

/// Characters left as they are in labels and values: RFC 3986 unreserved, plus `@`.
const KEEP: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'@');

/// Reads any enrollment payload. Never panics, whatever the input.
pub fn parse(text: &str) -> Result<Payload, Error> {
    let text = text.trim();
    let (scheme, rest) = text.split_once("://").ok_or(Error::UnknownScheme)?;
    let scheme = scheme.to_ascii_lowercase();
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let parameters = query_pairs(query);
    match scheme.as_str() {
        "otpauth" | "pia" => {
            let (kind, label) = path.split_once('/').unwrap_or((path, ""));
            let kind = kind.to_ascii_lowercase();
            if kind == "pipush" {
                return Ok(Payload::PrivacyIdeaPush {
                    label: decode(label, "label")?.into_owned(),
                    parameters: parameters.into_iter().collect(),
                });
            }
            if scheme == "pia" {
                return Err(Error::UnknownType(kind));
            }
            account_uri(&kind, label, parameters)
        }
        "otpauth-migration" => {
            let data = first(&parameters, "data").ok_or(Error::Missing("data"))?;
            Ok(Payload::GoogleExport { data: data.to_owned() })
        }
        "phonefactor" => activation(&parameters),
        "https" => {
            // Microsoft's link is on login.microsoftonline.com; an
            // organisation's own server (countersign-server among them)
            // serves the same path on its own host.
            let (_host, path) = path.split_once('/').unwrap_or((path, ""));
            let path = path.trim_end_matches('/').to_ascii_lowercase();
            if path == "authenticatorapp/activateaccount" || path.ends_with("/authenticatorapp/activateaccount") {
                activation(&parameters)
            } else {
                Err(Error::UnknownScheme)
            }
        }
        _ => Err(Error::UnknownScheme),
    }
}

/// Writes the canonical otpauth URI of an account. `parse` gives back an equal account.
pub fn format(account: &Account) -> String {
    let label_issuer = account.label_issuer.as_deref().unwrap_or(&account.issuer);
    let mut label = String::new();
    // An empty issuer with a ':' in the name gets a leading ':' so the name
    // is not mistaken for "issuer:name" when read back.
    if !label_issuer.is_empty() || account.name.contains(':') {
        label.push_str(&utf8_percent_encode(label_issuer, KEEP).to_string());
        label.push(':');
    }
    label.push_str(&utf8_percent_encode(&account.name, KEEP).to_string());
    let mut uri = format!("otpauth://{}/{}?secret={}", account.method.kind(), label, account.secret.to_base32().as_str());
    if !account.issuer.is_empty() {
        uri.push_str("&issuer=");
        uri.push_str(&utf8_percent_encode(&account.issuer, KEEP).to_string());
    }
    match account.method {
        Method::Totp { period } => {
            uri.push_str(&format!("&algorithm={}&digits={}&period={period}", account.algorithm, account.digits));
        }
        Method::Hotp { counter } => {
            uri.push_str(&format!("&algorithm={}&digits={}&counter={counter}", account.algorithm, account.digits));
        }
        Method::Steam => {}
    }
    uri
}

fn account_uri(kind: &str, label: &str, parameters: Vec<(String, String)>) -> Result<Payload, Error> {
    let mut warnings = Vec::new();
    let label = decode(label, "label")?;
    let parameter_issuer = first(&parameters, "issuer").map(str::trim).filter(|i| !i.is_empty());
    // An issuer with a ':' of its own ("ACME: Staging") may be written whole
    // in the label too: then the label's separator is the ':' after it.
    let whole = parameter_issuer.filter(|p| p.contains(':')).and_then(|p| Some((p, label.strip_prefix(p)?.strip_prefix(':')?)));
    let (label_issuer, name) = match whole.or_else(|| label.split_once(':')) {
        Some((issuer, name)) => (issuer.trim(), name.trim_start()),
        None => ("", label.as_ref()),
    };
    let name = name.trim().to_owned();
    let (mut issuer, mut kept_label_issuer) = match parameter_issuer {
        Some(parameter) if !label_issuer.is_empty() && parameter != label_issuer => {
            warnings.push(Warning::IssuerMismatch { parameter: parameter.into(), label: label_issuer.into() });
            (parameter.to_owned(), Some(label_issuer.to_owned()))
        }
        Some(parameter) => (parameter.to_owned(), None),
        None => (label_issuer.to_owned(), None),
    };
    // The vault's issuer has no ':'; it is replaced as every other importer
    // replaces it, so the same account gets the same name from any source.
    let stored = account::storable_issuer(&issuer);
    if stored != issuer {
        warnings.push(Warning::IssuerColon { original: std::mem::replace(&mut issuer, stored) });
    }
    // A label issuer that matches once cleaned (`issuer=:ACME`, label
    // `ACME:`) is no mismatch: keeping it would not survive format → parse.
    if kept_label_issuer.as_deref() == Some(issuer.as_str()) {
        kept_label_issuer = None;
        warnings.retain(|warning| !matches!(warning, Warning::IssuerMismatch { .. }));
    }
    if name.is_empty() {
        warnings.push(Warning::NoAccountName);
    }

    let secret_text = first(&parameters, "secret").ok_or(Error::Missing("secret"))?;
    let (secret, cleaning) = Secret::from_base32(secret_text).map_err(Error::Secret)?;
    if cleaning.normalized {
        warnings.push(Warning::SecretNormalized);
    }
    if cleaning.padding_fixed {
        warnings.push(Warning::PaddingFixed);
    }
    if secret.bits() < 80 {
        warnings.push(Warning::ShortSecret { bits: secret.bits() });
    }

    let algorithm = match first(&parameters, "algorithm") {
        Some(text) => text.parse().map_err(|()| Error::Algorithm(text.into()))?,
        None => Algorithm::Sha1,
    };
    let digits_text = first(&parameters, "digits");
    let digits = match digits_text {
        Some(text) => {
            text.trim().parse::<u8>().ok().filter(|d| DIGITS.contains(d) || *d == STEAM_DIGITS).ok_or_else(|| Error::Digits(text.into()))?
        }
        None => 6,
    };
    let steam_by_issuer = kind == "totp" && (digits_text.is_none() || digits == STEAM_DIGITS) && issuer.eq_ignore_ascii_case("steam");
    let steam_by_encoder = first(&parameters, "encoder").is_some_and(|e| e.eq_ignore_ascii_case("steam"));
    let method = match kind {
        "steam" => Method::Steam,
        "totp" if steam_by_encoder => Method::Steam,
        "totp" if steam_by_issuer => {
            warnings.push(Warning::AssumedSteam);
            Method::Steam
        }
        "totp" => {
            let period = match first(&parameters, "period") {
                Some(text) => text.trim().parse::<u64>().ok().filter(|p| PERIODS.contains(p)).ok_or_else(|| Error::Period(text.into()))?,
                None => DEFAULT_PERIOD,
            };
            Method::Totp { period }
        }
        "hotp" => {
            let text = first(&parameters, "counter").ok_or(Error::Missing("counter"))?;
            let counter = text.trim().parse().map_err(|_| Error::Counter(text.into()))?;
            Method::Hotp { counter }
        }
        other => return Err(Error::UnknownType(other.into())),
    };
    let (algorithm, digits) = match method {
        Method::Steam => (Algorithm::Sha1, STEAM_DIGITS),
        Method::Totp { .. } | Method::Hotp { .. } if digits == STEAM_DIGITS => {
            return Err(Error::Digits(STEAM_DIGITS.to_string()));
        }
        Method::Totp { .. } | Method::Hotp { .. } => (algorithm, digits),
    };
    if method != Method::Steam {
        if algorithm != Algorithm::Sha1 {
            warnings.push(Warning::IgnoredByGoogle { parameter: "algorithm", value: algorithm.to_string() });
        }
        if digits != 6 {
            warnings.push(Warning::IgnoredByGoogle { parameter: "digits", value: digits.to_string() });
        }
        if let Method::Totp { period } = method
            && period != DEFAULT_PERIOD
        {
            warnings.push(Warning::IgnoredByGoogle { parameter: "period", value: period.to_string() });
        }
    }
    let account = Account { issuer, name, label_issuer: kept_label_issuer, secret, method, algorithm, digits };
    // Everything checked above; this guards the invariant if a branch drifts.
    account.validate().map_err(|error| match error {
        account::Error::Digits(d) => Error::Digits(d.to_string()),
        account::Error::Period(p) => Error::Period(p.to_string()),
        account::Error::IssuerColon => Error::IssuerColon,
        account::Error::SteamParameters => Error::Digits(digits.to_string()),
    })?;
    Ok(Payload::Account { account, warnings })
}

fn activation(parameters: &[(String, String)]) -> Result<Payload, Error> {
    let code = first(parameters, "code").ok_or(Error::Missing("code"))?;
    let url = first(parameters, "url").ok_or(Error::Missing("url"))?;
    Ok(Payload::WorkActivation { code: code.into(), url: url.into() })
}

/// Query pairs in order; names are lower-cased, values percent-decoded
/// (`+` read as a space, as form encoding and most generators intend).
fn query_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes()).map(|(name, value)| (name.to_ascii_lowercase(), value.into_owned())).collect()
}

/// The first value of a parameter: the one an account was made from
/// when a sloppy generator repeats it.
fn first<'a>(parameters: &'a [(String, String)], name: &str) -> Option<&'a str> {
    parameters.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn decode<'a>(text: &'a str, what: &'static str) -> Result<Cow<'a, str>, Error> {
    percent_decode_str(text).decode_utf8().map_err(|_| Error::NotUtf8(what))
}

#[cfg(test)]
mod tests;
