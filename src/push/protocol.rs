//! The messages of the push protocol (see [`crate::push`] for the flow) and
//! their Ed25519 signatures. Field names are the wire names.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::base64;

/// Signature contexts: a signature made for one kind of message never
/// verifies as another.
pub const CHALLENGE_CONTEXT: &[u8] = b"countersign-challenge-v1\n";
pub const RESPONSE_CONTEXT: &[u8] = b"countersign-response-v1\n";
pub const AUTH_CONTEXT: &[u8] = b"countersign-auth-v1\n";
/// A full session's proof since version 2 of the auth: the device key signs
/// `nonce || "\n" || server public key (base64) || "\n" || push endpoint`,
/// so the signature opens a session only on the server the device pinned,
/// at the endpoint it was given. Servers still take [`AUTH_CONTEXT`]
/// signatures from apps made before it.
pub const AUTH_BOUND_CONTEXT: &[u8] = b"countersign-auth-v2\n";
/// A receive-only session's proof: the listener key signs
/// `nonce || "\n" || server public key (base64)`, so a signature made for
/// one server can never open a session on another.
pub const LISTEN_CONTEXT: &[u8] = b"countersign-listen-v1\n";
/// The device key vouching for a new listener key ([`ListenerRegistration`]).
pub const LISTENER_CONTEXT: &[u8] = b"countersign-listener-v1\n";
/// The server's signature on a text message for a virtual phone ([`PhoneText`]).
pub const TEXT_CONTEXT: &[u8] = b"countersign-text-v1\n";
/// The server's signature on a call to a virtual phone ([`PhoneCall`]).
pub const CALL_CONTEXT: &[u8] = b"countersign-call-v1\n";
/// The device key's signature on what a device asks of its virtual phone
/// ([`PhoneRequest`]).
pub const PHONE_CONTEXT: &[u8] = b"countersign-phone-v1\n";

/// The protocol version in every signed payload.
pub const VERSION: u32 = 1;

/// Why a signed message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the signature does not verify")]
    BadSignature,
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("unsupported protocol version {0}")]
    Version(u32),
    #[error("the operating system's random number generator failed")]
    Random,
}

/// An Ed25519 key pair: a device's, or the server's. Wiped on drop; `Debug`
/// shows only the public half.
#[derive(Clone)]
pub struct Keypair(SigningKey);

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keypair({})", self.public().to_base64())
    }
}

impl PartialEq for Keypair {
    fn eq(&self, other: &Self) -> bool {
        *self.to_seed() == *other.to_seed()
    }
}

impl Eq for Keypair {}

