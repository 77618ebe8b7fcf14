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
        prompt_password(prompt, VAULT)
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
        let first = prompt_password("New password: ", NEW)?;
        let second = prompt_password("Repeat it: ", NEW)?;
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

/// Asks on the terminal; without one, the error names `scripted`: the
/// flag and variable that give this password (the vault's, a new one, an
/// import or export file's), so a script is told the right ones.
pub fn prompt_password(prompt: &str, scripted: Scripted) -> Result<Password> {
    rpassword::prompt_password(prompt).map(Password::new).map_err(|_| {
        let Scripted { flag, env, what } = scripted;
        anyhow::anyhow!("{what} is needed and there is no terminal to ask on: pass {flag} FILE or set {env}")
    })
}

/// Where a script gives one password instead of the prompt.
#[derive(Clone, Copy)]
pub struct Scripted {
    /// The flag naming a file whose first line is the password.
    pub flag: &'static str,
    /// The environment variable holding the password itself.
    pub env: &'static str,
    /// Which password, for the message ("the vault password").
    pub what: &'static str,
}

/// The vault's password.
pub const VAULT: Scripted = Scripted { flag: "--password-file", env: PASSWORD_ENV, what: "the vault password" };
/// A new vault password (`passwd`).
pub const NEW: Scripted = Scripted { flag: "--new-password-file", env: NEW_PASSWORD_ENV, what: "the new password" };
