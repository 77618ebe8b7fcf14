//! PAM: `sshd` and `sudo` on a Linux machine ask the user's Countersign,
//! through `countersign-server pam`, a helper that Linux-PAM's `pam_exec`
//! runs (README, "PAM"):
//!
//! ```text
//! auth  optional  pam_echo.so Countersign: type the code from your app, or press Enter for a push.
//! auth  required  pam_exec.so expose_authtok stdout /usr/bin/countersign-server pam --config /etc/countersign/pam.toml
//! auth  optional  pam_permit.so
//! ```
//!
//! (The last line gives `pam_setcred` a module that succeeds: pam_exec and
//! pam_echo only ignore it, and a stack of ignores is a refusal.)
//!
//! pam_exec asks "Password:" and hands the answer on standard input: 6 to 8
//! digits are checked as a TOTP code (`POST /api/totp/verify`); anything
//! else (Enter) sends a push (`POST /api/signins`, no number to match: SSH
//! shows no page) and waits for its decision. What the helper prints,
//! pam_exec shows the user; its exit status is the answer (0: let in).
//!
//! The helper talks to the server's relying-party API over HTTPS with the
//! token from a configuration file that only its owner (root) may read.
//! When the server cannot be reached (connection refused or timed out, or a
//! 5xx) it refuses, unless `fail_open` says to let the user in
//! (break-glass); a certificate that does not verify, or any answer that is
//! not the server's, always refuses. A user the server has no device for is
//! refused unless `allow_unenrolled`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroizing;

/// `/etc/countersign/pam.toml`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The server's base URL, `https://…` (plain `http://` only to loopback).
    pub url: String,
    /// The relying-party API token.
    pub rp_token: String,
    /// A PEM file of the certificates to trust instead of the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Seconds a request may take, the push's wait aside [default: 10].
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Let users in when the server cannot be reached (break-glass; off).
    #[serde(default)]
    pub fail_open: bool,
    /// Let in users who have no Countersign device (rollout; off).
    #[serde(default)]
    pub allow_unenrolled: bool,
    /// The host name pushes show [default: this machine's].
    #[serde(default)]
    pub host_name: Option<String>,
}

fn default_timeout() -> u64 {
    10
}

/// Everything but the token.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("url", &self.url)
            .field("ca_file", &self.ca_file)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("fail_open", &self.fail_open)
            .field("allow_unenrolled", &self.allow_unenrolled)
            .field("host_name", &self.host_name)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0} may be read or written by others (it holds the relying-party token): chmod 600 it, owned by root")]
    Open(PathBuf),
    #[error("{0} is owned by another user than the one running this (root)")]
    Owner(PathBuf),
    #[error("{0} is not a valid configuration: {1}")]
    Invalid(PathBuf, String),
}

impl Config {
    /// Reads `path`, which must be this user's and closed to others.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        use std::io::Read;
        // One open file, checked and read: no window for a swap between.
        let file = std::fs::File::open(path).map_err(|e| ConfigError::Read(path.to_owned(), e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let metadata = file.metadata().map_err(|e| ConfigError::Read(path.to_owned(), e))?;
            if metadata.mode() & 0o077 != 0 {
                return Err(ConfigError::Open(path.to_owned()));
            }
            // SAFETY: geteuid has no preconditions and cannot fail.
            if metadata.uid() != unsafe { libc::geteuid() } {
                return Err(ConfigError::Owner(path.to_owned()));
            }
        }
        let mut text = Zeroizing::new(String::new());
        file.take(64 * 1024).read_to_string(&mut text).map_err(|e| ConfigError::Read(path.to_owned(), e))?;
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Invalid(path.to_owned(), e.message().to_owned()))?;
        config.check().map_err(|why| ConfigError::Invalid(path.to_owned(), why))?;
        Ok(config)
    }

    /// `https://`, or `http://` to this machine on a port below 1024: a
    /// local user cannot bind that port to pose as the server while it is
    /// down, as they could 8750.
    fn check(&self) -> Result<(), String> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| format!("url {:?} is not a URL: {e}", self.url))?;
        let host = url.host_str().unwrap_or_default();
        let loopback = host == "localhost"
            || host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        let privileged = url.port_or_known_default().is_some_and(|port| port < 1024);
        let allowed = match url.scheme() {
            "https" => true,
            "http" => loopback && privileged,
            _ => false,
        };
        if !allowed || !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
            return Err(format!(
                "url must be https:// (plain http:// only to this machine on a port below 1024), with no user or query, not {:?}",
                self.url
            ));
        }
        if self.rp_token.len() < 16 {
            return Err("rp_token must be at least 16 characters".into());
        }
        if !(1..=60).contains(&self.timeout_seconds) {
            return Err("timeout_seconds must be from 1 to 60".into());
        }
        Ok(())
    }
}

