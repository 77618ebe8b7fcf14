//! `app(state)` driven with `oneshot`: the order in which requests are
//! checked, body limits, error shapes, settings and revocation. The real
//! socket (timeouts, connection limit, signals) is `tests/server_attacks.rs`.

use std::net::IpAddr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::push::{ActivationRequest, Keypair};

const RP: &str = "rp-token-for-oneshot";
const ADMIN: &str = "admin-token-for-oneshot";

async fn state(dir: &tempfile::TempDir) -> AppState {
    state_with(dir, Config::default()).await
}

async fn state_with(dir: &tempfile::TempDir, config: Config) -> AppState {
    let config = Config {
        database: Database::Sqlite(dir.path().join("server.sqlite3")),
        admin_token: Some(ADMIN.into()),
        rp_token: Some(RP.into()),
        ..config
    };
    AppState::open(config).await.unwrap()
}

/// A body that sends `first` bytes, then never anything more: a handler or
/// middleware that waits for the rest never answers.
fn held_body(first: usize) -> Body {
    use futures_util::StreamExt;
    let stream =
        futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(vec![b'{'; first]))]).chain(futures_util::stream::pending());
    Body::from_stream(stream)
}

/// A bodiless admin API request.
fn admin(request: axum::http::request::Builder) -> Request<Body> {
    request.header("authorization", format!("Bearer {ADMIN}")).body(Body::empty()).unwrap()
}

async fn call(state: &AppState, request: Request<Body>) -> (StatusCode, Value) {
    // The bound only turns a hang into a failure; answers come at once.
    let response =
        tokio::time::timeout(Duration::from_secs(20), app(state.clone()).oneshot(request)).await.expect("an answer, not a hang").unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn post(path: &str, token: Option<&str>) -> axum::http::request::Builder {
    let mut request = Request::post(path).header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request
}

fn json_body(value: Value) -> Body {
    Body::from(serde_json::to_vec(&value).unwrap())
}

#[tokio::test]
async fn a_request_without_a_token_is_refused_before_its_body_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir).await;
    for (path, token) in [
        ("/api/signins", None),
        ("/api/signins", Some("wrong-token-wrong-token")),
        ("/api/totp/verify", None),
        ("/api/admin/users", Some(RP)),
        ("/api/admin/users/carol/activations", None),
    ] {
        let request = post(path, token).header("content-length", "2000000").body(held_body(1_990_000)).unwrap();
        let (status, body) = call(&state, request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body["error"], "unauthorized", "{path}");
    }
}

/// The phone gateway's callback has no bearer token: its call's token is
/// checked first, and a wrong one never gets its body read.
#[tokio::test]
async fn a_call_callback_with_a_wrong_token_is_refused_before_its_body_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir).await;
    for path in ["/api/phone/calls/si_0123456789abcdef?token=wrong", "/api/phone/calls/si_0123456789abcdef", "/api/phone/calls/x"] {
        let request = post(path, None).header("content-length", "3000").body(held_body(2000)).unwrap();
        let (status, body) = call(&state, request).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{path}: {body}");
    }
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_whether_declared_or_sent() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir).await;
    // Declared: answered without reading a byte.
    let request = post("/api/signins", Some(RP)).header("content-length", "2000000").body(held_body(10)).unwrap();
    let (status, body) = call(&state, request).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("too_large")));
    // Sent without a length (chunked): cut off at the limit.
    let request = post("/api/admin/users", Some(ADMIN)).body(held_body(guard::BODY_LIMIT + 1)).unwrap();
    assert_eq!(call(&state, request).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    // Activation has no token: the body limit holds there too.
    let request = post("/api/activate/x", None).header("content-length", "2000000").body(held_body(10)).unwrap();
    assert_eq!(call(&state, request).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    // Under the limit, the same routes work.
    let request = post("/api/admin/users", Some(ADMIN)).body(json_body(json!({ "name": "carol" }))).unwrap();
    assert_eq!(call(&state, request).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_408_after_the_request_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_with(&dir, Config { request_timeout_seconds: 1, ..Config::default() }).await;
    let request = post("/api/signins", Some(RP)).body(held_body(100)).unwrap();
    let (status, body) = call(&state, request).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::REQUEST_TIMEOUT, Some("timeout")));
}

#[tokio::test]
async fn activation_is_rate_limited_before_its_body_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir).await;
    let limit = state.config.activation_rate_per_minute;
    for _ in 0..limit {
        let request = post("/api/activate/x", None).body(json_body(json!({}))).unwrap();
        assert_ne!(call(&state, request).await.0, StatusCode::TOO_MANY_REQUESTS);
    }
    let request = post("/api/activate/x", None).header("content-length", "3000").body(held_body(10)).unwrap();
    let (status, body) = call(&state, request).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")));
}

