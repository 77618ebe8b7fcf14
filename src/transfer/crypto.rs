//! The ciphers and key derivations other apps' encrypted exports use, with
//! bounds on every cost a file can ask for (a file is untrusted input).

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use super::Problem;

/// A 256-bit key, wiped on drop.
pub(super) type Key = Zeroizing<[u8; 32]>;

/// AES-256-GCM with a 96-bit nonce and no associated data; `sealed` is the
/// ciphertext with its 16-byte tag last. A failure is a wrong password or
/// damage: GCM cannot tell them apart.
pub(super) fn open(key: &[u8; 32], nonce: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, Problem> {
    let nonce: [u8; 12] = nonce.try_into().map_err(|_| Problem::Damaged(format!("a {}-byte nonce where AES-GCM takes 12", nonce.len())))?;
    Aes256Gcm::new(&(*key).into()).decrypt(&Nonce::from(nonce), sealed).map(Zeroizing::new).map_err(|_| Problem::WrongPassword)
}

/// The inverse of [`open`].
pub(super) fn seal(key: &[u8; 32], nonce: &[u8; 12], plain: &[u8]) -> Result<Vec<u8>, Problem> {
    Aes256Gcm::new(&(*key).into()).encrypt(&Nonce::from(*nonce), plain).map_err(|_| Problem::Damaged("too large to encrypt".into()))
}

/// Most memory an scrypt slot may ask for (Aegis uses 32 MiB).
const SCRYPT_MAX_BYTES: u64 = 256 << 20;

/// scrypt with a 32-byte output, refusing parameters that would take more
/// than [`SCRYPT_MAX_BYTES`] or an absurd number of passes.
pub(super) fn scrypt(password: &[u8], salt: &[u8], n: u64, r: u32, p: u32) -> Result<Key, Problem> {
    let unusable = || Problem::Damaged(format!("unusable scrypt parameters n={n} r={r} p={p}"));
    if !n.is_power_of_two() || n < 2 || r == 0 || p == 0 || p > 4 || n.saturating_mul(u64::from(r)).saturating_mul(128) > SCRYPT_MAX_BYTES {
        return Err(unusable());
    }
    let params = ::scrypt::Params::new(n.trailing_zeros() as u8, r, p).map_err(|_| unusable())?;
    let mut key = Zeroizing::new([0; 32]);
    ::scrypt::scrypt(password, salt, &params, &mut key[..]).map_err(|_| unusable())?;
    Ok(key)
}

/// Most PBKDF2 iterations a file may ask for (andOTP uses up to 160,000).
const PBKDF2_MAX_ITERATIONS: u32 = 10_000_000;

/// PBKDF2-HMAC-SHA1 or -SHA256 with a 32-byte output.
pub(super) fn pbkdf2(hash: Hash, password: &[u8], salt: &[u8], iterations: u32) -> Result<Key, Problem> {
    if iterations == 0 || iterations > PBKDF2_MAX_ITERATIONS {
        return Err(Problem::Damaged(format!("unusable PBKDF2 iteration count {iterations}")));
    }
    let mut key = Zeroizing::new([0; 32]);
    match hash {
        Hash::Sha1 => ::pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, salt, iterations, &mut key[..]),
        Hash::Sha256 => ::pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations, &mut key[..]),
    }
    Ok(key)
}

/// The HMAC hash of a PBKDF2.
#[derive(Debug, Clone, Copy)]
pub(super) enum Hash {
    Sha1,
    Sha256,
}

/// `N` bytes from the operating system's CSPRNG.
pub(super) fn random<const N: usize>() -> Result<[u8; N], Problem> {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes).map_err(|_| Problem::Random)?;
    Ok(bytes)
}
