//! The real `countersign-server` binary on a free loopback port, with a
//! fresh SQLite file, for the push tests.

use std::io::BufRead;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use countersign::push::client::{self, Event, Session};
use countersign::push::{Challenge, Link};
use serde_json::{Value, json};

pub const RP: &str = "rp-token-for-tests";
pub const ADMIN: &str = "admin-token-for-tests";

/// The server binary on a free loopback port; killed on drop. Or, from
/// [`Server::remote`], an address only (a load balancer in front of some).
pub struct Server {
    child: Option<Child>,
    /// Closed when the process is gone (its standard error ended).
    ended: mpsc::Receiver<()>,
    pub base: String,
    pub database: PathBuf,
    pub port: u16,
    extra: Vec<String>,
    /// What the server wrote to standard error after "listening on" (the
    /// first 10,000 lines).
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// The next challenge on `session`, skipping pings and what the server
/// tells of sign-ins answered elsewhere; at most 10 s.
pub async fn next_challenge(session: &mut Session) -> Challenge {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), session.next()).await.expect("a challenge within 10 s").unwrap() {
            Event::Challenge(challenge) => return challenge,
            Event::Alive | Event::Result { accepted: true, .. } => continue,
            other => panic!("expected a challenge, got {other:?}"),
        }
    }
}

