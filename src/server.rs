//! `countersign-server` (feature `server`): activation, push delivery over
//! WebSockets, the relying-party and admin APIs and the demo web pages, on
//! axum + tokio with SQLite storage. The wire protocol is [`crate::push`];
//! the server shares only those types with the app, never the vault.

mod api;
pub mod app_passwords;
pub mod cluster;
pub mod database;
pub mod gateway;
mod guard;
mod hub;
mod limits;
pub mod log;
pub mod methods;
mod metrics;
mod net;
mod pages;
pub mod phones;
pub mod radius;
mod secrets;
pub mod store;
#[cfg(test)]
mod tests;
mod virtual_phone;
mod ws;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post, put};
use serde::Deserialize;

use crate::push::{Keypair, PublicKey};
pub use api::{
    CallEvent, CallReply, CodeVerdict, Failure, NewAppPassword, PhoneRequest, SigninCreated, SigninRequest, UserMethods, call_event,
    check_app_password, check_code, check_totp, create_signin, new_activation, new_app_password, remove_user, set_phone,
    set_preferred_method, user_methods, wait_for,
};
pub use database::Database;
pub use net::{Error, GRACE, bind, serve, serve_on, shutdown_signal};
pub use store::Store;

/// Everything the server can be told, from a TOML file, flags or the
/// environment (flags win, then the environment, then the file).
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// A SQLite file's path, or a `postgres://` URL (several instances may
    /// share one PostgreSQL database).
    pub database: Database,
    /// Connections to PostgreSQL each instance keeps at most.
    pub database_pool_size: u32,
    /// The URL apps and browsers reach this server at; default `http(s)://LISTEN`.
    pub public_url: Option<String>,
    /// The organisation shown in apps.
    pub organization: String,
    /// Bearer token of the admin API; when unset, the one
    /// `countersign-server tokens` made (only its hash is stored).
    pub admin_token: Option<String>,
    /// Bearer token of the relying-party API; likewise.
    pub rp_token: Option<String>,
    /// The server's signing key (0600); default: the SQLite file's path +
    /// `.key`; on PostgreSQL, one key in the database that the first
    /// instance makes. A systemd credential `server-key` takes its place.
    pub server_key_file: Option<PathBuf>,
    /// A key (0600, made when missing) that seals users' TOTP secrets in
    /// the database; unset: they are stored in clear.
    pub totp_key_file: Option<PathBuf>,
    /// How long a push challenge waits for an answer.
    pub challenge_seconds: i64,
    /// How long "It wasn't me" blocks pushes for that user.
    pub report_block_seconds: i64,
    /// Sign-ins ask the user to type the number the page shows.
    pub number_matching: bool,
    /// Sign-ins ask the app to check the user's PIN or vault password.
    pub pin_required: bool,
    /// Serve the enrollment and demo sign-in pages (on by default only on loopback).
    pub demo_pages: Option<bool>,
    /// Users make app passwords on the pages with a code from their app.
    /// Off by default: the pages have no first factor, and an app password
    /// stands in for the account's password, so a device enrolled on the
    /// pages by someone else would make one. Listing and revoking need it not.
    pub app_passwords_on_pages: bool,
    /// PEM certificate chain and private key: serve HTTPS/WSS through rustls.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Activation attempts allowed per client address per minute.
    pub activation_rate_per_minute: u32,
    /// Open connections at most, WebSocket sessions included.
    pub max_connections: usize,
    /// Seconds a client gets to send a request's headers (also the idle
    /// limit of a kept-alive connection), its body, or the TLS handshake.
    pub request_timeout_seconds: u64,
    /// Reverse proxies whose `X-Forwarded-For` is believed: behind them,
    /// rate limits and logs use the client's address, not the proxy's.
    pub trusted_proxies: Vec<IpAddr>,
    /// Bearer token that reads `/metrics` (the admin token does too).
    pub metrics_token: Option<String>,
    /// Write the log as one JSON object per line.
    pub json_logs: bool,
    /// Days decided sign-ins and spent activations are kept; 0: forever.
    pub retention_days: u32,
    /// `[phone]`: how texts and calls are sent (see [`gateway`]).
    pub phone: gateway::Settings,
    /// Answer RADIUS on this UDP address (see [`radius`]).
    pub radius_listen: Option<SocketAddr>,
    /// `[[radius.clients]]`: the NASes allowed to ask, with their secrets.
    pub radius: radius::Settings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8750)),
            database: Database::Sqlite(default_database()),
            database_pool_size: 16,
            public_url: None,
            organization: "Countersign demo".into(),
            admin_token: None,
            rp_token: None,
            server_key_file: None,
            totp_key_file: None,
            challenge_seconds: 60,
            report_block_seconds: 3600,
            number_matching: true,
            pin_required: false,
            demo_pages: None,
            app_passwords_on_pages: false,
            tls_cert: None,
            tls_key: None,
            activation_rate_per_minute: 10,
            max_connections: 4096,
            request_timeout_seconds: 10,
            trusted_proxies: Vec::new(),
            metrics_token: None,
            json_logs: false,
            retention_days: 90,
            phone: gateway::Settings::default(),
            radius_listen: None,
            radius: radius::Settings::default(),
        }
    }
}

