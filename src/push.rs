//! Push approvals: the wire protocol shared by the app and
//! `countersign-server`, its signatures, and the push-fatigue shield.
//!
//! # Wire protocol, version 1
//!
//! Every message is JSON. Signed messages travel as an [`Envelope`]: the
//! exact payload bytes (standard base64) and an Ed25519 signature over
//! `CONTEXT || payload bytes`, where CONTEXT names the message kind
//! (`countersign-challenge-v1\n`, `countersign-response-v1\n`,
//! `countersign-auth-v1\n`), so a signature can never be replayed as another
//! kind. Signing the bytes as sent avoids any JSON canonicalisation.
//!
//! **Activation.** An administrator creates a one-time activation for a user:
//! a 12-digit code (valid 10 minutes, usable once, invalidated after 5 wrong
//! tries) and an activation URL `BASE/api/activate/ACTIVATION_ID`. The QR code
//! carries both as `phonefactor://activate_account?code=CODE&url=URL`, the
//! form Microsoft Authenticator scans. The app generates an Ed25519 device key
//! and POSTs [`ActivationRequest`] to the URL; the answer is
//! [`ActivationResponse`]: the account (organisation, user), the server's
//! public key (pinned from then on), the TOTP secret for "Use verification
//! code", the device id and the push endpoint (a WebSocket URL). Errors are
//! [`ApiError`] bodies with a 4xx status.
//!
//! Since receive-only sessions, the app also sends a second public key, its
//! *listener key* (`listener_public_key`), and the server says it kept it
//! (`listener: true`).
//!
//! **Delivery.** The app opens the WebSocket. The server's first message is
//! [`ServerMessage::Hello`] with a random nonce and the server's clock
//! (`time`, Unix seconds; the app measures its own clock's offset with it);
//! the app answers either
//! * [`ClientMessage::Auth`] with its device id and a signature of the nonce
//!   by the device key (`countersign-auth-v1\n` context), or
//! * [`ClientMessage::Listen`], a *receive-only* session: the listener key
//!   signs `nonce || "\n" || server key (base64)` (`countersign-listen-v1\n`
//!   context). The listener key is kept outside the vault (see
//!   `crate::listeners`), so a locked app stays reachable; it can open a session
//!   but can sign nothing the server acts on: every answer is still an
//!   envelope signed by the device key, which only the unlocked vault holds.
//!
//! The server answers `Ready` or closes. On a server with virtual phones
//! (below), `Ready` lists the numbers the device answers for (`phones`).
//! Then the server sends [`ServerMessage::Challenge`] for every pending,
//! unexpired sign-in of the user (at once on connect, and as they are
//! created). Each carries an envelope of a [`Challenge`] signed by the server
//! key; the app verifies it against the pinned key and drops (and logs)
//! anything that does not verify or is not for this device.
//!
//! **Responses.** The app sends [`ClientMessage::Respond`] with an envelope of
//! a [`Response`] signed by the device key. The server verifies it, records
//! the outcome exactly once and answers [`ServerMessage::Result`]; a second
//! response to the same challenge, an expired challenge or a bad signature is
//! rejected with a reason. A wrong matched number is recorded as denied.
//! "It wasn't me" (`report`) denies and blocks pushes for that user for a
//! configurable time.
//!
//! **Listener keys.** A device activated before listener keys existed (or
//! whose listener key was lost) registers a new one in any session with
//! [`ClientMessage::RegisterListener`]: an envelope of a
//! [`protocol::ListenerRegistration`] signed by the device key
//! (`countersign-listener-v1\n` context). The server replaces the device's
//! listener key and answers [`ServerMessage::ListenerRegistered`].
//!
//! **Virtual phones.** A device may also answer for its user's phone
//! numbers, for testing the text and call methods without a phone. It
//! sends [`ClientMessage::Phone`]: an envelope of a [`protocol::PhoneRequest`]
//! signed by the device key (`countersign-phone-v1\n` context, dated by the
//! server's clock, taken within 5 minutes of it) in any session of the
//! device, a receive-only one included. `attach` (and `detach`) a number:
//! the server checks it is one of the user's and answers
//! [`ServerMessage::Phones`] with every number the device now answers for
//! (and `refused`, why not, when it refused). With the server's `virtual`
//! phone provider, a text to such a number arrives as [`ServerMessage::Text`]
//! (an envelope of a [`protocol::PhoneText`], `countersign-text-v1\n`) and a
//! call as [`ServerMessage::Call`] ([`protocol::PhoneCall`],
//! `countersign-call-v1\n`), on every session of the device, receive-only
//! ones included. A text's words and code are a sealed box to the device
//! key ([`PublicKey::seal_to`]): a locked app learns that a text came, and
//! only the unlocked vault reads it. A call says where the sign-in comes
//! from, as a challenge does, in the clear. The app answers with a signed
//! `reply` (a text's code) or `keys` (keys pressed on a call, or its
//! hang-up); the server answers [`ServerMessage::Result`] with the
//! sign-in's id, as for a push answer. A reply is checked as a code typed
//! on the sign-in page (attempts, single use), keys as the gateway's call
//! callback (`#` approves, `0#` reports).
//!
//! A message type the app does not know deserialises as
//! [`ServerMessage::Unknown`] and is skipped.
//!
//! Golden JSON of every message is kept in `tests/fixtures/push/`; both the
//! client and the server test against it.

