//! How texts and calls leave the server: a phone provider.
//!
//! - `http`: a generic HTTP gateway, as most SMS and voice vendors take: a
//!   URL, a method, headers and a body template per kind, with a timeout
//!   and retries. Placeholders in the templates (and the URL) are
//!   `{to}` (E.164), `{extension}`, `{text}` (what a text says or a call
//!   speaks), `{code}` (texts), `{id}` (the sign-in) and `{callback}` (calls:
//!   where the gateway posts the keys pressed, see
//!   `POST /api/phone/calls/{id}`). Each value is escaped for the body's
//!   content type (JSON string or form field) and percent-encoded in the URL.
//! - `virtual`: texts and calls go to the Countersign apps that answer for
//!   the number (`countersign phone attach`), over their push sessions,
//!   signed like challenges; see [`super::virtual_phone`]. For testing
//!   the phone methods without a phone.
//! - `log`: writes texts and calls to the server log. Development only:
//!   the default only on a loopback server with no public URL.
//!
//! Every attempt carries `Idempotency-Key: {id}-text` (or `-call`). Network
//! errors before the request went out, 429 and 5xx are retried; a timeout
//! or a lost answer only for texts (a call would ring twice); no attempt
//! starts after the sign-in expires. Failures are logged and returned with
//! the status or the kind of error, never with the code, the text or the
//! gateway's URL (which may carry a key).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::log;

/// `[phone]` in the configuration.
#[derive(Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `http`, `virtual` or `log`; unset: `log` on a loopback server with no public
    /// URL, else none (sign-ins by text or call are refused).
    pub provider: Option<ProviderName>,
    /// The `http` provider's gateway.
    pub http: Option<HttpGateway>,
    /// How long a text's code is valid (seconds).
    pub code_seconds: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderName {
    Http,
    Virtual,
    Log,
}

/// A generic HTTP gateway.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpGateway {
    /// Where requests go, e.g. `https://sms.example/v1/messages`; may hold
    /// placeholders.
    pub url: String,
    /// `POST` unless said.
    #[serde(default = "post")]
    pub method: String,
    /// Sent with every request (an `Authorization` header, say). Never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `application/json` (values JSON-escaped) or
    /// `application/x-www-form-urlencoded` (values form-encoded).
    #[serde(default = "json")]
    pub content_type: String,
    /// The body of a text message request.
    #[serde(default = "text_body")]
    pub text_body: String,
    /// The body of a call request.
    #[serde(default = "call_body")]
    pub call_body: String,
    /// Seconds one attempt may take.
    #[serde(default = "ten")]
    pub timeout_seconds: u64,
    /// Attempts after the first on a network error, a timeout, 429 or 5xx.
    #[serde(default = "two")]
    pub retries: u32,
}

fn post() -> String {
    "POST".into()
}
fn json() -> String {
    "application/json".into()
}
fn text_body() -> String {
    r#"{"to":"{to}","text":"{text}"}"#.into()
}
fn call_body() -> String {
    r#"{"to":"{to}","extension":"{extension}","say":"{text}","keys_url":"{callback}"}"#.into()
}
fn ten() -> u64 {
    10
}
fn two() -> u32 {
    2
}

/// The URL and headers may hold credentials.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("provider", &self.provider)
            .field("http", &self.http.as_ref().map(|_| "(set)"))
            .field("code_seconds", &self.code_seconds)
            .finish()
    }
}

impl Settings {
    pub fn check(&self) -> Result<(), String> {
        if let Some(seconds) = self.code_seconds
            && !(30..=1800).contains(&seconds)
        {
            return Err(format!("phone.code_seconds must be from 30 to 1800, not {seconds}"));
        }
        match (self.provider, &self.http) {
            (Some(ProviderName::Http), None) => Err("phone.provider = \"http\" needs a [phone.http] table with its url".into()),
            (_, Some(http)) => http.check(),
            _ => Ok(()),
        }
    }

    pub fn code_seconds(&self) -> i64 {
        self.code_seconds.unwrap_or(300)
    }
}

impl HttpGateway {
    fn check(&self) -> Result<(), String> {
        if !(self.url.starts_with("https://") || self.url.starts_with("http://")) {
            return Err("phone.http.url must be an http:// or https:// URL".into());
        }
        reqwest::Method::from_bytes(self.method.as_bytes())
            .map_err(|_| format!("phone.http.method {:?} is not an HTTP method", self.method))?;
        if !matches!(self.content_type.as_str(), "application/json" | "application/x-www-form-urlencoded") {
            return Err("phone.http.content_type must be application/json or application/x-www-form-urlencoded".into());
        }
        for (name, value) in &self.headers {
            reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("phone.http.headers: {name:?} is not a header name"))?;
            reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| format!("phone.http.headers: the value of {name} is not a header value"))?;
        }
        if !(1..=60).contains(&self.timeout_seconds) {
            return Err(format!("phone.http.timeout_seconds must be from 1 to 60, not {}", self.timeout_seconds));
        }
        if self.retries > 5 {
            return Err(format!("phone.http.retries must be from 0 to 5, not {}", self.retries));
        }
        Ok(())
    }
}

