//! The real demo binary with credentials in its configuration and in a
//! downstream URL: neither the start-up line, nor the `/chain` answer, nor
//! any stdout line, nor anything exported holds them.

mod support;

use std::time::Duration;

use support::Demo;
use telemetry_init_testing::OtlpReceiver;

const ENDPOINT_PASSWORD: &str = "Sx-endpoint-1";
const HEADER_VALUE: &str = "Sx-header-2";
const DOWNSTREAM_PASSWORD: &str = "Sx-downstream-3";
const SESSION: &str = "Sx-session-4";
const TOKEN: &str = "Sx-token-5";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_reach_logs_answers_or_the_collector() {
    let receiver = OtlpReceiver::start().await.unwrap();
    // OTLP/HTTP: the exporter sends the userinfo as basic auth, which the
    // receiver ignores, so telemetry still arrives.
    let endpoint = receiver.http_endpoint().replacen(
        "http://",
        &format!("http://tenant:{ENDPOINT_PASSWORD}@"),
        1,
    );
    let headers = format!("authorization=Bearer {HEADER_VALUE}");
    let downstream = format!(
        "http://bob:{DOWNSTREAM_PASSWORD}@127.0.0.1:1/x;jsessionid={SESSION}?token={TOKEN}&q=1"
    );
    let mut demo = Demo::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_HEADERS", &headers),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_BLRP_SCHEDULE_DELAY", "100"),
        ("DOWNSTREAM_URL", &downstream),
    ]);

    let res = reqwest::Client::new()
        .get(demo.url("/chain"))
        .header("x-request-id", "redact-chain")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    let body = res.text().await.unwrap();
    assert!(body.starts_with("downstream failed: "), "{body}");
    // reqwest already moves userinfo out of the URL it reports; the rest is ours.
    assert!(
        body.contains("127.0.0.1:1/x;jsessionid=REDACTED?token=REDACTED&q=1"),
        "{body}"
    );

    let handle = receiver.handle();
    handle
        .wait_for_logs_where(1, Duration::from_secs(10), |l| {
            l.body
                .as_ref()
                .is_some_and(|b| b.strings().iter().any(|s| s.contains("downstream failed")))
        })
        .await
        .expect("the warning is exported");
    handle
        .wait_for_spans(2, Duration::from_secs(10))
        .await
        .expect("the spans are exported");
    let (code, _) = demo.terminate(Duration::from_secs(20));
    assert_eq!(code, 0, "{:?}", demo.stderr());

    let lines = demo.json_lines();
    let started = lines
        .iter()
        .find(|l| l["message"] == "telemetry installed")
        .expect("start-up line");
    // The endpoint is shown without its userinfo (whether masked or moved to
    // an authorization header by the exporter configuration).
    let traces = started["traces"].as_str().unwrap();
    let host = receiver.http_endpoint().replacen("http://", "", 1);
    assert!(
        traces.starts_with("otlp http/protobuf http://")
            && traces.ends_with(&format!("{host}/v1/traces")),
        "{traces}"
    );
    assert!(!traces.contains("tenant"), "{traces}");
    let warning = lines
        .iter()
        .find(|l| l["message"] == "downstream failed")
        .expect("the warning line");
    assert!(
        warning["error"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:1/x;jsessionid=REDACTED?token=REDACTED&q=1"),
        "{warning}"
    );

    let stdout = demo.stdout().join("\n");
    let stderr = demo.stderr().join("\n");
    let exported = serde_json::to_string(&(handle.spans(), handle.logs())).unwrap();
    for secret in [
        ENDPOINT_PASSWORD,
        HEADER_VALUE,
        DOWNSTREAM_PASSWORD,
        SESSION,
        TOKEN,
    ] {
        for (what, text) in [
            ("stdout", &stdout),
            ("stderr", &stderr),
            ("the /chain answer", &body),
            ("exported telemetry", &exported),
        ] {
            assert!(!text.contains(secret), "{secret} in {what}: {text}");
        }
    }
    telemetry_init_testing::assert::no_secrets(&handle.spans(), &handle.logs()).unwrap();
}
