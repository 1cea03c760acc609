//! A local OTLP collector with an embedded SQLite store, a JSON query API
//! and a browser UI: traces, logs, metrics and SLO status in one process,
//! no Docker. `telemetry-init dev` runs it; a service can embed it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let viewer = telemetry_init_viewer::Viewer::builder()
//!     .db_path("telemetry.db")                 // default ./telemetry-init.db
//!     .ui_addr("127.0.0.1:18888".parse()?)     // UI + query API
//!     .grpc_addr("127.0.0.1:4317".parse()?)    // OTLP/gRPC
//!     .http_addr("127.0.0.1:4318".parse()?)    // OTLP/HTTP + raw events
//!     .start()
//!     .await?;
//! println!("point OTEL_EXPORTER_OTLP_ENDPOINT at {}", viewer.grpc_endpoint());
//! println!("open {}", viewer.ui_url());
//! viewer.shutdown().await; // commits what was received
//! # Ok(())
//! # }
//! ```
//!
//! * [`ingest`](mod@ingest): OTLP/gRPC, OTLP/HTTP (protobuf and JSON, gzip),
//!   raw NDJSON events over `POST /v1/events` and a WebSocket;
//! * [`store`]: one SQLite file written by one thread behind a bounded queue,
//!   with retention by age, row count and bytes on disk per signal;
//! * [`api`]: the JSON API under `/api` and Server-Sent Events at `/api/live`.
//!
//! Every listener binds loopback by default. Binding another address is
//! refused unless [`ViewerBuilder::allow_remote`] is set: the UI and API
//! show everything stored, and the ingest ports accept anything, with no
//! authentication.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod api;
pub mod ingest;
pub mod store;
pub mod ui;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use api::{ApiState, api_router};
pub use store::{
    RetentionConfig, RetentionPolicy, SIZE_MEASURE_INTERVAL, Store, StoreConfig, StoreError,
};

/// Starting the viewer failed.
#[derive(Debug, thiserror::Error)]
pub enum ViewerError {
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A listener could not be bound.
    #[error("cannot bind the viewer's {what} listener on {addr}: {source}")]
    Bind {
        /// `UI`, `OTLP gRPC` or `OTLP HTTP`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A non-loopback address was given without [`ViewerBuilder::allow_remote`].
    #[error(
        "refusing to serve the viewer's {what} on {addr}: it is not a loopback address and the viewer has no \
         authentication; pass allow_remote(true) (`--allow-remote`) to serve other hosts"
    )]
    NotLoopback {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
    },
    /// An SLO file could not be read.
    #[error(transparent)]
    Slo(#[from] telemetry_init_slo::SloError),
}

/// Configures and starts a [`Viewer`].
#[derive(Debug, Clone)]
pub struct ViewerBuilder {
    store: StoreConfig,
    ui_addr: SocketAddr,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    slo_files: Vec<PathBuf>,
    allow_remote: bool,
}

impl Default for ViewerBuilder {
    fn default() -> Self {
        ViewerBuilder {
            store: StoreConfig::default(),
            ui_addr: SocketAddr::from(([127, 0, 0, 1], 18888)),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 4317)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 4318)),
            slo_files: Vec::new(),
            allow_remote: false,
        }
    }
}

