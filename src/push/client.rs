//! The app's side of push (feature `client`): activation over HTTP(S), then
//! a WebSocket session that authenticates with the device key, yields
//! verified challenges and sends signed answers. Forged or misaddressed
//! challenges are dropped and reported as [`Event::Dropped`], never shown.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::protocol;
use super::{
    ActivationRequest, ActivationResponse, ApiError, Challenge, ClientMessage, Decision, Envelope, Keypair, Link, Listener, PhoneAction,
    PhoneCall, PhoneText, PublicKey, ServerMessage, Status,
};
use crate::account::{Account, Method};
use crate::clock::Now;
use crate::reconnect::{self, Backoff};
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
    /// An unencrypted activation or push endpoint that was not allowed.
    #[error("{0}")]
    Insecure(String),
}

/// Makes ring the process's rustls provider (idempotent); every HTTP or WebSocket client needs one.
pub fn install_crypto() {
    // ring is the one rustls provider built in; installing twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// What an activation gives: the account (its TOTP codes), the push link
/// to keep in the vault, and the receive-only credential to keep outside it
/// (none when the server predates listener keys).
#[derive(Debug)]
pub struct Activated {
    pub account: Account,
    pub link: Link,
    pub listener: Option<Listener>,
}

/// Whether plain `http://` may carry an activation to another machine.
///
/// The activation answer carries the account's TOTP secret and the server's
/// signing key, which is pinned from then on (trust on first use): over
/// plain HTTP anyone on the path could read the one and replace the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Plaintext {
    /// Only to this machine (127.0.0.0/8, ::1, `localhost`): the default.
    #[default]
    LoopbackOnly,
    /// Anywhere (`countersign activate --insecure`); the caller warns first.
    Allowed,
}

/// Whether `url`'s host is this machine: 127.0.0.0/8, ::1 or `localhost`.
fn is_loopback(url: &reqwest::Url) -> bool {
    // The parser has already normalised IP forms ("127.1" is 127.0.0.1,
    // IPv6 is bracketed), so a textual comparison is exact.
    let Some(host) = url.host_str() else { return false };
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost") || host.eq_ignore_ascii_case("localhost."),
    }
}

/// Checks where an activation may go: `https://` anywhere, `http://` to this
/// machine, or anywhere when `plaintext` allows it. Returns whether the
/// connection is encrypted (https).
pub fn check_activation_url(url: &str, plaintext: Plaintext) -> Result<bool, Error> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|_| Error::Insecure("the activation URL is not a valid URL".into()))?;
    match parsed.scheme() {
        "https" => Ok(true),
        "http" if is_loopback(&parsed) || plaintext == Plaintext::Allowed => Ok(false),
        "http" => Err(Error::Insecure(format!(
            "refusing to activate over plain http:// with {}: the answer carries the account's secret and the server key trusted from then on. Use the https:// URL, or `countersign activate --insecure` on a network you trust",
            parsed.host_str().unwrap_or("the server")
        ))),
        other => Err(Error::Insecure(format!("the activation URL must start with https:// (not {other}://)"))),
    }
}

/// Checks the push endpoint an activation answered with: `wss://` after an
/// https activation (a downgrade to `ws://` is refused); after an http one,
/// `wss://`, or `ws://` by the rule of [`check_activation_url`].
pub fn check_push_endpoint(endpoint: &str, activated_over_tls: bool, plaintext: Plaintext) -> Result<(), Error> {
    let parsed = reqwest::Url::parse(endpoint).map_err(|_| Error::Protocol("the push endpoint is not a valid URL".into()))?;
    match parsed.scheme() {
        "wss" => Ok(()),
        "ws" if activated_over_tls => {
            Err(Error::Insecure("the server activated over https:// but named an unencrypted push endpoint (ws://); refused".into()))
        }
        "ws" if is_loopback(&parsed) || plaintext == Plaintext::Allowed => Ok(()),
        "ws" => Err(Error::Insecure(format!(
            "the push endpoint at {} is unencrypted (ws://); refused",
            parsed.host_str().unwrap_or("the server")
        ))),
        _ => Err(Error::Protocol("the push endpoint is not a ws:// or wss:// URL".into())),
    }
}

