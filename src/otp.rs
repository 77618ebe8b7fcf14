//! Codes: TOTP (RFC 6238), HOTP (RFC 4226) and Steam Guard, at an instant the caller gives.
//!
//! The HMAC and truncation come from totp-rs. Its own checks refuse 80-bit
//! secrets, which real services hand out, so accounts are validated by
//! [`Account::validate`] and the generator is built with `build_noncompliant`.

use serde::Serialize;
use totp_rs::{Algorithm as TotpAlgorithm, Builder};

use crate::account::{Account, Algorithm, DEFAULT_PERIOD, Method, STEAM_DIGITS};

/// A code and the time window it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Code {
    /// The code as the user types it ("028492", "2X6QK").
    pub value: String,
    /// Unix second at which this code stops being current; `None` for HOTP.
    pub valid_until: Option<u64>,
}

impl Code {
    /// Seconds left at `now` (Unix seconds), for TOTP and Steam.
    pub fn seconds_left(&self, now: u64) -> Option<u64> {
        self.valid_until.map(|end| end.saturating_sub(now))
    }

    /// The code in groups for reading: "123 456", "1234 5678", "12 345".
    pub fn grouped(&self) -> String {
        let value = &self.value;
        let split = match value.len() {
            6 | 7 => 3,
            8 => 4,
            _ => return value.clone(),
        };
        format!("{} {}", &value[..split], &value[split..])
    }
}

/// The code that is current at `now` (Unix seconds). For HOTP, `now` is
/// ignored and the code for the stored counter is returned.
///
/// The account must have passed [`Account::validate`]; out-of-range values
/// are clamped rather than allowed to panic inside the HMAC library.
pub fn code(account: &Account, now: u64) -> Code {
    let (algorithm, digits, step, input) = match account.method {
        Method::Totp { period } => {
            let period = period.max(1);
            (algorithm(account.algorithm), digits(account.digits), period, now)
        }
        // HOTP is TOTP with a one-second step, evaluated at t = counter.
        Method::Hotp { counter } => (algorithm(account.algorithm), digits(account.digits), 1, counter),
        Method::Steam => (TotpAlgorithm::Steam, STEAM_DIGITS, DEFAULT_PERIOD, now),
    };
    let generator = Builder::new()
        .with_algorithm(algorithm)
        .with_digits(digits)
        .with_step_duration(step)
        .with_secret(account.secret.as_bytes())
        .build_noncompliant();
    // Saturating: an instant near u64::MAX (a tester's `--at`) must not overflow.
    let valid_until = match account.method {
        Method::Hotp { .. } => None,
        Method::Totp { .. } | Method::Steam => Some((now / step).saturating_add(1).saturating_mul(step)),
    };
    Code { value: generator.generate(input).to_string(), valid_until }
}

fn algorithm(algorithm: Algorithm) -> TotpAlgorithm {
    match algorithm {
        Algorithm::Sha1 => TotpAlgorithm::SHA1,
        Algorithm::Sha256 => TotpAlgorithm::SHA256,
        Algorithm::Sha512 => TotpAlgorithm::SHA512,
    }
}

fn digits(digits: u8) -> u8 {
    digits.clamp(6, 8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn account(secret: &[u8], method: Method, algorithm: Algorithm, digits: u8) -> Account {
        Account {
            issuer: "RFC".into(),
            name: "test".into(),
            label_issuer: None,
            secret: Secret::from_bytes(secret.to_vec()),
            method,
            algorithm,
            digits,
        }
    }

    /// RFC 4226 Appendix D: every counter 0 to 9.
    #[test]
    fn rfc4226_appendix_d() {
        let expected = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
        for (counter, want) in expected.iter().enumerate() {
            let hotp = account(b"12345678901234567890", Method::Hotp { counter: counter as u64 }, Algorithm::Sha1, 6);
            let code = code(&hotp, 0);
            assert_eq!(code.value, *want, "counter {counter}");
            assert_eq!(code.valid_until, None);
        }
    }

    /// RFC 6238 Appendix B: every time and all three hashes, 8 digits.
    #[test]
    fn rfc6238_appendix_b() {
        let sha1 = b"12345678901234567890".as_slice();
        let sha256 = b"12345678901234567890123456789012".as_slice();
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".as_slice();
        let table: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (time, want1, want256, want512) in table {
            for (secret, algorithm, want) in
                [(sha1, Algorithm::Sha1, want1), (sha256, Algorithm::Sha256, want256), (sha512, Algorithm::Sha512, want512)]
            {
                let totp = account(secret, Method::Totp { period: 30 }, algorithm, 8);
                assert_eq!(code(&totp, time).value, want, "{algorithm} at {time}");
            }
        }
    }

    #[test]
    fn window_and_seconds_left() {
        let totp = account(b"12345678901234567890", Method::Totp { period: 30 }, Algorithm::Sha1, 6);
        let at = code(&totp, 59);
        assert_eq!(at.valid_until, Some(60));
        assert_eq!(at.seconds_left(59), Some(1));
        assert_eq!(code(&totp, 31).value, at.value, "same window, same code");
        assert_ne!(code(&totp, 60).value, at.value);
        let minute = account(b"12345678901234567890", Method::Totp { period: 60 }, Algorithm::Sha1, 7);
        let code60 = code(&minute, 61);
        assert_eq!(code60.valid_until, Some(120));
        assert_eq!(code60.value.len(), 7);
    }

    /// Steam Guard vectors computed independently (Python's hmac, Steam's
    /// 26-letter alphabet, least significant character first), plus the alphabet.
    #[test]
    fn steam_codes_match_an_independent_implementation() {
        let steam = account(b"12345678901234567890", Method::Steam, Algorithm::Sha1, 5);
        for (time, want) in [(59, "PV9M4"), (1111111109, "PY4YB"), (1234567890, "VHHQY"), (2000000000, "9N776")] {
            assert_eq!(code(&steam, time).value, want, "at {time}");
        }
        for t in (0..3000).step_by(30) {
            let value = code(&steam, t).value;
            assert_eq!(value.len(), 5);
            assert!(value.chars().all(|c| "23456789BCDFGHJKMNPQRTVWXY".contains(c)), "{value}");
        }
    }

    #[test]
    fn the_last_representable_instant_does_not_overflow() {
        let totp = account(b"12345678901234567890", Method::Totp { period: 30 }, Algorithm::Sha1, 6);
        let code = code(&totp, u64::MAX);
        assert_eq!(code.value.len(), 6);
        assert_eq!(code.valid_until, Some(u64::MAX));
        assert_eq!(code.seconds_left(u64::MAX), Some(0));
    }

    #[test]
    fn grouping_for_reading() {
        let group = |value: &str| Code { value: value.into(), valid_until: None }.grouped();
        assert_eq!(group("123456"), "123 456");
        assert_eq!(group("1234567"), "123 4567");
        assert_eq!(group("12345678"), "1234 5678");
        assert_eq!(group("2X6QK"), "2X6QK");
    }
}
