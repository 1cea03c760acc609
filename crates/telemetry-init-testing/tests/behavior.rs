//! Fault injection (Unavailable, Hang), shutdown, memory-bound eviction and
//! wait errors, driven by the SDK's OTLP exporters.

mod common;

use std::time::{Duration, Instant};

use common::{Route, TIMEOUT, resource, span_data, span_exporter, span_id, trace_id};
use opentelemetry::trace::SpanKind;
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};
use telemetry_init_testing::{Behavior, OtlpReceiver, Signal, Transport, WaitError};

fn plain(transport: Transport) -> Route {
    Route {
        transport,
        gzip: false,
    }
}

fn batch(trace: u128, n: u64) -> Vec<SpanData> {
    (0..n)
        .map(|s| span_data(trace, s, None, "op", SpanKind::Internal))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_stores_nothing_and_fails_every_transport() {
    let rx = OtlpReceiver::start().await.unwrap();
    rx.set_behavior(Behavior::Unavailable);
    assert_eq!(rx.behavior(), Behavior::Unavailable);
    for (i, t) in Transport::ALL.into_iter().enumerate() {
        let mut exporter = span_exporter(&rx, plain(t), TIMEOUT);
        exporter.set_resource(&resource("down"));
        let err = exporter
            .export(batch(i as u128 + 1, 5))
            .await
            .expect_err("must fail");
        let msg = err.to_string();
        match t {
            Transport::Grpc => assert!(msg.to_lowercase().contains("unavailable"), "{t}: {msg}"),
            _ => assert!(msg.contains("503"), "{t}: {msg}"),
        }
        assert_eq!(rx.export_requests(t, Signal::Traces), 1, "{t}");
    }
    assert!(rx.spans().is_empty(), "nothing stored while Unavailable");
    assert_eq!(rx.requests_in_mode(Behavior::Unavailable), 3);
    assert_eq!(rx.requests_in_mode(Behavior::Accept), 0);

    // Back to normal: the same kind of export now lands.
    rx.set_behavior(Behavior::Accept);
    let mut exporter = span_exporter(&rx, plain(Transport::HttpJson), TIMEOUT);
    exporter.set_resource(&resource("up"));
    exporter.export(batch(9, 5)).await.unwrap();
    let spans = rx.wait_for_spans(5, TIMEOUT).await.unwrap();
    assert!(spans.iter().all(|s| s.service_name() == Some("up")));
    assert_eq!(rx.requests_in_mode(Behavior::Accept), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_holds_requests_until_behavior_changes() {
    let rx = OtlpReceiver::start().await.unwrap();
    rx.set_behavior(Behavior::Hang);
    let mut tasks = Vec::new();
    for (i, t) in Transport::ALL.into_iter().enumerate() {
        let mut exporter = span_exporter(&rx, plain(t), TIMEOUT);
        exporter.set_resource(&resource("hung"));
        let b = batch(i as u128 + 1, 10);
        tasks.push(tokio::spawn(async move { exporter.export(b).await }));
    }
    let stats = rx
        .wait_for_stats("3 hung requests", TIMEOUT, |s| s.hung_requests == 3)
        .await
        .unwrap();
    assert_eq!(stats.stored_spans, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        tasks.iter().all(|t| !t.is_finished()),
        "no answer while hanging"
    );
    assert!(rx.spans().is_empty());

    // Releasing: the held requests are handled under the new behavior.
    rx.set_behavior(Behavior::Accept);
    for t in tasks {
        t.await.unwrap().expect("released export succeeds");
    }
    let spans = rx.wait_for_spans(30, TIMEOUT).await.unwrap();
    assert_eq!(spans.len(), 30);
    for t in Transport::ALL {
        assert_eq!(spans.iter().filter(|s| s.transport == t).count(), 10, "{t}");
    }
    assert_eq!(rx.requests_in_mode(Behavior::Hang), 3);
}

#[tokio::test(flavor = "current_thread")]
async fn hang_makes_a_client_time_out() {
    let rx = OtlpReceiver::start().await.unwrap();
    rx.set_behavior(Behavior::Hang);
    let exporter = span_exporter(&rx, plain(Transport::Grpc), Duration::from_millis(300));
    let started = Instant::now();
    let err = exporter.export(batch(1, 3)).await.expect_err("times out");
    assert!(started.elapsed() >= Duration::from_millis(300), "{err}");
    assert!(started.elapsed() < TIMEOUT, "{err}");
    assert_eq!(rx.stats().hung_requests, 1);
    assert!(rx.spans().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_hung_requests_and_closes_ports() {
    let rx = OtlpReceiver::start().await.unwrap();
    let handle = rx.handle();
    rx.set_behavior(Behavior::Hang);
    let exporter = span_exporter(&rx, plain(Transport::HttpProtobuf), TIMEOUT);
    let task = tokio::spawn(async move { exporter.export(batch(1, 3)).await });
    handle
        .wait_for_stats("a hung request", TIMEOUT, |s| s.hung_requests == 1)
        .await
        .unwrap();
    let (grpc, http) = (rx.grpc_addr(), rx.http_addr());
    let started = Instant::now();
    rx.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        started.elapsed()
    );
    let result = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the hung export is answered on shutdown")
        .unwrap();
    assert!(result.is_err(), "answered 503, not success");
    assert!(handle.spans().is_empty());
    for addr in [grpc, http] {
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "{addr} still open"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn drop_stops_the_servers_but_handles_still_read() {
    let rx = OtlpReceiver::start().await.unwrap();
    let mut exporter = span_exporter(&rx, plain(Transport::Grpc), TIMEOUT);
    exporter.set_resource(&resource("dropped"));
    exporter.export(batch(1, 4)).await.unwrap();
    let handle = rx.handle();
    let addr = rx.http_addr();
    drop(rx);
    // Aborted tasks release their listeners once the runtime polls them.
    let deadline = Instant::now() + TIMEOUT;
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "listener still open after drop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(handle.spans().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_budget_evicts_oldest_first() {
    const BUDGET: usize = 64 * 1024;
    const BATCHES: u64 = 40;
    const PER_BATCH: u64 = 100;
    let rx = OtlpReceiver::builder()
        .memory_budget_bytes(BUDGET)
        .start()
        .await
        .unwrap();
    let mut exporter = span_exporter(&rx, plain(Transport::Grpc), TIMEOUT);
    exporter.set_resource(&resource("evict"));
    // Sent in this order: (trace b, span s) for b in batches, s in batch.
    let mut sent = Vec::new();
    for b in 0..BATCHES {
        exporter.export(batch(b as u128, PER_BATCH)).await.unwrap();
        sent.extend(
            (0..PER_BATCH).map(|s| (trace_id(b as u128).to_string(), span_id(s).to_string())),
        );
    }
    let stats = rx
        .wait_for_stats("all requests", TIMEOUT, |s| s.accepted_requests == BATCHES)
        .await
        .unwrap();
    let total = (BATCHES * PER_BATCH) as usize;
    assert!(stats.stored_bytes <= BUDGET, "{stats:?}");
    assert!(stats.evicted_spans > 0, "{stats:?}");
    assert_eq!(
        stats.stored_spans + stats.evicted_spans as usize,
        total,
        "{stats:?}"
    );
    assert_eq!(stats.memory_budget_bytes, BUDGET);
    // What is kept is exactly the newest suffix, in order.
    let kept: Vec<(String, String)> = rx
        .spans()
        .into_iter()
        .map(|s| (s.trace_id, s.span_id))
        .collect();
    assert_eq!(kept.len(), stats.stored_spans);
    assert_eq!(kept[..], sent[total - kept.len()..]);
    // Well over half the budget is in use: eviction removes only what it must.
    assert!(stats.stored_bytes > BUDGET / 2, "{stats:?}");

    rx.clear();
    let after = rx.stats();
    assert_eq!((after.stored_spans, after.stored_bytes), (0, 0));
    assert_eq!(
        after.evicted_spans, stats.evicted_spans,
        "clear is not eviction"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn wait_errors_say_what_arrived() {
    let rx = OtlpReceiver::start().await.unwrap();
    let mut exporter = span_exporter(&rx, plain(Transport::HttpProtobuf), TIMEOUT);
    exporter.set_resource(&resource("few"));
    exporter.export(batch(1, 2)).await.unwrap();
    let err = rx
        .wait_for_spans(5, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        WaitError::Spans {
            wanted: 5,
            got: 2,
            timeout: Duration::from_millis(200)
        }
    );
    assert!(
        err.to_string()
            .contains("waiting for 5 spans: only 2 arrived"),
        "{err}"
    );
    let err = rx
        .wait_for_logs(1, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("only 0 arrived"), "{err}");
    let err = rx
        .wait_for_metric("nope", Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("metric `nope`"), "{err}");

    // A wait that is satisfied later wakes up on arrival, not on a poll tick.
    let handle = rx.handle();
    let waiter = tokio::spawn(async move { handle.wait_for_spans(4, TIMEOUT).await });
    tokio::task::yield_now().await;
    exporter.export(batch(2, 2)).await.unwrap();
    let spans = waiter.await.unwrap().unwrap();
    assert_eq!(spans.len(), 4);
}

/// Started from one runtime that then ends, used from another one: the
/// servers live on the receiver's own thread.
#[test]
fn outlives_the_runtime_that_started_it() {
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rx = first.block_on(OtlpReceiver::start()).unwrap();
    drop(first);
    let second = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    second.block_on(async {
        for (i, t) in Transport::ALL.into_iter().enumerate() {
            let mut exporter = span_exporter(&rx, plain(t), TIMEOUT);
            exporter.set_resource(&resource("second"));
            exporter.export(batch(i as u128, 3)).await.unwrap();
        }
        let spans = rx.wait_for_spans(9, TIMEOUT).await.unwrap();
        assert_eq!(spans.len(), 9);
        rx.shutdown().await;
    });
}

/// A receiver started from plain code (no runtime on the test thread) serves
/// an exporter running on an unrelated runtime while the test thread just
/// sleeps: answering never depends on the caller driving a runtime.
#[test]
fn start_blocking_works_without_a_caller_runtime() {
    let rx = OtlpReceiver::start_blocking().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let exporter =
        runtime.block_on(async { span_exporter(&rx, plain(Transport::HttpProtobuf), TIMEOUT) });
    let export = runtime.spawn(async move { exporter.export(batch(7, 25)).await });
    // The test thread blocks (no runtime here); the export completes anyway.
    let deadline = Instant::now() + TIMEOUT;
    while rx.spans().len() < 25 {
        assert!(Instant::now() < deadline, "export never arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
    runtime.block_on(export).unwrap().unwrap();
    assert_eq!(rx.stats().accepted_requests, 1);
}