impl Keypair {
    /// A new random key from the operating system.
    pub fn generate() -> Result<Self, Error> {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut seed[..]).map_err(|_| Error::Random)?;
        Ok(Keypair(SigningKey::from_bytes(&seed)))
    }

    /// The 32-byte secret seed, for storage in the vault or the database.
    pub fn to_seed(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.0.to_bytes())
    }

    /// From a stored 32-byte seed.
    pub fn from_seed(seed: &[u8]) -> Result<Self, Error> {
        let seed: [u8; 32] = seed.try_into().map_err(|_| Error::Malformed("key seed"))?;
        Ok(Keypair(SigningKey::from_bytes(&seed)))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `payload` under `context` (one of the `*_CONTEXT` constants).
    pub fn sign(&self, context: &[u8], payload: &[u8]) -> [u8; 64] {
        self.0.sign(&[context, payload].concat()).to_bytes()
    }

    /// Opens a sealed box made for this key's public half
    /// ([`PublicKey::seal_to`]).
    pub fn unseal(&self, sealed: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, Error> {
        let scalar = zeroize::Zeroizing::new(self.0.to_scalar_bytes());
        let secret = crypto_box::SecretKey::from(*scalar);
        secret.unseal(sealed).map(zeroize::Zeroizing::new).map_err(|_| Error::Malformed("sealed box"))
    }

    /// Serialises and signs `message` as an [`Envelope`].
    pub fn seal<T: Serialize>(&self, context: &[u8], message: &T) -> Envelope {
        let payload = serde_json::to_vec(message).unwrap_or_default();
        let signature = self.sign(context, &payload);
        Envelope { payload: base64::encode(&payload), signature: base64::encode(signature) }
    }
}

/// An Ed25519 public key, as base64 on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn from_base64(text: &str) -> Result<Self, Error> {
        let bytes = base64::decode(text.trim()).map_err(|_| Error::Malformed("public key"))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| Error::Malformed("public key"))?;
        VerifyingKey::from_bytes(&bytes).map(PublicKey).map_err(|_| Error::Malformed("public key"))
    }

    pub fn to_base64(&self) -> String {
        base64::encode(self.0.to_bytes())
    }

    /// A libsodium sealed box of `plaintext` (crypto_box: an ephemeral X25519
    /// key, XSalsa20-Poly1305) that only the holder of this key's secret
    /// half opens ([`Keypair::unseal`]). The X25519 key is this Ed25519
    /// key's birationally equivalent Montgomery point, as libsodium's
    /// `crypto_sign_ed25519_pk_to_curve25519` makes it; using one key pair
    /// for Ed25519 signatures and such a KEM is shown secure by Thormarker,
    /// "On using the same key pair for Ed25519 and an X25519 based KEM"
    /// (IACR ePrint 2021/509).
    pub fn seal_to(&self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let public = crypto_box::PublicKey::from(self.0.to_montgomery().to_bytes());
        public.seal(&mut crypto_box::aead::OsRng, plaintext).map_err(|_| Error::Random)
    }

    /// Checks a signature made by [`Keypair::sign`] under `context`.
    pub fn verify(&self, context: &[u8], payload: &[u8], signature: &[u8]) -> Result<(), Error> {
        let signature = Signature::from_slice(signature).map_err(|_| Error::BadSignature)?;
        self.0.verify_strict(&[context, payload].concat(), &signature).map_err(|_| Error::BadSignature)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        PublicKey::from_base64(&text).map_err(serde::de::Error::custom)
    }
}

/// Signed bytes: the payload exactly as signed, and the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Standard base64 of the JSON payload.
    pub payload: String,
    /// Standard base64 of the 64-byte Ed25519 signature.
    pub signature: String,
}

impl Envelope {
    /// Verifies the signature under `context` with `key`, then decodes the payload.
    pub fn open<T: serde::de::DeserializeOwned>(&self, key: &PublicKey, context: &[u8]) -> Result<T, Error> {
        let payload = base64::decode(&self.payload).map_err(|_| Error::Malformed("payload"))?;
        let signature = base64::decode(&self.signature).map_err(|_| Error::BadSignature)?;
        key.verify(context, &payload, &signature)?;
        serde_json::from_slice(&payload).map_err(|_| Error::Malformed("payload"))
    }
}

/// A sign-in waiting for the user's answer, as the server signs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub v: u32,
    pub id: String,
    /// The device it is addressed to.
    pub device_id: String,
    pub organization: String,
    pub user: String,
    /// The application asking ("Contoso VPN").
    pub app: String,
    pub ip: String,
    /// "Zurich, Switzerland", or empty when unknown.
    pub location: String,
    /// Unix seconds.
    pub created_at: i64,
    pub expires_at: i64,
    /// The user must type the number the sign-in page shows.
    pub number_matching: bool,
    /// The organisation requires the user to prove presence (PIN or vault password).
    pub pin_required: bool,
    /// The server's question, when it asks one (privacyIDEA). Left out of
    /// the JSON when empty, so Countersign's signed messages are unchanged.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub question: String,
    /// privacyIDEA presence mode: the user picks the option the sign-in page shows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub presence_options: Vec<String>,
}

impl Challenge {
    /// Seconds left at `now`, 0 once expired.
    pub fn seconds_left(&self, now: i64) -> i64 {
        self.expires_at.saturating_sub(now).max(0)
    }

    /// When it expires by this computer's clock, for a challenge that
    /// `arrived` (local Unix seconds). `clock_offset` is the server's clock
    /// minus ours, when the server said it: the time left is then measured on
    /// the server's clock, so a wrong local clock neither ends a request early
    /// nor keeps one that the server already closed. Without it the request's
    /// lifetime counts from its arrival. Never more than its lifetime.
    pub fn deadline(&self, arrived: i64, clock_offset: Option<i64>) -> i64 {
        deadline(self.created_at, self.expires_at, arrived, clock_offset)
    }
}

