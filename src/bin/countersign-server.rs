//! `countersign-server`: serve (the default), or manage users and
//! activations directly in the database.

// Nothing input can reach may panic: unwrap and expect are for tests.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

// The manual lives with the `countersign` command line; both binaries write
// their own pages and completions with it, and the library needs no clap.
#[path = "../cli/manual.rs"]
mod manual;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, Parser, Subcommand};
use countersign::server::{AppState, Config, Database, log};

/// The companion server of Countersign: push sign-in approvals, activation
/// of the app by QR code or Code + URL, and TOTP verification.
#[derive(Parser)]
#[command(name = "countersign-server", version, about = "The companion server of Countersign: push sign-in approvals, activation of the app by QR code or Code + URL, and TOTP verification", long_about = None)]
struct Cli {
    /// A TOML file with any of the settings below (flags and environment win)
    #[arg(long, env = "COUNTERSIGN_SERVER_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8750]
    #[arg(long, env = "COUNTERSIGN_SERVER_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Answer RADIUS (UDP) on this address, e.g. 127.0.0.1:1812; clients are [[radius.clients]] in the TOML file
    #[arg(long, env = "COUNTERSIGN_SERVER_RADIUS_LISTEN", value_name = "ADDR")]
    radius_listen: Option<SocketAddr>,
    /// A SQLite file, or postgres://USER@HOST:PORT/DB to share one database between instances [default: a SQLite file in the platform data directory]
    #[arg(long, env = "COUNTERSIGN_SERVER_DATABASE", value_name = "FILE|URL", hide_env_values = true)]
    database: Option<Database>,
    /// Connections to PostgreSQL each instance keeps at most [default: 16]
    #[arg(long, env = "COUNTERSIGN_SERVER_DATABASE_POOL_SIZE", value_name = "N")]
    database_pool_size: Option<u32>,
    /// The URL clients reach this server at (for activation links)
    #[arg(long, env = "COUNTERSIGN_SERVER_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// Bearer token of the admin API [default: the one `tokens` made]
    #[arg(long, env = "COUNTERSIGN_SERVER_ADMIN_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Bearer token of the relying-party API [default: the one `tokens` made]
    #[arg(long, env = "COUNTERSIGN_SERVER_RP_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    rp_token: Option<String>,
    /// Seconds a push challenge waits for an answer [default: 60]
    #[arg(long, env = "COUNTERSIGN_SERVER_CHALLENGE_SECONDS", value_name = "S", allow_negative_numbers = true)]
    challenge_seconds: Option<i64>,
    /// Seconds "It wasn't me" blocks pushes for that user [default: 3600]
    #[arg(long, env = "COUNTERSIGN_SERVER_REPORT_BLOCK_SECONDS", value_name = "S", allow_negative_numbers = true)]
    report_block_seconds: Option<i64>,
    /// Require the app to check the user's PIN or vault password
    #[arg(long, env = "COUNTERSIGN_SERVER_PIN_REQUIRED")]
    pin_required: bool,
    /// Do not ask users to type the number the sign-in page shows
    #[arg(long, env = "COUNTERSIGN_SERVER_NO_NUMBER_MATCHING")]
    no_number_matching: bool,
    /// Activation attempts allowed per client address per minute [default: 10]
    #[arg(long, env = "COUNTERSIGN_SERVER_ACTIVATION_RATE", value_name = "N")]
    activation_rate_per_minute: Option<u32>,
    /// The server's signing key file [default: DATABASE.key; a systemd credential `server-key` wins]
    #[arg(long, env = "COUNTERSIGN_SERVER_SERVER_KEY_FILE", value_name = "FILE")]
    server_key_file: Option<PathBuf>,
    /// A key file that seals users' TOTP secrets in the database (made when missing)
    #[arg(long, env = "COUNTERSIGN_SERVER_TOTP_KEY_FILE", value_name = "FILE")]
    totp_key_file: Option<PathBuf>,
    /// A reverse proxy whose X-Forwarded-For is believed (repeat, or comma-separated)
    #[arg(long = "trusted-proxy", env = "COUNTERSIGN_SERVER_TRUSTED_PROXIES", value_name = "ADDR", value_delimiter = ',')]
    trusted_proxies: Vec<std::net::IpAddr>,
    /// The organisation shown in apps [default: Countersign demo]
    #[arg(long, env = "COUNTERSIGN_SERVER_ORGANIZATION", value_name = "NAME")]
    organization: Option<String>,
    /// Serve the enrollment and demo pages [default: only on loopback without a public URL]
    #[arg(long, env = "COUNTERSIGN_SERVER_DEMO_PAGES", value_name = "BOOL")]
    demo_pages: Option<bool>,
    /// Let users make app passwords on the pages with a code from their app [default: false; the admin makes them]
    #[arg(long, env = "COUNTERSIGN_SERVER_APP_PASSWORDS_ON_PAGES", value_name = "BOOL")]
    app_passwords_on_pages: Option<bool>,
    /// Open connections at most, WebSocket sessions included [default: 4096]
    #[arg(long, env = "COUNTERSIGN_SERVER_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<usize>,
    /// Seconds a client gets to send a request's headers or body (also the idle limit) [default: 10]
    #[arg(long, env = "COUNTERSIGN_SERVER_REQUEST_TIMEOUT_SECONDS", value_name = "S")]
    request_timeout_seconds: Option<u64>,
    /// Days decided sign-ins and spent activations are kept; 0 keeps them forever [default: 90]
    #[arg(long, env = "COUNTERSIGN_SERVER_RETENTION_DAYS", value_name = "DAYS")]
    retention_days: Option<u32>,
    /// Bearer token that reads /metrics (the admin token does too)
    #[arg(long, env = "COUNTERSIGN_SERVER_METRICS_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// Log one JSON object per line
    #[arg(long, env = "COUNTERSIGN_SERVER_JSON_LOGS")]
    json_logs: bool,
    /// PEM certificate chain: serve HTTPS/WSS (with --tls-key)
    #[arg(long, env = "COUNTERSIGN_SERVER_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key
    #[arg(long, env = "COUNTERSIGN_SERVER_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve (the default)
    Serve,
    /// Users
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Create a one-time activation for a user (revoking any older unused one): prints the Code, the URL and the QR code's text
    Activate {
        user: String,
        /// Also write the QR code as a PNG
        #[arg(long, value_name = "FILE")]
        qr: Option<PathBuf>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// List a user's devices
    Devices {
        user: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// List a user's activations and their state (never their codes)
    Activations {
        user: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Revoke a device or an unused activation
    Revoke {
        #[command(subcommand)]
        what: RevokeCommand,
    },
    /// App passwords, for older apps that cannot do two-step verification
    AppPassword {
        #[command(subcommand)]
        command: AppPasswordCommand,
    },
    /// Users' phones for the phone methods: the authentication phone and the office phone
    Phone {
        #[command(subcommand)]
        command: PhoneCommand,
    },
    /// Copy the SQLite database, consistently, while the server runs (VACUUM INTO a new 0600 file)
    Backup { to: PathBuf },
    /// Make new admin and relying-party API tokens and print them, once (only their hashes are kept; the old ones stop working)
    Tokens,
    /// For pam_exec (sshd, sudo): read what the user typed on standard input, check it as a code or send a push, exit 0 to let in
    Pam {
        /// The helper's settings: url, rp_token, and optionally ca_file, fail_open, allow_unenrolled (0600, root's)
        #[arg(long, value_name = "FILE", default_value = "/etc/countersign/pam.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum RevokeCommand {
    /// A lost device: it can no longer connect, answer or be pushed to (a running server closes its open session within 30 s; the admin API closes it at once)
    Device { id: String },
    /// An activation that was not used yet
    Activation { id: String },
}

#[derive(Subcommand)]
enum PhoneCommand {
    /// Set a user's authentication or office phone (checked, kept in E.164), replacing the one there was
    Set {
        user: String,
        /// authentication (texts and calls) or office (calls)
        kind: String,
        /// As typed: +41 44 668 18 00, or national with --country
        number: String,
        /// The country of a national number (ISO 3166 code: CH, US, …)
        #[arg(long)]
        country: Option<String>,
        /// Digits dialled once an office phone answers
        #[arg(long)]
        extension: Option<String>,
    },
    /// List a user's phones
    List {
        user: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove a user's authentication or office phone
    Remove { user: String, kind: String },
}

#[derive(Subcommand)]
enum AppPasswordCommand {
    /// Make an app password for a user and print it, once (only its Argon2id hash is kept)
    Create {
        user: String,
        /// The app it is for, as the user will see it listed
        name: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// List a user's app passwords with their last use (never the passwords)
    List {
        user: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Revoke an app password: the app it was for can no longer sign in with it
    Revoke { id: String },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user
    Add {
        name: String,
        /// Organisation shown in the app [default: the server's]
        #[arg(long)]
        organization: Option<String>,
    },
    /// List users, with their device counts
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove a user with their devices, activations and sign-ins (their open sessions close)
    Remove { name: String },
    /// Show the ways a user can sign in, or set the one sign-ins use by default
    Method {
        name: String,
        /// push, code, sms or voice; default clears the choice (the first the user has)
        method: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

fn config(cli: &Cli) -> Result<Config> {
    let mut config = match &cli.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("{} is not a valid configuration", path.display()))?
        }
        None => Config::default(),
    };
    if let Some(listen) = cli.listen {
        config.listen = listen;
    }
    if cli.radius_listen.is_some() {
        config.radius_listen = cli.radius_listen;
    }
    if let Some(database) = &cli.database {
        config.database = database.clone();
    }
    if let Some(size) = cli.database_pool_size {
        config.database_pool_size = size;
    }
    if cli.metrics_token.is_some() {
        config.metrics_token = cli.metrics_token.clone();
    }
    config.json_logs |= cli.json_logs;
    if let Some(days) = cli.retention_days {
        config.retention_days = days;
    }
    if cli.public_url.is_some() {
        config.public_url = cli.public_url.clone();
    }
    if cli.admin_token.is_some() {
        config.admin_token = cli.admin_token.clone();
    }
    if cli.rp_token.is_some() {
        config.rp_token = cli.rp_token.clone();
    }
    if let Some(seconds) = cli.challenge_seconds {
        config.challenge_seconds = seconds;
    }
    if let Some(seconds) = cli.report_block_seconds {
        config.report_block_seconds = seconds;
    }
    if let Some(rate) = cli.activation_rate_per_minute {
        config.activation_rate_per_minute = rate;
    }
    if cli.server_key_file.is_some() {
        config.server_key_file = cli.server_key_file.clone();
    }
    if cli.totp_key_file.is_some() {
        config.totp_key_file = cli.totp_key_file.clone();
    }
    if !cli.trusted_proxies.is_empty() {
        config.trusted_proxies = cli.trusted_proxies.clone();
    }
    if let Some(organization) = &cli.organization {
        config.organization = organization.clone();
    }
    if cli.demo_pages.is_some() {
        config.demo_pages = cli.demo_pages;
    }
    if let Some(on) = cli.app_passwords_on_pages {
        config.app_passwords_on_pages = on;
    }
    if let Some(max) = cli.max_connections {
        config.max_connections = max;
    }
    if let Some(seconds) = cli.request_timeout_seconds {
        config.request_timeout_seconds = seconds;
    }
    config.pin_required |= cli.pin_required;
    config.number_matching &= !cli.no_number_matching;
    if cli.tls_cert.is_some() {
        config.tls_cert = cli.tls_cert.clone();
        config.tls_key = cli.tls_key.clone();
    }
    config.check().map_err(anyhow::Error::msg)?;
    Ok(config)
}

async fn run(cli: Cli) -> Result<()> {
    // The PAM helper runs on the machine signed in to, with its own settings.
    if let Some(Command::Pam { config }) = &cli.command {
        return pam(config).await;
    }
    let config = config(&cli)?;
    countersign::server::log::use_json(config.json_logs);
    // The error names the database without its password.
    let state = AppState::open(config.clone()).await.with_context(|| format!("cannot open the database {}", config.database))?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            // Said once it is true: tests and scripts wait for this line.
            let listener = countersign::server::bind(&state).await?;
            let radius = countersign::server::radius::bind(&state).await.with_context(|| {
                format!("cannot listen for RADIUS on {}", config.radius_listen.map(|a| a.to_string()).unwrap_or_default())
            })?;
            if let Some(socket) = radius {
                let clients = config.radius.clients.len();
                log::info(&format!("RADIUS on udp {} ({clients} clients)", socket.local_addr()?));
                tokio::spawn(countersign::server::radius::serve(state.clone(), socket));
            }
            log::info(&format!("listening on {} (database {}, instance {})", config.base_url(), config.database, state.instance));
            if config.demo_pages() {
                log::info(&format!("enrollment page {0}/enroll, demo sign-in {0}/demo", config.base_url()));
            }
            Ok(countersign::server::serve_on(listener, state, countersign::server::shutdown_signal()).await?)
        }
        Command::User { command: UserCommand::Add { name, organization } } => {
            let organization = organization.unwrap_or_else(|| config.organization.clone());
            if !state.store.add_user(name.trim(), &organization, countersign::server::now()).await? {
                bail!("user {name:?} already exists");
            }
            print(&format!("Added {name} ({organization})."))
        }
        Command::User { command: UserCommand::List { json } } => {
            let users = state.store.users().await?;
            if json {
                return print(&serde_json::to_string_pretty(&users)?);
            }
            if users.is_empty() {
                return print("No users.");
            }
            let now = countersign::server::now();
            print(
                &users
                    .iter()
                    .map(|u| {
                        format!(
                            "{}  {}  {} device{}  added {}{}",
                            countersign::push::printable(&u.name),
                            countersign::push::printable(&u.organization),
                            u.devices,
                            if u.devices == 1 { "" } else { "s" },
                            u.created_at,
                            if u.blocked_until > now { format!("  (pushes blocked until {})", u.blocked_until) } else { String::new() }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        }
        Command::User { command: UserCommand::Remove { name } } => {
            countersign::server::remove_user(&state, &name).await.map_err(|failure| anyhow::anyhow!("{failure:?}"))?;
            print(&format!("Removed {name} with their devices, activations and sign-ins."))
        }
        Command::User { command: UserCommand::Method { name, method, json } } => {
            let methods = match &method {
                Some(method) => countersign::server::set_preferred_method(&state, &name, Some(method)).await,
                None => countersign::server::user_methods(&state, &name).await,
            }
            .map_err(|failure| anyhow::anyhow!("{failure:?}"))?;
            if json {
                return print(&serde_json::to_string_pretty(&methods)?);
            }
            let names = |methods: &[countersign::server::methods::Method]| {
                methods.iter().map(|method| method.as_str()).collect::<Vec<_>>().join(", ")
            };
            let chosen = if methods.preferred.is_some() { "chosen" } else { "the first they have" };
            print(&format!(
                "{} signs in by {} by default ({chosen}); methods: {}.",
                countersign::push::printable(&name),
                methods.default.as_str(),
                if methods.methods.is_empty() { "none yet".to_owned() } else { names(&methods.methods) }
            ))
        }
        Command::Phone { command: PhoneCommand::Set { user, kind, number, country, extension } } => {
            let request = countersign::server::PhoneRequest { number, country, extension };
            let phone =
                countersign::server::set_phone(&state, &user, &kind, &request).await.map_err(|failure| anyhow::anyhow!("{failure:?}"))?;
            let extension = phone.extension.map(|e| format!(" extension {e}")).unwrap_or_default();
            print(&format!("{}'s {} phone is {}{extension}.", countersign::push::printable(&user), phone.kind.as_str(), phone.number))
        }
        Command::Phone { command: PhoneCommand::List { user, json } } => {
            if !state.store.user_exists(&user).await? {
                bail!("no user {user:?}");
            }
            let phones = state.store.phones(&user).await?;
            if json {
                return print(&serde_json::to_string_pretty(&phones)?);
            }
            if phones.is_empty() {
                return print(&format!("{} has no phones.", countersign::push::printable(&user)));
            }
            print(
                &phones
                    .iter()
                    .map(|p| {
                        format!(
                            "{}  {}{}",
                            p.kind.as_str(),
                            p.number,
                            p.extension.as_ref().map(|e| format!(" extension {e}")).unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        }
        Command::Phone { command: PhoneCommand::Remove { user, kind } } => {
            let kind: countersign::server::phones::Kind = kind.parse().map_err(anyhow::Error::msg)?;
            if !state.store.remove_phone(&user, kind).await? {
                bail!("{user:?} has no {} phone", kind.as_str());
            }
            print(&format!("Removed {}'s {} phone.", countersign::push::printable(&user), kind.as_str()))
        }
        Command::AppPassword { command: AppPasswordCommand::Create { user, name, json } } => {
            let created =
                countersign::server::new_app_password(&state, &user, &name).await.map_err(|failure| anyhow::anyhow!("{failure:?}"))?;
            if json {
                return print(&serde_json::to_string_pretty(&created)?);
            }
            print(&format!(
                "App password for {} ({}), id {}:\n\n    {}\n\nShown this once: enter it in the app in place of the account's password.",
                countersign::push::printable(&user),
                countersign::push::printable(&created.name),
                created.id,
                created.password
            ))
        }
        Command::AppPassword { command: AppPasswordCommand::List { user, json } } => {
            if !state.store.user_exists(&user).await? {
                bail!("no user {user:?}");
            }
            let passwords = state.store.app_passwords(&user).await?;
            if json {
                return print(&serde_json::to_string_pretty(&passwords)?);
            }
            if passwords.is_empty() {
                return print(&format!("{} has no app passwords.", countersign::push::printable(&user)));
            }
            print(
                &passwords
                    .iter()
                    .map(|p| {
                        let used = match (p.last_used_at, &p.last_used_from) {
                            (Some(at), Some(from)) => format!("last used {at} from {}", countersign::push::printable(from)),
                            (Some(at), None) => format!("last used {at}"),
                            _ => "never used".to_owned(),
                        };
                        format!("{}  {}  created {}  {used}", p.id, countersign::push::printable(&p.name), p.created_at)
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        }
        Command::AppPassword { command: AppPasswordCommand::Revoke { id } } => {
            if !state.store.revoke_app_password(&id, None).await? {
                bail!("no app password {id:?}");
            }
            print(&format!("Revoked app password {id}."))
        }
        Command::Activate { user, qr, json } => {
            let activation = countersign::server::new_activation(&state, &user).await.map_err(|failure| anyhow::anyhow!("{failure:?}"))?;
            if let Some(path) = qr {
                let png = countersign::base64::decode(&activation.qr_png_base64)?;
                write_private(&path, &png).with_context(|| format!("cannot write {}", path.display()))?;
            }
            if json {
                print(&serde_json::to_string_pretty(&activation)?)
            } else {
                print(&format!(
                    "Code: {}\nURL:  {}\nQR:   {}\nValid for 10 minutes, once.",
                    activation.code, activation.url, activation.uri
                ))
            }
        }
        Command::Devices { user, json } => {
            if !state.store.user_exists(&user).await? {
                bail!("no user {user:?}");
            }
            let devices = state.store.devices(&user).await?;
            if json {
                return print(&serde_json::to_string_pretty(&devices)?);
            }
            if devices.is_empty() {
                return print(&format!("{user} has no devices."));
            }
            print(
                &devices
                    .iter()
                    .map(|d| {
                        format!(
                            "{}  {}  added {}{}",
                            d.id,
                            countersign::push::printable(&d.name),
                            d.created_at,
                            if d.listener { "  (receives while locked)" } else { "" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        }
        Command::Activations { user, json } => {
            if !state.store.user_exists(&user).await? {
                bail!("no user {user:?}");
            }
            let activations = state.store.activations(&user, countersign::server::now()).await?;
            if json {
                return print(&serde_json::to_string_pretty(&activations)?);
            }
            if activations.is_empty() {
                return print(&format!("{user} has no activations."));
            }
            print(
                &activations
                    .iter()
                    .map(|a| format!("{}  {}  created {}  expires {}", a.id, a.state, a.created_at, a.expires_at))
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        }
        Command::Revoke { what: RevokeCommand::Device { id } } => {
            if !state.store.revoke_device(&id).await? {
                bail!("no device {id:?}");
            }
            // On PostgreSQL the instances holding its sessions close them at once.
            state.publish(countersign::server::cluster::Event::Revoked { device: id.clone() }).await;
            print(&format!("Revoked device {id}."))
        }
        Command::Revoke { what: RevokeCommand::Activation { id } } => {
            if !state.store.revoke_activation(&id, countersign::server::now()).await? {
                bail!("no unused activation {id:?}");
            }
            print(&format!("Revoked activation {id}."))
        }
        Command::Backup { to } => {
            state.store.backup(&to).await.with_context(|| format!("cannot back up to {}", to.display()))?;
            print(&format!("Backed up to {}. Keep the key files beside it (see the README).", to.display()))
        }
        // Taken before the server's settings are read (above).
        Command::Pam { config } => pam(&config).await,
        Command::Tokens => {
            let mut lines = Vec::new();
            for (name, label) in [("admin_token", "admin"), ("rp_token", "relying party")] {
                if state.token_configured(name) {
                    lines.push(format!("{label}: set in the configuration ({name}); not replaced"));
                } else {
                    lines.push(format!("{label}: {}", state.store.new_token(name).await?));
                }
            }
            lines.push("Only their hashes are kept: copy them now. The tokens before these no longer work.".into());
            print(&lines.join("\n"))
        }
    }
}

/// A line on standard output; a reader that went away (`| head`, `| true`)
/// is not an error.
fn print(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}

/// A file only its owner reads (an activation QR code holds a live code).
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut file = options.open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)
    }
    #[cfg(not(unix))]
    options.open(path)?.write_all(bytes)
}

/// `countersign-server pam`: what pam_exec runs. Its standard output is
/// shown to the user; an error exits non-zero, which refuses.
async fn pam(path: &std::path::Path) -> Result<()> {
    use countersign::pam::{Config, Context, Outcome, authenticate};
    use std::io::{IsTerminal, Read};
    let config = Config::load(path)?;
    let kind = std::env::var("PAM_TYPE").unwrap_or_default();
    if kind != "auth" {
        bail!("only the auth stack asks Countersign (PAM_TYPE is {kind:?}): use this line in an `auth` line");
    }
    let mut typed = zeroize::Zeroizing::new(Vec::new());
    if !std::io::stdin().is_terminal() {
        std::io::stdin().take(1024).read_to_end(&mut typed)?;
    }
    let context = Context::from_environment(config.host_name.as_deref());
    match authenticate(&config, &context, &typed).await {
        Outcome::Allow(message) => print(&message),
        // Said once, to the user (pam_exec logs the exit status).
        Outcome::Deny(message) => {
            print(&message)?;
            std::process::exit(1)
        }
    }
}

fn main() -> ExitCode {
    countersign::process::forbid_core_dumps_and_tracing();
    if let Some(result) = manual::requested(Cli::command()) {
        return result;
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("countersign-server: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("countersign-server: {error:#}");
            ExitCode::FAILURE
        }
    }
}
