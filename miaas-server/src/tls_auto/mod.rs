//! `--tls auto`: the server is its own certificate authority, as k3s is. At first
//! start it creates a CA (ECDSA P-256, valid 10 years) and a server certificate
//! signed by it, in one folder (`<db>.tls` beside a SQLite database, `--tls-dir`
//! otherwise; folder `0700`, files `0600`):
//!
//! - `ca.pem`, `ca.key`: never made again while they exist (join tokens and
//!   agents pin the CA);
//! - `server.key`: kept across renewals, so a pin of the server's public key
//!   (`curl --pinnedpubkey`, the install one-liner) stays valid;
//! - `server.pem`: the server certificate then the CA (`CA:FALSE`; SANs: the host
//!   name, `localhost`, every address the server listens on, the `--public-url`
//!   host and `--tls-san` names), issued again when a third of its lifetime is
//!   left, when a name is missing, or when it is not the CA's.
//!
//! Replicas sharing the folder: a file is created whole under a temporary name and
//! linked into place only if absent, so two servers starting at once agree on one
//! CA and one key.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType,
};

use crate::error::ServerError;

mod files;
mod names;

use files::{create_if_absent, private_dir, read, replace, wait_for};
use names::{der_of, host_name, listening_addresses, names_of, split_chain};

/// How long the CA is valid.
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The folder and the names the server certificate must hold.
#[derive(Debug, Clone)]
pub struct AutoTls {
    dir: PathBuf,
    dns_names: BTreeSet<String>,
    addresses: BTreeSet<IpAddr>,
    lifetime: Duration,
}

/// The files to serve.
#[derive(Debug, Clone)]
pub struct AutoTlsFiles {
    /// `server.pem`: the server certificate, then the CA.
    pub chain: PathBuf,
    /// `server.key`.
    pub key: PathBuf,
    /// Whether `server.pem` was (re)issued by this call.
    pub issued: bool,
}

fn tls_error(what: impl std::fmt::Display) -> ServerError {
    ServerError::Config(format!("--tls auto: {what}"))
}

impl AutoTls {
    /// The certificates in `dir`, for a server listening on `listening`, reached at
    /// `public_host` (if any), with `extra` names; the server certificate lives
    /// `lifetime`.
    pub fn new(
        dir: PathBuf,
        listening: SocketAddr,
        public_host: Option<&str>,
        extra: &[String],
        lifetime: Duration,
    ) -> Self {
        let mut dns_names = BTreeSet::from(["localhost".to_string()]);
        let mut addresses = BTreeSet::new();
        if let Some(host) = host_name() {
            dns_names.insert(host);
        }
        for name in public_host
            .into_iter()
            .chain(extra.iter().map(String::as_str))
        {
            let name = name.trim().trim_start_matches('[').trim_end_matches(']');
            match name.parse::<IpAddr>() {
                Ok(ip) => {
                    addresses.insert(ip);
                }
                Err(_) if !name.is_empty() => {
                    dns_names.insert(name.to_ascii_lowercase());
                }
                Err(_) => {}
            }
        }
        addresses.extend(listening_addresses(listening.ip()));
        Self {
            dir,
            dns_names,
            addresses,
            lifetime,
        }
    }

    /// The folder holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How often to look whether the server certificate needs renewing.
    pub fn check_interval(&self) -> Duration {
        (self.lifetime / 20).clamp(Duration::from_secs(1), Duration::from_secs(3600))
    }

    /// Creates what is missing and renews the server certificate when due.
    pub fn ensure(&self) -> Result<AutoTlsFiles, ServerError> {
        self.ensure_at(unix_now())
    }

    /// As [`Self::ensure`], judging at `now` (since the Unix epoch) whether the
    /// server certificate is due.
    fn ensure_at(&self, now: Duration) -> Result<AutoTlsFiles, ServerError> {
        private_dir(&self.dir)?;
        let (ca_pem, ca_key) = self.ca()?;
        let key_path = self.dir.join("server.key");
        let server_key = match read(&key_path)? {
            Some(pem) => KeyPair::from_pem(&pem)
                .map_err(|err| tls_error(format!("{}: {err}", key_path.display())))?,
            None => {
                let key =
                    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(tls_error)?;
                let pem = create_if_absent(&key_path, &key.serialize_pem())?;
                KeyPair::from_pem(&pem).map_err(tls_error)?
            }
        };
        let chain = self.dir.join("server.pem");
        let current = read(&chain)?;
        let due = current
            .as_deref()
            .is_none_or(|pem| self.needs_issuing(pem, &ca_pem, &server_key, now));
        if due {
            let issuer = Issuer::from_ca_cert_pem(&ca_pem, &ca_key)
                .map_err(|err| tls_error(format!("ca.pem: {err}")))?;
            // replicas sharing the folder each add their own names: keep the others'
            let (mut dns_names, mut addresses) = current
                .as_deref()
                .filter(|chain| split_chain(chain).map(|(_, ca)| ca) == der_of(&ca_pem))
                .map(names_of)
                .unwrap_or_default();
            dns_names.extend(self.dns_names.iter().cloned());
            addresses.extend(self.addresses.iter().copied());
            let leaf = server_params(&dns_names, &addresses, self.lifetime)?
                .signed_by(&server_key, &issuer)
                .map_err(tls_error)?;
            replace(&chain, &format!("{}{}", leaf.pem(), ca_pem))?;
            tracing::info!(
                dir = %self.dir.display(),
                names = ?dns_names,
                addresses = ?addresses,
                "TLS: server certificate issued by this server's CA"
            );
        }
        Ok(AutoTlsFiles {
            chain,
            key: key_path,
            issued: due,
        })
    }

