//! HTTP handlers: activation, the relying-party API (sign-ins, their status
//! by long-polling, TOTP verification) and the admin API. `Failure` is the
//! only place that picks status codes; bodies are [`crate::push::ApiError`].

use std::net::IpAddr;
use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::cluster::{self, Event};
use super::guard::Client;
use super::limits::Refusal;
use super::methods::{self, Method};
use super::store::{self, Activation, ActivationInfo, DeviceInfo, Refused, Signin, UserInfo};
use super::{AppState, app_passwords, gateway, now, phones, virtual_phone};
use super::{hub, log};
use crate::account::Account;
use crate::push::protocol::{CHALLENGE_CONTEXT, VERSION};
use crate::push::{ActivationRequest, ActivationResponse, ApiError, Challenge, ServerMessage, Status};
use crate::secret::Secret;

/// Every way a request fails, and its status.
#[derive(Debug)]
pub enum Failure {
    BadRequest(String),
    Unauthorized,
    NotFound(String),
    Conflict(String),
    MethodNotAllowed(String),
    Forbidden(String),
    /// A body over the limit (bytes).
    TooLarge(usize),
    /// The body did not arrive in time.
    Timeout,
    /// An activation refused for this reason.
    Activation(Refused),
    RateLimited,
    /// Too many texts and calls for one user.
    TooManySends,
    Blocked(i64),
    /// A text or call the phone provider did not take.
    Gateway(String),
    Internal(String),
}

impl From<store::Error> for Failure {
    fn from(error: store::Error) -> Self {
        super::metrics::database_error();
        Failure::Internal(error.to_string())
    }
}

impl From<JsonRejection> for Failure {
    fn from(rejection: JsonRejection) -> Self {
        Failure::BadRequest(rejection.body_text())
    }
}

