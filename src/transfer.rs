//! Moving accounts in and out: reading other apps' exports (detected from
//! their content), previewing and reporting an import, and writing exports.
//!
//! Every reader turns a file into [`Contents`]: one [`Item`] per entry the
//! file holds, each either an [`Account`] or the reason it cannot be used, so
//! a front end can show a preview and a per-entry report and never claim
//! success for entries it dropped. Readers never panic on any input; the
//! formats, versions and documents they follow are named in each submodule
//! and in `tests/fixtures/import/README.md`.

mod aegis;
mod andotp;
mod bitwarden;
mod crypto;
mod freeotp;
mod lists;
mod twofas;

use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::account::{self, Account, Algorithm, DEFAULT_PERIOD, Method, STEAM_DIGITS};
use crate::migration;
use crate::secret::{self, Password, Secret};
use crate::uri;
use crate::vault::{self, Entry, Id, Imported};

/// Largest file an import reads (a 10,000-account Aegis vault is ~5 MiB).
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// The formats Countersign imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// A Countersign backup or vault file (always encrypted).
    Countersign,
    /// Aegis JSON vault export, plain or encrypted.
    Aegis,
    /// 2FAS `.2fas` backup, plain or encrypted.
    TwoFas,
    /// andOTP JSON backup, plain or encrypted.
    AndOtp,
    /// Bitwarden's unencrypted JSON export (the `login.totp` fields).
    Bitwarden,
    /// FreeOTP+ JSON export.
    FreeOtpPlus,
    /// Ente Auth's plain-text export (otpauth URIs with Ente's extra parameters).
    Ente,
    /// otpauth URIs, one per line (FreeOTP+'s URI export is one).
    UriList,
    /// Google Authenticator `otpauth-migration://` URIs, one per line.
    GoogleMigration,
}

impl Format {
    /// Every format, in the order menus list them.
    pub const ALL: [Format; 9] = [
        Format::Aegis,
        Format::TwoFas,
        Format::AndOtp,
        Format::Bitwarden,
        Format::FreeOtpPlus,
        Format::Ente,
        Format::UriList,
        Format::GoogleMigration,
        Format::Countersign,
    ];

    /// What users call it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Countersign => "Countersign backup",
            Format::Aegis => "Aegis",
            Format::TwoFas => "2FAS",
            Format::AndOtp => "andOTP",
            Format::Bitwarden => "Bitwarden",
            Format::FreeOtpPlus => "FreeOTP+",
            Format::Ente => "Ente Auth",
            Format::UriList => "otpauth URI list",
            Format::GoogleMigration => "Google Authenticator export",
        }
    }

    /// What a sentence calls a file of this format, article included.
    pub fn described(self) -> &'static str {
        match self {
            Format::Countersign => "a Countersign backup",
            Format::Aegis => "an Aegis export",
            Format::TwoFas => "a 2FAS backup",
            Format::AndOtp => "an andOTP backup",
            Format::Bitwarden => "a Bitwarden export",
            Format::FreeOtpPlus => "a FreeOTP+ export",
            Format::Ente => "an Ente Auth export",
            Format::UriList => "an otpauth URI list",
            Format::GoogleMigration => "a Google Authenticator export",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One entry of an imported file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// How the file names it ("Issuer (name)"), for previews and reports.
    pub title: String,
    /// The account, or why it cannot be imported.
    pub account: Result<Account, Skip>,
}

/// Why one entry of a file cannot be imported. Never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    #[error("it is a {0} account, which Countersign does not support")]
    Type(String),
    #[error("it uses the hash {0}, which Countersign does not support")]
    Algorithm(String),
    #[error("its secret is unusable: {0}")]
    Secret(secret::Error),
    #[error("it has no secret")]
    NoSecret,
    #[error("{0}")]
    Account(account::Error),
    #[error("{0}")]
    Uri(uri::Error),
    #[error("{0}")]
    Google(migration::EntryError),
    #[error("{0}")]
    GoogleExport(migration::Error),
    #[error("it is {0}, not an OTP account")]
    NotAnAccount(&'static str),
    #[error("{0} is missing or not a number")]
    Field(&'static str),
}

/// What a file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    /// The format it was read as.
    pub format: Format,
    /// Whether it was encrypted.
    pub encrypted: bool,
    /// Every entry, in the file's order.
    pub items: Vec<Item>,
    /// Things the user should know that concern the file as a whole
    /// (for example a Google export whose other codes are missing).
    pub notes: Vec<String>,
}

