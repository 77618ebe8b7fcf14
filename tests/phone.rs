//! Sign-ins by text message and by call, against the real server and a
//! phone gateway this test runs on 127.0.0.1 that records every request
//! and answers as told (a status, or silence past the timeout).

#![cfg(all(feature = "server", feature = "client", feature = "cli"))]

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use common::server::{ADMIN, RP, Server, next_text_or_call};
use countersign::push::PhoneAction;
use countersign::push::client::{Event, Session};
use serde_json::{Value, json};

/// One request as the gateway got it.
#[derive(Debug, Clone)]
struct Received {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
}

/// How the gateway answers the next request; after the queue, 200.
#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    /// No answer for this long, then 200.
    Silence(Duration),
}

#[derive(Clone, Default)]
struct Gateway {
    received: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<Answer>>>,
}

impl Gateway {
    /// Listens on a free loopback port: the gateway and its URL.
    async fn start() -> (Gateway, String) {
        let gateway = Gateway::default();
        let app = axum::Router::new().fallback(record).with_state(gateway.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (gateway, url)
    }

    fn answer(&self, answers: &[Answer]) {
        self.answers.lock().unwrap().extend(answers.iter().copied());
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn last(&self) -> Received {
        self.received().pop().expect("a request reached the gateway")
    }
}

async fn record(State(gateway): State<Gateway>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    gateway.received.lock().unwrap().push(Received { method, uri, headers, body: String::from_utf8_lossy(&body).into_owned() });
    let answer = gateway.answers.lock().unwrap().pop_front();
    match answer {
        Some(Answer::Status(status)) => StatusCode::from_u16(status).unwrap(),
        Some(Answer::Silence(long)) => {
            tokio::time::sleep(long).await;
            StatusCode::OK
        }
        None => StatusCode::OK,
    }
}

/// A server whose phone provider is the gateway at `url`, configured by
/// `http` (a `[phone.http]` table's lines), with `extra` flags.
fn server_with_gateway(dir: &std::path::Path, url: &str, http: &str, extra: &[&str]) -> Server {
    let config = dir.join("server.toml");
    std::fs::write(&config, format!("[phone]\nprovider = \"http\"\n[phone.http]\nurl = \"{url}/send?sign-in={{id}}\"\n{http}\n")).unwrap();
    let mut flags = vec!["--config", config.to_str().unwrap()];
    flags.extend_from_slice(extra);
    Server::start(dir, &flags)
}

/// A user with an authentication phone (and an office phone with an extension).
async fn user_with_phones(server: &Server, user: &str) {
    assert_eq!(server.post("/api/admin/users", ADMIN, json!({ "name": user, "organization": "Contoso" })).await.0, 201);
    for (kind, body) in [
        ("authentication", json!({ "number": "+41 44 668 18 00" })),
        ("office", json!({ "number": "+1 201 555 0123", "extension": "4711" })),
    ] {
        let response = reqwest::Client::new()
            .put(format!("{}/api/admin/users/{user}/phones/{kind}", server.base))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
}

/// The six digits in a text.
fn code_in(text: &str) -> String {
    let digits: String = text.chars().filter(char::is_ascii_digit).take(6).collect();
    assert_eq!(digits.len(), 6, "no code in {text:?}");
    digits
}

async fn type_code(server: &Server, id: &str, code: &str) -> Value {
    let (status, verdict) = server.post(&format!("/api/signins/{id}/code"), RP, json!({ "code": code })).await;
    assert_eq!(status, 200, "{verdict}");
    verdict
}

#[tokio::test]
async fn a_text_goes_through_the_http_gateway_as_templated_and_its_code_approves_once() {
    let dir = tempfile::tempdir().unwrap();
    let (gateway, url) = Gateway::start().await;
    let server = server_with_gateway(dir.path(), &url, "headers = { Authorization = \"Bearer gateway-key\" }", &[]);
    user_with_phones(&server, "kim").await;

    let (status, created) =
        server.post("/api/signins", RP, json!({ "user": "kim", "method": "sms", "app": "Contoso \"VPN\"", "location": "Zurich" })).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!((created["method"].as_str(), created["delivered"].as_u64()), (Some("sms"), Some(1)));
    assert_eq!(created["methods"], json!(["sms", "voice"]), "kim has phones and no device");
    assert_eq!(created["number"], Value::Null, "number matching is for pushes");
    let id = created["id"].as_str().unwrap();

    // Exactly what the template says, values JSON-escaped, the header sent.
    let sent = gateway.last();
    assert_eq!(sent.method, Method::POST);
    assert_eq!(sent.uri.to_string(), format!("/send?sign-in={id}"));
    assert_eq!(sent.headers["authorization"], "Bearer gateway-key");
    assert_eq!(sent.headers["content-type"], "application/json");
    let body: Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(body["to"], "+41446681800");
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("is your Contoso verification code"), "{text}");
    let code = code_in(text);
    assert_eq!(gateway.received().len(), 1);

    // A wrong code counts; the right one approves, once.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let verdict = type_code(&server, id, wrong).await;
    assert_eq!(
        (verdict["valid"].as_bool(), verdict["status"].as_str(), verdict["attempts_left"].as_u64()),
        (Some(false), Some("pending"), Some(4))
    );
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    let verdict = type_code(&server, id, &spaced).await;
    assert_eq!((verdict["valid"].as_bool(), verdict["status"].as_str()), (Some(true), Some("approved")), "{verdict}");
    assert_eq!(server.status(id, 0).await, "approved");
    let again = type_code(&server, id, &code).await;
    assert_eq!((again["valid"].as_bool(), again["status"].as_str()), (Some(false), Some("approved")));

    // A code is good for its own sign-in only, and five wrong ones deny it.
    let (_, second) = server.post("/api/signins", RP, json!({ "user": "kim", "method": "sms" })).await;
    let second = second["id"].as_str().unwrap().to_owned();
    let second_code = code_in(serde_json::from_str::<Value>(&gateway.last().body).unwrap()["text"].as_str().unwrap());
    let (_, third) = server.post("/api/signins", RP, json!({ "user": "kim", "method": "sms" })).await;
    let third = third["id"].as_str().unwrap().to_owned();
    if second_code != code_in(serde_json::from_str::<Value>(&gateway.last().body).unwrap()["text"].as_str().unwrap()) {
        assert_eq!(type_code(&server, &third, &second_code).await["valid"], false, "another sign-in's code");
    }
    let wrong = if second_code == "000000" { "111111" } else { "000000" };
    for left in (0..5).rev() {
        let verdict = type_code(&server, &second, wrong).await;
        assert_eq!(verdict["attempts_left"].as_u64(), Some(left), "{verdict}");
    }
    assert_eq!(server.status(&second, 0).await, "denied");
    assert_eq!(type_code(&server, &second, &second_code).await["valid"], false, "the right code after five wrong ones");

    // The codes never reach the server's log (read once the last wrong
    // code's refusal is in it); the relying party's token is needed.
    server.wait_for_log(&format!("a wrong code for sign-in {second}"));
    assert!(!server.log().contains(&code) && !server.log().contains(&second_code), "{}", server.log());
    let (status, _) = server.post(&format!("/api/signins/{third}/code"), ADMIN, json!({ "code": "123456" })).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn gateway_errors_are_retried_timed_out_and_refused_with_why_but_never_the_code() {
    let dir = tempfile::tempdir().unwrap();
    let (gateway, url) = Gateway::start().await;
    let server = server_with_gateway(dir.path(), &url, "timeout_seconds = 1\nretries = 2", &[]);
    // One user per case: each may get 3 texts or calls a minute.
    let sms = |user: &'static str| {
        let server = &server;
        async move {
            user_with_phones(server, user).await;
            server.post("/api/signins", RP, json!({ "user": user, "method": "sms" })).await
        }
    };

    // Two failures, then the gateway takes it: three requests, one text,
    // all with the same idempotency key.
    gateway.answer(&[Answer::Status(500), Answer::Status(429)]);
    let (status, created) = sms("lou").await;
    assert_eq!(status, 201, "{created}");
    let received = gateway.received();
    assert_eq!(received.len(), 3);
    assert!(received.windows(2).all(|pair| pair[0].body == pair[1].body), "each retry sends the same text");
    let key = format!("{}-text", created["id"].as_str().unwrap());
    assert!(received.iter().all(|request| request.headers["idempotency-key"] == key.as_str()));

    // Failing every time: 502 saying so; nothing retried after a 4xx.
    gateway.answer(&[Answer::Status(503); 3]);
    let (status, refused) = sms("lea").await;
    assert_eq!((status, refused["error"].as_str()), (502, Some("phone_gateway")), "{refused}");
    assert_eq!(refused["message"], "the phone gateway answered HTTP 503 (3 attempts)");
    assert_eq!(gateway.received().len(), 6);
    gateway.answer(&[Answer::Status(400)]);
    let (status, refused) = sms("liv").await;
    assert_eq!(status, 502);
    assert_eq!(refused["message"], "the phone gateway answered HTTP 400 (1 attempt)");
    assert_eq!(gateway.received().len(), 7);

    // Silence past the timeout: each attempt is cut at 1 s. A text is sent
    // again; a call is not (the gateway may have placed it: it would ring twice).
    gateway.answer(&[Answer::Silence(Duration::from_secs(3)); 3]);
    let (status, refused) = sms("lia").await;
    assert_eq!(status, 502);
    assert_eq!(refused["message"], "the phone gateway did not answer within 1 s (3 attempts)");
    gateway.answer(&[Answer::Silence(Duration::from_secs(3))]);
    user_with_phones(&server, "lux").await;
    let (status, refused) = server.post("/api/signins", RP, json!({ "user": "lux", "method": "voice" })).await;
    assert_eq!(status, 502);
    assert_eq!(refused["message"], "the phone gateway did not answer within 1 s (1 attempt)");

    // A gateway that is gone.
    drop(gateway);
    let closed = format!("http://127.0.0.1:{}", common::server::free_port());
    let dir2 = tempfile::tempdir().unwrap();
    let server2 = server_with_gateway(dir2.path(), &closed, "retries = 0", &[]);
    user_with_phones(&server2, "lou").await;
    let (status, refused) = server2.post("/api/signins", RP, json!({ "user": "lou", "method": "sms" })).await;
    assert_eq!(status, 502);
    assert_eq!(refused["message"], "the phone gateway could not be reached: connection refused or unreachable (1 attempt)");

    // What was logged says why and which sign-in, never a code.
    server.wait_for_log("did not answer within 1 s (1 attempt)");
    let log = server.log();
    assert!(log.contains("phone gateway: a text for si_") && log.contains("HTTP 503"), "{log}");
    for line in log.lines().filter(|line| line.contains("phone gateway")) {
        assert!(!line.contains("verification code") && !line.contains("/send"), "{line}");
    }
}

/// Posts what a voice gateway posts back: the call's callback URL with form fields.
async fn call_back(callback: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new().post(callback).form(form).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

/// What the gateway was asked to do, as form fields.
fn form_of(request: &Received) -> std::collections::HashMap<String, String> {
    form_urlencoded::parse(request.body.as_bytes()).into_owned().collect()
}

#[tokio::test]
async fn calls_are_approved_with_pound_reported_with_zero_and_denied_by_hanging_up_or_silence() {
    let dir = tempfile::tempdir().unwrap();
    let (gateway, url) = Gateway::start().await;
    let http = "content_type = \"application/x-www-form-urlencoded\"\ncall_body = \"To={to}&Ext={extension}&Say={text}&Action={callback}\"";
    let server = server_with_gateway(dir.path(), &url, http, &[]);
    user_with_phones(&server, "max").await;
    user_with_phones(&server, "mia").await;
    let call = |user: &'static str, phone: Option<&str>| {
        let mut body = json!({ "user": user, "method": "voice", "app": "Payroll", "location": "Bern" });
        if let Some(phone) = phone {
            body["phone"] = json!(phone);
        }
        let server = &server;
        let gateway = gateway.clone();
        async move {
            let (status, created) = server.post("/api/signins", RP, body).await;
            assert_eq!(status, 201, "{created}");
            (created["id"].as_str().unwrap().to_owned(), form_of(&gateway.last()))
        }
    };

    // The call says where the sign-in comes from; # approves it.
    let (id, form) = call("max", None).await;
    assert_eq!((form["To"].as_str(), form["Ext"].as_str()), ("+41446681800", ""));
    let say = &form["Say"];
    assert!(say.contains("signing in to Payroll as max from Bern") && say.contains("press the pound key"), "{say}");
    let callback = &form["Action"];
    assert!(callback.starts_with(&format!("{}/api/phone/calls/{id}?token=", server.base)), "{callback}");
    // Another key keeps the call listening; then #.
    let (status, reply) = call_back(callback, &[("Digits", "5")]).await;
    assert_eq!((status, reply["status"].as_str(), reply["listen"].as_bool()), (200, Some("pending"), Some(true)), "{reply}");
    let (status, reply) = call_back(callback, &[("Digits", "#")]).await;
    assert_eq!((status, reply["status"].as_str(), reply["listen"].as_bool()), (200, Some("approved"), Some(false)), "{reply}");
    assert_eq!(server.status(&id, 0).await, "approved");
    let (_, reply) = call_back(callback, &[("CallStatus", "completed")]).await;
    assert_eq!(reply["status"], "approved", "hanging up after answering changes nothing");

    // A wrong token, one of another call, or one in the body only, learns
    // nothing and decides nothing.
    let (other, other_form) = call("max", Some("office")).await;
    assert_eq!((other_form["To"].as_str(), other_form["Ext"].as_str()), ("+12015550123", "4711"));
    let stolen = callback.replace(&id, &other);
    assert_eq!(call_back(&stolen, &[("Digits", "#")]).await.0, 404);
    let forged = format!("{}/api/phone/calls/{other}?token=00", server.base);
    assert_eq!(call_back(&forged, &[("Digits", "#")]).await.0, 404);
    let token = other_form["Action"].rsplit('=').next().unwrap().to_owned();
    let in_body = format!("{}/api/phone/calls/{other}", server.base);
    assert_eq!(call_back(&in_body, &[("token", &token), ("Digits", "#")]).await.0, 404);
    assert_eq!(server.status(&other, 0).await, "pending");
    // The relying party cannot answer a call with a code.
    let (status, _) = server.post(&format!("/api/signins/{other}/code"), RP, json!({ "code": "123456" })).await;
    assert_eq!(status, 409);

    // Hanging up (or no answer) denies.
    let (_, reply) = call_back(&other_form["Action"], &[("CallStatus", "no-answer")]).await;
    assert_eq!(reply["status"], "denied");
    assert_eq!(server.status(&other, 0).await, "denied");

    // 0# reports it: the user is blocked from further texts and calls.
    let (reported, form) = call("mia", None).await;
    let (_, reply) = call_back(&form["Action"], &[("Digits", "0#")]).await;
    assert_eq!(reply["status"], "reported", "{reply}");
    let (status, blocked) = server.post("/api/signins", RP, json!({ "user": "mia", "method": "sms" })).await;
    assert_eq!((status, blocked["error"].as_str()), (403, Some("blocked")), "{blocked}");
    assert_eq!(server.status(&reported, 0).await, "reported");
    // The log has the sign-ins, not the tokens.
    let token = callback.rsplit('=').next().unwrap();
    assert!(!server.log().contains(token));

    // Nothing pressed: the call's sign-in is denied once the challenge time
    // is over (a server of its own, with 2 s).
    let short = tempfile::tempdir().unwrap();
    let server = server_with_gateway(short.path(), &url, http, &["--challenge-seconds", "2"]);
    user_with_phones(&server, "max").await;
    let (status, silent) = server.post("/api/signins", RP, json!({ "user": "max", "method": "voice" })).await;
    assert_eq!(status, 201, "{silent}");
    let silent = silent["id"].as_str().unwrap();
    assert_eq!(server.status(silent, 15).await, "denied");
    let (_, reply) = call_back(&form_of(&gateway.last())["Action"], &[("Digits", "#")]).await;
    assert_eq!(reply["status"], "denied", "# after the time approves nothing: {reply}");
    assert!(reply["say"].as_str().unwrap().contains("not answered in time"), "{reply}");
}

#[tokio::test]
async fn the_default_method_is_the_users_choice_and_the_others_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    // A development server: the log provider, the phone being the log.
    let server = Server::start(dir.path(), &[]);
    user_with_phones(&server, "ned").await;
    let methods = |body: Value| body["methods"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_owned()).collect::<Vec<_>>();

    let listed = server.get_with("/api/admin/users/ned/methods", ADMIN).await;
    assert_eq!((listed["preferred"].clone(), listed["default"].as_str()), (Value::Null, Some("sms")), "{listed}");
    assert_eq!(methods(listed), ["sms", "voice"]);
    let (status, created) = server.post("/api/signins", RP, json!({ "user": "ned" })).await;
    assert_eq!((status, created["method"].as_str()), (201, Some("sms")), "{created}");
    server.wait_for_log(&format!("phone (log provider): a text for {} to +41446681800: ", created["id"].as_str().unwrap()));

    // Set by the admin; a method the user lacks is refused.
    let put = |method: Value| {
        let request = reqwest::Client::new()
            .put(format!("{}/api/admin/users/ned/methods", server.base))
            .bearer_auth(ADMIN)
            .json(&json!({ "method": method }));
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, set) = put(json!("voice")).await;
    assert_eq!((status, set["preferred"].as_str(), set["default"].as_str()), (200, Some("voice"), Some("voice")), "{set}");
    let (status, created) = server.post("/api/signins", RP, json!({ "user": "ned", "method": "default" })).await;
    assert_eq!((status, created["method"].as_str()), (201, Some("voice")), "{created}");
    // Texts and calls: 3 per user a minute (a looping relying party, or SMS pumping).
    let (status, _) = server.post("/api/signins", RP, json!({ "user": "ned", "method": "sms" })).await;
    assert_eq!(status, 201);
    let (status, refused) = server.post("/api/signins", RP, json!({ "user": "ned", "method": "sms" })).await;
    assert_eq!((status, refused["error"].as_str()), (429, Some("rate_limited")), "{refused}");
    let (status, refused) = put(json!("push")).await;
    assert_eq!(status, 409, "{refused}");
    let (status, refused) = put(json!("carrier pigeon")).await;
    assert_eq!((status, refused["error"].as_str()), (400, Some("bad_request")));

    // Once ned has a device, pushes and codes are offered first.
    let _device = server.device("ned").await;
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_countersign-server"))
        .args(["--database", server.database.to_str().unwrap(), "user", "method", "ned"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&cli.stdout).trim(), "ned signs in by voice by default (chosen); methods: push, code, sms, voice.");
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_countersign-server"))
        .args(["--database", server.database.to_str().unwrap(), "user", "method", "ned", "default"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&cli.stdout).trim(),
        "ned signs in by push by default (the first they have); methods: push, code, sms, voice."
    );

    // A code sign-in is approved by a code from the app.
    let (status, created) = server.post("/api/signins", RP, json!({ "user": "ned", "method": "code" })).await;
    assert_eq!((status, created["delivered"].as_u64()), (201, Some(0)), "{created}");
    let verdict = type_code(&server, created["id"].as_str().unwrap(), "000000").await;
    assert_eq!(verdict["valid"], false);

    // A method by name that the user lacks, or that is not one.
    server.delete("/api/admin/users/ned/phones/authentication", ADMIN).await;
    let (status, refused) = server.post("/api/signins", RP, json!({ "user": "ned", "method": "sms" })).await;
    assert_eq!(status, 409);
    assert_eq!(refused["message"], "ned cannot sign in by sms: ned has no authentication phone");
    let (status, _) = server.post("/api/signins", RP, json!({ "user": "ned", "method": "fax" })).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_public_server_has_no_phone_provider_unless_configured() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--public-url", "https://mfa.example"]);
    user_with_phones(&server, "oda").await;
    let (status, refused) = server.post("/api/signins", RP, json!({ "user": "oda", "method": "sms" })).await;
    assert_eq!(status, 409, "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("no phone provider is configured"), "{refused}");
    assert_eq!(server.get_with("/api/admin/users/oda/methods", ADMIN).await["methods"], json!([]));
}

#[tokio::test]
async fn a_virtual_phone_gets_signed_texts_and_calls_and_answers_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::with_virtual_phones(dir.path(), &[]);
    user_with_phones(&server, "vera").await;
    let (link, listener) = server.device_with_listener("vera").await;
    let mut phone = Session::connect(&link, jiff::Timestamp::now).await.unwrap();

    // Nobody answers for the number yet: the gateway error, the sign-in denied.
    let (status, refused) = server.post("/api/signins", RP, json!({ "user": "vera", "method": "sms" })).await;
    assert_eq!(status, 502, "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("countersign phone attach"), "{refused}");

    // Any form of the number; the answer lists it in E.164.
    assert_eq!(phone.phone("+41 (0)44 668 18 00", true).await.unwrap(), ["+41446681800"]);
    assert_eq!(phone.phone("+1 201-555-0123", true).await.unwrap(), ["+12015550123", "+41446681800"]);
    // A receive-only session (the window while locked) gets the text too,
    // but what it says is sealed to the device key: the listener key
    // cannot read the code.
    let mut locked = Session::listen(&listener, jiff::Timestamp::now).await.unwrap();
    // A session learns the numbers its device answers for as it opens.
    assert_eq!(locked.phones(), Some(&["+12015550123".to_owned(), "+41446681800".to_owned()][..]));

    let (status, created) = server.post("/api/signins", RP, json!({ "user": "vera", "method": "sms", "app": "Contoso VPN" })).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let Event::Text(text) = next_text_or_call(&mut phone).await else { panic!("expected a text") };
    assert_eq!((text.id.as_str(), text.to.as_str(), text.device_id.as_str()), (id, "+41446681800", link.device_id.as_str()));
    let body = text.open(&link.device_key).unwrap();
    assert_eq!(body.code, code_in(&body.text), "the code is the one the message says");
    assert!(!serde_json::to_string(&text).unwrap().contains(&body.code), "the code travels sealed");
    assert_eq!(text.expires_at, created["expires_at"].as_i64().unwrap());
    let Event::Text(seen_locked) = next_text_or_call(&mut locked).await else { panic!("expected a text") };
    assert_eq!(seen_locked.id, id);
    assert!(seen_locked.open(&listener.key).is_err(), "the listener key opens no text");
    // It signs nothing itself…
    for refused in [
        locked.reply(id, &body.code).await.unwrap_err(),
        locked.keys(id, "#", false).await.unwrap_err(),
        locked.phone("+41446681800", true).await.map(|_| ()).unwrap_err(),
    ] {
        assert!(refused.to_string().contains("a receive-only session cannot sign"), "{refused}");
    }
    // …and what it relays counts only when the device key signed it, just now.
    let now = countersign::server::now();
    let forged = listener.key.seal(
        countersign::push::protocol::PHONE_CONTEXT,
        &countersign::push::PhoneRequest {
            v: 1,
            device_id: link.device_id.clone(),
            action: PhoneAction::Reply { id: id.to_owned(), text: body.code.clone() },
            at: now,
        },
    );
    let stale = link.sign_phone(PhoneAction::Reply { id: id.to_owned(), text: body.code.clone() }, now - 600);
    locked.send_signed_phone(stale).await.unwrap();
    let (accepted, _, reason) = locked.verdict(id).await.unwrap();
    assert!(!accepted && reason.contains("not made just now"), "{reason}");
    let future = link.sign_phone(PhoneAction::Reply { id: id.to_owned(), text: body.code.clone() }, now + 600);
    locked.send_signed_phone(future).await.unwrap();
    let (accepted, _, reason) = locked.verdict(id).await.unwrap();
    assert!(!accepted && reason.contains("not made just now"), "dated ahead: {reason}");
    let signed = |request: countersign::push::PhoneRequest| link.device_key.seal(countersign::push::protocol::PHONE_CONTEXT, &request);
    let request = |device_id: &str, v: u32| countersign::push::PhoneRequest {
        v,
        device_id: device_id.to_owned(),
        action: PhoneAction::Reply { id: id.to_owned(), text: body.code.clone() },
        at: now,
    };
    for (envelope, why) in [
        (forged, "the signature does not verify"),
        (signed(request("dev_someone_else", 1)), "it is not for this device"),
        (signed(request(&link.device_id, 2)), "it is not for this device"),
    ] {
        locked.send_signed_phone(envelope).await.unwrap();
        let refused = locked.next().await.unwrap_err();
        assert!(refused.to_string().contains(&format!("phone request refused: {why}")), "{refused}");
        locked = Session::listen(&listener, jiff::Timestamp::now).await.unwrap();
    }
    assert_eq!(server.status(id, 0).await, "pending");

    // A wrong reply spends an attempt; the right one approves, once.
    let wrong = if body.code == "000000" { "111111" } else { "000000" };
    let (accepted, status, reason) = phone.reply(id, wrong).await.unwrap();
    assert_eq!((accepted, status.as_str()), (false, "pending"), "{reason}");
    assert!(reason.contains("4 more tries"), "{reason}");
    // The right one, signed while unlocked and relayed by the locked
    // window's session, approves.
    locked.send_signed_phone(link.sign_phone(PhoneAction::Reply { id: id.to_owned(), text: body.code.clone() }, now)).await.unwrap();
    assert!(locked.verdict(id).await.unwrap().0);
    assert_eq!(server.status(id, 0).await, "approved");
    // The device's other session is told, so the text leaves every screen.
    let (accepted, status, reason) = phone.verdict(id).await.unwrap();
    assert_eq!((accepted, status.as_str(), reason.as_str()), (true, "approved", "its code was used"));
    let (accepted, status, _) = phone.reply(id, &body.code).await.unwrap();
    assert_eq!((accepted, status.as_str()), (false, "approved"), "used once");
}

/// A user with phones and a device answering for both, connected (each
/// user may be texted or called 3 times a minute).
async fn phone_of(server: &Server, user: &str) -> Session {
    user_with_phones(server, user).await;
    let link = server.device(user).await;
    let mut phone = Session::connect(&link, jiff::Timestamp::now).await.unwrap();
    assert_eq!(phone.phone("+41446681800", true).await.unwrap().len(), 1);
    assert_eq!(phone.phone("+12015550123", true).await.unwrap().len(), 2);
    phone
}

/// Calls `user`'s `which` phone: the sign-in's id, after checking the call came.
async fn call(server: &Server, phone: &mut Session, user: &str, which: &str) -> String {
    let (status, created) =
        server.post("/api/signins", RP, json!({ "user": user, "method": "voice", "phone": which, "app": "Contoso VPN" })).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let Event::Call(call) = next_text_or_call(phone).await else { panic!("expected a call") };
    let (to, extension) = if which == "office" { ("+12015550123", "4711") } else { ("+41446681800", "") };
    assert_eq!((call.id.as_str(), call.to.as_str(), call.extension.as_str()), (id.as_str(), to, extension));
    assert!(call.say.contains("Contoso VPN") && call.say.contains("pound"), "{}", call.say);
    // Other keys decide nothing: the call asks again.
    let (accepted, status, say) = phone.keys(&id, "5", false).await.unwrap();
    assert_eq!((accepted, status.as_str()), (false, "pending"));
    assert!(say.contains("Press the pound key"), "{say}");
    id
}

#[tokio::test]
async fn a_virtual_phone_answers_calls_with_pound_reports_with_zero_and_denies_by_hanging_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::with_virtual_phones(dir.path(), &[]);
    let mut phone = phone_of(&server, "vic").await;
    let id = call(&server, &mut phone, "vic", "office").await;
    let (accepted, status, say) = phone.keys(&id, "#", false).await.unwrap();
    assert_eq!((accepted, status.as_str()), (true, "approved"), "{say}");
    assert!(say.contains("You are signed in"), "{say}");
    assert_eq!(server.status(&id, 0).await, "approved");
    // Every session of the user's devices is told, this one too.
    let (accepted, status, reason) = phone.verdict(&id).await.unwrap();
    assert_eq!((accepted, status.as_str(), reason.as_str()), (true, "approved", "the call was answered"));
    // Pressed again: answered already.
    assert!(!phone.keys(&id, "#", false).await.unwrap().0, "answered already");

    let id = call(&server, &mut phone, "vic", "authentication").await;
    let (accepted, status, _) = phone.keys(&id, "", true).await.unwrap();
    assert_eq!((accepted, status.as_str()), (true, "denied"));
    assert_eq!(server.status(&id, 0).await, "denied");

    // Detached: its calls no longer come here.
    assert_eq!(phone.phone("+12015550123", false).await.unwrap(), ["+41446681800"]);
    let (status, refused) = server.post("/api/signins", RP, json!({ "user": "vic", "method": "voice", "phone": "office" })).await;
    assert_eq!(status, 502, "{refused}");

    let mut phone = phone_of(&server, "val").await;
    let id = call(&server, &mut phone, "val", "authentication").await;
    let (accepted, status, _) = phone.keys(&id, "0#", false).await.unwrap();
    assert_eq!((accepted, status.as_str()), (true, "reported"));
    // The report blocks the user's texts and calls for a while.
    let (status, blocked) = server.post("/api/signins", RP, json!({ "user": "val", "method": "voice" })).await;
    assert_eq!(status, 403, "{blocked}");
}

#[tokio::test]
async fn a_device_answers_only_for_its_own_users_numbers_and_sign_ins() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::with_virtual_phones(dir.path(), &[]);
    user_with_phones(&server, "wes").await;
    let wes = server.device("wes").await;
    let mallory = server.device("mallory").await;
    let mut wes_phone = Session::connect(&wes, jiff::Timestamp::now).await.unwrap();
    let mut intruder = Session::connect(&mallory, jiff::Timestamp::now).await.unwrap();
    // Wes's number is not Mallory's: refused, whatever its form.
    // The session stays open after a refusal.
    for number in ["+41 44 668 18 00", "+41446681800"] {
        let error = intruder.phone(number, true).await.unwrap_err().to_string();
        assert!(error.contains("is not one of your phones"), "{error}");
    }
    let error = intruder.phone("not a number", true).await.unwrap_err().to_string();
    assert!(error.contains("is not a phone number"), "{error}");
    // Wes's other device answers for his office phone only.
    let mut office = Session::connect(&server.device("wes").await, jiff::Timestamp::now).await.unwrap();
    office.phone("+1 201 555 0123", true).await.unwrap();

