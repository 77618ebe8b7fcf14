//! Automatic versioned backups of the vault file: where they go, how they
//! are named, how many are kept, and the record of the last verification.
//!
//! A backup is a byte-for-byte copy of the vault file taken right after
//! each save ([`crate::vault::Vault::set_backups`]), so it is encrypted
//! exactly like the vault and opens with the same password or keyring
//! entry. Copies are named after the vault file, `STEM-YYYYMMDDTHHMMSS.mmmZ.cvault`
//! (UTC; `vault-...` for the default `vault.cvault`), so the name order is the
//! time order and vaults sharing a folder never touch each other's copies.
//! They are written through a temp file and a rename, readable by the user
//! only: a backup folder never holds a half-written copy. Only the newest
//! [`Policy::keep`] copies are kept; files that do not follow the naming
//! scheme are never touched.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// How many copies are kept when nothing says otherwise.
pub const DEFAULT_KEEP: usize = 10;

const SUFFIX: &str = ".cvault";
const VERIFIED: &str = "last-verified.json";

/// Where backups go and how many are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub dir: PathBuf,
    /// At least 1.
    pub keep: usize,
}

/// The folder used when the settings name none: `backups` beside the vault.
pub fn default_dir(vault: &Path) -> PathBuf {
    vault.parent().unwrap_or(Path::new(".")).join("backups")
}

/// Why a backup could not be written, listed or recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("backup folder {}: {reason}", dir.display())]
pub struct Error {
    pub dir: PathBuf,
    pub reason: String,
}

/// One backup file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub path: PathBuf,
    /// When it was taken, Unix milliseconds (from its name).
    pub taken_ms: i64,
}

impl Backup {
    /// "2026-12-03 09:15:00 UTC".
    pub fn taken(&self) -> String {
        jiff::Timestamp::from_millisecond(self.taken_ms).map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default()
    }
}

/// Copies `vault` into the policy's folder as the newest backup, then
/// removes the oldest beyond `keep`. Returns the new copy.
pub fn take(policy: &Policy, vault: &Path, now: SystemTime) -> Result<PathBuf, Error> {
    let error = |reason: String| Error { dir: policy.dir.clone(), reason };
    private_dir(&policy.dir).map_err(|e| error(e.to_string()))?;
    let bytes = std::fs::read(vault).map_err(|e| error(format!("could not read {}: {e}", vault.display())))?;
    let stem = stem(vault);
    let mut ms = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    // Two saves in one millisecond: the later one takes the next free name.
    let newest = list(&policy.dir, vault)?.first().map(|b| b.taken_ms);
    if newest.is_some_and(|newest| newest >= ms) {
        ms = newest.unwrap_or(ms) + 1;
    }
    let path = policy.dir.join(name(&stem, ms));
    let temp = policy.dir.join(format!(".{}.tmp", name(&stem, ms)));
    crate::atomic::replace(&path, temp.clone(), &bytes).map_err(|e| error(e.to_string()))?;
    remove_stale_temps(&policy.dir, &stem, &temp);
    for old in list(&policy.dir, vault)?.iter().skip(policy.keep.max(1)) {
        std::fs::remove_file(&old.path).map_err(|e| error(format!("could not remove {}: {e}", old.path.display())))?;
    }
    Ok(path)
}

/// Creates the folder readable by the user only (it holds encrypted vaults,
/// open to offline password guessing if others can read them).
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// The vault file's name without its extension: what its copies are named after.
fn stem(vault: &Path) -> String {
    vault.file_stem().map_or_else(|| "vault".to_owned(), |stem| stem.to_string_lossy().into_owned())
}

/// Temp files of copies that a crash interrupted (never `keep` itself).
fn remove_stale_temps(dir: &Path, stem: &str, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&format!(".{stem}-")) && name.ends_with(".tmp") && entry.path() != keep {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn name(stem: &str, ms: i64) -> String {
    let stamp = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    format!("{stem}-{}{SUFFIX}", stamp.strftime("%Y%m%dT%H%M%S.%3fZ"))
}

fn parse(stem: &str, name: &str) -> Option<i64> {
    let stamp = name.strip_prefix(stem)?.strip_prefix('-')?.strip_suffix(SUFFIX)?;
    let time = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%S.%fZ", stamp).ok()?;
    Some(time.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp().as_millisecond())
}

/// The backups of the vault file `vault` in `dir`, newest first. A missing
/// folder holds none.
pub fn list(dir: &Path, vault: &Path) -> Result<Vec<Backup>, Error> {
    let stem = stem(vault);
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error { dir: dir.to_owned(), reason: e.to_string() }),
    };
    let mut backups: Vec<Backup> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| Some(Backup { taken_ms: parse(&stem, entry.file_name().to_str()?)?, path: entry.path() }))
        .collect();
    backups.sort_by_key(|backup| std::cmp::Reverse(backup.taken_ms));
    Ok(backups)
}

