//! RADIUS (RFC 2865) on UDP, for VPNs and network gear: an Access-Request
//! with PAP asks Countersign, as Azure MFA's NPS extension and the Duo
//! Authentication Proxy do.
//!
//! What a User-Password means (see [`Radius::decide`]):
//! - 6 to 8 digits: the user's current TOTP code, once per code (the rules
//!   of `/api/totp/verify`; the backoff per user and Calling-Station-Id)
//!   → Access-Accept, else Access-Reject;
//! - `push` or empty (or no User-Password at all): a push to the user's
//!   devices, with the client's name (and NAS-Identifier) as the app and
//!   Calling-Station-Id as the address; Access-Accept once approved,
//!   Access-Reject on deny, report or expiry;
//! - an app password, from a client marked `legacy_app`: Access-Accept;
//! - anything else: a push is sent, and Access-Challenge answers with a
//!   Reply-Message and a State; the request that brings the State back
//!   carries a code, or anything else to wait for the push.
//!
//! A user gets at most [`PUSHES_PER_USER`] pushes (or, without a device,
//! challenges) a minute.
//!
//! Dropped without an answer (the NAS sees a timeout; the log says why):
//! datagrams from an address no client has, malformed packets, other
//! codes than Access-Request, and requests without a right
//! Message-Authenticator (required: BLAST-RADIUS, CVE-2024-3596; a wrong
//! shared secret fails here too). A retransmission (same address, port,
//! identifier and authenticator) gets the answer already sent, or nothing
//! while the first is being decided. [`IN_FLIGHT`] requests are decided at
//! once and [`WAITING`] pushes wait at once. Proxy-State comes back
//! unchanged. Every decision is logged with its reason, never the password.
//!
//! Pushes have no number to match (a NAS has no page to show it on), and
//! a State lives in this process only: instances behind one RADIUS
//! address need the NAS to send a State's follow-up to the same one.

pub mod packet;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::net::UdpSocket;
use zeroize::Zeroizing;

use super::api::{self, Failure, SigninRequest};
use super::limits::Refusal;
use super::{AppState, log};
use crate::push::{Status, printable};
use packet::Packet;

/// `[radius]` in the configuration: the clients (NASes) allowed to ask.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `[[radius.clients]]`.
    pub clients: Vec<Client>,
}

/// A RADIUS client: a VPN concentrator, a switch, a FreeRADIUS proxy.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    /// Shown as the app in the push and in the log.
    pub name: String,
    /// The shared secret (16 characters at least: one captured request lets
    /// an attacker guess it offline).
    pub secret: String,
    /// Addresses or networks (`192.0.2.7`, `10.1.0.0/16`) it sends from.
    pub addresses: Vec<Network>,
    /// Also accept the user's app passwords (an old VPN client that cannot
    /// show a challenge nor wait for a push).
    #[serde(default)]
    pub legacy_app: bool,
}

/// Everything but the secret.
impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.name)
            .field("addresses", &self.addresses)
            .field("legacy_app", &self.legacy_app)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.clients).finish()
    }
}

/// An address or a network, as written in the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network(ipnet::IpNet);

impl std::str::FromStr for Network {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        text.parse::<ipnet::IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from))
            .map(|net| Network(net.trunc()))
            .map_err(|_| format!("{text:?} is neither an address nor a network"))
    }
}

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

impl Network {
    /// An IPv4 sender on a dual-stack socket arrives as `::ffff:a.b.c.d`.
    fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        self.0.contains(&ip)
    }

    fn overlaps(&self, other: &Network) -> bool {
        self.0.contains(&other.0.network()) || other.0.contains(&self.0.network())
    }
}

impl Settings {
    /// Checked at start: named, long secrets, and no address that two
    /// clients claim (its secret would be ambiguous).
    pub fn check(&self, listening: bool) -> Result<(), String> {
        if listening && self.clients.is_empty() {
            return Err("radius_listen needs at least one [[radius.clients]]".into());
        }
        for (i, client) in self.clients.iter().enumerate() {
            if client.name.trim().is_empty() || client.name.chars().count() > 64 {
                return Err("a RADIUS client's name must be 1 to 64 characters".into());
            }
            if client.secret.chars().count() < 16 {
                return Err(format!("RADIUS client {:?}: its secret must be at least 16 characters", client.name));
            }
            if client.addresses.is_empty() {
                return Err(format!("RADIUS client {:?} has no addresses", client.name));
            }
            for other in &self.clients[i + 1..] {
                if client.addresses.iter().any(|a| other.addresses.iter().any(|b| a.overlaps(b))) {
                    return Err(format!("RADIUS clients {:?} and {:?} share addresses", client.name, other.name));
                }
            }
        }
        Ok(())
    }
}