/// What PAM knows of the sign-in (pam_exec's environment).
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub user: String,
    /// `sshd`, `sudo`, …
    pub service: String,
    /// The remote host (SSH's client address).
    pub remote: String,
    /// The command, for sudo: its parent's arguments.
    pub command: Option<String>,
    pub host: String,
}

impl Context {
    /// From `PAM_USER`, `PAM_SERVICE`, `PAM_RHOST`; the command is read
    /// from the parent process (sudo) when the service is sudo.
    pub fn from_environment(host_name: Option<&str>) -> Context {
        let var = |name: &str| std::env::var(name).unwrap_or_default();
        let service = var("PAM_SERVICE");
        let command = if service == "sudo" { parent_command() } else { None };
        let host = host_name.map_or_else(this_host, str::to_owned);
        Context { user: var("PAM_USER"), service, remote: var("PAM_RHOST"), command, host }
    }

    /// The push's app line: "sudo on web-1: systemctl restart nginx".
    fn app(&self) -> String {
        let service = if self.service.is_empty() { "login" } else { &self.service };
        let mut app = format!("{service} on {}", self.host);
        if let Some(command) = &self.command {
            app.push_str(": ");
            app.push_str(command);
        }
        app.chars().take(200).collect()
    }
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|name| name.trim().to_owned()).unwrap_or_else(|_| "this host".into())
}

/// The arguments of the process that ran this one (sudo), without its name.
fn parent_command() -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getppid has no preconditions and cannot fail.
        let parent = unsafe { libc::getppid() };
        let raw = std::fs::read(format!("/proc/{parent}/cmdline")).ok()?;
        let arguments: Vec<String> =
            raw.split(|b| *b == 0).filter(|a| !a.is_empty()).skip(1).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        (!arguments.is_empty()).then(|| crate::push::printable(&arguments.join(" ")))
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// What the helper answers PAM: let in or not, and what the user is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Allow(String),
    Deny(String),
}

/// A failure to talk to the server: unreachable (fail_open may let in), or
/// an answer that is not a decision (never lets in).
enum Trouble {
    Unreachable(String),
    Refused(String),
}

/// What the user typed at pam_exec's prompt: a code, or anything else.
pub fn code_typed(typed: &[u8]) -> Option<Zeroizing<String>> {
    let text = std::str::from_utf8(typed).ok()?;
    let code: Zeroizing<String> = Zeroizing::new(text.chars().filter(|c| !c.is_whitespace() && *c != '\0').collect());
    ((6..=8).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

/// Decides the sign-in of `context.user` with what was `typed`.
pub async fn authenticate(config: &Config, context: &Context, typed: &[u8]) -> Outcome {
    if context.user.is_empty() {
        return Outcome::Deny("Countersign: no user to sign in (PAM_USER is not set)".into());
    }
    let result = match code_typed(typed) {
        Some(code) => check_code(config, context, &code).await,
        None => push(config, context).await,
    };
    match result {
        Ok(outcome) => outcome,
        Err(Trouble::Unreachable(why)) if config.fail_open => {
            Outcome::Allow(format!("Countersign cannot be reached ({why}); let in without it because fail_open is set."))
        }
        Err(Trouble::Unreachable(why)) => Outcome::Deny(format!("Countersign cannot be reached ({why}), so the sign-in is refused.")),
        Err(Trouble::Refused(why)) => Outcome::Deny(format!("Countersign refused the request: {why}")),
    }
}

/// The HTTPS client: `timeout_seconds` per request (the push's wait sets
/// its own), trusting `ca_file` only when it is set.
fn client(config: &Config) -> Result<reqwest::Client, Trouble> {
    crate::push::client::install_crypto();
    let mut builder =
        reqwest::Client::builder().timeout(Duration::from_secs(config.timeout_seconds)).redirect(reqwest::redirect::Policy::none());
    if let Some(path) = &config.ca_file {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let metadata = std::fs::metadata(path).map_err(|e| Trouble::Refused(format!("cannot read ca_file {}: {e}", path.display())))?;
            // Whoever may write it chooses which server is believed.
            // SAFETY: geteuid has no preconditions and cannot fail.
            let me = unsafe { libc::geteuid() };
            if metadata.mode() & 0o022 != 0 || (metadata.uid() != 0 && metadata.uid() != me) {
                return Err(Trouble::Refused(format!("ca_file {} may be written by others", path.display())));
            }
        }
        let pem = std::fs::read(path).map_err(|e| Trouble::Refused(format!("cannot read ca_file {}: {e}", path.display())))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|_| Trouble::Refused(format!("ca_file {} holds no PEM certificate", path.display())))?;
        builder = builder.tls_certs_only(certificates);
    }
    builder.build().map_err(|e| Trouble::Refused(format!("HTTPS client: {e}")))
}