    /// The CA's certificate and key, created on first use.
    fn ca(&self) -> Result<(String, KeyPair), ServerError> {
        let key_path = self.dir.join("ca.key");
        let cert_path = self.dir.join("ca.pem");
        if let Some(key) = read(&key_path)? {
            let key = KeyPair::from_pem(&key)
                .map_err(|err| tls_error(format!("{}: {err}", key_path.display())))?;
            let pem = wait_for(&cert_path)?;
            return matching(pem, key, &cert_path, &key_path);
        }
        if cert_path.exists() {
            return Err(tls_error(format!(
                "{} is there without its key {}: restore the key (a new CA would break every \
                 pin), or remove both to start a new CA",
                cert_path.display(),
                key_path.display()
            )));
        }
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(tls_error)?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "MIaaS");
        name.push(
            DnType::CommonName,
            format!("MIaaS CA {}", &key_fingerprint(&key)),
        );
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = now + CA_LIFETIME;
        let cert = params.self_signed(&key).map_err(tls_error)?;
        // the key is the CA's claim: whoever links it first made the CA
        let written = create_if_absent(&key_path, &key.serialize_pem())?;
        if written != key.serialize_pem() {
            let key = KeyPair::from_pem(&written).map_err(tls_error)?;
            return matching(wait_for(&cert_path)?, key, &cert_path, &key_path);
        }
        let pem = create_if_absent(&cert_path, &cert.pem())?;
        tracing::info!(dir = %self.dir.display(), "TLS: created this server's CA");
        Ok((pem, key))
    }

    /// Whether `chain` (server.pem) must be issued again: unreadable, not the
    /// CA's, not for `key`, missing a name, or with a third of its lifetime left.
    fn needs_issuing(&self, chain: &str, ca_pem: &str, key: &KeyPair, now: Duration) -> bool {
        let Some((leaf, ca)) = split_chain(chain) else {
            return true;
        };
        if Some(ca) != der_of(ca_pem) {
            return true;
        }
        let Ok((_, certificate)) = x509_parser::parse_x509_certificate(&leaf) else {
            return true;
        };
        if certificate.public_key().raw != key.subject_public_key_info().as_slice() {
            return true;
        }
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let left = certificate
            .validity()
            .not_after
            .timestamp()
            .saturating_sub(now);
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX);
        if left.saturating_mul(3) < lifetime {
            return true;
        }
        let (dns, ips) = names_of(chain);
        !(self.dns_names.is_subset(&dns) && self.addresses.is_subset(&ips))
    }
}

/// The server certificate's parameters: these names, valid `lifetime` from now.
fn server_params(
    dns_names: &BTreeSet<String>,
    addresses: &BTreeSet<IpAddr>,
    lifetime: Duration,
) -> Result<CertificateParams, ServerError> {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "MIaaS");
    let common = (dns_names.iter())
        .find(|n| *n != "localhost")
        .cloned()
        .unwrap_or_else(|| "localhost".into());
    name.push(DnType::CommonName, common);
    params.distinguished_name = name;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    for dns in dns_names {
        let dns = dns
            .clone()
            .try_into()
            .map_err(|err| tls_error(format!("{dns:?} is not a host name (--tls-san): {err}")))?;
        params.subject_alt_names.push(SanType::DnsName(dns));
    }
    for ip in addresses {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + lifetime;
    Ok(params)
}

