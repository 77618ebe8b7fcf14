//! Start at login: the XDG autostart entry that starts Countersign's
//! background part (`countersign --background`) when the user logs in, so
//! sign-in requests reach the desktop before the window was ever opened.
//!
//! The entry is `$XDG_CONFIG_HOME/autostart/org.countersign.Countersign.desktop`
//! (`~/.config/autostart/…`); a vault other than the default one gets its own
//! entry, `org.countersign.Countersign-HASH.desktop` (HASH: the first 16 hex
//! digits of the SHA-256 of the vault's absolute path), which names it with
//! `--vault`. Desktops that follow the XDG Autostart specification (GNOME,
//! KDE, Xfce, LXQt, and most others) start it at login.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The app id: the entry's file name, and its icon.
const APP_ID: &str = "org.countersign.Countersign";

/// Why the entry could not be written or removed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("no config folder is known for this user (set XDG_CONFIG_HOME or HOME)")]
    NoConfigDir,
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
}

/// What the entry starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The `countersign` binary.
    pub exe: PathBuf,
    /// The vault, when it is not the default one.
    pub vault: Option<PathBuf>,
    /// The settings file, when `COUNTERSIGN_SETTINGS` chose another one.
    pub settings: Option<PathBuf>,
}

/// `$XDG_CONFIG_HOME/autostart`, else `~/.config/autostart`.
pub fn dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .map(|config| config.join("autostart"))
}

/// The entry's path for this launch's vault.
pub fn path(launch: &Launch) -> Option<PathBuf> {
    let name = match &launch.vault {
        None => format!("{APP_ID}.desktop"),
        Some(vault) => {
            let absolute = std::path::absolute(vault).unwrap_or_else(|_| vault.clone());
            let digest = Sha256::digest(absolute.as_os_str().as_encoded_bytes());
            format!("{APP_ID}-{}.desktop", digest[..8].iter().map(|b| format!("{b:02x}")).collect::<String>())
        }
    };
    dir().map(|dir| dir.join(name))
}

/// The entry's text.
pub fn entry(launch: &Launch) -> String {
    let mut argv: Vec<String> = Vec::new();
    if let Some(settings) = &launch.settings {
        argv.push("env".into());
        argv.push(format!("COUNTERSIGN_SETTINGS={}", settings.display()));
    }
    argv.push(launch.exe.display().to_string());
    if let Some(vault) = &launch.vault {
        argv.push("--vault".into());
        argv.push(std::path::absolute(vault).unwrap_or_else(|_| vault.clone()).display().to_string());
    }
    argv.push("--background".into());
    let exec = argv.iter().map(|arg| quote(arg)).collect::<Vec<_>>().join(" ");
    format!(
        "[Desktop Entry]\nType=Application\nName=Countersign\nComment=Receives sign-in requests in the background\nExec={exec}\nIcon={APP_ID}\nTerminal=false\nNoDisplay=true\nX-GNOME-Autostart-enabled=true\nX-GNOME-UsesNotifications=true\n"
    )
}

/// One argument of an `Exec` key, as the Desktop Entry Specification wants
/// it: quoted when it holds a reserved character (`"`, `` ` ``, `$` and `\`
/// then escaped by a backslash), `%` doubled, and the whole made a valid
/// string value (its backslashes doubled again).
fn quote(arg: &str) -> String {
    const RESERVED: &[char] = &[' ', '\t', '\n', '"', '\'', '\\', '>', '<', '~', '|', '&', ';', '$', '*', '?', '#', '(', ')', '`'];
    let arg = if arg.is_empty() || arg.contains(RESERVED) {
        let mut quoted = String::from("\"");
        for c in arg.chars() {
            if matches!(c, '"' | '`' | '$' | '\\') {
                quoted.push('\\');
            }
            quoted.push(c);
        }
        quoted.push('"');
        quoted
    } else {
        arg.to_owned()
    };
    arg.replace('%', "%%").replace('\\', "\\\\").replace('\n', "\\n")
}