impl From<QueryRejection> for Failure {
    fn from(rejection: QueryRejection) -> Self {
        Failure::BadRequest(rejection.body_text())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (status, error, message) = match self {
            Failure::BadRequest(why) => (StatusCode::BAD_REQUEST, "bad_request", why),
            Failure::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", "a valid bearer token is required".into()),
            Failure::NotFound(what) => (StatusCode::NOT_FOUND, "not_found", what),
            Failure::Conflict(what) => (StatusCode::CONFLICT, "conflict", what),
            Failure::Forbidden(why) => (StatusCode::FORBIDDEN, "forbidden", why),
            Failure::MethodNotAllowed(what) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", what),
            Failure::TooLarge(limit) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large", format!("the request body is over {limit} bytes")),
            Failure::Timeout => (StatusCode::REQUEST_TIMEOUT, "timeout", "the request body did not arrive in time".into()),
            Failure::Activation(Refused::NotFound) => (StatusCode::NOT_FOUND, "invalid_code", "no such activation; check the URL".into()),
            Failure::Activation(Refused::Expired) => {
                (StatusCode::GONE, "expired", "this activation code has expired (codes are valid for 10 minutes); ask for a new one".into())
            }
            Failure::Activation(Refused::Used) => (StatusCode::GONE, "used", "this activation code was already used".into()),
            Failure::Activation(Refused::Revoked) => {
                (StatusCode::GONE, "revoked", "this activation code was replaced by a newer one or revoked; use the newest code".into())
            }
            Failure::Activation(Refused::WrongCode { left }) => {
                (StatusCode::FORBIDDEN, "invalid_code", format!("wrong activation code; {left} more tries before it is invalidated"))
            }
            Failure::Activation(Refused::TooManyAttempts) => (
                StatusCode::GONE,
                "too_many_attempts",
                "this activation code was tried 5 times and is no longer valid; ask for a new one".into(),
            ),
            Failure::RateLimited => {
                (StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many activation attempts from this address; wait a minute".into())
            }
            Failure::Blocked(until) => (
                StatusCode::FORBIDDEN,
                "blocked",
                format!("the user reported a sign-in they did not make; pushes are blocked until {until} (Unix time)"),
            ),
            Failure::Gateway(why) => (StatusCode::BAD_GATEWAY, "phone_gateway", why),
            Failure::TooManySends => {
                (StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many texts and calls for this user (3 a minute); wait a minute".into())
            }
            Failure::Internal(cause) => {
                // The cause is logged; the body stays generic.
                log::error(&format!("internal error: {cause}"));
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", "the server failed; see its log".into())
            }
        };
        (status, Json(ApiError { error: error.into(), message })).into_response()
    }
}

type Result<T> = std::result::Result<T, Failure>;

/// `POST /api/activate/{id}`: the app's first contact.
/// Its rate limit and body limit were applied by [`super::guard`].
pub async fn activate(
    State(state): State<AppState>,
    Extension(Client(client)): Extension<Client>,
    Path(id): Path<String>,
    body: std::result::Result<Json<ActivationRequest>, JsonRejection>,
) -> Result<Json<ActivationResponse>> {
    let now = now();
    let Json(request) = body?;
    let (user, organization, totp_secret) = match state.store.use_activation(&id, &request.code, now).await? {
        Activation::Valid { user, organization, totp_secret } => (user, organization, totp_secret),
        Activation::Refused(why) => {
            state.audit.refused(
                Refusal::Activation,
                client,
                &format!("activation {}: {why:?}", crate::push::printable(&id).chars().take(40).collect::<String>()),
            );
            return Err(Failure::Activation(why));
        }
    };
    let device_id =
        state.store.add_device(&user, &request.device_public_key, request.listener_public_key.as_ref(), &request.device_name, now).await?;
    Ok(Json(ActivationResponse {
        organization,
        user,
        device_id,
        server_public_key: state.public,
        totp_secret,
        totp_digits: 6,
        totp_period: 30,
        push_endpoint: state.config.push_endpoint(),
        listener: request.listener_public_key.is_some(),
    }))
}

#[derive(Debug, Default, Deserialize)]
pub struct SigninRequest {
    pub user: String,
    #[serde(default)]
    pub app: String,
    #[serde(default)]
    pub ip: String,
    #[serde(default)]
    pub location: String,
    /// `default` (the user's preferred method; also when absent), `push`,
    /// `code`, `sms` or `voice`.
    #[serde(default)]
    pub method: Option<String>,
    /// Which phone a `voice` sign-in calls: `authentication` (the default
    /// when the user has one) or `office`.
    #[serde(default)]
    pub phone: Option<String>,
    /// Whether a push asks for the number the sign-in page shows; absent:
    /// the server's setting. A relying party with no page to show a number
    /// on (RADIUS, PAM over SSH) sends `false`.
    #[serde(default)]
    pub number_matching: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SigninCreated {
    pub id: String,
    /// The method used: `default` resolved to the user's.
    #[serde(default)]
    pub method: Method,
    /// Every method the user can sign in with, for "Sign in another way".
    #[serde(default)]
    pub methods: Vec<Method>,
    /// The number the sign-in page shows, when matching is on (pushes only).
    pub number: Option<u32>,
    pub expires_at: i64,
    /// Push: devices the push reached at once (others get it when they
    /// connect). Text or call: 1 once the phone provider took it.
    pub delivered: usize,
}

/// The most characters of `app`, `ip` or `location` a relying party may send:
/// they are shown on one line of a prompt or a notification.
pub const FIELD_LIMIT: usize = 200;

/// A number from 10 to 99, each equally likely: bytes of 180 and over are
/// drawn again, so none is favoured by the modulo.
fn matching_number() -> Result<u32> {
    loop {
        let mut byte = [0u8; 1];
        getrandom::fill(&mut byte).map_err(|_| Failure::Internal("random".into()))?;
        if byte[0] < 180 {
            return Ok(10 + u32::from(byte[0]) % 90);
        }
    }
}

/// Creates a sign-in and sends it by the method asked for: pushes it to
/// the user's devices, texts a code, calls, or (`code`) waits for a code
/// from the user's app at `POST /api/signins/{id}/code`.
pub async fn create_signin(state: &AppState, request: SigninRequest) -> Result<SigninCreated> {
    let now = now();
    let user = request.user.trim();
    let Some((organization, _, blocked_until)) = state.store.user(user).await? else {
        return Err(Failure::NotFound(format!("no user {user:?}")));
    };
    for (name, value, most) in [
        ("user", &request.user, 128),
        ("app", &request.app, FIELD_LIMIT),
        ("ip", &request.ip, FIELD_LIMIT),
        ("location", &request.location, FIELD_LIMIT),
    ] {
        if value.chars().count() > most {
            return Err(Failure::BadRequest(format!("{name} is longer than {most} characters")));
        }
    }
    let (method, methods) = choose_method(state, user, request.method.as_deref()).await?;
    // A reported sign-in blocks whatever could bother the user again; a
    // code from their own app cannot.
    if blocked_until > now && method != Method::Code {
        return Err(Failure::Blocked(blocked_until));
    }
    let number = if method == Method::Push && request.number_matching.unwrap_or(state.config.number_matching) {
        Some(matching_number()?)
    } else {
        None
    };
    let seconds = if method == Method::Sms { state.config.phone.code_seconds() } else { state.config.challenge_seconds };
    let signin = Signin {
        id: format!("si_{}", store::random_hex::<8>()?),
        user: user.to_owned(),
        app: if request.app.trim().is_empty() { "Sign-in".into() } else { request.app.trim().into() },
        ip: request.ip.trim().into(),
        location: request.location.trim().into(),
        number,
        pin_required: method == Method::Push && state.config.pin_required,
        created_at: now,
        expires_at: now + seconds,
        status: Status::Pending,
        method,
    };
    let (id, expires_at) = (signin.id.clone(), signin.expires_at);
    let delivered = match method {
        Method::Push => {
            state.store.add_signin(&signin, None, None).await?;
            state.metrics.created();
            state.publish(Event::Created { signin, organization, created_ms: super::now_millis() }).await;
            // Devices with a session open on any live instance: each of them has it
            // now, or will have it once its instance hears of it.
            let delivered = state.store.connected_devices(user, now - cluster::STALE).await?;
            usize::try_from(delivered).unwrap_or(0)
        }
        Method::Code => {
            state.store.add_signin(&signin, None, None).await?;
            state.metrics.created();
            0
        }
        Method::Sms | Method::Voice => {
            send_to_phone(state, &signin, &organization, request.phone.as_deref()).await?;
            1
        }
    };
    Ok(SigninCreated { id, method, methods, number, expires_at, delivered })
}

/// The method `asked` names for `user` (`default` or none: theirs), and
/// every method they have.
pub(super) async fn choose_method(state: &AppState, user: &str, asked: Option<&str>) -> Result<(Method, Vec<Method>)> {
    let (enrolled, preferred) = state.store.enrolled(user).await?.ok_or_else(|| Failure::NotFound(format!("no user {user:?}")))?;
    let methods = enrolled.methods(state.phone.is_some());
    let method = match asked.map(str::trim).filter(|asked| !asked.is_empty() && *asked != "default") {
        None => enrolled.default_method(preferred, state.phone.is_some()),
        Some(name) => {
            let method = Method::parse(name)
                .ok_or_else(|| Failure::BadRequest(format!("method {name:?} is not one of default, push, code, sms, voice")))?;
            // A push or a code may wait for a device to be activated, as
            // pushes always could; a text or a call needs a phone now.
            if method.is_phone() && !methods.contains(&method) {
                if !state.phone.is_some() {
                    return Err(Failure::Conflict(gateway::Error::NoProvider.to_string()));
                }
                let missing = if method == Method::Sms { "authentication phone" } else { "phone" };
                return Err(Failure::Conflict(format!("{user} cannot sign in by {}: {user} has no {missing}", method.as_str())));
            }
            method
        }
    };
    Ok((method, methods))
}

/// Stores a text or call sign-in with its hashed secret, then has the
/// phone provider send it (stored first: a call's keys may come back
/// before the provider answers). A send that fails denies it.
async fn send_to_phone(state: &AppState, signin: &Signin, organization: &str, which: Option<&str>) -> Result<()> {
    if !state.allow_phone_send(&signin.user).await {
        return Err(Failure::TooManySends);
    }
    let numbers = state.store.phones(&signin.user).await?;
    // Texts go to the authentication phone; calls to the one asked for,
    // else to the authentication phone, else to the office phone.
    let order: &[phones::Kind] = match (signin.method, which.map_or("", str::trim)) {
        (Method::Sms, _) => &[phones::Kind::Authentication],
        (_, "") => &[phones::Kind::Authentication, phones::Kind::Office],
        (_, "authentication") => &[phones::Kind::Authentication],
        (_, "office") => &[phones::Kind::Office],
        (_, other) => return Err(Failure::BadRequest(format!("phone {other:?} is not authentication or office"))),
    };
    let phone = order
        .iter()
        .find_map(|kind| numbers.iter().find(|phone| phone.kind == *kind))
        .ok_or_else(|| Failure::Conflict(format!("{} has no {} phone", signin.user, order[0].as_str())))?;
    let (secret, text, kind) = match signin.method {
        Method::Sms => {
            let code = methods::text_code().map_err(|_| Failure::Internal("random".into()))?;
            let text = methods::text_message(organization, &code);
            (code, text, gateway::Kind::Text)
        }
        _ => {
            let token = store::random_hex::<16>()?;
            let text = methods::call_script(organization, &signin.app, &signin.user, &signin.location);
            (token, text, gateway::Kind::Call)
        }
    };
    let secret = zeroize::Zeroizing::new(secret);
    state.store.add_signin(signin, Some(&state.phone_secrets.hash(&signin.id, &secret)), Some(&phone.number)).await?;
    state.metrics.created();
    let (code, callback) = match kind {
        gateway::Kind::Text => (secret.as_str(), String::new()),
        gateway::Kind::Call => ("", format!("{}/api/phone/calls/{}?token={}", state.config.base_url(), signin.id, secret.as_str())),
    };
    // No retry may outlast the sign-in.
    let left = u64::try_from(signin.expires_at - now()).unwrap_or(0);
    let outgoing = gateway::Outgoing {
        kind,
        deadline: tokio::time::Instant::now() + Duration::from_secs(left),
        to: &phone.number,
        extension: phone.extension.as_deref().unwrap_or(""),
        text: &text,
        code,
        id: &signin.id,
        callback: &callback,
    };
    let sent = match state.phone {
        gateway::Provider::Virtual => virtual_phone::deliver(state, signin, &outgoing).await,
        _ => state.phone.send(&outgoing).await.map_err(|error| Failure::Gateway(error.to_string())),
    };
    if let Err(failure) = sent {
        record(state, signin, "phone-gateway", Status::Denied).await?;
        return Err(failure);
    }
    Ok(())
}

/// Records a decision made on a device, a call or by a code, once: true
/// when this call decided it. A report also denies the user's other
/// pending sign-ins, blocks new ones and revokes their app passwords.
/// Long-polls on every instance wake; for a push, the user's devices other
/// than `by` close their prompts.
pub async fn record(state: &AppState, signin: &Signin, by: &str, status: Status) -> std::result::Result<bool, store::Error> {
    let (id, user) = (signin.id.as_str(), signin.user.as_str());
    let now = now();
    let done = if status == Status::Reported {
        match state.store.report(id, user, by, now + state.config.report_block_seconds, now).await? {
            Some(others) => {
                for other in others {
                    state.publish(Event::Decided { id: other.clone() }).await;
                    // Every device, the reporting one too: its prompts for these close.
                    let reason = "another request was reported as not you".to_owned();
                    state
                        .publish(Event::Told { user: user.to_owned(), except: String::new(), id: other, status: Status::Denied, reason })
                        .await;
                }
                true
            }
            None => false,
        }
    } else {
        state.store.decide(id, &status, by, now).await?
    };
    if done {
        state.metrics.answered(&status);
        state.publish(Event::Decided { id: id.to_owned() }).await;
        // The user's devices close what they show for it: a push prompt
        // answered on another device, a virtual phone's text whose code was
        // typed on a page, a call answered elsewhere.
        let reason = match signin.method {
            Method::Push => "answered on another device",
            Method::Sms => "its code was used",
            Method::Voice => "the call was answered",
            Method::Code => return Ok(true),
        };
        let told = Event::Told { user: user.to_owned(), except: by.to_owned(), id: id.to_owned(), status, reason: reason.into() };
        state.publish(told).await;
    }
    Ok(done)
}

/// `POST /api/signins/{id}/code`: the code the user typed for a `code`
/// (from their app) or `sms` (from the text) sign-in.
#[derive(Deserialize)]
pub struct CodeRequest {
    pub code: String,
    /// The end user's address, as for `POST /api/totp/verify`.
    #[serde(default)]
    pub ip: Option<IpAddr>,
}

impl std::fmt::Debug for CodeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeRequest").field("code", &"***").field("ip", &self.ip).finish()
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CodeVerdict {
    pub valid: bool,
    /// The sign-in's status after this code.
    pub status: Status,
    /// Wrong codes still allowed before the sign-in is denied.
    pub attempts_left: u32,
    /// As for TOTP codes: seconds before this caller's next code is checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// Wrong codes that deny a sign-in: a guess at a six-digit code succeeds
/// once in 200,000 sign-ins.
pub const CODE_ATTEMPTS: i64 = 5;

/// Checks the code typed for sign-in `id`: right, it is approved; the
/// fifth wrong one denies it. Each code spends one of the sign-in's 5
/// attempts before it is compared, so guesses sent at once get 5 between
/// them, not one each.
pub async fn check_code(state: &AppState, id: &str, code: &str, caller: IpAddr) -> Result<CodeVerdict> {
    let signin = state.store.signin(id).await?.ok_or_else(|| Failure::NotFound(format!("no sign-in {id}")))?;
    let left = |failures: i64| u32::try_from((CODE_ATTEMPTS - failures).max(0)).unwrap_or(0);
    let status_now = |signin: Option<Signin>| signin.map_or(Status::Unknown, |signin| signin.status_at(now()));
    match signin.method {
        Method::Code | Method::Sms => {}
        Method::Push => return Err(Failure::Conflict(format!("sign-in {id} is answered in the app, not with a code"))),
        Method::Voice => return Err(Failure::Conflict(format!("sign-in {id} is answered on the call, not with a code"))),
    }
    let code: String = code.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    if signin.method == Method::Code {
        // The TOTP backoff first: a throttled caller spends no attempt.
        let wait = state.totp_wait(&signin.user, caller).await?;
        if wait > 0 {
            state.audit.refused(Refusal::RateLimited, caller, "TOTP codes after wrong ones");
            let status = signin.status_at(now());
            return Ok(CodeVerdict { valid: false, status, attempts_left: 0, retry_after: Some(wait.div_ceil(1000)) });
        }
    }
    let Some(spent) = state.store.use_code_attempt(id, CODE_ATTEMPTS, now()).await? else {
        // Decided, expired, or out of attempts.
        return Ok(CodeVerdict { valid: false, status: status_now(state.store.signin(id).await?), attempts_left: 0, retry_after: None });
    };
    let valid = match signin.method {
        Method::Code => check_totp(state, &signin.user, &code, caller).await?.valid,
        _ => state.store.signin_secret(id).await?.is_some_and(|hash| state.phone_secrets.matches(id, &code, &hash)),
    };
    let by = signin.method.as_str();
    // Valid for the one request that approved it: the same code sent
    // twice at once approves once.
    let mut approved = false;
    if valid {
        approved = record(state, &signin, by, Status::Approved).await?;
    } else {
        if signin.method == Method::Sms {
            state.audit.refused(Refusal::Totp, caller, &format!("a wrong code for sign-in {id}"));
        }
        if spent >= CODE_ATTEMPTS {
            record(state, &signin, by, Status::Denied).await?;
        }
    }
    let attempts_left = if approved { 0 } else { left(spent) };
    Ok(CodeVerdict { valid: approved, status: status_now(state.store.signin(id).await?), attempts_left, retry_after: None })
}

/// `POST /api/signins/{id}/code` (relying party).
pub async fn signin_code(
    State(state): State<AppState>,
    Extension(Client(client)): Extension<Client>,
    Path(id): Path<String>,
    body: std::result::Result<Json<CodeRequest>, JsonRejection>,
) -> Result<Json<CodeVerdict>> {
    let Json(request) = body?;
    Ok(Json(check_code(&state, &id, &request.code, request.ip.unwrap_or(client)).await?))
}

/// `POST /api/phone/calls/{id}?token=T`: the phone gateway tells what
/// happened on a call; `token` came in the call's `{callback}` URL, and
/// is read from the query only.
/// Form or query fields, as voice gateways send them: `Digits` (or
/// `digits`): the keys pressed; `CallStatus` (or `status`): `completed`,
/// `no-answer`, `busy`, `failed` or `canceled` end the call.
#[derive(Deserialize, Default)]
pub struct CallEvent {
    #[serde(default)]
    pub token: String,
    #[serde(default, alias = "Digits", alias = "keys")]
    pub digits: Option<String>,
    #[serde(default, alias = "CallStatus")]
    pub status: Option<String>,
}

/// What the gateway may say to the caller before hanging up.
#[derive(Debug, Serialize, Deserialize)]
pub struct CallReply {
    pub status: Status,
    pub say: String,
    /// Whether the call should wait for more keys.
    pub listen: bool,
}

/// Applies a call's event: the token first (a wrong one learns nothing
/// about the sign-in), then `#` approves, `0#` reports, a hang-up denies.
pub async fn call_event(state: &AppState, id: &str, event: &CallEvent) -> Result<CallReply> {
    let unknown = || Failure::NotFound("no such call".into());
    if !call_token_valid(state, id, &event.token).await? {
        return Err(unknown());
    }
    let signin = state.store.signin(id).await?.ok_or_else(unknown)?;
    let ended = event.status.as_deref().is_some_and(|status| {
        matches!(status.trim().to_ascii_lowercase().as_str(), "completed" | "no-answer" | "busy" | "failed" | "canceled" | "hangup")
    });
    Ok(answer_call(state, &signin, event.digits.as_deref(), ended).await?.0)
}

/// The keys pressed on call `signin` (a gateway's or a virtual phone's),
/// or its end (`ended`): `#` approves, `0#` reports, a hang-up denies.
/// What the call says next, and whether this event decided the sign-in.
pub async fn answer_call(state: &AppState, signin: &Signin, digits: Option<&str>, ended: bool) -> Result<(CallReply, bool)> {
    let decision = match digits.map(methods::keys) {
        Some(methods::Keys::Approve) => Some(Status::Approved),
        Some(methods::Keys::Report) => Some(Status::Reported),
        Some(methods::Keys::Other) | None if ended => Some(Status::Denied),
        Some(methods::Keys::Other) | None => None,
    };
    let decided = match &decision {
        Some(status) => record(state, signin, "voice", status.clone()).await?,
        None => false,
    };
    let status = state.store.signin(&signin.id).await?.map_or(Status::Unknown, |signin| signin.status_at(now()));
    let (say, listen) = match (&status, &decision) {
        (Status::Pending, _) => ("Press the pound key to approve, or 0 and then pound to report it.", true),
        (Status::Approved, Some(Status::Approved)) => ("Thank you. You are signed in. Goodbye.", false),
        (Status::Reported, Some(Status::Reported)) => ("Thank you. The sign-in was blocked and reported. Goodbye.", false),
        (Status::Denied, Some(Status::Denied)) => ("The sign-in was denied. Goodbye.", false),
        (Status::Expired, _) => ("This sign-in has expired. Goodbye.", false),
        (Status::Denied, _) if signin.expires_at <= now() && !decided => {
            ("This call was not answered in time, so the sign-in was denied. Goodbye.", false)
        }
        _ => ("This sign-in was already answered. Goodbye.", false),
    };
    Ok((CallReply { status, say: say.into(), listen }, decided))
}

/// Whether `token` is call `id`'s. Only a call's token is looked at: a
/// text's code is never checked here.
pub async fn call_token_valid(state: &AppState, id: &str, token: &str) -> Result<bool> {
    let Some(hash) = state.store.call_secret(id).await? else { return Ok(false) };
    Ok(!token.is_empty() && state.phone_secrets.matches(id, token, &hash))
}

/// `POST /api/phone/calls/{id}?token=T` (the phone gateway; the token
/// authenticates: [`super::guard::call_token`] checked it before the body
/// was read, and [`call_event`] checks it as any caller's).
pub async fn phone_call(State(state): State<AppState>, Path(id): Path<String>, request: axum::extract::Request) -> Result<Json<CallReply>> {
    let Query(mut event) = Query::<CallEvent>::try_from_uri(request.uri())?;
    // The gateway's fields come in the form body, or all in the query.
    if let Ok(axum::Form(form)) = <axum::Form<CallEvent> as axum::extract::FromRequest<()>>::from_request(request, &()).await {
        event.digits = form.digits.or(event.digits);
        event.status = form.status.or(event.status);
    }
    Ok(Json(call_event(&state, &id, &event).await?))
}

/// The signed challenge for one device.
pub fn challenge_message(state: &AppState, signin: &Signin, organization: &str, device: &str) -> ServerMessage {
    let challenge = Challenge {
        v: VERSION,
        id: signin.id.clone(),
        device_id: device.to_owned(),
        organization: organization.to_owned(),
        user: signin.user.clone(),
        app: signin.app.clone(),
        ip: signin.ip.clone(),
        location: signin.location.clone(),
        created_at: signin.created_at,
        expires_at: signin.expires_at,
        number_matching: signin.number.is_some(),
        pin_required: signin.pin_required,
        question: String::new(),
        presence_options: Vec::new(),
    };
    ServerMessage::Challenge { envelope: state.key.seal(CHALLENGE_CONTEXT, &challenge) }
}

/// `POST /api/signins` (relying party).
pub async fn signin_create(
    State(state): State<AppState>,
    body: std::result::Result<Json<SigninRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<SigninCreated>)> {
    let Json(request) = body?;
    Ok((StatusCode::CREATED, Json(create_signin(&state, request).await?)))
}

#[derive(Debug, Deserialize)]
pub struct Wait {
    /// Seconds to wait for a decision (at most 60).
    #[serde(default)]
    pub wait: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SigninStatus {
    pub id: String,
    /// Pending, approved, denied, reported or expired.
    pub status: Status,
    pub expires_at: i64,
}

/// Waits (long-polling) until the sign-in is decided, expires, or `wait` runs out.
pub async fn wait_for(state: &AppState, id: &str, wait: u64) -> Result<SigninStatus> {
    let mut decided = state.hub.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait.min(60));
    loop {
        let signin = state.store.signin(id).await?.ok_or_else(|| Failure::NotFound(format!("no sign-in {id}")))?;
        let status = signin.status_at(now());
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if status != Status::Pending || left.is_zero() {
            return Ok(SigninStatus { id: signin.id, status, expires_at: signin.expires_at });
        }
        // Wake on any decision, at expiry, or at the deadline; then look again.
        let until_expiry = Duration::from_secs(u64::try_from(signin.expires_at - now()).unwrap_or(0)).max(Duration::from_millis(50));
        let _ = tokio::time::timeout(left.min(until_expiry), async {
            while let Ok(decided_id) = decided.recv().await {
                if decided_id == id || decided_id == hub::EVERY_SIGNIN {
                    break;
                }
            }
        })
        .await;
    }
}

/// `GET /api/signins/{id}?wait=N` (relying party).
pub async fn signin_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    wait: std::result::Result<Query<Wait>, QueryRejection>,
) -> Result<Json<SigninStatus>> {
    let Query(wait) = wait?;
    Ok(Json(wait_for(&state, &id, wait.wait).await?))
}

#[derive(Debug, Deserialize)]
pub struct TotpRequest {
    pub user: String,
    pub code: String,
    /// The address of the person signing in, when the relying party knows
    /// it: wrong codes slow that caller down, not the user everywhere.
    /// Without it the caller is the relying party's own address.
    #[serde(default)]
    pub ip: Option<IpAddr>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TotpVerdict {
    pub valid: bool,
    /// Seconds this caller must wait before a code is checked again (after
    /// 3 wrong ones in a row); the code sent was not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// Checks a 6-digit code for the user (±1 step), accepting each step once
/// and only after the last accepted one. Wrong codes slow down `caller`
/// (see [`super::limits::Backoff`]); other callers are not affected.
pub async fn check_totp(state: &AppState, user: &str, code: &str, caller: IpAddr) -> Result<TotpVerdict> {
    let now = now();
    let user = user.trim();
    let wait = state.totp_wait(user, caller).await?;
    if wait > 0 {
        state.audit.refused(Refusal::RateLimited, caller, "TOTP codes after wrong ones");
        return Ok(TotpVerdict { valid: false, retry_after: Some(wait.div_ceil(1000)) });
    }
    let Some((_, secret, _)) = state.store.user(user).await? else { return Ok(TotpVerdict { valid: false, retry_after: None }) };
    let secret = Secret::from_base32(&secret).map_err(|_| Failure::Internal(format!("user {user}'s TOTP secret")))?.0;
    let account = Account::totp("", user, secret);
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let mut valid = false;
    for offset in [-30, 0, 30] {
        let Ok(at) = u64::try_from(now + offset) else { continue };
        if bool::from(subtle::ConstantTimeEq::ct_eq(crate::otp::code(&account, at).value.as_bytes(), code.as_bytes())) {
            valid = state.store.use_totp_step(user, at as i64 / 30).await?;
            break;
        }
    }
    state.totp_result(user, caller, valid).await?;
    if !valid {
        state.audit.refused(Refusal::Totp, caller, &format!("a wrong or reused code for {}", crate::push::printable(user)));
    }
    Ok(TotpVerdict { valid, retry_after: None })
}

/// `POST /api/totp/verify` (relying party).
pub async fn totp_verify(
    State(state): State<AppState>,
    Extension(Client(client)): Extension<Client>,
    body: std::result::Result<Json<TotpRequest>, JsonRejection>,
) -> Result<Json<TotpVerdict>> {
    let Json(request) = body?;
    Ok(Json(check_totp(&state, &request.user, &request.code, request.ip.unwrap_or(client)).await?))
}

/// `POST /api/app-passwords/verify`: an app password, sent by an app that
/// cannot do two-step verification (never a second factor).
#[derive(Deserialize)]
pub struct AppPasswordCheck {
    pub user: String,
    pub password: String,
    /// The end user's address, as for TOTP codes (backoff per user and address).
    #[serde(default)]
    pub ip: Option<IpAddr>,
}

impl std::fmt::Debug for AppPasswordCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppPasswordCheck").field("user", &self.user).field("password", &"***").field("ip", &self.ip).finish()
    }
}

/// Checks an app password of `user`, for a caller at `caller`: wrong ones
/// count against a backoff like wrong TOTP codes' (a counter of its own, so
/// an old mail client retrying a revoked password does not hold back the
/// user's codes); a right one records its use.
pub async fn check_app_password(state: &AppState, user: &str, password: &str, caller: IpAddr) -> Result<TotpVerdict> {
    let user = user.trim();
    let backoff = format!("app-password:{user}");
    let wait = state.totp_wait(&backoff, caller).await?;
    if wait > 0 {
        state.audit.refused(Refusal::RateLimited, caller, "app passwords after wrong ones");
        return Ok(TotpVerdict { valid: false, retry_after: Some(wait.div_ceil(1000)) });
    }
    let hashes = state.store.app_password_hashes(user).await?;
    let given = zeroize::Zeroizing::new(password.to_owned());
    // Argon2id takes tens of milliseconds each: off the async threads, and
    // a few at a time.
    let _permit = state.hashing.acquire().await.map_err(|_| Failure::Internal("the server is stopping".into()))?;
    let found =
        tokio::task::spawn_blocking(move || hashes.into_iter().find(|(_, hash)| app_passwords::matches(&given, hash)).map(|(id, _)| id))
            .await
            .map_err(|error| Failure::Internal(format!("checking an app password: {error}")))?;
    // Revoked while it was being checked (a report, the admin): refused.
    let found = match found {
        Some(id) => state.store.app_password_used(&id, &caller.to_string(), now()).await?.then_some(id),
        None => None,
    };
    state.totp_result(&backoff, caller, found.is_some()).await?;
    if found.is_none() {
        state.audit.refused(Refusal::AppPassword, caller, &format!("a wrong app password for {}", crate::push::printable(user)));
    }
    Ok(TotpVerdict { valid: found.is_some(), retry_after: None })
}

/// `POST /api/app-passwords/verify` (relying party).
pub async fn app_password_verify(
    State(state): State<AppState>,
    Extension(Client(client)): Extension<Client>,
    body: std::result::Result<Json<AppPasswordCheck>, JsonRejection>,
) -> Result<Json<TotpVerdict>> {
    let Json(request) = body?;
    Ok(Json(check_app_password(&state, &request.user, &request.password, request.ip.unwrap_or(client)).await?))
}

/// A new app password, as shown once.
#[derive(Serialize)]
pub struct NewAppPassword {
    pub id: String,
    pub name: String,
    /// Grouped by four letters; never stored.
    pub password: String,
}

impl std::fmt::Debug for NewAppPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAppPassword").field("id", &self.id).field("name", &self.name).field("password", &"***").finish()
    }
}

/// Makes an app password for `user`, named for the app it is for.
pub async fn new_app_password(state: &AppState, user: &str, name: &str) -> Result<NewAppPassword> {
    let name = app_passwords::name(name).map_err(Failure::BadRequest)?;
    known_user(state, user).await?;
    let _permit = state.hashing.acquire().await.map_err(|_| Failure::Internal("the server is stopping".into()))?;
    let generated = tokio::task::spawn_blocking(app_passwords::generate)
        .await
        .map_err(|error| Failure::Internal(format!("making an app password: {error}")))??;
    let Some(id) = state.store.add_app_password(user, &name, &generated.hash, app_passwords::PER_USER, now()).await? else {
        return Err(Failure::Conflict(format!("a user holds at most {} app passwords: revoke one first", app_passwords::PER_USER)));
    };
    Ok(NewAppPassword { id, name, password: generated.shown.to_string() })
}

#[derive(Debug, Deserialize)]
pub struct AppPasswordName {
    pub name: String,
}

/// `POST /api/admin/users/{name}/app-passwords`: the password, once.
pub async fn app_password_create(
    State(state): State<AppState>,
    Path(user): Path<String>,
    body: std::result::Result<Json<AppPasswordName>, JsonRejection>,
) -> Result<(StatusCode, Json<NewAppPassword>)> {
    let Json(request) = body?;
    Ok((StatusCode::CREATED, Json(new_app_password(&state, &user, &request.name).await?)))
}

/// `GET /api/admin/users/{name}/app-passwords`.
pub async fn app_password_list(State(state): State<AppState>, Path(user): Path<String>) -> Result<Json<Vec<store::AppPasswordInfo>>> {
    known_user(&state, &user).await?;
    Ok(Json(state.store.app_passwords(&user).await?))
}

/// `PUT /api/admin/users/{name}/phones/{kind}`: a number as typed, with
/// its country when it is national.
#[derive(Debug, Deserialize)]
pub struct PhoneRequest {
    pub number: String,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub extension: Option<String>,
}

/// Sets a user's phone (checked, kept in E.164): what is stored.
pub async fn set_phone(state: &AppState, user: &str, kind: &str, request: &PhoneRequest) -> Result<phones::Phone> {
    let kind: phones::Kind = kind.parse().map_err(Failure::BadRequest)?;
    let phone =
        phones::parse(kind, &request.number, request.country.as_deref(), request.extension.as_deref()).map_err(Failure::BadRequest)?;
    known_user(state, user).await?;
    state.store.set_phone(user, &phone, now()).await?;
    Ok(phone)
}

/// `PUT /api/admin/users/{name}/phones/{kind}`.
pub async fn phone_set(
    State(state): State<AppState>,
    Path((user, kind)): Path<(String, String)>,
    body: std::result::Result<Json<PhoneRequest>, JsonRejection>,
) -> Result<Json<phones::Phone>> {
    let Json(request) = body?;
    Ok(Json(set_phone(&state, &user, &kind, &request).await?))
}

/// `GET /api/admin/users/{name}/phones`.
pub async fn phone_list(State(state): State<AppState>, Path(user): Path<String>) -> Result<Json<Vec<phones::Phone>>> {
    known_user(&state, &user).await?;
    Ok(Json(state.store.phones(&user).await?))
}

/// `DELETE /api/admin/users/{name}/phones/{kind}`.
pub async fn phone_remove(State(state): State<AppState>, Path((user, kind)): Path<(String, String)>) -> Result<StatusCode> {
    let kind: phones::Kind = kind.parse().map_err(Failure::BadRequest)?;
    if state.store.remove_phone(&user, kind).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Failure::NotFound(format!("{} has no {} phone", crate::push::printable(&user), kind.as_str())))
    }
}

