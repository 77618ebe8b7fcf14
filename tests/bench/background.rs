//! Reachability benchmark: the release app and server on one machine, under
//! Xvfb and a private session bus (`tests/bench/background` sets both up).
//! This program is the desktop's notification service (it owns
//! `org.freedesktop.Notifications`), so it sees the moment each
//! notification is asked for, and it watches the X server for the window.
//!
//! It measures, with a password-only vault that is never unlocked:
//!   - sign-in created (relying-party API) → notification shown, p50/p95,
//!     with the window open on the unlock screen (locked) and with no window
//!     (`--background`, closed);
//!   - the background process's resident memory, and its CPU over 60 s idle;
//!   - the window reopened from the tray's Open (dbusmenu, as a tray host
//!     calls it) → its first frame on screen.
//!
//! It prints a table; it asserts nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use x11rb::connection::Connection;
use x11rb::protocol::Event as XEvent;
use x11rb::protocol::xproto::{ChangeWindowAttributesAux, ClientMessageEvent, ConnectionExt, EventMask, ImageFormat};

const RP: &str = "benchmark-rp-token";
const ROUNDS: usize = 40;
const REOPENS: usize = 10;

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The notification service: every Notify call's summary and arrival.
struct Notifications {
    seen: mpsc::UnboundedSender<(Instant, String)>,
    next: u32,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Notifications {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &mut self,
        _app: String,
        _replaces: u32,
        _icon: String,
        summary: String,
        _body: String,
        _actions: Vec<String>,
        _hints: HashMap<String, zbus::OwnedVariant>,
        _timeout: i32,
    ) -> u32 {
        let _ = self.seen.send((Instant::now(), summary));
        self.next += 1;
        self.next
    }

    fn close_notification(&self, _id: u32) {}