/// Activates this device at `url` with the one-time `code`; plain `http://`
/// only to this machine (see [`activate_with`]).
pub async fn activate(url: &str, code: &str, device_name: &str) -> Result<Activated, Error> {
    activate_with(url, code, device_name, Plaintext::LoopbackOnly).await
}

/// [`activate`], with plain `http://` to other machines allowed or not.
/// Redirects are never followed: the URL checked is the URL used.
pub async fn activate_with(url: &str, code: &str, device_name: &str, plaintext: Plaintext) -> Result<Activated, Error> {
    let over_tls = check_activation_url(url, plaintext)?;
    install_crypto();
    let device_key = Keypair::generate().map_err(|e| Error::Account(e.to_string()))?;
    let listener_key = Keypair::generate().map_err(|e| Error::Account(e.to_string()))?;
    let request = ActivationRequest {
        code: code.chars().filter(|c| !c.is_whitespace()).collect(),
        device_public_key: device_key.public(),
        device_name: device_name.to_owned(),
        listener_public_key: Some(listener_key.public()),
    };
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::Network(e.to_string()))?;
    let answer = client.post(url.trim()).json(&request).send().await.map_err(|e| Error::Network(e.without_url().to_string()))?;
    let status = answer.status();
    if status.is_redirection() {
        return Err(Error::Protocol(format!(
            "the server answered with a redirect (HTTP {status}), which activation does not follow; use the final https:// URL"
        )));
    }
    let body = answer.bytes().await.map_err(|e| Error::Network(e.to_string()))?;
    if !status.is_success() {
        return Err(match serde_json::from_slice::<ApiError>(&body) {
            Ok(error) => Error::Server(error),
            Err(_) => Error::Protocol(format!("HTTP {status}")),
        });
    }
    let response: ActivationResponse = serde_json::from_slice(&body).map_err(|_| Error::Protocol("not an activation answer".into()))?;
    check_push_endpoint(&response.push_endpoint, over_tls, plaintext)?;
    let secret = Secret::from_base32(&response.totp_secret).map_err(|e| Error::Account(e.to_string()))?.0;
    let mut account = Account::totp(&response.organization.replace(':', " "), &response.user, secret);
    account.digits = response.totp_digits;
    account.method = Method::Totp { period: response.totp_period };
    account.validate().map_err(|e| Error::Account(e.to_string()))?;
    let link = Link {
        organization: response.organization,
        user: response.user,
        device_id: response.device_id,
        device_key,
        server_key: response.server_public_key,
        endpoint: response.push_endpoint,
    };
    let listener = response.listener.then(|| link.listener(listener_key));
    Ok(Activated { account, link, listener })
}

/// What a session yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A challenge whose signature verified against the pinned server key.
    Challenge(Challenge),
    /// The server's verdict on an answer.
    Result { challenge_id: String, accepted: bool, status: Status, reason: String },
    /// Something that did not verify, dropped (the reason, for the log).
    Dropped(String),
    /// The server pinged: the connection is alive.
    Alive,
    /// The server kept this device's new listener key.
    ListenerRegistered(String),
    /// A text to a number this device answers for, its signature verified
    /// (what it says is sealed to the device key: [`PhoneText::open`]).
    Text(PhoneText),
    /// A call to a number this device answers for, its signature verified.
    Call(PhoneCall),
    /// The numbers this device answers for, after attaching or detaching
    /// one, and why that was refused when it was.
    Phones { numbers: Vec<String>, refused: Option<String> },
}

/// An authenticated WebSocket session: opened with the device key (it can
/// answer), or with the listener key (receive-only: answers need envelopes
/// the device key signed elsewhere).
pub struct Session {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    device_id: String,
    server_key: PublicKey,
    device_key: Option<Keypair>,
    /// The server's clock minus ours, in seconds, from its hello.
    clock_offset: Option<i64>,
    now: Now,
    /// The numbers the device answers for as the session opened (`None`:
    /// the server has no virtual phones).
    phones: Option<Vec<String>>,
}

