//! `countersign phone attach|detach|watch|press|hang-up|reply`: a virtual
//! phone. The device answers for one of its user's phone numbers, and a
//! server with the `virtual` phone provider sends that number's texts and
//! calls here, over the push connection, signed like sign-in requests.

use std::time::Duration;

use anyhow::{Result, bail};
use clap::Subcommand;
use countersign::push::client::{Credential, Event, Session, Update};
use countersign::push::{Link, PhoneCall, PhoneText, Status, TextBody};
use countersign::reconnect;
use countersign::vault::Vault;
use futures_util::StreamExt;

use super::{Target, WatchArgs, Which, now, runtime, target, terminal_safe};

#[derive(Subcommand)]
pub enum PhoneCommand {
    /// Answer for one of your phone numbers (as set on the enrollment page):
    /// the server's texts and calls to it then come to this device
    Attach {
        /// The number, international (+41 44 668 18 00)
        number: String,
        #[command(flatten)]
        which: Which,
    },
    /// Stop answering for a number
    Detach {
        number: String,
        #[command(flatten)]
        which: Which,
    },
    /// Print texts and calls as they arrive, until stopped (or --count/--timeout)
    Watch(WatchArgs),
    /// Press keys on a call: '#' approves the sign-in, '0#' reports it ("It wasn't me")
    Press {
        /// The call's id (from `phone watch`)
        id: String,
        keys: String,
        #[command(flatten)]
        which: Which,
    },
    /// Hang up a call: its sign-in is denied
    HangUp {
        id: String,
        #[command(flatten)]
        which: Which,
    },
    /// Reply to a text with its code: the sign-in is approved if it is right
    Reply {
        /// The text's id (from `phone watch`)
        id: String,
        code: String,
        #[command(flatten)]
        which: Which,
    },
}

/// The work or school account that `which` names: only Countersign's
/// server has virtual phones.
fn link(vault: &Vault, which: &Which) -> Result<Link> {
    match target(vault, which)? {
        (_, Target::Countersign(link)) => Ok(link),
        (title, Target::PrivacyIdea(_)) => bail!("{title} is a privacyIDEA token: only work or school accounts have virtual phones"),
    }
}

pub fn run(vault: &Vault, command: PhoneCommand) -> Result<()> {
    match command {
        PhoneCommand::Attach { number, which } => attach(&link(vault, &which)?, &number, true),
        PhoneCommand::Detach { number, which } => attach(&link(vault, &which)?, &number, false),
        PhoneCommand::Watch(WatchArgs { which, json, count, timeout }) => watch(link(vault, &which)?, json, count, timeout),
        PhoneCommand::Press { id, keys, which } => answer(&link(vault, &which)?, &id, Answer::Keys(&keys)),
        PhoneCommand::HangUp { id, which } => answer(&link(vault, &which)?, &id, Answer::HangUp),
        PhoneCommand::Reply { id, code, which } => answer(&link(vault, &which)?, &id, Answer::Reply(&code)),
    }
}

fn attach(link: &Link, number: &str, attach: bool) -> Result<()> {
    let numbers = runtime()?.block_on(async {
        let mut session = Session::connect(link, jiff::Timestamp::now).await?;
        session.phone(number, attach).await
    })?;
    if numbers.is_empty() {
        println!("This device answers for no phone number.");
    } else {
        println!("This device answers for {}.", numbers.join(", "));
    }
    Ok(())
}