    fn get_capabilities(&self) -> Vec<String> {
        vec!["actions".into(), "body".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        ("bench".into(), "countersign".into(), "1".into(), "1.2".into())
    }
}

#[path = "stats.rs"]
mod stats;
use stats::percentile;

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// User plus system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0) + fields.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

fn release(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release").join(name)
}

fn run(program: &Path, args: &[&str]) -> String {
    let output = Command::new(program).args(args).output().expect("the binary runs");
    assert!(output.status.success(), "{} {args:?}: {}", program.display(), String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

struct Bench {
    dir: tempfile::TempDir,
    port: u16,
    app: PathBuf,
    http: reqwest::Client,
    seen: mpsc::UnboundedReceiver<(Instant, String)>,
}

impl Bench {
    fn vault(&self) -> String {
        self.dir.path().join("vault.cvault").display().to_string()
    }

    fn start_app(&self, background: bool) -> Process {
        let mut command = Command::new(&self.app);
        command
            .args(["--vault", &self.vault()])
            .env("COUNTERSIGN_SETTINGS", self.dir.path().join("settings.json"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if background {
            command.arg("--background");
        }
        Process(command.spawn().expect("the app starts"))
    }

    async fn signin(&self, app: &str) -> Value {
        self.http
            .post(format!("http://127.0.0.1:{}/api/signins", self.port))
            .bearer_auth(RP)
            .json(&json!({ "user": "alice", "app": app, "location": "Zurich" }))
            .send()
            .await
            .expect("the server answers")
            .json()
            .await
            .expect("JSON")
    }

    /// Waits until the app's connection takes requests (a probe is delivered).
    async fn until_connected(&mut self) {
        for attempt in 0..200 {
            if self.signin(&format!("probe {attempt}")).await["delivered"] == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the app never connected");
    }

    /// Created → notified, for each of ROUNDS sign-ins.
    async fn latencies(&mut self, label: &str) -> Vec<Duration> {
        self.until_connected().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        while self.seen.try_recv().is_ok() {}
        let mut taken = Vec::new();
        for round in 0..ROUNDS {
            let app = format!("{label} {round}");
            let created = Instant::now();
            let answer = self.signin(&app).await;
            assert_eq!(answer["delivered"], 1, "{answer}");
            let wanted = format!("Sign-in request: {app}");
            let shown = tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    let (at, summary) = self.seen.recv().await.expect("the notification service runs");
                    if summary == wanted {
                        return at;
                    }
                }
            })
            .await
            .expect("a notification within 10 s");
            taken.push(shown - created);
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        taken.sort();
        taken
    }
}

/// The tray item's "Open Countersign", clicked as a tray host clicks it.
async fn tray_open(bus: &zbus::Connection, pid: u32) -> Result<(), String> {
    let dbus = zbus::fdo::DBusProxy::new(bus).await.map_err(|e| e.to_string())?;
    let names = dbus.list_names().await.map_err(|e| e.to_string())?;
    let prefix = format!("org.kde.StatusNotifierItem-{pid}-");
    let item = names.iter().find(|n| n.as_str().starts_with(&prefix)).ok_or("no tray item")?.to_string();
    let menu = zbus::Proxy::new(bus, item.as_str(), "/MenuBar", "com.canonical.dbusmenu").await.map_err(|e| e.to_string())?;
    type Layout = (u32, (i32, HashMap<String, zbus::OwnedVariant>, Vec<zbus::OwnedVariant>));
    let (_, (_, _, children)): Layout = menu.call("GetLayout", &(0i32, -1i32, Vec::<String>::new())).await.map_err(|e| e.to_string())?;
    for child in children {
        let (id, properties, _): (i32, HashMap<String, zbus::OwnedVariant>, Vec<zbus::OwnedVariant>) =
            child.try_into().map_err(|e: zbus::Error| e.to_string())?;
        let label: Option<String> = properties.get("label").and_then(|v| v.try_clone().ok()).and_then(|v| v.try_into().ok());
        if label.as_deref() == Some("Open Countersign") {
            let _: () = menu.call("Event", &(id, "clicked", zbus::Variant::from(""), 0u32)).await.map_err(|e| e.to_string())?;
            return Ok(());
        }
    }
    Err("the tray has no Open Countersign".into())
}

/// Time from the tray's Open to the window's first drawn frame, REOPENS times.
async fn reopen_times(bus: &zbus::Connection, pid: u32) -> Vec<Duration> {
    let (x11, screen) = x11rb::connect(None).expect("an X display (Xvfb)");
    let root = x11.setup().roots[screen].root;
    x11.change_window_attributes(root, &ChangeWindowAttributesAux::new().event_mask(EventMask::SUBSTRUCTURE_NOTIFY))
        .expect("root events")
        .check()
        .expect("root events");
    let protocols = x11.intern_atom(false, b"WM_PROTOCOLS").unwrap().reply().unwrap().atom;
    let delete = x11.intern_atom(false, b"WM_DELETE_WINDOW").unwrap().reply().unwrap().atom;
    let mut times = Vec::new();
    for _ in 0..REOPENS {
        tokio::time::sleep(Duration::from_millis(700)).await;
        while x11.poll_for_event().ok().flatten().is_some() {}
        let clicked = Instant::now();
        tray_open(bus, pid).await.expect("the tray opens the window");
        // The window maps...
        let window = loop {
            match x11.wait_for_event().expect("X events") {
                XEvent::MapNotify(event) => break event.window,
                _ => continue,
            }
        };
        // ...and its first frame has something drawn (text on a background).
        let drawn = loop {
            let Ok(geometry) = x11.get_geometry(window).unwrap().reply() else { continue };
            if let Ok(image) = x11.get_image(ImageFormat::Z_PIXMAP, window, 0, 0, geometry.width, geometry.height, !0).unwrap().reply() {
                let first = image.data.get(..4).map(<[u8]>::to_vec).unwrap_or_default();
                if image.data.chunks_exact(4).any(|pixel| pixel != first.as_slice()) {
                    break Instant::now();
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        times.push(drawn - clicked);
        // Closed as a window manager closes it: WM_DELETE_WINDOW.
        let close = ClientMessageEvent::new(32, window, protocols, [delete, 0, 0, 0, 0]);
        x11.send_event(false, window, EventMask::NO_EVENT, close).unwrap();
        x11.flush().unwrap();
        loop {
            match x11.wait_for_event().expect("X events") {
                XEvent::UnmapNotify(event) if event.window == window => break,
                XEvent::DestroyNotify(event) if event.window == window => break,
                _ => {}
            }
        }
    }
    times.sort();
    times
}

#[tokio::main]
async fn main() {
    assert!(
        std::env::var_os("DISPLAY").is_some() && std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "run tests/bench/background: it starts Xvfb and a private session bus"
    );
    let (seen_sender, seen) = mpsc::unbounded_channel();
    let bus = zbus::connection::Builder::session()
        .name("org.freedesktop.Notifications")
        .serve_at("/org/freedesktop/Notifications", Notifications { seen: seen_sender, next: 0 })
        .build()
        .await
        .expect("the private session bus");
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server_bin = release("countersign-server");
    let database = dir.path().join("server.sqlite3").display().to_string();
    let listen = format!("127.0.0.1:{port}");
    let server_args = ["--database", database.as_str(), "--listen", listen.as_str(), "--rp-token", RP, "--challenge-seconds", "15"];
    run(&server_bin, &[&server_args[..], &["user", "add", "alice"]].concat());
    let activation: Value =
        serde_json::from_str(&run(&server_bin, &[&server_args[..], &["activate", "alice", "--json"]].concat())).unwrap();
    let _server = Process(Command::new(&server_bin).args(server_args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let app = release("countersign");
    let vault = dir.path().join("vault.cvault").display().to_string();
    let password = dir.path().join("password");
    std::fs::write(&password, "benchmark password\n").unwrap();
    let password = password.display().to_string();
    let cli =
        |args: &[&str]| run(&app, &[&["--vault", vault.as_str(), "--no-keyring", "--password-file", password.as_str()][..], args].concat());
    cli(&["init", "--kdf-memory", "8", "--kdf-passes", "1", "--insecure-kdf"]);
    cli(&["activate", "--code", activation["code"].as_str().unwrap(), "--url", activation["url"].as_str().unwrap()]);
    countersign::push::client::install_crypto();
    let mut bench = Bench { dir, port, app: app.clone(), http: reqwest::Client::new(), seen };

    // Locked: the window open on the unlock screen of a vault never unlocked.
    let locked_app = bench.start_app(false);
    let locked = bench.latencies("locked").await;
    drop(locked_app);

    // Closed: no window at all.
    let background = bench.start_app(true);
    let pid = background.0.id();
    bench.until_connected().await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rss_started = rss_mb(pid);
    let closed = bench.latencies("closed").await;
    // The requests expire (15 s), then the process is idle.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let rss = rss_mb(pid);
    let before = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let idle_ticks = cpu_ticks(pid) - before;
    let hz = 100.0; // Linux USER_HZ
    let idle = 100.0 * idle_ticks as f64 / hz / 60.0;
    let reopen = reopen_times(&bus, pid).await;
    drop(background);

    println!("Countersign reachability benchmark (release, tiny-skia, Xvfb, password-only vault never unlocked)");
    println!();
    println!("| what | p50 | p95 | goal |");
    println!("|---|---|---|---|");
    println!(
        "| sign-in created → notification, window locked ({ROUNDS}) | {} | {} | |",
        ms(percentile(&locked, 0.5)),
        ms(percentile(&locked, 0.95))
    );
    println!(
        "| sign-in created → notification, window closed ({ROUNDS}) | {} | {} | |",
        ms(percentile(&closed, 0.5)),
        ms(percentile(&closed, 0.95))
    );
    println!(
        "| tray's Open → first frame, window closed ({REOPENS}) | {} | {} | < 150 ms |",
        ms(percentile(&reopen, 0.5)),
        ms(percentile(&reopen, 0.95))
    );
    println!();
    println!("| idle, window closed | value | goal |");
    println!("|---|---|---|");
    println!("| resident memory, connected, before any request | {rss_started:.1} MB | < 25 MB |");
    println!("| resident memory after {ROUNDS} requests (expired) | {rss:.1} MB | < 25 MB |");
    println!("| CPU over 60 s | {idle:.3} % of a core ({idle_ticks} ticks) | < 0.2 % |");
}