/// A TCP connection to the endpoint's host whose local end is `source`.
async fn connect_tcp_from(endpoint: &str, source: std::net::IpAddr) -> Result<TcpStream, tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::error::{Error as WsError, UrlError};
    let url = reqwest::Url::parse(endpoint).map_err(|_| WsError::Url(UrlError::NoHostName))?;
    let host = url.host_str().ok_or(WsError::Url(UrlError::NoHostName))?.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_known_default().ok_or(WsError::Url(UrlError::UnsupportedUrlScheme))?;
    let mut addresses = tokio::net::lookup_host((host, port)).await?;
    let Some(address) = addresses.find(|address| address.is_ipv4() == source.is_ipv4()) else {
        return Err(WsError::Url(UrlError::UnableToConnect(format!("{host} has no address of the source's family"))));
    };
    let socket = if source.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.bind(std::net::SocketAddr::new(source, 0))?;
    let stream = socket.connect(address).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl Session {
    /// Connects and authenticates with the device key; `now` reads our
    /// clock when the server says its own ([`Session::clock_offset`]).
    pub async fn connect(link: &Link, now: Now) -> Result<Session, Error> {
        Session::connect_from(link, now, None).await
    }

    /// [`Session::connect`] with the local end bound to `source` when given:
    /// a benchmark spreads many devices over 127.0.0.x this way, past the
    /// ephemeral port range of one address pair.
    pub async fn connect_from(link: &Link, now: Now, source: Option<std::net::IpAddr>) -> Result<Session, Error> {
        let key = link.device_key.clone();
        let auth = move |nonce: &str, server: &PublicKey| protocol::auth_bound(&key, &link.device_id, nonce, server, &link.endpoint);
        Session::open(&link.endpoint, source, &link.device_id, link.server_key, Some(link.device_key.clone()), now, auth).await
    }

    /// Connects and authenticates with the listener key: a receive-only
    /// session (`now` as for [`Session::connect`]).
    pub async fn listen(listener: &Listener, now: Now) -> Result<Session, Error> {
        Session::open(&listener.endpoint, None, &listener.device_id, listener.server_key, None, now, |nonce, server| {
            protocol::listen(&listener.key, &listener.device_id, nonce, server)
        })
        .await
    }

    async fn open(
        endpoint: &str,
        source: Option<std::net::IpAddr>,
        device_id: &str,
        server_key: PublicKey,
        device_key: Option<Keypair>,
        now: Now,
        auth: impl FnOnce(&str, &PublicKey) -> ClientMessage,
    ) -> Result<Session, Error> {
        install_crypto();
        // Requests and answers are a few hundred bytes: no Nagle delay.
        let connecting = async {
            match source {
                None => tokio_tungstenite::connect_async_with_config(endpoint, None, true).await,
                Some(source) => {
                    let stream = connect_tcp_from(endpoint, source).await?;
                    tokio_tungstenite::client_async_tls_with_config(endpoint, stream, None, None).await
                }
            }
        };
        let (socket, _) =
            tokio::time::timeout(TIMEOUT, connecting).await.map_err(|_| Error::Timeout)?.map_err(|e| Error::Network(e.to_string()))?;
        let mut session =
            Session { socket, device_id: device_id.to_owned(), server_key, device_key, clock_offset: None, now, phones: None };
        let ServerMessage::Hello { nonce, time } = session.receive().await? else { return Err(Error::Protocol("expected hello".into())) };
        // Unsigned and before authentication: a wild value is ignored.
        session.clock_offset =
            time.map(|server| server.saturating_sub(now().as_second())).filter(|offset| offset.unsigned_abs() < 10 * 365 * 86_400);
        session.send(&auth(&nonce, &server_key)).await?;
        match session.receive().await? {
            ServerMessage::Ready { phones } => {
                session.phones = phones;
                Ok(session)
            }
            ServerMessage::Error { error, message } => Err(Error::Server(ApiError { error, message })),
            _ => Err(Error::Protocol("expected ready".into())),
        }
    }

    /// The numbers the device answered for when the session opened; `None`
    /// when the server has no virtual phones.
    pub fn phones(&self) -> Option<&[String]> {
        self.phones.as_deref()
    }

    /// The server's clock minus this computer's, in seconds, when the server said it.
    pub fn clock_offset(&self) -> Option<i64> {
        self.clock_offset
    }

    async fn send(&mut self, message: &ClientMessage) -> Result<(), Error> {
        let text = serde_json::to_string(message).map_err(|e| Error::Protocol(e.to_string()))?;
        self.socket.send(Message::Text(text.into())).await.map_err(|e| Error::Network(e.to_string()))
    }

    async fn receive(&mut self) -> Result<ServerMessage, Error> {
        loop {
            let next = tokio::time::timeout(TIMEOUT, self.socket.next()).await.map_err(|_| Error::Timeout)?;
            match next {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(&text).map_err(|_| Error::Protocol("malformed message".into()));
                }
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
                Some(Ok(Message::Text(text))) => {
                    serde_json::from_str::<ServerMessage>(&text).map_err(|_| Error::Protocol("malformed message".into()))?
                }
                Some(Ok(Message::Ping(_))) => return Ok(Event::Alive),
                Some(Ok(Message::Close(_))) | None => return Err(Error::Closed),
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(Error::Network(error.to_string())),
            };
            return Ok(match message {
                ServerMessage::Challenge { envelope } => match protocol::open_challenge(&envelope, &self.server_key, &self.device_id) {
                    Ok(challenge) => Event::Challenge(challenge),
                    Err(error) => Event::Dropped(format!("a challenge was dropped: {error}")),
                },
                ServerMessage::Result { challenge_id, accepted, status, reason } => {
                    Event::Result { challenge_id, accepted, status, reason }
                }
                ServerMessage::Error { error, message } => return Err(Error::Server(ApiError { error, message })),
                ServerMessage::ListenerRegistered { device_id } => Event::ListenerRegistered(device_id),
                ServerMessage::Text { envelope } => match protocol::open_text(&envelope, &self.server_key, &self.device_id) {
                    Ok(text) => Event::Text(text),
                    Err(error) => Event::Dropped(format!("a text was dropped: {error}")),
                },
                ServerMessage::Call { envelope } => match protocol::open_call(&envelope, &self.server_key, &self.device_id) {
                    Ok(call) => Event::Call(call),
                    Err(error) => Event::Dropped(format!("a call was dropped: {error}")),
                },
                ServerMessage::Phones { numbers, refused } => Event::Phones { numbers, refused },
                ServerMessage::Hello { .. } | ServerMessage::Ready { .. } | ServerMessage::Unknown => continue,
            });
        }
    }

    /// Sends a signed answer to `challenge_id`; returns what was sent. Only a
    /// session opened with the device key can sign.
    pub async fn respond(
        &mut self,
        challenge_id: &str,
        decision: Decision,
        number: Option<u32>,
        user_verified: bool,
        now: i64,
    ) -> Result<Envelope, Error> {
        let key = self.device_key.as_ref().ok_or_else(|| Error::Protocol("a receive-only session cannot sign answers".into()))?;
        let envelope = crate::push::sign_response(key, &self.device_id, challenge_id, decision, number, user_verified, now);
        self.send_envelope(envelope.clone()).await?;
        Ok(envelope)
    }

    /// Sends an already signed answer (see [`Link::sign_response`]).
    pub async fn send_envelope(&mut self, envelope: Envelope) -> Result<(), Error> {
        self.send(&ClientMessage::Respond { envelope }).await
    }

    /// Waits for the verdict on `challenge_id`, passing over other events.
    pub async fn verdict(&mut self, challenge_id: &str) -> Result<(bool, Status, String), Error> {
        loop {
            match tokio::time::timeout(TIMEOUT, self.next()).await.map_err(|_| Error::Timeout)?? {
                Event::Result { challenge_id: id, accepted, status, reason } if id == challenge_id || id.is_empty() => {
                    return Ok((accepted, status, reason));
                }
                _ => continue,
            }
        }
    }
}

