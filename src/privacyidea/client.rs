//! The app's side of privacyIDEA PUSH over HTTP(S) (feature `client`):
//! finishing an enrollment, polling for challenges, answering them. [`watch`]
//! turns polling into the same [`Update`] stream as Countersign's own
//! server, so the window and `countersign push` treat both alike.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Deserialize;

use super::{Challenge, DeviceKey, Enrollment, RawChallenge, Token};
use crate::clock::Now;
use crate::push::client::{Answer, Event, Update, install_crypto};
use crate::push::{self, Decision, Status};
use crate::reconnect::{self, Backoff};

/// How long the server may take to answer anything.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Why talking to privacyIDEA failed. Never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("cannot reach privacyIDEA: {0}")]
    Network(String),
    #[error("privacyIDEA refused (HTTP {status}): {message}")]
    Server { status: u16, message: String },
    #[error("privacyIDEA answered something unexpected: {0}")]
    Protocol(String),
    #[error(transparent)]
    Token(#[from] super::Error),
}

/// privacyIDEA's JSON envelope: `result.status`, `result.value` or
/// `result.error.message`, and `detail`.
#[derive(Deserialize)]
struct Reply<T> {
    result: ReplyResult<T>,
    #[serde(default)]
    detail: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ReplyResult<T> {
    #[serde(default)]
    status: bool,
    value: Option<T>,
    #[serde(default)]
    error: Option<ReplyError>,
}

#[derive(Deserialize)]
struct ReplyError {
    #[serde(default)]
    message: String,
}

fn http(sslverify: bool) -> Result<reqwest::Client, Error> {
    install_crypto();
    // sslverify=0 is the administrator's choice for a self-signed server, as
    // privacyIDEA's own app honours it; challenges stay signed either way.
    reqwest::Client::builder().timeout(TIMEOUT).danger_accept_invalid_certs(!sslverify).build().map_err(|e| Error::Network(e.to_string()))
}

/// Reads a reply: the value on success, else the server's message.
async fn read<T: for<'de> Deserialize<'de>>(response: reqwest::Response) -> Result<(T, Option<serde_json::Value>), Error> {
    let status = response.status();
    let body = response.bytes().await.map_err(|e| Error::Network(e.without_url().to_string()))?;
    let reply: Reply<T> = serde_json::from_slice(&body).map_err(|_| {
        if status.is_success() {
            Error::Protocol("not a privacyIDEA reply".into())
        } else {
            Error::Server { status: status.as_u16(), message: String::new() }
        }
    })?;
    match (status.is_success() && reply.result.status, reply.result.value) {
        (true, Some(value)) => Ok((value, reply.detail)),
        _ => Err(Error::Server {
            status: status.as_u16(),
            message: reply.result.error.map(|e| e.message).unwrap_or_else(|| "no reason given".into()),
        }),
    }
}

/// Step 2 of the enrollment: a new RSA-4096 key, sent to the server, which
/// answers with its own. `read_at` is when the link was read (its TTL counts
/// from then), on the same clock as `now`.
pub async fn enroll(enrollment: Enrollment, read_at: i64, now: i64) -> Result<Token, Error> {
    enrollment.check_ttl(read_at, now)?;
    let started = std::time::Instant::now();
    let key = tokio::task::spawn_blocking(DeviceKey::generate).await.map_err(|e| Error::Protocol(e.to_string()))??;
    // Making the key takes seconds: the link must still be valid when it
    // goes out. The time it took is measured on the monotonic clock and
    // added to `now`, so the two readings share one clock.
    enrollment.check_ttl(read_at, now.saturating_add(started.elapsed().as_secs() as i64))?;
    enroll_with(enrollment, key).await
}

/// [`enroll`] with a key made beforehand (tests use smaller ones).
pub async fn enroll_with(enrollment: Enrollment, key: DeviceKey) -> Result<Token, Error> {
    let client = http(enrollment.sslverify)?;
    let form = enrollment.form(&key)?;
    let response = client.post(&enrollment.url).form(&form).send().await.map_err(|e| Error::Network(e.without_url().to_string()))?;
    let (_, detail): (bool, _) = read(response).await?;
    let public_key = detail
        .as_ref()
        .and_then(|detail| detail.get("public_key"))
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| Error::Protocol("no public_key in the enrollment answer".into()))?;
    Ok(enrollment.finish(key, public_key)?)
}

