//! `countersign-server`: serve (the default), or manage users and
//! activations directly in the database.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, Parser, Subcommand};
use countersign::server::{AppState, Config};

/// The companion server of Countersign: push sign-in approvals, activation
/// of the app by QR code or Code + URL, and TOTP verification.
#[derive(Parser)]
#[command(name = "countersign-server", version, about)]
struct Cli {
    /// A TOML file with any of the settings below (flags and environment win)
    #[arg(long, env = "COUNTERSIGN_SERVER_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8750]
    #[arg(long, env = "COUNTERSIGN_SERVER_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The SQLite database file [default: the platform data directory]
    #[arg(long, env = "COUNTERSIGN_SERVER_DATABASE", value_name = "FILE")]
    database: Option<PathBuf>,
    /// The URL clients reach this server at (for activation links)
    #[arg(long, env = "COUNTERSIGN_SERVER_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// Bearer token of the admin API [default: generated and kept in the database]
    #[arg(long, env = "COUNTERSIGN_SERVER_ADMIN_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Bearer token of the relying-party API [default: generated and kept]
    #[arg(long, env = "COUNTERSIGN_SERVER_RP_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    rp_token: Option<String>,
    /// Seconds a push challenge waits for an answer [default: 60]
    #[arg(long, env = "COUNTERSIGN_SERVER_CHALLENGE_SECONDS", value_name = "S")]
    challenge_seconds: Option<i64>,
    /// Seconds "It wasn't me" blocks pushes for that user [default: 3600]
    #[arg(long, env = "COUNTERSIGN_SERVER_REPORT_BLOCK_SECONDS", value_name = "S")]
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
    /// Create a one-time activation for a user: prints the Code, the URL and the QR code's text
    Activate {
        user: String,
        /// Also write the QR code as a PNG
        #[arg(long, value_name = "FILE")]
        qr: Option<PathBuf>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Print the admin and relying-party API tokens
    Tokens,
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
    if let Some(database) = &cli.database {
        config.database = database.clone();
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
    config.pin_required |= cli.pin_required;
    config.number_matching &= !cli.no_number_matching;
    if cli.tls_cert.is_some() {
        config.tls_cert = cli.tls_cert.clone();
        config.tls_key = cli.tls_key.clone();
    }
    if !(1..=3600).contains(&config.challenge_seconds) {
        bail!("challenge_seconds must be from 1 to 3600");
    }
    Ok(config)
}

async fn run(cli: Cli) -> Result<()> {
    let config = config(&cli)?;
    let state = AppState::open(config.clone()).await.with_context(|| format!("cannot open the database {}", config.database.display()))?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            eprintln!("countersign-server: listening on {} (database {})", config.base_url(), config.database.display());
            if config.demo_pages() {
                eprintln!("countersign-server: enrollment page {0}/enroll, demo sign-in {0}/demo", config.base_url());
            }
            countersign::server::serve(state).await
        }
        Command::User { command: UserCommand::Add { name, organization } } => {
            let organization = organization.unwrap_or_else(|| config.organization.clone());
            if !state.store.add_user(name.trim(), &organization, countersign::server::now()).await? {
                bail!("user {name:?} already exists");
            }
            println!("Added {name} ({organization}).");
            Ok(())
        }
        Command::Activate { user, qr, json } => {
            let activation = countersign::server::new_activation(&state, &user).await.map_err(|failure| anyhow::anyhow!("{failure:?}"))?;
            if let Some(path) = qr {
                use base64::Engine;
                let png = base64::engine::general_purpose::STANDARD.decode(&activation.qr_png_base64)?;
                std::fs::write(&path, png).with_context(|| format!("cannot write {}", path.display()))?;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&activation)?);
            } else {
                println!("Code: {}\nURL:  {}\nQR:   {}\nValid for 10 minutes, once.", activation.code, activation.url, activation.uri);
            }
            Ok(())
        }
        Command::Tokens => {
            println!("admin: {}\nrelying party: {}", state.admin_token, state.rp_token);
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    if let Some(result) = countersign::manual::requested(Cli::command()) {
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
