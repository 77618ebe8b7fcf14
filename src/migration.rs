//! Google Authenticator's "Transfer accounts" export:
//! `otpauth-migration://offline?data=BASE64`.
//!
//! `data` is standard base64 of a protobuf `MigrationPayload`, as in Google
//! Authenticator's own `.proto` (reproduced by every open decoder):
//!
//! ```text
//! message MigrationPayload {
//!   repeated OtpParameters otp_parameters = 1;
//!   int32 version = 2;  int32 batch_size = 3;  int32 batch_index = 4;  int32 batch_id = 5;
//!   message OtpParameters {
//!     bytes secret = 1;  string name = 2;  string issuer = 3;
//!     Algorithm algorithm = 4;  // 0 unspecified, 1 SHA1, 2 SHA256, 3 SHA512, 4 MD5
//!     DigitCount digits = 5;    // 0 unspecified, 1 six, 2 eight
//!     OtpType type = 6;         // 0 unspecified, 1 HOTP, 2 TOTP
//!     int64 counter = 7;
//!   }
//! }
//! ```
//!
//! A large export is split over several QR codes: `batch_size` codes sharing
//! one `batch_id`, numbered by `batch_index` from 0. [`Batches`] collects
//! them so a front end can say "2 of 3 scanned" and refuse a partial batch.
//!
//! `batch_size` is whatever the code claims: more than [`MAX_BATCH_SIZE`] is
//! refused, and the codes still missing are reported as ranges ([`Missing`]),
//! so nothing a code claims costs memory per claimed code.

use std::collections::BTreeMap;

use prost::Message;
use zeroize::Zeroize;

use crate::account::{Account, Algorithm, DEFAULT_PERIOD, Method};
use crate::secret::Secret;

// The wire messages. `skip_debug`: a derived Debug would print secrets.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
struct MigrationPayload {
    #[prost(message, repeated, tag = "1")]
    otp_parameters: Vec<OtpParameters>,
    #[prost(int32, tag = "2")]
    version: i32,
    #[prost(int32, tag = "3")]
    batch_size: i32,
    #[prost(int32, tag = "4")]
    batch_index: i32,
    #[prost(int32, tag = "5")]
    batch_id: i32,
}

#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
struct OtpParameters {
    #[prost(bytes = "vec", tag = "1")]
    secret: Vec<u8>,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(string, tag = "3")]
    issuer: String,
    #[prost(int32, tag = "4")]
    algorithm: i32,
    #[prost(int32, tag = "5")]
    digits: i32,
    #[prost(int32, tag = "6")]
    kind: i32,
    #[prost(int64, tag = "7")]
    counter: i64,
}

impl Drop for OtpParameters {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

/// The most codes one export may claim to be split over. Google
/// Authenticator puts about ten accounts in a code, so this is ten thousand
/// accounts, far beyond any phone's list.
pub const MAX_BATCH_SIZE: u32 = 1000;

/// Which part of a multi-code export one QR code is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Batch {
    /// Shared by every code of one export.
    pub id: i32,
    /// 0-based position in the export.
    pub index: u32,
    /// How many codes the export has (1 to [`MAX_BATCH_SIZE`]).
    pub size: u32,
}

/// One decoded QR code of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub batch: Batch,
    /// Every account in this code, in order, readable or not.
    pub entries: Vec<Entry>,
}

/// One account of an export: what it is called, and the account or why it
/// cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// "Issuer (name)" as the export names it, for reports.
    pub title: String,
    pub account: Result<Account, EntryError>,
}

/// Why an export could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the export's data is not base64")]
    Base64,
    #[error("the export's data is not a Google Authenticator export (protobuf: {0})")]
    Protobuf(String),
    #[error("the export says it is code {index} of {size}, which cannot be")]
    Batch { index: i32, size: i32 },
    #[error("the export says it is split over {0} codes; Google Authenticator never makes more than {MAX_BATCH_SIZE}")]
    BatchTooLarge(i32),
    #[error("the export holds no accounts")]
    Empty,
}

/// Why one account of an export cannot be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("it has no secret")]
    NoSecret,
    #[error("it uses {0}, which Countersign does not support")]
    Algorithm(&'static str),
    #[error("unknown hash algorithm number {0}")]
    UnknownAlgorithm(i32),
    #[error("unknown code length number {0}")]
    UnknownDigits(i32),
    #[error("unknown account type number {0}")]
    UnknownType(i32),
    #[error("its HOTP counter is negative ({0})")]
    Counter(i64),
}