impl Session {
    /// Sends a listener key's registration (an envelope the device key
    /// signed: [`Link::sign_listener`]) and waits until the server kept it.
    pub async fn register_listener(&mut self, envelope: Envelope) -> Result<(), Error> {
        self.send(&ClientMessage::RegisterListener { envelope }).await?;
        loop {
            match tokio::time::timeout(TIMEOUT, self.next()).await.map_err(|_| Error::Timeout)?? {
                Event::ListenerRegistered(device) if device == self.device_id => return Ok(()),
                _ => continue,
            }
        }
    }
}

/// The virtual phone (see [`crate::push`]): answering for a number, and
/// replying to its texts and calls.
impl Session {
    /// Asks to answer for `number` (`attach`) or no longer; the numbers the
    /// device answers for afterwards.
    pub async fn phone(&mut self, number: &str, attach: bool) -> Result<Vec<String>, Error> {
        let number = number.to_owned();
        self.send_phone(if attach { PhoneAction::Attach { number } } else { PhoneAction::Detach { number } }).await?;
        loop {
            match tokio::time::timeout(TIMEOUT, self.next()).await.map_err(|_| Error::Timeout)?? {
                Event::Phones { refused: Some(why), .. } => return Err(Error::Server(ApiError { error: "refused".into(), message: why })),
                Event::Phones { numbers, refused: None } => return Ok(numbers),
                _ => continue,
            }
        }
    }