    wes_phone.phone("+41446681800", true).await.unwrap();
    let (status, created) = server.post("/api/signins", RP, json!({ "user": "wes", "method": "sms" })).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let Event::Text(text) = next_text_or_call(&mut wes_phone).await else { panic!("expected a text") };
    let code = text.open(&wes.device_key).unwrap().code.clone();
    assert!(text.open(&mallory.device_key).is_err(), "sealed to wes's device");
    // Mallory's device knows the id and the code (say, from a screen), but
    // the sign-in is not Mallory's: refused, no attempt spent.
    let (accepted, _, reason) = intruder.reply(id, &code).await.unwrap();
    assert!(!accepted && reason.contains("no such text"), "{reason}");
    let (accepted, _, reason) = intruder.keys(id, "#", false).await.unwrap();
    assert!(!accepted && reason.contains("no such call"), "{reason}");
    // Wes's office phone got no text: it cannot answer one either.
    let (accepted, _, reason) = office.reply(id, &code).await.unwrap();
    assert!(!accepted && reason.contains("does not answer for the phone this text went to"), "{reason}");
    assert_eq!(server.status(id, 0).await, "pending");
    let (_, verdict) = server.post(&format!("/api/signins/{id}/code"), RP, json!({ "code": "00000" })).await;
    assert_eq!(verdict["attempts_left"], 4, "one attempt spent, by this wrong code only: {verdict}");
    // A text's reply is no key press, and the other way round.
    let (accepted, _, reason) = wes_phone.keys(id, "#", false).await.unwrap();
    assert!(!accepted && reason.contains("no such call"), "{reason}");
    assert!(wes_phone.reply(id, &code).await.unwrap().0);

