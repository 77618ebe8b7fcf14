//! Several `countersign-server` instances on one real PostgreSQL (a
//! throw-away cluster each test makes with initdb), alone and behind a real
//! nginx: they behave as one server, and losing one loses nothing.

#![cfg(all(feature = "server", feature = "client", feature = "cli"))]

mod common;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use common::cluster::{Nginx, PASSWORD, Postgres, available};
use common::server::{ADMIN, RP, Server, free_port, next_challenge};
use countersign::push::client::{self, Event, Session, Update};
use countersign::push::{Challenge, Decision, Link, Status};
use futures_util::StreamExt;
use serde_json::json;

fn now() -> i64 {
    countersign::server::now()
}

/// An instance on `url`, on `port`, whose public URL is `public`.
fn instance(url: &str, port: u16, public: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--public-url".to_owned(), public.to_owned(), "--demo-pages".into(), "false".into()];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    Server::start_on(PathBuf::from(url), port, args)
}

/// Two instances on a fresh database, each reached at its own address.
async fn two(postgres: &Postgres, name: &str, extra: &[&str]) -> (Server, Server) {
    let url = postgres.database(name).await;
    let (a, b) = (free_port(), free_port());
    let first = instance(&url, a, &format!("http://127.0.0.1:{a}"), extra);
    let second = instance(&url, b, &format!("http://127.0.0.1:{b}"), extra);
    (first, second)
}