    /// Replies `text` (a code) to text `id`; the server's verdict.
    pub async fn reply(&mut self, id: &str, text: &str) -> Result<(bool, Status, String), Error> {
        self.send_phone(PhoneAction::Reply { id: id.to_owned(), text: text.to_owned() }).await?;
        self.verdict(id).await
    }

    /// Presses `keys` on call `id`, then hangs up when `hang_up`; the server's verdict.
    pub async fn keys(&mut self, id: &str, keys: &str, hang_up: bool) -> Result<(bool, Status, String), Error> {
        self.send_phone(PhoneAction::Keys { id: id.to_owned(), keys: keys.to_owned(), hang_up }).await?;
        self.verdict(id).await
    }

    /// Signs `action` with the device key, dated by the server's clock, and sends it.
    async fn send_phone(&mut self, action: PhoneAction) -> Result<(), Error> {
        let key = self.device_key.as_ref().ok_or_else(|| Error::Protocol("a receive-only session cannot sign".into()))?;
        let at = (self.now)().as_second().saturating_add(self.clock_offset.unwrap_or(0));
        let envelope = crate::push::sign_phone(key, &self.device_id, action, at);
        self.send(&ClientMessage::Phone { envelope }).await
    }

    /// Sends a virtual phone's request the device key already signed (see [`Link::sign_phone`]).
    pub async fn send_signed_phone(&mut self, envelope: Envelope) -> Result<(), Error> {
        self.send(&ClientMessage::Phone { envelope }).await
    }
}

/// Registers `listener` as the receive-only key of the device behind `link`
/// (the device key vouches for it), in a session of its own, dated with `now`.
pub async fn register_listener(link: &Link, listener: &PublicKey, now: Now) -> Result<(), Error> {
    let mut session = Session::connect(link, now).await?;
    // Dated by the server's clock: it takes only a registration made just now.
    let at = now().as_second().saturating_add(session.clock_offset().unwrap_or(0));
    session.register_listener(link.sign_listener(listener, at)).await
}

/// An answer the window sends through a live connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// To Countersign's server: an answer the device key signed (see
    /// [`Link::sign_response`]); the connection only carries it.
    Signed { challenge_id: String, envelope: Envelope },
    /// To privacyIDEA: the poller signs it with the token's key.
    Token { challenge_id: String, decision: Decision, presence: Option<String> },
    /// To Countersign's server: a virtual phone's request the device key
    /// signed (see [`Link::sign_phone`]), about text or call `id` (empty
    /// for attaching a number).
    Phone { id: String, envelope: Envelope },
}

