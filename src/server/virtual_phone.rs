//! Virtual phones: Countersign apps that answer for their user's phone
//! numbers, so the text and call methods can be tested (and scripted)
//! without a phone or a gateway. The `virtual` phone provider delivers
//! here.
//!
//! Only with the `virtual` provider: on a server that texts and calls real
//! phones, a device key must never stand in for holding the phone.
//!
//! - A device asks in a [`PhoneRequest`] its device key signed, through
//!   any of its sessions: a locked app's receive-only session relays what
//!   the app signed while unlocked. It attaches only its user's numbers,
//!   and a number stops counting once it no longer is one of them.
//! - A text or call goes, signed, to every session of every device of that
//!   user attached to the number, on whichever instance holds it; none
//!   connected is a gateway error, as a dead gateway's would be. A text's
//!   words and code are sealed to each device's key: neither a listener
//!   key's holder nor a PostgreSQL notification between instances sees
//!   the code.
//! - A reply is checked as a code typed on the sign-in page, keys as the
//!   gateway's call callback; both only from a device that answers for the
//!   number the text or call went to.

use std::net::IpAddr;

use super::api::{self, Failure};
use super::cluster::{Event, STALE, result};
use super::methods::Method;
use super::store::Signin;
use super::ws::failed;
use super::{AppState, gateway, log, now, phones};
use crate::push::protocol::{CALL_CONTEXT, PHONE_CONTEXT, PhoneCall, PhoneText, TEXT_CONTEXT, TextBody, VERSION};
use crate::push::{Envelope, PhoneAction, PhoneRequest, PublicKey, ServerMessage, Status};
use crate::server::limits::Refusal;

/// Sends `outgoing` (for `signin`) to the devices answering for its number.
pub async fn deliver(state: &AppState, signin: &Signin, outgoing: &gateway::Outgoing<'_>) -> Result<(), Failure> {
    let devices = state.store.phone_devices(&signin.user, outgoing.to, now() - STALE).await?;
    if devices.is_empty() {
        log::warn(&format!("phone (virtual): no device answers for the number of {}'s {}", signin.user, signin.id));
        return Err(Failure::Gateway(gateway::Error::Unanswered.to_string()));
    }
    for (device, key) in devices {
        let message = match outgoing.kind {
            gateway::Kind::Text => {
                let body = TextBody { text: outgoing.text.to_owned(), code: outgoing.code.to_owned() };
                let sealed = body.seal_to(&key).map_err(|error| Failure::Internal(format!("sealing a text: {error}")))?;
                ServerMessage::Text {
                    envelope: state.key.seal(
                        TEXT_CONTEXT,
                        &PhoneText {
                            v: VERSION,
                            id: signin.id.clone(),
                            device_id: device.clone(),
                            to: outgoing.to.to_owned(),
                            sealed,
                            created_at: signin.created_at,
                            expires_at: signin.expires_at,
                        },
                    ),
                }
            }
            gateway::Kind::Call => ServerMessage::Call {
                envelope: state.key.seal(
                    CALL_CONTEXT,
                    &PhoneCall {
                        v: VERSION,
                        id: signin.id.clone(),
                        device_id: device.clone(),
                        to: outgoing.to.to_owned(),
                        extension: outgoing.extension.to_owned(),
                        say: outgoing.text.to_owned(),
                        created_at: signin.created_at,
                        expires_at: signin.expires_at,
                    },
                ),
            },
        };
        state.publish(Event::Phone { device, message }).await;
    }
    Ok(())
}

/// A [`PhoneRequest`] from `device` (whose key is `key`), in a session of
/// either kind: what the session is told.
pub async fn request(state: &AppState, client: IpAddr, device: &str, user: &str, key: &PublicKey, envelope: &Envelope) -> ServerMessage {
    let refused = |why: String| ServerMessage::Error { error: "unauthorized".into(), message: format!("phone request refused: {why}") };
    let request: PhoneRequest = match envelope.open(key, PHONE_CONTEXT) {
        Ok(request) => request,
        Err(error) => {
            state.audit.refused(Refusal::Signature, client, &format!("a phone request from {device}: {error}"));
            return refused(error.to_string());
        }
    };
    if request.v != VERSION || request.device_id != device {
        return refused("it is not for this device".into());
    }
    // Signed for now: a request kept elsewhere cannot be replayed later.
    // From here on a refusal is the answer the request expects, which the
    // app shows; a forged or misaddressed one above ends the session.
    let why = if request.at.abs_diff(now()) > 300 {
        Some("it was not made just now: check this device's clock")
    } else if matches!(state.store.device(device).await, Ok(None)) {
        // A device revoked during its session asks nothing more.
        Some("this device was revoked")
    } else {
        None
    };
    match request.action {
        PhoneAction::Attach { .. } | PhoneAction::Detach { .. } if let Some(why) = why => phones_refused(state, device, why.into()).await,
        PhoneAction::Reply { id, .. } | PhoneAction::Keys { id, .. } if let Some(why) = why => result(&id, false, Status::Unknown, why),
        PhoneAction::Attach { number } => Box::pin(attach(state, device, &number, true)).await,
        PhoneAction::Detach { number } => Box::pin(attach(state, device, &number, false)).await,
        PhoneAction::Reply { id, text } => Box::pin(reply(state, client, device, user, &id, &text)).await,
        PhoneAction::Keys { id, keys, hang_up } => Box::pin(self::keys(state, device, user, &id, &keys, hang_up)).await,
    }
}

