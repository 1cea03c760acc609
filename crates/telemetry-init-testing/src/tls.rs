//! TLS and authentication for the [`OtlpReceiver`](crate::OtlpReceiver):
//! certificates generated at test time, an optional client-certificate
//! requirement and optional required headers.
//!
//! ```
//! use telemetry_init_testing::{OtlpReceiver, ReceiverTls, TestPki};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A private CA, a server certificate for localhost/127.0.0.1 and a
//! // client certificate, all generated now.
//! let pki = TestPki::generate()?;
//! let receiver = OtlpReceiver::builder()
//!     .tls(ReceiverTls::new(pki.clone()).require_client_cert(true))
//!     .require_header("authorization", "Bearer s3cret")
//!     .start_blocking()?;
//! assert!(receiver.grpc_endpoint().starts_with("https://127.0.0.1:"));
//!
//! // Files for OTEL_EXPORTER_OTLP_CERTIFICATE, _CLIENT_CERTIFICATE, _CLIENT_KEY.
//! let dir = std::env::temp_dir().join(format!("pki-doc-{}", std::process::id()));
//! let files = pki.write_files(&dir)?;
//! assert!(files.ca.exists() && files.client_cert.exists() && files.client_key.exists());
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(()) }
//! ```

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Generating certificates or building a TLS configuration failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rcgen could not generate a key or certificate.
    #[error("cannot generate a test certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the generated material.
    #[error("cannot build the TLS configuration: {0}")]
    Config(String),
}

/// A private CA with a server and a client certificate it signed, generated
/// in memory (ECDSA P-256). Cheap to clone.
#[derive(Clone)]
pub struct TestPki {
    inner: Arc<PkiInner>,
}

struct PkiInner {
    ca_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki").finish_non_exhaustive()
    }
}

/// Paths of the PEM files written by [`TestPki::write_files`].
#[derive(Debug, Clone)]
pub struct PkiFiles {
    /// The CA certificate (`OTEL_EXPORTER_OTLP_CERTIFICATE`).
    pub ca: PathBuf,
    /// The client certificate (`OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`).
    pub client_cert: PathBuf,
    /// The client's private key (`OTEL_EXPORTER_OTLP_CLIENT_KEY`).
    pub client_key: PathBuf,
}

/// How the generated server certificate is made; see
/// [`TestPki::generate_with`].
#[derive(Debug, Clone)]
pub struct PkiOptions {
    server_names: Vec<String>,
    expired: bool,
}

impl Default for PkiOptions {
    fn default() -> Self {
        Self {
            server_names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            expired: false,
        }
    }
}

impl PkiOptions {
    /// The DNS names and IP addresses the server certificate is valid for
    /// (default `localhost`, `127.0.0.1`, `::1`); other names make a
    /// wrong-host certificate.
    #[must_use]
    pub fn server_names(mut self, names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.server_names = names.into_iter().map(Into::into).collect();
        self
    }

    /// Makes the server certificate one that expired in 2000.
    #[must_use]
    pub fn expired(mut self, expired: bool) -> Self {
        self.expired = expired;
        self
    }
}

impl TestPki {
    /// Generates a CA, a server certificate for `localhost`, `127.0.0.1`
    /// and `::1`, and a client certificate.
    pub fn generate() -> Result<Self, TlsError> {
        Self::generate_with(PkiOptions::default())
    }

    /// Like [`TestPki::generate`], with a wrong-host or expired server
    /// certificate when `options` ask for one.
    pub fn generate_with(options: PkiOptions) -> Result<Self, TlsError> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "telemetry-init-testing CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate()?;
        let mut server = CertificateParams::new(options.server_names)?;
        server
            .distinguished_name
            .push(DnType::CommonName, "telemetry-init-testing receiver");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if options.expired {
            server.not_before = rcgen::date_time_ymd(1999, 1, 1);
            server.not_after = rcgen::date_time_ymd(2000, 1, 1);
        }
        let server_cert = server.signed_by(&server_key, &issuer)?;

        let client_key = KeyPair::generate()?;
        let mut client = CertificateParams::new(Vec::<String>::new())?;
        client
            .distinguished_name
            .push(DnType::CommonName, "telemetry-init-testing client");
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client.signed_by(&client_key, &issuer)?;