#[tokio::test]
async fn every_error_is_json_with_the_right_status() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir).await;
    let cases = [
        (Request::get("/no/such/route").body(Body::empty()).unwrap(), StatusCode::NOT_FOUND, "not_found"),
        (
            Request::get("/api/signins").header("authorization", format!("Bearer {RP}")).body(Body::empty()).unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Request::put("/api/admin/users").header("authorization", format!("Bearer {ADMIN}")).body(Body::empty()).unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Request::get("/api/signins/si_1?wait=soon").header("authorization", format!("Bearer {RP}")).body(Body::empty()).unwrap(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (post("/api/signins", Some(RP)).body(Body::from("{not json")).unwrap(), StatusCode::BAD_REQUEST, "bad_request"),
        (post("/api/signins", Some(RP)).body(json_body(json!({ "user": "nobody" }))).unwrap(), StatusCode::NOT_FOUND, "not_found"),
    ];
    for (request, want, error) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let (status, body) = call(&state, request).await;
        assert_eq!(status, want, "{what}");
        assert_eq!(body["error"], error, "{what}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {body}");
    }
}

#[tokio::test]
async fn relying_party_text_is_capped() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir).await;
    state.store.add_user("carol", "Contoso", now()).await.unwrap();
    let long = "A".repeat(api::FIELD_LIMIT + 1);
    for field in ["app", "ip", "location"] {
        let request = post("/api/signins", Some(RP)).body(json_body(json!({ "user": "carol", field: long }))).unwrap();
        let (status, body) = call(&state, request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}");
        assert!(body["message"].as_str().unwrap().contains(field), "{body}");
    }
    let fits = "A".repeat(api::FIELD_LIMIT);
    let request = post("/api/signins", Some(RP)).body(json_body(json!({ "user": "carol", "app": fits }))).unwrap();
    assert_eq!(call(&state, request).await.0, StatusCode::CREATED);
}

async fn activate(state: &AppState, url: &str, code: &str) -> (StatusCode, Value) {
    let key = Keypair::generate().unwrap();
    let request =
        ActivationRequest { code: code.into(), device_public_key: key.public(), device_name: "laptop".into(), listener_public_key: None };
    let path = url.split_once("/api/").map(|(_, rest)| format!("/api/{rest}")).unwrap();
    call(state, post(&path, None).body(json_body(serde_json::to_value(request).unwrap())).unwrap()).await
}

#[tokio::test]
async fn only_the_newest_activation_code_activates_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir).await;
    state.store.add_user("carol", "Contoso", now()).await.unwrap();
    let first = new_activation(&state, "carol").await.unwrap();
    let second = new_activation(&state, "carol").await.unwrap();
    // The first was revoked when the second was issued.
    let (status, body) = activate(&state, &first.url, &first.code).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::GONE, Some("revoked")), "{body}");
    assert_eq!(activate(&state, &second.url, &second.code).await.0, StatusCode::OK);
    // Neither activates again: no second device for carol.
    assert_eq!(activate(&state, &first.url, &first.code).await.0, StatusCode::GONE);
    assert_eq!(activate(&state, &second.url, &second.code).await.0, StatusCode::GONE);
    assert_eq!(state.store.devices("carol").await.unwrap().len(), 1);
    let mut states: Vec<String> = state.store.activations("carol", now()).await.unwrap().into_iter().map(|a| a.state).collect();
    states.sort();
    assert_eq!(states, ["revoked", "used"]);
}

/// Every refused activation's status and exact body, so the way
/// `Failure` picks them can change without the answers changing.
#[tokio::test]
async fn every_refused_activation_answers_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_with(&dir, Config { activation_rate_per_minute: 1000, ..Config::default() }).await;
    state.store.add_user("carol", "Contoso", now()).await.unwrap();
    async fn raw(state: &AppState, path: &str, code: &str) -> (StatusCode, String) {
        let key = Keypair::generate().unwrap();
        let request = ActivationRequest {
            code: code.into(),
            device_public_key: key.public(),
            device_name: "laptop".into(),
            listener_public_key: None,
        };
        let response =
            app(state.clone()).oneshot(post(path, None).body(json_body(serde_json::to_value(request).unwrap())).unwrap()).await.unwrap();
        let status = response.status();
        (status, String::from_utf8(axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap())
    }
    let expect = |status: StatusCode, error: &str, message: &str| (status, format!(r#"{{"error":"{error}","message":"{message}"}}"#));
    assert_eq!(
        raw(&state, "/api/activate/act_nosuch", "123456789012").await,
        expect(StatusCode::NOT_FOUND, "invalid_code", "no such activation; check the URL")
    );
    let (id, code) = state.store.create_activation("carol", now() - store::ACTIVATION_SECONDS - 1).await.unwrap();
    assert_eq!(
        raw(&state, &format!("/api/activate/{id}"), &code).await,
        expect(StatusCode::GONE, "expired", "this activation code has expired (codes are valid for 10 minutes); ask for a new one")
    );
    let (id, code) = state.store.create_activation("carol", now()).await.unwrap();
    let path = format!("/api/activate/{id}");
    for left in (1..store::MAX_FAILURES).rev() {
        assert_eq!(
            raw(&state, &path, "000000000000").await,
            expect(StatusCode::FORBIDDEN, "invalid_code", &format!("wrong activation code; {left} more tries before it is invalidated"))
        );
    }
    let too_many =
        expect(StatusCode::GONE, "too_many_attempts", "this activation code was tried 5 times and is no longer valid; ask for a new one");
    assert_eq!(raw(&state, &path, "000000000000").await, too_many);
    assert_eq!(raw(&state, &path, &code).await, too_many);
    let (id, code) = state.store.create_activation("carol", now()).await.unwrap();
    let path = format!("/api/activate/{id}");
    assert_eq!(raw(&state, &path, &code).await.0, StatusCode::OK);
    assert_eq!(raw(&state, &path, &code).await, expect(StatusCode::GONE, "used", "this activation code was already used"));
    let (old, code) = state.store.create_activation("carol", now()).await.unwrap();
    state.store.create_activation("carol", now()).await.unwrap();
    assert_eq!(
        raw(&state, &format!("/api/activate/{old}"), &code).await,
        expect(StatusCode::GONE, "revoked", "this activation code was replaced by a newer one or revoked; use the newest code")
    );
}

#[tokio::test]
async fn a_successful_activation_revokes_every_other_outstanding_code() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir).await;
    state.store.add_user("carol", "Contoso", now()).await.unwrap();
    // Two outstanding codes, as two servers issuing at once could leave.
    let (first_id, first_code) = state.store.create_activation("carol", now()).await.unwrap();
    let second = new_activation(&state, "carol").await.unwrap();
    sqlx::query("UPDATE activations SET revoked_at = NULL WHERE id = ?").bind(&first_id).execute(state.store.sqlite()).await.unwrap();
    assert_eq!(activate(&state, &second.url, &second.code).await.0, StatusCode::OK);
    let (status, body) = activate(&state, &format!("/api/activate/{first_id}"), &first_code).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::GONE, Some("revoked")), "{body}");
}

