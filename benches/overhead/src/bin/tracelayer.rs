//! Variant `tracelayer`: tower-http's `TraceLayer::new_for_http()` and
//! tracing-subscriber's JSON formatter on a non-blocking stdout writer.
//!
//! The span and the response event are raised to INFO (tower-http's defaults
//! are DEBUG), so that with the usual `info` filter each request prints one
//! JSON line carrying the request span's method, URI and version: the access
//! log such a service has today.

use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    let (writer, _flush_guard) = tracing_appender::non_blocking(std::io::stdout());
    tracing_subscriber::fmt()
        .json()
        .with_writer(writer)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let app = overhead_bench::app().layer(
        TraceLayer::new_for_http()
            .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
            .on_response(DefaultOnResponse::new().level(Level::INFO)),
    );
    overhead_bench::serve(app).await;
}