/// A user's methods: the one they prefer and every one they have.
#[derive(Debug, Serialize, Deserialize)]
pub struct UserMethods {
    /// `None`: the first of `methods`.
    pub preferred: Option<Method>,
    /// What `default` means for this user now.
    pub default: Method,
    pub methods: Vec<Method>,
}

#[derive(Debug, Deserialize)]
pub struct PreferredMethod {
    /// A method, or null (or `default`) to clear the preference.
    pub method: Option<String>,
}

/// The user's methods as sign-ins see them.
pub async fn user_methods(state: &AppState, user: &str) -> Result<UserMethods> {
    let (enrolled, preferred) =
        state.store.enrolled(user).await?.ok_or_else(|| Failure::NotFound(format!("no user {}", crate::push::printable(user))))?;
    let has_provider = state.phone.is_some();
    let methods = enrolled.methods(has_provider);
    let default = enrolled.default_method(preferred, has_provider);
    Ok(UserMethods { preferred, default, methods })
}

/// Sets the method `default` means for `user`; one they do not have yet is
/// refused (it would silently fall back).
pub async fn set_preferred_method(state: &AppState, user: &str, method: Option<&str>) -> Result<UserMethods> {
    let method = match method.map(str::trim).filter(|name| !name.is_empty() && *name != "default") {
        None => None,
        Some(name) => {
            Some(Method::parse(name).ok_or_else(|| Failure::BadRequest(format!("method {name:?} is not one of push, code, sms, voice")))?)
        }
    };
    let before = user_methods(state, user).await?;
    if let Some(method) = method
        && !before.methods.contains(&method)
    {
        return Err(Failure::Conflict(format!("{} cannot sign in by {} yet", crate::push::printable(user), method.as_str())));
    }
    state.store.set_preferred_method(user, method).await?;
    user_methods(state, user).await
}

