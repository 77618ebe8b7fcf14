//! The sign-in journal: every push request and its outcome, kept for good in
//! an append-only file beside the vault, readable only with the vault
//! unlocked, and chained so that an edit or a deletion shows.
//!
//! # File format, version 1
//!
//! `<vault>.journal`, mode 0600, UTF-8 lines, each ended by `\n`:
//!
//! ```text
//! line 0   {"journal":1,"public_key":"<base64, 32 bytes>"}
//! line n   {"n":n,"prev":"<hex SHA-256 of line n-1, without its \n>","sealed":"<base64>"}
//! ```
//!
//! * **Records.** `sealed` is a libsodium sealed box (crypto_box: an
//!   ephemeral X25519 key per record, XSalsa20-Poly1305) of
//!   `{"n":n,"prev":"…","record":{…}}`, a [`Record`] with its own number
//!   and link, to the header's public key. Anyone holding the file can
//!   append, which lets the background part record requests while the
//!   vault is locked; only the journal's secret key, kept inside the vault
//!   (format version 3), opens them, so the history is as private as the
//!   vault.
//! * **Chain.** Line n names the SHA-256 of line n-1's exact bytes and its
//!   own number, outside the box for every reader and inside it, where no
//!   one changes them without opening the box. A changed byte breaks the
//!   link from the next line or fails the box; a removed, inserted or
//!   reordered line breaks the numbers or links, and renumbering the lines
//!   after it would take the contents of their boxes, which only the vault
//!   opens. What a chain cannot show: someone who can write the user's
//!   files throwing away the records from some point on (the newest ones
//!   among them) and appending records of their own making, since anyone
//!   can seal to the public key. It guards against damage and against
//!   edits, removals and reordering of the records that stay; not against
//!   an attacker who owns the account (who could replace the app as well).
//! * **Appending.** Writers take an exclusive lock on the journal itself
//!   (it is never replaced, only appended to), read its last line, and write
//!   the new line in one `write` in append mode, then fsync. Text fields are
//!   cut to [`FIELD_LIMIT`] characters, so no line grows without bound.
//! * **Versions.** Readers refuse a header of another version and never
//!   append to it.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::base64;

/// The format version in the header.
const VERSION: u32 = 1;
/// The longest text field kept in a record, in characters.
pub const FIELD_LIMIT: usize = 256;
/// No line is longer than this; a longer one is damage.
const MAX_LINE: usize = 16 * 1024;

/// Why the journal could not be read or written. Never holds record contents.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: Arc<io::Error> },
    #[error("{path} is not a sign-in journal this Countersign can read ({reason}); it was left as it is")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path} belongs to another vault (its key differs); it was left as it is")]
    OtherKey { path: PathBuf },
    #[error("the operating system's random number generator failed")]
    Random,
}

/// The journal's secret key: it lives in the vault. Wiped on drop; `Debug`
/// shows only the public half.
#[derive(Clone)]
pub struct SecretKey(crypto_box::SecretKey);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.public().to_base64())
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        *self.to_bytes() == *other.to_bytes()
    }
}

impl Eq for SecretKey {}

impl SecretKey {
    /// A new random key.
    pub fn generate() -> Result<Self, Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut bytes[..]).map_err(|_| Error::Random)?;
        Ok(SecretKey(crypto_box::SecretKey::from_bytes(*bytes)))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        SecretKey(crypto_box::SecretKey::from_bytes(bytes))
    }

    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.public_key())
    }
}

/// The journal's public key: it seals records, opens none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(crypto_box::PublicKey);

impl PublicKey {
    pub fn to_base64(&self) -> String {
        base64::encode(self.0.as_bytes())
    }

    pub fn from_base64(text: &str) -> Option<Self> {
        let bytes: [u8; 32] = base64::decode(text).ok()?.try_into().ok()?;
        Some(PublicKey(crypto_box::PublicKey::from_bytes(bytes)))
    }
}

