//! End to end: the real `countersign-server` binary on 127.0.0.1 with a
//! fresh SQLite file, and the real client code (and the real `countersign`
//! binary) as the phone.

#![cfg(all(feature = "server", feature = "client", feature = "cli"))]

mod common;

use std::process::Command;
use std::time::Duration;

use common::server::{ADMIN, RP, Server, next_challenge};
use common::{Killed, line_within, lines_of};
use countersign::push::client::{self, Event, Session};
use countersign::push::{Decision, Keypair, Status};
use serde_json::{Value, json};

fn now() -> i64 {
    countersign::server::now()
}

/// The app's clock is the one it is given: a session measures the
/// server's clock against it.
#[tokio::test]
async fn the_clock_offset_is_measured_against_the_clock_given() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let link = server.device("alice").await;
    fn an_hour_behind() -> jiff::Timestamp {
        jiff::Timestamp::now().checked_sub(jiff::SignedDuration::from_hours(1)).unwrap()
    }
    let session = Session::connect(&link, an_hour_behind).await.unwrap();
    let offset = session.clock_offset().expect("the server says its time");
    // Within a second: the two clocks are read a moment apart.
    assert!((3599..=3601).contains(&offset), "{offset}");
}

/// A session opened from another loopback address (as the benchmark
/// spreads devices) really leaves from it, and works like any other.
#[tokio::test]
async fn a_session_bound_to_a_source_address_connects_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let link = server.device("alice").await;
    let source: std::net::IpAddr = "127.0.0.77".parse().unwrap();
    let mut session = Session::connect_from(&link, jiff::Timestamp::now, Some(source)).await.unwrap();
    // /proc/net/tcp: local 127.0.0.77 (little-endian hex) to the server's port.
    let ours = "4D00007F:";
    let theirs = format!("0100007F:{:04X}", server.port);
    let table = std::fs::read_to_string("/proc/self/net/tcp").unwrap();
    assert!(
        table.lines().any(|line| {
            let columns: Vec<&str> = line.split_whitespace().collect();
            columns.len() > 2 && columns[1].starts_with(ours) && columns[2] == theirs
        }),
        "no connection from {source} to port {}:\n{table}",
        server.port
    );
    let (id, number) = server.signin("alice").await;
    assert_eq!(next_challenge(&mut session).await.id, id);
    session.respond(&id, Decision::Approve, number, false, now()).await.unwrap();
    assert_eq!(session.verdict(&id).await.unwrap().1, "approved".into());

    // A source of the other family than the server's address is a clear error.
    let error = Session::connect_from(&link, jiff::Timestamp::now, Some("::1".parse().unwrap())).await.err().unwrap();
    assert!(error.to_string().contains("no address of the source's family"), "{error}");
}

#[tokio::test]
async fn approve_with_the_right_number_then_a_wrong_number_is_denied() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let link = server.device("alice").await;
    let mut session = Session::connect(&link, jiff::Timestamp::now).await.unwrap();

    let (id, number) = server.signin("alice").await;
    let challenge = next_challenge(&mut session).await;
    assert_eq!(
        (challenge.id.as_str(), challenge.app.as_str(), challenge.ip.as_str(), challenge.location.as_str()),
        (id.as_str(), "Contoso VPN", "203.0.113.7", "Zurich")
    );
    assert!(challenge.number_matching && (10..100).contains(&number.unwrap()));
    assert!(challenge.seconds_left(now()) > 50);
    session.respond(&id, Decision::Approve, number, false, now()).await.unwrap();
    assert_eq!(session.verdict(&id).await.unwrap(), (true, "approved".into(), String::new()));
    assert_eq!(server.status(&id, 0).await, "approved");

    let (id, number) = server.signin("alice").await;
    next_challenge(&mut session).await;
    let wrong = number.map(|n| if n == 99 { 10 } else { n + 1 });
    session.respond(&id, Decision::Approve, wrong, false, now()).await.unwrap();
    let (accepted, status, reason) = session.verdict(&id).await.unwrap();
    assert_eq!((accepted, status.as_str()), (true, "denied"), "{reason}");
    assert_eq!(server.status(&id, 0).await, "denied");
}