#[tokio::test]
async fn the_admin_lists_and_revokes_devices_and_activations() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir).await;
    state.store.add_user("carol", "Contoso", now()).await.unwrap();
    let activation = new_activation(&state, "carol").await.unwrap();
    let (_, listed) = call(&state, admin(Request::get("/api/admin/users/carol/activations"))).await;
    assert_eq!(listed[0]["state"], "outstanding");
    assert!(listed[0].get("code").is_none(), "never a code: {listed}");
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(call(&state, admin(Request::delete(format!("/api/admin/activations/{id}")))).await.0, StatusCode::NO_CONTENT);
    assert_eq!(activate(&state, &activation.url, &activation.code).await.0, StatusCode::GONE);
    assert_eq!(call(&state, admin(Request::delete(format!("/api/admin/activations/{id}")))).await.0, StatusCode::NOT_FOUND);

    let activation = new_activation(&state, "carol").await.unwrap();
    let (_, answer) = activate(&state, &activation.url, &activation.code).await;
    let device = answer["device_id"].as_str().unwrap().to_owned();
    let mut session = state.hub.connect(&device, "carol");
    let (_, devices) = call(&state, admin(Request::get("/api/admin/users/carol/devices"))).await;
    assert_eq!(devices[0]["id"], device.as_str());
    assert_eq!(devices[0]["name"], "laptop");
    // Revoked: gone from the list, and its open session's queue ends.
    assert_eq!(call(&state, admin(Request::delete(format!("/api/admin/devices/{device}")))).await.0, StatusCode::NO_CONTENT);
    assert!(session.recv().await.is_none(), "the open session was ended");
    let (_, devices) = call(&state, admin(Request::get("/api/admin/users/carol/devices"))).await;
    assert_eq!(devices, json!([]));
    assert!(state.store.devices_of("carol").await.unwrap().is_empty(), "no push reaches it");
    // The relying-party token does not open the admin API.
    let (status, _) = call(
        &state,
        Request::get("/api/admin/users/carol/devices").header("authorization", format!("Bearer {RP}")).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn settings_out_of_range_are_refused_at_start() {
    assert_eq!(Config::default().check(), Ok(()));
    let refused = [
        Config { report_block_seconds: -10, ..Config::default() },
        Config { report_block_seconds: i64::MAX, ..Config::default() },
        Config { challenge_seconds: 0, ..Config::default() },
        Config { activation_rate_per_minute: 0, ..Config::default() },
        Config { max_connections: 0, ..Config::default() },
        Config { request_timeout_seconds: 0, ..Config::default() },
        Config { request_timeout_seconds: 3600, ..Config::default() },
        Config { organization: " ".into(), ..Config::default() },
    ];
    for config in refused {
        let error = config.check().expect_err("refused");
        assert!(error.contains("must be"), "{error}");
    }
}

#[tokio::test]
async fn tokens_are_kept_as_hashes_and_compare_whole() {
    let dir = tempfile::tempdir().unwrap();
    // No token in the configuration: the API is closed until `tokens` makes one.
    let config = Config { database: Database::Sqlite(dir.path().join("server.sqlite3")), ..Config::default() };
    let state = AppState::open(config.clone()).await.unwrap();
    assert!(!state.token_matches("rp_token", "").await.unwrap());
    let token = state.store.new_token("rp_token").await.unwrap();
    assert!(state.token_matches("rp_token", &token).await.unwrap());
    for wrong in [&token[..token.len() - 1], &format!("{token}0"), "", "admin"] {
        assert!(!state.token_matches("rp_token", wrong).await.unwrap(), "{wrong}");
    }
    assert!(!state.token_matches("admin_token", &token).await.unwrap(), "one API's token does not open the other");
    // The database holds its hash, never the token.
    let database = std::fs::read(dir.path().join("server.sqlite3")).unwrap();
    let wal = std::fs::read(dir.path().join("server.sqlite3-wal")).unwrap_or_default();
    for bytes in [&database, &wal] {
        assert!(!bytes.windows(token.len()).any(|window| window == token.as_bytes()), "the token is stored in clear");
    }
    // A new one replaces it.
    let newer = state.store.new_token("rp_token").await.unwrap();
    assert!(!state.token_matches("rp_token", &token).await.unwrap());
    assert!(state.token_matches("rp_token", &newer).await.unwrap());
}

#[tokio::test]
async fn the_server_key_lives_in_a_0600_file_and_moves_out_of_an_old_database() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("server.sqlite3");
    // As an earlier version left it: the key and a token in the database.
    let store = Store::connect(&Database::Sqlite(database.clone()), 1).await.unwrap();
    let old = Keypair::generate().unwrap();
    sqlx::query("INSERT INTO server_settings (name, value) VALUES ('server_key', ?), ('admin_token', 'an-old-admin-token-in-clear')")
        .bind(crate::base64::encode(*old.to_seed()))
        .execute(store.sqlite())
        .await
        .unwrap();
    drop(store);
    let state = AppState::open(Config { database: Database::Sqlite(database.clone()), ..Config::default() }).await.unwrap();
    assert_eq!(state.public, old.public(), "the same key, now from the file");
    let key_file = dir.path().join("server.sqlite3.key");
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    let left: Vec<String> =
        sqlx::query_scalar("SELECT name FROM server_settings ORDER BY name").fetch_all(state.store.sqlite()).await.unwrap();
    assert_eq!(left, ["admin_token_sha256"], "no key and no clear token left in the database");
    assert!(state.token_matches("admin_token", "an-old-admin-token-in-clear").await.unwrap(), "the old token still works");
    // A key file others can read is refused.
    drop(state);
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = AppState::open(Config { database: Database::Sqlite(database), ..Config::default() }).await.err().expect("refused");
    assert!(refused.to_string().contains("readable by other users"), "{refused}");
}

