//! Private files written whole: a new temp file beside the target, synced, then renamed over it.
//!
//! The temp file is always created anew (`O_CREAT | O_EXCL`, std's
//! `create_new`), mode 0600 on Unix. With `O_EXCL` the kernel refuses any
//! existing name, a symbolic link included (dangling or not, POSIX: "symbolic
//! links are not followed"), so this gives what `O_NOFOLLOW` would, without
//! `libc` in the domain: a planted symlink cannot redirect the secret bytes
//! and a planted file cannot lend them its mode. A temp file a crash left
//! behind is removed first (`unlink` removes a link itself, never its
//! target); if something reappears under the name before the create, the
//! create fails and nothing is written. On any error the temp file is removed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A temp file this process created and filled; removed on drop unless renamed.
pub(crate) struct Temp {
    path: PathBuf,
    renamed: bool,
}

impl Temp {
    /// Creates `path` as a new file readable by the user only, writes `bytes`
    /// and syncs them.
    pub(crate) fn write(path: PathBuf, bytes: &[u8]) -> io::Result<Temp> {
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        let mut file = create_private(&path)?;
        // From here the file is ours: dropping `temp` on an error removes it.
        let temp = Temp { path, renamed: false };
        file.write_all(bytes)?;
        file.sync_all()?;
        Ok(temp)
    }

    /// Renames the temp file over `target`.
    pub(crate) fn rename_to(mut self, target: &Path) -> io::Result<()> {
        fs::rename(&self.path, target)?;
        self.renamed = true;
        Ok(())
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Opens `path` as a new file (never an existing one, never through a
/// symlink), readable and writable by the user only.
pub(crate) fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Replaces `path` with `bytes` through `temp`: see the module documentation.
pub(crate) fn replace(path: &Path, temp: PathBuf, bytes: &[u8]) -> io::Result<()> {
    Temp::write(temp, bytes)?.rename_to(path)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_planted_symlink_or_loose_file_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let target = dir.path().join("out");
        let temp = dir.path().join("out.tmp");
        std::os::unix::fs::symlink(&victim, &temp).unwrap();
        replace(&target, temp.clone(), b"secret").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious", "the symlink's target is untouched");
        assert!(!std::fs::symlink_metadata(&target).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"secret");

        // A loose temp file readable by all does not lend its mode.
        std::fs::write(&temp, b"old").unwrap();
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o644)).unwrap();
        replace(&target, temp.clone(), b"again").unwrap();
        assert_eq!(std::fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(!temp.exists());
    }

    #[test]
    fn a_failed_rename_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a-directory");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("inside"), b"x").unwrap();
        let temp = dir.path().join("a-directory.tmp");
        assert!(replace(&target, temp.clone(), b"secret").is_err());
        assert!(!temp.exists(), "the temp file is removed on error");
    }
}