/// When something the server made at `created_at` to end at `expires_at`
/// (its clock) ends by ours, having `arrived` then: see
/// [`Challenge::deadline`], whose rule texts and calls follow too.
pub fn deadline(created_at: i64, expires_at: i64, arrived: i64, clock_offset: Option<i64>) -> i64 {
    // Signed by the pinned server, but still only numbers: no overflow.
    let lifetime = expires_at.saturating_sub(created_at).max(0);
    let left = match clock_offset {
        Some(offset) => expires_at.saturating_sub(arrived.saturating_add(offset)).clamp(0, lifetime),
        None => lifetime,
    };
    arrived.saturating_add(left)
}

/// The user's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Authenticate.
    Approve,
    /// Deny.
    Deny,
    /// Deny, and "It wasn't me": blocks further pushes for a while.
    Report,
}

/// Where a sign-in stands: in [`ServerMessage::Result`], the relying
/// party's status answer and the server's database, always as the
/// snake_case name below (the text servers have always sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for an answer; after a refused answer, still open to another.
    Pending,
    Approved,
    Denied,
    /// Denied with "It wasn't me".
    Reported,
    /// Unanswered past its expiry.
    Expired,
    /// privacyIDEA stopped listing it (answered elsewhere, expired, cancelled).
    Closed,
    /// Nothing said: an answer refused before its sign-in was found, or a
    /// sign-in that is gone. The empty string on the wire.
    #[serde(rename = "")]
    Unknown,
    /// A status this version does not know (a newer server's), kept as
    /// sent: it is shown as it came and is never taken for an open request.
    #[serde(untagged)]
    Other(String),
}

impl Status {
    /// The wire text, as serde writes it.
    pub fn as_str(&self) -> &str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Denied => "denied",
            Status::Reported => "reported",
            Status::Expired => "expired",
            Status::Closed => "closed",
            Status::Unknown => "",
            Status::Other(text) => text,
        }
    }
}

impl From<&str> for Status {
    /// The status a wire text names, as serde reads it: any other text is [`Status::Other`].
    fn from(text: &str) -> Self {
        match text {
            "pending" => Status::Pending,
            "approved" => Status::Approved,
            "denied" => Status::Denied,
            "reported" => Status::Reported,
            "expired" => Status::Expired,
            "closed" => Status::Closed,
            "" => Status::Unknown,
            other => Status::Other(other.to_owned()),
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A device's signed answer to one challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub v: u32,
    pub challenge_id: String,
    pub device_id: String,
    pub decision: Decision,
    /// The number typed, when matching is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u32>,
    /// The app checked the user's PIN or vault password.
    #[serde(default)]
    pub user_verified: bool,
    /// Unix seconds.
    pub at: i64,
}

/// A text message to a phone number this device answers for (a virtual
/// phone, see [`PhoneAction::Attach`]), as the server signs it. What it
/// says is sealed to the device key: a receive-only session (a locked
/// app) learns that a text came, and only the unlocked vault reads its code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneText {
    pub v: u32,
    /// The sign-in it verifies; a reply names it.
    pub id: String,
    /// The device it is addressed to.
    pub device_id: String,
    /// The number it was sent to (E.164).
    pub to: String,
    /// Standard base64 of a sealed box of a [`TextBody`]'s JSON to the
    /// device key (see [`PublicKey::seal_to`]).
    pub sealed: String,
    /// Unix seconds.
    pub created_at: i64,
    pub expires_at: i64,
}

impl PhoneText {
    /// What the text says, opened with the device key.
    pub fn open(&self, device_key: &Keypair) -> Result<TextBody, Error> {
        let sealed = base64::decode(&self.sealed).map_err(|_| Error::Malformed("sealed box"))?;
        let json = device_key.unseal(&sealed)?;
        serde_json::from_slice(&json).map_err(|_| Error::Malformed("text"))
    }
}

/// What a [`PhoneText`] says: wiped on drop, `Debug` without the code.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct TextBody {
    /// The message as a real phone would show it.
    pub text: String,
    /// The code in it.
    pub code: String,
}

