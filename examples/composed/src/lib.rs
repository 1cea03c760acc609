//! A service that already has its own `tracing` layers and adds
//! telemetry-init's beside them, with [`telemetry_init::Builder::build`]
//! and [`telemetry_init::Telemetry::install_with`] instead of
//! `telemetry_init::install()`:
//!
//! * a DEBUG log file of this service's own target (`tracing-appender`),
//!   with its own per-layer filter;
//! * [`ErrorCounter`], a custom layer that counts ERROR events (the shape of
//!   an error reporter), filtered to ERROR;
//! * telemetry-init's layer: JSON lines on stdout (`RUST_LOG`), spans, span
//!   events and log records over OTLP (`TELEMETRY_EXPORT_FILTER`).
//!
//! Each layer's filter decides only what that layer sees: the file gets the
//! DEBUG lines that neither stdout nor the collector get, and the
//! collector's spans and records are what `install()` would have sent.
//!
//! ```no_run
//! # fn main() -> Result<(), telemetry_init::Error> {
//! let telemetry = telemetry_init::builder().service_name("orders").build()?;
//! let errors = composed_layers::ErrorCounter::default();
//! let (file, _flush) = tracing_appender::non_blocking(tracing_appender::rolling::never(".", "debug.log"));
//! let subscriber = composed_layers::subscriber(&telemetry, file, errors.clone());
//! let _guard = telemetry.install_with(subscriber)?;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A custom layer: counts the ERROR events it is given.
#[derive(Clone, Debug, Default)]
pub struct ErrorCounter(Arc<AtomicU64>);

impl ErrorCounter {
    /// The events counted so far.
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl<S: Subscriber> Layer<S> for ErrorCounter {
    fn on_event(&self, _event: &Event<'_>, _ctx: Context<'_, S>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// The service's subscriber: telemetry-init's layer beside a DEBUG file of
/// this crate's events and the error counter, each with its own filter.
pub fn subscriber<W>(
    telemetry: &telemetry_init::Telemetry,
    debug_file: W,
    errors: ErrorCounter,
) -> impl Subscriber + for<'a> LookupSpan<'a> + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let file = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(debug_file)
        .with_filter(Targets::new().with_target("composed_layers", LevelFilter::DEBUG));
    tracing_subscriber::registry()
        .with(telemetry.layer())
        .with(file)
        .with(errors.with_filter(LevelFilter::ERROR))
}

#[derive(Debug)]
struct Declined;

impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("card declined")
    }
}

impl std::error::Error for Declined {}

/// The routes: `GET /orders/{id}` (a DEBUG and an INFO event), `GET /pay`
/// (an ERROR event carrying an error value) and `GET /errors` (what the
/// [`ErrorCounter`] counted).
pub fn app(errors: ErrorCounter) -> Router {
    Router::new()
        .route(
            "/orders/{id}",
            get(|Path(id): Path<u64>| async move {
                tracing::debug!(order = id, "cache lookup");
                tracing::info!(order = id, "order found");
                format!("order {id}")
            }),
        )
        .route(
            "/pay",
            get(|| async {
                tracing::warn!("payment slow");
                tracing::error!(
                    error = &Declined as &dyn std::error::Error,
                    "payment failed"
                );
                "declined"
            }),
        )
        .route(
            "/errors",
            get(move || {
                let errors = errors.clone();
                async move { errors.count().to_string() }
            }),
        )
        .layer(telemetry_init::layer())
}