/// What happened to a sign-in request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// It arrived and waits for an answer.
    Received,
    /// Authenticate, and the server recorded it.
    Approved,
    /// Deny (or a number that did not match), recorded.
    Denied,
    /// "It wasn't me", recorded.
    Reported,
    /// Its time ran out unanswered.
    Expired,
    /// The server closed it: answered on another device, cancelled, gone.
    Closed,
}

impl Event {
    /// How the history shows it.
    pub fn label(self) -> &'static str {
        match self {
            Event::Received => "Waiting",
            Event::Approved => "Approved",
            Event::Denied => "Denied",
            Event::Reported => "Reported: it wasn't me",
            Event::Expired => "Expired",
            Event::Closed => "Closed",
        }
    }
}

/// One entry of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Unix seconds, by this computer's clock, when it happened.
    pub at: i64,
    /// The request's id (the server's sign-in id, or privacyIDEA's nonce).
    pub request: String,
    /// The account it came through, as the list shows it ("Contoso (alice)").
    pub account: String,
    pub app: String,
    pub user: String,
    pub ip: String,
    pub location: String,
    pub event: Event,
    /// Why, when there is more to say ("answered on another device").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl Record {
    /// "Approved", "Denied: the number did not match", "Expired"…
    pub fn outcome(&self) -> String {
        if self.detail.is_empty() { self.event.label().to_owned() } else { format!("{}: {}", self.event.label(), self.detail) }
    }

    /// The same request's record of `event` at `at`.
    pub fn then(&self, event: Event, detail: &str, at: i64) -> Record {
        Record { at, event, detail: detail.to_owned(), ..self.clone() }
    }

    /// The record with every text field cut to [`FIELD_LIMIT`] characters.
    fn bounded(&self) -> Record {
        let cut = |text: &str| text.chars().take(FIELD_LIMIT).collect::<String>();
        Record {
            at: self.at,
            request: cut(&self.request),
            account: cut(&self.account),
            app: cut(&self.app),
            user: cut(&self.user),
            ip: cut(&self.ip),
            location: cut(&self.location),
            event: self.event,
            detail: cut(&self.detail),
        }
    }
}

/// Where the chain breaks: the line (0 is the header) and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the sign-in history was changed outside Countersign at record {}: {}", self.line, self.reason)
    }
}

/// What reading the journal found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Every record that opened, oldest first.
    pub records: Vec<Record>,
    /// The first place where the chain breaks, if any.
    pub broken: Option<Break>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    journal: u32,
    public_key: String,
}

/// One line after the header.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    n: u64,
    prev: String,
    sealed: String,
}

/// What a sealed box holds: the record, with its place in the chain.
#[derive(Serialize, Deserialize)]
struct Inner {
    n: u64,
    prev: String,
    record: Record,
}

/// `vault.cvault` → `vault.cvault.journal`.
pub fn path(vault: &Path) -> PathBuf {
    let mut name = vault.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(".journal");
    vault.with_file_name(name)
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_owned(), source: Arc::new(source) }
}

fn digest(line: &[u8]) -> String {
    Sha256::digest(line).iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts the journal of the vault at `vault` with `key`, or checks that the
/// existing one is sealed to it.
pub fn create(vault: &Path, key: &PublicKey) -> Result<(), Error> {
    let path = path(vault);
    if path.exists() {
        return if read_key(&path)? == *key { Ok(()) } else { Err(Error::OtherKey { path }) };
    }
    // The header is written whole into a new file first, then linked into
    // place: the journal appears complete or not at all, and of two
    // processes creating it at once, one wins and the other checks its key.
    let mut temp = path.clone().into_os_string();
    temp.push(format!(".{}.tmp", std::process::id()));
    let temp = PathBuf::from(temp);
    let header = serde_json::to_string(&Header { journal: VERSION, public_key: key.to_base64() })
        .map_err(|e| Error::Unreadable { path: path.clone(), reason: e.to_string() })?;
    let written = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp)?;
        file.write_all(format!("{header}\n").as_bytes())?;
        file.sync_all()?;
        std::fs::hard_link(&temp, &path)
    })();
    let _ = std::fs::remove_file(&temp);
    match written {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            if read_key(&path)? == *key {
                Ok(())
            } else {
                Err(Error::OtherKey { path })
            }
        }
        Err(error) => Err(io_error(&path)(error)),
    }
}