impl std::fmt::Debug for TextBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TextBody(..)")
    }
}

impl TextBody {
    /// Sealed to `device` for [`PhoneText::sealed`].
    pub fn seal_to(&self, device: &PublicKey) -> Result<String, Error> {
        let json = zeroize::Zeroizing::new(serde_json::to_vec(self).map_err(|_| Error::Malformed("text"))?);
        Ok(base64::encode(device.seal_to(&json)?))
    }
}

/// A call to a phone number this device answers for: what the call says,
/// and the sign-in its keys answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneCall {
    pub v: u32,
    pub id: String,
    pub device_id: String,
    /// The number called (E.164), and its extension when it has one.
    pub to: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub extension: String,
    /// What the call says, word for word.
    pub say: String,
    /// Unix seconds.
    pub created_at: i64,
    pub expires_at: i64,
}

/// What a device asks of its virtual phone, signed by its device key under
/// [`PHONE_CONTEXT`]: taken from any session of the device, a receive-only
/// one included (the app relays it there while its vault is unlocked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneRequest {
    pub v: u32,
    pub device_id: String,
    #[serde(flatten)]
    pub action: PhoneAction,
    /// Unix seconds, by the server's clock: a request made more than 5
    /// minutes away from the server's now is refused.
    pub at: i64,
}

/// One [`PhoneRequest`], by its `do` field.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum PhoneAction {
    /// From now on this device also answers for `number`, one of its
    /// user's phones (any form the server can parse): texts and calls to it
    /// come as [`ServerMessage::Text`] and [`ServerMessage::Call`].
    /// Answered with [`ServerMessage::Phones`].
    Attach { number: String },
    /// This device no longer answers for `number`.
    Detach { number: String },
    /// A reply to text `id` (the code it holds, or anything else):
    /// answered with a [`ServerMessage::Result`] for `id`.
    Reply { id: String, text: String },
    /// Keys pressed on call `id` (`#` approves, `0#` reports), or, with
    /// `hang_up`, the end of the call (denied unless decided). Answered
    /// with a [`ServerMessage::Result`] for `id`.
    Keys {
        id: String,
        #[serde(default)]
        keys: String,
        #[serde(default)]
        hang_up: bool,
    },
}

impl std::fmt::Debug for PhoneAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PhoneAction::Attach { number } => f.debug_struct("Attach").field("number", number).finish(),
            PhoneAction::Detach { number } => f.debug_struct("Detach").field("number", number).finish(),
            // A reply holds a code.
            PhoneAction::Reply { id, .. } => f.debug_struct("Reply").field("id", id).finish_non_exhaustive(),
            PhoneAction::Keys { id, keys, hang_up } => {
                f.debug_struct("Keys").field("id", id).field("keys", keys).field("hang_up", hang_up).finish()
            }
        }
    }
}

/// The body the app POSTs to the activation URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationRequest {
    pub code: String,
    pub device_public_key: PublicKey,
    /// A name for the device ("alice's laptop"), shown to administrators.
    #[serde(default)]
    pub device_name: String,
    /// The device's receive-only key (see [`ClientMessage::Listen`]), when
    /// the app has one. Servers that predate it ignore the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_public_key: Option<PublicKey>,
}

/// The device key's word that `listener_key` may open receive-only sessions
/// for `device_id` from now on (it replaces any earlier listener key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerRegistration {
    pub v: u32,
    pub device_id: String,
    pub listener_key: PublicKey,
    /// Unix seconds.
    pub at: i64,
}

/// What activation gives the app. `totp_secret` is Base32.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationResponse {
    pub organization: String,
    pub user: String,
    pub device_id: String,
    pub server_public_key: PublicKey,
    pub totp_secret: String,
    pub totp_digits: u8,
    pub totp_period: u64,
    /// `ws://` or `wss://` URL of the push WebSocket.
    pub push_endpoint: String,
    /// The server kept the request's `listener_public_key`: the device can
    /// receive while its vault is locked. Absent (false) from older servers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub listener: bool,
}

