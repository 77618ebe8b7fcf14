//! The `countersign` command line: clap definitions and one function per subcommand.

mod enroll;
mod manual;
mod push;
mod transfer;
mod unlock;

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use countersign::account::{Account, Algorithm, DEFAULT_PERIOD, Method, STEAM_DIGITS};
use countersign::otp;
use countersign::secret::Secret;
use countersign::uri::{self, Payload};
use countersign::vault::{self, Entry, Kdf, Protection, Vault};
use serde::Serialize;

use unlock::Credentials;

const SCRIPTING: &str = "\
Scripts: pass the vault password with --password-file FILE (or COUNTERSIGN_PASSWORD_FILE),
or put the password itself in COUNTERSIGN_PASSWORD. The environment is visible to other
processes of the same user, so prefer a file readable only by you.";

/// Countersign: an authenticator for the desktop and for scripts.
#[derive(Parser)]
#[command(name = "countersign", version, about, after_help = SCRIPTING)]
struct Cli {
    /// The vault file [default: the platform data directory]
    #[arg(long, global = true, env = "COUNTERSIGN_VAULT", value_name = "PATH")]
    vault: Option<PathBuf>,
    /// Read the vault password from the first line of FILE
    #[arg(long, global = true, env = "COUNTERSIGN_PASSWORD_FILE", value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Do not use the OS keyring, not even to unlock
    #[arg(long, global = true)]
    no_keyring: bool,
    /// With no command: start in the background, with no window (as at
    /// login), receiving sign-in requests until Quit; nothing happens when
    /// Countersign already runs on this vault
    #[arg(long)]
    background: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new vault, protected by the OS keyring and/or a password
    Init(InitArgs),
    /// Add accounts from QR code images, an otpauth or otpauth-migration URI, or fields
    Add(AddArgs),
    /// Print every QR code payload found in images, one per line
    Scan {
        /// PNG, JPEG, WebP, BMP or GIF files
        #[arg(required_unless_present = "screen", value_name = "IMAGE")]
        images: Vec<PathBuf>,
        /// Scan the screen instead (X11, or the desktop portal's screenshot on Wayland)
        #[arg(long, conflicts_with = "images")]
        screen: bool,
        /// Print JSON: each file with its payloads
        #[arg(long)]
        json: bool,
    },
    /// List the accounts (no secrets)
    List(JsonFlag),
    /// Print current codes and the seconds they stay valid
    Code(CodeArgs),
    /// Decode any enrollment payload and print every field and warning
    Inspect {
        /// An otpauth://, otpauth-migration://, phonefactor:// or activation URI; - reads stdin
        payload: String,
    },
    /// Remove an account
    Remove {
        /// Account id, or text matching exactly one issuer or account name
        query: String,
        /// Do not ask for confirmation
        #[arg(long, short)]
        yes: bool,
    },
    /// Change an account's issuer or name
    Rename {
        /// Account id, or text matching exactly one issuer or account name
        query: String,
        #[arg(long)]
        issuer: Option<String>,
        #[arg(long)]
        account: Option<String>,
    },
    /// Set or change the password (this also replaces the master key)
    Passwd(PasswdArgs),
    /// Let the OS keyring unlock the vault without a prompt, or stop it
    Keyring {
        #[arg(value_enum)]
        state: OnOff,
    },
    /// Activate a work or school account (push approvals) with the Code and URL, or the QR image
    Activate(push::ActivateArgs),
    /// Sign-in requests of work or school accounts: watch, approve, deny, report
    Push {
        #[command(subcommand)]
        command: push::PushCommand,
    },
    /// A virtual phone for testing texts and calls: attach a number, watch, press keys, reply
    Phone {
        #[command(subcommand)]
        command: push::PhoneCommand,
    },
    /// Import accounts from another app's export or a Countersign backup
    Import(transfer::ImportArgs),
    /// Export every account to a file (encrypted, or in the clear with --reveal)
    Export(transfer::ExportArgs),
    /// The automatic backups: verify the newest, list them, restore one
    Backup {
        #[command(subcommand)]
        command: transfer::BackupCommand,
    },
    /// End the Countersign running on this vault (its window and its background part)
    Quit,
    /// Whether Countersign starts in the background at login: on, off, or
    /// default (on once a work or school account exists); prints the state
    Autostart {
        #[arg(value_enum)]
        state: Option<AutostartState>,
    },
    /// Print an account's otpauth URI, secret included
    Uri {
        /// Account id, or text matching exactly one issuer or account name
        query: String,
        /// Confirm that the secret may be printed
        #[arg(long)]
        reveal: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum AutostartState {
    On,
    Off,
    Default,
}

#[derive(Args)]
struct JsonFlag {
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct KdfArgs {
    /// Argon2id memory for the password slot, in MiB (at least 19)
    #[arg(long, default_value_t = 64, value_name = "MIB", value_parser = clap::value_parser!(u32).range(1..=(Kdf::MAX_MEMORY_KIB / 1024) as i64))]
    kdf_memory: u32,
    /// Argon2id passes for the password slot (at least 2)
    #[arg(long, default_value_t = 3, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=Kdf::MAX_PASSES as i64))]
    kdf_passes: u32,
    /// For tests only: accept Argon2id costs under the floor, with a warning
    #[arg(long, hide = true)]
    insecure_kdf: bool,
}

impl KdfArgs {
    /// The parameters, refused under OWASP's floor ([`Kdf::check_strength`])
    /// unless `--insecure-kdf` is given. Debug builds only warn: the
    /// integration tests' shared helper (tests/common) makes its vaults with
    /// 1 MiB and 1 pass so that hundreds of processes stay fast.
    fn kdf(&self) -> Result<Kdf> {
        checked_kdf(
            Kdf { memory_kib: self.kdf_memory * 1024, passes: self.kdf_passes, lanes: 1 },
            self.insecure_kdf || cfg!(debug_assertions),
        )
    }
}

fn checked_kdf(kdf: Kdf, allow_weak: bool) -> Result<Kdf> {
    match kdf.check_strength() {
        Ok(()) => Ok(kdf),
        Err(error) if allow_weak => {
            eprintln!("countersign: warning: {error} (allowed for tests)");
            Ok(kdf)
        }
        Err(error) => Err(error.into()),
    }
}

#[derive(Args)]
struct InitArgs {
    /// Protect the vault with a password (asked for, or from --password-file)
    #[arg(long)]
    password: bool,
    /// Require the OS keyring slot; fail if no keyring answers
    #[arg(long, conflicts_with = "no_keyring")]
    keyring: bool,
    #[command(flatten)]
    kdf: KdfArgs,
}

#[derive(Args)]
struct AddArgs {
    /// An otpauth:// or otpauth-migration:// URI, as a QR code carries it; - reads it from stdin
    #[arg(long, conflicts_with_all = ["issuer", "account", "secret", "qr"], required_unless_present_any = ["secret", "qr"])]
    uri: Option<String>,
    /// Images of QR codes: every account in them is added. Give all the codes
    /// of a Google Authenticator export at once
    #[arg(long, num_args = 1.., value_name = "IMAGE", conflicts_with_all = ["issuer", "account", "secret"])]
    qr: Vec<PathBuf>,
    /// Add the accounts of a Google Authenticator export even if some of its codes are missing
    #[arg(long)]
    partial: bool,
    /// Who issued the account (GitHub, ...)
    #[arg(long)]
    issuer: Option<String>,
    /// The account name (alice@example.com)
    #[arg(long, requires = "secret")]
    account: Option<String>,
    /// The Base32 secret key; - reads it from stdin (keeps it out of `ps`)
    #[arg(long, requires = "account")]
    secret: Option<String>,
    #[arg(long = "type", value_enum, default_value_t = Kind::Totp)]
    kind: Kind,
    #[arg(long, value_enum, default_value_t = AlgorithmArg::Sha1)]
    algorithm: AlgorithmArg,
    #[arg(long, default_value_t = 6)]
    digits: u8,
    /// TOTP period in seconds
    #[arg(long, default_value_t = DEFAULT_PERIOD)]
    period: u64,
    /// HOTP counter of the first code
    #[arg(long, default_value_t = 0)]
    counter: u64,
}

#[derive(Args)]
struct CodeArgs {
    /// Text matching issuer or account name (case-insensitive); all accounts if omitted
    query: Option<String>,
    /// The instant: Unix seconds or RFC 3339 (2026-11-23T12:00:00Z) [default: now]
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Advance an HOTP account to its next code and print it
    #[arg(long)]
    next: bool,
    /// Compute from this otpauth URI instead of the vault (no vault needed)
    #[arg(long, conflicts_with_all = ["query", "next"])]
    uri: Option<String>,
    /// Print only the code(s), one per line
    #[arg(long, short, conflicts_with = "json")]
    quiet: bool,
    /// Print JSON
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct PasswdArgs {
    /// Remove the password slot (the OS keyring slot must exist)
    #[arg(long, conflicts_with = "new_password_file")]
    remove: bool,
    /// Read the new password from the first line of FILE (or set COUNTERSIGN_NEW_PASSWORD)
    #[arg(long, value_name = "FILE")]
    new_password_file: Option<PathBuf>,
    #[command(flatten)]
    kdf: KdfArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    Totp,
    Hotp,
    Steam,
}

#[derive(Clone, Copy, ValueEnum)]
enum AlgorithmArg {
    #[value(name = "SHA1", alias = "sha1")]
    Sha1,
    #[value(name = "SHA256", alias = "sha256")]
    Sha256,
    #[value(name = "SHA512", alias = "sha512")]
    Sha512,
}

/// Runs the command line; errors become one line on stderr and exit code 1.
pub fn main() -> ExitCode {
    if let Some(result) = manual::requested(Cli::command()) {
        return result;
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("countersign: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let credentials = Credentials { password_file: cli.password_file, no_keyring: cli.no_keyring };
    let vault_path = || -> Result<PathBuf> {
        cli.vault.clone().or_else(vault::default_path).ok_or_else(|| anyhow!("no data directory is known for this user; pass --vault PATH"))
    };
    let Some(command) = cli.command else {
        return window(vault_path()?, cli.background, cli.vault.is_some());
    };
    if cli.background {
        bail!("--background starts Countersign with no window; it takes no command");
    }
    let settings =
        countersign::settings::Settings::path_from_env().map(|path| countersign::settings::Settings::load(&path)).unwrap_or_default();
    // Every opened vault keeps its automatic backups, whatever the command.
    let open = || -> Result<Vault> {
        let path = vault_path()?;
        let mut vault = credentials.open(&path)?;
        vault.set_backups(settings.backup_policy(&path));
        Ok(vault)
    };
    match command {
        Command::Init(args) => init(&vault_path()?, &credentials, args),
        Command::Add(mut args) => {
            // Read the payloads first: a bad file or URI should not cost a
            // password prompt. Images and Google exports are imports (several
            // accounts, duplicates skipped); one otpauth URI or the fields
            // add exactly the account given.
            let uri_text = args.uri.take().map(|text| read_argument(&text)).transpose()?;
            let imports = match (&uri_text, args.qr.is_empty()) {
                (Some(text), _) => match uri::parse(text)? {
                    Payload::Account { account, warnings } => {
                        for warning in warnings {
                            eprintln!("countersign: warning: {warning}");
                        }
                        return saving(&mut open()?, |vault| add(vault, account));
                    }
                    Payload::GoogleExport { .. } => vec![enroll::Found { source: "--uri".into(), text: text.clone() }],
                    Payload::PrivacyIdeaPush { label, parameters } => {
                        let read_at = jiff::Timestamp::now().as_second();
                        return saving(&mut open()?, |vault| push::enroll_privacyidea(vault, &label, &parameters, read_at));
                    }
                    other => return Err(not_supported_yet(&other)),
                },
                (None, false) => enroll::from_images(&args.qr)?,
                (None, true) => return saving(&mut open()?, |vault| add(vault, account_from_fields(&args)?)),
            };
            saving(&mut open()?, |vault| enroll::add(vault, imports, args.partial, now()?))
        }
        Command::Scan { images, screen: false, json } => enroll::scan(&images, json),
        Command::Scan { screen: true, json, .. } => enroll::scan_screen(json),
        Command::List(JsonFlag { json }) => list(&open()?, json),
        Command::Code(args) => match &args.uri {
            Some(text) => code_from_uri(text, &args),
            None => saving(&mut open()?, |vault| code(vault, &args)),
        },
        Command::Inspect { payload } => inspect(&read_argument(&payload)?),
        Command::Remove { query, yes } => saving(&mut open()?, |vault| remove(vault, &query, yes)),
        Command::Rename { query, issuer, account } => saving(&mut open()?, |vault| rename(vault, &query, issuer, account)),
        Command::Passwd(args) => saving(&mut open()?, |vault| passwd(vault, &credentials, args)),
        Command::Keyring { state } => {
            let mut vault = open()?;
            let keyring = credentials.keyring()?;
            let copies = vault.set_keyring(matches!(state, OnOff::On), &keyring, now()?)?;
            if let Some(summary) = copies.summary() {
                println!("Older copies: {summary}.");
            }
            transfer::warn_backup(&vault);
            println!("OS keyring unlock is {}", if vault.has_keyring() { "on" } else { "off" });
            Ok(())
        }
        Command::Activate(args) => {
            let target = push::activation_target(&args)?;
            let now = now()?;
            saving(&mut open()?, |vault| push::activate(vault, &args, target, now, !credentials.no_keyring))
        }
        Command::Push { command } => {
            let vault = open()?;
            let interval = settings.poll_interval();
            match command {
                push::PushCommand::Watch(push::WatchArgs { which, json, count, timeout }) => {
                    push::watch(&vault, &which, json, count, timeout, interval)
                }
                push::PushCommand::Approve(answer) => {
                    push::answer(&vault, &answer, countersign::push::Decision::Approve, interval, || verify_password(&credentials, &vault))
                }
                push::PushCommand::Deny(answer) => push::answer(&vault, &answer, countersign::push::Decision::Deny, interval, || Ok(())),
                push::PushCommand::Report(answer) => {
                    push::answer(&vault, &answer, countersign::push::Decision::Report, interval, || Ok(()))
                }
                push::PushCommand::History { json } => push::history(&vault, json),
            }
        }
        Command::Phone { command } => push::phone(&open()?, command),
        Command::Quit => quit(&vault_path()?),
        Command::Autostart { state } => autostart(vault_path()?, cli.vault.is_some(), state, &settings_path()?),
        Command::Import(args) => transfer::import(open, args, now()?),
        Command::Export(args) => transfer::export(&open()?, args),
        Command::Backup { command } => {
            let path = vault_path()?;
            transfer::backup(command, &credentials, &path, settings.backup_policy(&path), open)
        }
        Command::Uri { query, reveal } => {
            if !reveal {
                bail!("this prints the secret key in the clear; add --reveal to confirm");
            }
            let vault = open()?;
            println!("{}", uri::format(&find_one(&vault, &query)?.account));
            Ok(())
        }
    }
}

/// The organisation asks for the user's PIN: the vault password, checked
/// against the vault file (Argon2id) even when the keyring opened it.
fn verify_password(credentials: &Credentials, vault: &Vault) -> Result<()> {
    if !vault.has_password() {
        bail!("this organisation requires your PIN, and this vault has no password to check: set one with `countersign passwd`");
    }
    let password = credentials.password("Vault password (the organisation asks for it): ")?;
    vault::Locked::read(vault.path())?.unlock_with_password(&password).map(|_| ()).map_err(|e| anyhow!("{e}"))
}

/// Runs a command that may save, then says if the save's backup failed.
fn saving<T>(vault: &mut Vault, command: impl FnOnce(&mut Vault) -> Result<T>) -> Result<T> {
    let result = command(vault);
    transfer::warn_backup(vault);
    result
}

fn settings_path() -> Result<PathBuf> {
    countersign::settings::Settings::path_from_env()
        .ok_or_else(|| anyhow!("no config directory is known for this user; set COUNTERSIGN_SETTINGS"))
}

/// With no command: the window, or (`--background`) the app without one.
#[cfg(feature = "gui")]
fn window(vault: PathBuf, background: bool, named: bool) -> Result<()> {
    use countersign::gui::Start;
    let settings = settings_path()?;
    let start = if background { Start::Background } else { Start::Window };
    if background && !vault.exists() {
        eprintln!("countersign: no vault at {} yet; nothing to receive in the background", vault.display());
        return Ok(());
    }
    // One process per vault: starting again shows the running one's window
    // (a background start only checks that one runs).
    #[cfg(unix)]
    let instance = {
        use countersign::instance::{self, Claim, Request};
        match instance::claim(&vault, if background { Request::Ping } else { Request::Raise }) {
            Ok(Claim::First(listener)) => Some(listener),
            Ok(Claim::Raised) if background => return Ok(()),
            Ok(Claim::Raised) => {
                eprintln!("countersign: Countersign already runs on {}; its window was brought forward", vault.display());
                return Ok(());
            }
            Ok(Claim::Unresponsive) => {
                bail!("Countersign already runs on {} but does not answer; end its process and start again", vault.display())
            }
            Err(error) => {
                eprintln!("countersign: warning: cannot tell whether Countersign already runs on this vault ({error})");
                None
            }
        }
    };
    #[cfg(not(unix))]
    let instance = None;
    let autostart = countersign::autostart::Launch::current(named.then_some(vault.as_path()));
    countersign::gui::run(countersign::gui::Options { vault, settings, autostart }, instance, start)
        .map_err(|e| anyhow!("Countersign could not start: {e}"))
}

/// Built without the `gui` feature: show the commands instead.
#[cfg(not(feature = "gui"))]
fn window(_vault: PathBuf, _background: bool, _named: bool) -> Result<()> {
    Cli::command().print_help()?;
    Ok(())
}

/// `quit`: ends the process running on the vault, if one does.
fn quit(vault: &std::path::Path) -> Result<()> {
    #[cfg(unix)]
    {
        if countersign::instance::ask(vault, countersign::instance::Request::Quit)? {
            println!("Countersign on {} was asked to quit.", vault.display());
        } else {
            println!("Countersign is not running on {}.", vault.display());
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        let _ = vault;
        bail!("quit is not available on this platform yet")
    }
}

/// `autostart [on|off|default]`: records the choice, writes or removes the
/// login entry accordingly, and prints the state.
fn autostart(vault: PathBuf, named: bool, state: Option<AutostartState>, settings_path: &std::path::Path) -> Result<()> {
    use countersign::autostart::{self, Launch};
    let mut settings = countersign::settings::Settings::load(settings_path);
    if let Some(state) = state {
        settings.start_at_login = match state {
            AutostartState::On => Some(true),
            AutostartState::Off => Some(false),
            AutostartState::Default => None,
        };
        settings.save(settings_path)?;
    }
    let launch = Launch::current(named.then_some(vault.as_path())).ok_or_else(|| anyhow!("cannot tell where this program is"))?;
    // Whether a work or school account exists, without opening the vault: its listeners.
    let has_push = countersign::listeners::load(&vault, None).map(|stored| !stored.is_empty()).unwrap_or(false);
    let wanted = autostart::wanted(settings.start_at_login, has_push);
    if state.is_some() {
        autostart::set(&launch, wanted)?;
    }
    let path = autostart::path(&launch).ok_or_else(|| anyhow!("no config folder is known for this user"))?;
    let on = autostart::is_on(&launch);
    let choice = match settings.start_at_login {
        Some(true) => "chosen: on",
        Some(false) => "chosen: off",
        None => "default: on once a work or school account exists",
    };
    println!(
        "Start at login: {} ({choice}); entry: {}{}",
        if on { "yes" } else { "no" },
        path.display(),
        if on { "" } else { " (absent)" }
    );
    Ok(())
}

fn init(path: &std::path::Path, credentials: &Credentials, args: InitArgs) -> Result<()> {
    if path.exists() {
        bail!("a vault already exists at {}; it was left untouched", path.display());
    }
    let keyring = match credentials.keyring() {
        Ok(keyring) => Some(keyring),
        Err(error) if args.keyring => return Err(error).context("--keyring was given"),
        Err(error) => {
            if !credentials.no_keyring {
                eprintln!("countersign: {error}; the vault will be protected by a password only");
            }
            None
        }
    };
    let want_password = args.password || credentials.has_scripted_password() || keyring.is_none();
    let password = if want_password {
        // Checked before the password is asked for.
        let kdf = args.kdf.kdf()?;
        let password = if credentials.has_scripted_password() { credentials.password("")? } else { unlock::new_password(None)? };
        if password.is_empty() {
            bail!("the password is empty; no vault was created");
        }
        Some((password, kdf))
    } else {
        None
    };
    let protected_by = match (&password, &keyring) {
        (Some(_), Some(_)) => "the OS keyring and a password",
        (Some(_), None) => "a password",
        _ => "the OS keyring",
    };
    let vault = Vault::create(path, Protection { password, keyring: keyring.as_ref() })?;
    println!("Created {} (opened by {protected_by})", path.display());
    if !vault.has_password() {
        println!("Tip: `countersign passwd` adds a password, so the vault still opens without this keyring (a backup, another machine).");
    }
    Ok(())
}

fn add(vault: &mut Vault, account: Account) -> Result<()> {
    let title = account.title();
    let ids = vault.add(vec![account], now()?)?;
    for id in ids {
        println!("Added {title} [{id}]");
    }
    Ok(())
}

/// The one account in an otpauth URI (for `code --uri`).
fn account_from_uri(text: &str) -> Result<Account> {
    match uri::parse(text)? {
        Payload::Account { account, .. } => Ok(account),
        Payload::GoogleExport { .. } => {
            bail!("this is a Google Authenticator export, which holds several accounts; add them with `countersign add --uri`")
        }
        other => Err(not_supported_yet(&other)),
    }
}

fn not_supported_yet(payload: &Payload) -> anyhow::Error {
    match payload {
        Payload::WorkActivation { code, url } => {
            anyhow!("this is a work or school account activation; activate it with `countersign activate --code {code} --url {url}`")
        }
        Payload::PrivacyIdeaPush { .. } => {
            anyhow!("this is a privacyIDEA push token enrollment, which has no codes; enroll it with `countersign add --uri`")
        }
        Payload::Account { .. } | Payload::GoogleExport { .. } => {
            anyhow!("this is {}, which Countersign cannot use here", payload.describe())
        }
    }
}

fn account_from_fields(args: &AddArgs) -> Result<Account> {
    let secret_text = match args.secret.as_deref() {
        Some(text) => zeroize::Zeroizing::new(read_argument(text)?),
        None => bail!("--secret is required"),
    };
    let (secret, cleaning) = Secret::from_base32(&secret_text).context("--secret")?;
    if cleaning.padding_fixed {
        eprintln!("countersign: warning: secret padding fixed");
    }
    let method = match args.kind {
        Kind::Totp => Method::Totp { period: args.period },
        Kind::Hotp => Method::Hotp { counter: args.counter },
        Kind::Steam => Method::Steam,
    };
    let (algorithm, digits) = match args.kind {
        Kind::Steam => (Algorithm::Sha1, STEAM_DIGITS),
        Kind::Totp | Kind::Hotp => (
            match args.algorithm {
                AlgorithmArg::Sha1 => Algorithm::Sha1,
                AlgorithmArg::Sha256 => Algorithm::Sha256,
                AlgorithmArg::Sha512 => Algorithm::Sha512,
            },
            args.digits,
        ),
    };
    let mut account = Account::totp(args.issuer.as_deref().unwrap_or(""), args.account.as_deref().unwrap_or(""), secret);
    account.method = method;
    account.algorithm = algorithm;
    account.digits = digits;
    account.validate()?;
    Ok(account)
}

#[derive(Serialize)]
struct ListedAccount<'a> {
    id: &'a str,
    issuer: &'a str,
    account: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    algorithm: Algorithm,
    digits: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    period: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    counter: Option<u64>,
    added: u64,
}

impl<'a> From<&'a Entry> for ListedAccount<'a> {
    fn from(entry: &'a Entry) -> Self {
        let account = &entry.account;
        let (period, counter) = match account.method {
            Method::Totp { period } => (Some(period), None),
            Method::Hotp { counter } => (None, Some(counter)),
            Method::Steam => (Some(DEFAULT_PERIOD), None),
        };
        ListedAccount {
            id: entry.id.as_str(),
            issuer: &account.issuer,
            account: &account.name,
            kind: account.method.kind(),
            algorithm: account.algorithm,
            digits: account.digits,
            period,
            counter,
            added: entry.added,
        }
    }
}

fn list(vault: &Vault, json: bool) -> Result<()> {
    let rows: Vec<ListedAccount> = vault.entries().iter().map(ListedAccount::from).collect();
    let tokens: Vec<ListedToken> = vault.push_tokens().iter().map(ListedToken::from).collect();
    if json {
        // One array, as scripts read it: privacyIDEA tokens follow the
        // accounts with "type": "push" and no code fields.
        let mut all = serde_json::to_value(&rows)?;
        if let Some(array) = all.as_array_mut() {
            array.extend(tokens.iter().map(serde_json::to_value).collect::<Result<Vec<_>, _>>()?);
        }
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    if rows.is_empty() && tokens.is_empty() {
        println!("No accounts yet. Add one with `countersign add --uri otpauth://...`.");
        return Ok(());
    }
    let issuer_width = rows
        .iter()
        .map(|r| r.issuer.chars().count())
        .chain(tokens.iter().map(|t| t.issuer.chars().count()))
        .max()
        .unwrap_or(0)
        .max("ISSUER".len());
    println!("{:<16}  {:<5}  {:<issuer_width$}  ACCOUNT", "ID", "TYPE", "ISSUER");
    for row in rows {
        println!("{:<16}  {:<5}  {:<issuer_width$}  {}", row.id, row.kind, row.issuer, row.account);
    }
    for token in tokens {
        println!(
            "{:<16}  {:<5}  {:<issuer_width$}  {} (privacyIDEA {}, sign-in requests only)",
            token.id, token.kind, token.issuer, token.account, token.serial
        );
    }
    Ok(())
}

/// A privacyIDEA PUSH token as `list` shows it (no key).
#[derive(Serialize)]
struct ListedToken<'a> {
    id: &'a str,
    issuer: &'a str,
    /// The token's label, in the field accounts use for their name.
    account: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    serial: &'a str,
    url: &'a str,
    added: u64,
}

impl<'a> From<&'a countersign::vault::PushToken> for ListedToken<'a> {
    fn from(stored: &'a countersign::vault::PushToken) -> Self {
        ListedToken {
            id: stored.id.as_str(),
            issuer: &stored.token.issuer,
            account: &stored.token.label,
            kind: "push",
            serial: &stored.token.serial,
            url: &stored.token.url,
            added: stored.added,
        }
    }
}

#[derive(Serialize)]
struct CodeRow<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    issuer: &'a str,
    account: &'a str,
    code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    valid_until: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seconds_left: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    counter: Option<u64>,
}

fn code_row<'a>(id: Option<&'a str>, account: &'a Account, at: u64) -> CodeRow<'a> {
    let code = otp::code(account, at);
    CodeRow {
        id,
        issuer: &account.issuer,
        account: &account.name,
        seconds_left: code.seconds_left(at),
        valid_until: code.valid_until,
        counter: match account.method {
            Method::Hotp { counter } => Some(counter),
            Method::Totp { .. } | Method::Steam => None,
        },
        code: code.value,
    }
}

fn print_codes(rows: &[CodeRow], args: &CodeArgs) -> Result<()> {
    if args.json {
        println!("{}", serde_json::to_string_pretty(rows)?);
        return Ok(());
    }
    for row in rows {
        if args.quiet {
            println!("{}", row.code);
            continue;
        }
        let when = match (row.seconds_left, row.counter) {
            (Some(seconds), _) => format!("{seconds:>2} s left"),
            (None, Some(counter)) => format!("counter {counter}"),
            (None, None) => String::new(),
        };
        let title = match (row.issuer.is_empty(), row.account.is_empty()) {
            (false, false) => format!("{} ({})", row.issuer, row.account),
            (false, true) => row.issuer.to_owned(),
            _ => row.account.to_owned(),
        };
        println!("{}  {when}  {title}", row.code);
    }
    Ok(())
}

fn code_from_uri(text: &str, args: &CodeArgs) -> Result<()> {
    let account = account_from_uri(&read_argument(text)?)?;
    let at = instant(args.at.as_deref())?;
    print_codes(&[code_row(None, &account, at)], args)
}

fn code(vault: &mut Vault, args: &CodeArgs) -> Result<()> {
    let at = instant(args.at.as_deref())?;
    if args.next {
        let query = args.query.as_deref().ok_or_else(|| anyhow!("--next needs the account to advance"))?;
        let entry = find_one(vault, query)?.clone();
        if !matches!(entry.account.method, Method::Hotp { .. }) {
            bail!("--next advances HOTP accounts; {} is {}", entry.account.title(), entry.account.method.kind().to_uppercase());
        }
        vault.modify(&entry.id, now()?, |account| {
            if let Method::Hotp { counter } = &mut account.method {
                *counter = counter.wrapping_add(1);
            }
        })?;
    }
    let query = args.query.as_deref().unwrap_or("");
    let rows: Vec<CodeRow> = matching(vault, query).map(|e| code_row(Some(e.id.as_str()), &e.account, at)).collect();
    if vault.entries().is_empty() {
        bail!("the vault has no accounts yet; add one with `countersign add`");
    }
    if rows.is_empty() {
        bail!("no account matches {query:?}");
    }
    print_codes(&rows, args)
}

fn inspect(text: &str) -> Result<()> {
    match uri::parse(text)? {
        Payload::Account { account, warnings } => {
            println!("kind: OTP account");
            println!("type: {}", account.method.kind());
            println!("issuer: {}", account.issuer);
            if let Some(label) = &account.label_issuer {
                println!("label issuer: {label}");
            }
            println!("account: {}", account.name);
            println!("secret: {} ({} bits)", account.secret.to_base32().as_str(), account.secret.bits());
            println!("algorithm: {}", account.algorithm);
            println!("digits: {}", account.digits);
            match account.method {
                Method::Totp { period } => println!("period: {period}"),
                Method::Hotp { counter } => println!("counter: {counter}"),
                Method::Steam => println!("period: {DEFAULT_PERIOD}"),
            }
            for warning in warnings {
                println!("warning: {warning}");
            }
        }
        Payload::GoogleExport { data } => {
            let export = countersign::migration::decode(&data)?;
            println!("kind: {}", Payload::GoogleExport { data: String::new() }.describe());
            println!("batch: code {} of {} (export id {})", export.batch.index + 1, export.batch.size, export.batch.id);
            for entry in &export.entries {
                match &entry.account {
                    Ok(account) => println!(
                        "account: {} ({}, {}, {} digits{})",
                        entry.title,
                        account.method.kind(),
                        account.algorithm,
                        account.digits,
                        match account.method {
                            Method::Hotp { counter } => format!(", counter {counter}"),
                            _ => String::new(),
                        }
                    ),
                    Err(why) => println!("account: {} (cannot be added: {why})", entry.title),
                }
            }
        }
        other => {
            println!("kind: {}", other.describe());
            match &other {
                Payload::GoogleExport { .. } => {}
                Payload::WorkActivation { code, url } => println!("code: {code}\nurl: {url}"),
                Payload::PrivacyIdeaPush { label, parameters } => {
                    println!("label: {label}");
                    for (name, value) in parameters {
                        println!("{name}: {value}");
                    }
                }
                Payload::Account { .. } => {}
            }
            println!("next: {}", not_supported_yet(&other));
        }
    }
    Ok(())
}

/// Asks `question` on the terminal; refuses (an error) when there is none to ask on.
fn confirm(question: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("{question} Refusing without --yes when not run interactively");
    }
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn remove(vault: &mut Vault, query: &str, yes: bool) -> Result<()> {
    // A privacyIDEA token by its id or serial.
    if let Some(stored) = vault.push_tokens().iter().find(|t| t.id.as_str() == query || t.token.serial.eq_ignore_ascii_case(query)).cloned()
    {
        let title = stored.token.title();
        if !yes && !confirm(&format!("Remove {title} [{}]? Its key is deleted; privacyIDEA must enroll a new token.", stored.id))? {
            println!("Kept.");
            return Ok(());
        }
        vault.remove_push_token(&stored.id, now()?)?;
        println!("Removed {title} [{}]", stored.id);
        return Ok(());
    }
    let entry = find_one(vault, query)?.clone();
    if !yes && !confirm(&format!("Remove {} [{}]? Its codes cannot be recovered.", entry.account.title(), entry.id))? {
        println!("Kept.");
        return Ok(());
    }
    vault.remove(&entry.id, now()?)?;
    println!("Removed {} [{}]", entry.account.title(), entry.id);
    Ok(())
}

fn rename(vault: &mut Vault, query: &str, issuer: Option<String>, name: Option<String>) -> Result<()> {
    if issuer.is_none() && name.is_none() {
        bail!("give --issuer and/or --account");
    }
    let id = find_one(vault, query)?.id.clone();
    let title = vault.modify(&id, now()?, |account| {
        if let Some(issuer) = issuer {
            account.issuer = issuer.trim().to_owned();
            account.label_issuer = None;
        }
        if let Some(name) = name {
            account.name = name.trim().to_owned();
        }
        account.title()
    })?;
    println!("Renamed [{id}] to {title}");
    Ok(())
}

fn passwd(vault: &mut Vault, credentials: &Credentials, args: PasswdArgs) -> Result<()> {
    // Unlocking through the keyring already gave the vault its slot key; a
    // connection is only needed when the vault was opened by password.
    let keyring = if vault.has_keyring() { credentials.keyring().ok() } else { None };
    let password = if args.remove {
        None
    } else {
        let kdf = args.kdf.kdf()?;
        Some((unlock::new_password(args.new_password_file.as_deref())?, kdf))
    };
    let copies = vault.set_password(password, keyring.as_ref(), now()?)?;
    let keyring_too = if vault.has_keyring() { " and the OS keyring's key were" } else { " was" };
    println!("{}; the master key{keyring_too} replaced", if args.remove { "Password removed" } else { "Password changed" });
    match copies.summary() {
        Some(summary) => println!("Older copies: {summary}."),
        None => println!("Older copies: none were found."),
    }
    Ok(())
}

/// Entries whose id is `query`, or whose issuer or name contains it.
fn matching<'a>(vault: &'a Vault, query: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
    let by_id: Vec<&Entry> = vault.entries().iter().filter(|e| e.id.as_str() == query).collect();
    let use_id = !by_id.is_empty();
    vault.entries().iter().filter(move |e| if use_id { e.id.as_str() == query } else { e.account.matches(query) })
}

fn find_one<'a>(vault: &'a Vault, query: &'a str) -> Result<&'a Entry> {
    let found: Vec<&Entry> = matching(vault, query).collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => bail!("no account matches {query:?}"),
        many => bail!(
            "{} accounts match {query:?}: {}; use the id",
            many.len(),
            many.iter().map(|e| format!("{} [{}]", e.account.title(), e.id)).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// `-` means: read the value from standard input (one trimmed line or text).
fn read_argument(text: &str) -> Result<String> {
    if text != "-" {
        return Ok(text.to_owned());
    }
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).context("cannot read standard input")?;
    Ok(input.trim().to_owned())
}

fn now() -> Result<u64> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH).context("the system clock is before 1970")?.as_secs())
}