/// Renews the server certificate when due, for as long as the server runs, and
/// has `tls` serve the new one.
pub async fn renew_periodically(auto: AutoTls, tls: crate::tls::ServerTls) {
    let mut ticker = tokio::time::interval(auto.check_interval());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let check = auto.clone();
        match tokio::task::spawn_blocking(move || check.ensure()).await {
            Ok(Ok(files)) if files.issued => {
                if let Err(err) = tls.reload() {
                    tracing::error!(error = %err, "TLS: the renewed certificate did not load");
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::error!(error = %err, "TLS: renewing the certificate failed"),
            Err(err) => tracing::error!(error = %err, "TLS: renewing the certificate failed"),
        }
    }
}

/// The CA's certificate and key, once checked to belong together.
fn matching(
    pem: String,
    key: KeyPair,
    cert_path: &Path,
    key_path: &Path,
) -> Result<(String, KeyPair), ServerError> {
    let same = der_of(&pem)
        .and_then(|der| {
            x509_parser::parse_x509_certificate(&der)
                .ok()
                .map(|(_, c)| c.public_key().raw == key.subject_public_key_info().as_slice())
        })
        .unwrap_or(false);
    if !same {
        return Err(tls_error(format!(
            "{} is not the certificate of the key {}: restore the pair (a new CA would break \
             every pin)",
            cert_path.display(),
            key_path.display()
        )));
    }
    Ok((pem, key))
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

/// A short, unique-enough name part from the CA's key, so two installs' CAs
/// differ by name too.
fn key_fingerprint(key: &KeyPair) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.subject_public_key_info());
    hex::encode(&digest[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto(dir: &Path, lifetime: Duration) -> AutoTls {
        AutoTls::new(
            dir.to_path_buf(),
            "127.0.0.1:8443".parse().unwrap(),
            Some("cp.example"),
            &["10.1.2.3".into(), "Extra.Example".into()],
            lifetime,
        )
    }

    #[test]
    fn a_second_start_keeps_everything_and_a_new_name_keeps_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("db.tls");
        let first = auto(&tls, Duration::from_secs(3600)).ensure().unwrap();
        assert!(first.issued);
        let read = |name: &str| std::fs::read_to_string(tls.join(name)).unwrap();
        let (ca, key, chain) = (read("ca.pem"), read("server.key"), read("server.pem"));
        let again = auto(&tls, Duration::from_secs(3600)).ensure().unwrap();
        assert!(!again.issued);
        assert_eq!(read("server.pem"), chain);
        // a new name: issued again, same CA and key
        let mut wider = auto(&tls, Duration::from_secs(3600));
        wider.dns_names.insert("new.example".into());
        assert!(wider.ensure().unwrap().issued);
        assert_eq!((read("ca.pem"), read("server.key")), (ca, key));
        assert_ne!(read("server.pem"), chain);
    }

    #[test]
    fn a_third_of_the_lifetime_left_renews_with_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let day = Duration::from_secs(24 * 3600);
        let tls = auto(dir.path(), 30 * day);
        assert!(tls.ensure().unwrap().issued);
        let key = std::fs::read_to_string(dir.path().join("server.key")).unwrap();
        assert!(!tls.ensure_at(unix_now() + 19 * day).unwrap().issued);
        assert!(tls.ensure_at(unix_now() + 21 * day).unwrap().issued);
        let after = std::fs::read_to_string(dir.path().join("server.key")).unwrap();
        assert_eq!(after, key);
    }

    #[test]
    fn a_ca_whose_key_is_gone_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let tls = auto(dir.path(), Duration::from_secs(3600));
        tls.ensure().unwrap();
        let ca = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
        std::fs::remove_file(dir.path().join("ca.key")).unwrap();
        let err = tls.ensure().unwrap_err().to_string();
        assert!(err.contains("without its key"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("ca.pem")).unwrap(),
            ca
        );
        assert!(!dir.path().join("ca.key").exists());
    }

    #[test]
    fn replicas_sharing_the_folder_keep_each_others_names() {
        let dir = tempfile::tempdir().unwrap();
        let mut one = auto(dir.path(), Duration::from_secs(3600));
        one.dns_names.insert("replica-1".into());
        let mut two = auto(dir.path(), Duration::from_secs(3600));
        two.dns_names.insert("replica-2".into());
        assert!(one.ensure().unwrap().issued);
        assert!(two.ensure().unwrap().issued, "replica-2 is missing");
        assert!(!one.ensure().unwrap().issued, "both names are there");
        assert!(!two.ensure().unwrap().issued);
        let chain = std::fs::read_to_string(dir.path().join("server.pem")).unwrap();
        let (names, _) = names_of(&chain);
        assert!(
            names.contains("replica-1") && names.contains("replica-2"),
            "{names:?}"
        );
    }

    #[test]
    fn a_ca_certificate_that_is_not_its_keys_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let tls = auto(dir.path(), Duration::from_secs(3600));
        tls.ensure().unwrap();
        let other = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        std::fs::write(dir.path().join("ca.key"), other.serialize_pem()).unwrap();
        let err = tls.ensure().unwrap_err().to_string();
        assert!(err.contains("is not the certificate of the key"), "{err}");
    }

    #[test]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("x.tls");
        auto(&tls, Duration::from_secs(3600)).ensure().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&tls), 0o700);
        for name in ["ca.pem", "ca.key", "server.pem", "server.key"] {
            assert_eq!(mode(&tls.join(name)), 0o600, "{name}");
        }
        assert_eq!(
            std::fs::read_dir(&tls).unwrap().count(),
            4,
            "no temporary left"
        );
    }
}
