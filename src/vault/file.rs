//! Durable, atomic file replacement and the advisory lock that serialises writers.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Error;

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_owned(), source: Arc::new(source) }
}

/// `vault.cvault` → `vault.cvault.<suffix>`, in the same directory.
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

/// No real vault comes near this (1,000 accounts take about 190 KiB); a larger
/// file is refused before it is read into memory.
const MAX_SIZE: u64 = 64 * 1024 * 1024;

/// Reads a whole vault file; a missing file is `NotFound`.
pub(super) fn read(path: &Path) -> Result<Vec<u8>, Error> {
    let not_found_or_io = |source: io::Error| match source.kind() {
        io::ErrorKind::NotFound => Error::NotFound { path: path.to_owned() },
        _ => io_error(path)(source),
    };
    let mut file = File::open(path).map_err(not_found_or_io)?;
    let size = file.metadata().map_err(io_error(path))?.len();
    if size > MAX_SIZE {
        return Err(Error::NotAVault { path: path.to_owned() });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.read_to_end(&mut bytes).map_err(io_error(path))?;
    Ok(bytes)
}

/// Creates the vault's directory, private to the user.
pub(super) fn create_parent(path: &Path) -> Result<(), Error> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(parent).map_err(io_error(parent))
}

/// An exclusive advisory lock on `<vault>.lock`, released on drop.
///
/// The lock lives in its own file because the vault itself is replaced by
/// rename on every save, and a lock on a replaced inode protects nothing.
pub(super) struct Lock(File);

impl Lock {
    pub(super) fn acquire(path: &Path) -> Result<Lock, Error> {
        let lock_path = sibling(path, "lock");
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&lock_path).map_err(io_error(&lock_path))?;
        file.lock().map_err(io_error(&lock_path))?;
        Ok(Lock(file))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Replaces `path` with `bytes` so that a crash at any instant leaves either
/// the old or the new file, never a mix; the old one is kept as `<path>.bak`.
/// The temp file `<path>.tmp` is created anew, mode 0600, never through a
/// symlink, and removed on any error ([`crate::atomic`]). The caller holds
/// the [`Lock`].
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let temp_path = sibling(path, "tmp");
    let temp = crate::atomic::Temp::write(temp_path.clone(), bytes).map_err(io_error(&temp_path))?;
    if path.exists() {
        keep_backup(path)?;
    }
    temp.rename_to(path).map_err(io_error(path))?;
    sync_directory(path)
}

/// Makes `<path>.bak` the current file, atomically: link (or copy) it to
/// `<path>.bak.tmp`, then rename that over `<path>.bak`.
fn keep_backup(path: &Path) -> Result<(), Error> {
    let backup = sibling(path, "bak");
    let staging = sibling(path, "bak.tmp");
    match fs::remove_file(&staging) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(&staging)(e)),
    }
    // A hard link never follows or replaces an existing name.
    if fs::hard_link(path, &staging).is_ok() {
        return fs::rename(&staging, &backup).map_err(io_error(&backup));
    }
    // File systems without hard links get a copy, new and private, made durable first.
    let bytes = read(path)?;
    crate::atomic::Temp::write(staging.clone(), &bytes).map_err(io_error(&staging))?.rename_to(&backup).map_err(io_error(&backup))
}

fn sync_directory(path: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent).and_then(|d| d.sync_all()).map_err(io_error(parent))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