/// A text or a call to send.
pub struct Outgoing<'a> {
    pub kind: Kind,
    /// When the sign-in expires: no attempt starts after it.
    pub deadline: tokio::time::Instant,
    /// E.164.
    pub to: &'a str,
    pub extension: &'a str,
    /// What a text says or a call speaks.
    pub text: &'a str,
    /// A text's code (empty for calls).
    pub code: &'a str,
    /// The sign-in.
    pub id: &'a str,
    /// A call's key-press callback URL, its token included (empty for texts).
    pub callback: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Call,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Call => "call",
        }
    }
}

/// Why a text or call was not sent; safe to log and to show the relying party.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("no phone provider is configured ([phone] provider in the server's settings)")]
    NoProvider,
    #[error("the phone gateway answered HTTP {status} ({})", tries(*attempts))]
    Status { status: u16, attempts: u32 },
    #[error("the phone gateway did not answer within {seconds} s ({})", tries(*attempts))]
    Timeout { seconds: u64, attempts: u32 },
    #[error("the phone gateway could not be reached: {kind} ({})", tries(*attempts))]
    Network { kind: &'static str, attempts: u32 },
    #[error("no Countersign app answers for that phone now (countersign phone attach NUMBER, and a connection to this server)")]
    Unanswered,
}

fn tries(attempts: u32) -> String {
    if attempts == 1 { "1 attempt".into() } else { format!("{attempts} attempts") }
}

/// The provider in use.
pub enum Provider {
    None,
    Log,
    Http {
        gateway: HttpGateway,
        client: reqwest::Client,
    },
    /// Sent by [`super::virtual_phone::deliver`], which holds the sessions.
    Virtual,
}

impl Provider {
    /// The provider `settings` name; `loopback_only` is whether the server
    /// is a development one (loopback, no public URL), where `log` is the default.
    pub fn new(settings: &Settings, loopback_only: bool) -> Result<Provider, String> {
        settings.check()?;
        Ok(match settings.provider {
            Some(ProviderName::Http) => {
                let gateway = settings.http.clone().ok_or("phone.provider = \"http\" needs [phone.http]")?;
                let _ = rustls::crypto::ring::default_provider().install_default();
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(gateway.timeout_seconds))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|error| format!("the phone gateway's HTTP client: {error}"))?;
                Provider::Http { gateway, client }
            }
            Some(ProviderName::Log) => Provider::Log,
            Some(ProviderName::Virtual) => Provider::Virtual,
            None if loopback_only => Provider::Log,
            None => Provider::None,
        })
    }

    pub fn is_some(&self) -> bool {
        !matches!(self, Provider::None)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Provider::None => "none",
            Provider::Log => "log",
            Provider::Http { .. } => "http",
            Provider::Virtual => "virtual",
        }
    }

    /// Sends `message`, retrying as the gateway's settings say. The
    /// virtual provider's messages go through the server's sessions
    /// instead ([`super::virtual_phone::deliver`]); here none answers.
    pub async fn send(&self, message: &Outgoing<'_>) -> Result<(), Error> {
        match self {
            Provider::None => Err(Error::NoProvider),
            Provider::Virtual => Err(Error::Unanswered),
            Provider::Log => {
                let to =
                    if message.extension.is_empty() { message.to.to_owned() } else { format!("{} ext. {}", message.to, message.extension) };
                // The development provider: the log is the phone.
                log::info(&format!("phone (log provider): a {} for {} to {to}: {}", message.kind.noun(), message.id, message.text));
                if !message.callback.is_empty() {
                    log::info(&format!("phone (log provider): keys for call {} go to {}", message.id, message.callback));
                }
                Ok(())
            }
            Provider::Http { gateway, client } => send_http(gateway, client, message).await,
        }
    }
}

async fn send_http(gateway: &HttpGateway, client: &reqwest::Client, message: &Outgoing<'_>) -> Result<(), Error> {
    let values = [
        ("to", message.to),
        ("extension", message.extension),
        ("text", message.text),
        ("code", message.code),
        ("id", message.id),
        ("callback", message.callback),
    ];
    let url = fill(&gateway.url, &values, Escape::Url);
    let escape = if gateway.content_type == "application/json" { Escape::Json } else { Escape::Form };
    let body = fill(if message.kind == Kind::Text { &gateway.text_body } else { &gateway.call_body }, &values, escape);
    let method = reqwest::Method::from_bytes(gateway.method.as_bytes()).unwrap_or(reqwest::Method::POST);
    let attempts = gateway.retries + 1;
    let mut last = Error::NoProvider;
    for attempt in 1..=attempts {
        if attempt > 1 {
            // 0.5 s, 1 s, 2 s…: a gateway that is overloaded gets air.
            let pause = Duration::from_millis(250 << (attempt - 1).min(4));
            if tokio::time::Instant::now() + pause >= message.deadline {
                break;
            }
            tokio::time::sleep(pause).await;
        }
        // The same key on every attempt: a gateway that took an attempt
        // whose answer was lost can drop the repeat.
        let mut request = client
            .request(method.clone(), &url)
            .header(reqwest::header::CONTENT_TYPE, &gateway.content_type)
            .header("Idempotency-Key", format!("{}-{}", message.id, message.kind.noun()))
            .body(body.clone());
        for (name, value) in &gateway.headers {
            request = request.header(name, value);
        }
        let outcome = request.send().await;
        let retry = match outcome {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => {
                let status = response.status();
                last = Error::Status { status: status.as_u16(), attempts: attempt };
                status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            }
            // The gateway may have taken a request whose answer never came:
            // a text is sent again (the same code), a call is not (the
            // phone would ring twice).
            Err(error) if error.is_timeout() => {
                last = Error::Timeout { seconds: gateway.timeout_seconds, attempts: attempt };
                message.kind == Kind::Text
            }
            Err(error) if error.is_connect() => {
                last = Error::Network { kind: "connection refused or unreachable", attempts: attempt };
                true
            }
            Err(_) => {
                last = Error::Network { kind: "the request failed", attempts: attempt };
                message.kind == Kind::Text
            }
        };
        log::warn(&format!("phone gateway: a {} for {} failed: {last}", message.kind.noun(), message.id));
        if !retry {
            break;
        }
    }
    Err(last)
}