impl Answer {
    pub fn challenge_id(&self) -> &str {
        match self {
            Answer::Signed { challenge_id, .. } | Answer::Token { challenge_id, .. } | Answer::Phone { id: challenge_id, .. } => {
                challenge_id
            }
        }
    }
}

/// What a long-lived connection reports to the window.
#[derive(Debug, Clone)]
pub enum Update {
    Connecting,
    /// Connected; answers go through this sender.
    Connected(tokio::sync::mpsc::Sender<Answer>),
    /// The server's clock minus this computer's, in seconds, as the server
    /// last said it (its hello, or an HTTP `Date`).
    ClockOffset(i64),
    /// The connection failed or dropped; the next try is in `retry_in`.
    Disconnected {
        reason: String,
        retry_in: Duration,
    },
    /// The server refused the listener key `key` (it was replaced, or the
    /// server forgot the device); tried again in `retry_in` all the same.
    Refused {
        reason: String,
        retry_in: Duration,
        key: PublicKey,
    },
    Event(Event),
}

/// How a long-lived connection authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// With the device key: only while the vault is unlocked (a device that
    /// has no listener key yet).
    Device(Link),
    /// With the listener key: whatever the vault's state.
    Listener(Listener),
}

impl Credential {
    pub fn device_id(&self) -> &str {
        match self {
            Credential::Device(link) => &link.device_id,
            Credential::Listener(listener) => &listener.device_id,
        }
    }

    pub fn endpoint(&self) -> &str {
        match self {
            Credential::Device(link) => &link.endpoint,
            Credential::Listener(listener) => &listener.endpoint,
        }
    }
}

