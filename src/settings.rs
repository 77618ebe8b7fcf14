//! User preferences (theme, auto-lock, clipboard clearing, hidden codes, window
//! size, backups), kept as JSON in the platform config directory. No secrets live here.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Light, dark, or whatever the desktop uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThemeChoice {
    #[default]
    System,
    Light,
    Dark,
}

/// Preferences. Unknown or missing fields fall back to the defaults, so an
/// older or newer file never stops the app from starting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub theme: ThemeChoice,
    /// Lock after this many seconds without input; 0 never locks.
    pub auto_lock_seconds: u64,
    /// Clear a copied code after this many seconds; 0 never clears.
    pub clipboard_clear_seconds: u64,
    /// Show "••• •••" until a card is clicked.
    pub hide_codes: bool,
    /// Last window size (logical pixels).
    pub window_size: Option<(f32, f32)>,
    /// Where a copy of the vault goes after every change; `None` is
    /// `backups` beside the vault.
    pub backup_dir: Option<PathBuf>,
    /// How many copies are kept; 0 turns automatic backups off.
    pub backup_keep: usize,
    /// Seconds between two polls of a privacyIDEA server (at least 1).
    pub privacyidea_poll_seconds: u64,
    /// Closing the window leaves Countersign running in the background,
    /// receiving sign-in requests, until Quit.
    pub run_in_background: bool,
    /// Start the background part at login; `None` until the user chooses:
    /// then it is on once a work or school account exists.
    pub start_at_login: Option<bool>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            theme: ThemeChoice::System,
            auto_lock_seconds: 5 * 60,
            clipboard_clear_seconds: 30,
            hide_codes: false,
            window_size: None,
            backup_dir: None,
            backup_keep: crate::backup::DEFAULT_KEEP,
            privacyidea_poll_seconds: crate::privacyidea::DEFAULT_POLL_SECONDS,
            run_in_background: true,
            start_at_login: None,
        }
    }
}

/// Why settings could not be saved (loading never fails: it falls back).
#[derive(Debug, Clone, thiserror::Error)]
#[error("could not save settings to {path}: {reason}")]
pub struct Error {
    pub path: PathBuf,
    pub reason: String,
}

impl Settings {
    /// How often privacyIDEA servers are polled.
    pub fn poll_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.privacyidea_poll_seconds.clamp(1, 3600))
    }

    /// Where settings live when nothing overrides it.
    pub fn default_path() -> Option<PathBuf> {
        directories::ProjectDirs::from("org", "Countersign", "countersign").map(|dirs| dirs.config_dir().join("settings.json"))
    }

    /// The backup policy for the vault at `vault`, or `None` when backups are off.
    pub fn backup_policy(&self, vault: &Path) -> Option<crate::backup::Policy> {
        let dir = self.backup_dir.clone().unwrap_or_else(|| crate::backup::default_dir(vault));
        (self.backup_keep > 0).then_some(crate::backup::Policy { dir, keep: self.backup_keep })
    }

    /// Where settings are read from: `COUNTERSIGN_SETTINGS`, else [`Settings::default_path`].
    pub fn path_from_env() -> Option<PathBuf> {
        std::env::var_os("COUNTERSIGN_SETTINGS").map(PathBuf::from).or_else(Settings::default_path)
    }

    /// Reads settings; a missing or unreadable file gives the defaults.
    pub fn load(path: &Path) -> Settings {
        std::fs::read(path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default()
    }

    /// Writes settings through a temp file and a rename.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let error = |reason: String| Error { path: path.to_owned(), reason };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| error(e.to_string()))?;
        }
        let json = serde_json::to_vec_pretty(self).map_err(|e| error(e.to_string()))?;
        let temp = path.with_extension("json.tmp");
        crate::atomic::replace(path, temp, &json).map_err(|e| error(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_fallbacks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/settings.json");
        assert_eq!(Settings::load(&path), Settings::default());
        let settings = Settings { theme: ThemeChoice::Dark, hide_codes: true, window_size: Some((500.0, 700.0)), ..Settings::default() };
        settings.save(&path).unwrap();
        assert_eq!(Settings::load(&path), settings);
        std::fs::write(&path, b"{\"theme\": \"dark\", \"future\": 1}").unwrap();
        assert_eq!(Settings::load(&path).theme, ThemeChoice::Dark);
        std::fs::write(&path, b"not json").unwrap();
        assert_eq!(Settings::load(&path), Settings::default());
    }
}
