//! `countersign import`, `export` and `backup`: moving accounts in and out,
//! and the automatic backups.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use countersign::backup;
use countersign::secret::Password;
use countersign::transfer::{self, ExportFormat, Format, Outcome, Plan, Problem};
use countersign::vault::{self, Duplicates, Vault};
use serde::Serialize;

use super::unlock::{self, Credentials};

/// Environment variable holding the password of a file being imported or exported.
pub const FILE_PASSWORD_ENV: &str = "COUNTERSIGN_FILE_PASSWORD";

#[derive(Args)]
pub struct ImportArgs {
    /// The export file: Aegis, 2FAS, andOTP, Bitwarden, FreeOTP+, Ente Auth, otpauth
    /// URIs, Google Authenticator migration URIs or a Countersign backup
    file: PathBuf,
    /// Read it as this format instead of detecting it
    #[arg(long, value_enum)]
    format: Option<ImportFormat>,
    /// Show what would be imported, and change nothing
    #[arg(long)]
    dry_run: bool,
    /// For accounts already in the vault, take the file's names and the higher
    /// HOTP counter instead of skipping them
    #[arg(long)]
    merge: bool,
    /// The file's password, from the first line of FILE (or set COUNTERSIGN_FILE_PASSWORD)
    #[arg(long, value_name = "FILE")]
    file_password_file: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum ImportFormat {
    Aegis,
    #[value(name = "2fas")]
    TwoFas,
    Andotp,
    Bitwarden,
    Freeotp,
    Ente,
    Uris,
    Google,
    Countersign,
}

impl From<ImportFormat> for Format {
    fn from(format: ImportFormat) -> Format {
        match format {
            ImportFormat::Aegis => Format::Aegis,
            ImportFormat::TwoFas => Format::TwoFas,
            ImportFormat::Andotp => Format::AndOtp,
            ImportFormat::Bitwarden => Format::Bitwarden,
            ImportFormat::Freeotp => Format::FreeOtpPlus,
            ImportFormat::Ente => Format::Ente,
            ImportFormat::Uris => Format::UriList,
            ImportFormat::Google => Format::GoogleMigration,
            ImportFormat::Countersign => Format::Countersign,
        }
    }
}

#[derive(Args)]
pub struct ExportArgs {
    /// countersign and aegis-encrypted are password-protected; aegis, uris and
    /// google-qr hold the secrets in the clear
    #[arg(long, value_enum)]
    format: ExportFormatArg,
    /// The file to write (for google-qr: a folder of PNG images)
    out: PathBuf,
    /// Confirm that secrets may be written in the clear
    #[arg(long)]
    reveal: bool,
    /// The export's password, from the first line of FILE (or set COUNTERSIGN_FILE_PASSWORD)
    #[arg(long, value_name = "FILE")]
    file_password_file: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormatArg {
    Countersign,
    AegisEncrypted,
    Aegis,
    Uris,
    GoogleQr,
}

impl From<ExportFormatArg> for ExportFormat {
    fn from(format: ExportFormatArg) -> ExportFormat {
        match format {
            ExportFormatArg::Countersign => ExportFormat::Countersign,
            ExportFormatArg::AegisEncrypted => ExportFormat::AegisEncrypted,
            ExportFormatArg::Aegis => ExportFormat::Aegis,
            ExportFormatArg::Uris => ExportFormat::UriList,
            ExportFormatArg::GoogleQr => ExportFormat::GoogleQr,
        }
    }
}

#[derive(Subcommand)]
pub enum BackupCommand {
    /// Decrypt the newest backup and compare it with the vault
    Verify,
    /// List the backups, newest first, and the last verification
    List,
    /// Replace the vault with a backup (the current vault is backed up first)
    Restore {
        /// A backup file (from `backup list`)
        file: PathBuf,
        /// Do not ask for confirmation
        #[arg(long, short)]
        yes: bool,
    },
}

/// Where scripts give an import or export file's password (not the vault's).
const FILE_PASSWORD: unlock::Scripted =
    unlock::Scripted { flag: "--file-password-file", env: FILE_PASSWORD_ENV, what: "the file's password" };

/// The password of an import or export file: a file, the environment, or a prompt.
fn file_password(file: Option<&Path>, prompt: &str, twice: bool) -> Result<Password> {
    if let Some(file) = file {
        return unlock::read_password_file(file);
    }
    if let Ok(text) = std::env::var(FILE_PASSWORD_ENV) {
        return Ok(Password::new(text));
    }
    let password = unlock::prompt_password(prompt, FILE_PASSWORD)?;
    if twice && unlock::prompt_password("Repeat it: ", FILE_PASSWORD)?.as_bytes() != password.as_bytes() {
        bail!("the two passwords differ; nothing was written");
    }
    Ok(password)
}

#[derive(Serialize)]
struct ReportLine<'a> {
    title: &'a str,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// Reads the file (asking for its password if it is encrypted), then
/// previews or imports, and prints a line per entry.
pub fn import(open: impl FnOnce() -> Result<Vault>, args: ImportArgs, now: u64) -> Result<()> {
    let format = args.format.map(Format::from);
    // Read the file before the vault: a bad file should not cost a vault prompt.
    let contents = match transfer::open(&args.file, format, None) {
        Err(transfer::Error { problem: Problem::PasswordNeeded(_), .. }) => {
            let password = file_password(args.file_password_file.as_deref(), &format!("Password of {}: ", args.file.display()), false)?;
            transfer::open(&args.file, format, Some(&password))?
        }
        other => other?,
    };
    for note in &contents.notes {
        eprintln!("countersign: note: {note}");
    }
    let mut vault = open()?;
    let described = format!("{} ({}{})", args.file.display(), contents.format, if contents.encrypted { ", encrypted" } else { "" });
    if args.dry_run {
        let plan = transfer::preview(&contents, vault.entries());
        let lines: Vec<ReportLine> = contents
            .items
            .iter()
            .zip(&plan)
            .map(|(item, plan)| match plan {
                Plan::New => ReportLine { title: &item.title, outcome: "new", reason: None },
                Plan::InVault(_) if args.merge => {
                    ReportLine { title: &item.title, outcome: "merge", reason: Some("already in the vault".into()) }
                }
                Plan::InVault(_) => ReportLine { title: &item.title, outcome: "skip", reason: Some("already in the vault".into()) },
                Plan::RepeatedInFile => {
                    ReportLine { title: &item.title, outcome: "skip", reason: Some("repeats an earlier entry of the file".into()) }
                }
                Plan::Skipped(skip) => ReportLine { title: &item.title, outcome: "skip", reason: Some(skip.to_string()) },
            })
            .collect();
        let new = lines.iter().filter(|line| line.outcome == "new").count();
        return print_report(
            &lines,
            args.json,
            &format!("Dry run of {described}: {new} of {} entries would be imported; nothing was changed.", lines.len()),
        );
    }
    let duplicates = if args.merge { Duplicates::Merge } else { Duplicates::Skip };
    let report = transfer::import(&mut vault, &contents, duplicates, now)?;
    warn_backup(&vault);
    let lines: Vec<ReportLine> = report
        .iter()
        .map(|(title, outcome)| {
            let (word, reason) = match outcome {
                Outcome::Added => ("imported", None),
                Outcome::Merged => ("merged", Some("updated the account already in the vault".to_owned())),
                Outcome::AlreadyThere => ("skipped", Some("already in the vault".to_owned())),
                Outcome::Skipped(skip) => ("skipped", Some(skip.to_string())),
            };
            ReportLine { title, outcome: word, reason }
        })
        .collect();
    let imported = lines.iter().filter(|line| line.outcome != "skipped").count();
    // Nothing added or merged: the vault was neither saved nor backed up.
    let unchanged = if imported == 0 { "; the vault was not changed" } else { "" };
    let summary = format!("{described}: {imported} of {} entries imported{unchanged}.", lines.len());
    print_report(&lines, args.json, &summary)?;
    if imported == 0 {
        bail!("nothing was imported from {}{unchanged}", args.file.display());
    }
    Ok(())
}

fn print_report(lines: &[ReportLine], json: bool, summary: &str) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(lines)?);
        return Ok(());
    }
    for line in lines {
        match &line.reason {
            Some(reason) => println!("{:<9} {}: {reason}", line.outcome, line.title),
            None => println!("{:<9} {}", line.outcome, line.title),
        }
    }
    println!("{summary}");
    Ok(())
}

