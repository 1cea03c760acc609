//! The redaction policy end to end, over real sockets: a request full of
//! secrets under many spellings goes through an axum server with the layer,
//! the handler logs and records secret-named fields and an error carrying a
//! URL, and what the real OTLP receiver decoded holds none of the secrets.
//! The policy is the default list plus a key added in code, with one key
//! removed and one added through `TELEMETRY_REDACT_KEYS`.

mod common;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use telemetry_init::config::BatchSettings;
use telemetry_init_testing::{OtlpReceiver, SpanKind};

const SECRETS: &[&str] = &[
    "Sx-pw-1",      // user[password] query value
    "Sx-rt-2",      // refreshToken query value
    "Sx-sess-3",    // ;jsessionid= path parameter
    "Sx-field-4",   // password log field
    "Sx-email-5",   // customer_email (added in code)
    "Sx-user-6",    // userinfo in a URL inside an error
    "Sx-token-7",   // token in a URL inside an error
    "Sx-span-8",    // db.password span attribute
    "Sx-tenant-9",  // tenant_ref (added through the variable)
    "Sx-status-10", // URL userinfo in a span status message
];

fn app() -> Router {
    Router::new()
        .route(
            "/items/{id}",
            get(|| async {
                let span = tracing::info_span!(
                    "db query",
                    db.password = SECRETS[7],
                    otel.status_code = "error",
                    otel.status_description = format!("connect http://admin:{}@db/x", SECRETS[9]),
                );
                let _e = span.enter();
                let url = format!(
                    "http://bob:{}@10.0.0.1:9/x?token={}",
                    SECRETS[5], SECRETS[6]
                );
                tracing::warn!(
                    password = SECRETS[3],
                    customerEmail = SECRETS[4],
                    tenant_ref = SECRETS[8],
                    code = "visible-code",
                    error = %format!("error sending request for url ({url})"),
                    "downstream failed"
                );
                "ok"
            }),
        )
        .layer(telemetry_init::layer())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_collector() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let fast = BatchSettings {
        max_queue_size: 4096,
        max_export_batch_size: 256,
        schedule_delay: Duration::from_millis(50),
        export_timeout: Duration::from_secs(5),
    };
    let guard = telemetry_init::builder()
        .service_name("redaction-test")
        .stdout_filter("off")
        .export_filter("info")
        .otlp_endpoint(receiver.grpc_endpoint())
        .span_batch(fast)
        .log_batch(fast)
        .redact_key("customer_email")
        .env_lookup(|k| (k == "TELEMETRY_REDACT_KEYS").then(|| "-=code, tenant-ref".into()))
        .install()
        .expect("install");
    let policy = telemetry_init::redact::current();
    assert!(policy.is_secret_name("tenantRef"), "{policy:?}");
    assert!(!policy.is_secret_name("code"), "{policy:?}");

    let addr = common::serve_at(app()).await;

    let res = reqwest::Client::new()
        .get(format!(
            "http://{addr}/items/7;jsessionid={}?user%5Bpassword%5D={}&refreshToken={}&code=kept&q=shoes",
            SECRETS[2], SECRETS[0], SECRETS[1]
        ))
        .header("x-request-id", "rid-redact")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let handle = receiver.handle();
    let spans = handle
        .wait_for_spans_where(2, Duration::from_secs(10), |s| {
            s.kind == SpanKind::Server || s.name == "db query"
        })
        .await
        .unwrap();
    let logs = handle
        .wait_for_logs_where(1, Duration::from_secs(10), |l| {
            l.body
                .as_ref()
                .is_some_and(|b| b.strings().iter().any(|s| s.contains("downstream failed")))
        })
        .await
        .unwrap();
    let server = spans.iter().find(|s| s.kind == SpanKind::Server).unwrap();
    assert_eq!(
        server.attr("url.query").and_then(|v| v.as_str()),
        Some("user%5Bpassword%5D=REDACTED&refreshToken=REDACTED&code=kept&q=shoes")
    );
    assert_eq!(
        server.attr("url.path").and_then(|v| v.as_str()),
        Some("/items/7;jsessionid=REDACTED")
    );
    let db = spans.iter().find(|s| s.name == "db query").unwrap();
    assert_eq!(
        db.attr("db.password").and_then(|v| v.as_str()),
        Some("REDACTED")
    );
    assert_eq!(db.status_message, "connect http://REDACTED@db/x");

    let log = &logs[0];
    let attr = |k: &str| log.attributes.get(k).and_then(|v| v.as_str());
    assert_eq!(attr("password"), Some("REDACTED"));
    assert_eq!(attr("customerEmail"), Some("REDACTED"));
    assert_eq!(attr("tenant_ref"), Some("REDACTED"));
    assert_eq!(
        attr("code"),
        Some("visible-code"),
        "removed through the variable"
    );
    assert_eq!(
        attr("error"),
        Some("error sending request for url (http://REDACTED@10.0.0.1:9/x?token=REDACTED)")
    );

    let everything = serde_json::to_string(&(&spans, &logs)).unwrap();
    for secret in SECRETS {
        assert!(
            !everything.contains(secret),
            "{secret} leaked: {everything}"
        );
    }
    telemetry_init_testing::assert::no_secrets(&spans, &logs).unwrap();
    drop(guard);
}
