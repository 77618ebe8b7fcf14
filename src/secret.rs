//! Shared-secret bytes and passwords: zeroized on drop, never printed.

use std::fmt;
use std::sync::LazyLock;

use data_encoding::{Encoding, Specification};
use zeroize::Zeroizing;

/// The raw bytes of an OTP shared secret (the decoded Base32 key).
///
/// `Debug` prints only the length; the bytes are wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

/// How a Base32 secret had to be cleaned before it decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cleaning {
    /// Spaces, dashes or lower-case letters were removed or folded.
    pub normalized: bool,
    /// `=` padding was present but of the wrong length, and was redone.
    pub padding_fixed: bool,
}

/// Why a Base32 secret could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the secret is empty")]
    Empty,
    #[error("the secret is not Base32: it may only hold the letters A-Z and the digits 2-7")]
    NotBase32,
    #[error("the secret has an impossible Base32 length ({0} characters)")]
    BadLength(usize),
}

/// RFC 4648 Base32 that tolerates non-zero trailing bits: real enrollment
/// QR codes carry them, and rejecting a working secret helps nobody.
static BASE32: LazyLock<Encoding> = LazyLock::new(|| {
    let mut spec = Specification::new();
    spec.symbols.push_str("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
    spec.padding = Some('=');
    spec.check_trailing_bits = false;
    // The specification is a constant that is known to be valid.
    spec.encoding().unwrap_or(data_encoding::BASE32)
});

impl Secret {
    /// Wraps raw secret bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The raw bytes, for HMAC.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bits.
    pub fn bits(&self) -> usize {
        self.0.len() * 8
    }

    /// Decodes a Base32 secret the way people and QR generators write them:
    /// any case, with spaces or dashes, with or without (correct) `=` padding.
    pub fn from_base32(text: &str) -> Result<(Self, Cleaning), Error> {
        let mut cleaning = Cleaning::default();
        let mut clean = Zeroizing::new(String::with_capacity(text.len() + 8));
        for c in text.chars() {
            match c {
                ' ' | '-' | '\t' => cleaning.normalized = true,
                'a'..='z' => {
                    cleaning.normalized = true;
                    clean.push(c.to_ascii_uppercase());
                }
                'A'..='Z' | '2'..='7' | '=' => clean.push(c),
                _ => return Err(Error::NotBase32),
            }
        }
        let padding = clean.len() - clean.trim_end_matches('=').len();
        let body_len = clean.len() - padding;
        if clean[..body_len].contains('=') {
            return Err(Error::NotBase32);
        }
        if body_len == 0 {
            return Err(Error::Empty);
        }
        // Base32 packs 5 bytes into 8 characters; a final group of 1, 3 or 6
        // characters cannot come from any byte string.
        if matches!(body_len % 8, 1 | 3 | 6) {
            return Err(Error::BadLength(body_len));
        }
        let wanted = (8 - body_len % 8) % 8;
        if padding != 0 && padding != wanted {
            cleaning.padding_fixed = true;
        }
        clean.truncate(body_len);
        clean.extend(std::iter::repeat_n('=', wanted));
        let bytes = BASE32.decode(clean.as_bytes()).map_err(|_| Error::NotBase32)?;
        Ok((Self::from_bytes(bytes), cleaning))
    }

    /// Canonical Base32: upper case, no padding (as Google's Key Uri Format asks).
    pub fn to_base32(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(BASE32.encode(&self.0));
        let body = text.trim_end_matches('=').len();
        text.truncate(body);
        text
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bits redacted>)", self.bits())
    }
}

/// A vault password, wiped when dropped and never printed.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a password typed or read by a front end.
    pub fn new(text: String) -> Self {
        Self(Zeroizing::new(text))
    }

    /// The UTF-8 bytes fed to the key derivation.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_ways_people_write_secrets() {
        let (reference, _) = Secret::from_base32("JBSWY3DPEHPK3PXP").unwrap();
        for text in ["jbswy3dpehpk3pxp", "JBSW Y3DP EHPK 3PXP", "JBSW-Y3DP-EHPK-3PXP", "JBSWY3DPEHPK3PXP===="] {
            let (secret, _) = Secret::from_base32(text).unwrap();
            assert_eq!(secret, reference, "{text}");
        }
    }

    #[test]
    fn repads_to_a_multiple_of_eight() {
        // 26 characters need 6 padding characters.
        let text = "GEZDGNBVGY3TQOJQGEZDGNBVGY";
        let (plain, cleaning) = Secret::from_base32(text).unwrap();
        assert_eq!(cleaning, Cleaning::default());
        let (fixed, cleaning) = Secret::from_base32(&format!("{text}==")).unwrap();
        assert!(cleaning.padding_fixed);
        assert_eq!(plain, fixed);
        let (exact, cleaning) = Secret::from_base32(&format!("{text}======")).unwrap();
        assert!(!cleaning.padding_fixed);
        assert_eq!(plain, exact);
        assert_eq!(plain.to_base32().as_str(), text);
    }

    #[test]
    fn tolerates_non_zero_trailing_bits() {
        // 26 characters carry 130 bits; the last two are 01 here, not 00.
        let (secret, _) = Secret::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGZ").unwrap();
        assert_eq!(secret.as_bytes().len(), 16);
    }

    #[test]
    fn rejects_what_is_not_base32() {
        assert_eq!(Secret::from_base32(""), Err(Error::Empty));
        assert_eq!(Secret::from_base32("===="), Err(Error::Empty));
        assert_eq!(Secret::from_base32("ABC1"), Err(Error::NotBase32));
        assert_eq!(Secret::from_base32("AB=CD"), Err(Error::NotBase32));
        assert_eq!(Secret::from_base32("ABC"), Err(Error::BadLength(3)));
    }

    #[test]
    fn debug_never_shows_the_bytes() {
        let (secret, _) = Secret::from_base32("JBSWY3DPEHPK3PXP").unwrap();
        let text = format!("{secret:?}");
        assert_eq!(text, "Secret(<80 bits redacted>)");
        assert!(!format!("{:?}", Password::new("hunter2".into())).contains("hunter2"));
    }
}