/// Everything but RFC 3986's unreserved characters is percent-encoded in a URL.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

#[derive(Clone, Copy)]
enum Escape {
    Json,
    Form,
    Url,
}

/// `template` with each `{name}` replaced by its escaped value; other
/// braces are kept (a JSON template is mostly braces).
fn fill(template: &str, values: &[(&str, &str)], escape: Escape) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    'outer: while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        for (name, value) in values {
            if let Some(tail) = after.strip_prefix(name).and_then(|tail| tail.strip_prefix('}')) {
                match escape {
                    Escape::Json => {
                        let quoted = serde_json::to_string(value).unwrap_or_default();
                        out.push_str(quoted.strip_prefix('"').and_then(|inner| inner.strip_suffix('"')).unwrap_or(""));
                    }
                    Escape::Form => out.extend(form_urlencoded::byte_serialize(value.as_bytes())),
                    Escape::Url => out.extend(percent_encoding::utf8_percent_encode(value, UNRESERVED)),
                }
                rest = tail;
                continue 'outer;
            }
        }
        out.push('{');
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: [(&str, &str); 3] = [("to", "+14155550100"), ("text", "He said \"hi\" & left\n"), ("code", "012345")];

    #[test]
    fn json_templates_get_json_escaped_values_and_keep_their_braces() {
        let body = fill(r#"{"to":"{to}","text":"{text}","n":{"code":"{code}"},"x":"{unknown}"}"#, &VALUES, Escape::Json);
        assert_eq!(body, r#"{"to":"+14155550100","text":"He said \"hi\" & left\n","n":{"code":"012345"},"x":"{unknown}"}"#);
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["text"], "He said \"hi\" & left\n");
    }

    #[test]
    fn form_templates_and_urls_get_encoded_values() {
        assert_eq!(fill("To={to}&Body={text}", &VALUES, Escape::Form), "To=%2B14155550100&Body=He+said+%22hi%22+%26+left%0A");
        assert_eq!(fill("https://gw.example/sms/{to}?c={code}", &VALUES, Escape::Url), "https://gw.example/sms/%2B14155550100?c=012345");
        assert_eq!(fill("{to", &VALUES, Escape::Url), "{to");
        assert_eq!(fill("}{}{", &VALUES, Escape::Url), "}{}{");
    }

    #[test]
    fn settings_are_checked_and_their_credentials_never_printed() {
        let settings: Settings = toml::from_str(
            r#"
            provider = "http"
            [http]
            url = "https://gw.example/send?key=SECRETKEY"
            headers = { Authorization = "Bearer SECRETTOKEN" }
            "#,
        )
        .unwrap();
        settings.check().unwrap();
        let printed = format!("{settings:?}");
        assert!(!printed.contains("SECRET"), "{printed}");
        let no_table: Settings = toml::from_str(r#"provider = "http""#).unwrap();
        assert!(no_table.check().unwrap_err().contains("[phone.http]"));
        let bad: Settings = toml::from_str("[http]\nurl = \"ftp://x\"").unwrap();
        assert!(bad.check().unwrap_err().contains("http://"));
        let bad: Settings = toml::from_str("[http]\nurl = \"http://x\"\nheaders = { \"a b\" = \"c\" }").unwrap();
        assert!(bad.check().unwrap_err().contains("header name"));
        assert!(toml::from_str::<Settings>(r#"provider = "carrier-pigeon""#).is_err());
    }

    #[test]
    fn the_log_provider_is_the_default_only_for_a_loopback_server() {
        assert_eq!(Provider::new(&Settings::default(), true).unwrap().name(), "log");
        assert_eq!(Provider::new(&Settings::default(), false).unwrap().name(), "none");
        let log = Settings { provider: Some(ProviderName::Log), ..Settings::default() };
        assert_eq!(Provider::new(&log, false).unwrap().name(), "log");
    }
}
