//! TLS material for the OTLP exporters: a private CA and a client identity,
//! read and checked when the configuration is resolved.
//!
//! ```
//! let config = telemetry_init::builder()
//!     .otlp_endpoint("https://collector.internal:4317")
//!     .env_lookup(|var| match var {
//!         "OTEL_EXPORTER_OTLP_CERTIFICATE" => Some("/no/such/ca.pem".into()),
//!         _ => None,
//!     })
//!     .resolve();
//! // A missing file stops start-up, naming the variable and the path.
//! let err = config.unwrap_err().to_string();
//! assert!(err.contains("OTEL_EXPORTER_OTLP_CERTIFICATE") && err.contains("/no/such/ca.pem"));
//! ```
//!
//! Why read the files here and not when the first export connects: a
//! missing, unreadable or garbled file is a deployment mistake, and the
//! moment to say so is start-up, with the variable's name, not a failed
//! handshake minutes later.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::Error;

/// Largest PEM file accepted: a CA bundle of a few hundred certificates
/// fits easily; anything larger is not a certificate file.
const MAX_PEM_BYTES: u64 = 4 * 1024 * 1024;

/// TLS settings of one signal's exporter. They apply to `https://`
/// endpoints only; a plain-text endpoint never uses them.
///
/// Debug output shows file paths, never their contents.
#[derive(Clone, Default, PartialEq)]
pub struct TlsSettings {
    pub(crate) ca: Option<CertFile>,
    pub(crate) client: Option<ClientIdentity>,
}

impl TlsSettings {
    /// The private CA bundle replacing the system roots
    /// (`OTEL_EXPORTER_OTLP_CERTIFICATE`), if any.
    pub fn ca_path(&self) -> Option<&Path> {
        self.ca.as_ref().map(|c| c.path.as_path())
    }

    /// The client certificate and key for mutual TLS
    /// (`OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` and `_CLIENT_KEY`), if any.
    pub fn client_identity_paths(&self) -> Option<(&Path, &Path)> {
        self.client
            .as_ref()
            .map(|c| (c.cert.path.as_path(), c.key_path.as_path()))
    }
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("ca", &self.ca_path())
            .field("client_identity", &self.client_identity_paths())
            .finish()
    }
}

/// A file of PEM certificates, parsed.
#[derive(Clone)]
pub(crate) struct CertFile {
    pub(crate) path: PathBuf,
    pub(crate) certs: Vec<CertificateDer<'static>>,
}

impl PartialEq for CertFile {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.certs == other.certs
    }
}

/// A client certificate chain with its private key, parsed.
#[derive(Clone)]
pub(crate) struct ClientIdentity {
    pub(crate) cert: CertFile,
    pub(crate) key_path: PathBuf,
    pub(crate) key: Arc<PrivateKeyDer<'static>>,
}

impl PartialEq for ClientIdentity {
    fn eq(&self, other: &Self) -> bool {
        // Keys are compared by where they came from: never by content.
        self.cert == other.cert && self.key_path == other.key_path
    }
}

/// Where a TLS path came from: a variable, or the builder.
#[derive(Debug, Clone)]
pub(crate) struct Sourced {
    pub(crate) var: String,
    pub(crate) path: PathBuf,
}

/// Code-level TLS defaults set on the builder.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsDefaults {
    pub(crate) ca: Option<PathBuf>,
    pub(crate) client_cert: Option<PathBuf>,
    pub(crate) client_key: Option<PathBuf>,
}

fn read_bounded(var: &str, path: &Path) -> Result<Vec<u8>, Error> {
    let shown = path.display().to_string();
    let accepted = "a readable PEM file";
    let file = std::fs::File::open(path).map_err(|e| {
        Error::invalid_env(var, &shown, format!("cannot open the file: {e}"), accepted)
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            Error::invalid_env(var, &shown, format!("cannot read the file: {e}"), accepted)
        })?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(Error::invalid_env(
            var,
            &shown,
            format!("larger than {MAX_PEM_BYTES} bytes"),
            accepted,
        ));
    }
    Ok(bytes)
}

/// Reads the certificates of a PEM file; at least one must be there.
pub(crate) fn load_certs(src: &Sourced) -> Result<CertFile, Error> {
    let bytes = read_bounded(&src.var, &src.path)?;
    let shown = src.path.display().to_string();
    let accepted = "a PEM file with at least one -----BEGIN CERTIFICATE----- block";
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::invalid_env(&src.var, &shown, format!("not PEM: {e}"), accepted))?;
    if certs.is_empty() {
        return Err(Error::invalid_env(
            &src.var,
            &shown,
            "no certificate in the file",
            accepted,
        ));
    }
    Ok(CertFile {
        path: src.path.clone(),
        certs,
    })
}

/// Reads a PEM private key (PKCS#8, PKCS#1 or SEC1).
fn load_key(src: &Sourced) -> Result<PrivateKeyDer<'static>, Error> {
    let bytes = read_bounded(&src.var, &src.path)?;
    let shown = src.path.display().to_string();
    // The key's bytes never reach an error message: only the parser's
    // verdict, which names PEM sections, not their content.
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        Error::invalid_env(
            &src.var,
            &shown,
            format!("no PEM private key found ({e})"),
            "a PEM file with a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block",
        )
    })
}

/// Resolves the TLS settings from the variables found (already picked by
/// precedence) and checks that certificate and key come together.
pub(crate) fn resolve(
    ca: Option<Sourced>,
    client_cert: Option<Sourced>,
    client_key: Option<Sourced>,
) -> Result<TlsSettings, Error> {
    let ca = ca.as_ref().map(load_certs).transpose()?;
    let client = match (client_cert, client_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let certs = load_certs(&cert)?;
            let der = load_key(&key)?;
            // Catch a certificate and key that do not belong together now,
            // not at the first handshake.
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::InvalidConfig(format!("TLS: {e}")))?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_client_auth_cert(certs.certs.clone(), der.clone_key());
            if let Err(e) = config {
                return Err(Error::invalid_env(
                    &key.var,
                    &key.path.display().to_string(),
                    format!(
                        "the key does not fit the certificate in {} ({e})",
                        cert.path.display()
                    ),
                    "the private key of the client certificate",
                ));
            }
            Some(ClientIdentity {
                cert: certs,
                key_path: key.path,
                key: Arc::new(der),
            })
        }
        (Some(cert), None) => {
            return Err(Error::invalid_env(
                &cert.var,
                &cert.path.display().to_string(),
                "a client certificate needs its key",
                "also set OTEL_EXPORTER_OTLP_CLIENT_KEY (or the builder's otlp_client_identity)",
            ));
        }
        (None, Some(key)) => {
            return Err(Error::invalid_env(
                &key.var,
                &key.path.display().to_string(),
                "a client key needs its certificate",
                "also set OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE (or the builder's otlp_client_identity)",
            ));
        }
    };
    Ok(TlsSettings { ca, client })
}