    // The number changed on the page: the old attachment no longer counts.
    let changed = reqwest::Client::new()
        .put(format!("{}/api/admin/users/wes/phones/authentication", server.base))
        .bearer_auth(ADMIN)
        .json(&json!({ "number": "+44 20 7946 0018" }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    let (status, refused) = server.post("/api/signins", RP, json!({ "user": "wes", "method": "sms" })).await;
    assert_eq!(status, 502, "{refused}");
    // A revoked device answers for nothing more.
    assert_eq!(wes_phone.phone("+44 20 7946 0018", true).await.unwrap(), ["+442079460018"]);
    assert_eq!(server.delete(&format!("/api/admin/devices/{}", wes.device_id), ADMIN).await, 204);
    let (status, refused) = server.post("/api/signins", RP, json!({ "user": "wes", "method": "sms" })).await;
    assert_eq!(status, 502, "{refused}");
}

#[test]
fn the_command_line_attaches_a_number_watches_and_replies_presses_and_hangs_up() {
    use std::process::Stdio;
    const HANG: Duration = Duration::from_secs(60);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::with_virtual_phones(dir.path(), &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(user_with_phones(&server, "cleo"));
    let (code, url) = runtime.block_on(server.activation("cleo"));
    let sandbox = common::Sandbox::new();
    sandbox.init();
    sandbox.ok(&["activate", "--code", &code, "--url", &url]);

    // Only the user's own numbers, in any form.
    let refused = sandbox.run(&["phone", "attach", "+44 20 7946 0018"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not one of your phones"), "{refused:?}");
    assert_eq!(sandbox.ok(&["phone", "attach", "+41 44 668 18 00"]), "This device answers for +41446681800.\n");
    assert_eq!(sandbox.ok(&["phone", "attach", "+1 201 555 0123"]), "This device answers for +12015550123, +41446681800.\n");

    let mut watch = common::Killed(
        sandbox
            .command()
            .args(["phone", "watch", "--json", "--count", "3", "--timeout", "120"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let printed = common::lines_of(watch.0.stdout.take().unwrap());
    let said = common::lines_of(watch.0.stderr.take().unwrap());
    let connected = common::line_within(&said, HANG).flatten().expect("the watch connects");
    assert!(connected.starts_with("countersign: connected to ws://127.0.0.1:") && connected.contains("texts and calls"), "{connected}");
    let next = || -> Value { serde_json::from_str(&common::line_within(&printed, HANG).flatten().expect("a line")).unwrap() };

    // A text: its code, replied from the command line, approves.
    let (status, created) = runtime.block_on(server.post("/api/signins", RP, json!({ "user": "cleo", "method": "sms" })));
    assert_eq!(status, 201, "{created}");
    let text = next();
    assert_eq!(
        (text["kind"].as_str(), text["id"].clone(), text["to"].as_str()),
        (Some("text"), created["id"].clone(), Some("+41446681800"))
    );
    let id = text["id"].as_str().unwrap();
    let wrong = sandbox.run(&["phone", "reply", id, "00000"]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong code: 4 more tries"), "{wrong:?}");
    assert_eq!(sandbox.ok(&["phone", "reply", id, text["code"].as_str().unwrap()]), format!("{id}: approved\n"));
    assert_eq!(runtime.block_on(server.status(id, 0)), "approved");

    // A call to the office phone: '#' approves.
    let (status, _) = runtime.block_on(server.post("/api/signins", RP, json!({ "user": "cleo", "method": "voice", "phone": "office" })));
    assert_eq!(status, 201);
    let call = next();
    assert_eq!((call["kind"].as_str(), call["extension"].as_str()), (Some("call"), Some("4711")));
    let id = call["id"].as_str().unwrap();
    let waiting = sandbox.ok(&["phone", "press", id, "7"]);
    assert!(waiting.starts_with(&format!("{id}: pending (Press the pound key")), "{waiting}");
    assert!(sandbox.ok(&["phone", "press", id, "#"]).starts_with(&format!("{id}: approved (")));
    assert_eq!(runtime.block_on(server.status(id, 0)), "approved");

    // Another call, hung up: denied.
    let (status, _) = runtime.block_on(server.post("/api/signins", RP, json!({ "user": "cleo", "method": "voice" })));
    assert_eq!(status, 201);
    let call = next();
    let id = call["id"].as_str().unwrap();
    assert!(sandbox.ok(&["phone", "hang-up", id]).starts_with(&format!("{id}: denied (")));
    assert_eq!(runtime.block_on(server.status(id, 0)), "denied");
    // --count 3: the watch ended by itself.
    assert!(watch.0.wait().unwrap().success());
    // Pressing on a call that is over is refused, with why.
    let late = sandbox.run(&["phone", "press", id, "#"]);
    assert_eq!(late.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&late.stderr).contains("already answered"), "{late:?}");
}

/// On a server whose texts and calls go to real phones (here the log
/// provider), a device key never stands in for holding the phone.
#[tokio::test]
async fn without_the_virtual_provider_no_device_attaches_a_number_or_answers_a_call() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    user_with_phones(&server, "xia").await;
    let mut session = Session::connect(&server.device("xia").await, jiff::Timestamp::now).await.unwrap();
    assert_eq!(session.phones(), None, "no virtual phones here");
    let refused = session.phone("+41446681800", true).await.unwrap_err().to_string();
    assert!(refused.contains("real phones"), "{refused}");
    let (status, created) = server.post("/api/signins", RP, json!({ "user": "xia", "method": "voice" })).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let (accepted, _, reason) = session.keys(id, "#", false).await.unwrap();
    assert!(!accepted && reason.contains("real phones"), "{reason}");
    assert_eq!(server.status(id, 0).await, "pending");
}

/// The pages' Verify checks only their own sign-ins: not a relying party's.
#[tokio::test]
async fn the_pages_verify_only_their_own_sign_ins() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    assert_eq!(server.post("/api/admin/users", ADMIN, json!({ "name": "yan" })).await.0, 201);
    // A relying party's sign-in is not the page's to verify, even with its id
    // and the page's form token: no attempt is spent on it.
    let (status, created) = server.post("/api/signins", RP, json!({ "user": "yan", "method": "code" })).await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().unwrap();
    let form = reqwest::get(format!("{}/demo", server.base)).await.unwrap().text().await.unwrap();
    let csrf = form.split(r#"name="csrf" value=""#).nth(1).and_then(|rest| rest.split('"').next()).unwrap().to_owned();
    for (page, refusal) in [("/demo/signin-code", "No such sign-in."), ("/enroll/verify", "No such check")] {
        let answer = reqwest::Client::new()
            .post(format!("{}{page}", server.base))
            .header("Origin", &server.base)
            .form(&[("id", id), ("code", "123456"), ("csrf", &csrf)])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(answer.contains(refusal), "{page}: {answer}");
    }
    let (_, verdict) = server.post(&format!("/api/signins/{id}/code"), RP, json!({ "code": "000000" })).await;
    assert_eq!(verdict["attempts_left"], 4, "the pages spent none: {verdict}");
}
