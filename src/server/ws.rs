//! The push WebSocket: authenticate the device by a signed nonce (its device
//! key, or its listener key for a receive-only session), send it every
//! pending challenge, forward new ones, record its signed answers exactly
//! once, and take new listener keys the device key vouches for.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;

use super::api::challenge_message;
use super::cluster::result;
use super::guard::Client;
use super::hub::{Outgoing, Queued};
use super::limits::Refusal;
use super::net::Slot;
use super::{AppState, log, now, store, virtual_phone};
use crate::push::protocol::{self, LISTENER_CONTEXT, RESPONSE_CONTEXT, VERSION};
use crate::push::{ClientMessage, Decision, Envelope, ListenerRegistration, PublicKey, ServerMessage, Status};

/// The largest message a device may send (an answer is about 1 KiB).
const MESSAGE_LIMIT: usize = 16 * 1024;

/// `GET /api/push`.
pub async fn push(
    State(state): State<AppState>,
    Extension(Client(client)): Extension<Client>,
    slot: Option<Extension<Slot>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    // Messages are small (a challenge is ~700 bytes, an answer ~1 KiB): a
    // 2 KiB read buffer instead of tungstenite's 128 KiB keeps idle devices
    // cheap (it grows for a larger message, up to MESSAGE_LIMIT).
    // The session keeps the connection's slot: it counts against the limit.
    upgrade.max_message_size(MESSAGE_LIMIT).max_frame_size(MESSAGE_LIMIT).read_buffer_size(2 * 1024).write_buffer_size(4 * 1024).on_upgrade(
        move |socket| async move {
            let _slot = slot;
            session(state, socket, client).await;
        },
    )
}

async fn send(socket: &mut WebSocket, message: &ServerMessage) -> bool {
    let Ok(text) = serde_json::to_string(message) else { return false };
    socket.send(Message::Text(text.into())).await.is_ok()
}

/// A device proven by its signature at the start of a session.
struct Proven {
    device: String,
    user: String,
    key: PublicKey,
    /// Opened with the listener key: it may receive, not answer.
    receive_only: bool,
}

/// A reply for when the database fails: not a refusal (apps drop a
/// refused listener key).
pub(super) fn failed(error: store::Error) -> ServerMessage {
    log::error(&format!("{error}"));
    ServerMessage::Error { error: "internal".into(), message: "the server failed; try again".into() }
}

async fn session(state: AppState, mut socket: WebSocket, client: IpAddr) {
    // Every session lives as long as its device is connected, so its future
    // is kept small: the handshake and the database calls run in boxed
    // futures, freed once they are done (under 2 KiB held per idle device,
    // from 5.2 KiB; a unit test keeps it there).
    let Some(Proven { device, user, key, receive_only }) = Box::pin(authenticate(&state, &mut socket, client)).await else { return };
    let mut queue = state.hub.connect(&device, &user);
    // Counted by `delivered` on every instance while it lasts.
    let Ok(session_id) = store::random_hex::<8>() else { return };
    if let Err(error) = Box::pin(state.store.session_opened(&session_id, &state.instance, &device, receive_only, now())).await {
        let _ = send(&mut socket, &failed(error)).await;
        drop(queue);
        state.hub.prune(&device);
        return;
    }
    let mut sent = Sent::default();
    // Boxed: held across the send, it would grow every idle session's future.
    let ready = Box::new(Box::pin(ready(&state, &device)).await);
    if send(&mut socket, &ready).await {
        run(&state, &mut socket, client, &device, &user, &key, receive_only, &mut queue, &mut sent).await;
    }
    drop(queue);
    state.hub.prune(&device);
    if let Err(error) = Box::pin(state.store.session_closed(&session_id)).await {
        log::error(&format!("closing a session: {error}"));
    }
}

