//! A real, throw-away PostgreSQL (Debian's `postgresql` package: `initdb`
//! and `pg_ctl` as an unprivileged user, on a free loopback port, with a
//! password) and a real nginx in front of server instances, each started by
//! the test that needs it and removed when it is dropped.
//!
//! Without PostgreSQL's binaries the tests that need them skip, unless
//! `COUNTERSIGN_REQUIRE_POSTGRES=1` (tests/run sets it): then they fail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::server::free_port;

/// The password of the database user: tests check it never reaches a log.
pub const PASSWORD: &str = "pg-secret-for-tests-7f3a";

/// Where `initdb` and `pg_ctl` are (the newest Debian version), if anywhere.
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok().map(|entry| entry.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort_by_key(|bin| bin.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok()));
    versions.pop()
}

/// Whether a PostgreSQL test can run here; says why not when it skips.
pub fn available() -> bool {
    if postgres_bin().is_some() {
        return true;
    }
    assert!(std::env::var_os("COUNTERSIGN_REQUIRE_POSTGRES").is_none(), "PostgreSQL's binaries are required (apt-get install postgresql)");
    eprintln!("skipped: PostgreSQL is not installed (apt-get install postgresql)");
    false
}

/// As root, PostgreSQL and its files belong to the `postgres` user (initdb
/// refuses root); otherwise to whoever runs the tests.
fn as_owner(program: &Path) -> Command {
    // SAFETY: geteuid reads the process's user id.
    if unsafe { libc::geteuid() } == 0 {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    tls: bool,
}

impl Postgres {
    /// initdb, then start on 127.0.0.1 and a free port, waiting until it
    /// accepts connections.
    pub fn start() -> Postgres {
        Postgres::make(false)
    }

    /// The same, but TCP connections must use TLS (`hostssl` only), with a
    /// self-signed certificate for 127.0.0.1: [`Postgres::certificate`].
    pub fn start_with_tls() -> Postgres {
        Postgres::make(true)
    }

    /// The certificate a TLS cluster presents (PEM).
    pub fn certificate(&self) -> PathBuf {
        self.dir.path().join("server.crt")
    }

    fn make(tls: bool) -> Postgres {
        let bin = postgres_bin().expect("PostgreSQL is installed");
        let dir = tempfile::Builder::new().prefix("countersign-pg").tempdir_in(std::env::temp_dir()).unwrap();
        let data = dir.path().join("data");
        std::fs::write(dir.path().join("password"), PASSWORD).unwrap();
        // SAFETY: geteuid reads the process's user id.
        if unsafe { libc::geteuid() } == 0 {
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status().unwrap();
            assert!(status.success());
        }
        let output = as_owner(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["--username=countersign", "--auth=scram-sha-256", "--encoding=UTF8", "--no-sync"])
            .arg(format!("--pwfile={}", dir.path().join("password").display()))
            .output()
            .unwrap();
        assert!(output.status.success(), "initdb: {}", String::from_utf8_lossy(&output.stderr));
        let postgres = Postgres { dir, bin, port: free_port(), tls };
        if tls {
            postgres.require_tls();
        }
        postgres.start_again();
        postgres
    }

    /// A certificate for 127.0.0.1, and pg_hba.conf taking TCP over TLS only.
    fn require_tls(&self) {
        use std::os::unix::fs::PermissionsExt;
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
        std::fs::write(self.certificate(), certified.cert.pem()).unwrap();
        let key = self.dir.path().join("server.key");
        std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let hba = self.dir.path().join("data/pg_hba.conf");
        let rules = std::fs::read_to_string(&hba).unwrap();
        let rules: Vec<String> = rules
            .lines()
            .map(|line| if line.starts_with("host ") { line.replacen("host ", "hostssl ", 1) } else { line.to_owned() })
            .collect();
        std::fs::write(&hba, rules.join("\n") + "\n").unwrap();
        // SAFETY: geteuid reads the process's user id.
        if unsafe { libc::geteuid() } == 0 {
            let status = Command::new("chown").arg("postgres:postgres").arg(&key).arg(self.certificate()).arg(&hba).status().unwrap();
            assert!(status.success());
        }
    }

    /// Starts it (again) on the same data and port.
    pub fn start_again(&self) {
        let mut options =
            format!("-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=200", self.port, self.dir.path().display());
        if self.tls {
            let dir = self.dir.path().display();
            options.push_str(&format!(" -c ssl=on -c ssl_cert_file={dir}/server.crt -c ssl_key_file={dir}/server.key"));
        }
        let output = as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-o", &options, "-l"])
            .arg(self.dir.path().join("log"))
            .args(["-w", "-t", "30", "start"])
            .output()
            .unwrap();
        assert!(output.status.success(), "pg_ctl start: {}{}", String::from_utf8_lossy(&output.stdout), self.log());
    }

    /// Stops it at once (connections are cut, as when its machine dies).
    pub fn stop(&self) {
        let _ = as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// The URL of database `name` (made by [`Postgres::database`]).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://countersign:{PASSWORD}@127.0.0.1:{}/{name}", self.port)
    }

    /// A new, empty database.
    pub async fn database(&self, name: &str) -> String {
        let admin = sqlx::PgPool::connect(&self.url("postgres")).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await.unwrap();
        admin.close().await;
        self.url(name)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// nginx on a free loopback port, balancing HTTP and WebSockets over
/// `upstreams` the way the README's snippet does.
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Nginx {
    pub fn available() -> bool {
        if Path::new("/usr/sbin/nginx").exists() {
            return true;
        }
        assert!(std::env::var_os("COUNTERSIGN_REQUIRE_POSTGRES").is_none(), "nginx is required (apt-get install nginx)");
        eprintln!("skipped: nginx is not installed (apt-get install nginx)");
        false
    }

    pub fn start(upstreams: &[u16]) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        // The README's snippet, with its paths in the temporary folder.
        let config = format!(
            "daemon off;\nworker_processes 2;\nworker_rlimit_nofile 20000;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log;\n\
             events {{ worker_connections 30000; }}\n\
             http {{\n    access_log off;\n    client_body_temp_path {dir}/body;\n    proxy_temp_path {dir}/proxy;\n\
             fastcgi_temp_path {dir}/fastcgi;\n    uwsgi_temp_path {dir}/uwsgi;\n    scgi_temp_path {dir}/scgi;\n\
             {snippet}\n}}\n",
            dir = dir.path().display(),
            snippet = snippet(upstreams, port),
        );
        std::fs::write(dir.path().join("nginx.conf"), config).unwrap();
        let child = Command::new("/usr/sbin/nginx")
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-p")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not listen: {}",
                std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx { child, dir, port }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What nginx logged (upstreams it gave up on, and why).
    pub fn errors(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    /// SIGTERM, so that the master stops its workers: a SIGKILLed master
    /// leaves them running, holding the port.
    fn drop(&mut self) {
        // SAFETY: kill only sends a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The README's nginx snippet (its `upstream`, `map` and `server` blocks)
/// with the test's upstream ports in place of its example addresses, in
/// order, and the test's listening port; TLS is left out (plain HTTP on
/// loopback). Everything else (timeouts, retries, headers) is the README's.
pub fn snippet(upstreams: &[u16], port: u16) -> String {
    let readme = include_str!("../../README.md");
    let start = readme.find("upstream countersign {").expect("the README has the nginx snippet");
    let end = start + readme[start..].find("```").expect("the snippet ends");
    let mut ports = upstreams.iter();
    let mut lines: Vec<String> = Vec::new();
    for line in readme[start..end].lines() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("server 10.") {
            let port = ports.next().expect("as many upstreams as the README names");
            let options = rest.split_once(' ').map_or("", |(_, options)| options);
            lines.push(format!("    server 127.0.0.1:{port} {options}"));
        } else if trimmed.starts_with("listen ") {
            lines.push(format!("        listen 127.0.0.1:{port};"));
        } else if !(trimmed.starts_with("ssl_") || trimmed.starts_with("server_name")) {
            lines.push(line.to_owned());
        }
    }
    assert!(ports.next().is_none(), "every upstream was put in");
    lines.join("\n")
}