/// Decodes the `data` parameter of an `otpauth-migration://offline` URI (as
/// [`crate::uri::parse`] returns it, already percent-decoded).
pub fn decode(data: &str) -> Result<Export, Error> {
    // A '+' that was not percent-encoded arrives as a space from form
    // decoding; base64 has no spaces, so put it back. URL-safe exports too.
    let cleaned: String = data
        .trim()
        .chars()
        .map(|c| match c {
            ' ' => '+',
            '-' => '+',
            '_' => '/',
            other => other,
        })
        .collect();
    // Padded or not, as exporters write it (some QR generators drop it).
    let mut bytes = crate::base64::decode_lenient(cleaned).map_err(|_| Error::Base64)?;
    let decoded = MigrationPayload::decode(bytes.as_slice());
    bytes.zeroize();
    let payload = decoded.map_err(|e| Error::Protobuf(e.to_string()))?;
    // A claimed size is only believed up to MAX_BATCH_SIZE: it sizes the
    // progress and missing-code reports.
    if payload.batch_size > MAX_BATCH_SIZE as i32 {
        return Err(Error::BatchTooLarge(payload.batch_size));
    }
    let size = payload.batch_size.max(1);
    if payload.batch_index < 0 || payload.batch_index >= size {
        return Err(Error::Batch { index: payload.batch_index, size: payload.batch_size });
    }
    if payload.otp_parameters.is_empty() {
        return Err(Error::Empty);
    }
    let batch = Batch { id: payload.batch_id, index: payload.batch_index as u32, size: size as u32 };
    let entries = payload.otp_parameters.iter().map(entry).collect();
    Ok(Export { batch, entries })
}

fn entry(parameters: &OtpParameters) -> Entry {
    // The name usually repeats the issuer as "Issuer:name".
    let issuer = parameters.issuer.trim();
    let (issuer, name) = match parameters.name.split_once(':') {
        Some((prefix, name)) if issuer.is_empty() || prefix.trim() == issuer => (prefix.trim(), name.trim()),
        _ => (issuer, parameters.name.trim()),
    };
    let mut account = Account::totp(&crate::account::storable_issuer(issuer), name, Secret::from_bytes(parameters.secret.clone()));
    let title = account.title();
    let result = (|| {
        if parameters.secret.is_empty() {
            return Err(EntryError::NoSecret);
        }
        account.algorithm = match parameters.algorithm {
            0 | 1 => Algorithm::Sha1,
            2 => Algorithm::Sha256,
            3 => Algorithm::Sha512,
            4 => return Err(EntryError::Algorithm("MD5")),
            other => return Err(EntryError::UnknownAlgorithm(other)),
        };
        account.digits = match parameters.digits {
            0 | 1 => 6,
            2 => 8,
            other => return Err(EntryError::UnknownDigits(other)),
        };
        account.method = match parameters.kind {
            // Unspecified: Google Authenticator itself treats it as TOTP.
            0 | 2 => Method::Totp { period: DEFAULT_PERIOD },
            1 => Method::Hotp { counter: u64::try_from(parameters.counter).map_err(|_| EntryError::Counter(parameters.counter))? },
            other => return Err(EntryError::UnknownType(other)),
        };
        Ok(account)
    })();
    Entry { title, account: result }
}

/// Whether Google Authenticator can hold the account: 30-second TOTP or
/// HOTP, 6 or 8 digits (not Steam).
pub fn fits(account: &Account) -> bool {
    let method = match account.method {
        Method::Totp { period } => period == DEFAULT_PERIOD,
        Method::Hotp { counter } => counter <= i64::MAX as u64,
        Method::Steam => false,
    };
    method && matches!(account.digits, 6 | 8)
}

/// Writes accounts as one `otpauth-migration://offline?data=...` URI.
/// Accounts Google Authenticator cannot hold (Steam, a period other than
/// 30 s, 7 digits) are returned in the second list instead.
pub fn encode(accounts: &[Account], batch: Batch) -> (String, Vec<&Account>) {
    let mut left_out = Vec::new();
    let mut payload = MigrationPayload {
        otp_parameters: Vec::new(),
        version: 1,
        batch_size: batch.size as i32,
        batch_index: batch.index as i32,
        batch_id: batch.id,
    };
    for account in accounts {
        if !fits(account) {
            left_out.push(account);
            continue;
        }
        let (kind, counter) = match account.method {
            Method::Hotp { counter } => (1, counter as i64),
            Method::Totp { .. } | Method::Steam => (2, 0),
        };
        let digits = if account.digits == 8 { 2 } else { 1 };
        let algorithm = match account.algorithm {
            Algorithm::Sha1 => 1,
            Algorithm::Sha256 => 2,
            Algorithm::Sha512 => 3,
        };
        let name = if account.issuer.is_empty() { account.name.clone() } else { format!("{}:{}", account.issuer, account.name) };
        payload.otp_parameters.push(OtpParameters {
            secret: account.secret.as_bytes().to_vec(),
            name,
            issuer: account.issuer.clone(),
            algorithm,
            digits,
            kind,
            counter,
        });
    }
    let mut bytes = payload.encode_to_vec();
    let data = crate::base64::encode(&bytes);
    bytes.zeroize();
    let uri =
        format!("otpauth-migration://offline?data={}", percent_encoding::utf8_percent_encode(&data, percent_encoding::NON_ALPHANUMERIC));
    (uri, left_out)
}