#[tokio::test]
async fn a_receive_only_session_sees_requests_and_carries_only_answers_the_device_key_signed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let (link, listener) = server.device_with_listener("nora").await;
    let mut session = Session::listen(&listener, jiff::Timestamp::now).await.unwrap();
    let (id, number) = server.signin("nora").await;
    assert_eq!(next_challenge(&mut session).await.id, id);
    // The session holds no device key: it cannot sign an answer.
    assert!(session.respond(&id, Decision::Approve, number, false, now()).await.is_err());
    // An answer the listener key signed is refused by the server.
    let forged = listener.key.seal(
        countersign::push::protocol::RESPONSE_CONTEXT,
        &countersign::push::Response {
            v: 1,
            challenge_id: id.clone(),
            device_id: link.device_id.clone(),
            decision: Decision::Approve,
            number,
            user_verified: false,
            at: now(),
        },
    );
    session.send_envelope(forged).await.unwrap();
    let (accepted, _, reason) = session.verdict("").await.unwrap();
    assert!(!accepted && reason.contains("signature"), "{reason}");
    assert_eq!(server.status(&id, 0).await, "pending");
    // The device key's answer, carried by the receive-only session, is taken.
    session.send_envelope(link.sign_response(&id, Decision::Approve, number, false, now())).await.unwrap();
    assert_eq!(session.verdict(&id).await.unwrap(), (true, "approved".into(), String::new()));
    assert_eq!(server.status(&id, 0).await, "approved");
}

#[tokio::test]
async fn listener_keys_open_no_session_they_were_not_made_for() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let (_, listener) = server.device_with_listener("olga").await;
    let (_, other) = server.device_with_listener("piet").await;
    // Another device's listener key.
    let stolen = countersign::push::Listener { key: other.key.clone(), ..listener.clone() };
    assert!(
        matches!(Session::listen(&stolen, jiff::Timestamp::now).await, Err(client::Error::Server(error)) if error.error == "unauthorized")
    );
    // A signature made for another server's key.
    let elsewhere = countersign::push::Listener { server_key: Keypair::generate().unwrap().public(), ..listener.clone() };
    assert!(Session::listen(&elsewhere, jiff::Timestamp::now).await.is_err());
    // A device activated by an app from before listener keys has none.
    let old = server.device_without_listener("quinn").await;
    let guess = old.listener(Keypair::generate().unwrap());
    assert!(
        matches!(Session::listen(&guess, jiff::Timestamp::now).await, Err(client::Error::Server(error)) if error.error == "unauthorized")
    );
    assert!(Session::listen(&listener, jiff::Timestamp::now).await.is_ok(), "the right key still opens");
}

#[tokio::test]
async fn a_device_from_before_listener_keys_registers_one_and_a_new_one_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let link = server.device_without_listener("rita").await;
    let first = Keypair::generate().unwrap();
    client::register_listener(&link, &first.public(), jiff::Timestamp::now).await.unwrap();
    let mut session = Session::listen(&link.listener(first.clone()), jiff::Timestamp::now).await.unwrap();
    let (id, _) = server.signin("rita").await;
    assert_eq!(next_challenge(&mut session).await.id, id);
    // A new registration replaces the old key.
    let second = Keypair::generate().unwrap();
    client::register_listener(&link, &second.public(), jiff::Timestamp::now).await.unwrap();
    assert!(Session::listen(&link.listener(first), jiff::Timestamp::now).await.is_err(), "the replaced key no longer opens");
    assert!(Session::listen(&link.listener(second.clone()), jiff::Timestamp::now).await.is_ok());
    // Only the device key registers one: a registration another key signed
    // is refused, even in the device's own session...
    let takeover = Keypair::generate().unwrap();
    let mut session = Session::connect(&link, jiff::Timestamp::now).await.unwrap();
    let forged = countersign::push::Link { device_key: second.clone(), ..link.clone() }.sign_listener(&takeover.public(), now());
    assert!(matches!(session.register_listener(forged).await, Err(client::Error::Server(error)) if error.error == "unauthorized"));
    // ...a receive-only session cannot register one, even signed...
    let mut listening = Session::listen(&link.listener(second.clone()), jiff::Timestamp::now).await.unwrap();
    assert!(
        matches!(listening.register_listener(link.sign_listener(&takeover.public(), now())).await, Err(client::Error::Server(error)) if error.error == "unauthorized")
    );
    // ...and an old registration (replayed to bring back a replaced key) is refused.
    let mut session = Session::connect(&link, jiff::Timestamp::now).await.unwrap();
    assert!(
        matches!(session.register_listener(link.sign_listener(&takeover.public(), now() - 3600)).await, Err(client::Error::Server(error)) if error.error == "unauthorized")
    );
    assert!(Session::listen(&link.listener(takeover), jiff::Timestamp::now).await.is_err(), "no forged key was kept");
    assert!(Session::listen(&link.listener(second), jiff::Timestamp::now).await.is_ok(), "the registered key is unchanged");
}

