//! How a sign-in reaches the user: a push to their app, a code from their
//! app, a text message with a code, or an automated call answered with a
//! key. The relying party names one (`method` of `POST /api/signins`) or
//! `default`, the user's preferred one.
//!
//! A text's code and a call's callback token are kept only as an
//! HMAC-SHA256 under a key derived from the server key (every instance
//! derives the same one), compared in constant time.

use ring::hmac;
use serde::{Deserialize, Serialize};

use crate::push::Keypair;

/// A way to sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// A push to the user's app: Authenticate, Deny or It wasn't me.
    #[default]
    Push,
    /// A code from the user's app (TOTP), typed where they sign in.
    Code,
    /// A text message with a six-digit code, typed where they sign in.
    Sms,
    /// An automated call answered by pressing #.
    Voice,
}

impl Method {
    pub const ALL: [Method; 4] = [Method::Push, Method::Code, Method::Sms, Method::Voice];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Push => "push",
            Method::Code => "code",
            Method::Sms => "sms",
            Method::Voice => "voice",
        }
    }

    /// The method a stored or typed name means.
    pub fn parse(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|method| method.as_str() == name.trim().to_ascii_lowercase())
    }

    /// Sent to a phone: needs a phone provider.
    pub fn is_phone(self) -> bool {
        matches!(self, Method::Sms | Method::Voice)
    }
}

/// What a user has enrolled, in the order methods are offered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enrolled {
    /// Activated devices (push and codes).
    pub devices: bool,
    /// An authentication phone (texts and calls).
    pub authentication_phone: bool,
    /// An office phone (calls).
    pub office_phone: bool,
}

impl Enrolled {
    /// The methods this user can sign in with; phone methods only when the
    /// server has a way to send texts and calls.
    pub fn methods(&self, phone_provider: bool) -> Vec<Method> {
        let mut methods = Vec::new();
        if self.devices {
            methods.extend([Method::Push, Method::Code]);
        }
        if phone_provider && self.authentication_phone {
            methods.push(Method::Sms);
        }
        if phone_provider && (self.authentication_phone || self.office_phone) {
            methods.push(Method::Voice);
        }
        methods
    }

    /// `default`: the preferred method when the user still has it, else
    /// the first they have, else a push (that waits for a device to be
    /// activated, as pushes always could).
    pub fn default_method(&self, preferred: Option<Method>, phone_provider: bool) -> Method {
        let methods = self.methods(phone_provider);
        preferred.filter(|method| methods.contains(method)).or_else(|| methods.first().copied()).unwrap_or(Method::Push)
    }
}

/// Keys the HMAC of texts' codes and calls' tokens.
pub struct SecretHasher(hmac::Key);

impl SecretHasher {
    /// Derived from the server key (HKDF-Extract: HMAC-SHA256 keyed by a
    /// label of its own), so every instance sharing that key checks what
    /// another one sent, and no other use of the key gives the same bytes.
    pub fn new(server: &Keypair) -> SecretHasher {
        let seed = server.to_seed();
        let derived = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, b"countersign phone secrets v1"), &seed[..]);
        SecretHasher(hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()))
    }

    /// Bound to the sign-in: a code is worth nothing for another one.
    pub fn hash(&self, signin: &str, secret: &str) -> String {
        let tag = hmac::sign(&self.0, format!("{signin}\n{secret}").as_bytes());
        crate::base64::encode(tag.as_ref())
    }

    /// Whether `secret` is the one `hash` was made of, in constant time.
    pub fn matches(&self, signin: &str, secret: &str, hash: &str) -> bool {
        let Ok(tag) = crate::base64::decode(hash) else { return false };
        hmac::verify(&self.0, format!("{signin}\n{secret}").as_bytes(), &tag).is_ok()
    }
}