/// The outcome of the last successful verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    /// The backup's file name.
    pub file: String,
    /// How many accounts it holds.
    pub accounts: usize,
    /// When it was verified, Unix seconds.
    pub at: i64,
}

impl Verified {
    /// "2026-12-03 09:15 UTC".
    pub fn when(&self) -> String {
        jiff::Timestamp::from_second(self.at).map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default()
    }
}

/// A backup that [`crate::vault::Vault::verify_backup`] found would restore
/// the vault, and the record of it now kept in the backup folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The backup that was checked (the newest).
    pub backup: Backup,
    /// What was recorded; [`last_verified`] returns it from now on.
    pub verified: Verified,
}

/// Remembers a verification in the backup folder, so the window and the
/// command line both show it.
pub fn record(dir: &Path, verified: &Verified) -> Result<(), Error> {
    let error = |reason: String| Error { dir: dir.to_owned(), reason };
    let json = serde_json::to_vec_pretty(verified).map_err(|e| error(e.to_string()))?;
    let temp = dir.join(format!(".{VERIFIED}.tmp"));
    crate::atomic::replace(&dir.join(VERIFIED), temp, &json).map_err(|e| error(e.to_string()))
}

/// The last verification recorded in `dir`, if any.
pub fn last_verified(dir: &Path) -> Option<Verified> {
    serde_json::from_slice(&std::fs::read(dir.join(VERIFIED)).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn copies_are_named_by_time_and_only_the_newest_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let vault = dir.path().join("vault.cvault");
        let policy = Policy { dir: dir.path().join("backups"), keep: 3 };
        let start = UNIX_EPOCH + Duration::from_millis(1_764_752_100_000);
        let mut taken = Vec::new();
        for generation in 0..5u8 {
            std::fs::write(&vault, [generation]).unwrap();
            // The last two share a millisecond: names must still differ.
            let now = start + Duration::from_secs(u64::from(generation.min(3)));
            taken.push(take(&policy, &vault, now).unwrap());
        }
        std::fs::write(policy.dir.join("notes.txt"), b"mine").unwrap();
        // A copy interrupted by a crash leaves a temp file; the next copy removes it.
        let stale = policy.dir.join(".vault-20200101T000000.000Z.cvault.tmp");
        std::fs::write(&stale, b"half").unwrap();
        take(&policy, &vault, start + Duration::from_secs(10)).unwrap();
        assert!(!stale.exists());
        // Another vault sharing the folder: its copies are its own.
        let other = dir.path().join("work.cvault");
        std::fs::write(&other, b"other").unwrap();
        let others = take(&policy, &other, start).unwrap();
        assert_eq!(others.file_name().unwrap(), "work-20251203T085500.000Z.cvault");
        assert_eq!(list(&policy.dir, &other).unwrap().len(), 1);
        let kept = list(&policy.dir, &vault).unwrap();
        assert_eq!(kept[1..].iter().map(|b| b.path.clone()).collect::<Vec<_>>(), [taken[4].clone(), taken[3].clone()]);
        assert_eq!(std::fs::read(&kept[1].path).unwrap(), [4]);
        assert_eq!(kept[2].taken_ms + 1, kept[1].taken_ms);
        assert_eq!(kept[2].path.file_name().unwrap(), "vault-20251203T085503.000Z.cvault");
        assert_eq!(kept[2].taken(), "2025-12-03 08:55:03 UTC");
        assert!(policy.dir.join("notes.txt").exists(), "files outside the scheme are never removed");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&policy.dir).unwrap().permissions().mode() & 0o777, 0o700);
            assert_eq!(std::fs::metadata(&kept[0].path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn a_verification_is_remembered_in_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(last_verified(dir.path()), None);
        let verified = Verified { file: "vault-x.cvault".into(), accounts: 3, at: 1_764_752_100 };
        record(dir.path(), &verified).unwrap();
        assert_eq!(last_verified(dir.path()), Some(verified.clone()));
        assert_eq!(verified.when(), "2025-12-03 08:55 UTC");
    }
}
