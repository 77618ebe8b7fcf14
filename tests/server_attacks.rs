//! The real `countersign-server` binary on 127.0.0.1, attacked the way the
//! hardening review did: slow and oversized bodies without a token, idle
//! and trickling sockets, signals with a request half sent, a device
//! connecting while requests are created, and a lost device. Attackers
//! connect from 127.0.0.2, real clients from 127.0.0.1. Every wait is
//! bounded; none of them is a speed requirement.

#![cfg(all(feature = "server", feature = "client", feature = "cli"))]

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::server::{ADMIN, RP, Server};
use countersign::push::client::{Event, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A connection from 127.0.0.2, an address real clients do not use.
async fn attacker(port: u16) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    socket.connect(SocketAddr::from(([127, 0, 0, 1], port))).await.unwrap()
}

/// Reads until the server closes the connection or `within` passes; the
/// status line's code when one came.
async fn answer(stream: &mut TcpStream, within: Duration) -> (Option<u16>, bool) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let closed = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await
    .is_ok();
    let status = String::from_utf8_lossy(&received).split(' ').nth(1).and_then(|code| code.parse().ok());
    (status, closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_slow_bodies_are_refused_without_growing_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let before = server.rss_kib();
    // 200 connections each to the relying-party API and to activation, each
    // declaring a 2,000,000-byte body, sending 256 KiB of it and holding.
    let mut held = Vec::new();
    for index in 0..400 {
        let mut stream = attacker(server.port).await;
        let path = if index % 2 == 0 { "/api/signins" } else { "/api/activate/x" };
        let head = format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        // The server may answer and close before taking it all.
        let _ = tokio::time::timeout(Duration::from_secs(2), stream.write_all(&vec![b' '; 256 * 1024])).await;
        held.push((path, stream));
    }
    let mut statuses = HashSet::new();
    for (path, stream) in &mut held {
        let (status, _) = answer(stream, Duration::from_millis(500)).await;
        let status = status.unwrap_or_else(|| panic!("{path} was not answered before its body"));
        assert!(matches!((*path, status), ("/api/signins", 401) | ("/api/activate/x", 413 | 429)), "{path}: {status}");
        statuses.insert(status);
    }
    assert!(statuses.contains(&401) && statuses.contains(&413), "{statuses:?}");
    let during = server.rss_kib();
    drop(held);
    // The review saw 21 MB grow to 408 MB here; each request now holds at most 4 KiB of body.
    assert!(during < before + 40 * 1024, "RSS went from {before} KiB to {during} KiB");
    // And real clients are still served.
    let (status, body) = server.post("/api/admin/users", ADMIN, serde_json::json!({ "name": "after" })).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_are_closed_and_do_not_keep_real_clients_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--max-connections", "32", "--request-timeout-seconds", "2"]);
    // Three times the connection limit, sending nothing.
    let mut idle = Vec::new();
    for _ in 0..96 {
        idle.push(attacker(server.port).await);
    }
    // A real client gets its answer once the idle ones time out (2 s each
    // round); without the timeout it would wait for ever.
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let health =
        client.get(format!("{}/healthz", server.base)).send().await.expect("healthz answered while the server was full of idle sockets");
    assert_eq!(health.text().await.unwrap(), "ok");
    // The server closed the idle ones it had accepted.
    let (_, closed) = answer(&mut idle[0], Duration::from_secs(20)).await;
    assert!(closed, "an idle socket stayed open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_sent_a_byte_at_a_time_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--request-timeout-seconds", "2"]);
    let mut stream = attacker(server.port).await;
    let head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut cut_off = false;
    for byte in head {
        if stream.write_all(&[*byte]).await.is_err() {
            cut_off = true;
            break;
        }
        // The server may already have closed: a read sees it at once.
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(250), stream.read(&mut [0u8; 1])).await {
            cut_off = true;
            break;
        }
    }
    assert!(cut_off, "a header trickled over {} s was served", head.len() / 4);
}

fn stops_gracefully(signal: i32) {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    // A request half sent, and a connection that sent nothing.
    let mut half = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    std::io::Write::write_all(&mut half, b"POST /api/signins HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le").unwrap();
    let _idle = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    server.signal(signal);
    let status = server.exit_within(Duration::from_secs(15)).expect("the server stopped");
    assert!(status.success(), "{status:?}");
}

#[test]
fn sigterm_stops_the_server_with_a_request_half_sent() {
    stops_gracefully(libc::SIGTERM);
}