/// Six random digits, each equally likely.
pub fn text_code() -> Result<String, getrandom::Error> {
    let mut code = String::with_capacity(6);
    while code.len() < 6 {
        let mut byte = [0u8; 1];
        getrandom::fill(&mut byte)?;
        // 250 and over are drawn again so that no digit is favoured.
        if byte[0] < 250 {
            code.push(char::from(b'0' + byte[0] % 10));
        }
    }
    Ok(code)
}

/// What a text says.
pub fn text_message(organization: &str, code: &str) -> String {
    format!("{code} is your {organization} verification code. Do not share it with anyone.")
}

/// What a call says when answered.
pub fn call_script(organization: &str, app: &str, user: &str, location: &str) -> String {
    let from = if location.is_empty() { String::new() } else { format!(" from {location}") };
    format!(
        "This is {organization}. Someone is signing in to {app} as {user}{from}. \
         If this is you, press the pound key to finish signing in. \
         If it is not you, press 0 and then the pound key to report it. Hang up to deny."
    )
}

/// What the keys pressed on a call decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    Approve,
    Report,
    /// Any other key: the call goes on.
    Other,
}

/// `#` approves; `0#` (or `0`) reports fraud, as Azure MFA's calls do.
pub fn keys(pressed: &str) -> Keys {
    match pressed.trim() {
        "#" => Keys::Approve,
        "0#" | "0" => Keys::Report,
        _ => Keys::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_name_round_trips_and_unknown_names_are_none() {
        for method in Method::ALL {
            assert_eq!(Method::parse(method.as_str()), Some(method));
            assert_eq!(serde_json::to_string(&method).unwrap(), format!("\"{}\"", method.as_str()));
        }
        assert_eq!(Method::parse(" SMS "), Some(Method::Sms));
        assert_eq!(Method::parse("fax"), None);
    }

    #[test]
    fn the_default_is_the_preferred_method_while_the_user_has_it() {
        let phone_only = Enrolled { devices: false, authentication_phone: true, office_phone: false };
        assert_eq!(phone_only.methods(true), [Method::Sms, Method::Voice]);
        assert_eq!(phone_only.methods(false), []);
        assert_eq!(phone_only.default_method(None, true), Method::Sms);
        assert_eq!(phone_only.default_method(Some(Method::Push), true), Method::Sms);
        assert_eq!(phone_only.default_method(Some(Method::Voice), true), Method::Voice);
        assert_eq!(phone_only.default_method(Some(Method::Voice), false), Method::Push);
        let office = Enrolled { devices: true, authentication_phone: false, office_phone: true };
        assert_eq!(office.methods(true), [Method::Push, Method::Code, Method::Voice]);
        assert_eq!(office.default_method(None, true), Method::Push);
        assert_eq!(Enrolled::default().default_method(Some(Method::Sms), true), Method::Push);
    }

    #[test]
    fn hashes_match_only_their_secret_and_sign_in() {
        let hasher = SecretHasher::new(&Keypair::generate().unwrap());
        let hash = hasher.hash("si_1", "123456");
        assert!(hasher.matches("si_1", "123456", &hash));
        assert!(!hasher.matches("si_1", "123457", &hash));
        assert!(!hasher.matches("si_2", "123456", &hash));
        assert!(!hasher.matches("si_1", "123456", "not base64!"));
        assert!(!hash.contains("123456"));
        // Another server key: another hash.
        assert!(!SecretHasher::new(&Keypair::generate().unwrap()).matches("si_1", "123456", &hash));
    }

    #[test]
    fn text_codes_are_six_digits_and_vary() {
        let codes: std::collections::HashSet<String> = (0..50).map(|_| text_code().unwrap()).collect();
        assert!(codes.iter().all(|code| code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())));
        assert!(codes.len() > 45, "{} distinct of 50", codes.len());
    }

    #[test]
    fn pound_approves_and_zero_pound_reports() {
        assert_eq!(keys("#"), Keys::Approve);
        assert_eq!(keys("0#"), Keys::Report);
        assert_eq!(keys("0"), Keys::Report);
        assert_eq!(keys("5"), Keys::Other);
        assert_eq!(keys(""), Keys::Other);
    }
}