/// Why a file cannot be imported at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error(
        "not a format Countersign can import (Aegis, 2FAS, andOTP, Bitwarden, FreeOTP+, Ente Auth, otpauth URIs, Google Authenticator export or a Countersign backup)"
    )]
    Unrecognised,
    #[error("it is not {}", .0.described())]
    NotFormat(Format),
    /// Read as `expected` (the user named it), but shaped like `found`.
    #[error("it is not {}: it looks like {}", .expected.described(), .found.described())]
    OtherFormat { expected: Format, found: Format },
    #[error("it is an encrypted {0} export: its password is needed")]
    PasswordNeeded(Format),
    #[error("wrong password, or the encrypted part is damaged")]
    WrongPassword,
    #[error("it is damaged: {0}")]
    Damaged(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("it holds no accounts")]
    Empty,
    #[error("it is larger than {} MiB, too large for an export", MAX_FILE_BYTES >> 20)]
    TooLarge,
    #[error("{0}")]
    Io(String),
    #[error("the operating system's random number generator failed")]
    Random,
    #[error("{0}")]
    Vault(String),
}

/// A [`Problem`] with the file it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct Error {
    pub path: PathBuf,
    pub problem: Problem,
}

/// Guesses the format from the content alone, and whether it is encrypted.
pub fn detect(bytes: &[u8]) -> Option<(Format, bool)> {
    if bytes.starts_with(vault::MAGIC) {
        return Some((Format::Countersign, true));
    }
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(bytes) {
        return [aegis::detect, twofas::detect, bitwarden::detect, freeotp::detect, andotp::detect_plain]
            .iter()
            .find_map(|detect| detect(&json));
    }
    if let Ok(text) = std::str::from_utf8(bytes)
        && let Some(found) = lists::detect(text)
    {
        return Some(found);
    }
    andotp::detect_encrypted(bytes)
}

/// Reads a file's bytes as `format` (detected when `None`). An encrypted
/// file needs `password`; without one the answer is [`Problem::PasswordNeeded`].
///
/// A format named by the caller is still checked for its outline (its
/// top-level JSON fields, a vault's magic, URIs in a text list): a file of
/// another shape is refused by name, rather than read as an export with
/// nothing in it. Within that outline the caller's
/// choice wins over detection.
pub fn read(bytes: &[u8], format: Option<Format>, password: Option<&Password>) -> Result<Contents, Problem> {
    let detected = detect(bytes);
    let (format, encrypted) = match (format, detected) {
        (None, detected) => detected.ok_or(Problem::Unrecognised)?,
        (Some(format), Some((found, encrypted))) if found == format => (format, encrypted),
        (Some(format), Some((found, _))) if !has_shape(bytes, format) => return Err(Problem::OtherFormat { expected: format, found }),
        (Some(format), None) if !has_shape(bytes, format) => return Err(Problem::NotFormat(format)),
        (Some(format), _) => (format, false),
    };
    let (items, notes) = match format {
        Format::Countersign => (countersign(bytes, password)?, Vec::new()),
        Format::Aegis => (aegis::read(bytes, password)?, Vec::new()),
        Format::TwoFas => (twofas::read(bytes, password)?, Vec::new()),
        Format::AndOtp => (andotp::read(bytes, password)?, Vec::new()),
        Format::Bitwarden => (bitwarden::read(bytes)?, Vec::new()),
        Format::FreeOtpPlus => (freeotp::read(bytes)?, Vec::new()),
        Format::Ente | Format::UriList | Format::GoogleMigration => lists::read(bytes)?,
    };
    if items.is_empty() {
        return Err(Problem::Empty);
    }
    Ok(Contents { format, encrypted, items, notes })
}

