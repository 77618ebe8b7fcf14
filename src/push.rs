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
//! **Delivery.** The app opens the WebSocket. The server's first message is
//! [`ServerMessage::Hello`] with a random nonce; the app answers
//! [`ClientMessage::Auth`] with its device id and a signature of the nonce
//! (`countersign-auth-v1\n` context); the server answers `Ready` or closes.
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
//! Golden JSON of every message is kept in `tests/fixtures/push/`; both the
//! client and the server test against it.

#[cfg(feature = "client")]
pub mod client;
pub mod protocol;
pub mod shield;

pub use protocol::{ActivationRequest, ActivationResponse, ApiError, Challenge, ClientMessage, Decision, Envelope, Keypair, PublicKey, Response, ServerMessage};
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