/// Requests being decided at once, a push's wait aside; past it, requests
/// are dropped and NASes retry.
const IN_FLIGHT: usize = 256;
/// Pushes waiting for their answer at once (each up to
/// `challenge_seconds`); past it, a push is refused, codes still work.
const WAITING: usize = 1024;
/// How long an answer is kept to answer retransmissions (RFC 5080 §2.2.2).
const ANSWERS_KEPT: Duration = Duration::from_secs(30);
/// Requests remembered at most (answers are kept 30 s: past 4,000 a
/// second sustained, new requests are dropped); challenges open at most.
const REMEMBERED: usize = 131_072;
const CHALLENGES: usize = 10_000;

const CHALLENGE_TEXT: &str = "Approve the request in Countersign or type your code";

/// A request seen: being decided, or answered with these octets.
enum Seen {
    Deciding(Instant),
    Answered(Arc<Vec<u8>>, Instant),
}

type Retransmission = (SocketAddr, u8, [u8; 16]);

/// The requests seen, pruned at most once a second.
struct Remembered {
    requests: HashMap<Retransmission, Seen>,
    pruned: Instant,
}

impl Remembered {
    /// Forgets answers older than [`ANSWERS_KEPT`] (and, should a task
    /// have died, decisions older than any push can take).
    fn prune(&mut self, now: Instant) {
        self.requests.retain(|_, seen| match seen {
            Seen::Deciding(since) => now.duration_since(*since) < Duration::from_secs(3700),
            Seen::Answered(_, at) => now.duration_since(*at) < ANSWERS_KEPT,
        });
        self.pruned = now;
    }
}

/// An Access-Challenge sent, waiting for the request with its State.
struct Challenge {
    user: String,
    client: usize,
    /// The push sent with it, when one could be.
    signin: Option<String>,
    expires: Instant,
}

/// The RADIUS service, shared by the tasks deciding requests.
pub struct Radius {
    state: AppState,
    socket: UdpSocket,
    clients: Vec<Client>,
    seen: Mutex<Remembered>,
    challenges: Mutex<HashMap<[u8; 16], Challenge>>,
    deciding: Arc<tokio::sync::Semaphore>,
    waiting: Arc<tokio::sync::Semaphore>,
    /// Pushes per user in any minute: anyone at a VPN's login page can
    /// name a user and type `push`.
    pushes: super::limits::Window<String>,
}

/// Pushes a user gets over RADIUS in any minute, at most.
const PUSHES_PER_USER: u32 = 5;

/// Binds `radius_listen`, if set.
pub async fn bind(state: &AppState) -> std::io::Result<Option<UdpSocket>> {
    match state.config.radius_listen {
        Some(address) => UdpSocket::bind(address).await.map(Some),
        None => Ok(None),
    }
}

