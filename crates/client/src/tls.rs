//! TLS for the client's connections to a server (wss, https, and TURN over
//! TLS): the web's usual roots, plus certificates the user trusts besides
//! (`peerchat chat --tls-ca FILE`, for a server with a private or
//! self-signed certificate).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// A file of trusted certificates that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsRootsError {
    /// It cannot be read.
    #[error("reading {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// It holds no PEM certificate, or a broken one.
    #[error("{0}: no PEM certificate in it")]
    NoCertificate(PathBuf),
    /// A certificate that cannot serve as a root.
    #[error("{path}: {error}")]
    Bad {
        /// The file.
        path: PathBuf,
        /// Why.
        error: rustls::Error,
    },
}

/// Reads the PEM certificates in `path`.
pub fn read_roots(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsRootsError> {
    let pem = std::fs::read(path).map_err(|error| TlsRootsError::Read {
        path: path.to_owned(),
        error,
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsRootsError::NoCertificate(path.to_owned()))?;
    if certs.is_empty() {
        return Err(TlsRootsError::NoCertificate(path.to_owned()));
    }
    Ok(certs)
}

/// A client configuration trusting the web's roots and `extra`.
pub fn client_config(
    extra: &[CertificateDer<'static>],
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for cert in extra {
        roots.add(cert.clone())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The web's roots only.
pub fn default_config() -> Arc<ClientConfig> {
    client_config(&[]).expect("the built-in roots and protocol versions are valid")
}