/// `--at`: Unix seconds, or an RFC 3339 timestamp.
fn instant(at: Option<&str>) -> Result<u64> {
    let Some(text) = at else { return now() };
    if let Ok(seconds) = text.trim().parse::<u64>() {
        return Ok(seconds);
    }
    let timestamp: jiff::Timestamp =
        text.trim().parse().map_err(|_| anyhow!("--at {text:?} is neither Unix seconds nor an RFC 3339 time like 2026-11-23T12:00:00Z"))?;
    u64::try_from(timestamp.as_second()).map_err(|_| anyhow!("--at {text:?} is before 1970"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2_costs_under_the_floor_are_refused_unless_tests_ask() {
        let cheap = Kdf { memory_kib: 1024, passes: 1, lanes: 1 };
        let error = checked_kdf(cheap, false).unwrap_err().to_string();
        assert!(error.contains("too cheap") && error.contains("19 MiB") && error.contains("2 passes"), "{error}");
        assert!(checked_kdf(Kdf { memory_kib: 64 * 1024, passes: 1, lanes: 1 }, false).is_err(), "one pass is under the floor");
        assert!(checked_kdf(Kdf { memory_kib: 18 * 1024, passes: 3, lanes: 1 }, false).is_err(), "18 MiB is under the floor");
        assert_eq!(checked_kdf(cheap, true).unwrap(), cheap);
        assert_eq!(checked_kdf(Kdf { memory_kib: 19 * 1024, passes: 2, lanes: 1 }, false).unwrap().passes, 2);
        assert_eq!(checked_kdf(Kdf::default(), false).unwrap(), Kdf::default());
    }
}