#[test]
fn sigint_stops_the_server_with_a_request_half_sent() {
    stops_gracefully(libc::SIGINT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_connecting_while_requests_are_made_gets_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let link = server.device("dora").await;
    let base = server.base.clone();
    let create = move || {
        let base = base.clone();
        async move {
            let response = reqwest::Client::new()
                .post(format!("{base}/api/signins"))
                .bearer_auth(RP)
                .json(&serde_json::json!({ "user": "dora", "app": "race" }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 201);
        }
    };
    // Requests made while the device authenticates and is sent what waits.
    for round in 0..20 {
        let create = create.clone();
        let creating = tokio::spawn(async move {
            for _ in 0..3 {
                create().await;
            }
        });
        let mut session = Session::connect(&link, jiff::Timestamp::now).await.unwrap();
        creating.await.unwrap();
        let mut seen = HashSet::new();
        while let Ok(event) = tokio::time::timeout(Duration::from_millis(300), session.next()).await {
            if let Event::Challenge(challenge) = event.unwrap() {
                assert!(seen.insert(challenge.id.clone()), "round {round}: {} was delivered twice", challenge.id);
            }
        }
        assert_eq!(seen.len(), 3 * (round + 1), "round {round}: every waiting request once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_is_disconnected_at_once_and_cannot_return() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let lost = server.device("erin").await;
    let kept = server.device("erin").await;
    let mut session = Session::connect(&lost, jiff::Timestamp::now).await.unwrap();
    let listed: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/admin/users/erin/devices", server.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(server.delete(&format!("/api/admin/devices/{}", lost.device_id), ADMIN).await, 204);
    // The open session ends now, not at its next ping.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if session.next().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the revoked device's session stayed open");
    assert!(Session::connect(&lost, jiff::Timestamp::now).await.is_err(), "a revoked device reconnected");
    // The other device still receives.
    let mut other = Session::connect(&kept, jiff::Timestamp::now).await.unwrap();
    let (id, _) = server.signin("erin").await;
    loop {
        if let Event::Challenge(challenge) = tokio::time::timeout(Duration::from_secs(10), other.next()).await.unwrap().unwrap() {
            assert_eq!(challenge.id, id);
            break;
        }
    }
}

#[test]
fn the_command_line_refuses_bad_settings_survives_a_closed_pipe_and_keeps_codes_private() {
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("server.sqlite3");
    let server = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_countersign-server"));
        command.arg("--database").arg(&database).args(args);
        command
    };
    for (flag, value) in [
        ("--report-block-seconds", "-10"),
        ("--report-block-seconds", "9223372036854775807"),
        ("--challenge-seconds", "0"),
        ("--request-timeout-seconds", "0"),
        ("--max-connections", "1"),
    ] {
        let output = server(&[flag, value, "tokens"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{flag} {value}: {stderr}");
        assert!(stderr.contains("must be from"), "{flag} {value}: {stderr}");
    }
    // A reader that goes away at once: no panic (it was exit 101).
    let mut child = server(&["tokens"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
    // The QR code holds a live activation code: only its owner reads it.
    assert!(server(&["user", "add", "carol"]).output().unwrap().status.success());
    let png = dir.path().join("carol.png");
    assert!(server(&["activate", "carol", "--qr", png.to_str().unwrap()]).output().unwrap().status.success());
    assert_eq!(std::fs::metadata(&png).unwrap().permissions().mode() & 0o777, 0o600);
    // The server's own description, not the app's.
    let help = String::from_utf8(server(&["--help"]).output().unwrap().stdout).unwrap();
    assert!(help.starts_with("The companion server of Countersign"), "{help}");
}

/// The TCP sockets of this process whose local or peer port is `port`:
/// (is the server's end, TCP_NODELAY on).
fn sockets_on(port: u16) -> Vec<(bool, bool)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let port_of = |local: bool| {
            // SAFETY: getsockname/getpeername write at most `len` bytes into the storage given.
            let mut address: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            let pointer = &mut address as *mut _ as *mut libc::sockaddr;
            let done = unsafe { if local { libc::getsockname(fd, pointer, &mut len) } else { libc::getpeername(fd, pointer, &mut len) } };
            (done == 0 && i32::from(address.ss_family) == libc::AF_INET).then(|| {
                // SAFETY: an AF_INET address was written.
                u16::from_be(unsafe { (*(pointer as *const libc::sockaddr_in)).sin_port })
            })
        };
        let (local, peer) = (port_of(true), port_of(false));
        if peer.is_none() || (local != Some(port) && peer != Some(port)) {
            continue;
        }
        let mut on: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: reads one int option of a socket this process holds.
        let read = unsafe { libc::getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, &mut on as *mut _ as *mut libc::c_void, &mut len) };
        if read == 0 {
            found.push((local == Some(port), on != 0));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_sockets_send_at_once_on_both_ends() {
    // The server in this process, so both ends' sockets can be looked at:
    // without TCP_NODELAY a challenge pushed right after connecting waited
    // ~40 ms for the device's delayed ACK.
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = countersign::server::Config {
        database: countersign::server::Database::Sqlite(dir.path().join("server.sqlite3")),
        listen: SocketAddr::from(([127, 0, 0, 1], port)),
        admin_token: Some(ADMIN.into()),
        rp_token: Some(RP.into()),
        ..Default::default()
    };
    let state = countersign::server::AppState::open(config).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(countersign::server::serve_on(listener, state.clone(), async move {
        let _ = stopped.await;
    }));
    state.store.add_user("ivy", "Contoso", countersign::server::now()).await.unwrap();
    let activation = countersign::server::new_activation(&state, "ivy").await.unwrap();
    let countersign::push::client::Activated { link, .. } =
        countersign::push::client::activate(&activation.url, &activation.code, "laptop").await.unwrap();
    let _session = Session::connect(&link, jiff::Timestamp::now).await.unwrap();
    let sockets = sockets_on(port);
    assert!(sockets.iter().any(|(server, _)| *server) && sockets.iter().any(|(server, _)| !*server), "both ends found: {sockets:?}");
    assert!(
        sockets.iter().all(|(_, nodelay)| *nodelay),
        "every socket of the push connection has TCP_NODELAY (server end, on): {sockets:?}"
    );
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
}