/// Attaching or detaching `number` for `device`: the numbers it answers
/// for afterwards, and why not when refused.
async fn attach(state: &AppState, device: &str, number: &str, attach: bool) -> ServerMessage {
    let refused = async |why: String| phones_refused(state, device, why).await;
    if !matches!(state.phone, gateway::Provider::Virtual) {
        return refused(NOT_VIRTUAL.into()).await;
    }
    let number = match phones::parse(phones::Kind::Authentication, number, None, None) {
        Ok(phone) => phone.number,
        Err(why) => return refused(why).await,
    };
    let done =
        if attach { state.store.attach_phone(device, &number, now()).await } else { state.store.detach_phone(device, &number).await };
    match done {
        Ok(true) => {}
        Ok(false) if attach => return refused(format!("{number} is not one of your phones: set it on the enrollment page first")).await,
        Ok(false) => return refused(format!("this device does not answer for {number}")).await,
        Err(error) => {
            log::error(&format!("attaching a phone: {error}"));
            return refused("the server failed; try again".into()).await;
        }
    }
    match state.store.phone_numbers_of(device).await {
        Ok(numbers) => ServerMessage::Phones { numbers, refused: None },
        Err(error) => failed(error),
    }
}

/// An attach or detach refused for `why`: with the numbers `device` still
/// answers for.
async fn phones_refused(state: &AppState, device: &str, why: String) -> ServerMessage {
    ServerMessage::Phones { numbers: state.store.phone_numbers_of(device).await.unwrap_or_default(), refused: Some(why) }
}

/// Said to a device that would be a phone on a server that calls real ones.
const NOT_VIRTUAL: &str =
    "this server sends texts and calls to real phones: a device cannot answer for one (phone provider \"virtual\" only)";

/// What a refused reply or key press is told.
fn said(failure: Failure) -> String {
    match failure {
        Failure::BadRequest(why) | Failure::NotFound(why) | Failure::Conflict(why) | Failure::Forbidden(why) => why,
        Failure::Internal(cause) => {
            log::error(&cause);
            "the server failed".into()
        }
        _ => "refused".into(),
    }
}

/// The sign-in `id` if it is `user`'s, by `method`, and `device` answers
/// for the number it went to; else what the device is told.
async fn answerable(state: &AppState, device: &str, user: &str, id: &str, method: Method) -> Result<Signin, ServerMessage> {
    if !matches!(state.phone, gateway::Provider::Virtual) {
        return Err(result(id, false, Status::Unknown, NOT_VIRTUAL));
    }
    let kind = if method == Method::Sms { "text" } else { "call" };
    let signin = match state.store.signin(id).await {
        Ok(Some(signin)) if signin.user == user && signin.method == method => signin,
        Ok(_) => return Err(result(id, false, Status::Unknown, &format!("no such {kind} for this user"))),
        Err(error) => return Err(result(id, false, Status::Unknown, &said(error.into()))),
    };
    let (sent_to, numbers) = match (state.store.signin_sent_to(id).await, state.store.phone_numbers_of(device).await) {
        (Ok(sent_to), Ok(numbers)) => (sent_to, numbers),
        (Err(error), _) | (_, Err(error)) => return Err(result(id, false, Status::Unknown, &said(error.into()))),
    };
    match sent_to {
        Some(number) if numbers.contains(&number) => Ok(signin),
        _ => Err(result(
            id,
            false,
            Status::Unknown,
            &format!("this device does not answer for the phone this {kind} went to (countersign phone attach)"),
        )),
    }
}

/// A reply to text `id`: its code approves the sign-in, as typed on the page.
async fn reply(state: &AppState, client: IpAddr, device: &str, user: &str, id: &str, text: &str) -> ServerMessage {
    if let Err(refused) = answerable(state, device, user, id, Method::Sms).await {
        return refused;
    }
    match api::check_code(state, id, text, client).await {
        Ok(verdict) if verdict.valid => result(id, true, verdict.status, ""),
        Ok(verdict) if verdict.status == Status::Pending => {
            result(id, false, verdict.status, &format!("wrong code: {} more tries", verdict.attempts_left))
        }
        Ok(verdict) => result(id, false, verdict.status, "this text can no longer be answered"),
        Err(failure) => result(id, false, Status::Unknown, &said(failure)),
    }
}

/// Keys pressed on call `id`, or its hang-up: the call's answer, and what it says.
async fn keys(state: &AppState, device: &str, user: &str, id: &str, keys: &str, hang_up: bool) -> ServerMessage {
    let signin = match answerable(state, device, user, id, Method::Voice).await {
        Ok(signin) => signin,
        Err(refused) => return refused,
    };
    let pressed = (!keys.is_empty()).then_some(keys);
    match api::answer_call(state, &signin, pressed, hang_up).await {
        Ok((reply, decided)) => result(id, decided, reply.status, &reply.say),
        Err(failure) => result(id, false, Status::Unknown, &said(failure)),
    }
}