/// Whether the entry for this launch's vault exists.
pub fn is_on(launch: &Launch) -> bool {
    path(launch).is_some_and(|path| path.is_file())
}

/// Writes (`on`) or removes the entry; true when anything changed.
pub fn set(launch: &Launch, on: bool) -> Result<bool, Error> {
    let path = path(launch).ok_or(Error::NoConfigDir)?;
    let io = |error: std::io::Error| Error::Io { path: path.clone(), reason: error.to_string() };
    if !on {
        return match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(io(error)),
        };
    }
    let text = entry(launch);
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let temp = path.with_extension("desktop.tmp");
    crate::atomic::replace(&path, temp, text.as_bytes()).map_err(io)?;
    Ok(true)
}

/// Whether Countersign should start at login: the user's choice when they
/// made one, else on once a work or school account exists.
pub fn wanted(choice: Option<bool>, has_push_accounts: bool) -> bool {
    choice.unwrap_or(has_push_accounts)
}

impl Launch {
    /// This process's binary, for `vault` (`None`: the default vault).
    /// A binary replaced by an upgrade while running is named by its path,
    /// without Linux's " (deleted)"; one run from an AppImage's passing
    /// mount (`APPDIR`) by the image (`APPIMAGE`), and only then: both are
    /// inherited by whatever that image starts.
    pub fn current(vault: Option<&Path>) -> Option<Launch> {
        let exe = std::env::current_exe().ok()?;
        let exe = match exe.to_str().and_then(|text| text.strip_suffix(" (deleted)")) {
            Some(original) => PathBuf::from(original),
            None => exe,
        };
        let image = std::env::var_os("APPIMAGE").map(PathBuf::from).filter(|image| image.is_absolute());
        let exe = match (image, std::env::var_os("APPDIR").map(PathBuf::from)) {
            (Some(image), Some(mount)) if exe.starts_with(&mount) => image,
            _ => exe,
        };
        Some(Launch { exe, vault: vault.map(Path::to_path_buf), settings: std::env::var_os("COUNTERSIGN_SETTINGS").map(PathBuf::from) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_quoted_as_the_specification_says() {
        assert_eq!(quote("/usr/bin/countersign"), "/usr/bin/countersign");
        assert_eq!(quote("/home/a b/vault.cvault"), "\"/home/a b/vault.cvault\"");
        // "$" escaped by a backslash, then the backslash doubled for the string value.
        assert_eq!(quote("/tmp/$x"), "\"/tmp/\\\\$x\"");
        assert_eq!(quote("/tmp/100%"), "/tmp/100%%");
    }

    #[test]
    fn the_entry_starts_the_background_part_of_its_vault() {
        let launch = Launch { exe: "/usr/bin/countersign".into(), vault: None, settings: None };
        let text = entry(&launch);
        assert!(text.contains("\nExec=/usr/bin/countersign --background\n"), "{text}");
        assert!(text.starts_with("[Desktop Entry]\nType=Application\n"));
        let other =
            Launch { exe: "/opt/c s/countersign".into(), vault: Some("/data/work.cvault".into()), settings: Some("/tmp/s.json".into()) };
        assert!(
            entry(&other)
                .contains("\nExec=env COUNTERSIGN_SETTINGS=/tmp/s.json \"/opt/c s/countersign\" --vault /data/work.cvault --background\n"),
            "{}",
            entry(&other)
        );
        assert_ne!(path(&launch).map(|p| p.file_name().unwrap().to_owned()), path(&other).map(|p| p.file_name().unwrap().to_owned()));
    }

    #[test]
    fn the_default_follows_work_accounts_until_the_user_chooses() {
        assert!(!wanted(None, false));
        assert!(wanted(None, true));
        assert!(!wanted(Some(false), true));
        assert!(wanted(Some(true), false));
    }
}