/// Whether a failed request never reached a server: a connection refused
/// or timed out. A certificate that does not verify did reach something,
/// and is never "unreachable" (`fail_open` must not let a forger in).
fn unreached(error: &reqwest::Error) -> bool {
    !holds_tls_error(error) && (error.is_connect() || error.is_timeout())
}

/// Whether a rustls error is among `error`'s causes. An io::Error's
/// `source()` skips the error it wraps, so those are opened too.
fn holds_tls_error(error: &(dyn std::error::Error + 'static)) -> bool {
    if error.is::<rustls::Error>() {
        return true;
    }
    let wrapped = error.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref);
    if wrapped.is_some_and(|inner| holds_tls_error(inner)) {
        return true;
    }
    error.source().is_some_and(holds_tls_error)
}

/// Sends one request; the JSON answer, or `None` for the server's own 404
/// (`{"error": "not_found"}`; any other 404 is not a Countersign server's).
async fn call(request: reqwest::RequestBuilder, token: &str) -> Result<Option<serde_json::Value>, Trouble> {
    let answer = request.bearer_auth(token).send().await.map_err(|e| {
        let why = e.without_url();
        if unreached(&why) { Trouble::Unreachable(error_chain(&why)) } else { Trouble::Refused(error_chain(&why)) }
    })?;
    let status = answer.status();
    let body = answer.json::<serde_json::Value>().await;
    if status.is_server_error() {
        return Err(Trouble::Unreachable(format!("HTTP {status}")));
    }
    let Ok(body) = body else { return Err(Trouble::Refused(format!("HTTP {status} without a JSON body: check url"))) };
    if status.as_u16() == 404 && body["error"] == "not_found" {
        return Ok(None);
    }
    if !status.is_success() {
        let message = body["message"].as_str().unwrap_or("no reason given");
        return Err(Trouble::Refused(format!("HTTP {status}: {message}")));
    }
    Ok(Some(body))
}

/// An error and its causes on one line (reqwest's own text omits them).
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn base(config: &Config) -> &str {
    config.url.trim_end_matches('/')
}

async fn check_code(config: &Config, context: &Context, code: &str) -> Result<Outcome, Trouble> {
    let http = client(config)?;
    let mut body = json!({ "user": context.user, "code": code });
    if let Ok(ip) = context.remote.parse::<std::net::IpAddr>() {
        body["ip"] = json!(ip);
    }
    let verdict = call(http.post(format!("{}/api/totp/verify", base(config))).json(&body), &config.rp_token).await?;
    Ok(match verdict {
        Some(verdict) if verdict["valid"] == true => Outcome::Allow("Countersign: code accepted.".into()),
        Some(verdict) if verdict["retry_after"].is_u64() => Outcome::Deny("Countersign: too many wrong codes; wait a little.".into()),
        _ => Outcome::Deny("Countersign: wrong or already used code.".into()),
    })
}

