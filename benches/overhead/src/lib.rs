//! What the four servers share: the same routes, handlers and listener, so
//! that the variants differ only in their telemetry.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::Path;
use axum::routing::get;

/// `GET /hello` and `GET /users/{id}`.
pub fn app() -> Router {
    Router::new()
        .route("/hello", get(hello))
        .route("/users/{id}", get(user))
}

async fn hello() -> &'static str {
    "Hello, World!"
}

async fn user(Path(id): Path<u64>) -> String {
    format!("user {id}")
}

/// `LISTEN_ADDR` (default `127.0.0.1:0`, an ephemeral port). Only loopback
/// addresses are accepted: the benchmark never listens beyond this machine.
pub fn listen_addr() -> SocketAddr {
    let raw = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:0".into());
    let addr: SocketAddr = raw
        .parse()
        .unwrap_or_else(|e| panic!("invalid LISTEN_ADDR {raw:?}: {e}"));
    assert!(addr.ip().is_loopback(), "LISTEN_ADDR must be a loopback address, got {addr}");
    addr
}

/// Binds, prints `listening on ADDR` on stderr (the runner waits for it),
/// and serves `app` until SIGTERM or Ctrl-C.
pub async fn serve(app: Router) {
    let listener = tokio::net::TcpListener::bind(listen_addr())
        .await
        .expect("bind LISTEN_ADDR");
    let local = listener.local_addr().expect("local_addr");
    eprintln!("listening on {local}");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .expect("serve");
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
