//! Variant `bare`: plain axum, no telemetry at all.

#[tokio::main]
async fn main() {
    overhead_bench::serve(overhead_bench::app()).await;
}
