//! Which server certificates a client trusts: the system roots, the CA of
//! `--ca-cert FILE` only, or, joining with a pinned join token (see
//! [`miaas_core::access::pinned`]), the server's own CA checked against the pin
//! on first contact and kept in the state directory (`ca.pem`) for later starts.

use std::path::Path;
use std::time::Duration;

use miaas_core::access::pinned::{PinnedJoinToken, ca_hash};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::error::{AgentError, Result};

/// The CA learnt through a pinned join token, in the state directory.
pub const PINNED_CA_FILE: &str = "ca.pem";

/// The certificates to trust instead of the system roots (`None`: system roots).
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// PEM text of the CA certificates, when only they are trusted.
    pub roots_pem: Option<String>,
}

impl Trust {
    /// The system roots.
    pub fn system() -> Self {
        Self::default()
    }

    /// Exactly the CA certificates in the PEM file `path`.
    pub fn ca_file(path: &Path) -> Result<Self> {
        let pem = std::fs::read_to_string(path).map_err(|err| {
            AgentError::Config(format!("cannot read --ca-cert {}: {err}", path.display()))
        })?;
        let certificates = certificates(&pem)
            .map_err(|err| AgentError::Config(format!("--ca-cert {}: {err}", path.display())))?;
        if certificates.is_empty() {
            return Err(AgentError::Config(format!(
                "--ca-cert {} holds no PEM certificate",
                path.display()
            )));
        }
        Ok(Self {
            roots_pem: Some(pem),
        })
    }

    /// A client builder trusting these certificates.
    pub fn client_builder(&self) -> Result<reqwest::ClientBuilder> {
        let builder = reqwest::Client::builder();
        let Some(pem) = &self.roots_pem else {
            return Ok(builder);
        };
        let roots = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|err| AgentError::Config(format!("unusable CA certificate: {err}")))?;
        Ok(builder.tls_certs_only(roots))
    }
}

/// The certificates of a PEM text.
fn certificates(pem: &str) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|err| format!("not PEM certificates: {err}"))
}

/// Whether the PEM text holds a certificate whose hash is `pin`.
fn matches_pin(pem: &str, pin: &str) -> bool {
    certificates(pem).is_ok_and(|certs| certs.iter().any(|c| ca_hash(c.as_ref()) == pin))
}

/// The trust of an agent: `--ca-cert` when given; else, with a join token that
/// pins a CA, that CA (from `state_dir`, or fetched from `server` and checked
/// against the pin); else a CA learnt that way at an earlier start; else the
/// system roots.
pub async fn agent_trust(
    server: &str,
    ca_cert: Option<&Path>,
    join_token: Option<&PinnedJoinToken>,
    state_dir: &Path,
) -> Result<Trust> {
    if let Some(path) = ca_cert {
        return Trust::ca_file(path);
    }
    let stored_path = state_dir.join(PINNED_CA_FILE);
    let stored = std::fs::read_to_string(&stored_path).ok();
    match join_token.and_then(|t| t.ca_hash.as_deref()) {
        Some(pin) if server.starts_with("https://") => {
            if let Some(pem) = stored.filter(|pem| matches_pin(pem, pin)) {
                return Ok(Trust {
                    roots_pem: Some(pem),
                });
            }
            let pem = fetch_pinned_ca(server, pin).await?;
            save(&stored_path, &pem)?;
            tracing::info!(ca_hash = %pin, file = %stored_path.display(), "server CA checked against the join token's pin and kept");
            Ok(Trust {
                roots_pem: Some(pem),
            })
        }
        _ => Ok(match stored {
            Some(pem) if certificates(&pem).is_ok_and(|c| !c.is_empty()) => Trust {
                roots_pem: Some(pem),
            },
            _ => Trust::system(),
        }),
    }
}

fn save(path: &Path, pem: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        miaas_core::private_file::create_dir_all(dir)
            .map_err(AgentError::io(format!("cannot create {}", dir.display())))?;
    }
    let mut file = miaas_core::private_file::overwrite(path)
        .map_err(AgentError::io(format!("cannot write {}", path.display())))?;
    std::io::Write::write_all(&mut file, pem.as_bytes())
        .map_err(AgentError::io(format!("cannot write {}", path.display())))
}

/// Fetches `/cacerts` without verifying the server (nothing is sent but the
/// request), and keeps the answer only when it holds the certificate `pin` names.
async fn fetch_pinned_ca(server: &str, pin: &str) -> Result<String> {
    let url = format!("{}/cacerts", server.trim_end_matches('/'));
    let unverified = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|err| AgentError::Config(format!("cannot build an HTTP client: {err}")))?;
    let response = unverified
        .get(&url)
        .send()
        .await
        .map_err(|err| AgentError::Unreachable(format!("{url}: {err}")))?;
    if !response.status().is_success() {
        return Err(AgentError::Config(format!(
            "the join token pins a CA, but {url} answered {} (does the server serve HTTPS itself, \
             with --tls-cert?)",
            response.status()
        )));
    }
    let pem = response
        .text()
        .await
        .map_err(|err| AgentError::Unreachable(format!("{url}: {err}")))?;
    let presented: Vec<String> = certificates(&pem)
        .unwrap_or_default()
        .iter()
        .map(|c| ca_hash(c.as_ref()))
        .collect();
    if !presented.iter().any(|hash| hash == pin) {
        return Err(AgentError::Config(format!(
            "the server at {server} presents CA {}, but the join token pins {pin}: this is not \
             the server the token was made for (or someone is in between); not trusting it",
            presented.first().map_or("(none)", String::as_str)
        )));
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "hello").unwrap();
        assert!(Trust::ca_file(&path).is_err());
        assert!(Trust::ca_file(&dir.path().join("none.pem")).is_err());
    }
}