#[tokio::test]
async fn totp_secrets_are_sealed_under_a_key_outside_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("server.sqlite3");
    let key = dir.path().join("totp.key");
    // A user from before the key: sealed at start.
    let plain = AppState::open(Config { database: Database::Sqlite(database.clone()), ..Config::default() }).await.unwrap();
    plain.store.add_user("carol", "Contoso", now()).await.unwrap();
    let (_, secret, _) = plain.store.user("carol").await.unwrap().unwrap();
    drop(plain);
    let sealed =
        AppState::open(Config { database: Database::Sqlite(database.clone()), totp_key_file: Some(key.clone()), ..Config::default() })
            .await
            .unwrap();
    sealed.store.add_user("dave", "Contoso", now()).await.unwrap();
    assert_eq!(sealed.store.user("carol").await.unwrap().unwrap().1, secret, "the same secret, opened");
    let stored: Vec<String> = sqlx::query_scalar("SELECT totp_secret FROM users").fetch_all(sealed.store.sqlite()).await.unwrap();
    assert!(stored.iter().all(|s| s.starts_with("xc1:")), "{stored:?}");
    // A sealed secret moved to another user does not open.
    sqlx::query("UPDATE users SET totp_secret = (SELECT totp_secret FROM users WHERE name = 'carol') WHERE name = 'dave'")
        .execute(sealed.store.sqlite())
        .await
        .unwrap();
    assert!(sealed.store.user("dave").await.is_err());
    drop(sealed);
    // Without the key, the server refuses to start rather than fail each code.
    let refused = AppState::open(Config { database: Database::Sqlite(database), ..Config::default() }).await.err().expect("refused");
    assert!(refused.to_string().contains("totp_key_file"), "{refused}");
}

fn page_request(method: &str, path: &str, host: &str) -> axum::http::request::Builder {
    Request::builder().method(method).uri(path).header("host", host)
}

