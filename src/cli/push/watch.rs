//! `countersign push watch`: sign-in requests printed as they arrive, each
//! once, through the window's own reconnecting connection.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Result, bail};
use countersign::clock::Clock;
use countersign::privacyidea;
use countersign::push::client::{self, Credential, Event, Update};
use countersign::push::{Challenge, Shield};
use countersign::reconnect;
use countersign::vault::Vault;
use futures_util::{Stream, StreamExt};

use super::{Target, Which, now, runtime, target, terminal_safe};

/// How long a printed request is remembered after it expired: a server
/// whose clock is a little behind ours may still resend it as pending.
const GRACE: i64 = 60;

/// The most requests remembered at once; far more than a person receives
/// in a request's lifetime, and a bound whatever a server sends.
const REMEMBERED: usize = 1024;

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

/// The requests this run printed, by id, each with when it expires (our
/// Unix seconds): every new session resends the pending ones, and they are
/// printed once. Forgotten [`GRACE`] after they expire; at most
/// [`REMEMBERED`], the soonest to expire making room.
#[derive(Debug, Default)]
struct Printed {
    expiries: HashMap<String, i64>,
}

impl Printed {
    /// Whether `id` is new at `now`; it is then remembered until `expires`
    /// and [`GRACE`] past.
    fn first(&mut self, id: &str, expires: i64, now: i64) -> bool {
        if self.expiries.contains_key(id) {
            return false;
        }
        self.expiries.retain(|_, expiry| expiry.saturating_add(GRACE) >= now);
        if self.expiries.len() >= REMEMBERED
            && let Some(soonest) = self.expiries.iter().min_by_key(|(_, expiry)| **expiry).map(|(id, _)| id.clone())
        {
            self.expiries.remove(&soonest);
        }
        self.expiries.insert(id.to_owned(), expires);
        true
    }
}

/// What `push watch` prints, and what it has learnt so far.
struct Watch {
    title: String,
    json: bool,
    count: Option<usize>,
    /// Said once connected: the first time, then after each drop.
    hello: String,
    again: String,
    /// Whether the server's clock counts (a Countersign server; privacyIDEA's
    /// times are already this computer's, from when a request was first seen).
    server_clock: bool,
    clock: Clock,
    clock_offset: Option<i64>,
    warned: Option<String>,
    shield: Shield,
    printed: Printed,
    /// The last reason a try failed, while it never connected.
    unreached: Option<String>,
    connected: bool,
}

impl Watch {
    /// Prints requests from `updates` until `count` of them were printed.
    async fn run(&mut self, updates: impl Stream<Item = Update>) -> Result<()> {
        let mut updates = std::pin::pin!(updates);
        let mut seen = 0;
        while let Some(update) = updates.next().await {
            match update {
                Update::Connecting => {}
                Update::Connected(_) => {
                    eprintln!("countersign: {}", if self.connected { &self.again } else { &self.hello });
                    self.connected = true;
                    self.unreached = None;
                }
                Update::ClockOffset(offset) => self.observe(offset),
                Update::Disconnected { reason, retry_in } | Update::Refused { reason, retry_in, .. } => {
                    eprintln!("countersign: {}", reconnect::notice(&reason, retry_in));
                    if !self.connected {
                        self.unreached = Some(reason);
                    }
                }
                Update::Event(Event::Challenge(challenge)) => {
                    if self.print(&challenge)? {
                        seen += 1;
                        if self.count.is_some_and(|count| seen >= count) {
                            return Ok(());
                        }
                    }
                }
                Update::Event(Event::Dropped(reason)) => eprintln!("countersign: {reason}"),
                // Texts and calls are `phone watch`'s.
                Update::Event(
                    Event::Result { .. }
                    | Event::Alive
                    | Event::ListenerRegistered(_)
                    | Event::Text(_)
                    | Event::Call(_)
                    | Event::Phones { .. },
                ) => {}
            }
        }
        bail!("the connection ended")
    }

