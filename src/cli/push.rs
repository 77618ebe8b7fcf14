//! `countersign activate`, privacyIDEA enrollment, and `countersign push
//! watch|approve|deny|report`: the phone's side of a push sign-in, for
//! testers and scripts, against Countersign's server or privacyIDEA.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use countersign::journal;
use countersign::privacyidea::{self, client::Poller};
use countersign::push::client::{self, Event, Session};
use countersign::push::{Challenge, Decision, Link, Status};
use countersign::reach;
use countersign::uri::{self, Payload};
use countersign::vault::Vault;

mod phone;
mod watch;

pub use phone::{PhoneCommand, run as phone};
pub use watch::watch;

#[derive(Args)]
pub struct ActivateArgs {
    /// The Code shown under the QR code
    #[arg(long, requires = "url", conflicts_with = "qr")]
    code: Option<String>,
    /// The URL shown under the QR code
    #[arg(long, requires = "code")]
    url: Option<String>,
    /// An image of the activation QR code instead of --code and --url
    #[arg(long, value_name = "IMAGE", required_unless_present = "code")]
    qr: Option<PathBuf>,
    /// A name for this device, shown to administrators [default: the host name]
    #[arg(long)]
    device_name: Option<String>,
    /// Allow a plain http:// URL to another machine (loopback needs no flag):
    /// anyone on the network could read the account's secret and pose as the server
    #[arg(long)]
    insecure: bool,
}

#[derive(Subcommand)]
pub enum PushCommand {
    /// Print incoming sign-in requests until stopped (or --count/--timeout)
    Watch(WatchArgs),
    /// Authenticate: approve a sign-in request
    Approve(Answer),
    /// Deny a sign-in request
    Deny(Answer),
    /// "It wasn't me": deny and report, which blocks further requests for a while
    Report(Answer),
    /// Every sign-in request and its outcome, from the journal (its chain is checked)
    History {
        /// Print JSON: every record, oldest first
        #[arg(long)]
        json: bool,
    },
}

/// `push watch` and `phone watch`.
#[derive(Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub which: Which,
    /// Print JSON lines
    #[arg(long)]
    pub json: bool,
    /// Stop after printing this many
    #[arg(long)]
    pub count: Option<usize>,
    /// Stop after this many seconds
    #[arg(long)]
    pub timeout: Option<u64>,
}

#[derive(Args)]
pub struct Which {
    /// The work or school account or privacyIDEA token (text matching its
    /// organisation, user, issuer or serial), when there are several
    #[arg(long)]
    account: Option<String>,
}

#[derive(Args)]
pub struct Answer {
    /// The request's id (from `push watch`)
    id: String,
    /// The number the sign-in page shows, when the request asks for it
    #[arg(long)]
    number: Option<u32>,
    /// The option the sign-in page shows, when a privacyIDEA request asks to pick one
    #[arg(long, value_name = "OPTION")]
    answer: Option<String>,
    #[command(flatten)]
    which: Which,
    /// Seconds to wait for the request to arrive
    #[arg(long, default_value_t = 15)]
    timeout: u64,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the network runtime")
}

/// Reads the Code and URL (from flags or a QR image) before the vault is opened.
pub fn activation_target(args: &ActivateArgs) -> Result<(String, String)> {
    if let (Some(code), Some(url)) = (&args.code, &args.url) {
        return Ok((code.clone(), url.clone()));
    }
    let path = args.qr.as_ref().ok_or_else(|| anyhow!("give --code and --url, or --qr IMAGE"))?;
    let payloads = countersign::scan::file(path)?;
    payloads
        .iter()
        .find_map(|text| match uri::parse(text) {
            Ok(Payload::WorkActivation { code, url }) => Some((code, url)),
            _ => None,
        })
        .ok_or_else(|| anyhow!("{} holds no work or school activation QR code", path.display()))
}

/// Activates and stores the account with its push link, and its listener
/// key outside the vault (the keyring when the vault uses one and
/// `use_keyring`, else the private file).
pub fn activate(vault: &mut Vault, args: &ActivateArgs, target: (String, String), now: u64, use_keyring: bool) -> Result<()> {
    let (code, url) = target;
    let name = args.device_name.clone().unwrap_or_else(|| std::env::var("HOSTNAME").unwrap_or_else(|_| "Countersign".into()));
    let plaintext = if args.insecure { client::Plaintext::Allowed } else { client::Plaintext::LoopbackOnly };
    // http:// to another machine, allowed by --insecure: warned about as
    // privacyIDEA enrollments over http:// are (activate_with refuses it otherwise).
    if args.insecure
        && client::check_activation_url(&url, client::Plaintext::LoopbackOnly).is_err()
        && client::check_activation_url(&url, plaintext) == Ok(false)
    {
        eprintln!(
            "countersign: warning: {} is reached without encryption (http://); someone on the network could take over this account",
            url.trim()
        );
    }
    let activated = runtime()?.block_on(client::activate_with(&url, &code, &name, plaintext))?;
    let keyring = if use_keyring { reach::keyring_for(vault) } else { None };
    let kept = reach::keep_activation(vault, activated, keyring.as_ref(), now)?;
    for warning in &kept.warnings {
        eprintln!("countersign: warning: {warning}");
    }
    let reach = match kept.placement {
        Some(_) => "receives sign-in requests, also while the vault is locked",
        None => "receives sign-in requests while unlocked (this server cannot deliver to a locked vault)",
    };
    println!("Activated {} [{}]: it shows codes and {reach}.", kept.title, kept.id);
    Ok(())
}

