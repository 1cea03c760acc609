//! `OTEL_PROPAGATORS` and the edge option over real sockets: what the server
//! layer extracts (checked on the spans a real OTLP receiver decoded and on
//! what the handler sees), what `ClientLayer` and `send_traced()` inject
//! (checked on the headers a downstream server received), and that only the
//! defined `traceparent` flag bits go downstream.

mod common;

use axum::Router;
use axum::extract::Extension;
use axum::routing::get;
use telemetry_init::http::client::TracedRequest;
use telemetry_init::http::{ClientLayer, Propagation, Propagators, RequestBaggage};
use telemetry_init_testing::ReceivedSpan;
use tower::ServiceExt;

use common::{PID, TID, call, s};

fn env() -> &'static common::Env {
    common::env("propagation-test")
}

/// A service behind `layer` whose handler answers with the `tenant` baggage
/// it was given and calls `next` with `send_traced()`.
async fn service(layer: telemetry_init::ServerLayer, next: String) -> String {
    let app = Router::new()
        .route(
            "/",
            get(
                move |baggage: Option<Extension<RequestBaggage>>| async move {
                    reqwest::Client::new()
                        .get(&next)
                        .send_traced()
                        .await
                        .unwrap();
                    baggage
                        .and_then(|Extension(b)| b.get("tenant").map(str::to_string))
                        .unwrap_or_else(|| "-".to_string())
                },
            ),
        )
        .layer(layer.baggage_allowlist(["tenant"]));
    common::serve(app).await
}

async fn span_for(rid: &str) -> ReceivedSpan {
    common::server_span(env(), rid).await
}

