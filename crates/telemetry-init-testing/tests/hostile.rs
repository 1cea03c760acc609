//! The receiver against hostile clients, over real sockets: gzip bombs (HTTP
//! and gRPC) are refused after at most the configured number of bytes,
//! deeply nested values are cut at a fixed depth or refused by the decoder,
//! non-loopback clients are refused unless the receiver is opened, and a
//! snapshot stays bounded when one trace grows without limit.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use telemetry_init_testing::snapshot::{MAX_SNAPSHOT_BYTES, MAX_SPANS_PER_TRACE};
use telemetry_init_testing::{OtlpReceiver, TOO_DEEP, Value};

fn span(trace: u8, id: u64, attrs: Vec<KeyValue>) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: id.to_be_bytes().to_vec(),
        name: format!("span-{id}"),
        start_time_unix_nano: 1,
        end_time_unix_nano: 2,
        attributes: attrs,
        ..Default::default()
    }
}

fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string_attr("service.name", "hostile".into())],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn string_attr(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

async fn post(url: String, body: Vec<u8>, content_type: &str, gz: bool) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body);
    if gz {
        req = req.header("content-encoding", "gzip");
    }
    req.send().await.unwrap()
}

const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn http_gzip_bomb_is_refused_after_the_limit() {
    let rx = OtlpReceiver::builder()
        .max_body_bytes(MIB)
        .start()
        .await
        .unwrap();
    // 32 MiB of protobuf that compresses to a few tens of KiB.
    let body = request(vec![span(
        1,
        1,
        vec![string_attr("a", "x".repeat(32 * MIB))],
    )])
    .encode_to_vec();
    let bomb = gzip(&body);
    assert!(bomb.len() < MIB / 4, "{} bytes compressed", bomb.len());
    let url = format!("{}/v1/traces", rx.http_endpoint());
    let res = post(url.clone(), bomb, "application/x-protobuf", true).await;
    assert_eq!(res.status(), 413);
    assert!(res.text().await.unwrap().contains("exceeds 1048576 bytes"));
    assert!(rx.spans().is_empty());
    drop(body);
    // And the receiver still serves normal requests.
    let ok = request(vec![span(1, 2, vec![])]).encode_to_vec();
    let res = post(url, gzip(&ok), "application/x-protobuf", true).await;
    assert_eq!(res.status(), 200);
    assert_eq!(rx.spans().len(), 1);
    assert_eq!(rx.stats().rejected_requests, 1);
}

#[tokio::test]
async fn grpc_gzip_bomb_is_refused_after_the_limit() {
    let rx = OtlpReceiver::builder()
        .max_body_bytes(MIB)
        .start()
        .await
        .unwrap();
    let mut client = TraceServiceClient::connect(rx.grpc_endpoint())
        .await
        .unwrap()
        .send_compressed(tonic::codec::CompressionEncoding::Gzip)
        .max_encoding_message_size(64 * MIB);
    let bomb = request(vec![span(
        1,
        1,
        vec![string_attr("a", "x".repeat(32 * MIB))],
    )]);
    let err = client.export(bomb).await.unwrap_err();
    assert!(
        matches!(
            err.code(),
            tonic::Code::ResourceExhausted | tonic::Code::OutOfRange
        ),
        "{err:?}"
    );
    assert!(rx.spans().is_empty());
    client
        .export(request(vec![span(1, 2, vec![])]))
        .await
        .expect("a normal request after the bomb");
    assert_eq!(rx.spans().len(), 1);
}

fn nested(depth: usize) -> AnyValue {
    let mut v = AnyValue {
        value: Some(any_value::Value::StringValue("leaf".into())),
    };
    for _ in 0..depth {
        v = AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![v] })),
        };
    }
    v
}

#[tokio::test]
async fn nesting_is_bounded_whatever_the_client_sends() {
    let rx = OtlpReceiver::start().await.unwrap();
    let url = format!("{}/v1/traces", rx.http_endpoint());
    // Within the decoder's limit (prost: 100 messages, two per level): stored,
    // cut at a fixed depth.
    let attr = KeyValue {
        key: "deep".into(),
        value: Some(nested(40)),
        ..Default::default()
    };
    let body = request(vec![span(1, 1, vec![attr])]).encode_to_vec();
    assert_eq!(
        post(url.clone(), body, "application/x-protobuf", false)
            .await
            .status(),
        200
    );
    let spans = rx.spans();
    let mut v = spans[0].attr("deep").unwrap().clone();
    let mut depth = 0;
    while let Value::Array(mut items) = v {
        depth += 1;
        v = items.remove(0);
    }
    assert_eq!(depth, telemetry_init_testing::MAX_VALUE_DEPTH);
    assert_eq!(v, Value::String(TOO_DEEP.into()));
    // The snapshot (JSON rendering) of it works too.
    assert!(rx.snapshot_json()["traces"][0]["span_count"] == 1);

    // Beyond the decoders' limits: refused, and the receiver keeps serving.
    let attr = KeyValue {
        key: "deeper".into(),
        // 400 nested messages: past prost's limit of 100 (deeper would
        // overflow this test's own stack while encoding).
        value: Some(nested(200)),
        ..Default::default()
    };
    let body = request(vec![span(1, 2, vec![attr])]).encode_to_vec();
    assert_eq!(
        post(url.clone(), body, "application/x-protobuf", false)
            .await
            .status(),
        400
    );
    let json = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"01010101010101010101010101010101","spanId":"0000000000000003","name":"j","attributes":[{{"key":"k","value":{}"leaf"{}}}]}}]}}]}}]}}"#,
        r#"{"arrayValue":{"values":["#.repeat(5_000),
        "]}}".repeat(5_000)
    );
    let res = post(url, json.into_bytes(), "application/json", false).await;
    assert_eq!(res.status(), 400);
    assert_eq!(rx.spans().len(), 1);
}