/// The codes of one or more exports, collected as they are scanned.
#[derive(Debug, Clone, Default)]
pub struct Batches {
    exports: BTreeMap<i32, BTreeMap<u32, Export>>,
    sizes: BTreeMap<i32, u32>,
}

/// The codes one export still lacks, as ranges of 1-based code numbers.
/// Its `Display` reads "code 2", "codes 2 and 4" or "codes 1, 3 to 9 and 12".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The export's `batch_id`.
    pub id: i32,
    /// Inclusive ranges, in order, never touching each other.
    pub ranges: Vec<(u32, u32)>,
}

impl Missing {
    /// How many codes are missing.
    pub fn count(&self) -> u64 {
        self.ranges.iter().map(|&(first, last)| u64::from(last - first) + 1).sum()
    }
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Two neighbours are listed one by one; longer runs as "A to B".
        let items: Vec<String> = self
            .ranges
            .iter()
            .flat_map(|&(first, last)| match last - first {
                0 => vec![first.to_string()],
                1 => vec![first.to_string(), last.to_string()],
                _ => vec![format!("{first} to {last}")],
            })
            .collect();
        f.write_str(if self.count() == 1 { "code " } else { "codes " })?;
        match items.split_last() {
            Some((last, [])) => f.write_str(last),
            Some((last, rest)) => write!(f, "{} and {last}", rest.join(", ")),
            None => Ok(()),
        }
    }
}

/// How far one export has been scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub id: i32,
    /// Distinct codes of this export seen so far.
    pub scanned: u32,
    pub size: u32,
}

impl Progress {
    pub fn is_complete(&self) -> bool {
        self.scanned >= self.size
    }
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of {} scanned", self.scanned, self.size)
    }
}

impl Batches {
    /// Adds one scanned code; scanning the same code twice changes nothing.
    /// A code whose export id matches but whose size differs starts being
    /// counted under the size first seen, and the mismatch is an error.
    pub fn add(&mut self, export: Export) -> Result<Progress, Error> {
        let Batch { id, index, size } = export.batch;
        let known = *self.sizes.entry(id).or_insert(size);
        if known != size {
            return Err(Error::Batch { index: index as i32, size: size as i32 });
        }
        self.exports.entry(id).or_default().entry(index).or_insert(export);
        Ok(self.progress(id))
    }

    fn progress(&self, id: i32) -> Progress {
        Progress {
            id,
            scanned: self.exports.get(&id).map_or(0, |parts| parts.len() as u32),
            size: self.sizes.get(&id).copied().unwrap_or(1),
        }
    }

    /// Every export seen, in id order.
    pub fn all_progress(&self) -> Vec<Progress> {
        self.sizes.keys().map(|&id| self.progress(id)).collect()
    }

    /// True when every export seen has all its codes.
    pub fn is_complete(&self) -> bool {
        self.all_progress().iter().all(Progress::is_complete)
    }

    /// The codes still missing, per export with any missing. Built from the
    /// gaps between the codes scanned, so its size follows what was
    /// scanned, never what a code claims.
    pub fn missing(&self) -> Vec<Missing> {
        self.sizes
            .iter()
            .filter_map(|(&id, &size)| {
                let parts = self.exports.get(&id)?;
                let mut ranges = Vec::new();
                let mut next = 0u32;
                for &index in parts.keys().chain(std::iter::once(&size)) {
                    if index > next {
                        ranges.push((next + 1, index));
                    }
                    next = index.saturating_add(1);
                }
                (!ranges.is_empty()).then_some(Missing { id, ranges })
            })
            .collect()
    }

    /// Every entry scanned, export by export, code by code.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.exports.values().flat_map(|parts| parts.values()).flat_map(|export| export.entries.iter())
    }

    pub fn is_empty(&self) -> bool {
        self.exports.is_empty()
    }
}

#[cfg(test)]
mod tests;
