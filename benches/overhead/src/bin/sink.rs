//! A discarding OTLP/gRPC endpoint for the benchmark: it answers every
//! `Export` of the trace, logs and metrics services with an empty (success)
//! response without decoding the request. It only walks the protobuf's
//! length-delimited framing to count the spans, log records and metrics it
//! received, so its own CPU cost per exported item is a few nanoseconds
//! (a decoding receiver on the load generator's core slowed every exporter
//! down and made them drop). Prints its gRPC endpoint on stdout, then serves
//! until SIGTERM or Ctrl-C.
//!
//! `SINK_GRPC_ADDR` picks the gRPC address (default `127.0.0.1:0`).
//! SIGUSR1 prints one `stats {"spans":N,"logs":N,"metrics":N}` line on stderr.

use std::convert::Infallible;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

#[derive(Default)]
struct Counts {
    spans: AtomicU64,
    logs: AtomicU64,
    metrics: AtomicU64,
}

/// One OTLP collector service; `K` picks which (0 traces, 1 logs, 2 metrics).
#[derive(Clone)]
struct Sink<const K: u8>(Arc<Counts>);

impl<const K: u8> NamedService for Sink<K> {
    const NAME: &'static str = match K {
        0 => "opentelemetry.proto.collector.trace.v1.TraceService",
        1 => "opentelemetry.proto.collector.logs.v1.LogsService",
        _ => "opentelemetry.proto.collector.metrics.v1.MetricsService",
    };
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<const K: u8> tower::Service<http::Request<tonic::body::Body>> for Sink<K> {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let counts = self.0.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(RawCodec)
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
            Ok(grpc.unary(Count::<K>(counts), req).await)
        })
    }
}

#[derive(Clone)]
struct Count<const K: u8>(Arc<Counts>);

impl<const K: u8> tonic::server::UnaryService<Bytes> for Count<K> {
    type Response = ();
    type Future = std::future::Ready<Result<Response<()>, Status>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        // Every OTLP export request nests its items three levels deep:
        // resource_* (1) -> scope_* (2) -> spans / log_records / metrics (2).
        let n = count_items(request.get_ref());
        let c = match K {
            0 => &self.0.spans,
            1 => &self.0.logs,
            _ => &self.0.metrics,
        };
        c.fetch_add(n, Ordering::Relaxed);
        std::future::ready(Ok(Response::new(())))
    }
}

fn count_items(body: &[u8]) -> u64 {
    let mut n = 0;
    for_each_field(body, 1, |resource| {
        for_each_field(resource, 2, |scope| {
            for_each_field(scope, 2, |_| n += 1);
        });
    });
    n
}

/// Calls `f` with the body of every length-delimited field `tag` of `msg`,
/// skipping every other field; stops at the first malformed byte.
fn for_each_field(mut msg: &[u8], tag: u64, mut f: impl FnMut(&[u8])) {
    while !msg.is_empty() {
        let Ok(key) = prost::encoding::decode_varint(&mut msg) else { return };
        let len = match key & 7 {
            0 => match prost::encoding::decode_varint(&mut msg) {
                Ok(_) => continue,
                Err(_) => return,
            },
            1 => 8,
            5 => 4,
            2 => match prost::encoding::decode_varint(&mut msg) {
                Ok(l) => l as usize,
                Err(_) => return,
            },
            _ => return,
        };
        if len > msg.len() {
            return;
        }
        if key & 7 == 2 && key >> 3 == tag {
            f(&msg[..len]);
        }
        msg = &msg[len..];
    }
}

/// Takes the request as raw bytes; answers with an empty message (the
/// default `Export*ServiceResponse`: success, no partial rejection).
#[derive(Clone, Copy)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = ();
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = ();
    type Error = Status;

    fn encode(&mut self, _: (), _: &mut EncodeBuf<'_>) -> Result<(), Status> {
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let addr: SocketAddr = std::env::var("SINK_GRPC_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:0".into())
        .parse()
        .expect("SINK_GRPC_ADDR");
    assert!(addr.ip().is_loopback(), "SINK_GRPC_ADDR must be loopback");
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let local = listener.local_addr().expect("local addr");
    println!("http://{local}");
    std::io::stdout().flush().ok();

    let counts = Arc::new(Counts::default());
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let server = tonic::transport::Server::builder()
        .add_service(Sink::<0>(counts.clone()))
        .add_service(Sink::<1>(counts.clone()))
        .add_service(Sink::<2>(counts.clone()))
        .serve_with_incoming_shutdown(incoming, overhead_bench::shutdown_signal());
    tokio::pin!(server);

    let mut usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
        .expect("SIGUSR1 handler");
    let stats = |c: &Counts| {
        format!(
            "{{\"spans\":{},\"logs\":{},\"metrics\":{}}}",
            c.spans.load(Ordering::Relaxed),
            c.logs.load(Ordering::Relaxed),
            c.metrics.load(Ordering::Relaxed)
        )
    };
    loop {
        tokio::select! {
            r = &mut server => { r.expect("serve"); break; }
            _ = usr1.recv() => eprintln!("stats {}", stats(&counts)),
        }
    }
    eprintln!("sink: {}", stats(&counts));
}