/// POSTs `body` over an already-open connection (HTTP/1.1) and returns the
/// status.
async fn post_over(stream: tokio::net::TcpStream, url: &str, body: Vec<u8>) -> u16 {
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::post(url)
        .header("content-type", "application/x-protobuf")
        .header("host", "receiver")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap();
    sender.send_request(req).await.unwrap().status().as_u16()
}

/// A client in a network namespace of the test's own (never this machine's
/// real interfaces) reaches the receiver bound to `0.0.0.0`.
#[tokio::test]
async fn non_loopback_clients_are_refused_unless_opened() {
    let peer = std::sync::Arc::new(
        telemetry_init_testing::netns::RemotePeer::create()
            .expect("this test makes a network namespace: it needs `ip` and root"),
    );
    let any = SocketAddr::from(([0, 0, 0, 0], 0));
    for open in [false, true] {
        let rx = OtlpReceiver::builder()
            .grpc_addr(any)
            .http_addr(any)
            .allow_remote(open)
            .start()
            .await
            .unwrap();
        let body = request(vec![span(1, 1, vec![])]).encode_to_vec();
        // From the namespace: the peer the receiver sees is not loopback.
        let http = SocketAddr::new(peer.host_ip(), rx.http_addr().port());
        let stream = peer.connect(http).await.unwrap();
        let status = post_over(stream, "/v1/traces", body.clone()).await;
        assert_eq!(status, if open { 200 } else { 403 }, "open={open}");
        let grpc = SocketAddr::new(peer.host_ip(), rx.grpc_addr().port());
        let via = peer.clone();
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
            .unwrap()
            .connect_with_connector(tower::service_fn(move |_| {
                let via = via.clone();
                async move { via.connect(grpc).await.map(hyper_util::rt::TokioIo::new) }
            }))
            .await
            .unwrap();
        let r = TraceServiceClient::new(channel)
            .export(request(vec![span(2, 1, vec![])]))
            .await;
        match (open, r) {
            (true, Ok(_)) => {}
            (false, Err(e)) if e.code() == tonic::Code::PermissionDenied => {}
            (open, other) => panic!("open={open}: {other:?}"),
        }
        // Loopback is always served.
        let local = format!("http://127.0.0.1:{}/v1/traces", rx.http_addr().port());
        assert_eq!(
            post(local, body, "application/x-protobuf", false)
                .await
                .status(),
            200
        );
        assert_eq!(rx.spans().len(), if open { 3 } else { 1 });
    }
}

#[tokio::test]
async fn one_huge_trace_makes_a_bounded_snapshot() {
    let rx = OtlpReceiver::start().await.unwrap();
    let url = format!("{}/v1/traces", rx.http_endpoint());
    // 3 000 spans sharing one trace id, then 40 traces of 200 KB each.
    for chunk in 0..3u64 {
        let spans = (0..1000)
            .map(|i| span(7, chunk * 1000 + i + 1, vec![]))
            .collect();
        let res = post(
            url.clone(),
            request(spans).encode_to_vec(),
            "application/x-protobuf",
            false,
        )
        .await;
        assert_eq!(res.status(), 200);
    }
    let snap = rx.snapshot_json();
    let trace = &snap["traces"][0];
    assert_eq!(trace["span_count"], 3000);
    assert_eq!(
        trace["truncated"]["spans_omitted"],
        3000 - MAX_SPANS_PER_TRACE
    );
    let shown = trace["root_spans"].as_array().unwrap().len();
    assert_eq!(shown, MAX_SPANS_PER_TRACE);

    for t in 0..40u8 {
        let spans = vec![span(
            100 + t,
            1,
            vec![string_attr("blob", "b".repeat(200_000))],
        )];
        let res = post(
            url.clone(),
            request(spans).encode_to_vec(),
            "application/x-protobuf",
            false,
        )
        .await;
        assert_eq!(res.status(), 200);
    }
    let snap = rx.snapshot_json();
    let size = serde_json::to_vec(&snap).unwrap().len();
    assert!(size <= MAX_SNAPSHOT_BYTES, "{size} bytes");
    let omitted = snap["truncated"]["traces_omitted"].as_u64().unwrap();
    assert!(omitted > 0, "{}", snap["truncated"]);
    let kept = snap["traces"].as_array().unwrap().len() as u64;
    assert_eq!(kept + omitted, 41);
    let _ = Duration::ZERO;
}
