//! Our OTLP/gRPC trace client retries a collector answering `UNAVAILABLE`
//! within the export's time budget (the SDK's recommended policy), so a
//! short outage loses nothing. (A collector that stays down fails the batch
//! after the retries, counted: `examples/demo/tests/faults.rs`.)

use std::time::Duration;

use telemetry_init::config::BatchSettings;
use telemetry_init_testing::{Behavior, OtlpReceiver, Signal, Transport};

#[test]
fn a_short_unavailable_spell_is_retried_and_loses_nothing() {
    let receiver = OtlpReceiver::start_blocking().expect("receiver");
    let handle = receiver.handle();
    handle.set_behavior(Behavior::Unavailable);
    let guard = telemetry_init::builder()
        .service_name("grpc-retry-test")
        .otlp_endpoint(receiver.grpc_endpoint())
        .stdout_filter("off")
        .span_batch(BatchSettings {
            max_queue_size: 1000,
            max_export_batch_size: 100,
            schedule_delay: Duration::from_millis(20),
            export_timeout: Duration::from_secs(10),
        })
        .env_lookup(|_| None)
        .install()
        .expect("install");
    for i in 0..10_i64 {
        tracing::info_span!("work", otel.kind = "server", i).in_scope(|| {});
    }
    // The first export is refused; the collector is back before the retries
    // (100 ms, 200 ms, 400 ms plus jitter) run out.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        handle
            .wait_for_stats("a refused export", Duration::from_secs(5), |s| {
                s.unavailable_requests >= 1
            })
            .await
            .expect("the first export reached the receiver");
    });
    std::thread::sleep(Duration::from_millis(150));
    handle.set_behavior(Behavior::Accept);

    let report = rt.block_on(guard.shutdown(Duration::from_secs(10)));
    assert_eq!(report.traces.exported, 10, "{report:?}");
    assert_eq!(report.traces.failed, 0, "{report:?}");
    let spans = handle.spans();
    assert_eq!(spans.iter().filter(|s| s.name == "work").count(), 10);
    assert!(handle.stats().unavailable_requests >= 1);
    assert!(handle.export_requests(Transport::Grpc, Signal::Traces) >= 2);
}