#[tokio::test]
async fn deny_then_report_blocks_further_pushes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let link = server.device("bob").await;
    let mut session = Session::connect(&link, jiff::Timestamp::now).await.unwrap();
    let (id, _) = server.signin("bob").await;
    next_challenge(&mut session).await;
    session.respond(&id, Decision::Deny, None, false, now()).await.unwrap();
    assert_eq!(session.verdict(&id).await.unwrap().1, Status::Denied);
    assert_eq!(server.status(&id, 0).await, "denied");

    let (id, _) = server.signin("bob").await;
    next_challenge(&mut session).await;
    let (waiting, _) = server.signin("bob").await;
    next_challenge(&mut session).await;
    session.respond(&id, Decision::Report, None, false, now()).await.unwrap();
    assert_eq!(session.verdict(&id).await.unwrap().1, Status::Reported);
    assert_eq!(server.status(&waiting, 0).await, "denied", "a report also denies what is still waiting");
    let (status, body) = server.post("/api/signins", RP, json!({ "user": "bob", "app": "x" })).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("blocked")), "{body}");
}

#[tokio::test]
async fn an_expired_challenge_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--challenge-seconds", "1"]);
    let link = server.device("carol").await;
    let mut session = Session::connect(&link, jiff::Timestamp::now).await.unwrap();
    let (id, number) = server.signin("carol").await;
    next_challenge(&mut session).await;
    // Long-polling returns at expiry, not at the end of the wait.
    assert_eq!(server.status(&id, 30).await, "expired");
    session.respond(&id, Decision::Approve, number, false, now()).await.unwrap();
    assert_eq!(session.verdict(&id).await.unwrap(), (false, "expired".into(), "the sign-in expired".into()));
}

#[tokio::test]
async fn a_device_offline_at_push_time_gets_the_challenge_on_connect_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let link = server.device("dave").await;
    let (id, number) = server.signin("dave").await;
    // Restart with the sign-in pending: it is in the database, not in memory.
    let server = server.restart();
    let mut session = Session::connect(&link, jiff::Timestamp::now).await.unwrap();
    let challenge = next_challenge(&mut session).await;
    assert_eq!(challenge.id, id);
    session.respond(&id, Decision::Approve, number, false, now()).await.unwrap();
    assert_eq!(session.verdict(&id).await.unwrap().1, Status::Approved);
    assert_eq!(server.status(&id, 0).await, "approved");
}

#[tokio::test]
async fn a_device_that_pinned_another_server_key_cannot_open_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut link = server.device("erin").await;
    // The app pinned another server key: its auth is bound to that key, so
    // this server refuses it (and anything this server signed would be a
    // forgery to the app: `open_challenge` drops it, see the protocol tests).
    link.server_key = Keypair::generate().unwrap().public();
    match Session::connect(&link, jiff::Timestamp::now).await {
        Err(client::Error::Server(error)) => assert_eq!(error.error, "unauthorized"),
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("a session bound to another server key was opened"),
    }
    // The same device with the key it really pinned connects.
    link.server_key = server.device("erin2").await.server_key;
    assert!(Session::connect(&link, jiff::Timestamp::now).await.is_ok());
}

#[tokio::test]
async fn a_duplicate_or_replayed_response_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let link = server.device("frank").await;
    let mut session = Session::connect(&link, jiff::Timestamp::now).await.unwrap();
    let (id, number) = server.signin("frank").await;
    next_challenge(&mut session).await;
    let sent = session.respond(&id, Decision::Approve, number, false, now()).await.unwrap();
    assert_eq!(session.verdict(&id).await.unwrap().1, Status::Approved);
    // The same signed bytes again, then a fresh "deny": the outcome stands.
    session.send_envelope(sent).await.unwrap();
    assert_eq!(session.verdict(&id).await.unwrap(), (false, "approved".into(), "the sign-in was already answered".into()));
    session.respond(&id, Decision::Deny, None, false, now()).await.unwrap();
    assert!(!session.verdict(&id).await.unwrap().0);
    assert_eq!(server.status(&id, 0).await, "approved");
}

#[tokio::test]
async fn five_wrong_codes_invalidate_an_activation() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let (code, url) = server.activation("gina").await;
    let wrong = if code.starts_with('9') { code.replacen('9', "1", 1) } else { format!("9{}", &code[1..]) };
    for left in (1..5).rev() {
        let error = client::activate(&url, &wrong, "x").await.unwrap_err();
        let client::Error::Server(error) = error else { panic!("{error}") };
        assert_eq!(error.error, "invalid_code");
        assert!(error.message.contains(&format!("{left} more tries")), "{}", error.message);
    }
    for code in [&wrong, &code] {
        let client::Error::Server(error) = client::activate(&url, code, "x").await.unwrap_err() else { panic!() };
        assert_eq!(error.error, "too_many_attempts");
    }
    // A used code cannot be used twice.
    let (code, url) = server.activation("gina").await;
    client::activate(&url, &code, "x").await.unwrap();
    let client::Error::Server(error) = client::activate(&url, &code, "x").await.unwrap_err() else { panic!() };
    assert_eq!(error.error, "used");
}

