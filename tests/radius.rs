//! RADIUS against the real server, asked by FreeRADIUS's `radclient`
//! (Debian's freeradius-utils), a client nobody here wrote; and by a raw
//! UDP socket for what radclient cannot send (another source address,
//! duplicates, broken datagrams).
//!
//! Without radclient on PATH these tests say so and pass, unless
//! COUNTERSIGN_REQUIRE_RADCLIENT=1 (tests/run sets it) makes that a failure.

#![cfg(all(feature = "server", feature = "client"))]

mod common;

use std::io::Write;
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::server::{Server, next_challenge};
use countersign::push::Decision;
use countersign::push::client::Session;
use countersign::server::radius::packet;

const SECRET: &str = "a shared secret for the lab";

fn now() -> i64 {
    countersign::server::now()
}

fn radclient_found() -> bool {
    if Command::new("radclient").arg("-h").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok() {
        return true;
    }
    let required = std::env::var_os("COUNTERSIGN_REQUIRE_RADCLIENT").is_some_and(|value| value == "1");
    assert!(!required, "radclient is not on PATH and COUNTERSIGN_REQUIRE_RADCLIENT=1: tests/run installs Debian's freeradius-utils");
    eprintln!("skipping: radclient not found; install freeradius-utils (COUNTERSIGN_REQUIRE_RADCLIENT=1 makes this a failure)");
    false
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A server answering RADIUS for the client "Lab VPN" at 127.0.0.1.
struct Radius {
    server: Server,
    port: u16,
}

fn start(dir: &std::path::Path, extra: &[&str]) -> Radius {
    let port = free_udp_port();
    let config = dir.join("server.toml");
    std::fs::write(
        &config,
        format!(
            "[[radius.clients]]\nname = \"Lab VPN\"\nsecret = \"{SECRET}\"\naddresses = [\"127.0.0.1\"]\nlegacy_app = true\n\n\
             [[radius.clients]]\nname = \"Elsewhere\"\nsecret = \"another long secret\"\naddresses = [\"192.0.2.0/24\"]\n"
        ),
    )
    .unwrap();
    let listen = format!("127.0.0.1:{port}");
    let mut flags = vec!["--config", config.to_str().unwrap(), "--radius-listen", &listen];
    flags.extend_from_slice(extra);
    let server = Server::start(dir, &flags);
    Radius { server, port }
}

/// What radclient printed of the answer: its code ("Access-Accept", …,
/// or "no reply") and the attribute lines.
#[derive(Debug)]
struct Answer {
    code: String,
    lines: Vec<String>,
}

impl Answer {
    fn attribute(&self, name: &str) -> Option<String> {
        let prefix = format!("{name} = ");
        self.lines.iter().find_map(|line| line.trim().strip_prefix(&prefix).map(|value| value.trim_matches('"').to_owned()))
    }
}

/// One request through radclient: `attributes` as radclient reads them.
fn radclient(port: u16, secret: &str, attributes: &str, timeout: u64) -> Answer {
    let mut child = Command::new("radclient")
        .args(["-x", "-r", "1", "-t", &timeout.to_string(), &format!("127.0.0.1:{port}"), "auth", secret])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(attributes.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let mut lines = text.lines().skip_while(|line| !line.starts_with("Received ")).map(str::to_owned);
    match lines.next() {
        Some(first) => Answer { code: first.split_whitespace().nth(1).unwrap_or_default().to_owned(), lines: lines.collect() },
        None => {
            assert!(text.contains("No reply from server"), "radclient said: {text}");
            Answer { code: "no reply".into(), lines: Vec::new() }
        }
    }
}

/// A PAP request with a Message-Authenticator, as radclient reads it.
fn pap(user: &str, password: &str, more: &str) -> String {
    format!("User-Name = \"{user}\", User-Password = \"{password}\", Message-Authenticator = 0x00{more}\n")
}

/// `radclient` on a thread, for requests that wait for a push.
fn radclient_later(port: u16, attributes: String) -> std::thread::JoinHandle<Answer> {
    std::thread::spawn(move || radclient(port, SECRET, &attributes, 30))
}

#[tokio::test]
async fn a_code_is_accepted_once_and_its_replay_rejected() {
    if !radclient_found() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let radius = start(dir.path(), &[]);
    let (_, account) = radius.server.device_and_account("alice").await;
    let code = countersign::otp::code(&account, now() as u64).value;

    let answer = radclient(radius.port, SECRET, &pap("alice", &code, ""), 5);
    assert_eq!(answer.code, "Access-Accept", "{answer:?}");
    assert_eq!(answer.attribute("Reply-Message").as_deref(), Some("Code accepted"));
    let replay = radclient(radius.port, SECRET, &pap("alice", &code, ""), 5);
    assert_eq!(replay.code, "Access-Reject", "{replay:?}");
    assert_eq!(replay.attribute("Reply-Message").as_deref(), Some("Wrong or already used code"));
    let wrong = radclient(radius.port, SECRET, &pap("alice", "000000", ""), 5);
    assert_eq!(wrong.code, "Access-Reject");
    let nobody = radclient(radius.port, SECRET, &pap("mallory", "push", ""), 5);
    assert_eq!(nobody.code, "Access-Reject");

    radius.server.wait_for_log("\"mallory\" from 127.0.0.1: Access-Reject, no such user");
    let log = radius.server.log();
    assert!(log.contains("radius Lab VPN: \"alice\" from 127.0.0.1: Access-Accept, a right code"), "{log}");
    assert!(!log.contains(&code), "the log never holds a password or code");
}

#[tokio::test]
async fn a_push_approved_denied_or_reported_decides_the_answer() {
    if !radclient_found() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let radius = start(dir.path(), &[]);
    let (link, _) = radius.server.device_and_account("bob").await;
    let mut session = Session::connect(&link, jiff::Timestamp::now).await.unwrap();

    let context = ", NAS-Identifier = \"vpn-gw-1\", Calling-Station-Id = \"203.0.113.9\"";
    for (decision, password, code, reply) in [
        (Decision::Approve, "push", "Access-Accept", "Approved in Countersign"),
        (Decision::Deny, "", "Access-Reject", "Denied in Countersign"),
        (Decision::Report, "push", "Access-Reject", "Reported in Countersign"),
    ] {
        let waiting = radclient_later(radius.port, pap("bob", password, context));
        let challenge = next_challenge(&mut session).await;
        assert_eq!((challenge.app.as_str(), challenge.ip.as_str()), ("Lab VPN (vpn-gw-1)", "203.0.113.9"));
        assert!(!challenge.number_matching, "a NAS has no page to show a number on");
        session.respond(&challenge.id, decision, None, false, now()).await.unwrap();
        let answer = tokio::task::spawn_blocking(move || waiting.join().unwrap()).await.unwrap();
        assert_eq!((answer.code.as_str(), answer.attribute("Reply-Message").as_deref()), (code, Some(reply)), "{decision:?}");
    }
    // The report blocks further pushes.
    let blocked = radclient(radius.port, SECRET, &pap("bob", "push", ""), 5);
    assert_eq!(blocked.code, "Access-Reject");
    assert!(blocked.attribute("Reply-Message").unwrap().contains("blocked"), "{blocked:?}");
}

#[tokio::test]
async fn an_unanswered_push_is_rejected_when_it_expires() {
    if !radclient_found() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let radius = start(dir.path(), &["--challenge-seconds", "2"]);
    let (link, _) = radius.server.device_and_account("carol").await;
    let mut session = Session::connect(&link, jiff::Timestamp::now).await.unwrap();
    let waiting = radclient_later(radius.port, pap("carol", "push", ""));
    next_challenge(&mut session).await;
    let answer = tokio::task::spawn_blocking(move || waiting.join().unwrap()).await.unwrap();
    assert_eq!(answer.code, "Access-Reject");
    assert_eq!(answer.attribute("Reply-Message").as_deref(), Some("No answer in Countersign in time"));
    radius.server.wait_for_log("Access-Reject, the push expired");
}

#[tokio::test]
async fn a_password_that_is_neither_gets_a_challenge_answered_by_a_code_or_the_push() {
    if !radclient_found() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let radius = start(dir.path(), &[]);
    let (link, account) = radius.server.device_and_account("dave").await;
    let mut session = Session::connect(&link, jiff::Timestamp::now).await.unwrap();

    // Answered with a code.
    let first = radclient(radius.port, SECRET, &pap("dave", "my directory password", ""), 5);
    assert_eq!(first.code, "Access-Challenge", "{first:?}");
    assert_eq!(first.attribute("Reply-Message").as_deref(), Some("Approve the request in Countersign or type your code"));
    let state = first.attribute("State").expect("a State");
    next_challenge(&mut session).await;
    let code = countersign::otp::code(&account, now() as u64).value;
    let second = radclient(radius.port, SECRET, &pap("dave", &code, &format!(", State = {state}")), 5);
    assert_eq!(second.code, "Access-Accept", "{second:?}");
    // A State is good once.
    let again = radclient(radius.port, SECRET, &pap("dave", "", &format!(", State = {state}")), 5);
    assert_eq!(again.code, "Access-Reject");

    // Answered by the push.
    let first = radclient(radius.port, SECRET, &pap("dave", "hunter2", ""), 5);
    assert_eq!(first.code, "Access-Challenge");
    let state = first.attribute("State").unwrap();
    let challenge = next_challenge(&mut session).await;
    // Another user cannot bring dave's State back, nor use it up.
    let other = radclient(radius.port, SECRET, &pap("erin", "", &format!(", State = {state}")), 5);
    assert_eq!(other.code, "Access-Reject");
    let waiting = radclient_later(radius.port, pap("dave", "", &format!(", State = {state}")));
    session.respond(&challenge.id, Decision::Approve, None, false, now()).await.unwrap();
    let answer = tokio::task::spawn_blocking(move || waiting.join().unwrap()).await.unwrap();
    assert_eq!(answer.code, "Access-Accept", "erin's attempt left dave's State to him: {answer:?}");
    radius.server.wait_for_log("\"erin\" from 127.0.0.1: Access-Reject, a State given to another user or client");
    radius.server.wait_for_log("\"dave\" from 127.0.0.1: Access-Accept, the push was approved");
    assert!(!radius.server.log().contains("hunter2"));
}

#[tokio::test]
async fn an_app_password_is_accepted_from_a_legacy_client() {
    if !radclient_found() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let radius = start(dir.path(), &[]);
    radius.server.device_and_account("frank").await;
    let (status, body) = radius
        .server
        .post("/api/admin/users/frank/app-passwords", common::server::ADMIN, serde_json::json!({ "name": "Old VPN client" }))
        .await;
    assert_eq!(status, 201, "{body}");
    let password = body["password"].as_str().unwrap();
    let answer = radclient(radius.port, SECRET, &pap("frank", password, ""), 10);
    assert_eq!(answer.code, "Access-Accept", "{answer:?}");
    let wrong = radclient(radius.port, SECRET, &pap("frank", "abcd efgh ijkl mnop qrst", ""), 10);
    assert_eq!(wrong.code, "Access-Reject");
}

#[tokio::test]
async fn wrong_secrets_missing_authenticators_strangers_and_garbage_get_no_answer() {
    if !radclient_found() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let radius = start(dir.path(), &[]);
    let (_, account) = radius.server.device_and_account("gina").await;

    // A wrong code, which would be rejected at once if it were read.
    let wrong_secret = radclient(radius.port, "not the lab's secret at all", &pap("gina", "000000", ""), 1);
    assert_eq!(wrong_secret.code, "no reply");
    radius.server.wait_for_log("from Lab VPN with a wrong Message-Authenticator");

    // Without a Message-Authenticator: the same request with it cut out.
    let target = format!("127.0.0.1:{}", radius.port);
    let mut without = packet::access_request(4, [6; 16], "gina", b"000000", &[], SECRET.as_bytes());
    assert_eq!(without[20], packet::MESSAGE_AUTHENTICATOR, "it comes first");
    without.drain(20..38);
    let length = u16::try_from(without.len()).unwrap().to_be_bytes();
    without[2..4].copy_from_slice(&length);
    let plain = UdpSocket::bind("127.0.0.1:0").unwrap();
    plain.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    plain.send_to(&without, &target).unwrap();
    assert!(plain.recv_from(&mut [0; 4096]).is_err(), "no answer without a Message-Authenticator");
    radius.server.wait_for_log("from Lab VPN without a Message-Authenticator");

    // From 127.0.0.2, an address no client has, with the right secret.
    let stranger = UdpSocket::bind("127.0.0.2:0").unwrap();
    stranger.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    stranger.send_to(&packet::access_request(1, [7; 16], "gina", b"push", &[], SECRET.as_bytes()), &target).unwrap();
    assert!(stranger.recv_from(&mut [0; 4096]).is_err(), "no answer to an unknown address");

    // Broken datagrams, then 1,000 of random octets: none answered, none fatal.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let good = packet::access_request(2, [8; 16], "gina", b"000000", &[], SECRET.as_bytes());
    let mut broken: Vec<Vec<u8>> = vec![vec![], vec![1], good[..19].to_vec(), {
        let mut long = good.clone();
        long[3] = long[3].wrapping_add(40);
        long
    }];
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..1000 {
        let mut datagram = good.clone();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let position = usize::try_from(seed % datagram.len() as u64).unwrap();
        datagram[position] ^= u8::try_from(seed >> 56).unwrap() | 1;
        broken.push(datagram);
    }
    for datagram in &broken {
        socket.send_to(datagram, &target).unwrap();
    }
    // Anything answered is only to a datagram that still checks (a flipped
    // padding bit): none is, since the Message-Authenticator covers all.
    assert!(socket.recv_from(&mut [0; 4096]).is_err(), "no broken datagram is answered");

    // The server still answers, and a retransmission gets the same answer,
    // with the Proxy-States a proxy added, in order.
    let code = countersign::otp::code(&account, now() as u64).value;
    let proxied: [(u8, &[u8]); 2] = [(packet::PROXY_STATE, b"hop one"), (packet::PROXY_STATE, b"hop two")];
    let request = packet::access_request(3, [9; 16], "gina", code.as_bytes(), &proxied, SECRET.as_bytes());
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    socket.send_to(&request, &target).unwrap();
    let mut buffer = [0u8; 4096];
    let (length, _) = socket.recv_from(&mut buffer).unwrap();
    let first = buffer[..length].to_vec();
    let parsed = packet::Packet::parse(&request).unwrap();
    assert!(packet::response_valid(&first, &parsed, SECRET.as_bytes()));
    assert_eq!(first[0], packet::ACCESS_ACCEPT);
    let answer = packet::Packet::parse(&first).unwrap();
    let states: Vec<&[u8]> = answer.attributes.iter().filter(|(kind, _)| *kind == packet::PROXY_STATE).map(|(_, v)| v.as_slice()).collect();
    assert_eq!(states, [&b"hop one"[..], b"hop two"]);
    socket.send_to(&request, &target).unwrap();
    let (length, _) = socket.recv_from(&mut buffer).unwrap();
    assert_eq!(&buffer[..length], &first[..], "the duplicate is answered as the first was, not decided again (the code is used)");

    radius.server.wait_for_log("refused Radius from 127.0.0.2: a RADIUS datagram from an address no client has");
    radius.server.wait_for_log("malformed RADIUS datagram");
}

#[tokio::test]
async fn a_thousand_requests_from_radclient_are_all_answered() {
    if !radclient_found() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let radius = start(dir.path(), &[]);
    // Users without a device: each request is rejected at once.
    for user in ["henry", "iris"] {
        let (status, _) = radius
            .server
            .post("/api/admin/users", common::server::ADMIN, serde_json::json!({ "name": user, "organization": "Contoso" }))
            .await;
        assert_eq!(status, 201);
    }
    let requests: String = (0..1000)
        .map(|i| {
            let (user, password) = match i % 4 {
                0 => ("henry", "push"),
                1 => ("iris", "12345678"),
                2 => ("nobody", ""),
                _ => ("iris", "something else"),
            };
            format!("{}\n", pap(user, password, ""))
        })
        .collect();
    let file = dir.path().join("requests");
    std::fs::write(&file, requests).unwrap();
    let output = Command::new("radclient")
        .args(["-s", "-q", "-p", "50", "-r", "3", "-t", "5", "-f", file.to_str().unwrap()])
        .args([&format!("127.0.0.1:{}", radius.port), "auth", SECRET])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let count = |label: &str| -> u32 {
        text.lines()
            .find(|line| line.trim_start().starts_with(label))
            .and_then(|line| line.rsplit(':').next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {label} in {text}"))
    };
    // iris's "something else" gets a challenge (no push: no device), 5 in
    // the minute as pushes would be; everything else is rejected.
    assert_eq!((count("Rejected"), count("Lost")), (995, 0), "{text}");
    radius.server.wait_for_log("\"iris\" from 127.0.0.1: Access-Reject, over 5 pushes for this user in a minute");
    assert_eq!(radius.server.log().matches("Access-Challenge").count(), 5);
}

#[tokio::test]
async fn a_user_gets_at_most_five_pushes_a_minute_over_radius() {
    if !radclient_found() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let radius = start(dir.path(), &[]);
    radius.server.device_and_account("judy").await;
    // A password that is neither code nor push: a push and a challenge, at once.
    for _ in 0..5 {
        assert_eq!(radclient(radius.port, SECRET, &pap("judy", "guess", ""), 5).code, "Access-Challenge");
    }
    let sixth = radclient(radius.port, SECRET, &pap("judy", "push", ""), 5);
    assert_eq!(
        (sixth.code.as_str(), sixth.attribute("Reply-Message").as_deref()),
        ("Access-Reject", Some("Too many requests: wait a minute"))
    );
    radius.server.wait_for_log("Access-Reject, over 5 pushes for this user in a minute");
}
