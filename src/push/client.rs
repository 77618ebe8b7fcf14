//! The app's side of push (feature `client`): activation over HTTP(S), then
//! a WebSocket session that authenticates with the device key, yields
//! verified challenges and sends signed answers. Forged or misaddressed
//! challenges are dropped and reported as [`Event::Dropped`], never shown.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::protocol::{self, RESPONSE_CONTEXT, VERSION};
use super::{ActivationRequest, ActivationResponse, ApiError, Challenge, ClientMessage, Decision, Envelope, Keypair, Link, Response, ServerMessage};
use crate::account::{Account, Method};
use crate::secret::Secret;

/// How long the server may take to answer anything.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Why talking to the server failed. Never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("cannot reach the server: {0}")]
    Network(String),
    #[error("the server refused: {} ({})", .0.message, .0.error)]
    Server(ApiError),
    #[error("the server answered something unexpected: {0}")]
    Protocol(String),
    #[error("the connection was closed")]
    Closed,
    #[error("the server did not answer in time")]
    Timeout,
    #[error("the activation gave an unusable account: {0}")]
    Account(String),
}

/// Makes ring the process's rustls provider (idempotent); every HTTP or WebSocket client needs one.
pub fn install_crypto() {
    // ring is the one rustls provider built in; installing twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Activates this device at `url` with the one-time `code`: returns the
/// account (its TOTP codes) and the push link to keep in the vault.
pub async fn activate(url: &str, code: &str, device_name: &str) -> Result<(Account, Link), Error> {
    install_crypto();
    let device_key = Keypair::generate().map_err(|e| Error::Account(e.to_string()))?;
    let request = ActivationRequest { code: code.chars().filter(|c| !c.is_whitespace()).collect(), device_public_key: device_key.public(), device_name: device_name.to_owned() };
    let client = reqwest::Client::builder().timeout(TIMEOUT).build().map_err(|e| Error::Network(e.to_string()))?;
    let answer = client.post(url.trim()).json(&request).send().await.map_err(|e| Error::Network(e.without_url().to_string()))?;
    let status = answer.status();
    let body = answer.bytes().await.map_err(|e| Error::Network(e.to_string()))?;
    if !status.is_success() {
        return Err(match serde_json::from_slice::<ApiError>(&body) {
            Ok(error) => Error::Server(error),
            Err(_) => Error::Protocol(format!("HTTP {status}")),
        });
    }
    let response: ActivationResponse = serde_json::from_slice(&body).map_err(|_| Error::Protocol("not an activation answer".into()))?;
    let secret = Secret::from_base32(&response.totp_secret).map_err(|e| Error::Account(e.to_string()))?.0;
    let mut account = Account::totp(&response.organization.replace(':', " "), &response.user, secret);
    account.digits = response.totp_digits;
    account.method = Method::Totp { period: response.totp_period };
    account.validate().map_err(|e| Error::Account(e.to_string()))?;
    let link = Link { organization: response.organization, user: response.user, device_id: response.device_id, device_key, server_key: response.server_public_key, endpoint: response.push_endpoint };
    Ok((account, link))
}

/// What a session yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A challenge whose signature verified against the pinned server key.
    Challenge(Challenge),
    /// The server's verdict on an answer.
    Result { challenge_id: String, accepted: bool, status: String, reason: String },
    /// Something that did not verify, dropped (the reason, for the log).
    Dropped(String),
    /// The server pinged: the connection is alive.
    Alive,
}

/// An authenticated WebSocket session.
pub struct Session {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    link: Link,
}

impl Session {
    /// Connects and authenticates with the device key.
    pub async fn connect(link: &Link) -> Result<Session, Error> {
        install_crypto();
        let (socket, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(link.endpoint.as_str())).await.map_err(|_| Error::Timeout)?.map_err(|e| Error::Network(e.to_string()))?;
        let mut session = Session { socket, link: link.clone() };
        let ServerMessage::Hello { nonce } = session.receive().await? else { return Err(Error::Protocol("expected hello".into())) };
        session.send(&protocol::auth(&session.link.device_key, &session.link.device_id, &nonce)).await?;
        match session.receive().await? {
            ServerMessage::Ready => Ok(session),
            ServerMessage::Error { error, message } => Err(Error::Server(ApiError { error, message })),
            _ => Err(Error::Protocol("expected ready".into())),
        }
    }

    async fn send(&mut self, message: &ClientMessage) -> Result<(), Error> {
        let text = serde_json::to_string(message).map_err(|e| Error::Protocol(e.to_string()))?;
        self.socket.send(Message::Text(text.into())).await.map_err(|e| Error::Network(e.to_string()))
    }

