//! Text exports with one URI per line: otpauth URI lists (FreeOTP+'s URI
//! export, many scripts), Ente Auth's plain-text export (otpauth URIs with
//! Ente's extra `codeDisplay` parameter, which is ignored), and Google
//! Authenticator `otpauth-migration://` URIs. Blank lines are skipped; any
//! other line that is not a usable URI becomes a skipped entry, never a
//! silent drop.

use super::{Export, ExportError, Exported, Format, Item, Problem, Skip};
use crate::account::Account;
use crate::migration::{self, Batch, Batches};
use crate::uri::{self, Payload};
use crate::vault::Entry;

/// Accounts per Google export code: keeps each QR code easy to scan.
const GOOGLE_BATCH: usize = 8;

pub(super) fn detect(text: &str) -> Option<(Format, bool)> {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|line| !line.is_empty()).collect();
    let scheme = |line: &str, scheme: &str| line.get(..scheme.len()).is_some_and(|start| start.eq_ignore_ascii_case(scheme));
    // Mostly URIs: a stray line becomes a skipped entry rather than making
    // the whole file unrecognised.
    let uris = lines.iter().filter(|line| line.contains("://")).count();
    if uris == 0 || uris * 2 < lines.len() {
        return None;
    }
    let migration = lines.iter().filter(|line| scheme(line, "otpauth-migration://")).count();
    if migration == uris {
        return Some((Format::GoogleMigration, false));
    }
    if !lines.iter().any(|line| scheme(line, "otpauth://")) {
        return None;
    }
    let ente = lines.iter().any(|line| line.contains("codeDisplay="));
    Some((if ente { Format::Ente } else { Format::UriList }, false))
}

/// Every line as entries; Google export lines expand to their accounts.
/// The notes say which codes of a multi-code Google export are missing.
pub(super) fn read(bytes: &[u8]) -> Result<(Vec<Item>, Vec<String>), Problem> {
    let text = std::str::from_utf8(bytes).map_err(|_| Problem::Damaged("it is not UTF-8 text".into()))?;
    let mut items = Vec::new();
    let mut batches = Batches::default();
    for (number, line) in text.lines().enumerate().map(|(index, line)| (index + 1, line.trim())) {
        if line.is_empty() {
            continue;
        }
        let line_title = format!("line {number}");
        match uri::parse(line) {
            Ok(Payload::Account { account, .. }) => items.push(Item { title: account.title(), account: Ok(account) }),
            Ok(Payload::GoogleExport { data }) => match migration::decode(&data) {
                Ok(export) => {
                    items.extend(
                        export
                            .entries
                            .iter()
                            .map(|entry| Item { title: entry.title.clone(), account: entry.account.clone().map_err(Skip::Google) }),
                    );
                    // Repeated codes are harmless: importing dedupes them.
                    let _ = batches.add(export);
                }
                Err(error) => items.push(Item { title: line_title, account: Err(Skip::GoogleExport(error)) }),
            },
            Ok(other) => items.push(Item { title: line_title, account: Err(Skip::NotAnAccount(other.describe())) }),
            Err(error) => items.push(Item { title: line_title, account: Err(Skip::Uri(error)) }),
        }
    }
    let notes = batches
        .missing()
        .into_iter()
        .map(|missing| {
            let verb = if missing.count() == 1 { "is" } else { "are" };
            format!("a Google Authenticator export split over several codes is incomplete: {missing} {verb} missing, so its accounts are not here")
        })
        .collect();
    Ok((items, notes))
}

/// One `otpauth://` URI per line, secrets included.
pub(super) fn write_uris(entries: &[Entry]) -> Vec<u8> {
    let mut text = String::new();
    for entry in entries {
        text.push_str(&uri::format(&entry.account));
        text.push('\n');
    }
    text.into_bytes()
}

/// The texts of Google Authenticator export codes, [`GOOGLE_BATCH`]
/// accounts each, and the accounts it cannot hold (with why).
pub(super) fn google_codes(entries: &[Entry]) -> Result<super::GoogleCodes, ExportError> {
    let (fits, left_out): (Vec<&Entry>, Vec<&Entry>) = entries.iter().partition(|entry| migration::fits(&entry.account));
    if fits.is_empty() {
        return Err(ExportError::NothingFits(super::ExportFormat::GoogleQr));
    }
    let chunks: Vec<&[&Entry]> = fits.chunks(GOOGLE_BATCH).collect();
    let id = i32::from_be_bytes(super::crypto::random::<4>().map_err(|e| ExportError::Failed(e.to_string()))?) & i32::MAX;
    let texts = chunks
        .iter()
        .enumerate()
        .map(|(index, chunk)| {
            let accounts: Vec<Account> = chunk.iter().map(|entry| entry.account.clone()).collect();
            migration::encode(&accounts, Batch { id, index: index as u32, size: chunks.len() as u32 }).0
        })
        .collect();
    let left_out = left_out
        .into_iter()
        .map(|entry| (entry.account.title(), "Google Authenticator holds only 30-second TOTP and HOTP accounts with 6 or 8 digits"))
        .collect();
    Ok((texts, left_out))
}

/// [`google_codes`] as PNG files named `google-authenticator-K-of-N.png`.
pub(super) fn write_google_qr(entries: &[Entry]) -> Result<Export, ExportError> {
    let (texts, left_out) = google_codes(entries)?;
    let count = texts.len();
    let files = texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            Ok(Exported { name: format!("google-authenticator-{}-of-{count}.png", index + 1), bytes: super::qr_png(text)?.into() })
        })
        .collect::<Result<_, ExportError>>()?;
    Ok(Export { files, folder: true, left_out })
}