/// Every challenge a session receives within `quiet` of the last one.
async fn challenges_until_quiet(session: &mut Session, quiet: Duration) -> Vec<String> {
    let mut ids = Vec::new();
    while let Ok(event) = tokio::time::timeout(quiet, session.next()).await {
        match event.unwrap() {
            Event::Challenge(challenge) => ids.push(challenge.id),
            Event::Alive | Event::Result { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    ids
}

#[tokio::test]
async fn both_instances_starting_at_once_on_an_empty_database_migrate_it_once_and_share_one_key() {
    if !available() {
        return;
    }
    let postgres = Postgres::start();
    let url = postgres.database("simultaneous").await;
    let (a, b) = (free_port(), free_port());
    let (url_a, url_b) = (url.clone(), url.clone());
    let first = std::thread::spawn(move || instance(&url_a, a, &format!("http://127.0.0.1:{a}"), &[]));
    let second = std::thread::spawn(move || instance(&url_b, b, &format!("http://127.0.0.1:{b}"), &[]));
    let (first, second) = (first.join().unwrap(), second.join().unwrap());
    let on_first = first.device("alice").await;
    let on_second = second.device("bob").await;
    assert_eq!(on_first.server_key.to_base64(), on_second.server_key.to_base64(), "one signing key for every instance");
    // A device activated through one instance opens a session on the other.
    let moved = Link { endpoint: on_first.endpoint.replace(&a.to_string(), &b.to_string()), ..on_first };
    assert!(Session::connect(&moved, jiff::Timestamp::now).await.is_ok());
}

#[tokio::test]
async fn a_signin_made_on_one_instance_reaches_a_device_on_the_other_and_its_answer_ends_a_long_poll_there() {
    if !available() {
        return;
    }
    let postgres = Postgres::start();
    let (a, b) = two(&postgres, "crossing", &[]).await;
    let on_a = a.device("carol").await;
    let on_b = b.device("carol").await;
    let mut session_a = Session::connect(&on_a, jiff::Timestamp::now).await.unwrap();
    let mut session_b = Session::connect(&on_b, jiff::Timestamp::now).await.unwrap();

    let (status, created) = b.post("/api/signins", RP, json!({ "user": "carol", "app": "Contoso VPN" })).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["delivered"], 2, "both devices are connected, one to each instance: {created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let number = created["number"].as_u64().map(|n| n as u32);
    assert_eq!(next_challenge(&mut session_a).await.id, id, "made on B, pushed by A");
    assert_eq!(next_challenge(&mut session_b).await.id, id);

    // A long-poll on A; the answer goes through B.
    let waiting = {
        let base = a.base.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let url = format!("{base}/api/signins/{id}?wait=20");
            reqwest::Client::new().get(url).bearer_auth(RP).send().await.unwrap().json::<serde_json::Value>().await.unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "nothing decided yet");
    session_b.respond(&id, Decision::Approve, number, false, now()).await.unwrap();
    assert_eq!(session_b.verdict(&id).await.unwrap().1, Status::Approved);
    let polled = tokio::time::timeout(Duration::from_secs(10), waiting).await.expect("the long-poll ends").unwrap();
    assert_eq!(polled["status"], "approved");
    // The device on A is told, and its late answer is refused: answered once.
    loop {
        match tokio::time::timeout(Duration::from_secs(10), session_a.next()).await.expect("told within 10 s").unwrap() {
            Event::Result { challenge_id, status, .. } if challenge_id == id => {
                assert_eq!(status, Status::Approved);
                break;
            }
            _ => continue,
        }
    }
    session_a.respond(&id, Decision::Deny, None, false, now()).await.unwrap();
    let (accepted, status, _) = session_a.verdict(&id).await.unwrap();
    assert_eq!((accepted, status), (false, Status::Approved));
    assert_eq!(a.status(&id, 0).await, "approved");
}

#[tokio::test]
async fn twenty_signins_spread_over_instances_and_users_each_reach_the_right_device_once() {
    if !available() {
        return;
    }
    let postgres = Postgres::start();
    let (a, b) = two(&postgres, "twenty", &[]).await;
    let users = ["u0", "u1", "u2", "u3"];
    let mut sessions = Vec::new();
    for (n, user) in users.iter().enumerate() {
        // Each user's device on one instance or the other.
        let link = if n % 2 == 0 { a.device(user).await } else { b.device(user).await };
        sessions.push((user.to_string(), Session::connect(&link, jiff::Timestamp::now).await.unwrap()));
    }
    let mut expected: HashMap<String, HashSet<String>> = HashMap::new();
    for n in 0..20 {
        let user = users[n % users.len()];
        let through = if (n / 4) % 2 == 0 { &a } else { &b };
        let (status, created) = through.post("/api/signins", RP, json!({ "user": user, "app": format!("app {n}") })).await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["delivered"], 1, "{created}");
        expected.entry(user.to_owned()).or_default().insert(created["id"].as_str().unwrap().to_owned());
    }
    for (user, session) in &mut sessions {
        let got = challenges_until_quiet(session, Duration::from_secs(3)).await;
        let unique: HashSet<String> = got.iter().cloned().collect();
        assert_eq!(got.len(), unique.len(), "{user} got a sign-in twice: {got:?}");
        assert_eq!(&unique, &expected[user.as_str()], "{user} got exactly their own sign-ins");
    }
}

#[tokio::test]
async fn blocks_totp_steps_and_rate_limits_hold_across_instances() {
    if !available() {
        return;
    }
    let postgres = Postgres::start();
    let (a, b) = two(&postgres, "shared", &["--activation-rate-per-minute", "5"]).await;

    // An app password made through A works through B (PostgreSQL's
    // migration 5), until the report below revokes it.
    let link = a.device("dave").await;
    let (status, made) = a.post("/api/admin/users/dave/app-passwords", ADMIN, json!({ "name": "mail" })).await;
    assert_eq!(status, 201, "{made}");
    let app_password = json!({ "user": "dave", "password": made["password"] });
    assert_eq!(b.post("/api/app-passwords/verify", RP, app_password.clone()).await.1["valid"], true);
    assert!(a.get_with("/api/admin/users/dave/app-passwords", ADMIN).await[0]["last_used_at"].is_i64(), "its use is recorded");
    // A phone set through A (migration 6's upsert, twice) is B's too.
    for number in ["+41 44 668 18 00", "+41 44 668 18 01"] {
        let set = reqwest::Client::new()
            .put(format!("{}/api/admin/users/dave/phones/office", a.base))
            .bearer_auth(ADMIN)
            .json(&json!({ "number": number, "extension": "7" }))
            .send()
            .await
            .unwrap();
        assert_eq!(set.status().as_u16(), 200);
    }
    assert_eq!(
        b.get_with("/api/admin/users/dave/phones", ADMIN).await,
        json!([{ "kind": "office", "number": "+41446681801", "extension": "7" }])
    );

    // "It wasn't me" through A blocks pushes made through B.
    let mut session = Session::connect(&link, jiff::Timestamp::now).await.unwrap();
    let (id, _) = b.signin("dave").await;
    assert_eq!(next_challenge(&mut session).await.id, id);
    session.respond(&id, Decision::Report, None, false, now()).await.unwrap();
    assert_eq!(session.verdict(&id).await.unwrap().1, Status::Reported);
    let (status, body) = b.post("/api/signins", RP, json!({ "user": "dave" })).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("blocked")), "{body}");
    assert_eq!(b.post("/api/app-passwords/verify", RP, app_password).await.1["valid"], false, "revoked by the report");

    // A TOTP code accepted by A is refused by B.
    let (code, url) = a.activation("erin").await;
    let client::Activated { account, .. } = client::activate(&url, &code, "phone").await.unwrap();
    let code = countersign::otp::code(&account, u64::try_from(now()).unwrap()).value;
    let (_, first) = a.post("/api/totp/verify", RP, json!({ "user": "erin", "code": code })).await;
    let (_, again) = b.post("/api/totp/verify", RP, json!({ "user": "erin", "code": code })).await;
    assert_eq!((first["valid"].as_bool(), again["valid"].as_bool()), (Some(true), Some(false)));

    // Activation attempts from one address count on both: 5 a minute in
    // all, of which the two activations above (both through A) took 2.
    let mut statuses = Vec::new();
    for n in 0..4 {
        let through = if n % 2 == 0 { &a } else { &b };
        let (status, _) = through.post("/api/activate/nosuchid", "", json!({ "code": "000000000000", "device_public_key": "x" })).await;
        statuses.push(status);
    }
    assert_eq!(statuses.last(), Some(&429), "the fourth attempt, on either instance, is over the shared limit: {statuses:?}");
    assert!(!statuses[..3].contains(&429), "{statuses:?}");
    // Counted in memory per instance, B would have allowed all its tries.
}