/// `GET /api/admin/users/{name}/methods`, and for a relying party
/// `GET /api/users/{name}/methods` (whether the user has a device, before a
/// push that would wait for one).
pub async fn methods_get(State(state): State<AppState>, Path(user): Path<String>) -> Result<Json<UserMethods>> {
    Ok(Json(user_methods(&state, &user).await?))
}

/// `PUT /api/admin/users/{name}/methods` with `{"method": "sms"}`.
pub async fn methods_set(
    State(state): State<AppState>,
    Path(user): Path<String>,
    body: std::result::Result<Json<PreferredMethod>, JsonRejection>,
) -> Result<Json<UserMethods>> {
    let Json(request) = body?;
    Ok(Json(set_preferred_method(&state, &user, request.method.as_deref()).await?))
}

/// `DELETE /api/admin/app-passwords/{id}`.
pub async fn app_password_revoke(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode> {
    if state.store.revoke_app_password(&id, None).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Failure::NotFound(format!("no app password {}", crate::push::printable(&id))))
    }
}

#[derive(Debug, Deserialize)]
pub struct NewUser {
    pub name: String,
    #[serde(default)]
    pub organization: Option<String>,
}

/// `POST /api/admin/users`.
pub async fn user_create(State(state): State<AppState>, body: std::result::Result<Json<NewUser>, JsonRejection>) -> Result<StatusCode> {
    let Json(user) = body?;
    let name = user.name.trim();
    if name.is_empty() || name.len() > 128 {
        return Err(Failure::BadRequest("a user name of 1 to 128 characters is needed".into()));
    }
    let organization = user.organization.unwrap_or_else(|| state.config.organization.clone());
    if state.store.add_user(name, &organization, now()).await? {
        Ok(StatusCode::CREATED)
    } else {
        Err(Failure::Conflict(format!("user {name:?} exists")))
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct NewActivation {
    pub user: String,
    /// At least 9 digits (12).
    pub code: String,
    /// The activation URL the code goes with.
    pub url: String,
    /// `phonefactor://activate_account?code=...&url=...`: what the QR code holds.
    pub uri: String,
    /// The QR code as a PNG, standard base64.
    pub qr_png_base64: String,
    pub expires_at: i64,
}

/// 404 unless `user` exists: what every handler for one user says first.
async fn known_user(state: &AppState, user: &str) -> Result<()> {
    if state.store.user_exists(user).await? { Ok(()) } else { Err(Failure::NotFound(format!("no user {user:?}"))) }
}

/// Creates a one-time activation for a user (admin API, CLI and enrollment page).
pub async fn new_activation(state: &AppState, user: &str) -> Result<NewActivation> {
    known_user(state, user).await?;
    let now = now();
    let (id, code) = state.store.create_activation(user, now).await?;
    let url = format!("{}/api/activate/{id}", state.config.base_url());
    let encode = |text: &str| percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string();
    let uri = format!("phonefactor://activate_account?code={code}&url={}", encode(&url));
    let png = crate::transfer::qr_png(&uri).map_err(|e| Failure::Internal(e.to_string()))?;
    Ok(NewActivation {
        user: user.to_owned(),
        code,
        url,
        uri,
        qr_png_base64: crate::base64::encode(png),
        expires_at: now + store::ACTIVATION_SECONDS,
    })
}

/// `POST /api/admin/users/{name}/activations`.
pub async fn activation_create(State(state): State<AppState>, Path(name): Path<String>) -> Result<(StatusCode, Json<NewActivation>)> {
    Ok((StatusCode::CREATED, Json(new_activation(&state, &name).await?)))
}

/// `GET /api/admin/users/{name}/devices`.
pub async fn device_list(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Vec<DeviceInfo>>> {
    known_user(&state, &name).await?;
    Ok(Json(state.store.devices(&name).await?))
}

/// `DELETE /api/admin/devices/{id}`: a lost device stops at once; its open
/// sessions are closed and it can neither reconnect nor answer.
pub async fn device_revoke(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode> {
    if !state.store.revoke_device(&id).await? {
        return Err(Failure::NotFound(format!("no device {id:?}")));
    }
    state.publish(Event::Revoked { device: id }).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/admin/users`: every user, by name, with their device count.
pub async fn user_list(State(state): State<AppState>) -> Result<Json<Vec<UserInfo>>> {
    Ok(Json(state.store.users().await?))
}

/// Removes a user with everything of theirs (admin API and CLI); their
/// devices' open sessions close on every instance.
pub async fn remove_user(state: &AppState, name: &str) -> Result<()> {
    let Some(devices) = state.store.remove_user(name).await? else {
        return Err(Failure::NotFound(format!("no user {name:?}")));
    };
    for device in devices {
        state.publish(Event::Revoked { device }).await;
    }
    Ok(())
}

/// `DELETE /api/admin/users/{name}`.
pub async fn user_remove(State(state): State<AppState>, Path(name): Path<String>) -> Result<StatusCode> {
    remove_user(&state, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /readyz`: 200 when the database answers, so a load balancer sends
/// traffic here; 503 otherwise (`/healthz` says only that the process runs).
pub async fn ready(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(error) => {
            super::metrics::database_error();
            log::error(&format!("not ready: {error}"));
            (StatusCode::SERVICE_UNAVAILABLE, "the database does not answer").into_response()
        }
    }
}

/// `GET /metrics` with the metrics or the admin token (Prometheus's
/// `authorization` setting): the Prometheus text format.
pub async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Result<Response> {
    if !state.metrics_allowed(&super::guard::bearer(&headers)).await? {
        return Err(Failure::Unauthorized);
    }
    let text = state.metrics.render(state.hub.connected());
    Ok(([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response())
}

/// `GET /api/admin/users/{name}/activations`.
pub async fn activation_list(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Vec<ActivationInfo>>> {
    known_user(&state, &name).await?;
    Ok(Json(state.store.activations(&name, now()).await?))
}

/// `DELETE /api/admin/activations/{id}`.
pub async fn activation_revoke(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode> {
    if state.store.revoke_activation(&id, now()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Failure::NotFound(format!("no unused activation {id:?}")))
    }
}