async fn push(config: &Config, context: &Context) -> Result<Outcome, Trouble> {
    let http = client(config)?;
    let user = &context.user;
    let path =
        format!("{}/api/users/{}/methods", base(config), percent_encoding::utf8_percent_encode(user, percent_encoding::NON_ALPHANUMERIC));
    let has_device = match call(http.get(path), &config.rp_token).await? {
        None => false,
        Some(methods) => methods["methods"].as_array().is_some_and(|methods| methods.iter().any(|m| m == "push")),
    };
    if !has_device {
        return Ok(if config.allow_unenrolled {
            Outcome::Allow(format!("Countersign: {user} has no device yet; let in because allow_unenrolled is set."))
        } else {
            Outcome::Deny(format!("Countersign: {user} has no Countersign device, so the sign-in is refused."))
        });
    }
    let request = json!({
        "user": user,
        "app": context.app(),
        "ip": context.remote.chars().take(200).collect::<String>(),
        "method": "push",
        "number_matching": false,
    });
    let Some(created) = call(http.post(format!("{}/api/signins", base(config))).json(&request), &config.rp_token).await? else {
        return Ok(Outcome::Deny(format!("Countersign: no user {user}.")));
    };
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(Trouble::Refused("the server's answer has no sign-in id".into()));
    }
    // Each wait is at most 60 s on the server; a push lives at most an hour.
    let waiting = Duration::from_secs(60 + config.timeout_seconds);
    for _ in 0..62 {
        let status = call(http.get(format!("{}/api/signins/{id}?wait=60", base(config))).timeout(waiting), &config.rp_token).await?;
        match status.as_ref().and_then(|status| status["status"].as_str()) {
            Some("pending") => continue,
            Some("approved") => return Ok(Outcome::Allow("Countersign: approved.".into())),
            Some("denied") => return Ok(Outcome::Deny("Countersign: denied.".into())),
            Some("reported") => return Ok(Outcome::Deny("Countersign: reported as not you; the sign-in is refused.".into())),
            Some("expired") => return Ok(Outcome::Deny("Countersign: no answer in time.".into())),
            _ => return Err(Trouble::Refused("the server's answer has no status".into())),
        }
    }
    Ok(Outcome::Deny("Countersign: no answer in time.".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_to_eight_digits_whatever_surrounds_them() {
        assert_eq!(code_typed(b"123456\0").as_deref().map(String::as_str), Some("123456"));
        assert_eq!(code_typed(b" 123 456\n").as_deref().map(String::as_str), Some("123456"));
        assert_eq!(code_typed(b"12345678").as_deref().map(String::as_str), Some("12345678"));
        for other in [&b""[..], b"\0", b"12345", b"123456789", b"my password", b"\xff\xfe"] {
            assert!(code_typed(other).is_none(), "{other:?}");
        }
    }

    fn config(url: &str) -> Config {
        Config {
            url: url.into(),
            rp_token: "a token of twenty chars".into(),
            ca_file: None,
            timeout_seconds: 10,
            fail_open: false,
            allow_unenrolled: false,
            host_name: None,
        }
    }

    #[test]
    fn plain_http_is_only_for_this_machine() {
        assert!(config("https://mfa.example.com").check().is_ok());
        assert!(config("https://mfa.example.com:8443/countersign/").check().is_ok());
        assert!(config("http://127.0.0.1:875").check().is_ok());
        assert!(config("http://[::1]/").check().is_ok());
        assert!(config("http://localhost:443").check().is_ok());
        // A port any local user may bind while the server is down.
        assert!(config("http://127.0.0.1:8750").check().is_err());
        assert!(config("http://mfa.example.com").check().is_err());
        assert!(config("http://127.0.0.1.example.com").check().is_err());
        assert!(config("http://127.0.0.1:80@evil.example").check().is_err(), "the host is evil.example");
        assert!(config("https://user:pass@mfa.example.com").check().is_err());
        assert!(config("ftp://127.0.0.1").check().is_err());
        let mut short = config("https://mfa.example.com");
        short.rp_token = "short".into();
        assert!(short.check().is_err());
    }

    #[test]
    fn debug_leaves_out_the_token() {
        assert!(!format!("{:?}", config("https://x")).contains("twenty"));
    }

    #[test]
    fn a_configuration_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pam.toml");
        std::fs::write(&path, "url = \"http://127.0.0.1:1\"\nrp_token = \"a token of twenty chars\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(Config::load(&path), Err(ConfigError::Open(_))));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let loaded = Config::load(&path).unwrap();
        assert!(!loaded.fail_open && !loaded.allow_unenrolled && loaded.timeout_seconds == 10);
        std::fs::write(&path, "url = \"http://127.0.0.1:1\"\nrp_token = \"a token of twenty chars\"\nfail_closed = true\n").unwrap();
        assert!(matches!(Config::load(&path), Err(ConfigError::Invalid(..))), "unknown settings are refused");
    }

    #[test]
    fn the_app_line_names_the_service_the_host_and_the_command() {
        let context = Context {
            user: "alice".into(),
            service: "sudo".into(),
            remote: String::new(),
            command: Some("systemctl restart nginx".into()),
            host: "web-1".into(),
        };
        assert_eq!(context.app(), "sudo on web-1: systemctl restart nginx");
        let ssh = Context { service: "sshd".into(), command: None, ..context };
        assert_eq!(ssh.app(), "sshd on web-1");
    }

    #[tokio::test]
    async fn an_unreachable_server_refuses_unless_fail_open() {
        // A port nothing listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // (check() would refuse this port; authenticate does not check again.)
        let mut config = config(&format!("http://127.0.0.1:{port}"));
        let context = Context { user: "alice".into(), service: "sshd".into(), host: "h".into(), ..Context::default() };
        let refused = authenticate(&config, &context, b"").await;
        assert!(matches!(&refused, Outcome::Deny(why) if why.contains("cannot be reached")), "{refused:?}");
        config.fail_open = true;
        let let_in = authenticate(&config, &context, b"123456").await;
        assert!(matches!(&let_in, Outcome::Allow(why) if why.contains("fail_open")), "{let_in:?}");
    }
}
