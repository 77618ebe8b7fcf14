//! RADIUS benchmark: the release `countersign-server` on loopback with a
//! fresh SQLite file, answering RADIUS for one client at 127.0.0.1.
//!
//! 1. Codes: USERS activated devices (one user each); each user sends one
//!    Access-Request whose password is its current TOTP code, 32 requests in
//!    flight; every answer's authenticators are checked. Prints p50/p99 from
//!    request sent to Access-Accept read, and requests per second.
//! 2. Pushes: devices are `countersign push watch --json`, each on its own
//!    vault for a user of its own (a user gets 5 pushes a minute over
//!    RADIUS); PUSHES requests with the password `push`, one at a time, each approved
//!    by running `countersign push approve ID` once watch printed it. Prints
//!    p50/p99 of the whole (request sent → Access-Accept), of the part
//!    until watch printed the request, and of the approve command (which
//!    unlocks the vault: Argon2id, 64 MiB, 3 passes).
//!
//! It measures; it asserts nothing but that answers are genuine. Run
//! `tests/bench/radius [USERS] [PUSHES]` (defaults 2000 and 50).

use std::io::BufRead;
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use countersign::push::client;
use countersign::server::radius::packet;
use serde_json::{Value, json};

const RP: &str = "benchmark-rp-token";
const ADMIN: &str = "benchmark-admin-token";
const SECRET: &str = "the benchmark's shared secret";
const IN_FLIGHT: usize = 32;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[path = "stats.rs"]
mod stats;
use stats::percentile;