/// Whether `bytes` have the outline of `format`: the top-level JSON fields
/// its detection looks for, a vault's magic, or for the text lists, text
/// (not JSON) with a URI on some line. Encrypted andOTP backups have no
/// outline (they are random bytes), so anything that is not JSON passes.
fn has_shape(bytes: &[u8], format: Format) -> bool {
    let json = || serde_json::from_slice::<serde_json::Value>(bytes).ok();
    let json_is = |detect: fn(&serde_json::Value) -> Option<(Format, bool)>| json().as_ref().and_then(detect).is_some();
    match format {
        Format::Countersign => bytes.starts_with(vault::MAGIC),
        Format::Aegis => json_is(aegis::detect),
        Format::TwoFas => json_is(twofas::detect),
        Format::Bitwarden => json_is(bitwarden::detect),
        Format::FreeOtpPlus => json_is(freeotp::detect),
        Format::AndOtp => json().is_none_or(|json| andotp::detect_plain(&json).is_some()),
        Format::Ente | Format::UriList | Format::GoogleMigration => {
            json().is_none() && std::str::from_utf8(bytes).is_ok_and(|text| text.lines().any(|line| line.contains("://")))
        }
    }
}

/// Reads and decodes a file; errors name it.
pub fn open(path: &Path, format: Option<Format>, password: Option<&Password>) -> Result<Contents, Error> {
    let at = |problem| Error { path: path.to_owned(), problem };
    let bytes = read_limited(path).map_err(at)?;
    read(&bytes, format, password).map_err(at)
}

fn read_limited(path: &Path) -> Result<Zeroizing<Vec<u8>>, Problem> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| Problem::Io(e.to_string()))?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| Problem::Io(e.to_string()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Problem::TooLarge);
    }
    Ok(bytes)
}

fn countersign(bytes: &[u8], password: Option<&Password>) -> Result<Vec<Item>, Problem> {
    if !vault::copy_has_password(bytes).map_err(|e| Problem::Vault(e.to_string()))? {
        return Err(Problem::Unsupported("this vault has no password slot: only the OS keyring that made it can open it".into()));
    }
    let password = password.ok_or(Problem::PasswordNeeded(Format::Countersign))?;
    let entries = vault::open_copy(bytes, password).map_err(|error| match error {
        vault::Error::WrongPassword => Problem::WrongPassword,
        vault::Error::NoPasswordSlot => {
            Problem::Unsupported("this vault has no password slot: only the OS keyring that made it can open it".into())
        }
        other => Problem::Vault(other.to_string()),
    })?;
    Ok(entries.into_iter().map(|entry| Item { title: entry.account.title(), account: Ok(entry.account) }).collect())
}

/// The fields most exports spell out one by one, turned into an account.
/// Spellings are matched case-insensitively; `period` and `counter` are only
/// read for the types that use them.
pub(crate) struct Fields<'a> {
    pub issuer: &'a str,
    pub name: &'a str,
    pub secret: Result<Secret, Skip>,
    pub kind: &'a str,
    pub algorithm: &'a str,
    pub digits: Option<u64>,
    pub period: Option<u64>,
    pub counter: Option<u64>,
}

impl Fields<'_> {
    fn item(self) -> Item {
        let issuer = account::storable_issuer(self.issuer);
        let title = Account::totp(&issuer, self.name, Secret::from_bytes(Vec::new())).title();
        Item { title, account: self.account(issuer) }
    }

    fn account(self, issuer: String) -> Result<Account, Skip> {
        // The type first: an unsupported one (mOTP has a hex secret) is
        // reported as such, not as a bad secret.
        let mut kind = self.kind.trim().to_ascii_lowercase();
        if !matches!(kind.as_str(), "totp" | "" | "hotp" | "steam") {
            return Err(Skip::Type(self.kind.trim().to_owned()));
        }
        let mut account = Account::totp(&issuer, self.name, self.secret?);
        if account.secret.as_bytes().is_empty() {
            return Err(Skip::NoSecret);
        }
        // Apps without a Steam type (FreeOTP+) keep Steam Guard as a 5-digit
        // TOTP of the issuer Steam; the URI reader reads it the same way.
        if kind == "totp" && self.digits == Some(u64::from(STEAM_DIGITS)) && issuer.eq_ignore_ascii_case("steam") {
            kind = "steam".into();
        }
        account.method = match kind.as_str() {
            "totp" | "" => Method::Totp { period: self.period.unwrap_or(DEFAULT_PERIOD) },
            "hotp" => Method::Hotp { counter: self.counter.unwrap_or(0) },
            "steam" => Method::Steam,
            _ => return Err(Skip::Type(self.kind.trim().to_owned())),
        };
        account.algorithm = match self.algorithm.trim() {
            "" => Algorithm::Sha1,
            text => text.parse().map_err(|()| Skip::Algorithm(text.to_owned()))?,
        };
        account.digits = match account.method {
            Method::Steam => {
                account.algorithm = Algorithm::Sha1;
                STEAM_DIGITS
            }
            _ => {
                let digits = self.digits.unwrap_or(6);
                u8::try_from(digits).map_err(|_| Skip::Account(account::Error::Digits(digits)))?
            }
        };
        account.validate().map_err(Skip::Account)?;
        Ok(account)
    }
}

