//! PAM: `countersign-server pam` under Linux-PAM's pam_exec, driven by
//! Debian's `pamtester` on a throw-away service file, and by a real `sshd`
//! on a loopback port (keyboard-interactive) with OpenSSH's client.
//!
//! They write /etc/pam.d/countersign-test-* (removed afterwards), so they
//! need root; without root, pamtester or sshd they say so and pass, unless
//! COUNTERSIGN_REQUIRE_PAM=1 (tests/run sets it) makes that a failure.

#![cfg(all(feature = "server", feature = "client", target_os = "linux"))]

mod common;

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::server::{RP, Server, free_port, next_challenge};
use countersign::account::Account;
use countersign::push::Decision;
use countersign::push::client::Session;

const HELPER: &str = env!("CARGO_BIN_EXE_countersign-server");

fn now() -> i64 {
    countersign::server::now()
}

fn ready() -> bool {
    let root = unsafe { libc::geteuid() } == 0;
    let found =
        |program: &str| Command::new("sh").args(["-c", &format!("command -v {program}")]).output().is_ok_and(|o| o.status.success());
    let missing: Vec<&str> = [
        (!root).then_some("root"),
        (!found("pamtester")).then_some("pamtester"),
        (!Path::new("/usr/sbin/sshd").exists()).then_some("sshd"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return true;
    }
    let required = std::env::var_os("COUNTERSIGN_REQUIRE_PAM").is_some_and(|value| value == "1");
    assert!(
        !required,
        "COUNTERSIGN_REQUIRE_PAM=1 but {missing:?} missing: tests/run installs pamtester and openssh-server and runs as root"
    );
    eprintln!("skipping: {missing:?} missing (COUNTERSIGN_REQUIRE_PAM=1 makes this a failure)");
    false
}

/// A free port below 1024 on 127.0.0.1: the helper takes plain http only
/// there (a port no other local user can bind).
fn privileged_port() -> u16 {
    // Tests run at once: each call starts further on, so two seldom race for one.
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let start = 600 + (std::process::id() + 37 * CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) % 300;
    (start..1000)
        .chain(600..start)
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", u16::try_from(*port).unwrap())).is_ok())
        .map(|port| u16::try_from(port).unwrap())
        .expect("a free port below 1024")
}

/// A server for these tests, on a port below 1024.
fn server(dir: &Path, extra: &[&str]) -> Server {
    Server::start_on(dir.join("server.sqlite3"), privileged_port(), extra.iter().map(ToString::to_string).collect())
}

/// A PAM service file in /etc/pam.d running the helper with `config`, as
/// the package's stacks do (`countersign`: it asks; `countersign-push`:
/// a push only, after a module that asked); removed on drop.
struct Service {
    name: String,
}

impl Service {
    fn new(config: &Path) -> Service {
        Service::with_stack(config, true)
    }

    fn with_stack(config: &Path, asking: bool) -> Service {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!("countersign-test-{}-{}", std::process::id(), NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let stack = if asking {
            format!(
                "auth optional pam_echo.so Countersign: type the code from your app, or press Enter for a push.\n\
                 auth required pam_exec.so expose_authtok stdout {HELPER} pam --config {}\n",
                config.display()
            )
        } else {
            format!("auth required pam_exec.so stdout {HELPER} pam --config {}\n", config.display())
        };
        std::fs::write(
            format!("/etc/pam.d/{name}"),
            format!("{stack}auth optional pam_permit.so\naccount required pam_permit.so\nsession required pam_permit.so\n"),
        )
        .unwrap();
        Service { name }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/etc/pam.d/{}", self.name));
    }
}

/// The helper's settings, 0600.
fn helper_config(dir: &Path, url: &str, more: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(format!("pam-{}.toml", free_port()));
    std::fs::write(&path, format!("url = \"{url}\"\nrp_token = \"{RP}\"\nhost_name = \"web-1\"\n{more}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// pamtester's verdict and what the user was shown.
fn pamtester(service: &Service, user: &str, typed: &str) -> (bool, String) {
    let mut child = Command::new("pamtester")
        .args(["-I", "rhost=203.0.113.5", &service.name, user, "authenticate"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{typed}\n").as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success() && text.contains("successfully authenticated"), text)
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

/// A server, root's device connected to it, and a service asking it.
struct Signing {
    dir: tempfile::TempDir,
    server: Server,
    account: Account,
    session: Session,
    service: Service,
}

async fn signing() -> Signing {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), &[]);
    let (link, account) = server.device_and_account("root").await;
    let session = Session::connect(&link, jiff::Timestamp::now).await.unwrap();
    let service = Service::new(&helper_config(dir.path(), &server.base, ""));
    Signing { dir, server, account, session, service }
}

#[tokio::test]
async fn pamtester_signs_in_by_push_or_code_and_refuses_a_denial() {
    if !ready() {
        return;
    }
    let Signing { dir, server, account, mut session, service } = signing().await;
    let service = std::sync::Arc::new(service);

    for (decision, let_in, shown) in [(Decision::Approve, true, "Countersign: approved."), (Decision::Deny, false, "Countersign: denied.")]
    {
        let asking = service.clone();
        let waiting = tokio::task::spawn_blocking(move || pamtester(&asking, "root", ""));
        let challenge = next_challenge(&mut session).await;
        assert_eq!((challenge.app.as_str(), challenge.ip.as_str()), (format!("{} on web-1", service.name).as_str(), "203.0.113.5"));
        assert!(!challenge.number_matching, "nothing would show the number over SSH");
        session.respond(&challenge.id, decision, None, false, now()).await.unwrap();
        let (accepted, text) = waiting.await.unwrap();
        assert_eq!(accepted, let_in, "{text}");
        assert!(text.contains("Countersign: type the code from your app, or press Enter for a push.") && text.contains(shown), "{text}");
    }

    // A code typed at the prompt, once.
    let code = countersign::otp::code(&account, now() as u64).value;
    let asking = service.clone();
    let typed = code.clone();
    let (accepted, text) = blocking(move || pamtester(&asking, "root", &typed)).await;
    assert!(accepted && text.contains("Countersign: code accepted."), "{text}");
    let asking = service.clone();
    let (accepted, text) = blocking(move || pamtester(&asking, "root", &code)).await;
    assert!(!accepted && text.contains("wrong or already used code"), "{text}");

    // The push-only stack (after common-auth) hands the helper nothing
    // typed: even digits on the terminal mean a push.
    let push_only = Service::with_stack(&helper_config(dir.path(), &server.base, ""), false);
    let waiting = tokio::task::spawn_blocking(move || pamtester(&push_only, "root", "12345678"));
    let challenge = next_challenge(&mut session).await;
    session.respond(&challenge.id, Decision::Approve, None, false, now()).await.unwrap();
    let (accepted, text) = waiting.await.unwrap();
    assert!(accepted && text.contains("Countersign: approved.") && !text.contains("type the code"), "{text}");
}

#[tokio::test]
async fn users_without_a_device_and_an_unreachable_server_are_refused_unless_told_otherwise() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), &[]);
    let (status, _) =
        server.post("/api/admin/users", common::server::ADMIN, serde_json::json!({ "name": "nodevice", "organization": "Contoso" })).await;
    assert_eq!(status, 201);
    for (user, more, let_in, shown) in [
        ("nodevice", "", false, "has no Countersign device, so the sign-in is refused"),
        ("nobody", "", false, "has no Countersign device"),
        ("nodevice", "allow_unenrolled = true\n", true, "let in because allow_unenrolled is set"),
    ] {
        let service = Service::new(&helper_config(dir.path(), &server.base, more));
        let (accepted, text) = blocking(move || pamtester(&service, user, "")).await;
        assert_eq!(accepted, let_in, "{text}");
        assert!(text.contains(shown), "{text}");
    }

    let nothing = format!("http://127.0.0.1:{}", privileged_port());
    for (more, let_in, shown) in [("", false, "cannot be reached"), ("fail_open = true\n", true, "because fail_open is set")] {
        let service = Service::new(&helper_config(dir.path(), &nothing, more));
        let (accepted, text) = blocking(move || pamtester(&service, "root", "")).await;
        assert_eq!(accepted, let_in, "{text}");
        assert!(text.contains(shown), "{text}");
    }

    // A configuration others may read is refused, closed.
    let open = helper_config(dir.path(), &server.base, "allow_unenrolled = true\n");
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let service = Service::new(&open);
    let (accepted, text) = blocking(move || pamtester(&service, "nodevice", "")).await;
    assert!(!accepted && text.contains("chmod 600"), "{text}");
}

#[tokio::test]
async fn the_helper_speaks_https_to_the_certificate_it_is_told_to_trust() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let other = dir.path().join("other.pem");
    std::fs::write(&other, rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap().cert.pem()).unwrap();
    let server = Server::start(dir.path(), &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    let https = server.base.replace("http://", "https://");
    Command::new(HELPER).args(["--database", server.database.to_str().unwrap(), "user", "add", "tls-user"]).output().unwrap();
    // Trusting the server's certificate: the server answered (no device).
    let trusted = Service::new(&helper_config(dir.path(), &https, &format!("ca_file = \"{}\"\n", cert.display())));
    let (accepted, text) = blocking(move || pamtester(&trusted, "tls-user", "")).await;
    assert!(!accepted && text.contains("tls-user has no Countersign device"), "{text}");
    // Trusting another certificate: not the server, so refused.
    // Trusting another certificate: not the server, so refused, and
    // fail_open does not let a forger in (the server was reached).
    let wrong = Service::new(&helper_config(dir.path(), &https, &format!("ca_file = \"{}\"\nfail_open = true\n", other.display())));
    let (accepted, text) = blocking(move || pamtester(&wrong, "tls-user", "")).await;
    assert!(!accepted && text.contains("Countersign refused the request") && !text.contains("fail_open"), "{text}");
    // Plain http to a port any local user may bind is refused outright.
    let open_port = Service::new(&helper_config(dir.path(), &format!("http://127.0.0.1:{}", free_port()), ""));
    let (accepted, text) = blocking(move || pamtester(&open_port, "tls-user", "")).await;
    assert!(!accepted && text.contains("port below 1024"), "{text}");
}

/// A real sshd on a loopback port whose PAM service is `service` (sshd
/// names its PAM service after the name it was run by); killed on drop.
struct Sshd {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Sshd {
    fn start(dir: &Path, service: &Service) -> Sshd {
        let port = free_port();
        let key = dir.join("host_key");
        if !key.exists() {
            let made = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key).status().unwrap();
            assert!(made.success());
        }
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nUsePAM yes\nKbdInteractiveAuthentication yes\n\
                 PasswordAuthentication no\nPubkeyAuthentication no\nAuthenticationMethods keyboard-interactive\n\
                 PermitRootLogin yes\nStrictModes no\nPidFile none\n",
                key.display()
            ),
        )
        .unwrap();
        let program = dir.join(&service.name);
        let _ = std::fs::remove_file(&program);
        std::os::unix::fs::symlink("/usr/sbin/sshd", &program).unwrap();
        // sshd wants its privilege-separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let mut child = Command::new(&program).arg("-D").arg("-e").arg("-f").arg(&config).stderr(Stdio::piped()).spawn().unwrap();
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains("Server listening") => break,
                Some(Ok(_)) => continue,
                _ => panic!("sshd ended before it listened"),
            }
        }
        std::thread::spawn(move || lines.for_each(drop));
        Sshd { child, port, dir: dir.to_owned() }
    }

    /// Logs in as root and runs `echo signed-in`, answering the prompt
    /// with `typed` (through SSH_ASKPASS); (logged in, what ssh said).
    fn login(&self, typed: &str) -> (bool, String) {
        let answer = self.dir.join(format!("typed-{}", free_port()));
        std::fs::write(&answer, typed).unwrap();
        let askpass = self.dir.join(format!("askpass-{}", free_port()));
        std::fs::write(&askpass, format!("#!/bin/sh\ncat {}\n", answer.display())).unwrap();
        std::fs::set_permissions(&askpass, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let output = Command::new("ssh")
            .args(["-p", &self.port.to_string(), "-F", "/dev/null"])
            .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
            .args(["-o", "PreferredAuthentications=keyboard-interactive", "-o", "NumberOfPasswordPrompts=1"])
            .args(["-o", "ConnectTimeout=10", "root@127.0.0.1", "echo signed-in"])
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", "none")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.success() && String::from_utf8_lossy(&output.stdout).trim() == "signed-in", said)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn sshd_lets_in_on_approval_or_a_code_and_refuses_a_denial_or_a_server_down() {
    if !ready() {
        return;
    }
    let Signing { dir, server, account, mut session, service } = signing().await;
    let sshd = std::sync::Arc::new(Sshd::start(dir.path(), &service));

    for (decision, let_in) in [(Decision::Approve, true), (Decision::Deny, false)] {
        let ssh = sshd.clone();
        let waiting = tokio::task::spawn_blocking(move || ssh.login(""));
        let challenge = next_challenge(&mut session).await;
        assert_eq!((challenge.app.as_str(), challenge.ip.as_str()), (format!("{} on web-1", service.name).as_str(), "127.0.0.1"));
        session.respond(&challenge.id, decision, None, false, now()).await.unwrap();
        let (signed_in, said) = waiting.await.unwrap();
        assert_eq!(signed_in, let_in, "{decision:?}: {said}");
    }

    let code = countersign::otp::code(&account, now() as u64).value;
    let ssh = sshd.clone();
    let (signed_in, said) = blocking(move || ssh.login(&code)).await;
    assert!(signed_in, "a code typed at the prompt: {said}");

    // The server down: refused.
    drop(session);
    drop(server);
    let ssh = sshd.clone();
    let (signed_in, said) = blocking(move || ssh.login("")).await;
    assert!(!signed_in && said.contains("Permission denied"), "{said}");
}