/// Keeps a session open with `credential`, reconnecting with backoff (the
/// first try after a drop within 2 s, then doubling from 1 s to 60 s, see
/// [`Backoff`]), until the returned stream is dropped; `now` reads the
/// time at each connection. Runs on the caller's tokio runtime.
pub fn watch(credential: Credential, now: Now) -> impl futures_util::Stream<Item = Update> + Send + 'static {
    reconnect::spawn(move |updates| async move {
        let mut backoff = Backoff::new(Duration::from_secs(1));
        loop {
            if updates.send(Update::Connecting).await.is_err() {
                return;
            }
            let opened = match &credential {
                Credential::Device(link) => Session::connect(link, now).await,
                Credential::Listener(listener) => Session::listen(listener, now).await,
            };
            let mut refused = None;
            let reason = match opened {
                Ok(mut session) => {
                    backoff.reset();
                    let (answers, mut answered) = tokio::sync::mpsc::channel::<Answer>(16);
                    if updates.send(Update::Connected(answers)).await.is_err() {
                        return;
                    }
                    if let Some(offset) = session.clock_offset()
                        && updates.send(Update::ClockOffset(offset)).await.is_err()
                    {
                        return;
                    }
                    if let Some(numbers) = session.phones().map(<[String]>::to_vec)
                        && updates.send(Update::Event(Event::Phones { numbers, refused: None })).await.is_err()
                    {
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
                            Some(answer) = answered.recv() => match answer {
                                Answer::Signed { envelope, .. } => if let Err(error) = session.send_envelope(envelope).await { break error.to_string() },
                                Answer::Phone { envelope, .. } => if let Err(error) = session.send_signed_phone(envelope).await { break error.to_string() },
                                Answer::Token { challenge_id, .. } => {
                                    let refused = Event::Result { challenge_id, accepted: false, status: Status::Pending, reason: "this answer is not signed".into() };
                                    if updates.send(Update::Event(refused)).await.is_err() { return }
                                }
                            },
                            () = updates.closed() => return,
                        }
                    }
                }
                Err(Error::Server(error))
                    if error.error == "unauthorized"
                        && let Credential::Listener(listener) = &credential =>
                {
                    refused = Some(listener.key.public());
                    Error::Server(error).to_string()
                }
                Err(error) => error.to_string(),
            };
            let down = move |retry_in| match refused {
                Some(key) => Update::Refused { reason, retry_in, key },
                None => Update::Disconnected { reason, retry_in },
            };
            if !backoff.wait(&updates, down).await {
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_goes_over_https_or_to_this_machine() {
        assert_eq!(check_activation_url("https://mfa.example.com/api/activate", Plaintext::LoopbackOnly), Ok(true));
        for local in [
            "http://127.0.0.1:8750/api/activate",
            "http://127.9.8.7/a",
            "http://127.1/a",
            "http://[::1]:8750/a",
            "http://localhost:8750/a",
            "http://LOCALHOST/a",
            " http://localhost/a ",
        ] {
            assert_eq!(check_activation_url(local, Plaintext::LoopbackOnly), Ok(false), "{local}");
        }
        for remote in [
            "http://mfa.example.com/api/activate",
            "http://10.0.0.1/a",
            "http://128.0.0.1/a",
            "http://[::2]/a",
            "http://localhost.example.com/a",
            "http://127.0.0.1.example.com/a",
            "http://[::ffff:10.0.0.1]/a",
        ] {
            let error = check_activation_url(remote, Plaintext::LoopbackOnly).unwrap_err();
            assert!(matches!(&error, Error::Insecure(why) if why.contains("--insecure")), "{remote}: {error}");
            assert_eq!(check_activation_url(remote, Plaintext::Allowed), Ok(false), "{remote} with --insecure");
        }
        for odd in ["ftp://mfa.example.com/a", "file:///etc/passwd", "ws://localhost/a", "not a url", ""] {
            assert!(matches!(check_activation_url(odd, Plaintext::Allowed), Err(Error::Insecure(_))), "{odd}");
        }
    }

    #[test]
    fn an_https_activation_needs_an_encrypted_push_endpoint() {
        assert_eq!(check_push_endpoint("wss://mfa.example.com/api/push", true, Plaintext::LoopbackOnly), Ok(()));
        assert!(matches!(check_push_endpoint("ws://mfa.example.com/api/push", true, Plaintext::Allowed), Err(Error::Insecure(_))));
        assert!(
            matches!(check_push_endpoint("ws://127.0.0.1/api/push", true, Plaintext::Allowed), Err(Error::Insecure(_))),
            "no downgrade, even to loopback"
        );
        assert_eq!(check_push_endpoint("ws://127.0.0.1:8750/api/push", false, Plaintext::LoopbackOnly), Ok(()));
        assert!(matches!(check_push_endpoint("ws://mfa.example.com/api/push", false, Plaintext::LoopbackOnly), Err(Error::Insecure(_))));
        assert_eq!(check_push_endpoint("ws://mfa.example.com/api/push", false, Plaintext::Allowed), Ok(()));
        assert!(matches!(check_push_endpoint("https://mfa.example.com/api/push", true, Plaintext::Allowed), Err(Error::Protocol(_))));
    }

    /// A server that answers the activation with a redirect: it is not followed.
    #[test]
    fn an_activation_redirect_is_not_followed() {
        use std::io::{Read, Write};
        let elsewhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let elsewhere_port = elsewhere.local_addr().unwrap().port();
        elsewhere.set_nonblocking(true).unwrap();
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}/api/activate", server.local_addr().unwrap().port());
        let answering = std::thread::spawn(move || {
            let (mut stream, _) = server.accept().unwrap();
            let mut request = [0; 4096];
            let _ = stream.read(&mut request);
            let answer = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:{elsewhere_port}/api/activate\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(answer.as_bytes()).unwrap();
        });
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let error = runtime.block_on(activate(&url, "CODE", "test")).unwrap_err();
        answering.join().unwrap();
        assert!(matches!(&error, Error::Protocol(why) if why.contains("redirect")), "{error}");
        assert!(elsewhere.accept().is_err(), "the redirect target was never contacted");
    }
}
