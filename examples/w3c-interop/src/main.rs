//! The W3C Trace Context test-suite service, built on telemetry-init the way
//! a user would: `telemetry_init::builder()…install()` in `main`,
//! `telemetry_init::layer()` on the router, `send_traced()` for the calls.
//!
//! Listens on `LISTEN_ADDR` (default `127.0.0.1:3001`) and answers
//! `POST /test`, whose body is a JSON array of `{"url": …, "arguments": […]}`.
//! The server layer extracts the incoming context and starts the SERVER span;
//! for each entry, in order, the service POSTs the entry's `arguments` (`[]`
//! by default) as JSON to `url` with `send_traced()`, which starts a new
//! CLIENT span per call and injects its context. It answers 200 once every
//! call has finished, and within 5 seconds in any case. Nothing is exported
//! (no OTLP endpoint): the SDK only creates ids and sampling decisions.
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
use axum::http::{StatusCode, header};
use axum::routing::post;
use serde::Deserialize;
use telemetry_init::http::client::TracedRequest;

/// The harness waits 5 s per case; answer before that even if a callback hangs.
const DEADLINE: Duration = Duration::from_millis(4500);

#[derive(Debug, Deserialize)]
struct Action {
    url: String,
    #[serde(default)]
    arguments: Option<serde_json::Value>,
}

struct App {
    client: reqwest::Client,
}

async fn test(State(app): State<Arc<App>>, body: Bytes) -> StatusCode {
    let Ok(actions) = serde_json::from_slice::<Vec<Action>>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let calls = async {
        for action in actions {
            call(&app, action).await;
        }
    };
    match tokio::time::timeout(DEADLINE, calls).await {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::GATEWAY_TIMEOUT,
    }
}

