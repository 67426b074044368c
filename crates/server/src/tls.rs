//! TLS built in: `--tls-cert` and `--tls-key` (PEM files) serve the page
//! over https and signaling over wss on the server's one port.
//!
//! The certificate is held by a [`Tls`] that every new handshake asks for
//! it, so replacing it ([`Tls::reload`], on SIGHUP or when the files
//! change, see [`Tls::watch`]) affects only connections made afterwards:
//! open ones keep the session they have, and nothing is dropped. A reload
//! that fails (a half-written file, a key that does not match) keeps the
//! certificate in use and says why.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// How often [`Tls::watch`] looks at the files.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// The certificate and key files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, PEM: the server's certificate first.
    pub cert: PathBuf,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why a certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("reading {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{0}: no PEM certificate in it")]
    NoCertificate(PathBuf),
    /// The key file holds no private key.
    #[error("{0}: no PEM private key in it")]
    NoKey(PathBuf),
    /// The key cannot be used, or does not belong to the certificate.
    #[error("{key} does not fit {cert}: {error}")]
    Key {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        error: rustls::Error,
    },
}

/// The server's certificate, replaceable while it runs.
pub struct Tls {
    files: TlsFiles,
    current: Arc<Current>,
    acceptor: TlsAcceptor,
    /// The same certificate, without ALPN: for TURN over TLS.
    turn_acceptor: TlsAcceptor,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish()
    }
}

/// The certificate handshakes get, and the file contents it came from.
struct Current {
    loaded: RwLock<Loaded>,
}

struct Loaded {
    key: Arc<CertifiedKey>,
    /// The files' bytes, to tell when they change.
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl fmt::Debug for Current {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Current")
    }
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
        Some(loaded.key.clone())
    }
}

fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        path: path.to_owned(),
        error,
    })
}

/// Reads both files and checks that they go together.
fn load(files: &TlsFiles) -> Result<Loaded, TlsError> {
    let cert_pem = read(&files.cert)?;
    let key_pem = read(&files.key)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::NoCertificate(files.cert.clone()))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(files.cert.clone()));
    }
    let key =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey(files.key.clone()))?;
    let key = CertifiedKey::from_der(chain, key, &provider()).map_err(|error| TlsError::Key {
        cert: files.cert.clone(),
        key: files.key.clone(),
        error,
    })?;
    Ok(Loaded {
        key: Arc::new(key),
        cert_pem,
        key_pem,
    })
}

impl Tls {
    /// Loads the certificate and key.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let current = Arc::new(Current {
            loaded: RwLock::new(load(&files)?),
        });
        let build = || {
            ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map(|config| {
                    config
                        .with_no_client_auth()
                        .with_cert_resolver(current.clone())
                })
                .map_err(|error| TlsError::Key {
                    cert: files.cert.clone(),
                    key: files.key.clone(),
                    error,
                })
        };
        let mut config = build()?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let turn = build()?;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            turn_acceptor: TlsAcceptor::from(Arc::new(turn)),
            files,
            current,
        })
    }

    /// The files it reads.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// What accepts TLS connections with the current certificate.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// What accepts TURN clients over TLS with the current certificate
    /// (offering no application protocol, which TURN clients do not ask
    /// for).
    pub fn turn_acceptor(&self) -> TlsAcceptor {
        self.turn_acceptor.clone()
    }

    /// Reads the files again and, if they changed and go together, serves
    /// the new certificate to every handshake from now on. Returns whether
    /// it changed; on an error the certificate in use stays.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let cert_pem = read(&self.files.cert)?;
        let key_pem = read(&self.files.key)?;
        {
            let loaded = self
                .current
                .loaded
                .read()
                .unwrap_or_else(|e| e.into_inner());
            if loaded.cert_pem == cert_pem && loaded.key_pem == key_pem {
                return Ok(false);
            }
        }
        let fresh = load(&self.files)?;
        *self
            .current
            .loaded
            .write()
            .unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(true)
    }

    /// Reloads when the files change (looking every `interval`) and when
    /// `signals` yields (SIGHUP), logging what happened and telling
    /// `reloaded` whether a reload worked; runs until the task is dropped.
    pub async fn watch(
        self: Arc<Self>,
        interval: Duration,
        mut signals: impl SignalStream,
        reloaded: impl Fn(bool) + Send,
    ) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        // A half-written file is told once, not at every look.
        let mut failing = false;
        loop {
            let asked = tokio::select! {
                _ = tick.tick() => false,
                () = signals.next() => true,
            };
            match self.reload() {
                Ok(true) => {
                    failing = false;
                    reloaded(true);
                    tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                }
                Ok(false) => {
                    if asked {
                        tracing::info!("TLS certificate unchanged");
                    }
                }
                Err(err) => {
                    if asked || !failing {
                        reloaded(false);
                        tracing::error!(%err, "TLS certificate not reloaded; the previous one stays in use");
                    }
                    failing = true;
                }
            }
        }
    }
}

/// Something that says "reload now" from time to time: SIGHUP.
pub trait SignalStream: Send {
    /// Resolves at the next request; pending forever when there are none.
    fn next(&mut self) -> impl Future<Output = ()> + Send;
}

/// No reload requests: only the files are watched.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSignals;

impl SignalStream for NoSignals {
    async fn next(&mut self) {
        std::future::pending::<()>().await;
    }
}

#[cfg(unix)]
impl SignalStream for tokio::signal::unix::Signal {
    async fn next(&mut self) {
        if self.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }
}