async fn form_token(state: &AppState) -> String {
    let response = app(state.clone()).oneshot(page_request("GET", "/enroll", "127.0.0.1:8750").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert!(response.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    let html = String::from_utf8(axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
    html.split(r#"name="csrf" value=""#).nth(1).and_then(|rest| rest.split('"').next()).unwrap().to_owned()
}

async fn page_status(state: &AppState, request: Request<Body>) -> StatusCode {
    app(state.clone()).oneshot(request).await.unwrap().status()
}

/// A page's status and HTML.
async fn page_html(state: &AppState, request: Request<Body>) -> (StatusCode, String) {
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    (status, String::from_utf8(axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap())
}

/// A form posted to `path` on this server's own address.
fn form_post(path: &str, body: String) -> Request<Body> {
    page_request("POST", path, "127.0.0.1:8750").header("content-type", "application/x-www-form-urlencoded").body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn other_sites_cannot_drive_the_demo_pages() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir).await;
    let token = form_token(&state).await;
    let form = |origin: Option<&str>, host: &str, token: &str| {
        let mut request = page_request("POST", "/enroll", host).header("content-type", "application/x-www-form-urlencoded");
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.body(Body::from(format!("user=mallory&csrf={token}"))).unwrap()
    };
    // DNS rebinding: another name for this address.
    assert_eq!(
        page_status(&state, page_request("GET", "/enroll", "attacker.example:8750").body(Body::empty()).unwrap()).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(page_status(&state, form(None, "attacker.example", &token)).await, StatusCode::FORBIDDEN);
    // A cross-site form.
    assert_eq!(page_status(&state, form(Some("https://attacker.example"), "127.0.0.1:8750", &token)).await, StatusCode::FORBIDDEN);
    let cross = page_request("POST", "/enroll", "127.0.0.1:8750")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .body(Body::from(format!("user=mallory&csrf={token}")))
        .unwrap();
    assert_eq!(page_status(&state, cross).await, StatusCode::FORBIDDEN);
    // Same origin, but without the form's token.
    assert_eq!(page_status(&state, form(Some("http://127.0.0.1:8750"), "127.0.0.1:8750", "")).await, StatusCode::FORBIDDEN);
    assert!(!state.store.user_exists("mallory").await.unwrap(), "nothing was enrolled");
    // This page's own form.
    assert_eq!(page_status(&state, form(Some("http://127.0.0.1:8750"), "127.0.0.1:8750", &token)).await, StatusCode::OK);
    assert!(state.store.user_exists("mallory").await.unwrap());
    assert_eq!(page_status(&state, form(Some("http://localhost:8750"), "localhost:8750", &token)).await, StatusCode::OK);
}

#[tokio::test]
async fn contact_me_is_not_a_push_bombing_tool() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir).await;
    state.store.add_user("carol", "Contoso", now()).await.unwrap();
    state.store.add_user("dave", "Contoso", now()).await.unwrap();
    let token = form_token(&state).await;
    let push = |user: &str| {
        page_request("POST", "/demo/push", "127.0.0.1:8750")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("user={user}&csrf={token}")))
            .unwrap()
    };
    for _ in 0..5 {
        assert_eq!(page_status(&state, push("carol")).await, StatusCode::OK);
    }
    assert_eq!(page_status(&state, push("carol")).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(state.store.pending("carol", now()).await.unwrap().len(), 5);
    assert_eq!(page_status(&state, push("dave")).await, StatusCode::OK, "another user has their own limit");
}

#[tokio::test]
async fn wrong_codes_slow_their_caller_not_the_user_and_codes_are_accepted_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir).await;
    state.store.add_user("carol", "Contoso", now()).await.unwrap();
    let (_, secret, _) = state.store.user("carol").await.unwrap().unwrap();
    let account = crate::account::Account::totp("", "carol", crate::secret::Secret::from_base32(&secret).unwrap().0);
    let code_at = |at: i64| crate::otp::code(&account, at as u64).value;
    let (attacker, user): (IpAddr, IpAddr) = ("203.0.113.9".parse().unwrap(), "198.51.100.4".parse().unwrap());
    // Wrong codes from one caller: after 3, it must wait, and its codes are not even checked.
    for _ in 0..3 {
        let verdict = check_totp(&state, "carol", "000000", attacker).await.unwrap();
        assert!(!verdict.valid && verdict.retry_after.is_none());
    }
    let verdict = check_totp(&state, "carol", &code_at(now()), attacker).await.unwrap();
    assert!(!verdict.valid);
    assert_eq!(verdict.retry_after, Some(1));
    // The real user, calling from elsewhere, is not locked out (it was for the rest of the minute).
    let now = now();
    assert!(check_totp(&state, "carol", &code_at(now), user).await.unwrap().valid);
    // The code before it, still inside the ±30 s window but older, is refused; so is the same one again.
    assert!(!check_totp(&state, "carol", &code_at(now - 30), user).await.unwrap().valid);
    assert!(!check_totp(&state, "carol", &code_at(now), user).await.unwrap().valid);
    // The relying party may name the person's address; over HTTP it is the caller.
    let request =
        post("/api/totp/verify", Some(RP)).body(json_body(json!({ "user": "carol", "code": "000000", "ip": "203.0.113.9" }))).unwrap();
    let (_, body) = call(&state, request).await;
    assert_eq!(body["valid"], false);
    assert!(body["retry_after"].as_u64().is_some(), "{body}");
}

#[test]
fn forwarded_addresses_count_only_behind_trusted_proxies() {
    let proxy: IpAddr = "10.0.0.5".parse().unwrap();
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("x-forwarded-for", "1.2.3.4, 198.51.100.4".parse().unwrap());
    let client: IpAddr = "198.51.100.4".parse().unwrap();
    assert_eq!(guard::forwarded_client(proxy, &headers, &[proxy]), client, "the address the trusted proxy saw");
    assert_eq!(guard::forwarded_client(proxy, &headers, &[]), proxy, "an untrusted peer's header is ignored");
    assert_eq!(guard::forwarded_client(proxy, &axum::http::HeaderMap::new(), &[proxy]), proxy);
    headers.insert("x-forwarded-for", "not an address".parse().unwrap());
    assert_eq!(guard::forwarded_client(proxy, &headers, &[proxy]), proxy);
}