/// A poll's challenges: verified ones, and why the others were dropped.
#[derive(Debug, Default)]
pub struct Polled {
    pub challenges: Vec<Challenge>,
    pub dropped: Vec<String>,
    /// The server's clock minus ours, from its `Date` header.
    pub clock_offset: Option<i64>,
}

/// The server's clock minus ours (`now`, read as the answer is in), from an
/// HTTP `Date` header (1 s resolution).
fn clock_offset(response: &reqwest::Response, now: Now) -> Option<i64> {
    let date = response.headers().get(reqwest::header::DATE)?.to_str().ok()?;
    let server = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(date).ok()?;
    Some(server.as_second() - now().as_second())
}

/// Asks for the open challenges once, dated by `now`.
pub async fn poll(client: &reqwest::Client, token: &Token, now: Now) -> Result<Polled, Error> {
    let timestamp = now().to_string();
    let query = token.poll_query(&timestamp)?;
    let response = client.get(&token.url).query(&query).send().await.map_err(|e| Error::Network(e.without_url().to_string()))?;
    let clock_offset = clock_offset(&response, now);
    let (raw, _): (Vec<serde_json::Value>, _) = read(response).await?;
    let mut polled = Polled { clock_offset, ..Polled::default() };
    for value in raw {
        let nonce = value.get("nonce").and_then(serde_json::Value::as_str).unwrap_or("?").chars().take(64).collect::<String>();
        match serde_json::from_value::<RawChallenge>(value) {
            Ok(raw) => match token.verify(&raw) {
                Ok(challenge) => polled.challenges.push(challenge),
                Err(error) => polled.dropped.push(format!("dropped privacyIDEA challenge {nonce} for {}: {error}", token.serial)),
            },
            Err(_) => polled.dropped.push(format!("dropped privacyIDEA challenge {nonce} for {}: it is not a challenge", token.serial)),
        }
    }
    Ok(polled)
}

/// Answers one challenge: whether privacyIDEA took it (`false`: a wrong
/// presence option, already answered or expired), and the code to type on
/// the sign-in page when the server runs "code to phone".
pub async fn answer(
    client: &reqwest::Client,
    token: &Token,
    challenge: &Challenge,
    decision: Decision,
    presence: Option<&str>,
) -> Result<(bool, Option<String>), Error> {
    let form = token.answer_form(challenge, decision, presence)?;
    let response = client.post(&challenge.url).form(&form).send().await.map_err(|e| Error::Network(e.without_url().to_string()))?;
    let (accepted, detail): (bool, _) = read(response).await?;
    let display_code = detail
        .as_ref()
        .and_then(|d| d.get("display_code"))
        .and_then(|c| c.as_str().map(str::to_owned).or_else(|| c.as_u64().map(|n| n.to_string())));
    Ok((accepted, display_code))
}

/// A verified challenge as the prompt and `countersign push` show it.
pub fn to_push_challenge(token: &Token, challenge: &Challenge, first_seen: i64) -> push::Challenge {
    push::Challenge {
        v: 1,
        id: challenge.nonce.clone(),
        device_id: token.serial.clone(),
        organization: token.issuer.clone(),
        user: token.label.clone(),
        app: challenge.title.clone(),
        ip: String::new(),
        location: String::new(),
        created_at: first_seen,
        expires_at: first_seen + super::CHALLENGE_SECONDS,
        number_matching: false,
        pin_required: token.pin,
        question: challenge.question.clone(),
        presence_options: challenge.presence_options.clone(),
    }
}

