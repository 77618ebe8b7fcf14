//! One process per vault. The first `countersign` on a vault (its window, or
//! its background part) listens on a Unix socket named after the vault's
//! path; starting `countersign` again on the same vault connects to it, asks
//! the running one to show its window and exits instead of opening a second
//! window that would save over the first one's changes. Another vault gets
//! its own process.
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
//! Protocol: the newcomer writes one line, `raise\n` (show the window),
//! `ping\n` (is anyone there? `countersign --background` asks this) or
//! `quit\n` (`countersign quit`); the running process answers `ok\n`, then
//! does it. Anything else is ignored.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

const REPLY: &str = "ok";

/// What a newcomer asks of the running process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Show the window (open it if it is closed) and bring it forward.
    Raise,
    /// Nothing: only whether someone runs (a second background start).
    Ping,
    /// End the process, connections and all.
    Quit,
}

impl Request {
    fn line(self) -> &'static str {
        match self {
            Request::Raise => "raise",
            Request::Ping => "ping",
            Request::Quit => "quit",
        }
    }

    fn parse(line: &str) -> Option<Request> {
        [Request::Raise, Request::Ping, Request::Quit].into_iter().find(|request| request.line() == line)
    }
}
/// How long either side waits for the other's line.
const PATIENCE: Duration = Duration::from_secs(3);

/// The outcome of starting a window on a vault.
#[derive(Debug)]
pub enum Claim {
    /// Nothing runs on this vault: this process is the one, and keeps the
    /// listener until it ends.
    First(Listener),
    /// Countersign runs on this vault and took the request.
    Raised,
    /// Countersign runs on this vault but did not answer within 3 s (it is
    /// busy or hung). A second window could save over its changes.
    Unresponsive,
}

/// Tries to become the one process on `vault`; when one runs, asks it `request`.
pub fn claim(vault: &Path, request: Request) -> io::Result<Claim> {
    claim_in(&runtime_dir()?, vault, request)
}

/// Asks the process running on `vault`, if any, for `request`, never
/// becoming it: false when none runs.
pub fn ask(vault: &Path, request: Request) -> io::Result<bool> {
    ask_in(&runtime_dir()?, vault, request)
}

/// [`ask`] with the socket folder given (tests use a temporary one).
pub fn ask_in(dir: &Path, vault: &Path, request: Request) -> io::Result<bool> {
    private_dir(dir)?;
    let hash = vault_hash(vault);
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(dir.join(format!("window-{hash}.lock")))?;
    match lock.try_lock() {
        // Nobody holds it: nothing runs (the lock goes with the file handle).
        Ok(()) => Ok(false),
        Err(std::fs::TryLockError::WouldBlock) => {
            let stream = UnixStream::connect(dir.join(format!("window-{hash}.sock")))?;
            send(stream, request).map(|()| true)
        }
        Err(std::fs::TryLockError::Error(error)) => Err(error),
    }
}

/// [`claim`] with the socket folder given (tests use a temporary one).
pub fn claim_in(dir: &Path, vault: &Path, request: Request) -> io::Result<Claim> {
    private_dir(dir)?;
    let hash = vault_hash(vault);
    let path = dir.join(format!("window-{hash}.sock"));
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(dir.join(format!("window-{hash}.lock")))?;
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
                    Ok(stream) => return Ok(if send(stream, request).is_ok() { Claim::Raised } else { Claim::Unresponsive }),
                    Err(error) if matches!(error.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound) => {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    Err(error) => return Err(error),
                }
            }
            Ok(Claim::Unresponsive)
        }
        Err(std::fs::TryLockError::Error(error)) => Err(error),
    }
}

/// Sends `request` to the process behind `stream` and waits for its answer.
fn send(mut stream: UnixStream, request: Request) -> io::Result<()> {
    stream.set_read_timeout(Some(PATIENCE))?;
    stream.set_write_timeout(Some(PATIENCE))?;
    writeln!(stream, "{}", request.line())?;
    let mut answer = String::new();
    BufReader::new(stream.take_limited()).read_line(&mut answer)?;
    if answer.trim_end() == REPLY { Ok(()) } else { Err(io::Error::other("the Countersign already running on this vault did not answer")) }
}

/// The running process's end: its socket exists, and its lock is held,
/// while this lives.
#[derive(Debug)]
pub struct Listener {
    socket: UnixListener,
    path: PathBuf,
    _lock: std::fs::File,
}

