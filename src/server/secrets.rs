//! What the server keeps secret at rest, and where:
//! - **API tokens**: only their SHA-256 is stored (`server_settings`,
//!   `admin_token_sha256` / `rp_token_sha256`). `countersign-server tokens`
//!   makes new ones and shows them once. Tokens stored in clear by earlier
//!   versions are replaced by their hash at start (they keep working).
//! - **The server's signing key**: a 0600 file outside the database
//!   (`server_key_file`, default `DATABASE.key`), or a systemd credential
//!   named `server-key` (`LoadCredential=`), read-only. A key an earlier
//!   version kept in the database is moved to the file at start. On
//!   PostgreSQL without either, every instance must sign with the same
//!   key: the first makes it and keeps it in the database
//!   (`shared_server_key`), sealed like TOTP secrets when `totp_key_file`
//!   is set.
//! - **Users' TOTP secrets**: in the database, sealed with
//!   XChaCha20-Poly1305 under a key from `totp_key_file` when that is set
//!   (`xc1:` + base64 of nonce ‖ ciphertext, the user's name as associated
//!   data, so a sealed secret cannot be moved to another user). Clear ones
//!   are sealed at start; without the key, sealed ones are refused.
//!
//! Key files hold standard base64 of 32 bytes. A missing file is created
//! (0600, never over an existing one); one readable by others is refused.

use std::io::Write;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::store::Error;
use crate::base64;

/// The prefix of a sealed TOTP secret.
const SEALED: &str = "xc1:";

/// SHA-256 of a bearer token: all the database holds of it.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A key file's 32 bytes; created with fresh random bytes when missing.
pub fn key_file(path: &Path, create: bool) -> Result<Zeroizing<[u8; 32]>, Error> {
    let damaged = |why: String| Error::Damaged(format!("{}: {why}", path.display()));
    match std::fs::read_to_string(path) {
        Ok(text) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(path).map_err(|e| damaged(e.to_string()))?.permissions().mode();
                // systemd credentials are 0400 or 0440 (group of the service); others must not read.
                if mode & 0o007 != 0 {
                    return Err(damaged(format!("readable by other users (mode {:o}); make it 0600", mode & 0o777)));
                }
            }
            let bytes = Zeroizing::new(base64::decode(text.trim()).map_err(|_| damaged("not base64".into()))?);
            let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| damaged("not a 32-byte key".into()))?;
            Ok(Zeroizing::new(key))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && create => {
            let mut key = Zeroizing::new([0u8; 32]);
            getrandom::fill(key.as_mut()).map_err(|_| Error::Random)?;
            write_new(path, &key).map_err(|e| damaged(e.to_string()))?;
            Ok(key)
        }
        Err(error) => Err(damaged(error.to_string())),
    }
}

/// Writes a new key file, 0600, refusing to replace or follow anything.
pub fn write_new(path: &Path, key: &[u8; 32]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let text = Zeroizing::new(base64::encode(key));
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Where the server key comes from: a systemd credential when one is
/// given (read only), else the configured file (made when missing), else
/// `None`: the database's shared key.
pub fn server_key_source(configured: Option<PathBuf>) -> Option<(PathBuf, bool)> {
    match std::env::var_os("CREDENTIALS_DIRECTORY").map(|dir| PathBuf::from(dir).join("server-key")) {
        Some(credential) if credential.exists() => Some((credential, false)),
        _ => configured.map(|path| (path, true)),
    }
}

/// Seals and opens users' TOTP secrets.
pub struct SecretBox(XChaCha20Poly1305);

impl SecretBox {
    pub fn new(key: &[u8; 32]) -> SecretBox {
        SecretBox(XChaCha20Poly1305::new(key.into()))
    }

    fn aad(user: &str) -> Vec<u8> {
        format!("countersign-server totp secret\n{user}").into_bytes()
    }

    pub fn seal(&self, user: &str, secret: &str) -> Result<String, Error> {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).map_err(|_| Error::Random)?;
        let sealed = self
            .0
            .encrypt(&XNonce::from(nonce), Payload { msg: secret.as_bytes(), aad: &Self::aad(user) })
            .map_err(|_| Error::Damaged("sealing a TOTP secret".into()))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!("{SEALED}{}", base64::encode(bytes)))
    }

    pub fn open(&self, user: &str, stored: &str) -> Result<String, Error> {
        let damaged = || Error::Damaged(format!("user {user}'s TOTP secret does not open with totp_key_file's key"));
        let Some(encoded) = stored.strip_prefix(SEALED) else { return Ok(stored.to_owned()) };
        let bytes = base64::decode(encoded).map_err(|_| damaged())?;
        if bytes.len() < 24 {
            return Err(damaged());
        }
        let (nonce, sealed) = bytes.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().map_err(|_| damaged())?;
        let opened =
            Zeroizing::new(self.0.decrypt(&XNonce::from(nonce), Payload { msg: sealed, aad: &Self::aad(user) }).map_err(|_| damaged())?);
        String::from_utf8(opened.to_vec()).map_err(|_| damaged())
    }
}

/// Whether a stored secret is sealed.
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED)
}
