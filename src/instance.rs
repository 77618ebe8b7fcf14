//! One window per vault. The first `countersign` window on a vault listens on
//! a Unix socket named after the vault's path; starting `countersign` again
//! on the same vault connects to it, asks the running window to come forward
//! and exits instead of opening a second window that would save over the
//! first one's changes. Another vault gets its own window.
//!
//! Where: `$XDG_RUNTIME_DIR/countersign/` (or `$TMPDIR/countersign-UID/`),
//! a folder that must be ours and closed to others (0700), holding
//! `window-HASH.lock` and `window-HASH.sock`, HASH being the first 16 hex
//! digits of the SHA-256 of the vault's canonical path.
//!
//! Who is first: the process holding an exclusive lock on the `.lock` file
//! (flock, released by the kernel when the process ends, even by a crash).
//! Only the holder removes a stale socket, binds a new one and unlinks it, so
//! two starts at the same moment never both open a window.
//!
//! Protocol: the newcomer writes `raise\n`; the running window answers
//! `ok\n` and comes forward. Anything else is ignored.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

const REQUEST: &str = "raise";
const REPLY: &str = "ok";
/// How long either side waits for the other's line.
const PATIENCE: Duration = Duration::from_secs(3);

/// The outcome of starting a window on a vault.
#[derive(Debug)]
pub enum Claim {
    /// No window is open on this vault: this process opens it, and keeps the
    /// listener until the window closes.
    First(Listener),
    /// A window on this vault was open and has been asked to come forward.
    Raised,
    /// A window on this vault is open but did not answer within 3 s (it is
    /// busy or hung). A second window could save over its changes.
    Unresponsive,
}

/// Tries to become the one window on `vault`.
pub fn claim(vault: &Path) -> io::Result<Claim> {
    claim_in(&runtime_dir()?, vault)
}

/// [`claim`] with the socket folder given (tests use a temporary one).
pub fn claim_in(dir: &Path, vault: &Path) -> io::Result<Claim> {
    private_dir(dir)?;
    let hash = vault_hash(vault);
    let path = dir.join(format!("window-{hash}.sock"));
    let lock = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(dir.join(format!("window-{hash}.lock")))?;
    match lock.try_lock() {
        Ok(()) => {
            // First: whatever socket file is there belongs to a window that ended.
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
            let socket = UnixListener::bind(&path)?;
            Ok(Claim::First(Listener { socket, path, _lock: lock }))
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            // The holder may still be binding its socket: try for a while.
            for _ in 0..30 {
                match UnixStream::connect(&path) {
                    Ok(stream) => return Ok(if raise(stream).is_ok() { Claim::Raised } else { Claim::Unresponsive }),
                    Err(error) if matches!(error.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound) => std::thread::sleep(Duration::from_millis(100)),
                    Err(error) => return Err(error),
                }
            }
            Ok(Claim::Unresponsive)
        }
        Err(std::fs::TryLockError::Error(error)) => Err(error),
    }
}

/// Asks the window behind `stream` to come forward and waits for its answer.
fn raise(mut stream: UnixStream) -> io::Result<()> {
    stream.set_read_timeout(Some(PATIENCE))?;
    stream.set_write_timeout(Some(PATIENCE))?;
    writeln!(stream, "{REQUEST}")?;
    let mut answer = String::new();
    BufReader::new(stream.take_limited()).read_line(&mut answer)?;
    if answer.trim_end() == REPLY {
        Ok(())
    } else {
        Err(io::Error::other("the Countersign window already open on this vault did not answer"))
    }
}

/// The running window's end: its socket exists, and its lock is held, while
/// this lives.
#[derive(Debug)]
pub struct Listener {
    socket: UnixListener,
    path: PathBuf,
    _lock: std::fs::File,
}

