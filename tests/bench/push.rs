//! Push delivery benchmark: the release `countersign-server` on loopback
//! with a fresh SQLite file, N activated devices (one user each) holding a
//! WebSocket through the real client code, sign-ins created at a steady rate
//! through the relying-party API, each approved by its device.
//!
//! Prints p50/p99 delivery (sign-in created → device has the verified
//! challenge), p50/p99 approval round trip (answer sent → the server's
//! verdict back), sign-ins per second, and the servers' RSS. It measures;
//! it asserts nothing. Run `tests/bench/push [DEVICES] [SECONDS] [RATE]
//! [--postgres] [--instances N]`: `--postgres` runs the server on a
//! throw-away PostgreSQL cluster instead of SQLite; `--instances 2` starts
//! two instances on it with nginx (the README's snippet) in front, which
//! devices and the relying party go through; `--sources N` connects the
//! devices from N loopback addresses (127.0.0.2 …), one per 20,000 devices
//! unless given. `--phone` measures texts and calls instead of pushes: the
//! server's `virtual` phone provider, each device answering for its user's
//! authentication phone; sign-ins alternate `sms` (the device replies with
//! the code) and `voice` (it presses #), each user in turn (a user may get
//! 3 texts and calls a minute).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use countersign::push::Decision;
use countersign::push::client::{self, Event, Session};
use serde_json::{Value, json};
use tokio::sync::Mutex;

#[allow(dead_code)]
#[path = "../common/cluster.rs"]
mod cluster;

/// What the cluster helpers need of the test servers' module.
mod server {
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }
}

const RP: &str = "benchmark-rp-token";
const ADMIN: &str = "benchmark-admin-token";

fn raise_fd_limit(wanted: u64) -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        limit.rlim_cur = limit.rlim_max.min(wanted);
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        limit.rlim_cur
    }
}

#[path = "stats.rs"]
mod stats;
use stats::percentile;

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The authentication phone of the bench's user `i` (the UK's drama range: 10,000 numbers).
fn phone_number(i: usize) -> String {
    format!("+44207946{:04}", i % 10_000)
}