/// Writes an export; formats in the clear need `--reveal`, and an existing
/// file is never overwritten.
pub fn export(vault: &Vault, args: ExportArgs) -> Result<()> {
    let format = ExportFormat::from(args.format);
    if !format.is_encrypted() && !args.reveal {
        bail!(
            "{format} holds every secret key in the clear; add --reveal to confirm, or export with --format countersign or aegis-encrypted"
        );
    }
    if args.out.exists() {
        bail!("{} already exists; it was left untouched. Choose another name", args.out.display());
    }
    let password = match format.is_encrypted() {
        true => Some(file_password(args.file_password_file.as_deref(), "Password for the export: ", true)?),
        false => None,
    };
    if password.as_ref().is_some_and(Password::is_empty) {
        bail!("the export's password is empty; nothing was written");
    }
    let saved = transfer::export_to(&args.out, format, vault.entries(), password.as_ref())?;
    for (title, why) in &saved.left_out {
        eprintln!("countersign: left out {title}: {why}");
    }
    for path in &saved.files {
        println!("{}", path.display());
    }
    println!("Exported {} of {} accounts as {format}.", saved.exported, saved.of);
    Ok(())
}

/// `backup verify|list|restore`.
pub fn backup(
    command: BackupCommand,
    credentials: &Credentials,
    vault_path: &Path,
    policy: Option<backup::Policy>,
    open: impl FnOnce() -> Result<Vault>,
) -> Result<()> {
    let dir = policy.as_ref().map(|p| p.dir.clone()).unwrap_or_else(|| backup::default_dir(vault_path));
    match command {
        BackupCommand::Verify => {
            let mut vault = open()?;
            let backup::Verification { backup: newest, verified } = vault.verify_backup(super::now()?)?;
            println!(
                "{} (taken {}) decrypts and matches the vault: {} accounts. It restores.",
                newest.path.display(),
                newest.taken(),
                verified.accounts
            );
            Ok(())
        }
        BackupCommand::List => {
            let backups = backup::list(&dir, vault_path)?;
            if policy.is_none() {
                println!("Automatic backups are off (backup_keep is 0 in the settings).");
            }
            if backups.is_empty() {
                println!("No backups in {} yet: one is taken after the next change.", dir.display());
            }
            for backup in &backups {
                println!("{}  {}", backup.taken(), backup.path.display());
            }
            match backup::last_verified(&dir) {
                Some(verified) => {
                    println!("Last verified restorable: {} ({}, {} accounts).", verified.when(), verified.file, verified.accounts);
                }
                None => println!("Never verified: run `countersign backup verify`."),
            }
            Ok(())
        }
        BackupCommand::Restore { file, yes } => {
            if !file.is_file() {
                bail!("no backup at {}", file.display());
            }
            let question = format!(
                "Replace the vault at {} with the backup {}? The current vault is first copied to {}.",
                vault_path.display(),
                file.display(),
                dir.display()
            );
            if !yes && !super::confirm(&question)? {
                println!("Kept the current vault.");
                return Ok(());
            }
            let restored = credentials.open(&file)?;
            let accounts = restored.entries().len();
            let copies = policy.clone().unwrap_or(backup::Policy { dir: dir.clone(), keep: usize::MAX });
            let vault = vault::restore(restored, vault_path, &copies, policy, super::now()?)?;
            println!("Restored {} accounts from {} into {}.", accounts, file.display(), vault.path().display());
            Ok(())
        }
    }
}

/// A save succeeded but its backup copy did not: say so, without failing.
pub fn warn_backup(vault: &Vault) {
    if let Some(problem) = vault.backup_problem() {
        eprintln!("countersign: warning: saved, but no backup was taken: {problem}");
    }
}
