//! Optional standalone scrape listener (`GET /metrics`).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use crate::{MetricsError, MetricsHandle};

/// A running scrape listener started by [`MetricsHandle::serve`].
///
/// Dropping it (or calling [`shutdown`](Self::shutdown)) stops accepting
/// connections and closes open ones.
///
/// ```
/// use std::io::{Read, Write};
/// use telemetry_init_metrics::{MetricsConfig, TelemetryRecorder};
///
/// let r = TelemetryRecorder::new(MetricsConfig::new()).unwrap();
/// metrics::with_local_recorder(&r, || metrics::counter!("hits").increment(1));
/// let server = r.handle().serve("127.0.0.1:0".parse().unwrap()).unwrap();
/// let mut conn = std::net::TcpStream::connect(server.local_addr()).unwrap();
/// conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
/// let mut response = String::new();
/// conn.read_to_string(&mut response).unwrap();
/// assert!(response.starts_with("HTTP/1.1 200") && response.ends_with("hits_total 1\n"));
/// ```
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsServer {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops the listener; waits for its thread when it owns one.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

pub(crate) fn serve(
    handle: MetricsHandle,
    addr: SocketAddr,
) -> Result<MetricsServer, MetricsError> {
    let listener = std::net::TcpListener::bind(addr).map_err(MetricsError::Io)?;
    listener.set_nonblocking(true).map_err(MetricsError::Io)?;
    let local_addr = listener.local_addr().map_err(MetricsError::Io)?;
    let (stop, stopped) = watch::channel(false);
    let thread = match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(accept_loop(handle, listener, stopped));
            None
        }
        Err(_) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(MetricsError::Io)?;
            Some(
                std::thread::Builder::new()
                    .name("telemetry-metrics-http".into())
                    .spawn(move || rt.block_on(accept_loop(handle, listener, stopped)))
                    .map_err(MetricsError::Io)?,
            )
        }
    };
    Ok(MetricsServer {
        local_addr,
        stop,
        thread,
    })
}

async fn accept_loop(
    handle: MetricsHandle,
    listener: std::net::TcpListener,
    mut stopped: watch::Receiver<bool>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let handle = handle.clone();
                let mut stop = stopped.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let handle = handle.clone();
                        async move { Ok::<_, Infallible>(respond(&handle, &req)) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.changed() => {}
                    }
                });
            }
        }
    }
}

fn respond(handle: &MetricsHandle, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let status = |code: StatusCode| {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = code;
        r
    };
    if req.uri().path() != "/metrics" {
        return status(StatusCode::NOT_FOUND);
    }
    if req.method() != Method::GET {
        return status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
    let (content_type, body) = handle.render(accept);
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