fn ms(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64() * 1000.0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> Value {
    http.post(url).bearer_auth(ADMIN).json(&body).send().await.expect("the server answers").json().await.unwrap_or(Value::Null)
}

/// One Access-Request over `socket`: (its answer's code, the time taken).
fn ask(socket: &UdpSocket, identifier: u8, user: &str, password: &[u8]) -> (u8, Duration) {
    let mut authenticator = [0u8; 16];
    getrandom::fill(&mut authenticator).unwrap();
    let request = packet::access_request(identifier, authenticator, user, password, &[], SECRET.as_bytes());
    let parsed = packet::Packet::parse(&request).unwrap();
    let started = Instant::now();
    socket.send(&request).unwrap();
    let mut buffer = [0u8; 4096];
    let length = socket.recv(&mut buffer).expect("an answer within the timeout");
    let took = started.elapsed();
    assert!(packet::response_valid(&buffer[..length], &parsed, SECRET.as_bytes()), "a genuine answer");
    (buffer[0], took)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let users = args.first().copied().unwrap_or(2000);
    let pushes = args.get(1).copied().unwrap_or(50);
    client::install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let (port, radius_port) = (free_port(), free_port());
    let config = dir.path().join("server.toml");
    std::fs::write(&config, format!("[[radius.clients]]\nname = \"Bench VPN\"\nsecret = \"{SECRET}\"\naddresses = [\"127.0.0.1\"]\n"))
        .unwrap();
    let binary = std::env::var("COUNTERSIGN_SERVER_BIN").unwrap_or_else(|_| "target/release/countersign-server".into());
    let database = dir.path().join("bench.sqlite3");
    let _server = Killed(
        Command::new(&binary)
            .args(["--database", database.to_str().unwrap(), "--listen", &format!("127.0.0.1:{port}")])
            .args(["--rp-token", RP, "--admin-token", ADMIN, "--activation-rate-per-minute", "10000", "--demo-pages", "false"])
            .args(["--config", config.to_str().unwrap(), "--radius-listen", &format!("127.0.0.1:{radius_port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}")),
    );
    for _ in 0..400 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    // 1. Codes.
    let started = Instant::now();
    let mut accounts = Vec::with_capacity(users);
    for chunk in (0..users).collect::<Vec<_>>().chunks(32) {
        let batch = chunk.iter().map(|&i| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let user = format!("user{i}");
                post(&http, format!("{base}/api/admin/users"), json!({ "name": user })).await;
                let activation = post(&http, format!("{base}/api/admin/users/{user}/activations"), json!({})).await;
                let url = activation["url"].as_str().expect("an activation");
                let client::Activated { account, .. } = client::activate(url, activation["code"].as_str().unwrap(), "bench").await.unwrap();
                (user, account)
            }
        });
        accounts.extend(futures_util::future::join_all(batch).await);
    }
    eprintln!("{users} devices activated in {:.1} s", started.elapsed().as_secs_f64());
    let accounts = Arc::new(accounts);
    let next = Arc::new(AtomicUsize::new(0));
    let target = format!("127.0.0.1:{radius_port}");
    let started = Instant::now();
    let workers: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (accounts, next, target) = (accounts.clone(), next.clone(), target.clone());
            std::thread::spawn(move || {
                let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                socket.connect(&target).unwrap();
                socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut results = Vec::new();
                let mut identifier = 0u8;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((user, account)) = accounts.get(i) else { break };
                    let code = countersign::otp::code(account, countersign::server::now() as u64).value;
                    identifier = identifier.wrapping_add(1);
                    results.push(ask(&socket, identifier, user, code.as_bytes()));
                }
                results
            })
        })
        .collect();
    let results: Vec<(u8, Duration)> = workers.into_iter().flat_map(|worker| worker.join().unwrap()).collect();
    let wall = started.elapsed();
    let accepted = results.iter().filter(|(code, _)| *code == packet::ACCESS_ACCEPT).count();
    let mut codes: Vec<Duration> = results.iter().map(|(_, took)| *took).collect();
    codes.sort();

    // 2. Pushes, approved by `countersign push watch` and `push approve`.
    // A user gets 5 pushes a minute over RADIUS: one vault and watch per
    // 5 pushes, each with a user of its own, taken in turn.
    let app = std::env::var("COUNTERSIGN_BIN").unwrap_or_else(|_| "target/release/countersign".into());
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "bench password\n").unwrap();
    let countersign = |vault: usize, args: &[&str]| {
        let mut command = Command::new(&app);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("COUNTERSIGN_VAULT", dir.path().join(format!("vault{vault}.cvault")))
            .env("COUNTERSIGN_PASSWORD_FILE", &password)
            .arg("--no-keyring")
            .args(args);
        command
    };
    let ran = |mut command: Command| {
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    };
    let devices = (pushes + 1).div_ceil(5);
    let (lines, printed) = std::sync::mpsc::channel::<String>();
    let mut watches = Vec::new();
    for vault in 0..devices {
        // The default key derivation (Argon2id, 64 MiB, 3 passes): each
        // `push approve` unlocks the vault as a tester's script would.
        ran(countersign(vault, &["init"]));
        let user = format!("pusher{vault}");
        post(&http, format!("{base}/api/admin/users"), json!({ "name": user })).await;
        let activation = post(&http, format!("{base}/api/admin/users/{user}/activations"), json!({})).await;
        let (code, url) = (activation["code"].as_str().unwrap(), activation["url"].as_str().unwrap());
        ran(countersign(vault, &["activate", "--code", code, "--url", url]));
        let mut watch =
            Killed(countersign(vault, &["push", "watch", "--json"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap());
        let (lines, stdout) = (lines.clone(), watch.0.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        watches.push(watch);
    }
    let mut totals = Vec::new();
    let mut deliveries = Vec::new();
    let mut approvals = Vec::new();
    // The first round only makes sure every watch holds its session.
    for round in 0..=pushes {
        let vault = round % devices;
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.connect(&target).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let started = Instant::now();
        let user = format!("pusher{vault}");
        let asking = std::thread::spawn(move || ask(&socket, 1, &user, b"push"));
        let id = loop {
            let line = printed.recv_timeout(Duration::from_secs(30)).expect("watch prints the request");
            if let Ok(value) = serde_json::from_str::<Value>(&line)
                && let Some(id) = value["id"].as_str()
                && value.get("app").is_some()
            {
                break id.to_owned();
            }
        };
        let delivered = started.elapsed();
        let approving = Instant::now();
        ran(countersign(vault, &["push", "approve", &id]));
        let approve = approving.elapsed();
        let (code, _) = asking.join().unwrap();
        let total = started.elapsed();
        assert_eq!(code, packet::ACCESS_ACCEPT, "an approved push is accepted");
        if round > 0 {
            totals.push(total);
            deliveries.push(delivered);
            approvals.push(approve);
        }
    }
    drop(watches);
    for list in [&mut totals, &mut deliveries, &mut approvals] {
        list.sort();
    }

    println!(
        "RADIUS (release countersign-server, SQLite, loopback, {} cores)",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    println!("| Access-Request with | requests | accepted | p50 ms | p99 ms | requests/s |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| a TOTP code ({IN_FLIGHT} in flight) | {} | {accepted} | {} | {} | {:.0} |",
        results.len(),
        ms(percentile(&codes, 0.5)),
        ms(percentile(&codes, 0.99)),
        results.len() as f64 / wall.as_secs_f64()
    );
    println!(
        "| `push`, approved with `countersign push approve` (one at a time) | {} | {} | {} | {} | {:.1} |",
        totals.len(),
        totals.len(),
        ms(percentile(&totals, 0.5)),
        ms(percentile(&totals, 0.99)),
        totals.len() as f64 / totals.iter().sum::<Duration>().as_secs_f64().max(1e-9)
    );
    println!(
        "|   of which: until `push watch` printed it | | | {} | {} | |",
        ms(percentile(&deliveries, 0.5)),
        ms(percentile(&deliveries, 0.99))
    );
    println!(
        "|   of which: the `push approve` command | | | {} | {} | |",
        ms(percentile(&approvals, 0.5)),
        ms(percentile(&approvals, 0.99))
    );
}
