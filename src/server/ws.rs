//! The push WebSocket: authenticate the device by a signed nonce (its device
//! key, or its listener key for a receive-only session), send it every
//! pending challenge, forward new ones, record its signed answers exactly
//! once, and take new listener keys the device key vouches for.

use std::time::Duration;

use std::collections::HashSet;
use std::net::IpAddr;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;

use super::api::challenge_message;
use super::guard::Client;
use super::limits::Refusal;
use super::net::Slot;
use super::{AppState, now, store};
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
    // Messages are small (a challenge is ~700 bytes): 4 KiB buffers instead of
    // tungstenite's 128 KiB read buffer keep thousands of idle devices cheap.
    // The session keeps the connection's slot: it counts against the limit.
    upgrade.max_message_size(MESSAGE_LIMIT).max_frame_size(MESSAGE_LIMIT).read_buffer_size(4 * 1024).write_buffer_size(4 * 1024).on_upgrade(
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

async fn session(state: AppState, mut socket: WebSocket, client: IpAddr) {
    let Ok(nonce) = store::random_hex::<16>() else { return };
    // The server's clock goes with the nonce: the app warns when its own is off.
    if !send(&mut socket, &ServerMessage::Hello { nonce: nonce.clone(), time: Some(now()) }).await {
        return;
    }
    // The device has 10 s to prove it holds its device key or its listener key.
    let auth = tokio::time::timeout(Duration::from_secs(10), socket.recv()).await;
    let Ok(Some(Ok(Message::Text(text)))) = auth else { return };
    let refused = ServerMessage::Error { error: "unauthorized".into(), message: "unknown device or bad signature".into() };
    // A database that fails is not a refusal: apps drop a refused listener key.
    let failed = |error: store::Error| {
        eprintln!("countersign-server: {error}");
        ServerMessage::Error { error: "internal".into(), message: "the server failed; try again".into() }
    };
    // The device key proves a full session; the listener key a receive-only
    // one, whose answers still need the device key's signature.
    let (device, proof, receive_only) = match serde_json::from_str::<ClientMessage>(&text) {
        Ok(ClientMessage::Auth { device_id, signature }) => (device_id, signature, false),
        Ok(ClientMessage::Listen { device_id, signature }) => (device_id, signature, true),
        _ => {
            let _ =
                send(&mut socket, &ServerMessage::Error { error: "bad_request".into(), message: "expected an auth message".into() }).await;
            return;
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
            let _ = send(&mut socket, &refused).await;
            return;
        }
        Err(error) => {
            let _ = send(&mut socket, &failed(error)).await;
            return;
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
        let _ = send(&mut socket, &refused).await;
        return;
    }
    let (user, key) = (found.user, found.key);
    let mut queue = state.hub.connect(&device);
    if !send(&mut socket, &ServerMessage::Ready).await {
        return;
    }
    // Pending, unexpired sign-ins reach a device that was offline. One
    // created meanwhile is also in the queue (registered first, so none is
    // missed): it is sent once, from here.
    let mut sent = HashSet::new();
    if let (Ok(pending), Ok(Some((organization, _, blocked_until)))) =
        (state.store.pending(&user, now()).await, state.store.user(&user).await)
    {
        for signin in pending.into_iter().filter(|_| blocked_until <= now()) {
            if !send(&mut socket, &challenge_message(&state, &signin, &organization, &device)).await {
                return;
            }
            sent.insert(signin.id);
        }
    }
    // Pings every 30 s; a socket silent for 90 s (no pong, nothing) is dead.
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(30), Duration::from_secs(30));
    let mut last_heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = ping.tick() => {
                // A device revoked from the command line (another process)
                // is closed here; the admin API closes it at once.
                let revoked = matches!(state.store.device(&device).await, Ok(None));
                if revoked || last_heard.elapsed() > Duration::from_secs(90) || socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
            queued = queue.recv() => match queued {
                Some(queued) if queued.signin.as_ref().is_some_and(|id| sent.remove(id)) => {}
                Some(queued) => if !send(&mut socket, &queued.message).await { break },
                // Revoked, or the server is stopping.
                None => {
                    let _ = socket.send(Message::Close(None)).await;
                    break;
                }
            },
            incoming = socket.recv() => { last_heard = tokio::time::Instant::now(); match incoming {
                Some(Ok(Message::Text(text))) => {
                    let reply = match serde_json::from_str::<ClientMessage>(&text) {
                        Ok(ClientMessage::Respond { envelope }) => respond(&state, client, &device, &user, &key, &envelope).await,
                        // A new listener key comes only through a session the
                        // device key opened, never through a listener's.
                        Ok(ClientMessage::RegisterListener { .. }) if receive_only => ServerMessage::Error { error: "unauthorized".into(), message: "a receive-only session cannot register listener keys".into() },
                        Ok(ClientMessage::RegisterListener { envelope }) => register_listener(&state, client, &device, &key, &envelope).await,
                        Ok(ClientMessage::Auth { .. } | ClientMessage::Listen { .. }) => ServerMessage::Error { error: "bad_request".into(), message: "already authenticated".into() },
                        Err(_) => ServerMessage::Error { error: "bad_request".into(), message: "malformed message".into() },
                    };
                    if !send(&mut socket, &reply).await { break }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Binary(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
            }},
        }
    }
    drop(queue);
    state.hub.prune(&device);
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
            eprintln!("countersign-server: {error}");
            ServerMessage::Error { error: "internal".into(), message: "the server failed".into() }
        }
    }
}

/// Tells the user's other devices that a request was decided, so their
/// prompts close instead of waiting for expiry.
fn tell_devices(state: &AppState, user: &str, except: &str, id: &str, status: Status, reason: &str) {
    let state = state.clone();
    let (user, except, id, reason) = (user.to_owned(), except.to_owned(), id.to_owned(), reason.to_owned());
    tokio::spawn(async move {
        if let Ok(devices) = state.store.devices_of(&user).await {
            for device in devices.iter().filter(|d| **d != except) {
                state.hub.send(device, None, &result(&id, true, status.clone(), &reason));
            }
        }
    });
}

fn result(challenge_id: &str, accepted: bool, status: Status, reason: &str) -> ServerMessage {
    ServerMessage::Result { challenge_id: challenge_id.into(), accepted, status, reason: reason.into() }
}

/// Verifies a signed answer and records it once.
async fn respond(
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
        Ok(Some(signin)) if signin.user == user => signin,
        Ok(_) => return result(id, false, Status::Unknown, "no such sign-in for this user"),
        Err(error) => {
            eprintln!("countersign-server: {error}");
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
    let recorded = if status == Status::Reported {
        state.store.report(id, user, device, now + state.config.report_block_seconds, now).await.map(|denied| {
            denied.map(|others| {
                for other in &others {
                    state.hub.decided(other);
                    // Every device, the reporting one too: its prompts for these close.
                    tell_devices(state, user, "", other, Status::Denied, "another request was reported as not you");
                }
            })
        })
    } else {
        state.store.decide(id, &status, device, now).await.map(|done| done.then_some(()))
    };
    match recorded.map(|done| done.is_some()) {
        Ok(true) => {
            state.hub.decided(id);
            tell_devices(state, user, device, id, status.clone(), "answered on another device");
            result(id, true, status, reason)
        }
        Ok(false) => {
            let now_status = state.store.signin(id).await.ok().flatten().map_or(Status::Unknown, |s| s.status_at(now));
            result(id, false, now_status, "the sign-in was already answered or expired")
        }
        Err(error) => {
            eprintln!("countersign-server: {error}");
            result(id, false, Status::Unknown, "the server failed")
        }
    }
}