/// `push history`: every request and its outcome from the journal, the
/// chain checked; fails (after printing) when it is broken.
pub fn history(vault: &Vault, json: bool) -> Result<()> {
    let Some(key) = vault.journal_key() else {
        if json {
            println!("[]");
        } else {
            eprintln!("countersign: no sign-in history yet");
        }
        return Ok(());
    };
    let history = journal::read(vault.path(), key)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&history.records)?);
    } else {
        for record in &history.records {
            let when = jiff::Timestamp::from_second(record.at).map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default();
            let place = if record.location.is_empty() { String::new() } else { format!(" from {}", terminal_safe(&record.location)) };
            let detail = if record.detail.is_empty() { String::new() } else { format!(" ({})", terminal_safe(&record.detail)) };
            println!(
                "{when}  {}  {}: {} for {}{place}: {}{detail}",
                terminal_safe(&record.request),
                terminal_safe(&record.account),
                terminal_safe(&record.app),
                terminal_safe(&record.user),
                record.event.label()
            );
        }
    }
    match history.broken {
        Some(broken) => bail!("{broken}"),
        None => Ok(()),
    }
}

/// Relying-party text for a terminal: deceptive characters (escape
/// sequences, carriage returns, bidirectional overrides) shown as
/// `\u{..}`, never sent raw.
fn terminal_safe(text: &str) -> String {
    text.chars().map(|c| if countersign::push::is_deceptive(c) { c.escape_unicode().to_string() } else { c.to_string() }).collect()
}

/// Records an answer given here in the sign-in journal (when the vault has one).
fn record(vault: &Vault, target: &str, challenge: &Challenge, event: journal::Event, detail: &str) {
    if vault.journal_key().is_none() {
        return;
    }
    let record = journal::Record {
        at: now(),
        request: challenge.id.clone(),
        account: target.to_owned(),
        app: challenge.app.clone(),
        user: challenge.user.clone(),
        ip: challenge.ip.clone(),
        location: challenge.location.clone(),
        event,
        detail: detail.to_owned(),
    };
    if let Err(error) = journal::append(vault.path(), &record) {
        eprintln!("countersign: warning: not recorded in the sign-in history: {error}");
    }
}

/// Where sign-in requests come from: a work or school account's link, or a
/// privacyIDEA PUSH token.
#[expect(clippy::large_enum_variant, reason = "one value per command")]
enum Target {
    Countersign(Link),
    PrivacyIdea(privacyidea::Token),
}

