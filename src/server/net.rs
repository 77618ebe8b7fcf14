//! The server's sockets: accepting connections under a limit, reading
//! requests under deadlines, and stopping on SIGINT or SIGTERM.
//!
//! What a client that never authenticates can hold, and for how long:
//! - at most `max_connections` open connections (WebSocket sessions
//!   included), kept below the open-file limit, which is raised to its hard
//!   maximum at start. When all are taken, new connections wait in the
//!   kernel's backlog until one ends, so the server never runs out of file
//!   descriptors for its database;
//! - `request_timeout_seconds` (10) to send a request's headers, which is
//!   also how long a kept-alive connection may sit idle between requests,
//!   to finish the TLS handshake, and (in `guard`) to send the body. Idle
//!   and slow sockets are therefore closed within that time, and a real
//!   client waits at most about that long for a free slot;
//! - 16 KiB of headers and [`super::guard::BODY_LIMIT`] of body per request, read
//!   only after the credentials in the headers are checked; a WebSocket
//!   message is at most 16 KiB. Requests in flight therefore hold at most
//!   `max_connections` × about 40 KiB.
//!
//! Every socket gets TCP_NODELAY: a challenge is one small write that must
//! not wait for the device's delayed ACK of the previous one.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

use super::log;
use super::{AppState, app};

/// How long connections get to finish after SIGINT or SIGTERM.
pub const GRACE: Duration = Duration::from_secs(3);
/// Headers larger than this end the connection (hyper's floor is 8 KiB).
const HEADER_LIMIT: usize = 16 * 1024;
/// File descriptors kept for the database, the log and the key files.
const RESERVED_FILES: usize = 64;

/// Why the server could not start serving. Each variant keeps its cause as
/// its source, so `{:#}` prints the same line anyhow's contexts printed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error("cannot listen on {address}")]
    Listen { address: SocketAddr, source: std::io::Error },
    /// Only one of `tls_cert` and `tls_key` is set.
    #[error("TLS needs both tls_cert and tls_key")]
    HalfTls,
    /// The certificate chain file is missing or not PEM.
    #[error("cannot read the certificate chain {}", path.display())]
    Certificate { path: PathBuf, source: rustls::pki_types::pem::Error },
    /// The private key file is missing or not PEM.
    #[error("cannot read the private key {}", path.display())]
    PrivateKey { path: PathBuf, source: rustls::pki_types::pem::Error },
    /// rustls has no safe protocol version with its ring provider.
    #[error(transparent)]
    Protocols(rustls::Error),
    /// The private key is not the certificate's.
    #[error("the TLS certificate and key do not fit")]
    Mismatch(#[source] rustls::Error),
    /// The connection slots were closed (they never are while serving).
    #[error(transparent)]
    Slots(#[from] tokio::sync::AcquireError),
    /// The database failed as serving began.
    #[error(transparent)]
    Store(#[from] super::store::Error),
}

/// A connection's slot, held by its HTTP connection and, after an upgrade,
/// by its WebSocket session: the slot is free when both are gone.
#[derive(Clone)]
pub struct Slot(#[allow(dead_code)] Arc<OwnedSemaphorePermit>);

/// Binds the configured address and serves until SIGINT or SIGTERM.
pub async fn serve(state: AppState) -> Result<(), Error> {
    let listener = bind(&state).await?;
    serve_on(listener, state, shutdown_signal()).await
}

/// The configured address, bound: once this returns, connections queue.
pub async fn bind(state: &AppState) -> Result<TcpListener, Error> {
    TcpListener::bind(state.config.listen).await.map_err(|source| Error::Listen { address: state.config.listen, source })
}

/// Resolves on SIGINT (Ctrl+C) or SIGTERM (systemd's stop).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).ok();
        let term = async {
            match terminate.as_mut() {
                Some(terminate) => {
                    terminate.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Serves on `listener` until `shutdown` resolves, then stops accepting,
/// closes push sessions and gives open requests [`GRACE`] to finish.
pub async fn serve_on(listener: TcpListener, state: AppState, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let tls = match (&state.config.tls_cert, &state.config.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        (None, None) => None,
        _ => return Err(Error::HalfTls),
    };
    let limit = connection_limit(state.config.max_connections);
    if limit < state.config.max_connections {
        log::warn(&format!("at most {limit} connections: the open-file limit allows no more (raise LimitNOFILE)"));
    }
    let timeout = state.config.request_timeout();
    let slots = Arc::new(Semaphore::new(limit));
    let (stop, stopping) = watch::channel(false);
    let router = app(state.clone());
    // This instance is alive (and its sessions count) from now on; on
    // PostgreSQL it hears what the other instances do.
    let now = super::now();
    state.store.heartbeat(&state.instance, now, now - super::cluster::STALE).await?;
    let mut background = vec![tokio::spawn(super::cluster::heartbeat(state.clone()))];
    if let Some(pool) = state.store.postgres() {
        background.push(tokio::spawn(super::cluster::listen(state.clone(), pool.clone())));
    }
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => slot?,
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and friends: back off instead of spinning.
                    log::error(&format!("accept failed: {error}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let slot = Slot(Arc::new(slot));
        let service = router.clone().map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(slot.clone());
            request
        });
        let (tls, stopping) = (tls.clone(), stopping.clone());
        tokio::spawn(async move {
            match tls {
                None => connection(stream, service, timeout, stopping).await,
                Some(acceptor) => {
                    if let Ok(Ok(stream)) = tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                        connection(stream, service, timeout, stopping).await;
                    }
                }
            }
        });
    }
    drop(listener);
    log::info("stopping");
    let _ = stop.send(true);
    state.hub.close_all();
    // Every slot back means every connection and session has ended.
    let deadline = tokio::time::Instant::now() + GRACE;
    while slots.available_permits() < limit && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for task in background {
        task.abort();
    }
    // A clean stop: the others need not wait for this one to go stale.
    if let Err(error) = state.store.instance_stopped(&state.instance).await {
        log::error(&format!("forgetting this instance's sessions: {error}"));
    }
    Ok(())
}

/// One HTTP/1.1 connection (upgradable to a WebSocket) until it ends or
/// the server stops.
async fn connection<I, S>(io: I, service: S, timeout: Duration, mut stopping: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<Request<Incoming>, Response = axum::response::Response, Error = std::convert::Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(timeout).max_buf_size(HEADER_LIMIT);
    let connection = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service)).with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = stopping.wait_for(|stopping| *stopping) => connection.as_mut().graceful_shutdown(),
    }
    let _ = connection.await;
}

/// `max_connections`, or fewer if the open-file limit (raised as far as it
/// goes) cannot hold them beside the database's files.
fn connection_limit(wanted: usize) -> usize {
    #[cfg(unix)]
    {
        // SAFETY: getrlimit and setrlimit only read and write the struct given.
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
                if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                    limit.rlim_cur = limit.rlim_max;
                }
            }
            let files = usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX);
            return wanted.min(files.saturating_sub(RESERVED_FILES)).max(1);
        }
    }
    wanted
}

fn tls_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, Error> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(std::iter::Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|source| Error::Certificate { path: cert.to_owned(), source })?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| Error::PrivateKey { path: key.to_owned(), source })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::Protocols)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(Error::Mismatch)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