enum Answer<'a> {
    Keys(&'a str),
    HangUp,
    Reply(&'a str),
}

fn answer(link: &Link, id: &str, answer: Answer<'_>) -> Result<()> {
    let (accepted, status, reason) = runtime()?.block_on(async {
        let mut session = Session::connect(link, jiff::Timestamp::now).await?;
        match answer {
            Answer::Keys(keys) => session.keys(id, keys, false).await,
            Answer::HangUp => session.keys(id, "", true).await,
            Answer::Reply(code) => session.reply(id, code).await,
        }
    })?;
    let said = if reason.is_empty() { String::new() } else { format!(" ({})", terminal_safe(&reason)) };
    // Keys that decide nothing leave the call waiting for more.
    if accepted || status == Status::Pending && matches!(answer, Answer::Keys(_)) {
        println!("{}: {status}{said}", terminal_safe(id));
        return Ok(());
    }
    bail!(
        "the server refused: {}{}",
        terminal_safe(&reason),
        if status == Status::Unknown { String::new() } else { format!(" (status: {status})") }
    )
}

/// Seconds left of a text or call made at `created` that ends at
/// `expires` (the server's clock), counted from now or its making.
fn seconds_left(created: i64, expires: i64) -> i64 {
    expires - created.max(now().min(expires))
}

/// One line for people; the server's text never reaches the terminal raw.
fn describe_text(text: &PhoneText, body: &TextBody, seconds_left: i64) -> String {
    format!(
        "{}  text to {}: {}\n  code {}; {seconds_left} s left; reply with: countersign phone reply {} {}",
        terminal_safe(&text.id),
        terminal_safe(&text.to),
        terminal_safe(&body.text),
        terminal_safe(&body.code),
        terminal_safe(&text.id),
        terminal_safe(&body.code),
    )
}

fn describe_call(call: &PhoneCall, seconds_left: i64) -> String {
    let extension = if call.extension.is_empty() { String::new() } else { format!(" ext. {}", terminal_safe(&call.extension)) };
    format!(
        "{}  call to {}{extension}: \"{}\"\n  {seconds_left} s left; press # to approve: countersign phone press {} '#' (0# reports, hang-up denies)",
        terminal_safe(&call.id),
        terminal_safe(&call.to),
        terminal_safe(&call.say),
        terminal_safe(&call.id),
    )
}

/// `phone watch`: reconnects as `push watch` does; prints each text and
/// call as it arrives. Texts and calls are not sent again on reconnecting:
/// one sent while the connection was down is lost, as on a phone that was off.
fn watch(link: Link, json: bool, count: Option<usize>, timeout: Option<u64>) -> Result<()> {
    let (endpoint, device_key) = (link.endpoint.clone(), link.device_key.clone());
    runtime()?.block_on(async {
        let mut unreached = None;
        let watching = async {
            let mut updates = std::pin::pin!(countersign::push::client::watch(Credential::Device(link), jiff::Timestamp::now));
            let (mut seen, mut connected) = (0, false);
            while let Some(update) = updates.next().await {
                let (line, value) = match update {
                    Update::Connected(_) => {
                        eprintln!(
                            "countersign: {}",
                            if connected {
                                format!("connected to {endpoint} again")
                            } else {
                                format!("connected to {endpoint}; waiting for texts and calls")
                            }
                        );
                        connected = true;
                        unreached = None;
                        continue;
                    }
                    Update::Disconnected { reason, retry_in } | Update::Refused { reason, retry_in, .. } => {
                        eprintln!("countersign: {}", reconnect::notice(&reason, retry_in));
                        if !connected {
                            unreached = Some(reason);
                        }
                        continue;
                    }
                    Update::Event(Event::Text(text)) => {
                        let body = match text.open(&device_key) {
                            Ok(body) => body,
                            Err(error) => {
                                eprintln!("countersign: text {} could not be read: {error}", terminal_safe(&text.id));
                                continue;
                            }
                        };
                        let left = seconds_left(text.created_at, text.expires_at);
                        // What it says, in place of the sealed box.
                        let mut value = serde_json::to_value(&text)?;
                        value["kind"] = "text".into();
                        value["text"] = body.text.as_str().into();
                        value["code"] = body.code.as_str().into();
                        if let Some(fields) = value.as_object_mut() {
                            fields.remove("sealed");
                        }
                        (describe_text(&text, &body, left), value)
                    }
                    Update::Event(Event::Call(call)) => {
                        let left = seconds_left(call.created_at, call.expires_at);
                        let mut value = serde_json::to_value(&call)?;
                        value["kind"] = "call".into();
                        (describe_call(&call, left), value)
                    }
                    Update::Event(Event::Dropped(reason)) => {
                        eprintln!("countersign: {reason}");
                        continue;
                    }
                    _ => continue,
                };
                if json {
                    println!("{value}");
                } else {
                    println!("{line}");
                }
                seen += 1;
                if count.is_some_and(|count| seen >= count) {
                    return Ok(());
                }
            }
            bail!("the connection ended")
        };
        let Some(seconds) = timeout else { return watching.await };
        match tokio::time::timeout(Duration::from_secs(seconds), watching).await {
            Ok(result) => result,
            Err(_) => match unreached {
                Some(reason) => bail!("not connected in {seconds} s: {reason}"),
                None => Ok(()),
            },
        }
    })
}