#[test]
fn listening_everywhere_needs_a_public_url() {
    let everywhere = Config { listen: "0.0.0.0:8750".parse().unwrap(), ..Config::default() };
    assert!(everywhere.check().unwrap_err().contains("public_url"));
    assert_eq!(Config { public_url: Some("https://mfa.example.com".into()), ..everywhere }.check(), Ok(()));
}

#[tokio::test]
async fn users_are_listed_and_removed_with_everything_of_theirs_through_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir).await;
    for name in ["heidi", "ivan"] {
        assert!(state.store.add_user(name, "Contoso", now()).await.unwrap());
    }
    let activation = new_activation(&state, "heidi").await.unwrap();
    let (_, answer) = activate(&state, &activation.url, &activation.code).await;
    let device = answer["device_id"].as_str().unwrap().to_owned();
    let mut session = state.hub.connect(&device, "heidi");
    create_signin(&state, api::SigninRequest { user: "heidi".into(), ..Default::default() }).await.unwrap();
    let (status, users) = call(&state, admin(Request::get("/api/admin/users"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        users.as_array().unwrap().iter().map(|u| (u["name"].as_str().unwrap(), u["devices"].as_i64().unwrap())).collect::<Vec<_>>(),
        [("heidi", 1), ("ivan", 0)]
    );
    assert!(users[0].get("totp_secret").is_none(), "never a secret: {users}");

    assert_eq!(call(&state, admin(Request::delete("/api/admin/users/heidi"))).await.0, StatusCode::NO_CONTENT);
    // Its open session ends (after the challenge already queued), and nothing of heidi's is left.
    while let Some(queued) = session.recv().await {
        assert!(matches!(queued, hub::Queued::Message(_)));
    }
    assert!(state.store.device(&device).await.unwrap().is_none());
    for table in ["users", "devices", "activations", "signins"] {
        let column = if table == "users" { "name" } else { "user_name" };
        let left: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE {column} = 'heidi'"))
            .fetch_one(state.store.sqlite())
            .await
            .unwrap();
        assert_eq!(left, 0, "{table}");
    }
    assert_eq!(call(&state, admin(Request::delete("/api/admin/users/heidi"))).await.0, StatusCode::NOT_FOUND);
    let (_, users) = call(&state, admin(Request::get("/api/admin/users"))).await;
    assert_eq!(users.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn retention_prunes_decided_signins_and_spent_activations_only() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir).await;
    assert!(state.store.add_user("judy", "Contoso", 0).await.unwrap());
    let signin = |id: &str, created_at: i64| store::Signin {
        id: id.into(),
        user: "judy".into(),
        app: "a".into(),
        ip: String::new(),
        location: String::new(),
        number: None,
        pin_required: false,
        created_at,
        expires_at: created_at + 60,
        status: crate::push::Status::Pending,
        method: super::methods::Method::Push,
    };
    let day = 86_400;
    state.store.add_signin(&signin("si_old_decided", 10), None, None).await.unwrap();
    assert!(state.store.decide("si_old_decided", &crate::push::Status::Approved, "dev", 20).await.unwrap());
    state.store.add_signin(&signin("si_old_expired", 10), None, None).await.unwrap();
    state.store.add_signin(&signin("si_recent", 100 * day), None, None).await.unwrap();
    let (old_activation, _) = state.store.create_activation("judy", 10).await.unwrap();
    let (recent_activation, _) = state.store.create_activation("judy", 100 * day).await.unwrap();
    assert_eq!(state.store.prune(90 * day).await.unwrap(), 3, "two old sign-ins and one old activation");
    assert!(state.store.signin("si_old_decided").await.unwrap().is_none());
    assert!(state.store.signin("si_old_expired").await.unwrap().is_none());
    assert!(state.store.signin("si_recent").await.unwrap().is_some());
    let left: Vec<String> = state.store.activations("judy", 100 * day).await.unwrap().into_iter().map(|a| a.id).collect();
    assert_ne!(old_activation, recent_activation);
    assert_eq!(left, [recent_activation]);
}

#[tokio::test]
async fn a_backup_is_a_consistent_private_copy_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir).await;
    assert!(state.store.add_user("kate", "Contoso", now()).await.unwrap());
    let copy = dir.path().join("copy.sqlite3");
    state.store.backup(&copy).await.unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let restored = Store::connect(&Database::Sqlite(copy.clone()), 1).await.unwrap();
    assert!(restored.user_exists("kate").await.unwrap());
    let before = std::fs::read(&copy).unwrap();
    assert!(state.store.backup(&copy).await.is_err(), "an existing file is not overwritten");
    assert_eq!(std::fs::read(&copy).unwrap(), before);
}