        Ok(Self {
            inner: Arc::new(PkiInner {
                ca_pem: ca_cert.pem(),
                server_cert_pem: server_cert.pem(),
                server_key_pem: server_key.serialize_pem(),
                client_cert_pem: client_cert.pem(),
                client_key_pem: client_key.serialize_pem(),
            }),
        })
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.inner.ca_pem
    }

    /// The server certificate, PEM.
    pub fn server_cert_pem(&self) -> &str {
        &self.inner.server_cert_pem
    }

    /// The client certificate, PEM.
    pub fn client_cert_pem(&self) -> &str {
        &self.inner.client_cert_pem
    }

    /// The client's private key, PEM (PKCS#8).
    pub fn client_key_pem(&self) -> &str {
        &self.inner.client_key_pem
    }

    /// Writes `ca.pem`, `client.pem` and `client-key.pem` into `dir`
    /// (created if missing) and returns their paths.
    pub fn write_files(&self, dir: &Path) -> std::io::Result<PkiFiles> {
        std::fs::create_dir_all(dir)?;
        let files = PkiFiles {
            ca: dir.join("ca.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client-key.pem"),
        };
        std::fs::write(&files.ca, self.ca_pem())?;
        std::fs::write(&files.client_cert, self.client_cert_pem())?;
        std::fs::write(&files.client_key, self.client_key_pem())?;
        Ok(files)
    }

    fn server_config(&self, require_client_cert: bool) -> Result<rustls::ServerConfig, TlsError> {
        let err = |e: &dyn std::fmt::Display| TlsError::Config(e.to_string());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(self.inner.server_cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| err(&e))?;
        let key = PrivateKeyDer::from_pem_slice(self.inner.server_key_pem.as_bytes())
            .map_err(|e| err(&e))?;
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| err(&e))?;
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            for ca in CertificateDer::pem_slice_iter(self.inner.ca_pem.as_bytes()) {
                roots.add(ca.map_err(|e| err(&e))?).map_err(|e| err(&e))?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| err(&e))?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        builder.with_single_cert(certs, key).map_err(|e| err(&e))
    }
}

/// TLS settings of a receiver: which [`TestPki`] it serves and whether it
/// demands a client certificate signed by that PKI's CA.
#[derive(Debug, Clone)]
pub struct ReceiverTls {
    pki: TestPki,
    require_client_cert: bool,
}

impl ReceiverTls {
    /// Serves `pki`'s server certificate; no client certificate required.
    pub fn new(pki: TestPki) -> Self {
        Self {
            pki,
            require_client_cert: false,
        }
    }

    /// Refuses handshakes without a client certificate signed by the CA.
    #[must_use]
    pub fn require_client_cert(mut self, required: bool) -> Self {
        self.require_client_cert = required;
        self
    }

    /// The PKI served.
    pub fn pki(&self) -> &TestPki {
        &self.pki
    }

    /// The acceptors of the gRPC (ALPN `h2`) and HTTP (`h2`, `http/1.1`) listeners.
    pub(crate) fn acceptors(&self) -> Result<(TlsAcceptor, TlsAcceptor), TlsError> {
        let mut grpc = self.pki.server_config(self.require_client_cert)?;
        grpc.alpn_protocols = vec![b"h2".to_vec()];
        let mut http = self.pki.server_config(self.require_client_cert)?;
        http.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok((
            TlsAcceptor::from(Arc::new(grpc)),
            TlsAcceptor::from(Arc::new(http)),
        ))
    }
}

/// Headers every export request must carry, and a count of the requests
/// turned away for lacking them.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequiredHeaders {
    pub(crate) headers: Arc<Vec<(HeaderName, HeaderValue)>>,
    pub(crate) refused: Arc<AtomicU64>,
}

/// Answers requests without the required headers with HTTP 401, or gRPC
/// `UNAUTHENTICATED` for gRPC requests; passes the others through.
#[derive(Debug, Clone)]
pub(crate) struct AuthLayer(pub(crate) RequiredHeaders);

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            required: self.0.clone(),
        }
    }
}

/// The service of [`AuthLayer`].
#[derive(Debug, Clone)]
pub(crate) struct Auth<S> {
    inner: S,
    required: RequiredHeaders,
}

impl<S, B, R> tower::Service<Request<B>> for Auth<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    R: Default,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future =
        futures_util::future::Either<S::Future, std::future::Ready<Result<Response<R>, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let ok = self
            .required
            .headers
            .iter()
            .all(|(name, value)| req.headers().get_all(name).iter().any(|v| v == value));
        if ok {
            return futures_util::future::Either::Left(self.inner.call(req));
        }
        self.required.refused.fetch_add(1, Ordering::Relaxed);
        let grpc = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc"));
        let mut response = Response::new(R::default());
        if grpc {
            // Trailers-only gRPC answer: status in the headers.
            let h = response.headers_mut();
            h.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            h.insert("grpc-status", HeaderValue::from_static("16"));
            h.insert(
                "grpc-message",
                HeaderValue::from_static("missing%20or%20wrong%20credentials"),
            );
        } else {
            *response.status_mut() = StatusCode::UNAUTHORIZED;
        }
        futures_util::future::Either::Right(std::future::ready(Ok(response)))
    }
}

/// Serves `service` over TLS on `listener` until `shutdown` turns true.
/// Each connection is handshaken on its own task (bounded to 10 s), so a
/// client that never finishes its handshake holds up nobody.
pub(crate) async fn serve<S, B>(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    service: S,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) where
    S: tower::Service<Request<hyper::body::Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|down| *down) => return,
        };
        let Ok((tcp, peer)) = accepted else { continue };
        let acceptor = acceptor.clone();
        // The handlers' loopback check reads the peer where the plain
        // servers put it: axum's `ConnectInfo`, tonic's `TcpConnectInfo`.
        let service = service.clone().map_request(move |mut req: Request<_>| {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            req.extensions_mut()
                .insert(tonic::transport::server::TcpConnectInfo {
                    local_addr: None,
                    remote_addr: Some(peer),
                });
            req
        });
        tokio::spawn(async move {
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                // A refused handshake: the client sees the alert.
                return;
            };
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), TowerToHyperService::new(service))
                .await;
        });
    }
}
