//! A recording downstream for `smoke run`: an HTTP server on 127.0.0.1 that
//! answers every request `200 OK` and remembers the propagation headers it
//! got, so the smoke test sees exactly what the service sent downstream.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};

/// The propagation headers of one request the downstream received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Received {
    /// Path and query.
    pub path: String,
    /// `traceparent`, if any.
    pub traceparent: Option<String>,
    /// `tracestate`, if any (repeated headers joined with `,`).
    pub tracestate: Option<String>,
    /// `baggage`, if any (repeated headers joined with `,`).
    pub baggage: Option<String>,
    /// The request id header ([`super::context::request_id_header`]), if any.
    pub request_id: Option<String>,
}

impl Received {
    /// `(trace id, parent span id)` of the `traceparent`, lowercased.
    pub(super) fn trace_and_parent(&self) -> Option<(String, String)> {
        let tp = self.traceparent.as_deref()?.trim().to_ascii_lowercase();
        let mut parts = tp.split('-');
        let (_v, t, p) = (parts.next()?, parts.next()?, parts.next()?);
        Some((t.to_owned(), p.to_owned()))
    }
}

type Log = Arc<Mutex<Vec<Received>>>;

/// A running recording downstream; it stops with the runtime.
#[derive(Debug, Clone)]
pub(super) struct Downstream {
    /// Where it listens.
    pub addr: SocketAddr,
    log: Log,
}

impl Downstream {
    /// Binds 127.0.0.1:0 and serves on the current runtime.
    pub(super) async fn start() -> Result<Downstream, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot bind the recording downstream: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("recording downstream: {e}"))?;
        let log: Log = Arc::default();
        let app = Router::new().fallback(record).with_state(log.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Downstream { addr, log })
    }

    /// The URL to give the service (`http://127.0.0.1:PORT/downstream`).
    pub(super) fn url(&self) -> String {
        format!("http://{}/downstream", self.addr)
    }

    /// Every request received so far.
    pub(super) fn received(&self) -> Vec<Received> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

async fn record(State(log): State<Log>, req: Request) -> &'static str {
    let h = req.headers();
    let joined = |name: &str| -> Option<String> {
        let values: Vec<&str> = h
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    };
    let r = Received {
        path: req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        traceparent: joined("traceparent"),
        tracestate: joined("tracestate"),
        baggage: joined("baggage"),
        request_id: joined(super::context::request_id_header().as_str()),
    };
    if let Ok(mut l) = log.lock() {
        l.push(r);
    }
    "smoke downstream ok\n"
}
