//! What every request passes before a handler sees it, in this order:
//! its credentials (a bearer token, or the activation rate limit), then its
//! body, read only then, at most [`BODY_LIMIT`] bytes and within the request
//! timeout. A request without a valid token is answered 401 before a byte
//! of its body is read; a body declared or sent larger than the limit is
//! answered 413 at once.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::AppState;
use super::api::Failure;
use super::limits::Refusal;

/// The largest request body any route takes: an activation request or a
/// sign-in is a few hundred bytes.
pub const BODY_LIMIT: usize = 4 * 1024;

/// The token in `Authorization: Bearer <token>`, or "".
pub fn bearer(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_owned()
}

/// The relying-party API: its token first.
pub async fn relying_party(State(state): State<AppState>, request: Request, next: Next) -> Response {
    with_token(&state, "rp_token", request, next).await
}

/// The admin API: its token first.
pub async fn admin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    with_token(&state, "admin_token", request, next).await
}

async fn with_token(state: &AppState, name: &str, request: Request, next: Next) -> Response {
    let given = bearer(request.headers());
    match state.token_matches(name, &given).await {
        Ok(true) => next.run(request).await,
        Err(error) => Failure::from(error).into_response(),
        Ok(false) => {
            state.audit.refused(Refusal::Unauthorized, client(&request), &format!("{} {}", request.method(), request.uri().path()));
            Failure::Unauthorized.into_response()
        }
    }
}

/// The client's address, as every handler and limit sees it.
#[derive(Debug, Clone, Copy)]
pub struct Client(pub IpAddr);

/// Runs first: the connection's peer (unspecified in `oneshot` tests), or,
/// when that peer is a trusted proxy, the last address in `X-Forwarded-For`
/// that is not one.
pub async fn identify(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let peer =
        request.extensions().get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(peer)| peer.ip());
    let client = forwarded_client(peer, request.headers(), &state.config.trusted_proxies);
    request.extensions_mut().insert(Client(client));
    next.run(request).await
}

/// The address [`identify`] found for this request.
pub fn client(request: &Request) -> IpAddr {
    request.extensions().get::<Client>().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |Client(ip)| *ip)
}

/// Each proxy appends the address it received from, so the chain is read
/// from the right, and only through proxies we trust.
pub fn forwarded_client(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let chain: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|part| part.trim().parse::<IpAddr>().ok())
        .collect::<Option<Vec<_>>>()
        .unwrap_or_default();
    chain.into_iter().rev().find(|address| !trusted.contains(address)).unwrap_or(peer)
}

/// Activation needs no token, so its rate limit comes first.
pub async fn activation_rate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let client = client(&request);
    if state.allow_activation(client).await {
        next.run(request).await
    } else {
        state.audit.refused(Refusal::RateLimited, client, "activation attempts");
        Failure::RateLimited.into_response()
    }
}

/// Reads the body, at most [`BODY_LIMIT`] bytes within the request timeout,
/// and hands the handler the bytes.
pub async fn small_body(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let declared = parts.headers.get("content-length").and_then(|value| value.to_str().ok()).and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > BODY_LIMIT as u64) {
        return Failure::TooLarge(BODY_LIMIT).into_response();
    }
    let read = tokio::time::timeout(state.config.request_timeout(), Limited::new(body, BODY_LIMIT).collect()).await;
    let bytes = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => return Failure::TooLarge(BODY_LIMIT).into_response(),
        Ok(Err(_)) => return Failure::BadRequest("the request body could not be read".into()).into_response(),
        Err(_) => return Failure::Timeout.into_response(),
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// The phone gateway's callbacks (`/api/phone/calls/{id}?token=T`): the
/// call's token is checked before [`small_body`] reads a byte.
pub async fn call_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let id = request.uri().path().rsplit('/').next().unwrap_or("").to_owned();
    let token = request
        .uri()
        .query()
        .and_then(|query| form_urlencoded::parse(query.as_bytes()).find(|(name, _)| name == "token").map(|(_, value)| value.into_owned()))
        .unwrap_or_default();
    match super::api::call_token_valid(&state, &id, &token).await {
        Ok(true) => next.run(request).await,
        Ok(false) => Failure::NotFound("no such call".into()).into_response(),
        Err(failure) => failure.into_response(),
    }
}

/// Unknown paths: a JSON error like every other.
pub async fn not_found(request: Request) -> Failure {
    Failure::NotFound(format!("no route {}", request.uri().path()))
}

/// Known paths with another method: a JSON error like every other.
pub async fn method_not_allowed(request: Request) -> Failure {
    Failure::MethodNotAllowed(format!("{} is not allowed on {}", request.method(), request.uri().path()))
}