async fn post(http: &reqwest::Client, url: String, token: &str, body: Value) -> Value {
    http.post(url).bearer_auth(token).json(&body).send().await.expect("the server answers").json().await.unwrap_or(Value::Null)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // Positional numbers; flags and the value after --instances are not.
    let mut args: Vec<String> = Vec::new();
    let mut all = std::env::args().skip(1);
    while let Some(arg) = all.next() {
        if arg == "--instances" || arg == "--sources" {
            all.next();
        } else if !arg.starts_with("--") {
            args.push(arg);
        }
    }
    let devices: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    let rate: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100);
    let fds = raise_fd_limit(4 * devices as u64 + 1024);
    client::install_crypto();

    let postgres_mode = std::env::args().any(|a| a == "--postgres");
    let phone_mode = std::env::args().any(|a| a == "--phone");
    assert!(!phone_mode || devices <= 10_000, "--phone has 10,000 numbers: at most 10,000 devices");
    let instances: usize = std::env::args().skip_while(|a| a != "--instances").nth(1).and_then(|n| n.parse().ok()).unwrap_or(1).max(1);
    // One loopback source address holds about 28,000 connections to one
    // server port (the ephemeral range): spread the devices past that.
    let sources: usize =
        std::env::args().skip_while(|a| a != "--sources").nth(1).and_then(|n| n.parse().ok()).unwrap_or(1 + devices / 20_000).clamp(1, 250);
    assert!(instances == 1 || postgres_mode, "several instances share a PostgreSQL database: add --postgres");
    let dir = tempfile::tempdir().unwrap();
    let postgres = postgres_mode.then(cluster::Postgres::start);
    let database = match &postgres {
        Some(postgres) => postgres.database("bench").await,
        None => dir.path().join("bench.sqlite3").to_str().unwrap().to_owned(),
    };
    let ports: Vec<u16> = (0..instances).map(|_| server::free_port()).collect();
    let nginx = (instances > 1).then(|| cluster::Nginx::start(&ports));
    let base = match &nginx {
        Some(nginx) => nginx.base(),
        None => format!("http://127.0.0.1:{}", ports[0]),
    };
    let binary = std::env::var("COUNTERSIGN_SERVER_BIN").unwrap_or_else(|_| "target/release/countersign-server".into());
    let config = dir.path().join("server.toml");
    std::fs::write(&config, if phone_mode { "[phone]\nprovider = \"virtual\"\n" } else { "" }).unwrap();
    let mut servers = Vec::new();
    for port in &ports {
        let child = Command::new(&binary)
            .args(["--database", &database, "--listen", &format!("127.0.0.1:{port}"), "--rp-token", RP, "--admin-token", ADMIN])
            .args(["--activation-rate-per-minute", "10000", "--challenge-seconds", "120", "--public-url", &base])
            .args(["--trusted-proxy", "127.0.0.1", "--demo-pages", "false", "--max-connections", "1000000"])
            .args(["--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            // Its refusals and errors (rate-limited to a few lines a minute).
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        servers.push(Server(child));
        // One at a time: the first migrates the empty database.
        for _ in 0..400 {
            if std::net::TcpStream::connect(("127.0.0.1", *port)).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        if let Some(Server(child)) = servers.last_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            panic!("{binary} exited at start ({status}); its reason is above");
        }
    }
    let pids: Vec<u32> = servers.iter().map(|server| server.0.id()).collect();
    let rss = || pids.iter().map(|pid| rss_mb(*pid)).sum::<f64>();
    let mut setup = match (postgres_mode, instances) {
        (false, _) => "SQLite, 1 instance".to_owned(),
        (true, 1) => "PostgreSQL, 1 instance".to_owned(),
        (true, n) => format!("PostgreSQL, {n} instances behind nginx"),
    };
    if phone_mode {
        setup.push_str("; texts and calls (half each) to virtual phones");
    }
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let rss_idle = rss();

    // Users, activations and devices, 32 at a time (over 10,000, the
    // activation limit paces them).
    let started = Instant::now();
    let mut links = Vec::with_capacity(devices);
    for chunk in (0..devices).collect::<Vec<_>>().chunks(32) {
        let batch = chunk.iter().map(|&i| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let user = format!("user{i}");
                post(&http, format!("{base}/api/admin/users"), ADMIN, json!({ "name": user })).await;
                if phone_mode {
                    let phone = http
                        .put(format!("{base}/api/admin/users/{user}/phones/authentication"))
                        .bearer_auth(ADMIN)
                        .json(&json!({ "number": phone_number(i) }))
                        .send()
                        .await
                        .expect("the server answers");
                    assert!(phone.status().is_success(), "setting {}: {}", phone_number(i), phone.status());
                }
                // The server takes at most 10,000 activations a minute from
                // one address: past that, wait for the window (bounded).
                for _ in 0..120 {
                    let activation = post(&http, format!("{base}/api/admin/users/{user}/activations"), ADMIN, json!({})).await;
                    match client::activate(activation["url"].as_str().unwrap(), activation["code"].as_str().unwrap(), "bench").await {
                        Ok(client::Activated { link, .. }) => return (user, link),
                        Err(client::Error::Server(error)) if error.error == "rate_limited" => {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        Err(error) => panic!("activation: {error}"),
                    }
                }
                panic!("activation: still rate-limited after two minutes")
            }
        });
        links.extend(futures_util::future::join_all(batch).await);
    }
    let enrolled = started.elapsed();

    // Every device connects and answers what it receives.
    let delivered: Arc<Mutex<Vec<(String, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let round_trips: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut sessions = Vec::new();
    for (n, chunk) in links.chunks(64).enumerate() {
        let connected = futures_util::future::join_all(chunk.iter().enumerate().map(|(i, (_, link))| {
            // 127.0.0.2, 127.0.0.3, …: one address per device in turn.
            let source = std::net::IpAddr::from([127, 0, 0, 2 + ((n * 64 + i) % sources) as u8]);
            Session::connect_from(link, jiff::Timestamp::now, (sources > 1).then_some(source))
        }))
        .await;
        sessions.extend(connected.into_iter().map(|s| s.expect("connect")));
    }
    let connect_time = started.elapsed();
    if phone_mode {
        for (i, session) in sessions.iter_mut().enumerate() {
            session.phone(&phone_number(i), true).await.expect("the device answers for its user's phone");
        }
    }
    let rss_connected = rss();
    let mut tasks = Vec::new();
    for (mut session, (_, link)) in sessions.into_iter().zip(&links) {
        let (delivered, round_trips) = (delivered.clone(), round_trips.clone());
        let device_key = link.device_key.clone();
        tasks.push(tokio::spawn(async move {
            // One loop for challenges and verdicts: waiting for a verdict
            // alone (Session::verdict) would skip a challenge arriving meanwhile.
            let mut answered: std::collections::HashMap<String, Instant> = std::collections::HashMap::new();
            while let Ok(event) = session.next().await {
                match event {
                    Event::Challenge(challenge) => {
                        delivered.lock().await.push((challenge.id.clone(), Instant::now()));
                        answered.insert(challenge.id.clone(), Instant::now());
                        // The bench approves without the number: wrong numbers are
                        // recorded as denied, which costs the server the same.
                        if session.respond(&challenge.id, Decision::Approve, None, false, countersign::server::now()).await.is_err() {
                            return;
                        }
                    }
                    Event::Result { challenge_id, .. } => {
                        if let Some(sent) = answered.remove(&challenge_id) {
                            round_trips.lock().await.push(sent.elapsed());
                        }
                    }
                    // Each user gets one text or call at a time here, so
                    // waiting for its verdict skips nothing.
                    Event::Text(text) => {
                        // Shown once its code is read (unsealed with the device key).
                        let Ok(body) = text.open(&device_key) else { return };
                        delivered.lock().await.push((text.id.clone(), Instant::now()));
                        let sent = Instant::now();
                        match session.reply(&text.id, &body.code).await {
                            Ok((true, ..)) => round_trips.lock().await.push(sent.elapsed()),
                            Ok(_) => {}
                            Err(_) => return,
                        }
                    }
                    Event::Call(call) => {
                        delivered.lock().await.push((call.id.clone(), Instant::now()));
                        let sent = Instant::now();
                        match session.keys(&call.id, "#", false).await {
                            Ok((true, ..)) => round_trips.lock().await.push(sent.elapsed()),
                            Ok(_) => {}
                            Err(_) => return,
                        }
                    }
                    _ => {}
                }
            }
        }));
    }

    // Sign-ins at a steady rate for `seconds`, to random users.
    let total = (rate * seconds) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let created: Arc<Mutex<Vec<(String, Instant)>>> = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let started = Instant::now();
    let mut ticker = tokio::time::interval(interval);
    let mut creators = Vec::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    // In any minute each user gets its share of that minute's sign-ins.
    let per_minute = (rate * seconds.min(60)) as usize;
    if phone_mode && per_minute > 3 * devices {
        eprintln!(
            "warning: {per_minute} texts and calls a minute for {devices} users: past 3 a user a minute, the server refuses them (429)"
        );
    }
    for n in 0..total {
        ticker.tick().await;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Texts and calls go to each user in turn; pushes to random users.
        let (user, method) = if phone_mode {
            (links[n % devices].0.clone(), if n % 2 == 0 { "sms" } else { "voice" })
        } else {
            (links[(seed % devices as u64) as usize].0.clone(), "push")
        };
        let (http, base, created) = (http.clone(), base.clone(), created.clone());
        creators.push(tokio::spawn(async move {
            let at = Instant::now();
            let body = post(&http, format!("{base}/api/signins"), RP, json!({ "user": user, "app": "bench", "method": method })).await;
            if let Some(id) = body["id"].as_str() {
                created.lock().await.push((id.to_owned(), at));
            }
        }));
    }
    futures_util::future::join_all(creators).await;
    let creating = started.elapsed();
    // Let the last answers land (bounded).
    for _ in 0..100 {
        if round_trips.lock().await.len() >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_end = rss();
    for task in tasks {
        task.abort();
    }

    let created = created.lock().await.clone();
    let delivered = delivered.lock().await.clone();
    let mut delivery: Vec<Duration> = created
        .iter()
        .filter_map(|(id, at)| delivered.iter().find(|(d, _)| d == id).map(|(_, got)| got.saturating_duration_since(*at)))
        .collect();
    delivery.sort();
    let mut round: Vec<Duration> = round_trips.lock().await.clone();
    round.sort();
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    println!("| what | figure |");
    println!("|---|---|");
    println!("| setup | {setup} |");
    println!("| devices connected over WebSocket | {devices} from {sources} source address(es) (fd limit {fds}) |");
    println!("| enroll (user + activation + activate), all devices | {:.1} s |", enrolled.as_secs_f64());
    println!("| connect + authenticate, all devices | {:.2} s |", connect_time.as_secs_f64());
    println!("| sign-ins created / delivered / answered | {} / {} / {} |", created.len(), delivery.len(), round.len());
    println!("| sign-ins per second (target rate {rate}) | {:.1} |", created.len() as f64 / creating.as_secs_f64());
    println!(
        "| delivery p50 / p99 (created → the device has the challenge, text or call, its signature verified) | {} / {} |",
        ms(percentile(&delivery, 0.5)),
        ms(percentile(&delivery, 0.99))
    );
    println!(
        "| approval round trip p50 / p99 (answer, reply or # sent → verdict back) | {} / {} |",
        ms(percentile(&round, 0.5)),
        ms(percentile(&round, 0.99))
    );
    println!(
        "| server RSS (all instances) idle / {devices} connected / after the run | {rss_idle:.1} / {rss_connected:.1} / {rss_end:.1} MB |"
    );
    drop((servers, nginx, postgres));
}
