//! The exporters' TLS client: one rustls configuration (ring provider) per
//! signal, from the system's roots or a private CA, with an optional client
//! identity; and the naming of handshake failures for the health metrics.
//!
//! Why rustls with ring and the system's roots: see `docs/tls.md`.

use std::sync::{Arc, OnceLock};

use rustls::{ClientConfig, RootCertStore};

use crate::Error;
use crate::config::{Signal, TlsSettings};

/// The system's root certificates, read once per process (the read walks
/// `/etc/ssl/certs` or `SSL_CERT_FILE`/`SSL_CERT_DIR`).
fn system_roots() -> Result<Arc<RootCertStore>, String> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            let (_added, _ignored) = store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                let why = found
                    .errors
                    .first()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                return Err(format!(
                    "no system root certificates found{why}; install the ca-certificates \
                     package, set SSL_CERT_FILE, or give the collector's CA in \
                     OTEL_EXPORTER_OTLP_CERTIFICATE"
                ));
            }
            Ok(Arc::new(store))
        })
        .clone()
}

/// The crypto provider every TLS connection of the crate uses.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration for one signal's `https://` endpoint. ALPN
/// (`h2` for gRPC, `http/1.1` for OTLP/HTTP) is left to the connector,
/// which sets it from the HTTP versions it enables.
pub(crate) fn client_config(signal: Signal, tls: &TlsSettings) -> Result<ClientConfig, Error> {
    let err = |message: String| Error::Exporter {
        signal: signal.as_str(),
        message,
    };
    let roots = match &tls.ca {
        Some(ca) => {
            let mut store = RootCertStore::empty();
            for cert in &ca.certs {
                store.add(cert.clone()).map_err(|e| {
                    err(format!(
                        "{}: a certificate is not a usable CA ({e})",
                        ca.path.display()
                    ))
                })?;
            }
            Arc::new(store)
        }
        None => system_roots().map_err(err)?,
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| err(format!("TLS: {e}")))?
        .with_root_certificates(roots);
    Ok(match &tls.client {
        Some(id) => builder
            .with_client_auth_cert(id.cert.certs.clone(), id.key.clone_key())
            .map_err(|e| {
                err(format!(
                    "client certificate {}: {e}",
                    id.cert.path.display()
                ))
            })?,
        None => builder.with_no_client_auth(),
    })
}

/// If a TLS failure is in `err`'s source chain: a small fixed `error.type`
/// for the health metrics and rustls' description of it.
///
/// Why the text fallback: h2 and `std::io::Error` forward `source()` to
/// the *inner* error's source, so a rustls error wrapped in an I/O error
/// inside an h2 error is not reachable by downcasting; its description,
/// which each layer repeats, is.
pub(crate) fn classify(err: &(dyn std::error::Error + 'static)) -> Option<(&'static str, String)> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        let found = e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(tls) = found {
            return Some((error_type(tls), format!("TLS: {tls}")));
        }
        let text = e.to_string();
        if let Some(found) = classify_text(&text) {
            return Some(found);
        }
        cur = e.source();
    }
    None
}

/// Recognizes rustls' own descriptions (see its `Display for Error`).
pub(crate) fn classify_text(text: &str) -> Option<(&'static str, String)> {
    const MARKERS: [&str; 6] = [
        "invalid peer certificate: ",
        "received fatal alert: ",
        "peer sent no certificates",
        "received corrupt message",
        "peer is incompatible: ",
        "peer misbehaved: ",
    ];
    let start = MARKERS.iter().filter_map(|m| text.find(m)).min()?;
    let detail = &text[start..];
    let error_type = if let Some(cert) = detail.strip_prefix("invalid peer certificate: ") {
        if cert.starts_with("UnknownIssuer") {
            "tls_unknown_ca"
        } else if cert.starts_with("certificate expired") || cert.starts_with("Expired") {
            "tls_certificate_expired"
        } else if cert.starts_with("certificate not valid for name")
            || cert.starts_with("NotValidForName")
        {
            "tls_wrong_host"
        } else {
            "tls_invalid_certificate"
        }
    } else if let Some(alert) = detail.strip_prefix("received fatal alert: ") {
        if alert.starts_with("CertificateRequired") {
            "tls_client_certificate_required"
        } else if [
            "BadCertificate",
            "UnknownCA",
            "CertificateUnknown",
            "UnsupportedCertificate",
            "CertificateExpired",
            "CertificateRevoked",
            "AccessDenied",
            "DecryptError",
        ]
        .iter()
        .any(|a| alert.starts_with(a))
        {
            "tls_client_certificate_rejected"
        } else {
            "tls_alert"
        }
    } else {
        "tls_handshake_failed"
    };
    Some((error_type, format!("TLS: {detail}")))
}