/// One outgoing call: `send_traced()` makes it a CLIENT span, child of the
/// request's SERVER span, so every call carries a new parent-id.
async fn call(app: &App, action: Action) {
    // The harness rejects an empty body: send the arguments, `[]` by default.
    let body = action
        .arguments
        .map(|a| a.to_string())
        .unwrap_or_else(|| "[]".to_owned());
    if let Err(e) = app
        .client
        .post(&action.url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send_traced()
        .await
    {
        tracing::warn!(url = %action.url, error = %e, "callback failed");
    }
}

/// The service's router, traced by telemetry-init's server layer.
fn router() -> Result<Router, reqwest::Error> {
    let app = Arc::new(App {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(4))
            .build()?,
    });
    Ok(Router::new()
        .route("/test", post(test))
        .with_state(app)
        .layer(telemetry_init::layer()))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::var("LISTEN_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3001".to_owned())
        .parse()?;
    // No OTLP endpoint: nothing leaves the process, but trace ids, sampling
    // and propagation work as in production.
    let telemetry = telemetry_init::builder()
        .service_name("w3c-interop")
        .install()?;
    let router = router()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(listen = %addr, "w3c-interop listening on /test");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    telemetry.shutdown(Duration::from_secs(2)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    //! An in-process stand-in for the suite's harness: it records the headers
    //! and bodies of the service's callbacks.

    use super::*;
    use axum::extract::Path;
    use axum::http::HeaderMap;
    use std::sync::{Mutex, OnceLock};

    type Calls = Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>;

    async fn serve(router: Router) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        addr
    }

    async fn harness() -> (SocketAddr, Calls) {
        let calls: Calls = Arc::default();
        let record = calls.clone();
        let router = Router::new().route(
            "/cb/{id}",
            post(
                move |Path(id): Path<String>, headers: HeaderMap, body: Bytes| async move {
                    record.lock().unwrap().push((id, headers, body));
                    "null"
                },
            ),
        );
        (serve(router).await, calls)
    }

    /// telemetry-init is process-global: installed once per test binary,
    /// with no endpoint (nothing exported), as `main` does.
    fn telemetry() {
        static GUARD: OnceLock<telemetry_init::TelemetryGuard> = OnceLock::new();
        GUARD.get_or_init(|| {
            telemetry_init::builder()
                .service_name("w3c-interop-test")
                .stdout_filter("warn")
                .env_lookup(|_| None)
                .install()
                .expect("install")
        });
    }

    async fn service() -> SocketAddr {
        telemetry();
        serve(router().unwrap()).await
    }

    async fn run(headers: &[(&str, &str)], callbacks: usize) -> (StatusCode, Vec<HeaderMap>) {
        let (harness, calls) = harness().await;
        let service = service().await;
        let body: Vec<serde_json::Value> = (0..callbacks)
            .map(
                |i| serde_json::json!({"url": format!("http://{harness}/cb/{i}"), "arguments": []}),
            )
            .collect();
        let mut request = reqwest::Client::new()
            .post(format!("http://{service}/test"))
            .body(serde_json::to_vec(&body).unwrap());
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let status = request.send().await.unwrap().status();
        let calls = calls.lock().unwrap().clone();
        assert_eq!(calls.len(), callbacks);
        let mut out = Vec::new();
        for (i, (id, headers, body)) in calls.into_iter().enumerate() {
            assert_eq!(id, i.to_string(), "callbacks in order");
            assert_eq!(&body[..], b"[]", "never an empty body");
            out.push(headers);
        }
        (StatusCode::from_u16(status.as_u16()).unwrap(), out)
    }

    fn traceparent(h: &HeaderMap) -> Vec<String> {
        let all: Vec<_> = h.get_all("traceparent").iter().collect();
        assert_eq!(all.len(), 1);
        all[0]
            .to_str()
            .unwrap()
            .split('-')
            .map(str::to_owned)
            .collect()
    }

    const TID: &str = "12345678901234567890123456789012";

    #[tokio::test]
    async fn continues_the_trace_with_a_new_parent_per_call() {
        // A 14-character system-id: valid, but not representable by
        // opentelemetry's TraceState; it must still be forwarded.
        let ts = "foo=1,t@vvvvvvvvvvvvvv=2";
        let (status, calls) = run(
            &[
                ("traceparent", &format!("00-{TID}-1234567890123456-03")),
                ("tracestate", ts),
            ],
            3,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let mut parents = std::collections::HashSet::new();
        for h in &calls {
            let tp = traceparent(h);
            assert_eq!(tp[0], "00");
            assert_eq!(tp[1], TID);
            assert_ne!(tp[2], "1234567890123456");
            assert_eq!(tp[3], "03", "sampled and random flags kept");
            parents.insert(tp[2].clone());
            assert_eq!(h["tracestate"], ts);
        }
        assert_eq!(parents.len(), 3);
    }

    #[tokio::test]
    async fn repeated_traceparent_starts_a_new_trace() {
        let tp = format!("00-{TID}-1234567890123456-01");
        let (status, calls) = run(
            &[
                ("traceparent", &tp),
                ("traceparent", &tp),
                ("tracestate", "foo=1"),
            ],
            1,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_ne!(traceparent(&calls[0])[1], TID);
        assert!(calls[0].get("tracestate").is_none());
    }

    #[tokio::test]
    async fn invalid_tracestate_is_dropped_but_the_trace_continues() {
        let (_, calls) = run(
            &[
                ("traceparent", &format!("00-{TID}-1234567890123456-00")),
                ("tracestate", "foo=1,bar="),
            ],
            1,
        )
        .await;
        let tp = traceparent(&calls[0]);
        assert_eq!(tp[1], TID);
        assert_ne!(tp[2], "1234567890123456", "a new parent-id");
        assert_eq!(tp[3], "00", "an unsampled caller stays unsampled");
        assert!(calls[0].get("tracestate").is_none());
    }

    // test_propagates_random_flag of the W3C suite: an unsampled caller with
    // the random flag. The SDK gives the dropped span flags `00`; the flag
    // must still reach every callback of the same trace.
    #[tokio::test]
    async fn random_flag_survives_an_unsampled_caller() {
        let (_, calls) = run(
            &[("traceparent", &format!("00-{TID}-1234567890123456-02"))],
            2,
        )
        .await;
        for h in &calls {
            let tp = traceparent(h);
            assert_eq!(tp[1], TID);
            assert_ne!(tp[2], "1234567890123456");
            assert_eq!(tp[3], "02", "random kept, still unsampled");
        }
    }

    // Only the defined flag bits go downstream.
    #[tokio::test]
    async fn reserved_flag_bits_are_not_forwarded() {
        for (sent, expected) in [("ff", "03"), ("fe", "02"), ("fd", "01"), ("80", "00")] {
            let (_, calls) = run(
                &[("traceparent", &format!("00-{TID}-1234567890123456-{sent}"))],
                1,
            )
            .await;
            let tp = traceparent(&calls[0]);
            assert_eq!(tp[1], TID, "{sent}");
            assert_eq!(tp[3], expected, "{sent}");
        }
    }

    // test_tracestate_duplicated_keys, test_tracestate_key_illegal_vendor_format
    // and test_tracestate_key_length_limit of the W3C suite, end to end.
    #[tokio::test]
    async fn tracestate_cases_of_the_suite() {
        let z256 = format!("{}=1", "z".repeat(256));
        let t241 = format!("{}@{}=1", "t".repeat(241), "v".repeat(14));
        let t242 = format!("{}@v=1", "t".repeat(242));
        let t15 = format!("t@{}=1", "v".repeat(15));
        let z257 = format!("{}=1", "z".repeat(257));
        let cases: Vec<(Vec<&str>, Option<String>)> = vec![
            (vec!["foo=1,foo=1"], Some("foo=1".into())),
            (vec!["foo=1,foo=2"], Some("foo=1".into())),
            (vec!["foo=1", "foo=1"], Some("foo=1".into())),
            (vec!["foo=1", "foo=2"], Some("foo=1".into())),
            (vec!["foo@=1,bar=2"], Some("foo@=1,bar=2".into())),
            (vec!["@foo=1,bar=2"], None),
            (vec!["foo@@bar=1,bar=2"], Some("foo@@bar=1,bar=2".into())),
            (
                vec!["foo@bar@baz=1,bar=2"],
                Some("foo@bar@baz=1,bar=2".into()),
            ),
            (vec!["foo=1", &z256], Some(format!("foo=1,{z256}"))),
            (vec!["foo=1", &z257], None),
            (vec!["foo=1", &t241], Some(format!("foo=1,{t241}"))),
            (vec!["foo=1", &t242], Some(format!("foo=1,{t242}"))),
            (vec!["foo=1", &t15], Some(format!("foo=1,{t15}"))),
        ];
        for (tracestate, expected) in cases {
            let tp = format!("00-{TID}-1234567890123456-00");
            let mut headers = vec![("traceparent", tp.as_str())];
            headers.extend(tracestate.iter().map(|v| ("tracestate", *v)));
            let (_, calls) = run(&headers, 1).await;
            assert_eq!(traceparent(&calls[0])[1], TID, "{tracestate:?}");
            assert_eq!(
                calls[0]
                    .get("tracestate")
                    .map(|v| v.to_str().unwrap().to_owned()),
                expected,
                "{tracestate:?}"
            );
        }
    }

    #[tokio::test]
    async fn empty_array_answers_immediately() {
        let (status, calls) = run(&[], 0).await;
        assert_eq!(status, StatusCode::OK);
        assert!(calls.is_empty());
    }
}