impl Listener {
    /// A second handle on the socket for a thread that waits for newcomers,
    /// while this one keeps the socket file until the process ends.
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
    /// Blocks until a newcomer asks to raise or quit, answers it, and
    /// returns what it asked. Pings are answered here; connections that say
    /// something else are dropped.
    pub fn wait(&self) -> io::Result<Request> {
        loop {
            let (stream, _) = self.socket.accept()?;
            match answer(stream) {
                Ok(Some(Request::Ping) | None) | Err(_) => continue,
                Ok(Some(request)) => return Ok(request),
            }
        }
    }
}

fn answer(mut stream: UnixStream) -> io::Result<Option<Request>> {
    stream.set_read_timeout(Some(PATIENCE))?;
    stream.set_write_timeout(Some(PATIENCE))?;
    let mut line = String::new();
    BufReader::new(stream.try_clone()?.take_limited()).read_line(&mut line)?;
    let Some(request) = Request::parse(line.trim_end()) else { return Ok(None) };
    writeln!(stream, "{REPLY}")?;
    Ok(Some(request))
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
        let listener = first(claim_in(&sockets, &vault, Request::Raise).unwrap());
        let waiter = listener.waiter().unwrap();
        let window = std::thread::spawn(move || waiter.wait());
        assert!(matches!(claim_in(&sockets, &vault, Request::Raise).unwrap(), Claim::Raised));
        assert_eq!(window.join().unwrap().unwrap(), Request::Raise);
        assert_eq!(std::fs::metadata(&sockets).unwrap().permissions().mode() & 0o777, 0o700);
    }

    #[test]
    fn a_ping_is_answered_without_waking_the_process_and_quit_reaches_it() {
        let dir = tempfile::tempdir().unwrap();
        let sockets = dir.path().join("run");
        let vault = dir.path().join("vault.cvault");
        let listener = first(claim_in(&sockets, &vault, Request::Raise).unwrap());
        let waiter = listener.waiter().unwrap();
        let process = std::thread::spawn(move || waiter.wait());
        assert!(matches!(claim_in(&sockets, &vault, Request::Ping).unwrap(), Claim::Raised));
        assert!(!process.is_finished(), "a ping asks nothing of the process");
        assert!(ask_in(&sockets, &vault, Request::Quit).unwrap());
        assert_eq!(process.join().unwrap().unwrap(), Request::Quit);
        drop(listener);
        // Nothing runs: asking starts nothing and says so.
        assert!(!ask_in(&sockets, &vault, Request::Quit).unwrap());
        assert!(matches!(claim_in(&sockets, &vault, Request::Raise).unwrap(), Claim::First(_)), "asking left the lock free");
    }

    #[test]
    fn another_vault_gets_its_own_window() {
        let dir = tempfile::tempdir().unwrap();
        let sockets = dir.path().join("run");
        let one = first(claim_in(&sockets, &dir.path().join("one.cvault"), Request::Raise).unwrap());
        let two = first(claim_in(&sockets, &dir.path().join("two.cvault"), Request::Raise).unwrap());
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
                    claim_in(&sockets, &vault, Request::Raise).unwrap()
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
        let again = first(claim_in(&sockets, &vault, Request::Raise).unwrap());
        assert_eq!(again.path(), path);
        drop(again);
        assert!(!path.exists(), "closing the window removes its socket");
    }

    #[test]
    fn a_stranger_that_says_something_else_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let sockets = dir.path().join("run");
        let vault = dir.path().join("vault.cvault");
        let listener = first(claim_in(&sockets, &vault, Request::Raise).unwrap());
        let waiter = listener.waiter().unwrap();
        let window = std::thread::spawn(move || waiter.wait());
        let mut stranger = UnixStream::connect(listener.path()).unwrap();
        writeln!(stranger, "GET / HTTP/1.1").unwrap();
        let mut reply = String::new();
        BufReader::new(stranger).read_line(&mut reply).unwrap();
        assert_eq!(reply, "", "no answer to a stranger");
        assert!(!window.is_finished());
        assert!(matches!(claim_in(&sockets, &vault, Request::Raise).unwrap(), Claim::Raised));
        window.join().unwrap().unwrap();
    }

    #[test]
    fn a_window_that_does_not_answer_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let sockets = dir.path().join("run");
        let vault = dir.path().join("vault.cvault");
        // Bound but never accepting: the connection queues and no one answers.
        let _hung = first(claim_in(&sockets, &vault, Request::Raise).unwrap());
        assert!(matches!(claim_in(&sockets, &vault, Request::Raise).unwrap(), Claim::Unresponsive));
    }

    #[test]
    fn a_folder_open_to_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let sockets = dir.path().join("run");
        std::fs::create_dir(&sockets).unwrap();
        std::fs::set_permissions(&sockets, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = claim_in(&sockets, &dir.path().join("vault.cvault"), Request::Raise).unwrap_err();
        assert!(error.to_string().contains("not a private folder"), "{error}");
    }
}