/// Says hello with a nonce and checks the signed answer; None (after
/// telling the device why, where it helps) when it does not hold.
async fn authenticate(state: &AppState, socket: &mut WebSocket, client: IpAddr) -> Option<Proven> {
    let Ok(nonce) = store::random_hex::<16>() else { return None };
    // The server's clock goes with the nonce: the app warns when its own is off.
    if !send(socket, &ServerMessage::Hello { nonce: nonce.clone(), time: Some(now()) }).await {
        return None;
    }
    // The device has 10 s to prove it holds its device key or its listener key.
    let auth = tokio::time::timeout(Duration::from_secs(10), socket.recv()).await;
    let Ok(Some(Ok(Message::Text(text)))) = auth else { return None };
    let refused = ServerMessage::Error { error: "unauthorized".into(), message: "unknown device or bad signature".into() };
    // The device key proves a full session; the listener key a receive-only
    // one, whose answers still need the device key's signature.
    let (device, proof, receive_only) = match serde_json::from_str::<ClientMessage>(&text) {
        Ok(ClientMessage::Auth { device_id, signature }) => (device_id, signature, false),
        Ok(ClientMessage::Listen { device_id, signature }) => (device_id, signature, true),
        _ => {
            let _ = send(socket, &ServerMessage::Error { error: "bad_request".into(), message: "expected an auth message".into() }).await;
            return None;
        }
    };
    let found = match state.store.device(&device).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            state.audit.refused(
                Refusal::Signature,
                client,
                &format!("a push session for an unknown or revoked device {}", crate::push::printable(&device)),
            );
            let _ = send(socket, &refused).await;
            return None;
        }
        Err(error) => {
            let _ = send(socket, &failed(error)).await;
            return None;
        }
    };
    let proven = if receive_only {
        found.listener.is_some_and(|listener| protocol::check_listen(&listener, &nonce, &state.public, &proof).is_ok())
    } else {
        // Bound to this server's key and push endpoint; apps made before
        // that sign the nonce alone.
        protocol::check_auth_bound(&found.key, &nonce, &state.public, &state.config.push_endpoint(), &proof).is_ok()
            || protocol::check_auth(&found.key, &nonce, &proof).is_ok()
    };
    if !proven {
        state.audit.refused(
            Refusal::Signature,
            client,
            &format!("a push session for device {}: bad signature", crate::push::printable(&device)),
        );
        let _ = send(socket, &refused).await;
        return None;
    }
    Some(Proven { device, user: found.user, key: found.key, receive_only })
}

/// `Ready`, with the numbers `device` answers for when this server has
/// virtual phones.
async fn ready(state: &AppState, device: &str) -> ServerMessage {
    let phones = match state.phone {
        super::gateway::Provider::Virtual => state.store.phone_numbers_of(device).await.ok(),
        _ => None,
    };
    ServerMessage::Ready { phones }
}

/// The sign-ins a session has sent, until they expire: each is sent once,
/// whether it came from the database or from the queue.
#[derive(Default)]
struct Sent(HashMap<String, i64>);

impl Sent {
    /// Records `id` (expiring at `expires_at`); false when it was sent already.
    fn first(&mut self, id: &str, expires_at: i64) -> bool {
        let now = now();
        self.0.retain(|_, expires| *expires > now);
        self.0.insert(id.to_owned(), expires_at).is_none()
    }
}

/// Sends the user's pending, unexpired sign-ins not sent yet: what reached
/// the database while this device was offline, or while this instance did
/// not hear the others. False when the socket failed.
async fn send_pending(state: &AppState, socket: &mut WebSocket, user: &str, device: &str, sent: &mut Sent) -> bool {
    let (Ok(pending), Ok(Some((organization, _, blocked_until)))) = (state.store.pending(user, now()).await, state.store.user(user).await)
    else {
        return true;
    };
    for signin in pending.into_iter().filter(|_| blocked_until <= now()) {
        if sent.first(&signin.id, signin.expires_at) && !send(socket, &challenge_message(state, &signin, &organization, device)).await {
            return false;
        }
    }
    true
}