/// Answers on `socket` until the task is dropped.
pub async fn serve(state: AppState, socket: UdpSocket) {
    let clients = state.config.radius.clients.clone();
    let radius = Arc::new(Radius {
        state,
        socket,
        clients,
        seen: Mutex::new(Remembered { requests: HashMap::new(), pruned: Instant::now() }),
        challenges: Mutex::new(HashMap::new()),
        deciding: Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT)),
        waiting: Arc::new(tokio::sync::Semaphore::new(WAITING)),
        pushes: super::limits::Window::new(PUSHES_PER_USER, 60_000),
    });
    let mut buffer = vec![0u8; packet::MAX_LENGTH];
    loop {
        let (length, peer) = match radius.socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(error) => {
                log::error(&format!("radius: receiving failed: {error}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        radius.receive(&buffer[..length], peer);
    }
}

/// What a request came to: its code, the Reply-Message, a State for a
/// challenge, and the reason the log gives.
struct Decision {
    code: u8,
    reply: &'static str,
    state: Option<[u8; 16]>,
    reason: String,
}

impl Decision {
    fn accept(reply: &'static str, reason: impl Into<String>) -> Self {
        Decision { code: packet::ACCESS_ACCEPT, reply, state: None, reason: reason.into() }
    }
    fn reject(reply: &'static str, reason: impl Into<String>) -> Self {
        Decision { code: packet::ACCESS_REJECT, reply, state: None, reason: reason.into() }
    }
}

/// A decision made, or a push to wait for.
enum Step {
    Now(Decision),
    Wait(String),
}

impl From<Decision> for Step {
    fn from(decision: Decision) -> Self {
        Step::Now(decision)
    }
}

/// How a User-Password reads (`App`: shaped like an app password).
enum Password {
    Code(String),
    Push,
    App,
    Other,
}

fn classify(password: &[u8], legacy_app: bool) -> Password {
    let Ok(text) = std::str::from_utf8(password) else { return Password::Other };
    let compact: Zeroizing<String> = Zeroizing::new(text.chars().filter(|c| !c.is_whitespace()).collect());
    if (6..=8).contains(&compact.len()) && compact.bytes().all(|b| b.is_ascii_digit()) {
        return Password::Code(compact.to_string());
    }
    if compact.is_empty() || compact.eq_ignore_ascii_case("push") {
        return Password::Push;
    }
    if legacy_app && super::app_passwords::looks_like(text) {
        return Password::App;
    }
    Password::Other
}

impl Radius {
    /// Checks a datagram and, if it is a new request, decides it on a task
    /// of its own.
    fn receive(self: &Arc<Self>, datagram: &[u8], peer: SocketAddr) {
        let dropped = |detail: &str| self.state.audit.refused(Refusal::Radius, peer.ip(), detail);
        let Some(index) = self.clients.iter().position(|client| client.addresses.iter().any(|net| net.contains(peer.ip()))) else {
            return dropped("a RADIUS datagram from an address no client has");
        };
        let client = &self.clients[index];
        let request = match Packet::parse(datagram) {
            Ok(request) => request,
            Err(why) => return dropped(&format!("a malformed RADIUS datagram from {}: {why}", client.name)),
        };
        if request.code != packet::ACCESS_REQUEST {
            return dropped(&format!("a RADIUS packet of code {} from {}: only Access-Request is answered", request.code, client.name));
        }
        match packet::message_authenticator_valid(datagram, &request, client.secret.as_bytes()) {
            Ok(true) => {}
            Ok(false) if request.get(packet::MESSAGE_AUTHENTICATOR).is_none() => {
                return dropped(&format!("an Access-Request from {} without a Message-Authenticator", client.name));
            }
            Ok(false) => {
                return dropped(&format!(
                    "an Access-Request from {} with a wrong Message-Authenticator (another shared secret?)",
                    client.name
                ));
            }
            Err(why) => return dropped(&format!("an Access-Request from {}: {why}", client.name)),
        }
        let key = (peer, request.identifier, request.authenticator);
        {
            let Ok(mut seen) = self.seen.lock() else { return };
            let now = Instant::now();
            if seen.requests.len() >= REMEMBERED || now.duration_since(seen.pruned) >= Duration::from_secs(1) {
                seen.prune(now);
            }
            match seen.requests.get(&key) {
                Some(Seen::Answered(answer, _)) => {
                    let (radius, answer) = (self.clone(), answer.clone());
                    tokio::spawn(async move {
                        let _ = radius.socket.send_to(&answer, peer).await;
                    });
                    return;
                }
                Some(Seen::Deciding(_)) => return,
                None => {}
            }
            if seen.requests.len() >= REMEMBERED {
                return dropped("a RADIUS request while too many are remembered");
            }
            seen.requests.insert(key, Seen::Deciding(now));
        }
        let Ok(permit) = self.deciding.clone().try_acquire_owned() else {
            self.forget(&key);
            return dropped(&format!("an Access-Request from {} while {IN_FLIGHT} are being decided", client.name));
        };
        let radius = self.clone();
        tokio::spawn(async move {
            let client = &radius.clients[index];
            // A push waits on a slot of its own: waiting pushes never keep
            // codes from being checked.
            let mut permit = Some(permit);
            let decision = match radius.decide(index, &request, peer).await {
                Step::Now(decision) => decision,
                Step::Wait(id) => {
                    permit = None;
                    match radius.waiting.clone().try_acquire_owned() {
                        Ok(_waiting) => radius.wait(&id).await,
                        Err(_) => {
                            Decision::reject("Too many sign-ins are waiting: try again soon", format!("{WAITING} pushes are waiting"))
                        }
                    }
                }
            };
            let user = request.text(packet::USER_NAME).map(|user| printable(&user)).unwrap_or_default();
            let outcome = match decision.code {
                packet::ACCESS_ACCEPT => "Access-Accept",
                packet::ACCESS_CHALLENGE => "Access-Challenge",
                _ => "Access-Reject",
            };
            log::info(&format!("radius {}: {user:?} from {}: {outcome}, {}", client.name, peer.ip(), decision.reason));
            let mut attributes: Vec<(u8, &[u8])> = vec![(packet::REPLY_MESSAGE, decision.reply.as_bytes())];
            if let Some(state) = &decision.state {
                attributes.push((packet::STATE, state));
            }
            // RFC 2865 §5.33: a proxy's Proxy-State comes back unchanged, in order.
            attributes.extend(
                request.attributes.iter().filter(|(kind, _)| *kind == packet::PROXY_STATE).map(|(kind, value)| (*kind, value.as_slice())),
            );
            let answer = Arc::new(packet::response(decision.code, &request, &attributes, client.secret.as_bytes()));
            if let Err(error) = radius.socket.send_to(&answer, peer).await {
                log::warn(&format!("radius {}: answering {}: {error}", client.name, peer));
            }
            if let Ok(mut seen) = radius.seen.lock() {
                seen.requests.insert(key, Seen::Answered(answer, Instant::now()));
            }
            drop(permit);
        });
    }

    fn forget(&self, key: &Retransmission) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.requests.remove(key);
        }
    }

    /// What an authentic Access-Request from client `index` comes to.
    async fn decide(&self, index: usize, request: &Packet, peer: SocketAddr) -> Step {
        let client = &self.clients[index];
        let Some(user) = request.text(packet::USER_NAME).map(|user| user.trim().to_owned()).filter(|user| !user.is_empty()) else {
            return Decision::reject("Access denied", "no User-Name").into();
        };
        let password = match request.password(client.secret.as_bytes()) {
            Ok(Some(password)) => password,
            Ok(None) if request.get(packet::CHAP_PASSWORD).is_some() || request.get(packet::EAP_MESSAGE).is_some() => {
                return Decision::reject("Only PAP is supported", "CHAP or EAP, not PAP").into();
            }
            // radclient, and some NASes, leave out an empty password.
            Ok(None) => Zeroizing::new(Vec::new()),
            Err(why) => return Decision::reject("Access denied", why.to_string()).into(),
        };
        let kind = classify(&password, client.legacy_app);
        // Wrong codes slow down the person's address (Calling-Station-Id,
        // when it is one), not everyone behind the NAS.
        let caller = request.text(packet::CALLING_STATION_ID).and_then(|id| id.trim().parse::<IpAddr>().ok()).unwrap_or(peer.ip());
        if let Some(state) = request.get(packet::STATE) {
            return self.follow_up(index, &user, state, kind, caller).await;
        }
        match kind {
            Password::Code(code) => self.code(&user, &code, caller).await.into(),
            Password::Push => match self.push(index, &user, request).await {
                Ok(Some(id)) => Step::Wait(id),
                Ok(None) => Decision::reject("No Countersign app is set up for you", "no push: the user has no device").into(),
                Err(decision) => decision.into(),
            },
            Password::App => match api::check_app_password(&self.state, &user, &String::from_utf8_lossy(&password), caller).await {
                Ok(verdict) if verdict.valid => Decision::accept("Accepted", "an app password").into(),
                Ok(_) => Decision::reject("Access denied", "a wrong app password").into(),
                Err(failure) => failed(&failure).into(),
            },
            // Without a device, a code from the app can still answer it.
            Password::Other => match self.push(index, &user, request).await {
                Ok(signin) => self.challenge(index, &user, signin).into(),
                Err(decision) => decision.into(),
            },
        }
    }

    async fn code(&self, user: &str, code: &str, caller: IpAddr) -> Decision {
        match api::check_totp(&self.state, user, code, caller).await {
            Ok(verdict) if verdict.valid => Decision::accept("Code accepted", "a right code"),
            Ok(verdict) if verdict.retry_after.is_some() => {
                Decision::reject("Too many wrong codes: wait a little", "codes after wrong ones are not checked yet")
            }
            Ok(_) => Decision::reject("Wrong or already used code", "a wrong or reused code"),
            Err(failure) => failed(&failure),
        }
    }

    /// Sends a push for `user` with the client's name and the calling
    /// station: its id, `None` when the user has no device, or the
    /// Access-Reject to send instead.
    async fn push(&self, index: usize, user: &str, request: &Packet) -> Result<Option<String>, Decision> {
        // Counted first: a user without a device gets challenges instead,
        // and they count too.
        if !self.pushes.allow(&user.to_owned(), super::limits::millis()) {
            return Err(Decision::reject(
                "Too many requests: wait a minute",
                format!("over {PUSHES_PER_USER} pushes for this user in a minute"),
            ));
        }
        match self.state.store.enrolled(user).await {
            Ok(Some((enrolled, _))) if enrolled.devices => {}
            Ok(Some(_)) => return Ok(None),
            Ok(None) => return Err(Decision::reject("Access denied", "no such user")),
            Err(error) => return Err(failed(&Failure::from(error))),
        }
        let client = &self.clients[index];
        let app = match request.text(packet::NAS_IDENTIFIER).map(|nas| nas.trim().to_owned()).filter(|nas| !nas.is_empty()) {
            Some(nas) if nas != client.name => format!("{} ({nas})", client.name),
            _ => client.name.clone(),
        };
        let limit = |text: String| text.chars().take(api::FIELD_LIMIT).collect::<String>();
        let signin = SigninRequest {
            user: user.to_owned(),
            app: limit(app),
            ip: limit(request.text(packet::CALLING_STATION_ID).unwrap_or_default()),
            location: String::new(),
            method: Some("push".into()),
            phone: None,
            number_matching: Some(false),
        };
        match api::create_signin(&self.state, signin).await {
            Ok(created) => Ok(Some(created.id)),
            Err(Failure::NotFound(_)) => Err(Decision::reject("Access denied", "no such user")),
            Err(Failure::Blocked(_)) => {
                Err(Decision::reject("Sign-ins are blocked: you reported one you did not make", "pushes blocked after a report"))
            }
            Err(failure) => Err(failed(&failure)),
        }
    }

    /// Waits until the push is decided or expires.
    async fn wait(&self, id: &str) -> Decision {
        // Each wait is at most 60 s and a push lives at most an hour.
        for _ in 0..62 {
            match api::wait_for(&self.state, id, 60).await {
                Ok(status) => match status.status {
                    Status::Pending => continue,
                    Status::Approved => return Decision::accept("Approved in Countersign", "the push was approved"),
                    Status::Denied => return Decision::reject("Denied in Countersign", "the push was denied"),
                    Status::Reported => return Decision::reject("Reported in Countersign", "the push was reported (It wasn't me)"),
                    _ => return Decision::reject("No answer in Countersign in time", "the push expired"),
                },
                Err(failure) => return failed(&failure),
            }
        }
        Decision::reject("No answer in Countersign in time", "the push expired")
    }

    fn challenge(&self, index: usize, user: &str, signin: Option<String>) -> Decision {
        let mut state = [0u8; 16];
        if getrandom::fill(&mut state).is_err() {
            return Decision::reject("Access denied", "no random numbers for a State");
        }
        let reply = if signin.is_some() { CHALLENGE_TEXT } else { "Type the code from Countersign" };
        let seconds = u64::try_from(self.state.config.challenge_seconds).unwrap_or(60);
        let Ok(mut challenges) = self.challenges.lock() else { return Decision::reject("Access denied", "a poisoned lock") };
        let now = Instant::now();
        if challenges.len() >= CHALLENGES {
            challenges.retain(|_, challenge| challenge.expires > now);
        }
        if challenges.len() >= CHALLENGES {
            return Decision::reject("Access denied", format!("{CHALLENGES} challenges are open"));
        }
        let pushed = if signin.is_some() { "a push sent" } else { "no push: the user has no device" };
        challenges.insert(state, Challenge { user: user.to_owned(), client: index, signin, expires: now + Duration::from_secs(seconds) });
        Decision { code: packet::ACCESS_CHALLENGE, reply, state: Some(state), reason: format!("neither a code nor push; {pushed}") }
    }

    /// The request that brings a challenge's State back: a code, or
    /// anything else to wait for the push.
    async fn follow_up(&self, index: usize, user: &str, state: &[u8], kind: Password, caller: IpAddr) -> Step {
        // Another user's or client's request leaves the State to its owner.
        let challenge = {
            let Ok(mut challenges) = self.challenges.lock() else { return Decision::reject("Access denied", "a poisoned lock").into() };
            let Ok(state) = <[u8; 16]>::try_from(state) else { return Decision::reject("Access denied", "an unknown State").into() };
            match challenges.get(&state) {
                None => return Decision::reject("Access denied", "an unknown or used State").into(),
                Some(challenge) if challenge.user != user || challenge.client != index => {
                    return Decision::reject("Access denied", "a State given to another user or client").into();
                }
                Some(_) => match challenges.remove(&state) {
                    Some(challenge) => challenge,
                    None => return Decision::reject("Access denied", "an unknown or used State").into(),
                },
            }
        };
        if challenge.expires <= Instant::now() {
            return Decision::reject("No answer in Countersign in time", "an expired State").into();
        }
        match (kind, challenge.signin) {
            (Password::Code(code), _) => self.code(user, &code, caller).await.into(),
            (_, Some(id)) => Step::Wait(id),
            (_, None) => Decision::reject("Type the code from Countersign", "no code after a challenge without a push").into(),
        }
    }
}