#[tokio::test]
async fn a_text_sent_by_one_instance_is_checked_by_the_other_and_a_call_answered_there() {
    if !available() {
        return;
    }
    let postgres = Postgres::start();
    // The log provider: the log is the phone (and says the code).
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "[phone]\nprovider = \"log\"\n").unwrap();
    let (a, b) = two(&postgres, "phones", &["--config", config.to_str().unwrap()]).await;
    assert_eq!(a.post("/api/admin/users", ADMIN, json!({ "name": "pia" })).await.0, 201);
    let request = reqwest::Client::new()
        .put(format!("{}/api/admin/users/pia/phones/authentication", b.base))
        .bearer_auth(ADMIN)
        .json(&json!({ "number": "+41 44 668 18 00" }));
    assert_eq!(request.send().await.unwrap().status(), 200);

    // Sent through A, the code typed through B approves it; A's long-poll sees it.
    let (status, created) = a.post("/api/signins", RP, json!({ "user": "pia", "method": "sms" })).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let text = a.wait_for_log(&format!("a text for {id}"));
    let code: String = text.rsplit(": ").next().unwrap().chars().take(6).collect();
    let verdict = b.post(&format!("/api/signins/{id}/code"), RP, json!({ "code": code })).await.1;
    assert_eq!((verdict["valid"].as_bool(), verdict["status"].as_str()), (Some(true), Some("approved")), "{verdict}");
    assert_eq!(a.status(&id, 5).await, "approved");

    // A call placed by A is answered at B's callback address.
    let (status, created) = a.post("/api/signins", RP, json!({ "user": "pia", "method": "voice" })).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let line = a.wait_for_log(&format!("keys for call {id} go to "));
    let callback = line.split(" go to ").nth(1).unwrap();
    let at_b = callback.replace(&a.base, &b.base);
    let response = reqwest::Client::new().post(&at_b).form(&[("Digits", "#")]).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(a.status(&id, 5).await, "approved");
}

/// The virtual provider across instances: a text made on A reaches a
/// virtual phone connected to B (through LISTEN/NOTIFY), and its reply
/// through B ends A's long-poll.
#[tokio::test]
async fn a_text_made_on_one_instance_reaches_a_virtual_phone_on_the_other() {
    if !available() {
        return;
    }
    let postgres = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "[phone]\nprovider = \"virtual\"\n").unwrap();
    let (a, b) = two(&postgres, "virtual", &["--config", config.to_str().unwrap()]).await;
    let on_b = b.device("quin").await;
    let request = reqwest::Client::new()
        .put(format!("{}/api/admin/users/quin/phones/authentication", a.base))
        .bearer_auth(ADMIN)
        .json(&json!({ "number": "+41 44 668 18 00" }));
    assert_eq!(request.send().await.unwrap().status(), 200);
    let mut phone = Session::connect(&on_b, jiff::Timestamp::now).await.unwrap();
    assert_eq!(phone.phone("+41446681800", true).await.unwrap(), ["+41446681800"]);
    // Attached twice (another session, the same device): still one number.
    let mut again = Session::connect(&on_b, jiff::Timestamp::now).await.unwrap();
    assert_eq!(again.phone("+41 44 668 18 00", true).await.unwrap(), ["+41446681800"]);

    let (status, created) = a.post("/api/signins", RP, json!({ "user": "quin", "method": "sms" })).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let text = loop {
        match tokio::time::timeout(Duration::from_secs(10), phone.next()).await.expect("the text within 10 s").unwrap() {
            Event::Text(text) => break text,
            _ => continue,
        }
    };
    assert_eq!(text.id, id, "made on A, delivered by B");
    let code = text.open(&on_b.device_key).unwrap().code.clone();
    let (accepted, status, _) = phone.reply(&id, &code).await.unwrap();
    assert_eq!((accepted, status), (true, Status::Approved));
    assert_eq!(a.status(&id, 5).await, "approved");
}

