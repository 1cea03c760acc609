//! A shutdown that always ends: stop accepting, drain in-flight requests
//! within a deadline, close idle and half-sent connections, return.
//!
//! ```no_run
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let telemetry = telemetry_init::install()?;
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(telemetry_init::layer());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! // Stop accepting on SIGTERM or Ctrl-C, give in-flight requests
//! // TELEMETRY_DRAIN_TIMEOUT (default 10 s), then close whatever is left.
//! let report = telemetry_init::shutdown::serve_with_drain(
//!     listener,
//!     app,
//!     telemetry_init::shutdown::signal(),
//!     telemetry_init::shutdown::drain_timeout()?,
//! )
//! .await?;
//! tracing::info!(%report, "server stopped");
//! // Then flush telemetry within its own deadline (TELEMETRY_SHUTDOWN_TIMEOUT).
//! let flush_timeout = telemetry.handle().config().shutdown_timeout;
//! let flushed = telemetry.shutdown(flush_timeout).await;
//! # let _ = flushed;
//! # Ok(()) }
//! ```
//!
//! Why not `axum::serve(..).with_graceful_shutdown(..)` alone: it waits for
//! every connection to finish, with no deadline, so one client that sends
//! half a request (or keeps a slow download open) holds the process until
//! the orchestrator kills it — and a killed process loses every span still
//! queued for export. Here, once the drain deadline passes, the remaining
//! connections are closed, so exit (and the telemetry flush after it) never
//! depends on what clients do.
//!
//! What happens on the signal:
//!
//! 1. the listener is closed: new connections are refused;
//! 2. every open connection is told to finish: an idle keep-alive connection
//!    closes at once, a connection with a request in flight closes after
//!    sending its response (HTTP/2 gets a `GOAWAY`);
//! 3. after `drain` at most, connections still open (a half-sent request, a
//!    handler that does not finish, a slow reader) are closed, and their
//!    request futures dropped;
//! 4. the function returns a [`DrainReport`]; the caller then flushes
//!    telemetry ([`TelemetryGuard::shutdown`](crate::TelemetryGuard::shutdown)).
//!
//! A request's span ends when its response body is sent or dropped, so
//! spans of requests that completed are already queued when this returns.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tower::ServiceExt as _;

use crate::Error;

/// The variable that sets the drain deadline, in milliseconds.
pub const DRAIN_TIMEOUT_ENV: &str = "TELEMETRY_DRAIN_TIMEOUT";

/// The drain deadline when [`DRAIN_TIMEOUT_ENV`] is unset: 10 s, which with
/// the 5 s telemetry flush stays well inside Kubernetes' default 30 s
/// termination grace period.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest time a client may take to send a request's headers (HTTP/1), at
/// any time, not only during shutdown.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The drain deadline: `TELEMETRY_DRAIN_TIMEOUT` (milliseconds) or
/// [`DEFAULT_DRAIN_TIMEOUT`]. An invalid value is an error naming the
/// variable.
pub fn drain_timeout() -> Result<Duration, Error> {
    match std::env::var(DRAIN_TIMEOUT_ENV) {
        Ok(v) if !v.trim().is_empty() => {
            crate::config::env::parse_millis(DRAIN_TIMEOUT_ENV, v.trim())
        }
        _ => Ok(DEFAULT_DRAIN_TIMEOUT),
    }
}

/// Completes on SIGTERM (Unix) or Ctrl-C, whichever comes first.
pub async fn signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// What [`serve_with_drain`] did at shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DrainReport {
    /// Connections open when the signal came.
    pub open_at_signal: usize,
    /// Connections still open at the deadline, closed without finishing.
    pub closed_at_deadline: usize,
    /// How long the drain took.
    pub elapsed: Duration,
}

impl fmt::Display for DrainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} connection(s) open at the signal, {} closed at the deadline, drained in {:?}",
            self.open_at_signal, self.closed_at_deadline, self.elapsed
        )
    }
}

/// Serves `app` on `listener` until `signal` completes, then drains within
/// `drain` and returns; see the [module docs](self). Handlers see the
/// client's address as `ConnectInfo<SocketAddr>`, as with
/// `into_make_service_with_connect_info`.
///
/// Errors only when accepting fails for a reason other than a client's (e.g.
/// the process ran out of file descriptors is retried after a pause, as
/// axum does; nothing here ever waits without a bound once the signal came).
pub async fn serve_with_drain<F>(
    listener: TcpListener,
    app: axum::Router,
    signal: F,
    drain: Duration,
) -> std::io::Result<DrainReport>
where
    F: Future<Output = ()> + Send,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let mut connections: JoinSet<()> = JoinSet::new();
    let mut signal = std::pin::pin!(signal);

    loop {
        tokio::select! {
            () = &mut signal => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let app = app.clone();
                    // Handlers (and the server layer's `client.address`) see
                    // the peer as with `into_make_service_with_connect_info`.
                    let service = hyper::service::service_fn(
                        move |mut req: http::Request<hyper::body::Incoming>| {
                            req.extensions_mut().insert(ConnectInfo(peer));
                            app.clone().oneshot(req.map(axum::body::Body::new))
                        },
                    );
                    let conn = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    let conn = graceful.watch(conn);
                    connections.spawn(async move {
                        // A connection error (reset, timeout) concerns that
                        // client only.
                        let _ = conn.await;
                    });
                }
                Err(e) if is_per_connection(&e) => {}
                // Out of file descriptors and the like: pause, as axum does,
                // rather than spin or give up.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }

    let started = std::time::Instant::now();
    drop(listener);
    let open_at_signal = connections.len();
    let drained = tokio::time::timeout(drain, async {
        graceful.shutdown().await;
        while connections.join_next().await.is_some() {}
    })
    .await;
    let closed_at_deadline = if drained.is_err() {
        // Finished connections stay in the set until reaped: count only
        // those still running.
        while connections.try_join_next().is_some() {}
        let n = connections.len();
        connections.abort_all();
        while connections.join_next().await.is_some() {}
        n
    } else {
        0
    };
    Ok(DrainReport {
        open_at_signal,
        closed_at_deadline,
        elapsed: started.elapsed(),
    })
}

fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}
