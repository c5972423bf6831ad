//! Which server certificates a client trusts: the system roots, the CA of
//! `--ca-cert FILE` only, or, joining with a pinned join token (see
//! [`miaas_core::access::pinned`]), the server's own CA checked against the pin
//! on first contact and kept in the state directory (`ca.pem`) for later starts.
//!
//! Of what `/cacerts` answers, only the certificate the pin names is trusted and
//! kept: the answer comes over an unverified connection, so anything else in it
//! may be a server in the middle's own CA. A `ca.pem` read back is reduced the
//! same way (one kept by an older agent may hold the whole answer).

use std::path::Path;
use std::time::Duration;

use miaas_core::access::pinned::{PinnedJoinToken, ca_hash, certificate_pem};
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

/// The certificate of the PEM text whose hash is `pin`, alone, as PEM.
fn pinned_certificate(pem: &str, pin: &str) -> Option<String> {
    certificates(pem)
        .ok()?
        .iter()
        .find(|c| ca_hash(c.as_ref()) == pin)
        .map(|c| certificate_pem(c.as_ref()))
}

/// The trust of an agent: `--ca-cert` when given; else, with a join token that
/// pins a CA, exactly that CA (from `state_dir`, or fetched from `server` and
/// checked against the pin); else the one CA learnt that way at an earlier
/// start; else the system roots.
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
            if let Some(stored) = stored
                && let Some(pem) = pinned_certificate(&stored, pin)
            {
                if pem != stored {
                    tracing::warn!(
                        file = %stored_path.display(),
                        ca_hash = %pin,
                        "the kept CA file held more than the pinned CA; keeping only the pinned one"
                    );
                    save(&stored_path, &pem)?;
                }
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
        _ => match stored {
            Some(pem) => stored_trust(&stored_path, pem),
            None => Ok(Trust::system()),
        },
    }
}

/// The CA kept at an earlier start, read back without the pin: one certificate,
/// as this agent keeps it. More than one was kept by an older agent that stored
/// the whole `/cacerts` answer, which may include a server in the middle's CA;
/// without the pin nothing says which one to trust, so the agent stops.
fn stored_trust(path: &Path, pem: String) -> Result<Trust> {
    match certificates(&pem).map(|c| c.len()) {
        Ok(0) | Err(_) => Ok(Trust::system()),
        Ok(1) => Ok(Trust {
            roots_pem: Some(pem),
        }),
        Ok(count) => Err(AgentError::Config(format!(
            "{} holds {count} certificates, but the CA learnt through a pinned join token is \
             one, and which one is not known without the pin (one of them may be a server in \
             the middle's): start the agent once with the pinned join token (MIAAS_JOIN_TOKEN) \
             to keep only the pinned CA, or give --ca-cert",
            path.display()
        ))),
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
/// request), and keeps of the answer only the certificate `pin` names (PEM).
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
    pinned_certificate(&pem, pin).ok_or_else(|| {
        let presented = certificates(&pem)
            .ok()
            .and_then(|c| c.first().map(|c| ca_hash(c.as_ref())));
        AgentError::Config(format!(
            "the server at {server} presents CA {}, but the join token pins {pin}: this is not \
             the server the token was made for (or someone is in between); not trusting it",
            presented.as_deref().unwrap_or("(none)")
        ))
    })
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

    /// A self-signed certificate, DER.
    fn certificate() -> Vec<u8> {
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .unwrap()
            .cert
            .der()
            .to_vec()
    }

    #[tokio::test]
    async fn a_kept_ca_file_is_reduced_to_the_pinned_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (pinned, other) = (certificate(), certificate());
        let path = dir.path().join(PINNED_CA_FILE);
        let both = format!("{}{}", certificate_pem(&other), certificate_pem(&pinned));
        std::fs::write(&path, both).unwrap();
        let token = PinnedJoinToken::parse(&miaas_core::access::pinned::pin(
            "miaas_join_x",
            &ca_hash(&pinned),
        ))
        .unwrap();
        // nothing listens there: the kept file is used, not fetched again
        let trust = agent_trust("https://127.0.0.1:9", None, Some(&token), dir.path())
            .await
            .unwrap();
        assert_eq!(trust.roots_pem, Some(certificate_pem(&pinned)));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            certificate_pem(&pinned)
        );
    }

    #[tokio::test]
    async fn without_the_pin_a_kept_ca_file_must_hold_one_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(PINNED_CA_FILE);
        let one = certificate_pem(&certificate());
        std::fs::write(&path, &one).unwrap();
        let trust = agent_trust("https://127.0.0.1:9", None, None, dir.path())
            .await
            .unwrap();
        assert_eq!(trust.roots_pem, Some(one.clone()));
        std::fs::write(&path, format!("{one}{}", certificate_pem(&certificate()))).unwrap();
        let refused = agent_trust("https://127.0.0.1:9", None, None, dir.path()).await;
        assert!(
            matches!(&refused, Err(AgentError::Config(m)) if m.contains("2 certificates")),
            "{refused:?}"
        );
    }
}
