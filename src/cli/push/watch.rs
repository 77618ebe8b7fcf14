//! `countersign push watch`: sign-in requests printed as they arrive.

use std::time::Duration;

use anyhow::Result;
use countersign::push::client::Event;
use countersign::push::{Challenge, Shield};
use countersign::vault::Vault;

use super::{Channel, Which, now, runtime, target, terminal_safe};

/// One line for people. Relying-party text never reaches the terminal raw.
fn describe(challenge: &Challenge, seconds_left: i64) -> String {
    let safe = terminal_safe;
    let mut text = format!(
        "{}  {} wants {} ({}) to sign in",
        safe(&challenge.id),
        safe(&challenge.app),
        safe(&challenge.user),
        safe(&challenge.organization)
    );
    if !challenge.location.is_empty() || !challenge.ip.is_empty() {
        text.push_str(&format!(
            " from {} {}",
            safe(&challenge.location),
            if challenge.ip.is_empty() { String::new() } else { format!("[{}]", safe(&challenge.ip)) }
        ));
    }
    if !challenge.question.is_empty() {
        text.push_str(&format!(": {}", safe(&challenge.question)));
    }
    text.push_str(&format!("; {seconds_left} s left"));
    if challenge.number_matching {
        text.push_str("; type the number the sign-in page shows (--number N)");
    }
    if !challenge.presence_options.is_empty() {
        text.push_str(&format!("; pick the option the sign-in page shows: {} (--answer X)", safe(&challenge.presence_options.join(", "))));
    }
    if challenge.pin_required {
        text.push_str("; your vault password is asked");
    }
    text
}

/// `push watch`.
pub fn watch(vault: &Vault, which: &Which, json: bool, count: Option<usize>, timeout: Option<u64>, interval: Duration) -> Result<()> {
    let (title, target) = target(vault, which)?;
    runtime()?.block_on(async {
        let watching = async {
            let mut channel = Channel::open(target, interval).await?;
            if let Some(offset) = channel.clock_offset() {
                let mut clock = countersign::clock::Clock::default();
                clock.observe(&title, offset);
                if let Some(warning) = clock.warning() {
                    eprintln!("countersign: warning: {warning}");
                }
            }
            let mut shield = Shield::default();
            let mut seen = 0;
            loop {
                match channel.next().await? {
                    Event::Challenge(challenge) => {
                        let flagged = shield.observe(challenge.created_at);
                        if json {
                            let mut value = serde_json::to_value(&challenge)?;
                            value["flagged"] = serde_json::Value::Bool(flagged);
                            println!("{value}");
                        } else {
                            let arrived = now();
                            println!("{}", describe(&challenge, challenge.deadline(arrived, channel.clock_offset()) - arrived));
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
                    Event::Result { .. } | Event::Alive | Event::ListenerRegistered(_) => {}
                }
            }
        };
        match timeout {
            Some(seconds) => tokio::time::timeout(Duration::from_secs(seconds), watching).await.unwrap_or(Ok(())),
            None => watching.await,
        }
    })
}
