//! `countersign activate` and `countersign push watch|approve|deny|report`:
//! the phone's side of a push sign-in, for testers and scripts.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use countersign::push::client::{self, Event, Session};
use countersign::push::{Challenge, Decision, Link, Shield};
use countersign::uri::{self, Payload};
use countersign::vault::{Entry, Vault};

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
}

#[derive(Subcommand)]
pub enum PushCommand {
    /// Print incoming sign-in requests until stopped (or --count/--timeout)
    Watch {
        #[command(flatten)]
        which: Which,
        /// Print JSON lines
        #[arg(long)]
        json: bool,
        /// Stop after this many requests
        #[arg(long)]
        count: Option<usize>,
        /// Stop after this many seconds
        #[arg(long)]
        timeout: Option<u64>,
    },
    /// Authenticate: approve a sign-in request
    Approve(Answer),
    /// Deny a sign-in request
    Deny(Answer),
    /// "It wasn't me": deny and report, which blocks further requests for a while
    Report(Answer),
}

#[derive(Args)]
pub struct Which {
    /// The work or school account (text matching its organisation or user), when there are several
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

/// Activates and stores the account with its push link.
pub fn activate(vault: &mut Vault, args: &ActivateArgs, target: (String, String), now: u64) -> Result<()> {
    let (code, url) = target;
    let name = args.device_name.clone().unwrap_or_else(|| std::env::var("HOSTNAME").unwrap_or_else(|_| "Countersign".into()));
    let (account, link) = runtime()?.block_on(client::activate(&url, &code, &name))?;
    let title = account.title();
    let id = vault.add_push(account, link, now)?;
    println!("Activated {title} [{id}]: it shows codes and receives sign-in requests.");
    Ok(())
}

fn link<'a>(vault: &'a Vault, which: &Which) -> Result<&'a Entry> {
    let linked: Vec<&Entry> = vault.entries().iter().filter(|e| e.push.is_some()).filter(|e| which.account.as_deref().is_none_or(|q| e.account.matches(q))).collect();
    match linked.as_slice() {
        [one] => Ok(one),
        [] => bail!("no work or school account{}; activate one with `countersign activate`", if which.account.is_some() { " matches" } else { "" }),
        _ => bail!("{} work or school accounts match; choose one with --account", linked.len()),
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn describe(challenge: &Challenge, now: i64) -> String {
    let mut text = format!("{}  {} wants {} ({}) to sign in", challenge.id, challenge.app, challenge.user, challenge.organization);
    if !challenge.location.is_empty() || !challenge.ip.is_empty() {
        text.push_str(&format!(" from {} {}", challenge.location, if challenge.ip.is_empty() { String::new() } else { format!("[{}]", challenge.ip) }));
    }
    text.push_str(&format!("; {} s left", challenge.seconds_left(now)));
    if challenge.number_matching {
        text.push_str("; type the number the sign-in page shows (--number N)");
    }
    if challenge.pin_required {
        text.push_str("; your vault password is asked");
    }
    text
}

/// `push watch`.
pub fn watch(vault: &Vault, which: &Which, json: bool, count: Option<usize>, timeout: Option<u64>) -> Result<()> {
    let link: Link = link(vault, which)?.push.clone().ok_or_else(|| anyhow!("no push link"))?;
    runtime()?.block_on(async {
        let watching = async {
            let mut session = Session::connect(&link).await?;
            eprintln!("countersign: connected to {}; waiting for sign-in requests", link.endpoint);
            let mut shield = Shield::default();
            let mut seen = 0;
            loop {
                match session.next().await? {
                    Event::Challenge(challenge) => {
                        let flagged = shield.observe(challenge.created_at);
                        if json {
                            let mut value = serde_json::to_value(&challenge)?;
                            value["flagged"] = serde_json::Value::Bool(flagged);
                            println!("{value}");
                        } else {
                            println!("{}", describe(&challenge, now()));
                            if flagged {
                                println!("  warning: {}", shield.warning());
                            }
                        }
                        seen += 1;
                        if count.is_some_and(|count| seen >= count) {
                            return Ok::<(), anyhow::Error>(());
                        }
                    }
                    Event::Dropped(reason) => eprintln!("countersign: {reason}"),
                    Event::Result { .. } | Event::Alive => {}
                }
            }
        };
        match timeout {
            Some(seconds) => tokio::time::timeout(Duration::from_secs(seconds), watching).await.unwrap_or(Ok(())),
            None => watching.await,
        }
    })
}

/// `push approve|deny|report ID`. `verify_user` checks the vault password
/// when the organisation requires it.
pub fn answer(vault: &Vault, args: &Answer, decision: Decision, verify_user: impl FnOnce() -> Result<()>) -> Result<()> {
    let link: Link = link(vault, &args.which)?.push.clone().ok_or_else(|| anyhow!("no push link"))?;
    let runtime = runtime()?;
    let mut session = runtime.block_on(Session::connect(&link))?;
    // Pending requests arrive first: wait for this one.
    let challenge = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(args.timeout), async {
            loop {
                match session.next().await? {
                    Event::Challenge(challenge) if challenge.id == args.id => return Ok::<Challenge, client::Error>(challenge),
                    Event::Dropped(reason) => eprintln!("countersign: {reason}"),
                    _ => {}
                }
            }
        })
        .await
    });
    let challenge = match challenge {
        Ok(result) => result?,
        Err(_) => bail!("no pending sign-in request {} arrived within {} s (answered, expired, or for another account)", args.id, args.timeout),
    };
    if decision == Decision::Approve && challenge.number_matching && args.number.is_none() {
        bail!("this request asks for the number the sign-in page shows: add --number N");
    }
    let user_verified = decision == Decision::Approve && challenge.pin_required;
    if user_verified {
        verify_user()?;
    }
    let (accepted, status, reason) = runtime.block_on(async {
        session.respond(&challenge.id, decision, args.number, user_verified, now()).await?;
        session.verdict(&challenge.id).await
    })?;
    if !accepted {
        bail!("the server refused the answer: {reason}{}", if status.is_empty() { String::new() } else { format!(" (status: {status})") });
    }
    println!("{}: {status}{}", challenge.id, if reason.is_empty() { String::new() } else { format!(" ({reason})") });
    if decision == Decision::Approve && status != "approved" {
        bail!("not approved");
    }
    Ok(())
}