#[tokio::test]
async fn metrics_and_readiness_are_served_and_metrics_need_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let metrics_token = "metrics-token-for-oneshot";
    let state = state_with(&dir, Config { metrics_token: Some(metrics_token.into()), ..Config::default() }).await;
    let get = |path: &str, token: &str| Request::get(path).header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap();
    let response = app(state.clone()).oneshot(get("/metrics", RP)).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "the relying party's token does not read metrics");
    for token in [metrics_token, ADMIN] {
        let response = app(state.clone()).oneshot(get("/metrics", token)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains("countersign_connected_devices 0"), "{text}");
    }
    let response = app(state.clone()).oneshot(Request::get("/readyz").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn texts_calls_and_codes_never_reach_devices_and_devices_cannot_answer_them() {
    let dir = tempfile::tempdir().unwrap();
    // A development server: the log provider sends texts and calls.
    let state = state(&dir).await;
    assert!(state.store.add_user("pat", "Contoso", now()).await.unwrap());
    let key = Keypair::generate().unwrap();
    let device = state.store.add_device("pat", &key.public(), None, "laptop", now()).await.unwrap();
    let phone = PhoneRequest { number: "+41 44 668 18 00".into(), country: None, extension: None };
    set_phone(&state, "pat", "authentication", &phone).await.unwrap();
    let mut session = state.hub.connect(&device, "pat");
    for method in ["sms", "voice", "code"] {
        let request = api::SigninRequest { user: "pat".into(), method: Some(method.into()), ..Default::default() };
        let created = create_signin(&state, request).await.unwrap();
        assert!(session.try_recv().is_err(), "a {method} sign-in reached the device");
        let envelope = crate::push::sign_response(&key, &device, &created.id, crate::push::Decision::Approve, None, false, now());
        let answer = ws::respond(&state, IpAddr::from([127, 0, 0, 1]), &device, "pat", &key.public(), &envelope).await;
        assert!(matches!(answer, crate::push::ServerMessage::Result { accepted: false, .. }), "{method}: {answer:?}");
        assert_eq!(state.store.signin(&created.id).await.unwrap().unwrap().status, crate::push::Status::Pending, "{method}");
    }
    assert!(state.store.pending("pat", now()).await.unwrap().is_empty(), "nothing for a device that connects later");
    // A push still does.
    create_signin(&state, api::SigninRequest { user: "pat".into(), ..Default::default() }).await.unwrap();
    assert!(matches!(session.try_recv(), Ok(hub::Queued::Message(_))));
}

/// Guesses sent at once share a sign-in's 5 attempts: each spends one
/// before its code is compared, and none is left for a sixth.
#[tokio::test]
async fn a_sign_in_gives_five_attempts_at_its_code_however_they_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir).await;
    assert!(state.store.add_user("quinn", "Contoso", now()).await.unwrap());
    let signin = store::Signin {
        id: "si_guessed".into(),
        user: "quinn".into(),
        app: "a".into(),
        ip: String::new(),
        location: String::new(),
        number: None,
        pin_required: false,
        created_at: now(),
        expires_at: now() + 300,
        status: crate::push::Status::Pending,
        method: methods::Method::Sms,
    };
    state.store.add_signin(&signin, Some("hash"), None).await.unwrap();
    let spent: Vec<Option<i64>> = futures_util::future::join_all((0..8).map(|_| state.store.use_code_attempt("si_guessed", 5, now())))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut granted: Vec<i64> = spent.iter().flatten().copied().collect();
    granted.sort_unstable();
    assert_eq!(granted, [1, 2, 3, 4, 5], "{spent:?}");
    assert!(state.store.use_code_attempt("si_guessed", 5, now()).await.unwrap().is_none());
}

/// A device answers its phone (virtual) through a session of either kind
/// (a text's code is sealed to its key), with its key for the sealing, and
/// only while the number is still its user's: removed and set again, the
/// old attachment is gone.
#[tokio::test]
async fn a_phone_is_answered_by_connected_devices_while_the_number_is_the_users() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir).await;
    assert!(state.store.add_user("ada", "Contoso", now()).await.unwrap());
    let key = Keypair::generate().unwrap().public();
    let device = state.store.add_device("ada", &key, None, "laptop", now()).await.unwrap();
    let phone = PhoneRequest { number: "+41 44 668 18 00".into(), country: None, extension: None };
    set_phone(&state, "ada", "authentication", &phone).await.unwrap();
    assert!(state.store.attach_phone(&device, "+41446681800", now()).await.unwrap());
    assert!(!state.store.attach_phone(&device, "+12015550123", now()).await.unwrap(), "not ada's");
    state.store.heartbeat(&state.instance, now(), now() - cluster::STALE).await.unwrap();
    let alive = now() - cluster::STALE;
    assert!(state.store.phone_devices("ada", "+41446681800", alive).await.unwrap().is_empty(), "not connected");
    state.store.session_opened("s_listen", &state.instance, &device, true, now()).await.unwrap();
    assert_eq!(state.store.phone_devices("ada", "+41446681800", alive).await.unwrap(), [(device.clone(), key)], "a receive-only session");
    state.store.session_opened("s_device", &state.instance, &device, false, now()).await.unwrap();
    assert_eq!(state.store.phone_devices("ada", "+41446681800", alive).await.unwrap(), [(device.clone(), key)], "once for two sessions");
    assert!(state.store.phone_devices("bob", "+41446681800", alive).await.unwrap().is_empty(), "another user's sign-in");
    assert!(state.store.remove_phone("ada", phones::Kind::Authentication).await.unwrap());
    set_phone(&state, "ada", "authentication", &phone).await.unwrap();
    assert!(state.store.phone_numbers_of(&device).await.unwrap().is_empty());
    assert!(state.store.phone_devices("ada", "+41446681800", alive).await.unwrap().is_empty());
}