/// `send_traced()` follows the process-wide setting; the tests that change
/// it take turns.
static GLOBAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_layer_extracts_only_the_configured_formats() {
    let _ = env();
    let _g = GLOBAL.lock().await;
    // The outgoing call of the handler sends everything, so what arrives
    // downstream shows what the server took from its caller.
    Propagation::new(Propagators::W3C, true).set_global();
    for (name, set) in [
        ("none", Propagators::NONE),
        ("tracecontext", Propagators::TRACE_CONTEXT),
        ("baggage", Propagators::BAGGAGE),
        ("tracecontext,baggage", Propagators::W3C),
    ] {
        assert_eq!(Propagators::parse(name).unwrap(), set);
        let (next, seen) = common::recording_downstream().await;
        let base = service(telemetry_init::layer().propagators(set), next).await;
        let rid = format!("server-{name}");
        let body = call(&base, &rid, "01").await;
        let span = span_for(&rid).await;
        let continued = set.contains(Propagators::TRACE_CONTEXT);
        let baggage = set.contains(Propagators::BAGGAGE);

        assert_eq!(span.trace_id == TID, continued, "{name}: trace continued");
        assert_eq!(
            span.parent_span_id.as_deref() == Some(PID),
            continued,
            "{name}: parent"
        );
        if !continued {
            assert_eq!(span.parent_span_id, None, "{name}: a new root");
            assert_eq!(span.trace_state, "", "{name}: no tracestate");
        } else {
            assert_eq!(span.trace_state, "congo=t61rcWkgMzE", "{name}");
        }
        assert_eq!(
            s(&span, "baggage.tenant").is_some(),
            baggage,
            "{name}: baggage attribute"
        );
        assert_eq!(body, if baggage { "acme" } else { "-" }, "{name}: handler");

        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1);
        let tp = seen[0]["traceparent"].to_str().unwrap().to_owned();
        assert_eq!(tp.contains(TID), continued, "{name}: {tp}");
        assert!(
            tp.contains(&span.trace_id),
            "{name}: downstream is in our trace"
        );
        assert_eq!(
            seen[0]
                .get("baggage")
                .map(|v| v.to_str().unwrap().to_owned()),
            baggage.then(|| "tenant=acme".to_string()),
            "{name}: baggage forwarded"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_traced_injects_only_the_configured_formats() {
    let _ = env();
    let _g = GLOBAL.lock().await;
    for (name, set) in [
        ("none", Propagators::NONE),
        ("tracecontext", Propagators::TRACE_CONTEXT),
        ("baggage", Propagators::BAGGAGE),
        ("tracecontext,baggage", Propagators::W3C),
    ] {
        // What `install()` does with OTEL_PROPAGATORS=<name>.
        Propagation::new(set, true).set_global();
        let (next, seen) = common::recording_downstream().await;
        // The server itself reads everything.
        let base = service(telemetry_init::layer().propagators(Propagators::W3C), next).await;
        let rid = format!("send-traced-{name}");
        assert_eq!(call(&base, &rid, "01").await, "acme");
        let span = span_for(&rid).await;
        assert_eq!(span.trace_id, TID);

        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1);
        let h = &seen[0];
        let tc = set.contains(Propagators::TRACE_CONTEXT);
        assert_eq!(h.contains_key("traceparent"), tc, "{name}: {h:?}");
        assert_eq!(h.contains_key("tracestate"), tc, "{name}: {h:?}");
        if tc {
            assert!(h["traceparent"].to_str().unwrap().contains(TID));
            assert_eq!(h["tracestate"], "congo=t61rcWkgMzE");
        }
        assert_eq!(
            h.get("baggage").map(|v| v.to_str().unwrap().to_owned()),
            set.contains(Propagators::BAGGAGE)
                .then(|| "tenant=acme".to_string()),
            "{name}"
        );
        // The request id is not a propagation format: always sent.
        assert_eq!(h["x-request-id"], rid.as_str());
    }
    Propagation::default().set_global();
}

/// A tower client: `ClientLayer` in front of a service that sends the
/// request over a real socket with reqwest.
async fn tower_get(layer: ClientLayer, url: &str) {
    let svc = tower::ServiceBuilder::new().layer(layer).service_fn(
        |req: http::Request<String>| async move {
            let mut out = reqwest::Client::new().get(req.uri().to_string());
            for (k, v) in req.headers() {
                out = out.header(k, v);
            }
            let res = out.send().await?;
            let mut back = http::Response::builder().status(res.status().as_u16());
            for (k, v) in res.headers() {
                back = back.header(k, v);
            }
            Ok::<_, reqwest::Error>(back.body(res.text().await?).unwrap())
        },
    );
    let req = http::Request::get(url).body(String::new()).unwrap();
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_layer_injects_only_the_configured_formats() {
    let _ = env();
    let (next, seen) = common::recording_downstream().await;
    // The caller's context and baggage, as a server layer would give them.
    let mut incoming = http::HeaderMap::new();
    incoming.insert("traceparent", format!("00-{TID}-{PID}-01").parse().unwrap());
    incoming.insert("baggage", "tenant=acme".parse().unwrap());
    let cx =
        telemetry_init_propagation::extract(&incoming).into_context(&opentelemetry::Context::new());
    let parent = tracing::info_span!("client-layer-test");
    {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let _ = parent.set_parent(cx);
    }
    let sets = [
        Propagators::NONE,
        Propagators::TRACE_CONTEXT,
        Propagators::BAGGAGE,
        Propagators::W3C,
    ];
    for set in sets {
        use tracing::Instrument;
        tower_get(ClientLayer::new().propagators(set), &next)
            .instrument(parent.clone())
            .await;
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), sets.len());
    for (set, h) in sets.iter().zip(&seen) {
        let tc = set.contains(Propagators::TRACE_CONTEXT);
        assert_eq!(h.contains_key("traceparent"), tc, "{set}: {h:?}");
        if tc {
            let tp = h["traceparent"].to_str().unwrap();
            assert!(tp.starts_with(&format!("00-{TID}-")), "{tp}");
            assert!(!tp.contains(PID), "a CLIENT span of our own is the parent");
        }
        assert_eq!(
            h.get("baggage").map(|v| v.to_str().unwrap().to_owned()),
            set.contains(Propagators::BAGGAGE)
                .then(|| "tenant=acme".to_string()),
            "{set}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_starts_a_new_trace_linked_to_the_caller() {
    let _ = env();
    let _g = GLOBAL.lock().await;
    Propagation::new(Propagators::W3C, true).set_global();
    let (next, seen) = common::recording_downstream().await;
    let edge = telemetry_init::layer()
        .propagators(Propagators::W3C)
        .trust_incoming_context(false);
    let base = service(edge, next).await;
    // Sampled and unsampled callers alike: the edge's own sampler decides
    // (parentbased_always_on on a root: sampled), so a caller can neither
    // choose our trace-id nor switch our tracing off.
    for (rid, flags) in [("edge-sampled", "01"), ("edge-unsampled", "00")] {
        let body = call(&base, rid, flags).await;
        assert_eq!(body, "-", "the handler gets no baggage");
        let span = span_for(rid).await;
        assert_ne!(span.trace_id, TID, "a new trace");
        assert_eq!(span.parent_span_id, None, "a root span");
        assert_eq!(span.trace_state, "", "the caller's tracestate is not ours");
        assert_eq!(span.attr("baggage.tenant"), None, "baggage ignored");
        assert_eq!(span.links.len(), 1, "{:?}", span.links);
        assert_eq!(span.links[0].trace_id, TID, "link to the caller's trace");
        assert_eq!(span.links[0].span_id, PID, "and the caller's span");
    }
    // A caller without (valid) context: a root span and no link.
    let res = reqwest::Client::new()
        .get(&base)
        .header("x-request-id", "edge-invalid")
        .header(
            "traceparent",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let span = span_for("edge-invalid").await;
    assert!(span.links.is_empty());
    assert_eq!(span.parent_span_id, None);

    // Downstream sees our trace, never the caller's, and no caller baggage.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    for h in &seen {
        let tp = h["traceparent"].to_str().unwrap();
        assert!(!tp.contains(TID), "{tp}");
        assert!(tp.ends_with("-01"), "sampled by our sampler: {tp}");
        assert!(h.get("baggage").is_none());
        assert!(h.get("tracestate").is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_defined_flag_bits_go_downstream() {
    let _ = env();
    let _g = GLOBAL.lock().await;
    Propagation::new(Propagators::W3C, true).set_global();
    let (next, seen) = common::recording_downstream().await;
    let base = service(telemetry_init::layer().propagators(Propagators::W3C), next).await;
    let cases = [
        ("ff", "03"),
        ("fd", "01"),
        ("fe", "02"),
        ("80", "00"),
        ("02", "02"),
        ("03", "03"),
    ];
    for (sent, _) in cases {
        call(&base, &format!("flags-{sent}"), sent).await;
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), cases.len());
    for ((sent, want), h) in cases.iter().zip(&seen) {
        let tp = h["traceparent"].to_str().unwrap();
        assert!(tp.contains(TID), "{sent}: {tp}");
        assert!(
            tp.ends_with(&format!("-{want}")),
            "{sent} -> {tp}, want {want}"
        );
    }
}

/// The per-layer request-id header options: the server layer reads and
/// echoes `x-correlation-id` (and records it as `request_id`), a
/// `ClientLayer` given the same name forwards it from inside the request,
/// and `x-request-id` is neither read, echoed nor sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_given_a_request_id_header_read_echo_and_forward_it() {
    let _ = env();
    let header = http::HeaderName::from_static("x-correlation-id");
    let (next, seen) = common::recording_downstream().await;
    let for_client = header.clone();
    let app = Router::new()
        .route(
            "/",
            get(move || {
                let (next, header) = (next.clone(), for_client.clone());
                async move {
                    tower_get(ClientLayer::new().request_id_header(header), &next).await;
                    "ok"
                }
            }),
        )
        .layer(telemetry_init::layer().request_id_header(header));
    let base = common::serve(app).await;
    let res = reqwest::Client::new()
        .get(&base)
        .header("x-correlation-id", "layer-corr-1")
        .header("x-request-id", "layer-decoy")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-correlation-id"], "layer-corr-1");
    assert!(res.headers().get("x-request-id").is_none(), "{res:?}");

    let h = seen.lock().unwrap()[0].clone();
    assert_eq!(h["x-correlation-id"], "layer-corr-1", "{h:?}");
    assert!(h.get("x-request-id").is_none(), "{h:?}");
    let span = span_for("layer-corr-1").await;
    assert_eq!(s(&span, "request_id"), Some("layer-corr-1"));
}
