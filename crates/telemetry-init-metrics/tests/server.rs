//! The standalone scrape listener negotiates the format from `Accept`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use telemetry_init_metrics::{
    MetricsConfig, MetricsHandle, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE,
    TelemetryRecorder,
};

fn get(addr: SocketAddr, path: &str, accept: Option<&str>) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{accept}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

fn recorder() -> (TelemetryRecorder, MetricsHandle) {
    let r = TelemetryRecorder::new(MetricsConfig::new()).unwrap();
    metrics::with_local_recorder(&r, || metrics::counter!("hits").increment(3));
    let h = r.handle();
    (r, h)
}

fn check(addr: SocketAddr) {
    let (head, body) = get(addr, "/metrics", None);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-type: {PROMETHEUS_CONTENT_TYPE}")),
        "{head}"
    );
    assert!(body.contains("hits_total 3\n"), "{body}");

    let (head, body) = get(
        addr,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    );
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-type: {OPENMETRICS_CONTENT_TYPE}")),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");

    let (head, _) = get(addr, "/other", None);
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
}

#[test]
fn serves_on_its_own_thread_without_a_runtime() {
    let (_r, handle) = recorder();
    let server = handle.serve("127.0.0.1:0".parse().unwrap()).unwrap();
    check(server.local_addr());
    let addr = server.local_addr();
    server.shutdown();
    assert!(TcpStream::connect(addr).is_err(), "listener still open");
}

#[test]
fn serves_on_the_current_tokio_runtime() {
    let (_r, handle) = recorder();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(async { handle.serve("127.0.0.1:0".parse().unwrap()).unwrap() });
    let addr = server.local_addr();
    std::thread::spawn(move || check(addr)).join().unwrap();
    drop(server);
}

#[test]
fn bind_errors_are_reported() {
    let (_r, handle) = recorder();
    let first = handle.serve("127.0.0.1:0".parse().unwrap()).unwrap();
    let err = handle.serve(first.local_addr()).unwrap_err();
    assert!(err.to_string().starts_with("metrics listener:"), "{err}");
}