/// A session once the device is known, until it ends.
#[allow(clippy::too_many_arguments)]
async fn run(
    state: &AppState,
    socket: &mut WebSocket,
    client: IpAddr,
    device: &str,
    user: &str,
    key: &PublicKey,
    receive_only: bool,
    queue: &mut tokio::sync::mpsc::UnboundedReceiver<Queued>,
    sent: &mut Sent,
) {
    // Pending, unexpired sign-ins reach a device that was offline. One
    // created meanwhile is also in the queue (registered first, so none is
    // missed): it is sent once.
    if !Box::pin(send_pending(state, socket, user, device, sent)).await {
        return;
    }
    // Pings every 30 s; a socket silent for 90 s (no pong, nothing) is dead.
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(30), Duration::from_secs(30));
    let mut last_heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = ping.tick() => {
                // A device revoked from the command line (another process)
                // is closed here; the admin API closes it at once.
                let revoked = matches!(Box::pin(state.store.device(device)).await, Ok(None));
                if revoked || last_heard.elapsed() > Duration::from_secs(90) || socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
            queued = queue.recv() => match queued {
                Some(Queued::Message(outgoing)) => match *outgoing {
                    Outgoing { signin: Some(id), message, created_ms } => {
                        // A sign-in made now expires within challenge_seconds.
                        if sent.first(&id, now() + state.config.challenge_seconds) {
                            if !send(socket, &message).await { break }
                            if let Some(created_ms) = created_ms {
                                state.metrics.delivered((super::now_millis() - created_ms) as f64 / 1000.0);
                            }
                        }
                    }
                    Outgoing { signin: None, message, .. } => if !send(socket, &message).await { break },
                },
                Some(Queued::Resync) => if !Box::pin(send_pending(state, socket, user, device, sent)).await { break },
                // Revoked, or the server is stopping.
                None => {
                    let _ = socket.send(Message::Close(None)).await;
                    break;
                }
            },
            incoming = socket.recv() => { last_heard = tokio::time::Instant::now(); match incoming {
                Some(Ok(Message::Text(text))) => {
                    let reply = match serde_json::from_str::<ClientMessage>(&text) {
                        Ok(ClientMessage::Respond { envelope }) => Box::pin(respond(state, client, device, user, key, &envelope)).await,
                        // A new listener key comes only through a session the
                        // device key opened, never through a listener's.
                        Ok(ClientMessage::RegisterListener { .. }) if receive_only => ServerMessage::Error { error: "unauthorized".into(), message: "a receive-only session cannot register listener keys".into() },
                        Ok(ClientMessage::RegisterListener { envelope }) => Box::pin(register_listener(state, client, device, key, &envelope)).await,
                        // Signed by the device key like an answer, so any session carries it.
                        Ok(ClientMessage::Phone { envelope }) => Box::pin(virtual_phone::request(state, client, device, user, key, &envelope)).await,
                        Ok(ClientMessage::Auth { .. } | ClientMessage::Listen { .. }) => ServerMessage::Error { error: "bad_request".into(), message: "already authenticated".into() },
                        Err(_) => ServerMessage::Error { error: "bad_request".into(), message: "malformed message".into() },
                    };
                    if !send(socket, &reply).await { break }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Binary(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
            }},
        }
    }
}

/// Keeps a new listener key for `device`, if its device key signed it.
async fn register_listener(state: &AppState, client: IpAddr, device: &str, key: &PublicKey, envelope: &Envelope) -> ServerMessage {
    let refused = |why: &str| ServerMessage::Error { error: "unauthorized".into(), message: format!("listener key refused: {why}") };
    let registration: ListenerRegistration = match envelope.open(key, LISTENER_CONTEXT) {
        Ok(registration) => registration,
        Err(error) => {
            state.audit.refused(Refusal::Signature, client, &format!("a listener key from {device}: {error}"));
            return refused(&error.to_string());
        }
    };
    if registration.v != VERSION || registration.device_id != device {
        return refused("it is not for this device");
    }
    // A registration is made for the session it is sent in: an old one
    // (replayed to bring back a replaced key) is refused.
    if registration.at.abs_diff(now()) > 300 {
        return refused("it was not made just now (check this device's clock)");
    }
    match state.store.set_listener_key(device, &registration.listener_key).await {
        Ok(true) => ServerMessage::ListenerRegistered { device_id: device.to_owned() },
        Ok(false) => refused("no such device"),
        Err(error) => {
            log::error(&format!("{error}"));
            ServerMessage::Error { error: "internal".into(), message: "the server failed".into() }
        }
    }
}