fn target(vault: &Vault, which: &Which) -> Result<(String, Target)> {
    let query = which.account.as_deref();
    let mut found: Vec<(String, Target)> = vault
        .entries()
        .iter()
        .filter_map(|e| e.push.clone().map(|link| (e, link)))
        .filter(|(e, link)| query.is_none_or(|q| e.account.matches(q) || link.organization.to_lowercase().contains(&q.to_lowercase())))
        .map(|(e, link)| (e.account.title(), Target::Countersign(link)))
        .collect();
    found.extend(
        vault
            .push_tokens()
            .iter()
            .filter(|t| query.is_none_or(|q| t.token.matches(q)))
            .map(|t| (t.token.title(), Target::PrivacyIdea(t.token.clone()))),
    );
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!(
            "no work or school account or privacyIDEA token{}; activate one with `countersign activate`, or add a privacyIDEA token with `countersign add --uri otpauth://pipush/...`",
            if query.is_some() { " matches" } else { "" }
        ),
        n => bail!(
            "{n} accounts receive sign-in requests ({}); choose one with --account",
            found.iter().map(|(title, _)| title.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// A live source of sign-in requests, opened to answer one (`push approve|deny|report`).
#[expect(clippy::large_enum_variant, reason = "one value per command")]
enum Channel {
    Countersign(Session),
    PrivacyIdea(Poller),
}

impl Channel {
    async fn open(target: Target, interval: Duration) -> Result<Channel> {
        Ok(match target {
            Target::Countersign(link) => {
                let session = Session::connect(&link, jiff::Timestamp::now).await?;
                eprintln!("countersign: connected to {}; waiting for sign-in requests", link.endpoint);
                Channel::Countersign(session)
            }
            Target::PrivacyIdea(token) => {
                eprintln!("countersign: polling {} every {} s for token {}", token.url, interval.as_secs(), token.serial);
                Channel::PrivacyIdea(Poller::new(token, interval, jiff::Timestamp::now)?)
            }
        })
    }

    async fn next(&mut self) -> Result<Event> {
        Ok(match self {
            Channel::Countersign(session) => session.next().await?,
            Channel::PrivacyIdea(poller) => poller.next().await?,
        })
    }

    async fn respond(
        &mut self,
        challenge: &Challenge,
        decision: Decision,
        args: &Answer,
        user_verified: bool,
    ) -> Result<(bool, Status, String)> {
        match self {
            Channel::Countersign(session) => {
                session.respond(&challenge.id, decision, args.number, user_verified, now()).await?;
                Ok(session.verdict(&challenge.id).await?)
            }
            Channel::PrivacyIdea(poller) => {
                let presence = if decision == Decision::Approve { args.answer.as_deref() } else { None };
                poller.respond(&challenge.id, decision, presence).await?;
                poller.verdict(&challenge.id).ok_or_else(|| anyhow!("no verdict"))
            }
        }
    }
}

/// `add --uri/--qr` with a privacyIDEA enrollment link: step 2 of the
/// enrollment (an RSA-4096 key, sent to the server), then the token is kept.
pub fn enroll_privacyidea(vault: &mut Vault, label: &str, parameters: &BTreeMap<String, String>, read_at: i64) -> Result<()> {
    let enrollment = privacyidea::Enrollment::from_link(label, parameters)?;
    let serial = enrollment.serial.clone();
    if enrollment.url.starts_with("http://") {
        eprintln!(
            "countersign: warning: {} is reached without encryption (http://); someone on the network could take over this token",
            enrollment.url
        );
    } else if !enrollment.sslverify {
        eprintln!(
            "countersign: warning: the link turns off certificate checks (sslverify=0); someone on the network could take over this token"
        );
    }
    eprintln!("countersign: making an RSA-4096 key for privacyIDEA token {serial} (a few seconds)");
    let token = runtime()?
        .block_on(privacyidea::client::enroll(enrollment, read_at, now()))
        .with_context(|| format!("enrolling privacyIDEA token {serial}"))?;
    let title = token.title();
    let now = now() as u64;
    let id = vault.add_push_token(token, now)?;
    vault.ensure_journal(now)?;
    println!("Enrolled {title} [{id}]: it receives privacyIDEA sign-in requests (countersign push watch).");
    Ok(())
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// `push approve|deny|report ID`. `verify_user` checks the vault password
/// when the organisation requires it.
pub fn answer(
    vault: &Vault,
    args: &Answer,
    decision: Decision,
    interval: Duration,
    verify_user: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let (title, target) = target(vault, &args.which)?;
    let runtime = runtime()?;
    let mut channel = runtime.block_on(Channel::open(target, interval))?;
    // Pending requests arrive first: wait for this one.
    let challenge = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(args.timeout), async {
            loop {
                match channel.next().await? {
                    Event::Challenge(challenge) if challenge.id == args.id => return Ok::<Challenge, anyhow::Error>(challenge),
                    Event::Dropped(reason) => eprintln!("countersign: {reason}"),
                    _ => {}
                }
            }
        })
        .await
    });
    let challenge = match challenge {
        Ok(result) => result?,
        Err(_) => {
            bail!("no pending sign-in request {} arrived within {} s (answered, expired, or for another account)", args.id, args.timeout)
        }
    };
    if decision == Decision::Approve && challenge.number_matching && args.number.is_none() {
        bail!("this request asks for the number the sign-in page shows: add --number N");
    }
    if args.answer.is_some() && challenge.presence_options.is_empty() {
        bail!("this request does not ask to pick an option; leave out --answer");
    }
    if decision == Decision::Approve && !challenge.presence_options.is_empty() {
        match &args.answer {
            None => bail!(
                "this request asks you to pick the option the sign-in page shows ({}): add --answer X",
                challenge.presence_options.join(", ")
            ),
            Some(answer) if !challenge.presence_options.contains(answer) => {
                bail!("{answer:?} is not one of the options {}", challenge.presence_options.join(", "))
            }
            Some(_) => {}
        }
    }
    let user_verified = decision == Decision::Approve && challenge.pin_required;
    if user_verified {
        verify_user()?;
    }
    let (accepted, status, reason) = runtime.block_on(channel.respond(&challenge, decision, args, user_verified))?;
    let outcome = match (accepted, &status) {
        (true, Status::Approved) => Some(journal::Event::Approved),
        (true, Status::Denied) => Some(journal::Event::Denied),
        (true, Status::Reported) => Some(journal::Event::Reported),
        (false, Status::Expired) => Some(journal::Event::Expired),
        _ => None,
    };
    if let Some(outcome) = outcome {
        record(
            vault,
            &title,
            &challenge,
            outcome,
            &format!("answered from the command line{}", if reason.is_empty() { String::new() } else { format!("; {reason}") }),
        );
    }
    if !accepted {
        bail!(
            "the server refused the answer: {reason}{}",
            if status == Status::Unknown { String::new() } else { format!(" (status: {status})") }
        );
    }
    println!("{}: {status}{}", challenge.id, if reason.is_empty() { String::new() } else { format!(" ({reason})") });
    if decision == Decision::Approve && status != Status::Approved {
        bail!("not approved");
    }
    Ok(())
}