/// A failure of the server itself: rejected, the cause logged.
fn failed(failure: &Failure) -> Decision {
    Decision::reject("Access denied", format!("the server failed: {failure:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_read_as_codes_pushes_app_passwords_or_other() {
        assert!(matches!(classify(b"123456", false), Password::Code(code) if code == "123456"));
        assert!(matches!(classify(b"123 456", false), Password::Code(code) if code == "123456"));
        assert!(matches!(classify(b"12345678", false), Password::Code(_)));
        assert!(matches!(classify(b"12345", false), Password::Other));
        assert!(matches!(classify(b"123456789", false), Password::Other));
        assert!(matches!(classify(b"", false), Password::Push));
        assert!(matches!(classify(b"PUSH", false), Password::Push));
        assert!(matches!(classify(b"abcd efgh ijkl mnop qrst", true), Password::App));
        assert!(matches!(classify(b"abcd efgh ijkl mnop qrst", false), Password::Other));
        assert!(matches!(classify(b"correct horse", true), Password::Other));
        assert!(matches!(classify(&[0xff, 0xfe], false), Password::Other));
    }

    fn client(name: &str, addresses: &[&str]) -> Client {
        Client {
            name: name.into(),
            secret: "sixteen chars ok".into(),
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            legacy_app: false,
        }
    }

    #[test]
    fn settings_refuse_short_secrets_shared_addresses_and_no_clients() {
        assert!(Settings::default().check(false).is_ok());
        assert!(Settings::default().check(true).unwrap_err().contains("at least one"));
        let mut short = client("vpn", &["127.0.0.1"]);
        short.secret = "testing123".into();
        assert!(Settings { clients: vec![short] }.check(true).unwrap_err().contains("16 characters"));
        let two = Settings { clients: vec![client("a", &["10.0.0.0/8"]), client("b", &["10.1.2.3"])] };
        assert!(two.check(true).unwrap_err().contains("share addresses"));
        let apart = Settings { clients: vec![client("a", &["10.0.0.0/8"]), client("b", &["192.0.2.1", "::1"])] };
        assert!(apart.check(true).is_ok());
        assert!("10.0.0.300".parse::<Network>().is_err());
    }

    #[test]
    fn networks_hold_their_addresses_and_mapped_ipv4() {
        let net: Network = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        let one: Network = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()) && !one.contains("127.0.0.2".parse().unwrap()));
    }

    #[test]
    fn debug_leaves_out_the_secret() {
        let text = format!("{:?}", Settings { clients: vec![client("vpn", &["127.0.0.1"])] });
        assert!(text.contains("vpn") && !text.contains("sixteen"), "{text}");
    }
}
