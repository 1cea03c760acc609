//! A fixed workload for profilers (callgrind, perf): N requests through
//! `telemetry_init::layer()` around a trivial service, telemetry exporting to
//! an in-process receiver. `N=20000 valgrind --tool=callgrind target/release/examples/profile_layer full`
//! (modes: `bare`, `nolog`, `full`). Timings it prints are indicative only;
//! the overhead benchmark of record is `benches/overhead`.
use std::time::{Duration, Instant};
use tower::{Service, ServiceExt};

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let receiver = telemetry_init_testing::OtlpReceiver::builder()
        .memory_budget_bytes(1 << 20)
        .start_blocking()
        .unwrap();
    let mode = std::env::args().nth(1).unwrap_or_default();
    let _g = if mode != "bare" {
        Some(
            telemetry_init::builder()
                .service_name("hot")
                .otlp_endpoint(receiver.grpc_endpoint())
                .stdout_filter(if mode == "nolog" { "warn" } else { "info" })
                .install()
                .unwrap(),
        )
    } else {
        None
    };
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    rt.block_on(async {
        let inner = tower::service_fn(|_req: http::Request<String>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hi")))
        });
        let mut svc = tower::ServiceBuilder::new()
            .layer(telemetry_init::layer())
            .service(inner);
        let mut bare = inner;
        let run = |_: ()| {
            http::Request::builder()
                .uri("/users/42")
                .header(
                    "traceparent",
                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                )
                .header("user-agent", "wrk")
                .body(String::new())
                .unwrap()
        };
        let start = Instant::now();
        for _ in 0..n {
            if mode == "bare" {
                let r = bare.ready().await.unwrap().call(run(())).await.unwrap();
                drop(r);
            } else {
                let r = svc.ready().await.unwrap().call(run(())).await.unwrap();
                drop(r);
            }
        }
        let el = start.elapsed();
        eprintln!(
            "{mode}: {:.2} µs/request",
            el.as_secs_f64() * 1e6 / n as f64
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    });
}