/// `countersign-server.sqlite3` in the platform data directory.
pub fn default_database() -> PathBuf {
    directories::ProjectDirs::from("org", "Countersign", "countersign-server")
        .map(|dirs| dirs.data_dir().join("countersign-server.sqlite3"))
        .unwrap_or_else(|| PathBuf::from("countersign-server.sqlite3"))
}

/// Everything but the tokens.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database", &self.database)
            .field("database_pool_size", &self.database_pool_size)
            .field("public_url", &self.public_url)
            .field("organization", &self.organization)
            .field("challenge_seconds", &self.challenge_seconds)
            .field("report_block_seconds", &self.report_block_seconds)
            .field("number_matching", &self.number_matching)
            .field("pin_required", &self.pin_required)
            .field("demo_pages", &self.demo_pages())
            .field("app_passwords_on_pages", &self.app_passwords_on_pages)
            .field("tls", &self.tls_cert.is_some())
            .field("server_key_file", &self.server_key_file())
            .field("totp_key_file", &self.totp_key_file)
            .field("activation_rate_per_minute", &self.activation_rate_per_minute)
            .field("max_connections", &self.max_connections)
            .field("request_timeout_seconds", &self.request_timeout_seconds)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("json_logs", &self.json_logs)
            .field("retention_days", &self.retention_days)
            .field("phone", &self.phone)
            .field("radius_listen", &self.radius_listen)
            .field("radius", &self.radius)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Every setting in its range, checked at start: a negative block or an
    /// overflowing one is refused rather than misbehaving later.
    pub fn check(&self) -> Result<(), String> {
        let within = |name: &str, value: i128, low: i128, high: i128| {
            if (low..=high).contains(&value) { Ok(()) } else { Err(format!("{name} must be from {low} to {high}, not {value}")) }
        };
        within("challenge_seconds", self.challenge_seconds.into(), 1, 3600)?;
        within("report_block_seconds", self.report_block_seconds.into(), 0, 366 * 86_400)?;
        within("activation_rate_per_minute", self.activation_rate_per_minute.into(), 1, 10_000)?;
        within("max_connections", self.max_connections as i128, 16, 1_000_000)?;
        within("request_timeout_seconds", self.request_timeout_seconds.into(), 1, 60)?;
        within("database_pool_size", self.database_pool_size.into(), 1, 1000)?;
        within("retention_days", self.retention_days.into(), 0, 36_500)?;
        // Devices keep the push address they were activated with: behind a
        // load balancer it must be the balancer's, the same for every instance.
        if self.database.is_postgres() && self.public_url.is_none() {
            return Err("a PostgreSQL database needs public_url: the one URL (a load balancer's) that apps reach every instance at".into());
        }
        if let Some(token) = &self.metrics_token
            && token.len() < 16
        {
            return Err("metrics_token must be at least 16 characters".into());
        }
        self.phone.check()?;
        self.radius.check(self.radius_listen.is_some())?;
        if self.organization.trim().is_empty() || self.organization.len() > 128 {
            return Err("organization must be 1 to 128 characters, not empty".into());
        }
        // Activation links would point at http://0.0.0.0:…, which no app reaches.
        if self.listen.ip().is_unspecified() && self.public_url.is_none() {
            return Err(format!(
                "listening on every address ({}) needs public_url: the URL apps and browsers reach this server at; it must be set",
                self.listen
            ));
        }
        Ok(())
    }

    /// Where the server key is kept: a file, or `None` for the one a
    /// PostgreSQL database holds for every instance.
    pub fn server_key_file(&self) -> Option<PathBuf> {
        self.server_key_file.clone().or_else(|| match &self.database {
            Database::Sqlite(database) => {
                let mut path = database.clone().into_os_string();
                path.push(".key");
                Some(PathBuf::from(path))
            }
            Database::Postgres(_) => None,
        })
    }

    pub fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.request_timeout_seconds)
    }

    /// The base URL in links and activation answers.
    pub fn base_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("{}://{}", if self.tls_cert.is_some() { "https" } else { "http" }, self.listen),
        }
    }

    /// The push WebSocket URL.
    pub fn push_endpoint(&self) -> String {
        let base = self.base_url();
        let ws = base
            .strip_prefix("https://")
            .map(|rest| format!("wss://{rest}"))
            .or_else(|| base.strip_prefix("http://").map(|rest| format!("ws://{rest}")))
            .unwrap_or(base);
        format!("{ws}/api/push")
    }

    /// The demo pages create users and activations without a login: on by
    /// default only for a development server.
    pub fn demo_pages(&self) -> bool {
        self.demo_pages.unwrap_or(self.is_development())
    }

    /// Loopback with no public URL (a reverse proxy would publish it): what
    /// only this machine reaches.
    pub fn is_development(&self) -> bool {
        self.listen.ip().is_loopback() && self.public_url.is_none()
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Unix milliseconds now: what instances on several machines can compare
/// (a monotonic clock is per process).
pub fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub store: Store,
    pub key: Keypair,
    pub public: PublicKey,
    /// The hash of a token given in the configuration; else the stored one counts.
    admin_token: Option<[u8; 32]>,
    rp_token: Option<[u8; 32]>,
    pub hub: hub::Hub,
    /// This process, among the instances sharing a database.
    pub instance: String,
    pub metrics: metrics::Metrics,
    /// Rate limits live in the database (PostgreSQL: every instance counts
    /// against the same limit), else in memory below.
    shared_limits: bool,
    metrics_token: Option<[u8; 32]>,
    /// Activation attempts per client address, in any 60 s.
    activations: limits::Window<IpAddr>,
    /// Demo-page pushes per user and per client address, in any 60 s.
    demo_push_users: limits::Window<String>,
    /// Texts and calls per user, in any 60 s.
    phone_sends: limits::Window<String>,
    demo_push_peers: limits::Window<IpAddr>,
    /// Wrong TOTP codes per (user, caller).
    totp: limits::Backoff<(String, IpAddr)>,
    pub audit: limits::Audit,
    /// The demo pages' form token (a fresh one at each start).
    form_token: String,
    /// Argon2id runs at once (making and checking app passwords): a flood
    /// of checks waits here instead of taking every core and 19 MiB each.
    pub hashing: tokio::sync::Semaphore,
    /// Signs the pages' short-lived grants (a fresh key at each start,
    /// never sent): proof that a browser typed a right code for a user.
    page_key: ring::hmac::Key,
    /// Sends texts and calls.
    pub phone: gateway::Provider,
    /// Hashes texts' codes and calls' tokens.
    pub phone_secrets: methods::SecretHasher,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Opens the database, loads (or creates) the server key, and seals TOTP
    /// secrets when a key for them is configured.
    pub async fn open(config: Config) -> Result<AppState, store::Error> {
        let mut store = Store::connect(&config.database, config.database_pool_size).await?;
        if let Some(path) = &config.totp_key_file {
            store = store.with_totp_key(&*secrets::key_file(path, true)?).await?;
        }
        store.check_secrets_readable().await?;
        let key = match secrets::server_key_source(config.server_key_file()) {
            Some((path, create)) => store.server_key(&path, create).await?,
            None => store.shared_server_key().await?,
        };
        let mut tokens = [None, None];
        for (slot, (name, token)) in tokens.iter_mut().zip([("admin_token", &config.admin_token), ("rp_token", &config.rp_token)]) {
            if let Some(token) = token {
                if token.len() < 16 {
                    return Err(store::Error::Damaged(format!("{name} must be at least 16 characters")));
                }
                *slot = Some(secrets::token_digest(token));
            }
        }
        let [admin_token, rp_token] = tokens;
        let public = key.public();
        let minute = 60_000;
        let phone = gateway::Provider::new(&config.phone, config.is_development()).map_err(store::Error::Damaged)?;
        if matches!(phone, gateway::Provider::Log) {
            let why = "the log provider writes texts' codes and calls' links to this log: for development only";
            if config.is_development() { log::info(&format!("phone: {why}")) } else { log::warn(&format!("phone: {why}")) }
        }
        Ok(AppState(Arc::new(Inner {
            instance: format!("{}-{}", std::process::id(), store::random_hex::<6>()?),
            metrics: metrics::Metrics::default(),
            shared_limits: store.is_postgres(),
            metrics_token: config.metrics_token.as_deref().map(secrets::token_digest),
            activations: limits::Window::new(config.activation_rate_per_minute, minute),
            demo_push_users: limits::Window::new(DEMO_PUSHES_PER_USER, minute),
            phone_sends: limits::Window::new(PHONE_SENDS_PER_USER, minute),
            demo_push_peers: limits::Window::new(DEMO_PUSHES_PER_ADDRESS, minute),
            totp: limits::Backoff::default(),
            audit: limits::Audit::default(),
            form_token: store::random_hex::<16>()?,
            hashing: tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZero::get)),
            page_key: {
                let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
                getrandom::fill(&mut *bytes).map_err(|_| store::Error::Random)?;
                ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &*bytes)
            },
            phone,
            phone_secrets: methods::SecretHasher::new(&key),
            config,
            store,
            key,
            public,
            admin_token,
            rp_token,
            hub: hub::Hub::default(),
        })))
    }

    /// Whether `given` is API token `name` (`admin_token` or `rp_token`):
    /// the configured one, else the one `countersign-server tokens` made.
    /// Digests are compared in constant time.
    async fn token_matches(&self, name: &str, given: &str) -> Result<bool, store::Error> {
        let configured = if name == "admin_token" { self.admin_token } else { self.rp_token };
        let expected = match configured {
            Some(digest) => Some(digest),
            None => self.store.token_hash(name).await?,
        };
        Ok(expected.is_some_and(|expected| {
            !given.is_empty() && bool::from(subtle::ConstantTimeEq::ct_eq(&secrets::token_digest(given)[..], &expected[..]))
        }))
    }

    /// Whether the API token `name` comes from the configuration (then
    /// `countersign-server tokens` cannot replace it).
    pub fn token_configured(&self, name: &str) -> bool {
        if name == "admin_token" { self.admin_token.is_some() } else { self.rp_token.is_some() }
    }

    /// Whether `given` reads `/metrics`: the metrics token or the admin token.
    async fn metrics_allowed(&self, given: &str) -> Result<bool, store::Error> {
        let metrics = self.metrics_token.is_some_and(|expected| {
            !given.is_empty() && bool::from(subtle::ConstantTimeEq::ct_eq(&secrets::token_digest(given)[..], &expected[..]))
        });
        Ok(metrics || self.token_matches("admin_token", given).await?)
    }

    /// Milliseconds `caller` must wait before its next TOTP code for `user` is checked.
    async fn totp_wait(&self, user: &str, caller: IpAddr) -> Result<u64, store::Error> {
        if self.shared_limits {
            return self.store.totp_wait(user, &caller.to_string(), now_millis()).await;
        }
        Ok(self.totp.wait(&(user.to_owned(), caller), limits::millis()))
    }

    async fn totp_result(&self, user: &str, caller: IpAddr, valid: bool) -> Result<(), store::Error> {
        if self.shared_limits {
            let caller = caller.to_string();
            return if valid {
                self.store.totp_succeeded(user, &caller).await
            } else {
                self.store.totp_failed(user, &caller, now_millis()).await
            };
        }
        let key = (user.to_owned(), caller);
        if valid {
            self.totp.succeeded(&key);
        } else {
            self.totp.failed(&key, limits::millis());
        }
        Ok(())
    }

    /// Counts an event in a shared window; a database that fails refuses
    /// (the request it guards would fail too).
    async fn allow_shared(&self, bucket: &str, limit: u32) -> bool {
        match self.store.allow_event(bucket, limit, 60_000, now_millis()).await {
            Ok(allowed) => allowed,
            Err(error) => {
                self.metrics.database_error();
                log::error(&format!("rate limit {}: {error}", bucket.split(':').next().unwrap_or("")));
                false
            }
        }
    }

    /// Counts an activation attempt from `ip`; false when over the limit.
    async fn allow_activation(&self, ip: IpAddr) -> bool {
        if self.shared_limits {
            return self.allow_shared(&format!("activation:{ip}"), self.config.activation_rate_per_minute).await;
        }
        self.activations.allow(&ip, limits::millis())
    }

    /// Counts a demo-page push for `user` from `ip`; false when either is over its limit.
    async fn allow_demo_push(&self, user: &str, ip: IpAddr) -> bool {
        if self.shared_limits {
            return self.allow_shared(&format!("demo_peer:{ip}"), DEMO_PUSHES_PER_ADDRESS).await
                && self.allow_shared(&format!("demo_user:{user}"), DEMO_PUSHES_PER_USER).await;
        }
        let now = limits::millis();
        self.demo_push_peers.allow(&ip, now) && self.demo_push_users.allow(&user.to_owned(), now)
    }

    /// Counts a text or call to `user`'s phone; false when over the limit.
    pub async fn allow_phone_send(&self, user: &str) -> bool {
        if self.shared_limits {
            return self.allow_shared(&format!("phone:{user}"), PHONE_SENDS_PER_USER).await;
        }
        self.phone_sends.allow(&user.to_owned(), limits::millis())
    }
}