/// A Base32 secret as exports write it (spaces, lower case and padding tolerated).
fn base32(text: &str) -> Result<Secret, Skip> {
    if text.trim().is_empty() {
        return Err(Skip::NoSecret);
    }
    Secret::from_base32(text).map(|(secret, _)| secret).map_err(Skip::Secret)
}

/// What an import will do with one entry, shown before anything is saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// It will be added.
    New,
    /// The vault already has an entry giving the same codes.
    InVault(Id),
    /// An earlier entry of the same file gives the same codes.
    RepeatedInFile,
    /// It cannot be imported.
    Skipped(Skip),
}

/// The dry run: what importing `contents` into a vault holding `entries` would do.
pub fn preview(contents: &Contents, entries: &[Entry]) -> Vec<Plan> {
    let mut seen: Vec<&Account> = Vec::new();
    contents
        .items
        .iter()
        .map(|item| match &item.account {
            Err(skip) => Plan::Skipped(skip.clone()),
            Ok(account) => {
                if let Some(entry) = entries.iter().find(|e| e.account.gives_same_codes(account)) {
                    Plan::InVault(entry.id.clone())
                } else if seen.iter().any(|earlier| earlier.gives_same_codes(account)) {
                    Plan::RepeatedInFile
                } else {
                    seen.push(account);
                    Plan::New
                }
            }
        })
        .collect()
}

/// What became of one entry: the line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Added,
    /// It matched an entry that was updated from it (names, HOTP counter).
    Merged,
    /// It matched an entry that was left as it was.
    AlreadyThere,
    /// It was not imported.
    Skipped(Skip),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Added => f.write_str("imported"),
            Outcome::Merged => f.write_str("merged into the account already in the vault"),
            Outcome::AlreadyThere => f.write_str("skipped: already in the vault"),
            Outcome::Skipped(skip) => write!(f, "skipped: {skip}"),
        }
    }
}

/// Imports every usable entry in one save and reports each entry, in the
/// file's order. Duplicates are merged or skipped as `duplicates` says.
pub fn import(
    vault: &mut vault::Vault,
    contents: &Contents,
    duplicates: vault::Duplicates,
    now: u64,
) -> Result<Vec<(String, Outcome)>, vault::Error> {
    let accounts: Vec<Account> = contents.items.iter().filter_map(|item| item.account.as_ref().ok().cloned()).collect();
    let mut done = vault.import(accounts, now, duplicates)?.into_iter();
    Ok(contents
        .items
        .iter()
        .map(|item| {
            let outcome = match &item.account {
                Err(skip) => Outcome::Skipped(skip.clone()),
                Ok(_) => match done.next() {
                    Some(Imported::Added(_)) => Outcome::Added,
                    Some(Imported::Merged(_)) => Outcome::Merged,
                    Some(Imported::AlreadyThere(_)) | None => Outcome::AlreadyThere,
                },
            };
            (item.title.clone(), outcome)
        })
        .collect())
}

/// The formats Countersign exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportFormat {
    /// A password-protected Countersign vault file holding the accounts.
    Countersign,
    /// Aegis JSON with an scrypt password slot (Aegis imports it).
    AegisEncrypted,
    /// Aegis JSON in the clear.
    Aegis,
    /// otpauth URIs, one per line, in the clear.
    UriList,
    /// Google Authenticator "Transfer accounts" QR codes, as PNG images.
    GoogleQr,
}