/// Verifies a signed answer and records it once.
pub(super) async fn respond(
    state: &AppState,
    client: IpAddr,
    device: &str,
    user: &str,
    key: &PublicKey,
    envelope: &crate::push::Envelope,
) -> ServerMessage {
    let response: crate::push::Response = match envelope.open(key, RESPONSE_CONTEXT) {
        Ok(response) => response,
        Err(error) => {
            state.audit.refused(Refusal::Signature, client, &format!("an answer from {device}: {error}"));
            return result("", false, Status::Unknown, &format!("refused: {error}"));
        }
    };
    let id = response.challenge_id.as_str();
    if response.v != VERSION || response.device_id != device {
        return result(id, false, Status::Unknown, "the response is not from this device");
    }
    // A device revoked during its session answers nothing more.
    if matches!(state.store.device(device).await, Ok(None)) {
        return result(id, false, Status::Unknown, "this device was revoked");
    }
    let now = now();
    let signin = match state.store.signin(id).await {
        // Only pushes are answered in the app: a text's or a call's
        // sign-in needs its code or its call.
        Ok(Some(signin)) if signin.user == user && signin.method == super::methods::Method::Push => signin,
        Ok(_) => return result(id, false, Status::Unknown, "no such sign-in for this user"),
        Err(error) => {
            log::error(&format!("{error}"));
            return result(id, false, Status::Unknown, "the server failed");
        }
    };
    match signin.status_at(now) {
        Status::Pending => {}
        Status::Expired => return result(id, false, Status::Expired, "the sign-in expired"),
        decided => return result(id, false, decided, "the sign-in was already answered"),
    }
    let (status, reason) = match response.decision {
        Decision::Approve if signin.pin_required && !response.user_verified => {
            return result(id, false, Status::Pending, "this organisation requires your PIN or vault password");
        }
        Decision::Approve if signin.number.is_some() && response.number != signin.number => {
            (Status::Denied, "the number did not match: denied")
        }
        Decision::Approve => (Status::Approved, ""),
        Decision::Deny => (Status::Denied, ""),
        Decision::Report => (Status::Reported, "reported: further pushes are blocked for a while"),
    };
    match super::api::record(state, &signin, device, status.clone()).await {
        Ok(true) => result(id, true, status, reason),
        Ok(false) => {
            let now_status = state.store.signin(id).await.ok().flatten().map_or(Status::Unknown, |s| s.status_at(now));
            result(id, false, now_status, "the sign-in was already answered or expired")
        }
        Err(error) => {
            log::error(&format!("{error}"));
            result(id, false, Status::Unknown, "the server failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<F>(_: impl Fn(AppState, WebSocket, IpAddr) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Each connected device holds one session future for as long as it is
    /// connected: with 100,000 devices every KiB is 100 MB. Awaiting the
    /// database or the handshake inline puts their futures in it (5.2 KiB).
    #[test]
    fn an_idle_session_holds_under_2_kib() {
        let size = future_size(session);
        assert!(size < 2048, "the session future is {size} bytes");
    }

    /// A queued message is a pointer: each session's queue allocates a
    /// block of 32 slots up front.
    #[test]
    fn a_queue_slot_is_two_words() {
        assert!(std::mem::size_of::<Queued>() <= 16, "{}", std::mem::size_of::<Queued>());
    }
}