impl Listener {
    /// A second handle on the socket for a thread that waits for newcomers,
    /// while this one keeps the socket file until the window closes.
    pub fn waiter(&self) -> io::Result<Waiter> {
        Ok(Waiter { socket: self.socket.try_clone()? })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Waits for newcomers on the running window's socket.
#[derive(Debug)]
pub struct Waiter {
    socket: UnixListener,
}

impl Waiter {
    /// Blocks until a newcomer asks the window to come forward, answers it,
    /// and returns. Connections that say something else are dropped.
    pub fn wait(&self) -> io::Result<()> {
        loop {
            let (stream, _) = self.socket.accept()?;
            if answer(stream).unwrap_or(false) {
                return Ok(());
            }
        }
    }
}

fn answer(mut stream: UnixStream) -> io::Result<bool> {
    stream.set_read_timeout(Some(PATIENCE))?;
    stream.set_write_timeout(Some(PATIENCE))?;
    let mut request = String::new();
    BufReader::new(stream.try_clone()?.take_limited()).read_line(&mut request)?;
    if request.trim_end() != REQUEST {
        return Ok(false);
    }
    writeln!(stream, "{REPLY}")?;
    Ok(true)
}

/// At most a short line is read from the other side.
trait TakeLimited: io::Read + Sized {
    fn take_limited(self) -> io::Take<Self> {
        self.take(64)
    }
}

impl TakeLimited for UnixStream {}

/// The first 16 hex digits of the SHA-256 of the vault's canonical path
/// (symlinks resolved). A file that does not exist yet resolves through its
/// nearest existing folder.
fn vault_hash(vault: &Path) -> String {
    let absolute = std::path::absolute(vault).unwrap_or_else(|_| vault.to_path_buf());
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    let resolved = loop {
        if let Ok(canonical) = existing.canonicalize() {
            break rest.iter().rev().fold(canonical, |path, name| path.join(name));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => break absolute.clone(),
        }
    };
    let digest = Sha256::digest(resolved.as_os_str().as_encoded_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn runtime_dir() -> io::Result<PathBuf> {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|dir| !dir.is_empty()) {
        Some(dir) => Ok(PathBuf::from(dir).join("countersign")),
        None => Ok(std::env::temp_dir().join(format!("countersign-{}", getuid()))),
    }
}

unsafe extern "C" {
    /// POSIX getuid(2): no preconditions, cannot fail.
    safe fn getuid() -> u32;
}

/// Creates `dir` closed to others, or checks that an existing one is ours
/// and closed: in a shared /tmp, another user could have made it first.
fn private_dir(dir: &Path) -> io::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(error),
    }
    let metadata = std::fs::symlink_metadata(dir)?;
    let ours = metadata.uid() == getuid();
    if !metadata.is_dir() || !ours || metadata.permissions().mode() & 0o077 != 0 {
        return Err(io::Error::other(format!("{} is not a private folder of this user", dir.display())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(claim: Claim) -> Listener {
        match claim {
            Claim::First(listener) => listener,
            other => panic!("expected to be the first window, got {other:?}"),
        }
    }

    #[test]
    fn the_second_start_raises_the_first_window() {
        let dir = tempfile::tempdir().unwrap();
        let sockets = dir.path().join("run");
        let vault = dir.path().join("vault.cvault");
        let listener = first(claim_in(&sockets, &vault).unwrap());
        let waiter = listener.waiter().unwrap();
        let window = std::thread::spawn(move || waiter.wait());
        assert!(matches!(claim_in(&sockets, &vault).unwrap(), Claim::Raised));
        window.join().unwrap().unwrap();
        assert_eq!(std::fs::metadata(&sockets).unwrap().permissions().mode() & 0o777, 0o700);
    }

    #[test]
    fn another_vault_gets_its_own_window() {
        let dir = tempfile::tempdir().unwrap();
        let sockets = dir.path().join("run");
        let one = first(claim_in(&sockets, &dir.path().join("one.cvault")).unwrap());
        let two = first(claim_in(&sockets, &dir.path().join("two.cvault")).unwrap());
        assert_ne!(one.path(), two.path());
        // The same vault named another way is the same window.
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert_eq!(vault_hash(&dir.path().join("sub/../one.cvault")), vault_hash(&dir.path().join("one.cvault")));
    }

    #[test]
    fn starts_at_the_same_moment_open_one_window() {
        let dir = tempfile::tempdir().unwrap();
        let sockets = dir.path().join("run");
        let vault = dir.path().join("vault.cvault");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let starts: Vec<_> = (0..8)
            .map(|_| {
                let (sockets, vault, barrier) = (sockets.clone(), vault.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    claim_in(&sockets, &vault).unwrap()
                })
            })
            .collect();
        // The newcomers find no one answering (this test never waits on the
        // socket), but none of them may open a second window.
        let claims: Vec<Claim> = starts.into_iter().map(|start| start.join().unwrap()).collect();
        assert_eq!(claims.iter().filter(|claim| matches!(claim, Claim::First(_))).count(), 1, "{claims:?}");
    }

    #[test]
    fn a_symlinked_vault_is_the_same_window() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("vault.cvault"), b"").unwrap();
        std::os::unix::fs::symlink(dir.path().join("vault.cvault"), dir.path().join("link.cvault")).unwrap();
        assert_eq!(vault_hash(&dir.path().join("link.cvault")), vault_hash(&dir.path().join("vault.cvault")));
        // Not created yet, in a folder not created yet under a symlinked one.
        std::os::unix::fs::symlink(dir.path(), dir.path().join("home")).unwrap();
        assert_eq!(vault_hash(&dir.path().join("home/data/v.cvault")), vault_hash(&dir.path().join("data/v.cvault")));
        assert_ne!(vault_hash(&dir.path().join("data/v.cvault")), vault_hash(&dir.path().join("data/w.cvault")));
    }

    #[test]
    fn a_crashed_window_leaves_a_socket_that_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let sockets = dir.path().join("run");
        let vault = dir.path().join("vault.cvault");
        // A crash: the socket file stays, nobody listens on it (and the
        // kernel released the lock).
        private_dir(&sockets).unwrap();
        let path = sockets.join(format!("window-{}.sock", vault_hash(&vault)));
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let again = first(claim_in(&sockets, &vault).unwrap());
        assert_eq!(again.path(), path);
        drop(again);
        assert!(!path.exists(), "closing the window removes its socket");
    }