#[tokio::test]
async fn malformed_json_gets_a_4xx_with_a_clear_body() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    for (path, token) in [("/api/activate/abc", ""), ("/api/signins", RP), ("/api/totp/verify", RP), ("/api/admin/users", ADMIN)] {
        let (status, body) = server.raw_post(path, token, "{\"user\": ").await;
        assert!((400..500).contains(&status), "{path}: {status}");
        assert_eq!(body["error"], "bad_request", "{path}: {body}");
    }
    let (status, body) = server.post("/api/signins", "wrong", json!({ "user": "x" })).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("unauthorized")));
}

#[tokio::test]
async fn a_totp_code_from_the_activated_account_is_accepted_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let (code, url) = server.activation("hana").await;
    let client::Activated { account, .. } = client::activate(&url, &code, "x").await.unwrap();
    let totp = countersign::otp::code(&account, now() as u64).value;
    let verify = |code: String| server.post("/api/totp/verify", RP, json!({ "user": "hana", "code": code }));
    assert_eq!(verify(totp.clone()).await.1["valid"], true);
    assert_eq!(verify(totp).await.1["valid"], false, "a code is accepted once");
    assert_eq!(verify("000000".into()).await.1["valid"], false);
    // Five wrong codes in a minute: even the next right one is refused for now.
    for _ in 0..4 {
        assert_eq!(verify("000000".into()).await.1["valid"], false);
    }
    let next = countersign::otp::code(&account, now() as u64 + 30).value;
    assert_eq!(verify(next).await.1["valid"], false, "guessing is throttled");
}

#[test]
fn the_command_line_activates_from_the_qr_image_then_watches_and_approves() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let admin = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_countersign-server"))
            .args(["--database", server.database.to_str().unwrap(), "--listen", &format!("127.0.0.1:{}", server.port)])
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    admin(&["user", "add", "ivan"]);
    let qr = dir.path().join("activation.png");
    let printed = admin(&["activate", "ivan", "--qr", qr.to_str().unwrap()]);
    assert!(printed.contains("Code: ") && printed.contains("/api/activate/"), "{printed}");

    let sandbox = common::Sandbox::new();
    sandbox.init();
    let activated = sandbox.ok(&["activate", "--qr", qr.to_str().unwrap()]);
    assert!(activated.starts_with("Activated Countersign demo (ivan)"), "{activated}");
    // The account shows codes like any other.
    let list: Value = serde_json::from_str(&sandbox.ok(&["list", "--json"])).unwrap();
    assert_eq!(list[0]["account"], "ivan");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (id, number) = runtime.block_on(server.signin("ivan"));
    let watched = sandbox.ok(&["push", "watch", "--json", "--count", "1", "--timeout", "10"]);
    let challenge: Value = serde_json::from_str(watched.lines().next().unwrap()).unwrap();
    assert_eq!(
        (challenge["id"].as_str(), challenge["app"].as_str(), challenge["flagged"].as_bool()),
        (Some(id.as_str()), Some("Contoso VPN"), Some(false))
    );
    let output = sandbox.run(&["push", "approve", &id]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("add --number N"));
    let approved = sandbox.ok(&["push", "approve", &id, "--number", &number.unwrap().to_string()]);
    assert_eq!(approved, format!("{id}: approved\n"));
    assert_eq!(runtime.block_on(server.status(&id, 0)), "approved");
    // The answer is in the sign-in history, its chain whole.
    let history: Value = serde_json::from_str(&sandbox.ok(&["push", "history", "--json"])).unwrap();
    let record = &history.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (record["request"].as_str(), record["event"].as_str(), record["account"].as_str()),
        (Some(id.as_str()), Some("approved"), Some("Countersign demo (ivan)"))
    );
    assert_eq!(record["detail"], "answered from the command line");
}

/// libfaketime, which Debian's faketime package installs (tests/run does).
const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