/// The pages ask for no password: with a real gateway they would text or
/// call any number for anyone (and run up its bill). They offer neither.
#[tokio::test]
async fn the_pages_never_text_or_call_through_a_real_gateway() {
    let dir = tempfile::tempdir().unwrap();
    // Nobody listens there: an attempt would fail with 502 (none is made).
    let phone = serde_json::from_value(json!({ "provider": "http", "http": { "url": "http://127.0.0.1:9/send", "retries": 0 } })).unwrap();
    let state = state_with(&dir, Config { phone, ..Config::default() }).await;
    assert!(state.store.add_user("eve", "Contoso", now()).await.unwrap());
    let number = PhoneRequest { number: "+41 44 668 18 00".into(), country: None, extension: None };
    set_phone(&state, "eve", "authentication", &number).await.unwrap();
    state.store.set_preferred_method("eve", Some(methods::Method::Sms)).await.unwrap();
    let token = form_token(&state).await;
    let html = |path: &'static str, body: String| {
        let state = state.clone();
        async move {
            let (status, page) = page_html(&state, form_post(path, body)).await;
            assert_eq!(status, StatusCode::OK);
            page
        }
    };
    // Contact me by eve's default (a text), or asked for a call.
    for body in [format!("user=eve&csrf={token}"), format!("user=eve&method=voice&csrf={token}")] {
        let page = html("/demo/push", body).await;
        assert!(page.contains("only to virtual phones"), "{page}");
    }
    // Step 1 with a phone, and Step 2's Contact me by text.
    let page = html("/enroll", format!("user=frank&contact=authentication&number=%2B41446681800&csrf={token}")).await;
    assert!(page.contains("only to virtual phones"), "{page}");
    assert!(!state.store.user_exists("frank").await.unwrap(), "nothing was stored");
    // Step 2's Contact me, by text or by eve's default (a text).
    let ticket = pages::ticket(&state, "eve");
    for method in ["sms", ""] {
        let page = html("/enroll/contact", format!("user=eve&method={method}&ticket={ticket}&csrf={token}")).await;
        assert!(page.contains("only to virtual phones"), "{method}: {page}");
    }
}

/// Step 3's grant comes only from a check started with the ticket Step 1
/// gave for that user: never from a relying party's sign-in, however it is
/// named, nor from a ticket for someone else.
#[tokio::test]
async fn step_3_needs_the_ticket_of_step_1_for_that_user() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir).await;
    for user in ["gil", "hal"] {
        assert!(state.store.add_user(user, "Contoso", now()).await.unwrap());
    }
    // A relying party names its sign-in as the wizard does; it is approved.
    let request = api::SigninRequest { user: "gil".into(), app: "Countersign enrollment".into(), ..Default::default() };
    let created = create_signin(&state, request).await.unwrap();
    let signin = state.store.signin(&created.id).await.unwrap().unwrap();
    assert!(api::record(&state, &signin, "dev_x", crate::push::Status::Approved).await.unwrap());
    let done = |ticket: String| {
        let (state, id) = (state.clone(), created.id.clone());
        async move {
            let request = page_request("GET", &format!("/enroll/done/{id}?ticket={ticket}"), "127.0.0.1:8750").body(Body::empty()).unwrap();
            page_html(&state, request).await.1
        }
    };
    for ticket in [String::new(), pages::ticket(&state, "hal"), "9999999999.00".into()] {
        let page = done(ticket).await;
        assert!(page.contains("was not approved") && !page.contains("Step 3"), "{page}");
    }
    // With gil's own ticket (whoever passed Step 1 for gil): Step 3.
    assert!(done(pages::ticket(&state, "gil")).await.contains("Step 3: Keep using your existing applications"));

    // Contact me without a ticket, and Step 1 for a user who has a phone.
    let token = form_token(&state).await;
    let post_form = |path: &'static str, body: String| {
        let state = state.clone();
        async move { page_html(&state, form_post(path, body)).await.1 }
    };
    let page = post_form("/enroll/contact", format!("user=gil&method=push&csrf={token}")).await;
    assert!(page.contains("start again at Step 1"), "{page}");
    let number = PhoneRequest { number: "+41 44 668 18 00".into(), country: None, extension: None };
    set_phone(&state, "hal", "authentication", &number).await.unwrap();
    let page = post_form("/enroll", format!("user=hal&contact=app&csrf={token}")).await;
    assert!(page.contains("hal already has a phone"), "{page}");
    // An app-password form whose grant is over is an expired form, not a wrong code.
    let page = post_form("/app-passwords", format!("user=gil&name=Mail&grant=1.00&csrf={token}")).await;
    assert!(page.contains("This form has expired"), "{page}");
}