/// Texts and calls cost money and wake the user: a relying party that
/// loops (or is abused to pump texts) sends at most 3 per user a minute.
const PHONE_SENDS_PER_USER: u32 = 3;

/// The demo page's "Contact me" is not a push-bombing tool: 5 pushes per
/// user and 10 per address in any minute.
const DEMO_PUSHES_PER_USER: u32 = 5;
const DEMO_PUSHES_PER_ADDRESS: u32 = 10;

/// The whole HTTP surface; the unit tests drive it with `oneshot`. Each
/// group checks its credentials before [`guard::small_body`] reads a byte.
pub fn app(state: AppState) -> Router {
    let body = || from_fn_with_state(state.clone(), guard::small_body);
    let relying_party = Router::new()
        .route("/api/signins", post(api::signin_create))
        .route("/api/signins/{id}", get(api::signin_status))
        .route("/api/signins/{id}/code", post(api::signin_code))
        .route("/api/totp/verify", post(api::totp_verify))
        .route("/api/app-passwords/verify", post(api::app_password_verify))
        .route("/api/users/{name}/methods", get(api::methods_get))
        .route_layer(body())
        .route_layer(from_fn_with_state(state.clone(), guard::relying_party));
    let admin = Router::new()
        .route("/api/admin/users", get(api::user_list).post(api::user_create))
        .route("/api/admin/users/{name}", delete(api::user_remove))
        .route("/api/admin/users/{name}/activations", get(api::activation_list).post(api::activation_create))
        .route("/api/admin/users/{name}/devices", get(api::device_list))
        .route("/api/admin/devices/{id}", delete(api::device_revoke))
        .route("/api/admin/activations/{id}", delete(api::activation_revoke))
        .route("/api/admin/users/{name}/app-passwords", get(api::app_password_list).post(api::app_password_create))
        .route("/api/admin/app-passwords/{id}", delete(api::app_password_revoke))
        .route("/api/admin/users/{name}/phones", get(api::phone_list))
        .route("/api/admin/users/{name}/phones/{kind}", put(api::phone_set).delete(api::phone_remove))
        .route("/api/admin/users/{name}/methods", get(api::methods_get).put(api::methods_set))
        .route_layer(body())
        .route_layer(from_fn_with_state(state.clone(), guard::admin));
    let activation = Router::new()
        .route("/api/activate/{id}", post(api::activate))
        .route_layer(body())
        .route_layer(from_fn_with_state(state.clone(), guard::activation_rate));
    // The phone gateway's callbacks: each carries its call's token.
    let gateway = Router::new()
        .route("/api/phone/calls/{id}", post(api::phone_call))
        .route_layer(body())
        .route_layer(from_fn_with_state(state.clone(), guard::call_token));
    let mut router = Router::new()
        .merge(relying_party)
        .merge(gateway)
        .merge(admin)
        .merge(activation)
        .route("/api/push", get(ws::push))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(api::ready))
        .route("/metrics", get(api::metrics));
    if state.config.demo_pages() {
        router = router.merge(pages::router(&state).route_layer(body()));
    }
    router
        .fallback(guard::not_found)
        .method_not_allowed_fallback(guard::method_not_allowed)
        .layer(DefaultBodyLimit::max(guard::BODY_LIMIT))
        .layer(from_fn_with_state(state.clone(), guard::identify))
        .with_state(state)
}