#[tokio::test]
async fn a_database_that_is_away_is_said_clearly_and_never_with_its_password() {
    if !available() {
        return;
    }
    let closed = free_port();
    let url = format!("postgres://countersign:{PASSWORD}@127.0.0.1:{closed}/nothing");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_countersign-server"))
        .args(["--database", &url, "--public-url", "http://127.0.0.1:1", "user", "list"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(said.contains(&format!("cannot reach the database postgres://countersign:***@127.0.0.1:{closed}/nothing")), "{said}");
    assert!(!said.contains(PASSWORD), "{said}");

    // What is neither a path nor a postgres:// URL is refused, not made a folder.
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_countersign-server"))
        .current_dir(dir.path())
        .args(["--database", "postgres:/x", "user", "list"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("neither a SQLite file's path nor a postgres:// URL"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing was created");

    // PostgreSQL needs the one public URL devices will keep.
    let output =
        std::process::Command::new(env!("CARGO_BIN_EXE_countersign-server")).args(["--database", &url, "user", "list"]).output().unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("needs public_url"));
}

#[tokio::test]
async fn tls_to_the_database_is_used_and_its_certificate_checked_where_the_url_asks() {
    if !available() {
        return;
    }
    let postgres = Postgres::start_with_tls();
    let url = postgres.database("tls").await;
    let list = |url: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_countersign-server"))
            .args(["--database", url, "--public-url", "http://127.0.0.1:1", "user", "list"])
            .output()
            .unwrap()
    };
    let verified = list(&format!("{url}?sslmode=verify-full&sslrootcert={}", postgres.certificate().display()));
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
    assert_eq!(String::from_utf8_lossy(&verified.stdout).trim(), "No users.");
    // The cluster takes TCP over TLS only: a URL that turns TLS off is refused.
    let plain = list(&format!("{url}?sslmode=disable"));
    let said = String::from_utf8_lossy(&plain.stderr);
    assert!(!plain.status.success() && said.contains("cannot reach the database"), "{said}");
    assert!(!said.contains(PASSWORD), "{said}");
    // A certificate the given root did not sign is refused.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.pem");
    std::fs::write(&other, rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap().cert.pem()).unwrap();
    let forged = list(&format!("{url}?sslmode=verify-full&sslrootcert={}", other.display()));
    assert!(!forged.status.success(), "a certificate from another root was accepted");
}

#[tokio::test]
async fn instances_recover_when_the_database_comes_back_without_a_restart() {
    if !available() {
        return;
    }
    let postgres = Postgres::start();
    let (a, b) = two(&postgres, "recovery", &[]).await;
    let link = a.device("frank").await;
    let client = reqwest::Client::new();
    let ready = async |server: &Server| client.get(format!("{}/readyz", server.base)).send().await.unwrap().status().as_u16();
    assert_eq!(ready(&a).await, 200);

    postgres.stop();
    assert_eq!(ready(&a).await, 503, "not ready without its database");
    let (status, _) = b.post("/api/signins", RP, json!({ "user": "frank" })).await;
    assert_eq!(status, 500);

    postgres.start_again();
    let mut back = false;
    for _ in 0..100 {
        if ready(&a).await == 200 && ready(&b).await == 200 {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "both ready again within 10 s");
    // The device reconnects; a sign-in made on B reaches it on A: the link
    // between the instances is back too.
    let mut session = None;
    for _ in 0..50 {
        if let Ok(opened) = Session::connect(&link, jiff::Timestamp::now).await {
            session = Some(opened);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut session = session.expect("a session on A again");
    let mut delivered = None;
    for _ in 0..50 {
        // A's LISTEN connection comes back within a few seconds.
        let (id, _) = b.signin("frank").await;
        if let Ok(Ok(Event::Challenge(challenge))) = tokio::time::timeout(Duration::from_millis(500), session.next()).await {
            delivered = Some((id, challenge.id));
            break;
        }
    }
    let (made, got) = delivered.expect("a sign-in made on B reaches the device on A");
    assert!(!got.is_empty() && made.starts_with("si_"));
}

/// The port of the instance holding the device connected through nginx:
/// the one whose `/metrics` counts a connected device.
async fn holder(instances: [&Server; 2]) -> Option<u16> {
    for server in instances {
        let text =
            reqwest::Client::new().get(format!("{}/metrics", server.base)).bearer_auth(ADMIN).send().await.ok()?.text().await.ok()?;
        if text.lines().any(|line| line == "countersign_connected_devices 1") {
            return Some(server.port);
        }
    }
    None
}

/// The next challenge the reconnecting connection delivers; updates are
/// drained for at most 30 s.
async fn next_watched(updates: &mut (impl futures_util::Stream<Item = Update> + Unpin)) -> Challenge {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let update = tokio::time::timeout_at(deadline, updates.next()).await.expect("a challenge within 30 s").expect("the stream goes on");
        if let Update::Event(Event::Challenge(challenge)) = update {
            return challenge;
        }
    }
}

#[tokio::test]
async fn behind_nginx_a_kill_9_and_a_rolling_restart_lose_nothing() {
    if !available() || !Nginx::available() {
        return;
    }
    let postgres = Postgres::start();
    let url = postgres.database("failover").await;
    let (port_a, port_b) = (free_port(), free_port());
    let nginx = Nginx::start(&[port_a, port_b]);
    let public = nginx.base();
    let extra = ["--trusted-proxy", "127.0.0.1"];
    let mut a = instance(&url, port_a, &public, &extra);
    let mut b = instance(&url, port_b, &public, &extra);

    // Activated through nginx: the device keeps nginx's address.
    let (code, activation) = a.activation("grace").await;
    let activation = activation.replace(&a.base, &public);
    assert!(activation.starts_with(&public), "{activation}");
    let client::Activated { link, .. } = client::activate(&activation, &code, "laptop").await.unwrap();
    assert!(link.endpoint.starts_with(&public.replace("http", "ws")), "{}", link.endpoint);
    let mut updates = Box::pin(client::watch(client::Credential::Device(link.clone()), jiff::Timestamp::now));
    loop {
        let update = tokio::time::timeout(Duration::from_secs(10), updates.next()).await.expect("connects").unwrap();
        if matches!(update, Update::Connected(_)) {
            break;
        }
    }
    let mut seen = Vec::new();
    let api = Server::remote(&public);
    for round in 0..3 {
        // kill -9 the instance holding the device; a sign-in is made (through
        // nginx, so on the survivor) while the device is away.
        let mut held = None;
        for _ in 0..50 {
            held = holder([&a, &b]).await;
            if held.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let held = held.expect("one instance holds the device");
        let victim = if held == a.port { &mut a } else { &mut b };
        victim.signal(libc::SIGKILL);
        assert!(victim.exit_within(Duration::from_secs(5)).is_some());
        let (status, created) = api.post("/api/signins", RP, json!({ "user": "grace", "app": "Contoso VPN" })).await;
        assert_eq!(status, 201, "round {round}: {created}; nginx said: {}", nginx.errors());
        let id = created["id"].as_str().unwrap().to_owned();
        let number = created["number"].as_u64().map(|n| n as u32);
        let challenge = next_watched(&mut updates).await;
        assert_eq!(challenge.id, id, "round {round}: the request made during the outage arrives after the reconnect");
        seen.push(challenge.id.clone());
        // Answered through nginx, once.
        let mut session = Session::connect(&link, jiff::Timestamp::now).await.unwrap();
        let _ = challenges_until_quiet(&mut session, Duration::from_millis(300)).await;
        session.respond(&id, Decision::Approve, number, false, now()).await.unwrap();
        assert_eq!(session.verdict(&id).await.unwrap().1, Status::Approved);
        assert_eq!(api.status(&id, 0).await, "approved");
        // The killed instance comes back (a rolling restart, one at a time):
        // the next goes once this one is ready, as the README says.
        if held == a.port {
            a = instance(&url, port_a, &public, &extra);
        } else {
            b = instance(&url, port_b, &public, &extra);
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), 3, "each request once: {seen:?}");
    // Nothing arrives twice after the fact.
    if let Ok(Some(Update::Event(Event::Challenge(again)))) = tokio::time::timeout(Duration::from_secs(2), updates.next()).await {
        panic!("{} was delivered again", again.id);
    }
}
