//! Where the CLI gets credentials: the OS keyring, password files, the
//! environment, or a prompt without echo.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use countersign::secret::Password;
use countersign::vault::{self, Keyring, Locked, Vault};

/// Environment variable holding the password itself, for scripts.
pub const PASSWORD_ENV: &str = "COUNTERSIGN_PASSWORD";
/// Environment variable holding a new password, for `passwd` in scripts.
pub const NEW_PASSWORD_ENV: &str = "COUNTERSIGN_NEW_PASSWORD";

/// The credential options every command shares.
pub struct Credentials {
    pub password_file: Option<PathBuf>,
    pub no_keyring: bool,
}

impl Credentials {
    /// Connects to the OS keyring unless told not to.
    pub fn keyring(&self) -> Result<Keyring, vault::keyring::Error> {
        if self.no_keyring {
            return Err(vault::keyring::Error::Unavailable("disabled by --no-keyring".into()));
        }
        Keyring::system()
    }

    /// True when a password was given without a prompt.
    pub fn has_scripted_password(&self) -> bool {
        self.password_file.is_some() || std::env::var_os(PASSWORD_ENV).is_some()
    }

    /// The vault password from the file, the environment, or a prompt.
    pub fn password(&self, prompt: &str) -> Result<Password> {
        if let Some(file) = &self.password_file {
            return read_password_file(file);
        }
        if let Ok(text) = std::env::var(PASSWORD_ENV) {
            return Ok(Password::new(text));
        }
        prompt_password(prompt)
    }

    /// Reads, checks and unlocks the vault: keyring first, then the password.
    pub fn open(&self, path: &Path) -> Result<Vault> {
        let locked = Locked::read(path)?;
        if locked.has_keyring() {
            match self.keyring().map_err(vault::Error::from).and_then(|k| locked.unlock_with_keyring(&k)) {
                Ok(vault) => return Ok(vault),
                Err(error) if locked.has_password() => {
                    if !self.no_keyring {
                        eprintln!("countersign: {error}; unlocking with the password instead");
                    }
                }
                Err(error) => return Err(error).context("this vault opens only through the OS keyring"),
            }
        }
        let password = self.password("Vault password: ")?;
        Ok(locked.unlock_with_password(&password)?)
    }
}

/// A new password: from `file`, `COUNTERSIGN_NEW_PASSWORD`, or typed twice.
pub fn new_password(file: Option<&Path>) -> Result<Password> {
    let password = if let Some(file) = file {
        read_password_file(file)?
    } else if let Ok(text) = std::env::var(NEW_PASSWORD_ENV) {
        Password::new(text)
    } else {
        let first = prompt_password("New password: ")?;
        let second = prompt_password("Repeat it: ")?;
        if first.as_bytes() != second.as_bytes() {
            bail!("the two passwords differ; nothing was changed");
        }
        first
    };
    if password.is_empty() {
        bail!("the password is empty; nothing was changed");
    }
    Ok(password)
}

/// First line of a file; a trailing newline is not part of the password.
pub fn read_password_file(file: &Path) -> Result<Password> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read the password file {}", file.display()))?;
    let line = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
    if line.contains('\n') {
        bail!("the password file {} has more than one line", file.display());
    }
    Ok(Password::new(line.to_owned()))
}

pub fn prompt_password(prompt: &str) -> Result<Password> {
    rpassword::prompt_password(prompt).map(Password::new).map_err(|_| {
        anyhow::anyhow!("a password is needed and there is no terminal to ask on: pass --password-file FILE or set {PASSWORD_ENV}")
    })
}
