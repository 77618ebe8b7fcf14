//! `countersign scan` and `countersign add --uri/--qr`: from QR images and
//! enrollment payloads to accounts, with a report line per account.

use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use countersign::account::Account;
use countersign::migration::{self, Batches};
use countersign::scan;
use countersign::uri::{self, Payload};
use countersign::vault::{Imported, Vault};
use serde::Serialize;

/// A payload and where it came from ("photo.png", "--uri").
pub struct Found {
    pub source: String,
    pub text: String,
}

#[derive(Serialize)]
struct Scanned<'a> {
    file: String,
    payloads: &'a [String],
}

/// Prints every payload in every image, one per line (or JSON). Images with
/// no code are not an error; unreadable ones are, after the others are done.
/// `scan --screen`: every QR payload on the screen, like a list of images.
#[cfg(feature = "gui")]
pub fn scan_screen(json: bool) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let payloads = runtime.block_on(countersign::screen::scan())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&[Scanned { file: "screen".into(), payloads: &payloads }])?);
    } else if payloads.is_empty() {
        eprintln!("countersign: no QR code found on the screen");
    } else {
        payloads.iter().for_each(|p| println!("{p}"));
    }
    Ok(())
}

#[cfg(not(feature = "gui"))]
pub fn scan_screen(_json: bool) -> Result<()> {
    anyhow::bail!("this build has no desktop support (feature gui): it cannot read the screen")
}

pub fn scan(images: &[PathBuf], json: bool) -> Result<()> {
    let mut failed = 0;
    let mut report = Vec::new();
    for image in images {
        match scan::file(image) {
            Ok(payloads) => {
                if payloads.is_empty() && !json {
                    eprintln!("countersign: no QR code found in {}", image.display());
                }
                if json {
                    report.push((image.display().to_string(), payloads));
                } else {
                    payloads.iter().for_each(|p| println!("{p}"));
                }
            }
            Err(error) => {
                eprintln!("countersign: {}: {error}", image.display());
                failed += 1;
            }
        }
    }
    if json {
        let scanned: Vec<Scanned> = report.iter().map(|(file, payloads)| Scanned { file: file.clone(), payloads }).collect();
        println!("{}", serde_json::to_string_pretty(&scanned)?);
    }
    match failed {
        0 => Ok(()),
        n => bail!("{n} of {} images could not be read", images.len()),
    }
}

/// Every payload in the images; an unreadable image stops everything before
/// the vault is touched.
pub fn from_images(images: &[PathBuf]) -> Result<Vec<Found>> {
    let mut found = Vec::new();
    for image in images {
        let payloads = scan::file(image)?;
        if payloads.is_empty() {
            eprintln!("countersign: no QR code found in {}", image.display());
        }
        found.extend(payloads.into_iter().map(|text| Found { source: image.display().to_string(), text }));
    }
    Ok(found)
}

/// Adds what the payloads hold: plain accounts and Google Authenticator
/// exports (whole batches, or partial ones with `partial`). Prints one line
/// per account; fails when nothing was added.
pub fn add(vault: &mut Vault, found: Vec<Found>, partial: bool, now: u64) -> Result<()> {
    let mut accounts: Vec<Account> = Vec::new();
    let mut titles: Vec<String> = Vec::new();
    let mut skipped = 0usize;
    let mut batches = Batches::default();
    let mut pipush = Vec::new();
    let read_at = jiff::Timestamp::now().as_second();
    for Found { source, text } in &found {
        match uri::parse(text) {
            Ok(Payload::Account { account, warnings }) => {
                for warning in warnings {
                    eprintln!("countersign: warning: {}: {warning}", account.title());
                }
                titles.push(account.title());
                accounts.push(account);
            }
            Ok(Payload::GoogleExport { data }) => {
                let export = migration::decode(&data).map_err(|e| anyhow!("{source}: {e}"))?;
                batches.add(export).map_err(|e| anyhow!("{source}: {e}"))?;
            }
            Ok(Payload::WorkActivation { code, url }) => {
                println!(
                    "Skipped {source}: a work or school account activation (Code {code}, URL {url}); activate it with `countersign activate --qr {source}`"
                );
                skipped += 1;
            }
            Ok(Payload::PrivacyIdeaPush { label, parameters }) => pipush.push((source.clone(), label, parameters)),
            Err(error) => {
                // Only the scheme: a broken otpauth URI still holds a secret.
                println!("Skipped {source}: not an enrollment code: {error} (a {} payload)", scheme(text));
                skipped += 1;
            }
        }
    }
    for progress in batches.all_progress() {
        println!("Google Authenticator export: {progress}");
    }
    if !batches.is_complete() {
        let missing: Vec<String> = batches.missing().iter().map(ToString::to_string).collect();
        let missing = missing.join("; ");
        let readable = batches.entries().filter(|e| e.account.is_ok()).count();
        if !partial {
            bail!(
                "the Google Authenticator export is incomplete ({missing} missing); nothing was added. Give the images of every code in one command, or add --partial to add the {readable} accounts scanned so far"
            );
        }
        eprintln!("countersign: warning: adding a partial export; {missing} not scanned");
    }
    for entry in batches.entries() {
        match &entry.account {
            Ok(account) => {
                titles.push(account.title());
                accounts.push(account.clone());
            }
            Err(why) => {
                println!("Skipped {}: {why}", entry.title);
                skipped += 1;
            }
        }
    }
    let offered = accounts.len() + skipped + pipush.len();
    let outcome = if accounts.is_empty() { Vec::new() } else { vault.import(accounts, now, countersign::vault::Duplicates::Skip)? };
    let mut added = 0;
    // privacyIDEA PUSH tokens: each enrollment is finished with its server.
    for (source, label, parameters) in &pipush {
        match super::push::enroll_privacyidea(vault, label, parameters, read_at) {
            Ok(()) => added += 1,
            Err(error) => println!("Skipped {source}: {error:#}"),
        }
    }
    for (title, imported) in titles.iter().zip(&outcome) {
        match imported {
            Imported::Added(id) => {
                println!("Added {title} [{id}]");
                added += 1;
            }
            // Merging is never asked for here.
            Imported::AlreadyThere(id) | Imported::Merged(id) => println!("Skipped {title}: already in the vault [{id}]"),
        }
    }
    match (added, offered) {
        (_, 0) => bail!("no account was found to add"),
        (0, _) => bail!("nothing was added; the vault was not changed"),
        (added, offered) if offered > 1 => {
            println!("Added {added} of {offered} accounts.");
            Ok(())
        }
        _ => Ok(()),
    }
}

/// What a payload starts with, for a report line: "otpauth", "https", or
/// "text" when it has no URI scheme.
fn scheme(text: &str) -> String {
    match text.split_once("://") {
        Some((scheme, _))
            if !scheme.is_empty() && scheme.len() <= 32 && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            scheme.to_ascii_lowercase()
        }
        _ => "text".into(),
    }
}