impl std::fmt::Debug for ActivationResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivationResponse")
            .field("organization", &self.organization)
            .field("user", &self.user)
            .field("device_id", &self.device_id)
            .field("push_endpoint", &self.push_endpoint)
            .finish_non_exhaustive()
    }
}

/// Every 4xx/5xx body: a stable machine code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// `bad_request`, `invalid_code`, `expired`, `used`, `too_many_attempts`,
    /// `rate_limited`, `unauthorized`, `not_found`, `blocked`, `internal`.
    pub error: String,
    pub message: String,
}

/// Server → app, on the WebSocket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// `time`: the server's clock (Unix seconds) as it says hello, so the
    /// app can tell how far its own clock is off. Absent from older servers.
    Hello {
        nonce: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time: Option<i64>,
    },
    /// Authenticated. `phones`: on a server with virtual phones, the
    /// numbers this device answers for (absent elsewhere, and from servers
    /// made before them).
    Ready {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phones: Option<Vec<String>>,
    },
    Challenge {
        envelope: Envelope,
    },
    Result {
        challenge_id: String,
        accepted: bool,
        status: Status,
        reason: String,
    },
    Error {
        error: String,
        message: String,
    },
    /// The listener key of a [`ClientMessage::RegisterListener`] was kept.
    ListenerRegistered {
        device_id: String,
    },
    /// A [`PhoneText`] signed under [`TEXT_CONTEXT`].
    Text {
        envelope: Envelope,
    },
    /// A [`PhoneCall`] signed under [`CALL_CONTEXT`].
    Call {
        envelope: Envelope,
    },
    /// The answer to [`PhoneAction::Attach`] and [`PhoneAction::Detach`]:
    /// the numbers this device now answers for, and why the request was
    /// refused when it was.
    Phones {
        numbers: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refused: Option<String>,
    },
    /// A message type this version does not know (a newer server's): skipped.
    #[serde(other)]
    Unknown,
}

/// App → server, on the WebSocket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// `signature` is base64 of the device key's signature under
    /// [`AUTH_BOUND_CONTEXT`] (see there), or, from apps made before it, of
    /// the nonce's bytes under [`AUTH_CONTEXT`].
    Auth {
        device_id: String,
        signature: String,
    },
    /// A receive-only session: `signature` is base64 of the device's
    /// listener key's signature under [`LISTEN_CONTEXT`] (see there). Such a
    /// session receives challenges; answers sent through it still need the
    /// device key's signature, which never leaves the vault.
    Listen {
        device_id: String,
        signature: String,
    },
    Respond {
        envelope: Envelope,
    },
    /// An envelope of a [`ListenerRegistration`] signed by the device key
    /// under [`LISTENER_CONTEXT`].
    RegisterListener {
        envelope: Envelope,
    },
    /// An envelope of a [`PhoneRequest`] signed by the device key under
    /// [`PHONE_CONTEXT`], in any session of the device.
    Phone {
        envelope: Envelope,
    },
}

/// The auth message for `nonce`.
pub fn auth(key: &Keypair, device_id: &str, nonce: &str) -> ClientMessage {
    ClientMessage::Auth { device_id: device_id.to_owned(), signature: base64::encode(key.sign(AUTH_CONTEXT, nonce.as_bytes())) }
}

/// Checks an auth message's signature for `nonce` (the unbound kind older apps make).
pub fn check_auth(key: &PublicKey, nonce: &str, signature: &str) -> Result<(), Error> {
    let signature = base64::decode(signature).map_err(|_| Error::BadSignature)?;
    key.verify(AUTH_CONTEXT, nonce.as_bytes(), &signature)
}

fn bound_payload(nonce: &str, server: &PublicKey, endpoint: &str) -> Vec<u8> {
    [nonce.as_bytes(), b"\n", server.to_base64().as_bytes(), b"\n", endpoint.as_bytes()].concat()
}