#[test]
fn a_server_whose_clock_differs_is_said_with_how_much_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    // The server's clock 3 minutes ahead of this computer's.
    let server = Server::start_with(
        dir.path().join("server.sqlite3"),
        common::server::free_port(),
        Vec::new(),
        &[("LD_PRELOAD", FAKETIME), ("FAKETIME", "+3m"), ("DONT_FAKE_MONOTONIC", "1")],
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (code, url) = runtime.block_on(server.activation("uma"));
    let sandbox = common::Sandbox::new();
    sandbox.init();
    sandbox.ok(&["activate", "--code", &code, "--url", &url]);
    let output = sandbox.run(&["push", "watch", "--timeout", "3"]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("warning: This computer's clock is 3 min 0 s behind Contoso (uma)'s.")
            || said.contains("warning: This computer's clock is 2 min 59 s behind Contoso (uma)'s."),
        "{said}"
    );
    assert!(said.contains("timedatectl set-ntp true"), "{said}");
    // The request still gets its whole time, counted on the server's clock.
    let (id, _) = runtime.block_on(server.signin("uma"));
    let watched = sandbox.ok(&["push", "watch", "--count", "1", "--timeout", "10"]);
    assert!(watched.starts_with(&id) && (watched.contains("; 60 s left") || watched.contains("; 59 s left")), "{watched}");
}