impl ViewerBuilder {
    /// The database file (default `./telemetry-init.db`); created if missing,
    /// reopened with its data otherwise.
    #[must_use]
    pub fn db_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.store.db_path = path.into();
        self
    }

    /// Address of the UI and query API (default `127.0.0.1:18888`; port 0 picks one).
    #[must_use]
    pub fn ui_addr(mut self, addr: SocketAddr) -> Self {
        self.ui_addr = addr;
        self
    }

    /// Address of the OTLP/gRPC listener (default `127.0.0.1:4317`).
    #[must_use]
    pub fn grpc_addr(mut self, addr: SocketAddr) -> Self {
        self.grpc_addr = addr;
        self
    }

    /// Address of the OTLP/HTTP and raw event listener (default `127.0.0.1:4318`).
    #[must_use]
    pub fn http_addr(mut self, addr: SocketAddr) -> Self {
        self.http_addr = addr;
        self
    }

    /// Binds every listener to an ephemeral loopback port (for tests and embedding).
    #[must_use]
    pub fn ephemeral_ports(self) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        self.ui_addr(any).grpc_addr(any).http_addr(any)
    }

    /// SLO spec files (`telemetry-init-slo` YAML) for `/api/slo`.
    #[must_use]
    pub fn slo_files(mut self, files: Vec<PathBuf>) -> Self {
        self.slo_files = files;
        self
    }

    /// Allows binding non-loopback addresses (default `false`). Whoever can
    /// reach them can read everything stored and write telemetry.
    #[must_use]
    pub fn allow_remote(mut self, allow: bool) -> Self {
        self.allow_remote = allow;
        self
    }

    /// Retention per signal (default: 7 days, 2 000 000 rows per signal,
    /// 1 000 000 events).
    #[must_use]
    pub fn retention(mut self, retention: RetentionConfig) -> Self {
        self.store.retention = retention;
        self
    }

    /// How often retention runs (default 1 s).
    #[must_use]
    pub fn retention_interval(mut self, every: Duration) -> Self {
        self.store.retention_interval = every;
        self
    }

    /// Most export requests waiting for the writer (default 4096).
    #[must_use]
    pub fn queue_len(mut self, n: usize) -> Self {
        self.store.queue_len = n;
        self
    }

    /// Most encoded bytes waiting for the writer (default 64 MiB).
    #[must_use]
    pub fn queue_bytes(mut self, n: usize) -> Self {
        self.store.queue_bytes = n;
        self
    }

    /// Longest the writer folds queued requests into one transaction
    /// (default 100 ms): the most a crash loses beyond the queue.
    #[must_use]
    pub fn batch_interval(mut self, d: Duration) -> Self {
        self.store.batch_interval = d;
        self
    }

    fn check(&self, what: &'static str, addr: SocketAddr) -> Result<(), ViewerError> {
        let loopback = match addr.ip() {
            IpAddr::V4(ip) => ip.is_loopback(),
            IpAddr::V6(ip) => {
                ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        };
        if loopback || self.allow_remote {
            Ok(())
        } else {
            Err(ViewerError::NotLoopback { what, addr })
        }
    }

    /// Opens the store, binds the listeners and serves on the current tokio
    /// runtime until [`Viewer::shutdown`] (or drop).
    pub async fn start(self) -> Result<Viewer, ViewerError> {
        self.check("UI", self.ui_addr)?;
        self.check("OTLP gRPC", self.grpc_addr)?;
        self.check("OTLP HTTP", self.http_addr)?;
        let mut specs = Vec::new();
        for f in &self.slo_files {
            specs.push(telemetry_init_slo::SloSpec::from_path(f)?);
        }
        let bind = |what: &'static str, addr: SocketAddr| async move {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| ViewerError::Bind { what, addr, source })?;
            let local =
                l.local_addr()
                    .map_err(|source| ViewerError::Bind { what, addr, source })?;
            Ok::<_, ViewerError>((l, local))
        };
        let (ui, ui_addr) = bind("UI", self.ui_addr).await?;
        let (grpc, grpc_addr) = bind("OTLP gRPC", self.grpc_addr).await?;
        let (http, http_addr) = bind("OTLP HTTP", self.http_addr).await?;
        let store = Store::open(self.store)?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = move |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(ingest::grpc::serve_logged(
            store.clone(),
            grpc,
            stopped(stop_rx.clone()),
        )));
        let ingest_app = ingest::http::router(store.clone());
        let s = stopped(stop_rx.clone());
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(
                http,
                ingest_app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(s)
            .await;
        }));
        let app = api_router(ApiState::new(store.clone(), specs)).merge(ui::router());
        let s = stopped(stop_rx);
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(ui, app.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(s)
                .await;
        }));
        Ok(Viewer {
            store,
            ui_addr,
            grpc_addr,
            http_addr,
            stop: stop_tx,
            tasks,
        })
    }
}

/// A running viewer; stops on [`Viewer::shutdown`] or drop.
#[derive(Debug)]
pub struct Viewer {
    store: Arc<Store>,
    ui_addr: SocketAddr,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Viewer {
    /// A builder with the defaults.
    pub fn builder() -> ViewerBuilder {
        ViewerBuilder::default()
    }

    /// The UI's URL, e.g. `http://127.0.0.1:18888/`.
    pub fn ui_url(&self) -> String {
        format!("http://{}/", self.ui_addr)
    }

    /// The OTLP/gRPC endpoint, e.g. `http://127.0.0.1:4317`.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    /// The OTLP/HTTP endpoint, e.g. `http://127.0.0.1:4318`.
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// The bound UI/API address.
    pub fn ui_addr(&self) -> SocketAddr {
        self.ui_addr
    }

    /// The bound OTLP/gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The bound OTLP/HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The store (for direct queries and [`Store::flush`]).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Stops the listeners (waiting up to 2 s for open requests), then
    /// commits everything queued and stops the writer.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut self.tasks);
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            for t in tasks {
                let _ = t.await;
            }
        })
        .await;
        self.store.shutdown().await;
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