    async fn receive(&mut self) -> Result<ServerMessage, Error> {
        loop {
            let next = tokio::time::timeout(TIMEOUT, self.socket.next()).await.map_err(|_| Error::Timeout)?;
            match next {
                Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).map_err(|_| Error::Protocol("malformed message".into())),
                Some(Ok(Message::Close(_))) | None => return Err(Error::Closed),
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(Error::Network(error.to_string())),
            }
        }
    }

    /// The next event; waits as long as it takes (no timeout).
    pub async fn next(&mut self) -> Result<Event, Error> {
        loop {
            let message = match self.socket.next().await {
                Some(Ok(Message::Text(text))) => serde_json::from_str::<ServerMessage>(&text).map_err(|_| Error::Protocol("malformed message".into()))?,
                Some(Ok(Message::Ping(_))) => return Ok(Event::Alive),
                Some(Ok(Message::Close(_))) | None => return Err(Error::Closed),
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(Error::Network(error.to_string())),
            };
            return Ok(match message {
                ServerMessage::Challenge { envelope } => match protocol::open_challenge(&envelope, &self.link.server_key, &self.link.device_id) {
                    Ok(challenge) => Event::Challenge(challenge),
                    Err(error) => Event::Dropped(format!("a challenge was dropped: {error}")),
                },
                ServerMessage::Result { challenge_id, accepted, status, reason } => Event::Result { challenge_id, accepted, status, reason },
                ServerMessage::Error { error, message } => return Err(Error::Server(ApiError { error, message })),
                ServerMessage::Hello { .. } | ServerMessage::Ready => continue,
            });
        }
    }

    /// Sends a signed answer to `challenge_id`; returns what was sent.
    pub async fn respond(&mut self, challenge_id: &str, decision: Decision, number: Option<u32>, user_verified: bool, now: i64) -> Result<Envelope, Error> {
        let response = Response { v: VERSION, challenge_id: challenge_id.to_owned(), device_id: self.link.device_id.clone(), decision, number, user_verified, at: now };
        let envelope = self.link.device_key.seal(RESPONSE_CONTEXT, &response);
        self.send_envelope(envelope.clone()).await?;
        Ok(envelope)
    }

    /// Sends an already signed answer (tests replay one this way).
    pub async fn send_envelope(&mut self, envelope: Envelope) -> Result<(), Error> {
        self.send(&ClientMessage::Respond { envelope }).await
    }

    /// Waits for the verdict on `challenge_id`, passing over other events.
    pub async fn verdict(&mut self, challenge_id: &str) -> Result<(bool, String, String), Error> {
        loop {
            match tokio::time::timeout(TIMEOUT, self.next()).await.map_err(|_| Error::Timeout)?? {
                Event::Result { challenge_id: id, accepted, status, reason } if id == challenge_id || id.is_empty() => return Ok((accepted, status, reason)),
                _ => continue,
            }
        }
    }
}

/// An answer the window sends through a live connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub challenge_id: String,
    pub decision: Decision,
    pub number: Option<u32>,
    pub user_verified: bool,
    /// privacyIDEA presence mode: the option picked.
    pub presence: Option<String>,
}

/// What a long-lived connection reports to the window.
#[derive(Debug, Clone)]
pub enum Update {
    Connecting,
    /// Connected; answers go through this sender.
    Connected(tokio::sync::mpsc::Sender<Answer>),
    /// The connection failed or dropped; the next try is in `retry_in` seconds.
    Disconnected { reason: String, retry_in: u64 },
    Event(Event),
}

/// Keeps a session to `link` open, reconnecting with exponential backoff
/// (1 s doubling to 60 s), until the returned stream is dropped. Runs on
/// the caller's tokio runtime.
pub fn watch(link: Link) -> impl futures_util::Stream<Item = Update> + Send + 'static {
    let (updates, receiver) = tokio::sync::mpsc::channel::<Update>(64);
    tokio::spawn(async move {
        let mut backoff = 1;
        loop {
            if updates.send(Update::Connecting).await.is_err() {
                return;
            }
            let reason = match Session::connect(&link).await {
                Ok(mut session) => {
                    backoff = 1;
                    let (answers, mut answered) = tokio::sync::mpsc::channel::<Answer>(16);
                    if updates.send(Update::Connected(answers)).await.is_err() {
                        return;
                    }
                    loop {
                        tokio::select! {
                            // The server pings every 30 s: 75 s of silence is a dead link
                            // (a laptop that slept, a NAT that forgot us).
                            event = tokio::time::timeout(Duration::from_secs(75), session.next()) => match event {
                                Ok(Ok(Event::Alive)) => {}
                                Ok(Ok(event)) => if updates.send(Update::Event(event)).await.is_err() { return },
                                Ok(Err(error)) => break error.to_string(),
                                Err(_) => break "no word from the server for 75 s".to_owned(),
                            },
                            Some(answer) = answered.recv() => {
                                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
                                if let Err(error) = session.respond(&answer.challenge_id, answer.decision, answer.number, answer.user_verified, now).await {
                                    break error.to_string();
                                }
                            },
                            () = updates.closed() => return,
                        }
                    }
                }
                Err(error) => error.to_string(),
            };
            if updates.send(Update::Disconnected { reason, retry_in: backoff }).await.is_err() {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(backoff)) => {}
                () = updates.closed() => return,
            }
            backoff = (backoff * 2).min(60);
        }
    });
    futures_util::stream::unfold(receiver, |mut receiver| async move { receiver.recv().await.map(|update| (update, receiver)) })
}
