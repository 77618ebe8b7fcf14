//! What an OTP account is: issuer, name, secret and the parameters of its codes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// The HMAC hash behind the codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    #[serde(rename = "SHA1")]
    Sha1,
    #[serde(rename = "SHA256")]
    Sha256,
    #[serde(rename = "SHA512")]
    Sha512,
}

impl Algorithm {
    /// The spelling used in otpauth URIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = ();

    /// Case-insensitive, with or without the dash (`sha-256`).
    fn from_str(text: &str) -> Result<Self, ()> {
        match text.to_ascii_uppercase().replace('-', "").as_str() {
            "SHA1" => Ok(Algorithm::Sha1),
            "SHA256" => Ok(Algorithm::Sha256),
            "SHA512" => Ok(Algorithm::Sha512),
            _ => Err(()),
        }
    }
}

/// How codes are derived from the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Method {
    /// RFC 6238: a new code every `period` seconds.
    Totp { period: u64 },
    /// RFC 4226: `counter` is the counter of the code shown now; it moves
    /// only when the user asks for the next code.
    Hotp { counter: u64 },
    /// Steam Guard: TOTP with a 30 s period and 5 characters from Steam's alphabet.
    Steam,
}

impl Method {
    /// The type word of an otpauth URI.
    pub fn kind(self) -> &'static str {
        match self {
            Method::Totp { .. } => "totp",
            Method::Hotp { .. } => "hotp",
            Method::Steam => "steam",
        }
    }
}

/// Allowed digit counts for TOTP and HOTP.
pub const DIGITS: std::ops::RangeInclusive<u8> = 6..=8;
/// Allowed TOTP periods in seconds (one second to one day).
pub const PERIODS: std::ops::RangeInclusive<u64> = 1..=86_400;
/// The default TOTP period.
pub const DEFAULT_PERIOD: u64 = 30;
/// Steam codes are always this long.
pub const STEAM_DIGITS: u8 = 5;

/// An issuer as another app or a link spells it, made one the vault can
/// hold: each `:` (which separates issuer and name in an otpauth label)
/// becomes a space, and the ends are trimmed. Every importer uses this, so an
/// account gets the same issuer from a link, an Aegis, 2FAS, andOTP,
/// Bitwarden, FreeOTP+ or Google export: "ACME: Staging" is "ACME  Staging".
pub fn storable_issuer(issuer: &str) -> String {
    issuer.replace(':', " ").trim().to_owned()
}

/// One OTP account, as enrolled. Equality compares every field, secret included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Who issued it ("GitHub"); empty when unknown. Never contains `:`.
    pub issuer: String,
    /// The account name ("alice@example.com").
    pub name: String,
    /// The issuer written in the URI label when it differed from the
    /// `issuer=` parameter; kept so nothing read from a QR code is lost.
    pub label_issuer: Option<String>,
    /// The shared secret.
    pub secret: Secret,
    /// TOTP, HOTP or Steam, with the period or counter.
    pub method: Method,
    /// The HMAC hash (always SHA-1 for Steam).
    pub algorithm: Algorithm,
    /// Code length (always 5 for Steam).
    pub digits: u8,
}

/// Why account fields were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("digits must be 6, 7 or 8 (got {0})")]
    Digits(u64),
    #[error("period must be between 1 and 86400 seconds (got {0})")]
    Period(u64),
    #[error("the issuer may not contain ':'")]
    IssuerColon,
    #[error("a Steam account always uses SHA1 and 5 characters")]
    SteamParameters,
}

impl Account {
    /// A TOTP account with the common defaults (SHA-1, 6 digits, 30 s).
    pub fn totp(issuer: &str, name: &str, secret: Secret) -> Self {
        Account {
            issuer: issuer.trim().to_owned(),
            name: name.trim().to_owned(),
            label_issuer: None,
            secret,
            method: Method::Totp { period: DEFAULT_PERIOD },
            algorithm: Algorithm::Sha1,
            digits: 6,
        }
    }

    /// Checks the invariants that codes and URIs rely on.
    pub fn validate(&self) -> Result<(), Error> {
        if self.issuer.contains(':') {
            return Err(Error::IssuerColon);
        }
        match self.method {
            Method::Steam => {
                if self.digits != STEAM_DIGITS || self.algorithm != Algorithm::Sha1 {
                    return Err(Error::SteamParameters);
                }
            }
            Method::Totp { period } if !PERIODS.contains(&period) => {
                return Err(Error::Period(period));
            }
            Method::Totp { .. } | Method::Hotp { .. } => {
                if !DIGITS.contains(&self.digits) {
                    return Err(Error::Digits(self.digits.into()));
                }
            }
        }
        Ok(())
    }

    /// "Issuer (name)", or whichever of the two exists.
    pub fn title(&self) -> String {
        match (self.issuer.is_empty(), self.name.is_empty()) {
            (false, false) => format!("{} ({})", self.issuer, self.name),
            (false, true) => self.issuer.clone(),
            _ => self.name.clone(),
        }
    }

    /// Whether both give the same codes: same secret, type, hash, length and
    /// TOTP period. Names and HOTP counters may differ.
    pub fn gives_same_codes(&self, other: &Account) -> bool {
        let method = match (self.method, other.method) {
            (Method::Totp { period: p }, Method::Totp { period: q }) => p == q,
            (a, b) => a.kind() == b.kind(),
        };
        method && self.secret == other.secret && self.algorithm == other.algorithm && self.digits == other.digits
    }

    /// Case-insensitive match of `query` against issuer or name.
    pub fn matches(&self, query: &str) -> bool {
        let query = query.to_lowercase();
        self.issuer.to_lowercase().contains(&query) || self.name.to_lowercase().contains(&query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::from_bytes(b"12345678901234567890".to_vec())
    }

    #[test]
    fn validate_catches_each_bad_field() {
        let mut account = Account::totp("Acme", "alice", secret());
        assert_eq!(account.validate(), Ok(()));
        account.digits = 9;
        assert_eq!(account.validate(), Err(Error::Digits(9)));
        account.digits = 6;
        account.method = Method::Totp { period: 0 };
        assert_eq!(account.validate(), Err(Error::Period(0)));
        account.method = Method::Steam;
        assert_eq!(account.validate(), Err(Error::SteamParameters));
        account.digits = STEAM_DIGITS;
        assert_eq!(account.validate(), Ok(()));
        account.issuer = "a:b".into();
        assert_eq!(account.validate(), Err(Error::IssuerColon));
    }

    #[test]
    fn algorithm_spellings() {
        assert_eq!("sha-256".parse(), Ok(Algorithm::Sha256));
        assert_eq!("SHA512".parse(), Ok(Algorithm::Sha512));
        assert_eq!("md5".parse::<Algorithm>(), Err(()));
    }

    #[test]
    fn matching_is_case_insensitive_on_issuer_and_name() {
        let account = Account::totp("GitHub", "Alice@Example.com", secret());
        assert!(account.matches("github"));
        assert!(account.matches("alice@"));
        assert!(!account.matches("gitlab"));
        assert_eq!(account.title(), "GitHub (Alice@Example.com)");
    }
}