/// The auth message for `nonce`, bound to the pinned server key and the
/// endpoint the device connects to.
pub fn auth_bound(key: &Keypair, device_id: &str, nonce: &str, server: &PublicKey, endpoint: &str) -> ClientMessage {
    ClientMessage::Auth {
        device_id: device_id.to_owned(),
        signature: base64::encode(key.sign(AUTH_BOUND_CONTEXT, &bound_payload(nonce, server, endpoint))),
    }
}

/// Checks a bound auth signature: for `nonce`, this server (`server`) and
/// this endpoint.
pub fn check_auth_bound(key: &PublicKey, nonce: &str, server: &PublicKey, endpoint: &str, signature: &str) -> Result<(), Error> {
    let signature = base64::decode(signature).map_err(|_| Error::BadSignature)?;
    key.verify(AUTH_BOUND_CONTEXT, &bound_payload(nonce, server, endpoint), &signature)
}

/// The bytes a listener key signs to open a receive-only session.
fn listen_payload(nonce: &str, server: &PublicKey) -> Vec<u8> {
    [nonce.as_bytes(), b"\n", server.to_base64().as_bytes()].concat()
}

/// The listen message for `nonce` from the server whose pinned key is `server`.
pub fn listen(key: &Keypair, device_id: &str, nonce: &str, server: &PublicKey) -> ClientMessage {
    ClientMessage::Listen {
        device_id: device_id.to_owned(),
        signature: base64::encode(key.sign(LISTEN_CONTEXT, &listen_payload(nonce, server))),
    }
}

/// Checks a listen message's signature for `nonce`, made for this server (`server`).
pub fn check_listen(key: &PublicKey, nonce: &str, server: &PublicKey, signature: &str) -> Result<(), Error> {
    let signature = base64::decode(signature).map_err(|_| Error::BadSignature)?;
    key.verify(LISTEN_CONTEXT, &listen_payload(nonce, server), &signature)
}

/// Opens a challenge from the server and checks it is for `device_id` and of
/// a version this app speaks.
pub fn open_challenge(envelope: &Envelope, server: &PublicKey, device_id: &str) -> Result<Challenge, Error> {
    let challenge: Challenge = envelope.open(server, CHALLENGE_CONTEXT)?;
    if challenge.v != VERSION {
        return Err(Error::Version(challenge.v));
    }
    if challenge.device_id != device_id {
        return Err(Error::Malformed("challenge for another device"));
    }
    Ok(challenge)
}

/// A message the server addresses to one device, in a version.
trait Addressed: serde::de::DeserializeOwned {
    const CONTEXT: &'static [u8];
    const ELSEWHERE: &'static str;
    fn version_and_device(&self) -> (u32, &str);
}

impl Addressed for PhoneText {
    const CONTEXT: &'static [u8] = TEXT_CONTEXT;
    const ELSEWHERE: &'static str = "text for another device";
    fn version_and_device(&self) -> (u32, &str) {
        (self.v, &self.device_id)
    }
}

impl Addressed for PhoneCall {
    const CONTEXT: &'static [u8] = CALL_CONTEXT;
    const ELSEWHERE: &'static str = "call for another device";
    fn version_and_device(&self) -> (u32, &str) {
        (self.v, &self.device_id)
    }
}

/// Opens what the server signed for `device_id`, in a version this app speaks.
fn open_addressed<T: Addressed>(envelope: &Envelope, server: &PublicKey, device_id: &str) -> Result<T, Error> {
    let message: T = envelope.open(server, T::CONTEXT)?;
    let (version, addressed_to) = message.version_and_device();
    if version != VERSION {
        return Err(Error::Version(version));
    }
    if addressed_to != device_id {
        return Err(Error::Malformed(T::ELSEWHERE));
    }
    Ok(message)
}

/// Opens a text from the server: signed by it, for `device_id`, in a version this app speaks.
pub fn open_text(envelope: &Envelope, server: &PublicKey, device_id: &str) -> Result<PhoneText, Error> {
    open_addressed(envelope, server, device_id)
}

/// Opens a call from the server, as [`open_text`] opens a text.
pub fn open_call(envelope: &Envelope, server: &PublicKey, device_id: &str) -> Result<PhoneCall, Error> {
    open_addressed(envelope, server, device_id)
}

#[cfg(test)]
mod tests;
