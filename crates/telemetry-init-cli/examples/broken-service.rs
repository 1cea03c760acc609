//! A deliberately mis-instrumented service for the `smoke run` tests.
//!
//! Instrumented with telemetry-init like the demo (`GET /hello`, `GET /chain`
//! calling `DOWNSTREAM_URL` or its own `/hello`), except for the one thing
//! `BROKEN_MODE` breaks:
//!
//! * `ignore-traceparent`: incoming `traceparent`/`tracestate` are dropped
//!   before the telemetry layer, so every request starts a new trace;
//! * `ignore-tracestate`: only the incoming `tracestate` is dropped;
//! * `drop-tracestate`: `/chain` calls downstream with a hand-made
//!   `traceparent` only: no `tracestate`, `baggage` or `X-Request-ID`;
//! * `no-trace-ids`: the stdout lines are written by hand without
//!   `trace_id`/`span_id` (exported log records stay correlated);
//! * `leak-secret`: the `Authorization` header is logged, with its default
//!   redaction turned off (`keep_key`);
//! * unset or `none`: nothing is broken.
//!
//! Like the demo it listens on `LISTEN_ADDR`, prints
//! `{"message":"broken-service listening","listen":"…"}` and exits 0 on SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::routing::get;
use telemetry_init::http::client::TracedRequest;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    None,
    IgnoreTraceparent,
    IgnoreTracestate,
    DropTracestate,
    NoTraceIds,
    LeakSecret,
}

#[derive(Clone)]
struct AppState {
    mode: Mode,
    client: reqwest::Client,
    downstream: String,
}

fn stdout_line(message: &str) {
    // Hand-written JSON line: timestamp and message, no ids.
    let now = humantime::format_rfc3339_nanos(std::time::SystemTime::now());
    println!(r#"{{"timestamp":"{now}","level":"INFO","message":"{message}"}}"#);
}

async fn hello(State(s): State<AppState>) -> &'static str {
    if s.mode == Mode::NoTraceIds {
        stdout_line("saying hello");
    } else {
        tracing::info!("saying hello");
    }
    "hello\n"
}

async fn chain(State(s): State<AppState>, headers: HeaderMap) -> (axum::http::StatusCode, String) {
    match s.mode {
        Mode::NoTraceIds => {
            // Exported (correlated) as usual; only the stdout line is broken.
            tracing::info!("calling downstream");
            stdout_line("calling downstream");
        }
        Mode::LeakSecret => {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info!(authorization = auth, "calling downstream");
        }
        _ => tracing::info!(downstream = %s.downstream, "calling downstream"),
    }
    let res = if s.mode == Mode::DropTracestate {
        let mut req = s.client.get(&s.downstream);
        if let Some((trace, span)) = telemetry_init::current_trace_ids() {
            req = req.header("traceparent", format!("00-{trace}-{span}-01"));
        }
        req.send().await
    } else {
        s.client.get(&s.downstream).send_traced().await
    };
    match res {
        Ok(r) => (
            axum::http::StatusCode::OK,
            format!("downstream {}\n", r.status()),
        ),
        Err(e) => (
            axum::http::StatusCode::BAD_GATEWAY,
            format!("downstream failed: {e}\n"),
        ),
    }
}

async fn strip_context(mut req: Request) -> Request {
    req.headers_mut().remove("traceparent");
    req.headers_mut().remove("tracestate");
    req
}

async fn strip_tracestate(mut req: Request) -> Request {
    req.headers_mut().remove("tracestate");
    req
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mode = match std::env::var("BROKEN_MODE").unwrap_or_default().as_str() {
        "" | "none" => Mode::None,
        "ignore-traceparent" => Mode::IgnoreTraceparent,
        "ignore-tracestate" => Mode::IgnoreTracestate,
        "drop-tracestate" => Mode::DropTracestate,
        "no-trace-ids" => Mode::NoTraceIds,
        "leak-secret" => Mode::LeakSecret,
        other => return Err(format!("unknown BROKEN_MODE {other:?}").into()),
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(serve(mode))
}

async fn serve(mode: Mode) -> Result<(), Box<dyn std::error::Error>> {
    let listen: SocketAddr = std::env::var("LISTEN_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:0".into())
        .parse()?;
    let mut builder = telemetry_init::builder().service_name("broken-service");
    if mode == Mode::NoTraceIds {
        builder = builder.stdout_filter("off");
    }
    if mode == Mode::LeakSecret {
        // telemetry-init redacts `authorization` by default; this service
        // turns that off, as a careless configuration would.
        builder = builder.keep_key("authorization");
    }
    let telemetry = builder.install()?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let local = listener.local_addr()?;
    let state = AppState {
        mode,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        downstream: std::env::var("DOWNSTREAM_URL")
            .unwrap_or_else(|_| format!("http://{local}/hello")),
    };
    let mut app = Router::new()
        .route("/hello", get(hello))
        .route("/chain", get(chain))
        .with_state(state)
        .layer(telemetry_init::layer());
    match mode {
        Mode::IgnoreTraceparent => app = app.layer(axum::middleware::map_request(strip_context)),
        Mode::IgnoreTracestate => app = app.layer(axum::middleware::map_request(strip_tracestate)),
        _ => {}
    }
    println!(r#"{{"message":"broken-service listening","listen":"{local}","mode":"{mode:?}"}}"#);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(terminated())
    .await?;
    let report = telemetry.shutdown(Duration::from_secs(5)).await;
    if !report.is_complete() {
        eprintln!("broken-service: telemetry not fully delivered: {report}");
    }
    Ok(())
}

/// SIGTERM (or Ctrl-C where there is no SIGTERM).
async fn terminated() {
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            term.recv().await;
        }
        Err(_) => std::future::pending::<()>().await,
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
