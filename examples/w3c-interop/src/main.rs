//! The W3C Trace Context test-suite service.
//!
//! Listens on `LISTEN_ADDR` (default `127.0.0.1:3001`) and answers
//! `POST /test`, whose body is a JSON array of `{"url": …, "arguments": […]}`.
//! The incoming context is extracted with `telemetry_init_propagation`, a
//! server span is started, and for each entry, in order, the service POSTs the
//! entry's `arguments` (`[]` by default) as JSON to `url` under a new client
//! span whose context is injected into the request. It answers 200 once every
//! call has finished, and within 5 seconds in any case.
//!
//! Run the suite against it (see `crates/telemetry-init-propagation/CONFORMANCE.md`):
//!
//! ```text
//! cargo run -p w3c-interop &
//! STRICT_LEVEL=2 python3 test.py http://127.0.0.1:3001/test
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use opentelemetry::Context;
use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer};
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use serde::Deserialize;
use telemetry_init_propagation::{extract, inject_context};

/// The harness waits 5 s per case; answer before that even if a callback hangs.
const DEADLINE: Duration = Duration::from_millis(4500);

#[derive(Debug, Deserialize)]
struct Action {
    url: String,
    #[serde(default)]
    arguments: Option<serde_json::Value>,
}

struct App {
    tracer: SdkTracer,
    client: reqwest::Client,
}

async fn test(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let Ok(actions) = serde_json::from_slice::<Vec<Action>>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    // Extract with the exact parser: an invalid traceparent leaves `parent`
    // without a span, so the server span starts a new trace.
    let parent = extract(&headers).into_context(&Context::new());
    let server_span = app
        .tracer
        .span_builder("POST /test")
        .with_kind(SpanKind::Server)
        .start_with_context(&app.tracer, &parent);
    let server_cx = parent.with_span(server_span);

    let calls = async {
        for action in actions {
            call(&app, &server_cx, action).await;
        }
    };
    let status = match tokio::time::timeout(DEADLINE, calls).await {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::GATEWAY_TIMEOUT,
    };
    server_cx.span().end();
    status
}

/// One outgoing call under its own client span (so every call carries a new
/// parent-id). Kept small: the team will swap it for the crate's client layer.
async fn call(app: &App, server_cx: &Context, action: Action) {
    let span = app
        .tracer
        .span_builder("POST")
        .with_kind(SpanKind::Client)
        .start_with_context(&app.tracer, server_cx);
    let cx = server_cx.with_span(span);
    let mut headers = HeaderMap::new();
    inject_context(&cx, &mut headers);
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    // The harness rejects an empty body: send the arguments, `[]` by default.
    let body = action
        .arguments
        .map(|a| a.to_string())
        .unwrap_or_else(|| "[]".to_owned());
    if let Err(e) = app
        .client
        .post(&action.url)
        .headers(headers)
        .body(body)
        .send()
        .await
    {
        eprintln!("w3c-interop: POST {} failed: {e}", action.url);
    }
    cx.span().end();
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::var("LISTEN_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3001".to_owned())
        .parse()?;
    // No exporter: the provider only generates ids and sampling decisions.
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOn)
        .build();
    let app = Arc::new(App {
        tracer: opentelemetry::trace::TracerProvider::tracer(&provider, "w3c-interop"),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(4))
            .build()?,
    });
    let router = Router::new().route("/test", post(test)).with_state(app);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("w3c-interop listening on http://{addr}/test");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    let _ = provider.shutdown();
    Ok(())
}