fn error_type(e: &rustls::Error) -> &'static str {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "tls_unknown_ca",
            C::Expired | C::ExpiredContext { .. } => "tls_certificate_expired",
            C::NotValidForName | C::NotValidForNameContext { .. } => "tls_wrong_host",
            _ => "tls_invalid_certificate",
        },
        E::AlertReceived(A::CertificateRequired) => "tls_client_certificate_required",
        E::AlertReceived(
            A::BadCertificate
            | A::UnknownCA
            | A::CertificateUnknown
            | A::UnsupportedCertificate
            | A::CertificateExpired
            | A::CertificateRevoked
            | A::AccessDenied
            | A::DecryptError,
        ) => "tls_client_certificate_rejected",
        E::AlertReceived(_) => "tls_alert",
        _ => "tls_handshake_failed",
    }
}

/// Finds out why connections to an `https://` endpoint fail when the
/// export error itself does not say.
///
/// Why: with TLS 1.3 the server checks our client certificate *after* our
/// side of the handshake is done, so its refusal (an alert) races with the
/// first request; the request often loses with a bare "broken pipe". A
/// fresh handshake followed by a short read sees the alert itself. It runs
/// only after an export failed for a reason nobody named, at most once per
/// [`PROBE_EVERY`] per client; in between, the last verdict is reused.
pub(crate) struct Probe {
    connector: tokio_rustls::TlsConnector,
    host: String,
    port: u16,
    server_name: rustls_pki_types::ServerName<'static>,
    timeout: std::time::Duration,
    last: std::sync::Mutex<Option<(std::time::Instant, Verdict)>>,
}

/// A TLS cause found (`error.type`, description), or none.
type Verdict = Option<(&'static str, String)>;

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

impl Probe {
    pub(crate) fn new(
        config: ClientConfig,
        uri: &http::Uri,
        timeout: std::time::Duration,
    ) -> Option<Self> {
        let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
        let server_name = rustls_pki_types::ServerName::try_from(host.to_string()).ok()?;
        Some(Self {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            host: host.to_string(),
            port: uri.port_u16().unwrap_or(443),
            server_name,
            timeout,
            last: std::sync::Mutex::new(None),
        })
    }

    /// The TLS cause of the failures, if there is one.
    pub(crate) async fn diagnose(&self) -> Option<(&'static str, String)> {
        {
            let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, verdict)) = &*last
                && at.elapsed() < PROBE_EVERY
            {
                return verdict.clone();
            }
        }
        let verdict = tokio::time::timeout(self.timeout, self.handshake())
            .await
            .unwrap_or(None);
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((std::time::Instant::now(), verdict.clone()));
        verdict
    }

    async fn handshake(&self) -> Option<(&'static str, String)> {
        use tokio::io::AsyncReadExt;
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .ok()?;
        let mut tls = match self.connector.connect(self.server_name.clone(), tcp).await {
            Ok(tls) => tls,
            Err(e) => return classify(&e),
        };
        // A refusal of our certificate arrives right after the handshake;
        // a healthy server just waits for our request.
        let mut byte = [0u8; 1];
        match tokio::time::timeout(std::time::Duration::from_millis(500), tls.read(&mut byte)).await
        {
            Ok(Err(e)) => classify(&e),
            _ => None,
        }
    }
}