/// What the server's verdict on an answer is called in [`Event::Result`].
fn outcome(decision: Decision) -> Status {
    match decision {
        Decision::Approve => Status::Approved,
        Decision::Deny => Status::Denied,
        Decision::Report => Status::Reported,
    }
}

/// Polls one token and answers through it, as a session of Countersign's
/// own server does: challenges come once each, answers give a verdict.
pub struct Poller {
    token: Token,
    client: reqwest::Client,
    interval: Duration,
    /// Open challenges and when each was first seen.
    open: HashMap<String, (Challenge, i64)>,
    events: std::collections::VecDeque<Event>,
    verdicts: BTreeMap<String, (bool, Status, String)>,
    polled_once: bool,
    /// Drop reasons already reported (each once, not on every poll).
    reported: std::collections::HashSet<String>,
    /// The server's clock minus ours, from the last poll's `Date` header.
    clock_offset: Option<i64>,
    now: Now,
}

impl Poller {
    /// Polls every `interval`, reading the time with `now`.
    pub fn new(token: Token, interval: Duration, now: Now) -> Result<Self, Error> {
        let client = http(token.sslverify)?;
        Ok(Poller {
            token,
            client,
            interval: interval.max(Duration::from_secs(1)),
            open: HashMap::new(),
            events: Default::default(),
            verdicts: BTreeMap::new(),
            polled_once: false,
            reported: Default::default(),
            clock_offset: None,
            now,
        })
    }

    pub fn token(&self) -> &Token {
        &self.token
    }

    /// One poll: new challenges become events; challenges no longer listed
    /// (answered elsewhere, expired, cancelled) end as a "closed" result.
    pub async fn poll_once(&mut self) -> Result<(), Error> {
        let polled = poll(&self.client, &self.token, self.now).await?;
        self.clock_offset = polled.clock_offset.or(self.clock_offset);
        let now = (self.now)().as_second();
        for reason in polled.dropped {
            if self.reported.insert(reason.clone()) {
                self.events.push_back(Event::Dropped(reason));
            }
        }
        let listed: Vec<String> = polled.challenges.iter().map(|c| c.nonce.clone()).collect();
        for challenge in polled.challenges {
            if !self.open.contains_key(&challenge.nonce) {
                self.events.push_back(Event::Challenge(to_push_challenge(&self.token, &challenge, now)));
                self.open.insert(challenge.nonce.clone(), (challenge, now));
            }
        }
        let gone: Vec<String> = self.open.keys().filter(|nonce| !listed.contains(nonce)).cloned().collect();
        for nonce in gone {
            self.open.remove(&nonce);
            self.events.push_back(Event::Result {
                challenge_id: nonce,
                accepted: true,
                status: Status::Closed,
                reason: "it is no longer open on the server".into(),
            });
        }
        self.polled_once = true;
        Ok(())
    }

    /// The next event, polling every interval until there is one. A failed
    /// poll is retried with backoff (the interval and up to 2 s more,
    /// doubling to 60 s), said on standard error; callers bound the wait.
    pub async fn next(&mut self) -> Result<Event, Error> {
        let mut backoff = backoff(self.interval);
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(event);
            }
            if self.polled_once {
                tokio::time::sleep(self.interval).await;
            }
            match self.poll_once().await {
                Ok(()) => backoff.reset(),
                Err(error) => backoff.pause(error).await,
            }
        }
    }

    /// Answers an open challenge; the verdict is then [`Poller::verdict`]
    /// and an [`Event::Result`].
    pub async fn respond(&mut self, id: &str, decision: Decision, presence: Option<&str>) -> Result<(), Error> {
        let Some((challenge, _)) = self.open.get(id).cloned() else {
            let verdict = (false, Status::Unknown, "the request is not open (answered, expired, or never seen)".to_owned());
            self.verdicts.insert(id.to_owned(), verdict.clone());
            self.events.push_back(Event::Result { challenge_id: id.to_owned(), accepted: verdict.0, status: verdict.1, reason: verdict.2 });
            return Ok(());
        };
        let (taken, display_code) = answer(&self.client, &self.token, &challenge, decision, presence).await?;
        let verdict = if taken {
            self.open.remove(id);
            (true, outcome(decision), display_code.map(|code| format!("type {code} on the sign-in page")).unwrap_or_default())
        } else {
            // Still open: a wrong option can be corrected.
            (
                false,
                Status::Pending,
                if presence.is_some() {
                    "privacyIDEA did not take it: the option does not match the sign-in page".to_owned()
                } else {
                    "privacyIDEA did not take it".to_owned()
                },
            )
        };
        self.verdicts.insert(id.to_owned(), verdict.clone());
        self.events.push_back(Event::Result { challenge_id: id.to_owned(), accepted: verdict.0, status: verdict.1, reason: verdict.2 });
        Ok(())
    }

    /// The verdict on an answer given with [`Poller::respond`].
    pub fn verdict(&self, id: &str) -> Option<(bool, Status, String)> {
        self.verdicts.get(id).cloned()
    }
}

