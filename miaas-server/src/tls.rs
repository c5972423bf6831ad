//! HTTPS without a proxy: `--tls-cert` (a PEM chain, the server's certificate
//! first) and `--tls-key` (its PEM private key), served with rustls. The files
//! are read again on SIGHUP (a renewed certificate takes effect for new
//! connections, without a restart); a pair that does not load is logged and the
//! one in use is kept.
//!
//! The CA is the last certificate of the chain (a self-signed certificate is its
//! own CA). A server certificate marked as a CA is served, with a warning: no
//! client accepts it (see [`miaas_core::server_certificate`]). It is served at `/cacerts`, and its hash pins join tokens (see
//! [`miaas_core::access::pinned`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::error::ServerError;

/// A loaded certificate and key.
struct Certified {
    acceptor: TlsAcceptor,
    ca_pem: String,
    ca_hash: String,
    public_key_pin: Option<String>,
    self_signed: bool,
}

/// The server's TLS identity, reloadable.
#[derive(Clone)]
pub struct ServerTls {
    cert: PathBuf,
    key: PathBuf,
    current: Arc<RwLock<Arc<Certified>>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

fn config_error(path: &Path, what: impl std::fmt::Display) -> ServerError {
    ServerError::Config(format!("{}: {what}", path.display()))
}

fn load(cert: &Path, key: &Path) -> Result<Certified, ServerError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|err| config_error(cert, format!("cannot read the certificate: {err}")))?
        .collect::<Result<_, _>>()
        .map_err(|err| config_error(cert, format!("not a PEM certificate chain: {err}")))?;
    let ca = chain
        .last()
        .ok_or_else(|| config_error(cert, "holds no certificate (--tls-cert)"))?
        .clone();
    let leaf = chain.first().cloned();
    if chain.first().is_some_and(is_ca) {
        tracing::warn!(
            cert = %cert.display(),
            "{}",
            miaas_core::server_certificate::CA_AS_SERVER_CERTIFICATE
        );
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|err| config_error(key, format!("not a PEM private key (--tls-key): {err}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| ServerError::Config(format!("TLS: {err}")))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|err| {
            ServerError::Config(format!(
                "{} and {} do not make a usable certificate and key: {err}",
                cert.display(),
                key.display()
            ))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let ca_pem = pem_of(&ca);
    Ok(Certified {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        ca_hash: miaas_core::access::pinned::ca_hash(ca.as_ref()),
        ca_pem,
        public_key_pin: leaf.as_ref().and_then(public_key_pin),
        self_signed: is_self_signed(&ca),
    })
}

/// Whether the certificate says it is a CA (`basicConstraints CA:TRUE`): no
/// client takes it as the server's own. One that does not parse is left to
/// rustls to judge.
fn is_ca(der: &CertificateDer<'_>) -> bool {
    x509_parser::parse_x509_certificate(der.as_ref())
        .is_ok_and(|(_, certificate)| certificate.is_ca())
}

/// `sha256//<base64>` of the certificate's public key (its SPKI), as
/// `curl --pinnedpubkey` takes it.
fn public_key_pin(der: &CertificateDer<'_>) -> Option<String> {
    use base64::Engine;
    use sha2::Digest;
    let (_, certificate) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let digest = sha2::Sha256::digest(certificate.public_key().raw);
    Some(format!(
        "sha256//{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    ))
}

/// Whether the certificate is its own issuer (a private CA, not one that the
/// machines' trust stores hold).
fn is_self_signed(der: &CertificateDer<'_>) -> bool {
    x509_parser::parse_x509_certificate(der.as_ref())
        .is_ok_and(|(_, c)| c.issuer().as_raw() == c.subject().as_raw())
}

/// One certificate as PEM text (base64 in 64-column lines).
fn pem_of(der: &CertificateDer<'_>) -> String {
    miaas_core::access::pinned::certificate_pem(der.as_ref())
}

impl ServerTls {
    /// Loads `cert` and `key`; a missing or unusable file is a configuration error.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, ServerError> {
        let certified = load(cert, key)?;
        Ok(Self {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: Arc::new(RwLock::new(Arc::new(certified))),
        })
    }

    fn certified(&self) -> Arc<Certified> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The acceptor for a new connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.certified().acceptor.clone()
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.certified().ca_pem.clone()
    }

    /// `sha256:<hex>` of the CA certificate.
    pub fn ca_hash(&self) -> String {
        self.certified().ca_hash.clone()
    }

    /// `sha256//<base64>` of the server certificate's public key, for
    /// `curl --pinnedpubkey`.
    pub fn public_key_pin(&self) -> Option<String> {
        self.certified().public_key_pin.clone()
    }

    /// Whether the chain ends in a self-signed CA (clients must be told to trust
    /// it: by a pin or a CA file).
    pub fn self_signed(&self) -> bool {
        self.certified().self_signed
    }

    /// Reads the files again; keeps the pair in use when they do not load.
    pub fn reload(&self) -> Result<(), ServerError> {
        let certified = load(&self.cert, &self.key)?;
        let hash = certified.ca_hash.clone();
        match self.current.write() {
            Ok(mut current) => *current = Arc::new(certified),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(certified),
        }
        tracing::info!(cert = %self.cert.display(), ca_hash = %hash, "TLS certificate reloaded");
        Ok(())
    }
}

/// Reloads `tls` on every SIGHUP, until the task is aborted.
pub async fn reload_on_hangup(tls: ServerTls) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: the certificate is not reloaded");
            return;
        };
        while hangups.recv().await.is_some() {
            if let Err(err) = tls.reload() {
                tracing::error!(error = %err, "TLS certificate not reloaded; the one in use is kept");
            }
        }
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_text_reads_back_as_the_same_certificate() {
        let der = CertificateDer::from((0u8..=200).collect::<Vec<u8>>());
        let pem = pem_of(&der);
        assert!(pem.lines().all(|l| l.len() <= 64));
        let back = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        assert_eq!(back, der);
    }
}