/// Moves a journal this vault cannot use (another key: a restored backup
/// made before it; or unreadable) aside, as `<vault>.journal.<unix time>.old`,
/// so a new one can start; returns where it went. Nothing is deleted.
pub fn set_aside(vault: &Path, now: u64) -> Result<PathBuf, Error> {
    let path = path(vault);
    // Linked to a name no file has yet (never over an earlier one), then unlinked.
    for attempt in 0..100 {
        let mut aside = path.clone().into_os_string();
        aside.push(if attempt == 0 { format!(".{now}.old") } else { format!(".{now}-{attempt}.old") });
        let aside = PathBuf::from(aside);
        match std::fs::hard_link(&path, &aside) {
            Ok(()) => {
                std::fs::remove_file(&path).map_err(io_error(&path))?;
                return Ok(aside);
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(io_error(&path)(error)),
        }
    }
    Err(Error::Unreadable { path, reason: "too many journals set aside in one second".into() })
}

/// Whether the vault at `vault` has a journal yet.
pub fn exists(vault: &Path) -> bool {
    path(vault).exists()
}

/// The public key in the journal's header.
fn read_key(path: &Path) -> Result<PublicKey, Error> {
    let file = File::open(path).map_err(io_error(path))?;
    let mut first = Vec::new();
    BufReader::new(file).take(MAX_LINE as u64).read_until(b'\n', &mut first).map_err(io_error(path))?;
    let unreadable = |reason: &str| Error::Unreadable { path: path.to_owned(), reason: reason.into() };
    let header: Header = serde_json::from_slice(first.strip_suffix(b"\n").unwrap_or(&first))
        .map_err(|_| unreadable("its first line is not a journal header"))?;
    if header.journal != VERSION {
        return Err(unreadable(&format!("version {}", header.journal)));
    }
    PublicKey::from_base64(&header.public_key).ok_or_else(|| unreadable("its key is damaged"))
}

/// Appends `record`, sealed to the key in the journal's header and chained
/// to the last line. Works with the vault locked.
pub fn append(vault: &Path, record: &Record) -> Result<(), Error> {
    let path = path(vault);
    let key = read_key(&path)?;
    let mut file = OpenOptions::new().read(true).append(true).open(&path).map_err(io_error(&path))?;
    file.lock().map_err(io_error(&path))?;
    let (n, last) = last_line(&mut file, &path)?;
    let prev = digest(&last);
    let failed = |reason: String| Error::Unreadable { path: path.clone(), reason };
    let inner =
        Zeroizing::new(serde_json::to_vec(&Inner { n, prev: prev.clone(), record: record.bounded() }).map_err(|e| failed(e.to_string()))?);
    let sealed = key.0.seal(&mut crypto_box::aead::OsRng, &inner).map_err(|_| Error::Random)?;
    let line = serde_json::to_string(&Line { n, prev, sealed: base64::encode(sealed) }).map_err(|e| failed(e.to_string()))?;
    // One write of the whole line: appends of two writers never interleave.
    file.write_all(format!("{line}\n").as_bytes()).and_then(|()| file.sync_data()).map_err(io_error(&path))?;
    let _ = file.unlock();
    Ok(())
}

/// The number the next line takes, and the bytes of the last line.
fn last_line(file: &mut File, path: &Path) -> Result<(u64, Vec<u8>), Error> {
    let length = file.metadata().map_err(io_error(path))?.len();
    let start = length.saturating_sub(2 * MAX_LINE as u64);
    file.seek(SeekFrom::Start(start)).map_err(io_error(path))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).map_err(io_error(path))?;
    // A line cut short by a crash ends without \n: the next line follows it
    // on a line of its own, and readers report the damaged one.
    if !tail.is_empty() && !tail.ends_with(b"\n") {
        file.write_all(b"\n").map_err(io_error(path))?;
        tail.push(b'\n');
    }
    let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
    let last = match body.iter().rposition(|b| *b == b'\n') {
        Some(at) => body[at + 1..].to_vec(),
        None if start == 0 => body.to_vec(),
        None => return Err(Error::Unreadable { path: path.to_owned(), reason: "its last line is too long".into() }),
    };
    let n = match serde_json::from_slice::<Line>(&last) {
        Ok(line) => line.n + 1,
        // The header, or a damaged last line: count the lines instead.
        Err(_) => {
            file.seek(SeekFrom::Start(0)).map_err(io_error(path))?;
            let mut lines = 0u64;
            let mut reader = BufReader::new(&mut *file);
            let mut buffer = Vec::new();
            while reader.read_until(b'\n', &mut buffer).map_err(io_error(path))? > 0 {
                lines += 1;
                buffer.clear();
            }
            lines
        }
    };
    Ok((n, last))
}