/// The backoff after a failed poll: errors never make it poll faster than it
/// normally does, so the first retry is drawn from `first` to 2 s later (not
/// around it, as [`Backoff::new`] draws), and the later ones from doubled
/// steps that stay above it.
fn backoff(first: Duration) -> Backoff {
    Backoff::new(first.saturating_add(reconnect::SPREAD / 2))
}

/// Polls `token` every `interval` until the stream is dropped, with backoff
/// on errors (from the interval, doubling to 60 s), reporting the connection
/// state like [`crate::push::client::watch`], reading the time with `now`.
/// Runs on the caller's tokio runtime.
pub fn watch(token: Token, interval: Duration, now: Now) -> impl futures_util::Stream<Item = Update> + Send + 'static {
    reconnect::spawn(move |updates| async move {
        let mut backoff = backoff(interval.min(reconnect::MAX));
        let mut poller = loop {
            match Poller::new(token.clone(), interval, now) {
                Ok(poller) => break poller,
                Err(error) => {
                    let reason = error.to_string();
                    if !backoff.wait(&updates, |retry_in| Update::Disconnected { reason, retry_in }).await {
                        return;
                    }
                }
            }
        };
        let mut told_offset = None;
        loop {
            if updates.send(Update::Connecting).await.is_err() {
                return;
            }
            // Connected once a poll went through.
            let reason = match poller.poll_once().await {
                Ok(()) => {
                    backoff.reset();
                    let (answers, mut answered) = tokio::sync::mpsc::channel::<Answer>(16);
                    if updates.send(Update::Connected(answers)).await.is_err() {
                        return;
                    }
                    loop {
                        if poller.clock_offset != told_offset
                            && let Some(offset) = poller.clock_offset
                        {
                            told_offset = Some(offset);
                            if updates.send(Update::ClockOffset(offset)).await.is_err() {
                                return;
                            }
                        }
                        while let Some(event) = poller.events.pop_front() {
                            if updates.send(Update::Event(event)).await.is_err() {
                                return;
                            }
                        }
                        tokio::select! {
                            () = tokio::time::sleep(poller.interval) => if let Err(error) = poller.poll_once().await { break error.to_string() },
                            Some(answer) = answered.recv() => {
                                let refused = match &answer {
                                    Answer::Token { challenge_id, decision, presence } => poller.respond(challenge_id, *decision, presence.as_deref()).await.err().map(|error| error.to_string()),
                                    Answer::Signed { .. } | Answer::Phone { .. } => Some("privacyIDEA takes no Countersign answer".to_owned()),
                                };
                                // The answer may not have arrived: let the user answer again.
                                if let Some(reason) = refused {
                                    let _ = updates.send(Update::Event(Event::Result { challenge_id: answer.challenge_id().to_owned(), accepted: false, status: Status::Pending, reason })).await;
                                }
                            },
                            () = updates.closed() => return,
                        }
                    }
                }
                Err(error) => error.to_string(),
            };
            if !backoff.wait(&updates, |retry_in| Update::Disconnected { reason, retry_in }).await {
                return;
            }
        }
    })
}