/// The next text or call on a virtual phone's `session`, skipping pings and
/// challenges; at most 10 s.
pub async fn next_text_or_call(session: &mut Session) -> Event {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), session.next()).await.expect("a text or call within 10 s").unwrap() {
            event @ (Event::Text(_) | Event::Call(_)) => return event,
            _ => continue,
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Server {
    pub fn start(dir: &Path, extra: &[&str]) -> Server {
        Server::start_on(dir.join("server.sqlite3"), free_port(), extra.iter().map(std::string::ToString::to_string).collect())
    }

    pub fn start_on(database: PathBuf, port: u16, extra: Vec<String>) -> Server {
        Server::start_with(database, port, extra, &[])
    }

    /// A server whose phone provider is `virtual` (texts and calls go to
    /// the devices that answer for the number), with `extra` flags.
    pub fn with_virtual_phones(dir: &Path, extra: &[&str]) -> Server {
        let config = dir.join("server.toml");
        std::fs::write(&config, "[phone]\nprovider = \"virtual\"\n").unwrap();
        let mut flags = vec!["--config", config.to_str().unwrap()];
        flags.extend_from_slice(extra);
        Server::start(dir, &flags)
    }

    /// With environment variables (libfaketime's, to give it another clock).
    pub fn start_with(database: PathBuf, port: u16, extra: Vec<String>, env: &[(&str, &str)]) -> Server {
        client::install_crypto();
        let mut child = Command::new(env!("CARGO_BIN_EXE_countersign-server"))
            .args([
                "--database",
                database.to_str().unwrap(),
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--rp-token",
                RP,
                "--admin-token",
                ADMIN,
            ])
            .args(&extra)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The server says "listening on" once its socket is bound; what it
        // says before is kept for the failure message, what follows (the
        // audit log) is read, so that it never blocks on a full pipe, and kept.
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let mut said = Vec::new();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("countersign-server: listening on") => break,
                Some(Ok(line)) => said.push(line),
                _ => panic!("the server ended before it listened: {}", said.join("\n")),
            }
        }
        let (gone, ended) = mpsc::channel::<()>();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut kept = kept.lock().unwrap();
                if kept.len() < 10_000 {
                    kept.push(line);
                }
            }
            drop(gone);
        });
        Server { child: Some(child), ended, base: format!("http://127.0.0.1:{port}"), database, port, extra, log }
    }

    /// The API at `base`, served by processes started elsewhere.
    pub fn remote(base: &str) -> Server {
        let port = base.rsplit(':').next().and_then(|port| port.parse().ok()).unwrap_or(0);
        Server {
            child: None,
            ended: mpsc::channel().1,
            base: base.to_owned(),
            database: PathBuf::new(),
            port,
            extra: Vec::new(),
            log: Default::default(),
        }
    }

    /// What the server has logged since it listened.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The first logged line containing `needle`, waiting up to 10 s for
    /// it (a thread reads the server's standard error as it comes).
    pub fn wait_for_log(&self, needle: &str) -> String {
        for _ in 0..200 {
            if let Some(line) = self.log.lock().unwrap().iter().find(|line| line.contains(needle)) {
                return line.clone();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no line with {needle:?} logged within 10 s:\n{}", self.log());
    }

    fn child(&self) -> &Child {
        self.child.as_ref().expect("a server this test started")
    }

    /// Stops it and starts it again on the same database and port.
    pub fn restart(mut self) -> Server {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        let (database, port, extra) = (self.database.clone(), self.port, self.extra.clone());
        drop(self);
        Server::start_on(database, port, extra)
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let response = reqwest::Client::new().post(format!("{}{path}", self.base)).bearer_auth(token).json(&body).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn raw_post(&self, path: &str, token: &str, body: &'static str) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn delete(&self, path: &str, token: &str) -> u16 {
        reqwest::Client::new().delete(format!("{}{path}", self.base)).bearer_auth(token).send().await.unwrap().status().as_u16()
    }

    pub fn pid(&self) -> u32 {
        self.child().id()
    }

    /// Sends `signal` to the server process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill only sends a signal to our own child.
        assert_eq!(unsafe { libc::kill(self.child().id() as i32, signal) }, 0);
    }

    /// How the process ended, if it did within `within`.
    pub fn exit_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        match self.ended.recv_timeout(within) {
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(self.child.as_mut().expect("a started server").wait().unwrap()),
            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => None,
        }
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child().id())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> Value {
        self.get_with(path, RP).await
    }

    pub async fn get_with(&self, path: &str, token: &str) -> Value {
        reqwest::Client::new().get(format!("{}{path}", self.base)).bearer_auth(token).send().await.unwrap().json().await.unwrap()
    }

    /// A user and a fresh activation: (code, url).
    pub async fn activation(&self, user: &str) -> (String, String) {
        let (status, _) = self.post("/api/admin/users", ADMIN, json!({ "name": user, "organization": "Contoso" })).await;
        assert!(status == 201 || status == 409, "user add: {status}");
        let (status, activation) = self.post(&format!("/api/admin/users/{user}/activations"), ADMIN, json!({})).await;
        assert_eq!(status, 201);
        (activation["code"].as_str().unwrap().to_owned(), activation["url"].as_str().unwrap().to_owned())
    }

    /// An activated device for `user`.
    pub async fn device(&self, user: &str) -> Link {
        self.device_and_account(user).await.0
    }

    /// An activated device for `user`, and the account it shows codes of.
    pub async fn device_and_account(&self, user: &str) -> (Link, countersign::account::Account) {
        let (code, url) = self.activation(user).await;
        let client::Activated { account, link, .. } = client::activate(&url, &code, "test device").await.unwrap();
        assert_eq!((account.issuer.as_str(), account.name.as_str()), ("Contoso", user));
        (link, account)
    }

    /// An activated device for `user`, with its receive-only credential.
    pub async fn device_with_listener(&self, user: &str) -> (Link, countersign::push::Listener) {
        let (code, url) = self.activation(user).await;
        let client::Activated { link, listener, .. } = client::activate(&url, &code, "test device").await.unwrap();
        (link, listener.expect("this server keeps listener keys"))
    }

    /// A device activated the way apps did before listener keys: no
    /// listener key in the request.
    pub async fn device_without_listener(&self, user: &str) -> Link {
        let (code, url) = self.activation(user).await;
        let key = countersign::push::Keypair::generate().unwrap();
        let request = json!({ "code": code, "device_public_key": key.public().to_base64(), "device_name": "old app" });
        let answer: countersign::push::ActivationResponse =
            reqwest::Client::new().post(&url).json(&request).send().await.unwrap().json().await.unwrap();
        assert!(!answer.listener, "no listener key was sent, so none was kept");
        Link {
            organization: answer.organization,
            user: answer.user,
            device_id: answer.device_id,
            device_key: key,
            server_key: answer.server_public_key,
            endpoint: answer.push_endpoint,
        }
    }

    /// Creates a sign-in: (id, number).
    pub async fn signin(&self, user: &str) -> (String, Option<u32>) {
        let (status, body) =
            self.post("/api/signins", RP, json!({ "user": user, "app": "Contoso VPN", "ip": "203.0.113.7", "location": "Zurich" })).await;
        assert_eq!(status, 201, "{body}");
        (body["id"].as_str().unwrap().to_owned(), body["number"].as_u64().map(|n| n as u32))
    }

    pub async fn status(&self, id: &str, wait: u64) -> String {
        self.get(&format!("/api/signins/{id}?wait={wait}")).await["status"].as_str().unwrap().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