/// Reads and checks the whole journal with the vault's journal key. No
/// journal is an empty history.
pub fn read(vault: &Path, key: &SecretKey) -> Result<History, Error> {
    let path = path(vault);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(History::default()),
        Err(error) => return Err(io_error(&path)(error)),
    };
    if read_key(&path)? != key.public() {
        return Err(Error::OtherKey { path });
    }
    let mut history = History::default();
    let broke = |history: &mut History, line: usize, reason: &str| {
        if history.broken.is_none() {
            history.broken = Some(Break { line, reason: reason.to_owned() });
        }
    };
    let mut reader = BufReader::new(file);
    let mut previous: Option<Vec<u8>> = None;
    let mut number = 0usize;
    loop {
        let mut raw = Vec::new();
        if reader.by_ref().take(MAX_LINE as u64 + 1).read_until(b'\n', &mut raw).map_err(io_error(&path))? == 0 {
            break;
        }
        let complete = raw.ends_with(b"\n");
        let bytes = raw.strip_suffix(b"\n").unwrap_or(&raw).to_vec();
        if !complete && raw.len() > MAX_LINE {
            broke(&mut history, number, "a line is far too long");
            // Skip the rest of that line.
            let mut rest = Vec::new();
            reader.read_until(b'\n', &mut rest).map_err(io_error(&path))?;
        } else if number > 0 {
            if !complete {
                broke(&mut history, number, "the last record is cut short");
            }
            match serde_json::from_slice::<Line>(&bytes) {
                Err(_) => broke(&mut history, number, "it is not a journal record"),
                Ok(line) => {
                    let prev = previous.as_deref().map(digest).unwrap_or_default();
                    if line.n != number as u64 {
                        broke(&mut history, number, &format!("it says it is record {}: records were removed, added or reordered", line.n));
                    }
                    if line.prev != prev {
                        broke(&mut history, number, "it does not follow the record before it: that one was changed or removed");
                    }
                    let opened = base64::decode(&line.sealed).ok().and_then(|sealed| key.0.unseal(&sealed).ok()).map(Zeroizing::new);
                    match opened.and_then(|plain| serde_json::from_slice::<Inner>(&plain).ok()) {
                        Some(inner) => {
                            if inner.n != line.n || inner.prev != line.prev {
                                broke(&mut history, number, "its number or link was changed: records were removed, added or reordered");
                            }
                            history.records.push(inner.record);
                        }
                        None => broke(&mut history, number, "its contents were changed"),
                    }
                }
            }
        }
        previous = Some(bytes);
        number += 1;
    }
    Ok(history)
}

#[cfg(test)]
mod tests;
