//! A discarding OTLP endpoint for the benchmark: telemetry-init-testing's
//! `OtlpReceiver` with a 1 MiB memory budget (older items are evicted, so its
//! memory stays flat whatever the load). Prints its gRPC endpoint on stdout,
//! then serves until SIGTERM or Ctrl-C and prints what it received on stderr.
//!
//! `SINK_GRPC_ADDR` picks the gRPC address (default `127.0.0.1:0`).

use std::net::SocketAddr;
use std::io::Write;

use telemetry_init_testing::OtlpReceiver;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let addr: SocketAddr = std::env::var("SINK_GRPC_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:0".into())
        .parse()
        .expect("SINK_GRPC_ADDR");
    assert!(addr.ip().is_loopback(), "SINK_GRPC_ADDR must be loopback");
    let receiver = OtlpReceiver::builder()
        .grpc_addr(addr)
        .http_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
        .memory_budget_bytes(1 << 20)
        .start()
        .await
        .expect("start receiver");
    println!("{}", receiver.grpc_endpoint());
    std::io::stdout().flush().ok();

    // SIGUSR1 prints one `stats {json}` line on stderr: the spans, log records
    // and metrics received so far (stored + evicted), for the runner to count
    // what each server exported.
    let handle = receiver.handle();
    let mut usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
        .expect("SIGUSR1 handler");
    let shutdown = overhead_bench::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = usr1.recv() => {
                let s = handle.stats();
                eprintln!(
                    "stats {{\"spans\":{},\"logs\":{},\"metrics\":{}}}",
                    s.stored_spans as u64 + s.evicted_spans,
                    s.stored_logs as u64 + s.evicted_logs,
                    s.stored_metrics as u64 + s.evicted_metrics,
                );
            }
        }
    }
    let stats = receiver.handle().stats();
    eprintln!("sink: {stats:?}");
    receiver.shutdown().await;
}