impl ExportFormat {
    /// Every export format, encrypted ones first.
    pub const ALL: [ExportFormat; 5] =
        [ExportFormat::Countersign, ExportFormat::AegisEncrypted, ExportFormat::Aegis, ExportFormat::UriList, ExportFormat::GoogleQr];

    /// What users call it.
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Countersign => "Countersign backup (encrypted)",
            ExportFormat::AegisEncrypted => "Aegis (encrypted)",
            ExportFormat::Aegis => "Aegis (plain JSON)",
            ExportFormat::UriList => "otpauth URI list",
            ExportFormat::GoogleQr => "Google Authenticator QR codes",
        }
    }

    /// Whether it takes a password to protect the file.
    pub fn is_encrypted(self) -> bool {
        matches!(self, ExportFormat::Countersign | ExportFormat::AegisEncrypted)
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One file of an export. The bytes may hold secrets in the clear, so they
/// are wiped on drop.
pub struct Exported {
    /// A file name for it when the export is several files ("google-authenticator-1-of-2.png").
    pub name: String,
    pub bytes: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Exported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exported").field("name", &self.name).field("bytes", &self.bytes.len()).finish()
    }
}

/// What an export wrote, and which accounts the format could not hold.
#[derive(Debug)]
pub struct Export {
    pub files: Vec<Exported>,
    /// Saved as a folder of `files` (image exports), even when there is one.
    pub folder: bool,
    /// Titles of the accounts left out, with why.
    pub left_out: Vec<(String, &'static str)>,
}

/// Why an export could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    #[error("{0} needs a password")]
    PasswordNeeded(ExportFormat),
    #[error("there are no accounts to export")]
    Empty,
    #[error("none of the accounts fit in {0}")]
    NothingFits(ExportFormat),
    #[error("{0}")]
    Failed(String),
    /// Made, but not written: nothing half-written is left at the path.
    #[error(transparent)]
    Save(#[from] Error),
}

/// Encodes the accounts in `format`. `password` protects encrypted formats.
pub fn export(format: ExportFormat, entries: &[Entry], password: Option<&Password>) -> Result<Export, ExportError> {
    if entries.is_empty() {
        return Err(ExportError::Empty);
    }
    let password = || password.filter(|p| !p.is_empty()).ok_or(ExportError::PasswordNeeded(format));
    let one = |name: &str, bytes: Vec<u8>| Export {
        files: vec![Exported { name: name.into(), bytes: Zeroizing::new(bytes) }],
        folder: false,
        left_out: Vec::new(),
    };
    match format {
        ExportFormat::Countersign => {
            let bytes = vault::export_copy(entries, password()?, &vault::Kdf::default()).map_err(|e| ExportError::Failed(e.to_string()))?;
            Ok(one("countersign-backup.cvault", bytes))
        }
        ExportFormat::AegisEncrypted => {
            let bytes = aegis::write(entries, Some(password()?)).map_err(|e| ExportError::Failed(e.to_string()))?;
            Ok(one("aegis-export.json", bytes))
        }
        ExportFormat::Aegis => {
            Ok(one("aegis-export-plain.json", aegis::write(entries, None).map_err(|e| ExportError::Failed(e.to_string()))?))
        }
        ExportFormat::UriList => Ok(one("otpauth-uris.txt", lists::write_uris(entries))),
        ExportFormat::GoogleQr => lists::write_google_qr(entries),
    }
}

/// The texts of Google Authenticator export codes, and the titles of the
/// accounts left out, each with why.
pub type GoogleCodes = (Vec<String>, Vec<(String, &'static str)>);

/// Google Authenticator "Transfer accounts" codes for the accounts, as the
/// texts to show as QR codes, and the accounts Google cannot hold (with why).
pub fn google_codes(entries: &[Entry]) -> Result<GoogleCodes, ExportError> {
    lists::google_codes(entries)
}

/// A QR code of `text` as a grey image: `scale` pixels a module, a 4-module quiet zone.
pub fn qr_image(text: &str, scale: u32) -> Result<image::GrayImage, ExportError> {
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| ExportError::Failed(format!("too much for one QR code: {e}")))?;
    let width = code.width() as u32;
    let colors = code.to_colors();
    let side = (width + 8) * scale;
    Ok(image::GrayImage::from_fn(side, side, |x, y| {
        let (mx, my) = (i64::from(x / scale) - 4, i64::from(y / scale) - 4);
        let dark = mx >= 0
            && my >= 0
            && mx < i64::from(width)
            && my < i64::from(width)
            && colors[(my as u32 * width + mx as u32) as usize] == qrcode::Color::Dark;
        image::Luma([if dark { 0 } else { 255 }])
    }))
}

/// [`qr_image`] at 8 pixels a module, encoded as PNG.
pub fn qr_png(text: &str) -> Result<Vec<u8>, ExportError> {
    let image = qr_image(text, 8)?;
    let mut png = std::io::Cursor::new(Vec::new());
    image.write_to(&mut png, image::ImageFormat::Png).map_err(|e| ExportError::Failed(e.to_string()))?;
    Ok(png.into_inner())
}

/// Writes an export's files: one file at `path`, or a folder of them. Files are created readable by the user only and
/// written through a temp file, so a failure leaves no half-written export.
pub fn save(export: &Export, path: &Path) -> Result<Vec<PathBuf>, Error> {
    let at = |e: std::io::Error, path: &Path| Error { path: path.to_owned(), problem: Problem::Io(e.to_string()) };
    let targets: Vec<PathBuf> = if !export.folder {
        vec![path.to_owned()]
    } else {
        std::fs::create_dir_all(path).map_err(|e| at(e, path))?;
        export.files.iter().map(|file| path.join(&file.name)).collect()
    };
    for (file, target) in export.files.iter().zip(&targets) {
        write_private(target, &file.bytes).map_err(|e| at(e, target))?;
    }
    Ok(targets)
}

/// What [`export_to`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// The file, or the images in the folder, that were written.
    pub files: Vec<PathBuf>,
    /// How many accounts the export holds...
    pub exported: usize,
    /// ...of how many there were.
    pub of: usize,
    /// Titles of the accounts the format could not hold, with why.
    pub left_out: Vec<(String, &'static str)>,
}

/// Exports the accounts in `format` to `path` (a folder for image exports):
/// the one operation behind the window's Export page and `countersign
/// export`. Whether to overwrite, ask or refuse an existing file is the
/// front's to decide before calling.
pub fn export_to(path: &Path, format: ExportFormat, entries: &[Entry], password: Option<&Password>) -> Result<Saved, ExportError> {
    let export = export(format, entries, password)?;
    let files = save(&export, path)?;
    Ok(Saved { files, exported: entries.len() - export.left_out.len(), of: entries.len(), left_out: export.left_out })
}

/// Writes through `.<name>.tmp`, created anew (never an existing file, never
/// through a symlink: exports often go to shared folders), mode 0600, and
/// removed on error ([`crate::atomic`]).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().ok_or_else(|| std::io::Error::other("not a file name"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(".tmp");
    crate::atomic::replace(path, path.with_file_name(temp_name), bytes)
}

/// Standard base64, as most exports use.
fn b64(bytes: &[u8]) -> String {
    crate::base64::encode(bytes)
}

fn unb64(text: &str, what: &str) -> Result<Vec<u8>, Problem> {
    crate::base64::decode(text.trim()).map_err(|_| Problem::Damaged(format!("{what} is not base64")))
}

fn unhex(text: &str, what: &str) -> Result<Vec<u8>, Problem> {
    data_encoding::HEXLOWER_PERMISSIVE.decode(text.trim().as_bytes()).map_err(|_| Problem::Damaged(format!("{what} is not hexadecimal")))
}

fn json<T: serde::de::DeserializeOwned>(bytes: &[u8], format: Format) -> Result<T, Problem> {
    // serde_json's message can quote the offending value, which may be a
    // secret: only the position is kept.
    serde_json::from_slice(bytes).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            Problem::NotFormat(format)
        } else {
            Problem::Damaged(format!("unexpected {format} layout at line {}, column {}", e.line(), e.column()))
        }
    })
}

#[cfg(test)]
mod tests;
