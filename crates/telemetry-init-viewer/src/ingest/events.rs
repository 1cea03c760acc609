//! Raw events: `POST /v1/events` with newline-delimited JSON, and the
//! `GET /v1/events/ws` WebSocket (each text message: one or more NDJSON
//! lines). Each request or connection is a stream whose metadata (headers
//! with secrets redacted, remote address, time) is stored once in `streams`;
//! answers carry the count stored so far under the stream's name.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::queue_full;
use crate::store::encode::bounded;
use crate::store::query::now_us;
use crate::store::{Op, Store, StreamMeta};

/// Largest single event (one NDJSON line), bytes.
pub(crate) const MAX_EVENT_BYTES: usize = 1024 * 1024;
/// Largest WebSocket message, bytes.
pub(crate) const MAX_WS_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Longest stream name.
pub(crate) const MAX_STREAM_NAME: usize = 128;
/// Headers whose values are never stored.
pub(crate) const REDACTED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "x-auth-token",
];

/// The `?stream=` parameter.
#[derive(Debug, Deserialize)]
pub(crate) struct StreamParam {
    stream: Option<String>,
}

fn stream_name(p: &StreamParam) -> String {
    let name = p
        .stream
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("default");
    bounded(name, MAX_STREAM_NAME).to_owned()
}

/// Request headers as a JSON object, secrets redacted, bounded.
pub(crate) fn headers_json(headers: &HeaderMap) -> String {
    let mut map = serde_json::Map::new();
    for (name, value) in headers.iter().take(64) {
        let key = name.as_str();
        let v =
            if REDACTED_HEADERS.contains(&key) || key.contains("token") || key.contains("secret") {
                "[REDACTED]".to_owned()
            } else {
                bounded(&String::from_utf8_lossy(value.as_bytes()), 1024).to_owned()
            };
        map.insert(key.to_owned(), serde_json::Value::String(v));
    }
    serde_json::Value::Object(map).to_string()
}

fn meta(
    store: &Store,
    name: String,
    transport: &'static str,
    remote: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Arc<StreamMeta> {
    Arc::new(StreamMeta {
        key: store.new_stream_key(),
        name,
        transport,
        remote_addr: remote.map(|a| a.to_string()),
        headers: headers_json(headers),
        opened_us: now_us(),
    })
}

/// Splits NDJSON into validated event lines (blank lines skipped).
pub(crate) fn parse_lines(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line.len() > MAX_EVENT_BYTES {
            return Err(format!(
                "line {}: event exceeds {MAX_EVENT_BYTES} bytes",
                i + 1
            ));
        }
        if let Err(e) = serde_json::from_str::<IgnoredAny>(line) {
            return Err(format!("line {}: not JSON: {e}", i + 1));
        }
        out.push(line.to_owned());
    }
    Ok(out)
}

fn error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// `POST /v1/events`.
pub(crate) async fn post(
    State(store): State<Arc<Store>>,
    Query(p): Query<StreamParam>,
    remote: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, "body is not UTF-8".into());
    };
    let lines = match parse_lines(text) {
        Ok(l) => l,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let name = stream_name(&p);
    let n = lines.len() as u64;
    let stream = meta(
        &store,
        name.clone(),
        "http",
        remote.map(|c| (c.0).0),
        &headers,
    );
    if n > 0 {
        let op = Op::Events {
            stream,
            time_us: now_us(),
            lines,
        };
        if store.submit(op, body.len()).is_err() {
            return queue_full();
        }
    }
    let stored = store.count_events(&name, n);
    axum::Json(serde_json::json!({ "stored": stored, "accepted": n })).into_response()
}

/// `GET /v1/events/ws`.
pub(crate) async fn websocket(
    State(store): State<Arc<Store>>,
    Query(p): Query<StreamParam>,
    remote: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let stream = meta(
        &store,
        stream_name(&p),
        "websocket",
        remote.map(|c| (c.0).0),
        &headers,
    );
    ws.max_message_size(MAX_WS_MESSAGE_BYTES)
        .max_frame_size(MAX_WS_MESSAGE_BYTES)
        .on_upgrade(move |socket| serve_socket(store, stream, socket))
}

async fn serve_socket(store: Arc<Store>, stream: Arc<StreamMeta>, mut socket: WebSocket) {
    while let Some(Ok(msg)) = socket.recv().await {
        let answer = match msg {
            Message::Text(text) => handle_text(&store, &stream, text.as_str()),
            Message::Binary(bytes) => match std::str::from_utf8(&bytes) {
                Ok(text) => handle_text(&store, &stream, text),
                Err(_) => serde_json::json!({ "error": "binary message is not UTF-8" }),
            },
            Message::Close(_) => break,
            // Pings are answered by axum; pongs need nothing.
            _ => continue,
        };
        if socket
            .send(Message::Text(answer.to_string().into()))
            .await
            .is_err()
        {
            break;
        }
    }
}

fn handle_text(store: &Store, stream: &Arc<StreamMeta>, text: &str) -> serde_json::Value {
    let lines = match parse_lines(text) {
        Ok(l) => l,
        Err(e) => return serde_json::json!({ "error": e }),
    };
    let n = lines.len() as u64;
    if n > 0 {
        let op = Op::Events {
            stream: stream.clone(),
            time_us: now_us(),
            lines,
        };
        if store.submit(op, text.len()).is_err() {
            return serde_json::json!({ "error": "write queue full, retry later", "retry_after_s": super::RETRY_AFTER_SECS });
        }
    }
    serde_json::json!({ "stored": store.count_events(&stream.name, n) })
}