    /// The server said its clock: warned about when it is off, once for each
    /// new warning.
    fn observe(&mut self, offset: i64) {
        if !self.server_clock {
            return;
        }
        self.clock_offset = Some(offset);
        self.clock.observe(&self.title, offset);
        let warning = self.clock.warning();
        if let Some(warning) = &warning
            && self.warned.as_ref() != Some(warning)
        {
            eprintln!("countersign: warning: {warning}");
        }
        self.warned = warning;
    }

    /// Prints `challenge` unless it already was; whether it was printed now.
    fn print(&mut self, challenge: &Challenge) -> Result<bool> {
        let arrived = now();
        let expires = challenge.deadline(arrived, self.clock_offset);
        if !self.printed.first(&challenge.id, expires, arrived) {
            return Ok(false);
        }
        let flagged = self.shield.observe(challenge.created_at);
        if self.json {
            let mut value = serde_json::to_value(challenge)?;
            value["flagged"] = serde_json::Value::Bool(flagged);
            println!("{value}");
        } else {
            println!("{}", describe(challenge, expires - arrived));
            if flagged {
                println!("  warning: {}", self.shield.warning());
            }
        }
        Ok(true)
    }
}

/// `push watch`: reconnects as the window does when the connection fails
/// or drops (first try within 2 s, then backing off to a minute), saying so
/// on standard error, until `count` requests were printed or `timeout`
/// seconds passed; fails at the timeout when the server was never reached.
pub fn watch(vault: &Vault, which: &Which, json: bool, count: Option<usize>, timeout: Option<u64>, interval: Duration) -> Result<()> {
    let (title, target) = target(vault, which)?;
    let (hello, again, server_clock) = match &target {
        Target::Countersign(link) => {
            (format!("connected to {}; waiting for sign-in requests", link.endpoint), format!("connected to {} again", link.endpoint), true)
        }
        Target::PrivacyIdea(token) => (
            format!("polling {} every {} s for token {}", token.url, interval.as_secs(), token.serial),
            format!("reached {} again", token.url),
            false,
        ),
    };
    let mut watch = Watch {
        title,
        json,
        count,
        hello,
        again,
        server_clock,
        clock: Clock::default(),
        clock_offset: None,
        warned: None,
        shield: Shield::default(),
        printed: Printed::default(),
        unreached: None,
        connected: false,
    };
    runtime()?.block_on(async {
        // The streams run on this runtime; both end with it.
        let watching = async {
            match target {
                Target::Countersign(link) => watch.run(client::watch(Credential::Device(link), jiff::Timestamp::now)).await,
                Target::PrivacyIdea(token) => watch.run(privacyidea::client::watch(token, interval, jiff::Timestamp::now)).await,
            }
        };
        let Some(seconds) = timeout else { return watching.await };
        match tokio::time::timeout(Duration::from_secs(seconds), watching).await {
            Ok(result) => result,
            Err(_) => match &watch.unreached {
                Some(reason) => bail!("not connected in {seconds} s: {reason}"),
                None => Ok(()),
            },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_printed_once_and_forgotten_after_it_expired() {
        let mut printed = Printed::default();
        assert!(printed.first("a", 1060, 1000));
        assert!(!printed.first("a", 1060, 1001), "resent by the next session");
        assert!(printed.first("b", 1090, 1010));
        // Past its expiry and the grace: "a" is forgotten, "b" still known.
        assert!(printed.first("c", 1300, 1060 + GRACE + 1));
        assert!(!printed.expiries.contains_key("a"));
        assert!(!printed.first("b", 1090, 1060 + GRACE + 1));
    }

    #[test]
    fn at_most_so_many_requests_are_remembered() {
        let mut printed = Printed::default();
        for n in 0..REMEMBERED as i64 {
            assert!(printed.first(&n.to_string(), 2000 + n, 1000));
        }
        assert!(printed.first("new", 5000, 1000));
        assert_eq!(printed.expiries.len(), REMEMBERED);
        assert!(!printed.expiries.contains_key("0"), "the soonest to expire made room");
        assert!(!printed.first("1", 2001, 1000) && !printed.first("new", 5000, 1000));
    }
}