#[test]
fn the_command_line_watch_survives_its_server_restarting_and_prints_each_request_once() {
    use std::process::Stdio;
    const HANG: Duration = Duration::from_secs(60);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (code, url) = runtime.block_on(server.activation("nora"));
    let sandbox = common::Sandbox::new();
    sandbox.init();
    sandbox.ok(&["activate", "--code", &code, "--url", &url]);
    // Pending before the restart: every new session resends it.
    let (before, _) = runtime.block_on(server.signin("nora"));
    let mut watch = Killed(
        sandbox
            .command()
            .args(["push", "watch", "--json", "--count", "2", "--timeout", "300"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let printed = lines_of(watch.0.stdout.take().unwrap());
    let said = lines_of(watch.0.stderr.take().unwrap());
    let mut stdout = vec![line_within(&printed, HANG).flatten().expect("the pending request is printed")];
    // Killed (SIGKILL) and started again on the same database and port.
    let server = server.restart();
    let mut stderr = Vec::new();
    while !stderr.iter().any(|line: &String| line.contains(" again")) {
        match line_within(&said, HANG) {
            Some(Some(line)) => stderr.push(line),
            _ => panic!("the watch did not reconnect: {stderr:#?}"),
        }
    }
    let (after, _) = runtime.block_on(server.signin("nora"));
    // --count 2: it ends once it printed two requests; anything printed
    // twice would come before the second.
    loop {
        match line_within(&printed, HANG) {
            Some(Some(line)) => stdout.push(line),
            Some(None) => break,
            None => panic!("the watch did not end: {stdout:#?}"),
        }
    }
    let status = watch.0.wait().unwrap();
    stderr.extend(said.try_iter());
    assert!(status.success(), "{stderr:#?}");
    let ids: Vec<String> =
        stdout.iter().map(|line| serde_json::from_str::<Value>(line).unwrap()["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, [before, after], "each request once: {stdout:#?}");
    // It said that the connection dropped and when it would try again.
    assert!(stderr.iter().any(|line| line.contains("; retrying in ")), "{stderr:#?}");
    assert!(stderr.iter().any(|line| line.starts_with("countersign: connected to ws://127.0.0.1:")), "{stderr:#?}");
}

#[tokio::test]
async fn the_server_speaks_tls_when_given_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let server = Server::start(dir.path(), &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    let https = reqwest::Client::builder().tls_danger_accept_invalid_certs(true).build().unwrap();
    let base = server.base.replace("http://", "https://");
    assert_eq!(https.get(format!("{base}/healthz")).send().await.unwrap().text().await.unwrap(), "ok");
    // Plain HTTP is not served on the TLS port.
    assert!(
        reqwest::get(format!("{}/healthz", server.base)).await.is_err()
            || reqwest::get(format!("{}/healthz", server.base)).await.unwrap().status().as_u16() >= 400
    );
}

#[tokio::test]
async fn a_pin_requirement_needs_the_user_verified_before_approval() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--pin-required", "--no-number-matching"]);
    let link = server.device("judy").await;
    let mut session = Session::connect(&link, jiff::Timestamp::now).await.unwrap();
    let (id, number) = server.signin("judy").await;
    assert_eq!(number, None, "number matching is off");
    let challenge = next_challenge(&mut session).await;
    assert!(challenge.pin_required && !challenge.number_matching);
    session.respond(&id, Decision::Approve, None, false, now()).await.unwrap();
    assert_eq!(
        session.verdict(&id).await.unwrap(),
        (false, "pending".into(), "this organisation requires your PIN or vault password".into())
    );
    session.respond(&id, Decision::Approve, None, true, now()).await.unwrap();
    assert_eq!(session.verdict(&id).await.unwrap().1, Status::Approved);
}

#[tokio::test]
async fn the_window_connection_reconnects_after_the_server_comes_back() {
    use countersign::push::client::Update;
    use futures_util::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let link = server.device("kim").await;
    let mut updates = Box::pin(client::watch(client::Credential::Device(link), jiff::Timestamp::now));
    let mut next =
        async || tokio::time::timeout(Duration::from_secs(10), updates.next()).await.expect("an update").expect("the stream goes on");
    assert!(matches!(next().await, Update::Connecting));
    assert!(matches!(next().await, Update::Connected(_)));
    // The server's hello says its time: one machine, one clock.
    assert!(matches!(next().await, Update::ClockOffset(offset) if offset.abs() <= 1));
    let server = server.restart();
    let Update::Disconnected { retry_in, .. } = next().await else { panic!("expected a disconnect") };
    assert!(retry_in < Duration::from_secs(2), "the first retry is within 2 s: {retry_in:?}");
    // It comes back by itself, and requests made meanwhile arrive.
    let (id, _) = server.signin("kim").await;
    loop {
        match next().await {
            Update::Connected(_) => break,
            Update::Connecting | Update::Disconnected { .. } | Update::Refused { .. } => continue,
            update @ (Update::Event(_) | Update::ClockOffset(_)) => panic!("{update:?} before connecting"),
        }
    }
    assert!(matches!(next().await, Update::ClockOffset(_)));
    let Update::Event(Event::Challenge(challenge)) = next().await else { panic!("the pending request") };
    assert_eq!(challenge.id, id);
}

#[tokio::test]
async fn settings_come_from_a_toml_file_too() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "organization = \"Fabrikam\"\nnumber_matching = false\n").unwrap();
    let server = Server::start(dir.path(), &["--config", config.to_str().unwrap()]);
    let (status, _) = server.post("/api/admin/users", ADMIN, json!({ "name": "lee" })).await;
    assert_eq!(status, 201);
    let (status, activation) = server.post("/api/admin/users/lee/activations", ADMIN, json!({})).await;
    assert_eq!(status, 201);
    let client::Activated { account, .. } =
        client::activate(activation["url"].as_str().unwrap(), activation["code"].as_str().unwrap(), "x").await.unwrap();
    assert_eq!(account.issuer, "Fabrikam");
    assert_eq!(server.signin("lee").await.1, None, "number matching is off in the file");
    // An unknown key is an error, not silently ignored.
    std::fs::write(&config, "organisation = \"typo\"\n").unwrap();
    let output =
        Command::new(env!("CARGO_BIN_EXE_countersign-server")).args(["--config", config.to_str().unwrap(), "tokens"]).output().unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("is not a valid configuration"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn the_database_is_readable_by_the_server_user_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/server.sqlite3");
    let store = countersign::server::Store::connect(&countersign::server::Database::Sqlite(path.clone()), 1).await.unwrap();
    assert!(store.add_user("ann", "Contoso", now()).await.unwrap());
    for file in ["server.sqlite3", "server.sqlite3-wal"] {
        let mode = std::fs::metadata(dir.path().join("state").join(file)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    // One an earlier version left readable by everyone is closed on opening.
    drop(store);
    let old = dir.path().join("old.sqlite3");
    std::fs::write(&old, b"").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    countersign::server::Store::connect(&countersign::server::Database::Sqlite(old.clone()), 1).await.unwrap();
    assert_eq!(std::fs::metadata(&old).unwrap().permissions().mode() & 0o777, 0o600);
}

#[tokio::test]
async fn a_refused_listener_key_is_said_as_such_with_the_key() {
    use countersign::push::client::Update;
    use futures_util::StreamExt;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let (link, listener) = server.device_with_listener("vera").await;
    // Another key registered since (elsewhere): this one is refused.
    client::register_listener(&link, &Keypair::generate().unwrap().public(), jiff::Timestamp::now).await.unwrap();
    let mut updates = Box::pin(client::watch(client::Credential::Listener(listener.clone()), jiff::Timestamp::now));
    assert!(matches!(updates.next().await, Some(Update::Connecting)));
    let refused = tokio::time::timeout(Duration::from_secs(10), updates.next()).await.unwrap().unwrap();
    assert!(
        matches!(&refused, Update::Refused { key, retry_in, .. } if *key == listener.key.public() && *retry_in < Duration::from_secs(2)),
        "{refused:?}"
    );
}

/// App passwords, end to end: made by the admin API and the command line,
/// shown once, checked through the relying-party API (with backoff and a
/// record of their last use), revoked one at a time, and all at once by
/// "It wasn't me".
#[tokio::test]
async fn app_passwords_are_made_checked_revoked_and_dropped_by_a_fraud_report() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let link = server.device("ines").await;
    let (status, made) = server.post("/api/admin/users/ines/app-passwords", ADMIN, json!({ "name": "Outlook 2010" })).await;
    assert_eq!(status, 201, "{made}");
    let password = made["password"].as_str().unwrap().to_owned();
    assert_eq!(password.len(), 24, "20 letters in groups of four: {password}");
    let verify = |user: &'static str, password: String| {
        server.post("/api/app-passwords/verify", RP, json!({ "user": user, "password": password, "ip": "198.51.100.9" }))
    };
    // Only the relying party checks them.
    assert_eq!(server.post("/api/app-passwords/verify", ADMIN, json!({ "user": "ines", "password": password })).await.0, 401);
    assert_eq!(verify("ines", password.clone()).await.1["valid"], true);
    assert_eq!(verify("ines", password.replace(' ', "").to_uppercase()).await.1["valid"], true, "typed without spaces, in capitals");
    assert_eq!(verify("someone", password.clone()).await.1["valid"], false, "another user's");

    // The list shows its name and last use, never the password or its hash.
    let listed = server.get_with("/api/admin/users/ines/app-passwords", ADMIN).await;
    let first = &listed[0];
    assert_eq!((first["name"].as_str(), first["last_used_from"].as_str()), (Some("Outlook 2010"), Some("198.51.100.9")), "{listed}");
    assert!(first["last_used_at"].as_i64().is_some_and(|at| at >= now() - 5));
    let text = listed.to_string();
    assert!(!text.contains(&password.replace(' ', "")) && !text.contains("argon2"), "{text}");

    // The command line makes one too, printed once; the database keeps no password.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_countersign-server"))
        .args(["--database", server.database.to_str().unwrap(), "app-password", "create", "ines", "Thunderbird", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let second: Value = serde_json::from_slice(&output.stdout).unwrap();
    let second_password = second["password"].as_str().unwrap().to_owned();
    assert_eq!(verify("ines", second_password.clone()).await.1["valid"], true);
    // The database file and its write-ahead log keep no password.
    for suffix in ["", "-wal"] {
        let stored = std::fs::read(format!("{}{suffix}", server.database.display())).unwrap_or_default();
        assert!(!stored.windows(20).any(|w| w == second_password.replace(' ', "").as_bytes()), "the database holds only hashes");
    }

    // Revoked: refused, and gone from the list.
    assert_eq!(server.delete(&format!("/api/admin/app-passwords/{}", made["id"].as_str().unwrap()), ADMIN).await, 204);
    assert_eq!(verify("ines", password.clone()).await.1["valid"], false);
    assert_eq!(server.get_with("/api/admin/users/ines/app-passwords", ADMIN).await.as_array().unwrap().len(), 1);
    assert_eq!(server.delete(&format!("/api/admin/app-passwords/{}", made["id"].as_str().unwrap()), ADMIN).await, 404);
    // A bad name, an unknown user and the limit are said plainly.
    assert_eq!(server.post("/api/admin/users/ines/app-passwords", ADMIN, json!({ "name": "  " })).await.0, 400);
    assert_eq!(server.post("/api/admin/users/nobody/app-passwords", ADMIN, json!({ "name": "x" })).await.0, 404);
    for n in 1..10 {
        assert_eq!(server.post("/api/admin/users/ines/app-passwords", ADMIN, json!({ "name": format!("app {n}") })).await.0, 201);
    }
    let (status, body) = server.post("/api/admin/users/ines/app-passwords", ADMIN, json!({ "name": "one too many" })).await;
    assert_eq!(status, 409, "{body}");

    // "It wasn't me" revokes every app password: whoever signed in may hold them.
    let mut session = Session::connect(&link, jiff::Timestamp::now).await.unwrap();
    let (id, _) = server.signin("ines").await;
    next_challenge(&mut session).await;
    session.respond(&id, Decision::Report, None, false, now()).await.unwrap();
    assert_eq!(session.verdict(&id).await.unwrap().1, Status::Reported);
    assert_eq!(verify("ines", second_password).await.1["valid"], false);
    assert!(server.get_with("/api/admin/users/ines/app-passwords", ADMIN).await.as_array().unwrap().is_empty());
}

/// Guessing app passwords is throttled like guessing codes: after three
/// wrong ones from an address, even the right one waits; the user's TOTP
/// codes from there are not held back (a counter of its own).
#[tokio::test]
async fn wrong_app_passwords_are_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    server.device("jon").await;
    let (_, made) = server.post("/api/admin/users/jon/app-passwords", ADMIN, json!({ "name": "mail" })).await;
    let verify = |password: &str| {
        server.post("/api/app-passwords/verify", RP, json!({ "user": "jon", "password": password, "ip": "198.51.100.10" }))
    };
    for wrong in ["aaaa aaaa aaaa aaaa aaaa", "not even the shape", "bbbbbbbbbbbbbbbbbbbb"] {
        assert_eq!(verify(wrong).await.1["valid"], false);
    }
    // At once (the first wait is 1 s): the right one is refused with a wait.
    let (_, body) = verify(made["password"].as_str().unwrap()).await;
    assert_eq!(body["valid"], false, "{body}");
    assert!(body["retry_after"].as_u64().is_some_and(|s| s > 0), "{body}");
    let (_, body) = server.post("/api/totp/verify", RP, json!({ "user": "jon", "code": "000000", "ip": "198.51.100.10" })).await;
    assert!(body["retry_after"].is_null(), "codes have their own counter: {body}");
    // Another address is not held back by these.
    let (_, body) =
        server.post("/api/app-passwords/verify", RP, json!({ "user": "jon", "password": made["password"], "ip": "198.51.100.11" })).await;
    assert_eq!(body["valid"], true, "{body}");
}

/// Phones for the phone methods: set through the admin API and the command
/// line as typed, kept in E.164, refused with the reason when wrong, and
/// removed with the user.
#[tokio::test]
async fn phones_are_checked_kept_in_e164_listed_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    server.post("/api/admin/users", ADMIN, json!({ "name": "kim" })).await;
    let put = |kind: &str, body: Value| {
        let request =
            reqwest::Client::new().put(format!("{}/api/admin/users/kim/phones/{kind}", server.base)).bearer_auth(ADMIN).json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, phone) = put("authentication", json!({ "number": "044 668 18 00", "country": "CH" })).await;
    assert_eq!((status, phone["number"].as_str()), (200, Some("+41446681800")), "{phone}");
    let (status, phone) = put("office", json!({ "number": "+1 (201) 555-0123", "extension": "4711" })).await;
    assert_eq!((status, phone["number"].as_str(), phone["extension"].as_str()), (200, Some("+12015550123"), Some("4711")), "{phone}");
    // Wrong input gets a 400 that says why; nothing is stored.
    for (kind, body, says) in [
        ("authentication", json!({ "number": "044 668 18 00" }), "country code"),
        ("authentication", json!({ "number": "+41 12" }), "not a valid phone number"),
        ("authentication", json!({ "number": "+41 44 668 18 00", "extension": "1" }), "only an office phone"),
        ("fax", json!({ "number": "+41 44 668 18 00" }), "\"authentication\" or \"office\""),
    ] {
        let (status, body) = put(kind, body).await;
        assert!(status == 400 && body["message"].as_str().unwrap_or("").contains(says), "{kind}: {status} {body}");
    }
    assert_eq!(put("office", json!({ "number": "+41 44 668 18 00" })).await.0, 200, "replaces the office phone");
    let listed = server.get_with("/api/admin/users/kim/phones", ADMIN).await;
    assert_eq!(
        listed,
        json!([{ "kind": "authentication", "number": "+41446681800", "extension": null }, { "kind": "office", "number": "+41446681800", "extension": null }])
    );
    assert_eq!(server.get_with("/api/admin/users/kim/phones", RP).await["error"], "unauthorized", "the admin's only");

    // The command line: set, list, remove.
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_countersign-server"))
            .args(["--database", server.database.to_str().unwrap(), "phone"])
            .args(args)
            .output()
            .unwrap()
    };
    let set = cli(&["set", "kim", "office", "030 1234567", "--country", "DE", "--extension", "22"]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    assert_eq!(String::from_utf8_lossy(&set.stdout).trim(), "kim's office phone is +49301234567 extension 22.");
    let wrong = cli(&["set", "kim", "office", "12"]);
    assert!(!wrong.status.success() && String::from_utf8_lossy(&wrong.stderr).contains("not a phone number"));
    let list = cli(&["list", "kim"]);
    assert_eq!(String::from_utf8_lossy(&list.stdout).trim(), "authentication  +41446681800\noffice  +49301234567 extension 22");
    assert!(cli(&["remove", "kim", "office"]).status.success());
    assert!(!cli(&["remove", "kim", "office"]).status.success(), "removed already");
    assert_eq!(server.delete("/api/admin/users/kim/phones/authentication", ADMIN).await, 204);
    assert_eq!(server.get_with("/api/admin/users/kim/phones", ADMIN).await, json!([]));
    // Removing the user removes their phones.
    put("authentication", json!({ "number": "+41 44 668 18 00" })).await;
    assert_eq!(server.delete("/api/admin/users/kim", ADMIN).await, 204);
    assert_eq!(server.get_with("/api/admin/users/kim/phones", ADMIN).await["error"], "not_found");
}