    #[test]
    fn a_stranger_that_says_something_else_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let sockets = dir.path().join("run");
        let vault = dir.path().join("vault.cvault");
        let listener = first(claim_in(&sockets, &vault).unwrap());
        let waiter = listener.waiter().unwrap();
        let window = std::thread::spawn(move || waiter.wait());
        let mut stranger = UnixStream::connect(listener.path()).unwrap();
        writeln!(stranger, "GET / HTTP/1.1").unwrap();
        let mut reply = String::new();
        BufReader::new(stranger).read_line(&mut reply).unwrap();
        assert_eq!(reply, "", "no answer to a stranger");
        assert!(!window.is_finished());
        assert!(matches!(claim_in(&sockets, &vault).unwrap(), Claim::Raised));
        window.join().unwrap().unwrap();
    }

    #[test]
    fn a_window_that_does_not_answer_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let sockets = dir.path().join("run");
        let vault = dir.path().join("vault.cvault");
        // Bound but never accepting: the connection queues and no one answers.
        let _hung = first(claim_in(&sockets, &vault).unwrap());
        assert!(matches!(claim_in(&sockets, &vault).unwrap(), Claim::Unresponsive));
    }

    #[test]
    fn a_folder_open_to_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let sockets = dir.path().join("run");
        std::fs::create_dir(&sockets).unwrap();
        std::fs::set_permissions(&sockets, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = claim_in(&sockets, &dir.path().join("vault.cvault")).unwrap_err();
        assert!(error.to_string().contains("not a private folder"), "{error}");
    }
}
