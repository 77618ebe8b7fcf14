//! App passwords, for older apps that cannot do two-step verification (the
//! enrollment page's "Step 3: Keep using your existing applications").
//!
//! Each is 20 random lowercase letters (94 bits), shown once in groups of
//! four and kept only as an Argon2id PHC string (the argon2 crate's
//! defaults: 19 MiB, 2 passes). A relying party checks one with
//! `POST /api/app-passwords/verify`, in place of the password for an app
//! that can do nothing else: never as a second factor. A user has at most
//! [`PER_USER`]; each records its last use; "It wasn't me" revokes them all.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use zeroize::Zeroizing;

use super::store;

/// Letters in an app password.
pub const LETTERS: usize = 20;
/// App passwords a user may hold at once.
pub const PER_USER: usize = 10;
/// The longest name (the app it is for) kept, in characters.
pub const NAME_LIMIT: usize = 64;

/// A new app password: what the user is shown, once, and what is stored.
pub struct Generated {
    /// Grouped by four letters: `abcd efgh ijkl mnop qrst`.
    pub shown: Zeroizing<String>,
    pub hash: String,
}

impl std::fmt::Debug for Generated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Generated { .. }")
    }
}

/// Makes a new app password from the operating system's random numbers.
pub fn generate() -> Result<Generated, store::Error> {
    let mut letters = Zeroizing::new(String::with_capacity(LETTERS));
    while letters.len() < LETTERS {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut *bytes).map_err(|_| store::Error::Random)?;
        // 234 = 9 × 26: taking bytes below it keeps the letters uniform.
        for byte in bytes.iter().filter(|byte| **byte < 234) {
            if letters.len() < LETTERS {
                letters.push(char::from(b'a' + byte % 26));
            }
        }
    }
    let hash = Argon2::default()
        .hash_password(letters.as_bytes())
        .map_err(|error| store::Error::Damaged(format!("hashing an app password: {error}")))?
        .to_string();
    let mut shown = Zeroizing::new(String::with_capacity(LETTERS + LETTERS / 4));
    for (i, letter) in letters.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            shown.push(' ');
        }
        shown.push(letter);
    }
    Ok(Generated { shown, hash })
}

/// What was typed, as it is hashed: without spaces or dashes, lowercase.
fn normalize(given: &str) -> Zeroizing<String> {
    Zeroizing::new(given.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_lowercase).collect())
}

/// Whether `given` is shaped like an app password (letters, spaces and
/// dashes aside), without hashing it.
pub fn looks_like(given: &str) -> bool {
    let given = normalize(given);
    given.len() == LETTERS && given.bytes().all(|b| b.is_ascii_lowercase())
}

/// Whether `given` is the app password stored as `hash`. Anything not
/// shaped like one is refused without hashing it.
pub fn matches(given: &str, hash: &str) -> bool {
    looks_like(given) && Argon2::default().verify_password(normalize(given).as_bytes(), hash).is_ok()
}

/// A name for the app: trimmed, printable, at most [`NAME_LIMIT`] characters.
pub fn name(given: &str) -> Result<String, String> {
    let name: String = given.trim().chars().take(NAME_LIMIT + 1).collect();
    if name.is_empty() {
        return Err("name the app this password is for".into());
    }
    if name.chars().count() > NAME_LIMIT || name.chars().any(char::is_control) {
        return Err(format!("an app password's name is up to {NAME_LIMIT} printable characters"));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_password_is_twenty_letters_in_groups_and_matches_only_itself() {
        let first = generate().unwrap();
        let second = generate().unwrap();
        assert_eq!(first.shown.len(), LETTERS + 4);
        assert!(first.shown.split(' ').all(|group| group.len() == 4 && group.bytes().all(|b| b.is_ascii_lowercase())));
        assert_ne!(*first.shown, *second.shown);
        assert!(first.hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{}", first.hash);
        assert!(!first.hash.contains(&first.shown.replace(' ', "")));
        // As typed: without spaces, in capitals, with dashes.
        assert!(matches(&first.shown, &first.hash));
        assert!(matches(&first.shown.replace(' ', ""), &first.hash));
        assert!(matches(&first.shown.to_uppercase().replace(' ', "-"), &first.hash));
        assert!(!matches(&second.shown, &first.hash));
        assert!(!matches("", &first.hash));
        assert!(!matches(&first.shown[..first.shown.len() - 1], &first.hash));
        assert!(!matches(&first.shown, "not a hash"));
        assert_eq!(format!("{first:?}"), "Generated { .. }");
    }

    #[test]
    fn letters_are_spread_evenly() {
        let mut counts = [0u32; 26];
        for _ in 0..40 {
            for letter in generate().unwrap().shown.bytes().filter(u8::is_ascii_lowercase) {
                counts[usize::from(letter - b'a')] += 1;
            }
        }
        // 800 letters, about 31 of each: none missing, none over three times that.
        assert!(counts.iter().all(|n| (1..93).contains(n)), "{counts:?}");
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("  Outlook 2010 ").unwrap(), "Outlook 2010");
        assert!(name("   ").is_err());
        assert!(name(&"x".repeat(NAME_LIMIT)).is_ok());
        assert!(name(&"x".repeat(NAME_LIMIT + 1)).is_err());
        assert!(name("mail\u{7}").is_err());
    }
}