#[cfg(feature = "client")]
pub mod client;
pub mod protocol;
pub mod shield;

pub use protocol::{
    ActivationRequest, ActivationResponse, ApiError, Challenge, ClientMessage, Decision, Envelope, Keypair, ListenerRegistration,
    PhoneAction, PhoneCall, PhoneRequest, PhoneText, PublicKey, Response, ServerMessage, Status, TextBody,
};
pub use shield::Shield;

/// A work or school account's link to its server, kept in the vault beside
/// the account: the device key (secret), the server key pinned at
/// activation, and where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub organization: String,
    pub user: String,
    pub device_id: String,
    pub device_key: Keypair,
    pub server_key: PublicKey,
    /// The push WebSocket URL.
    pub endpoint: String,
}

/// Whether `c` must not reach people as it is in text a relying party
/// wrote: control characters (terminal escapes, forged line breaks), line
/// and paragraph separators, bidirectional overrides and isolates (they
/// reorder what is shown after them: "moc.elgoog"), zero-width characters.
pub fn is_deceptive(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// Relying-party text as shown to people: each deceptive character (see
/// [`is_deceptive`]) becomes a space.
pub fn printable(text: &str) -> String {
    text.chars().map(|c| if is_deceptive(c) { ' ' } else { c }).collect()
}

/// A device's receive-only credential: enough to open a session with the
/// server and verify its challenges, nothing that answers them. It is kept
/// outside the vault (`crate::listeners`) so that a locked app still
/// receives sign-in requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub organization: String,
    pub user: String,
    pub device_id: String,
    /// The push WebSocket URL.
    pub endpoint: String,
    /// The server key pinned at activation: challenges are verified with it.
    pub server_key: PublicKey,
    /// The listener key: it opens receive-only sessions (`Debug` shows only
    /// its public half).
    pub key: Keypair,
}

impl Link {
    /// The receive-only credential of this device with listener key `key`.
    pub fn listener(&self, key: Keypair) -> Listener {
        Listener {
            organization: self.organization.clone(),
            user: self.user.clone(),
            device_id: self.device_id.clone(),
            endpoint: self.endpoint.clone(),
            server_key: self.server_key,
            key,
        }
    }

    /// This device's answer to `challenge_id`, signed with the device key:
    /// what the app sends through any session, receive-only ones included.
    pub fn sign_response(&self, challenge_id: &str, decision: Decision, number: Option<u32>, user_verified: bool, now: i64) -> Envelope {
        sign_response(&self.device_key, &self.device_id, challenge_id, decision, number, user_verified, now)
    }

    /// What this device asks of its virtual phone, signed with the device
    /// key and dated `at` (the server's clock): what the app sends through
    /// any session, receive-only ones included.
    pub fn sign_phone(&self, action: PhoneAction, at: i64) -> Envelope {
        sign_phone(&self.device_key, &self.device_id, action, at)
    }

    /// The device key's registration of `listener` as this device's
    /// receive-only key.
    pub fn sign_listener(&self, listener: &PublicKey, now: i64) -> Envelope {
        let registration =
            ListenerRegistration { v: protocol::VERSION, device_id: self.device_id.clone(), listener_key: *listener, at: now };
        self.device_key.seal(protocol::LISTENER_CONTEXT, &registration)
    }
}

/// The answer of device `device_id` to `challenge_id`, signed with its
/// `device_key`: the one way an answer is made ([`Link::sign_response`],
/// [`client::Session::respond`]).
pub(crate) fn sign_response(
    device_key: &Keypair,
    device_id: &str,
    challenge_id: &str,
    decision: Decision,
    number: Option<u32>,
    user_verified: bool,
    now: i64,
) -> Envelope {
    let response = Response {
        v: protocol::VERSION,
        challenge_id: challenge_id.to_owned(),
        device_id: device_id.to_owned(),
        decision,
        number,
        user_verified,
        at: now,
    };
    device_key.seal(protocol::RESPONSE_CONTEXT, &response)
}

/// A virtual phone's request from device `device_id`, signed with its
/// `device_key` ([`Link::sign_phone`], [`client::Session::phone`]).
pub(crate) fn sign_phone(device_key: &Keypair, device_id: &str, action: PhoneAction, at: i64) -> Envelope {
    let request = PhoneRequest { v: protocol::VERSION, device_id: device_id.to_owned(), action, at };
    device_key.seal(protocol::PHONE_CONTEXT, &request)
}
